/*
 * The plans of libmdm on a Redis Cluster node (mdm_redis_topo.h): a
 * device's life (Authenticate, TokenUpdate of the device and a user
 * channel, commands fetched, answered, NotNow, CheckOut) and the admin
 * operations (enqueue to several devices, push, queue, result, delete,
 * clear, show, revoke) run against a real cluster-enabled redis-server
 * that serves every slot, through an executor that checks each command
 * of each plan before sending it:
 *   - a command with keys has a routing key (mdm_cmd_route_key);
 *   - every KEY of an EVAL/EVALSHA hashes to the routing key's slot (a
 *     Cluster refuses a script across slots, CROSSSLOT);
 * and Redis itself refuses cross-slot scripts and commands, so every
 * answer must still be the one a single server gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis.h>

#include "mdm.h"
#include "mdm_redis_topo.h"
#include "redis_fixture.h"
#include "sim.h"
#include "store_fixture.h"

#define TOPIC "com.apple.mgmt.External.test-0001"
#define UDID1 "UDID-T0001"
#define UDID2 "UDID-T0002"
#define USER1 "11111111-2222-3333-4444-555555555555"

static redis_fixture_t node;
static redisContext *rc;
static sim_device_t dev1, dev2;
static mdm_conf_t *conf;
static unsigned checked_cmds, checked_scripts;

/* ------------------------------------------------------------------ */
/* a cluster-enabled redis-server serving every slot                   */

static int
node_start(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    struct timeval tv = {5, 0};
    redisReply *r;
    int i;

    if (redis_fixture_start_cluster(&node) != 0 ||
        (rc = redis_fixture_connect(&node)) == NULL) {
        return -1;
    }
    redisSetTimeout(rc, tv);
    r = redisCommand(rc, "CLUSTER ADDSLOTSRANGE 0 16383");
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        return -1;
    }
    freeReplyObject(r);
    for (i = 0; i < 250; i++) {
        int ok;

        r = redisCommand(rc, "CLUSTER INFO");
        ok = r && r->type == REDIS_REPLY_STRING &&
             strstr(r->str, "cluster_state:ok") != NULL;
        freeReplyObject(r);
        if (ok) {
            return 0;
        }
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void
node_stop(void)
{
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&node);
}

/* ------------------------------------------------------------------ */
/* the checking executor                                               */

static int
is(const mdm_cmd_t *c, const char *name)
{
    return c->argvlen[0] == strlen(name) &&
           strncasecmp(c->argv[0], name, c->argvlen[0]) == 0;
}

static void
check_cmd(const mdm_cmd_t *c)
{
    const char *k;
    size_t len;
    long nk, i;
    unsigned slot;

    k = mdm_cmd_route_key(c, &len);
    checked_cmds++;
    if (is(c, "SCRIPT") || is(c, "PING")) {
        assert_null(k);
        return;
    }
    if (k == NULL && (is(c, "EVAL") || is(c, "EVALSHA"))) {
        fail_msg("a script without keys: nothing to route it by");
    }
    if (k == NULL) {
        fail_msg("no routing key for %.*s", (int) c->argvlen[0], c->argv[0]);
    }
    slot = mdm_redis_slot(k, len);
    if (is(c, "EVAL") || is(c, "EVALSHA")) {
        checked_scripts++;
        nk = strtol(c->argv[2], NULL, 10);
        assert_true(nk >= 1 && 3 + nk <= c->argc);
        for (i = 0; i < nk; i++) {
            if (mdm_redis_slot(c->argv[3 + i], c->argvlen[3 + i]) != slot) {
                fail_msg("script KEYS[%ld] %.*s is not in the slot of %.*s",
                         i + 1, (int) c->argvlen[3 + i], c->argv[3 + i],
                         (int) len, k);
            }
        }
    } else if (is(c, "DEL") || is(c, "EXISTS") || is(c, "UNLINK")) {
        for (i = 1; i < c->argc; i++) {
            if (mdm_redis_slot(c->argv[i], c->argvlen[i]) != slot) {
                fail_msg("%.*s across slots: %.*s and %.*s",
                         (int) c->argvlen[0], c->argv[0], (int) len, k,
                         (int) c->argvlen[i], c->argv[i]);
            }
        }
    }
}

static void
run(mdm_req_t *tx)
{
    const mdm_plan_t *p;
    redisReply *rep[256];
    mdm_step_t step = MDM_STEP_REDIS;
    size_t i, n;
    void *x;

    while (step == MDM_STEP_REDIS) {
        p = mdm_req_plan(tx);
        assert_non_null(p);
        assert_true(p->ncmds <= 256);
        for (i = 0; i < p->ncmds; i++) {
            check_cmd(&p->cmds[i]);
            assert_int_equal(redisAppendCommandArgv(rc, p->cmds[i].argc,
                                                    p->cmds[i].argv,
                                                    p->cmds[i].argvlen),
                             REDIS_OK);
        }
        n = p->ncmds;
        for (i = 0; i < n; i++) {
            assert_int_equal(redisGetReply(rc, &x), REDIS_OK);
            rep[i] = x;
            if (rep[i]->type == REDIS_REPLY_ERROR &&
                (strncmp(rep[i]->str, "CROSSSLOT", 9) == 0 ||
                 strstr(rep[i]->str, "same slot") != NULL)) {
                fail_msg("Redis Cluster refused: %s", rep[i]->str);
            }
        }
        step = mdm_req_feed(tx, rep, p->nreplies);
        for (i = 0; i < n; i++) {
            freeReplyObject(rep[i]);
        }
    }
}

/* a signed device message; its status, the next command's uuid in next */
static int
device(const sim_device_t *d, mdm_endpoint_t ep, char *next, size_t nlen, ...)
{
    const mdm_response_t *resp;
    const char *v;
    mdm_req_t *r;
    va_list ap;
    size_t len;
    char *body, *sig;
    const char *kv[24] = {NULL};
    int n = 0, status;

    va_start(ap, nlen);
    while (n < 22 && (kv[n] = va_arg(ap, const char *)) != NULL) {
        n++;
    }
    va_end(ap);
    kv[n] = NULL;
    /* sim_plist takes the pairs as varargs, up to a NULL: 6 pairs here */
    assert_true(n <= 12);
    body = sim_plist(&len, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6],
                     kv[7], kv[8], kv[9], kv[10], kv[11], NULL);
    assert_non_null(body);
    r = mdm_req_new(conf, ep);
    mdm_req_set_body(r, (const unsigned char *) body, len);
    sig = sim_sign(d, body, len);
    mdm_req_set_signature(r, sig, strlen(sig));
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        run(r);
    }
    resp = mdm_req_response(r);
    status = resp->status;
    if (next) {
        v = mdm_req_var(r, MDM_VAR_NEXT_UUID);
        snprintf(next, nlen, "%s", v ? v : "");
    }
    mdm_req_free(r);
    free(body);
    free(sig);
    return status;
}

static int
admin(mdm_admin_op_t op, const char *ids, const char *uuid, const char *body)
{
    const char *list[4];
    char buf[256], *save = NULL, *w;
    mdm_admin_args_t a;
    mdm_req_t *r;
    int status;

    memset(&a, 0, sizeof(a));
    snprintf(buf, sizeof(buf), "%s", ids);
    for (w = strtok_r(buf, ",", &save); w && a.nids < 4;
         w = strtok_r(NULL, ",", &save)) {
        list[a.nids++] = w;
    }
    a.op = op;
    a.ids = list;
    a.uuid = uuid;
    a.body = (const unsigned char *) body;
    a.body_len = body ? strlen(body) : 0;
    r = mdm_req_new_admin(conf, &a);
    assert_non_null(r);
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        run(r);
    }
    status = mdm_req_response(r)->status;
    mdm_req_free(r);
    return status;
}

/* an admin route (declarative management) through the router */
static int
admin_http(const char *method, const char *path, const char *body)
{
    mdm_req_t *r = mdm_req_new_admin_http(
        conf, method, strlen(method), path, strlen(path), "", 0,
        (const unsigned char *) body, body ? strlen(body) : 0);
    int status;

    assert_non_null(r);
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        run(r);
    }
    status = mdm_req_response(r)->status;
    mdm_req_free(r);
    return status;
}

static int
setup(void **state)
{
    const char *pki = getenv("MDM_TEST_PKI");

    (void) state;
    if (pki == NULL || node_start() != 0) {
        fprintf(stderr, "MDM_TEST_PKI unset, or no cluster node\n");
        return -1;
    }
    store_fixture_load(&dev1, pki, "dev1");
    store_fixture_load(&dev2, pki, "dev2");
    conf = store_fixture_conf(pki, TOPIC, "binding", "strict", "results_ttl",
                              "60", (char *) NULL);
    return conf ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    mdm_conf_free(conf);
    sim_device_free(&dev1);
    sim_device_free(&dev2);
    node_stop();
    return 0;
}

/* ------------------------------------------------------------------ */

static void
enroll(const sim_device_t *d, const char *udid)
{
    assert_int_equal(device(d, MDM_EP_CHECKIN, NULL, 0, "MessageType",
                            "Authenticate", "UDID", udid, "Topic", TOPIC,
                            "SerialNumber", "SER1", NULL),
                     200);
    assert_int_equal(device(d, MDM_EP_CHECKIN, NULL, 0, "MessageType",
                            "TokenUpdate", "UDID", udid, "Topic", TOPIC,
                            "Token", "tok", "PushMagic", "MAGIC-1", NULL),
                     200);
}

static void
test_plans_on_cluster(void **state)
{
    char next[64];
    const char *cmd = "{\"CommandUUID\":\"C-1\",\"Command\":"
                      "{\"RequestType\":\"DeviceInformation\"}}";
    const char *cmd2 = "{\"CommandUUID\":\"C-2\",\"Command\":"
                       "{\"RequestType\":\"ProfileList\"}}";
    const char *cmd3 = "{\"CommandUUID\":\"C-3\",\"Command\":"
                       "{\"RequestType\":\"SecurityInfo\"}}";

    (void) state;
    /* the two devices' slots differ: the test covers two slots */
    assert_int_not_equal(mdm_redis_slot(UDID1, strlen(UDID1)),
                         mdm_redis_slot(UDID2, strlen(UDID2)));
    enroll(&dev1, UDID1);
    enroll(&dev2, UDID2);
    /* a user channel of device 1 */
    assert_int_equal(device(&dev1, MDM_EP_CHECKIN, NULL, 0, "MessageType",
                            "TokenUpdate", "UDID", UDID1, "UserID", USER1,
                            "Topic", TOPIC, "Token", "tok-u", "PushMagic",
                            "MAGIC-U", NULL),
                     200);
    /* nothing queued */
    assert_int_equal(device(&dev1, MDM_EP_COMMAND, next, sizeof(next), "UDID",
                            UDID1, "Status", "Idle", NULL),
                     200);
    assert_string_equal(next, "");
    /* admin: one command to both, one to device 1 only, push */
    assert_int_equal(admin(MDM_ADMIN_ENQUEUE, UDID1 "," UDID2, NULL, cmd), 200);
    assert_int_equal(admin(MDM_ADMIN_ENQUEUE, UDID1, NULL, cmd2), 200);
    assert_int_equal(admin(MDM_ADMIN_ENQUEUE, UDID1, NULL, cmd3), 200);
    assert_int_equal(admin(MDM_ADMIN_PUSH, UDID1 "," UDID2, NULL, NULL), 200);
    assert_int_equal(admin(MDM_ADMIN_QUEUE, UDID1, NULL, NULL), 200);
    assert_int_equal(admin(MDM_ADMIN_ENROLLMENT, UDID1, NULL, NULL), 200);
    /* the device fetches, answers, says NotNow */
    assert_int_equal(device(&dev1, MDM_EP_COMMAND, next, sizeof(next), "UDID",
                            UDID1, "Status", "Idle", NULL),
                     200);
    assert_string_equal(next, "C-1");
    assert_int_equal(device(&dev1, MDM_EP_COMMAND, next, sizeof(next), "UDID",
                            UDID1, "Status", "Acknowledged", "CommandUUID",
                            "C-1", NULL),
                     200);
    assert_string_equal(next, "C-2");
    assert_int_equal(device(&dev1, MDM_EP_COMMAND, next, sizeof(next), "UDID",
                            UDID1, "Status", "NotNow", "CommandUUID", "C-2",
                            NULL),
                     200);
    assert_int_equal(admin(MDM_ADMIN_RESULT, UDID1, "C-1", NULL), 200);
    assert_int_equal(admin(MDM_ADMIN_DELETE, UDID1, "C-3", NULL), 200);
    assert_int_equal(admin(MDM_ADMIN_CLEAR, UDID2, NULL, NULL), 200);
    /* device 2: its queue was cleared */
    assert_int_equal(device(&dev2, MDM_EP_COMMAND, next, sizeof(next), "UDID",
                            UDID2, "Status", "Idle", NULL),
                     200);
    assert_string_equal(next, "");
    /* declarative management: catalog keys (each its own slot), sets,
       assignment to both devices, the device's DeclarativeManagement
       check-ins */
    assert_int_equal(
        admin_http("POST", "/ddm/declarations",
                   "{\"Type\":\"com.apple.configuration.management.test\","
                   "\"Identifier\":\"c1\",\"ServerToken\":\"v1\","
                   "\"Payload\":{\"Echo\":1}}"),
        200);
    assert_int_equal(
        admin_http("POST", "/ddm/sets/s1", "{\"declarations\":[\"c1\"]}"), 200);
    assert_int_equal(admin_http("POST", "/ddm/assign/" UDID1 "," UDID2,
                                "{\"sets\":[\"s1\"]}"),
                     200);
    assert_int_equal(admin_http("GET", "/ddm/enrollments/" UDID1, NULL), 200);
    assert_int_equal(admin_http("POST", "/ddm/sync/" UDID1, NULL), 200);
    assert_int_equal(device(&dev1, MDM_EP_CHECKIN, NULL, 0, "MessageType",
                            "DeclarativeManagement", "UDID", UDID1, "Endpoint",
                            "tokens", NULL),
                     200);
    assert_int_equal(device(&dev1, MDM_EP_CHECKIN, NULL, 0, "MessageType",
                            "DeclarativeManagement", "UDID", UDID1, "Endpoint",
                            "declaration-items", NULL),
                     200);
    assert_int_equal(admin_http("DELETE", "/ddm/sets/s1", NULL), 200);
    assert_int_equal(admin_http("DELETE", "/ddm/declarations/c1", NULL), 200);
    /* revoke device 2's certificate; device 1 checks out */
    assert_int_equal(admin(MDM_ADMIN_REVOKE, UDID2, NULL, NULL), 200);
    assert_int_equal(device(&dev2, MDM_EP_COMMAND, NULL, 0, "UDID", UDID2,
                            "Status", "Idle", NULL),
                     400);
    assert_int_equal(device(&dev1, MDM_EP_CHECKIN, NULL, 0, "MessageType",
                            "CheckOut", "UDID", UDID1, "Topic", TOPIC, NULL),
                     200);
    print_message("checked %u commands, %u scripts\n", checked_cmds,
                  checked_scripts);
    assert_true(checked_scripts >= 15);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans_on_cluster),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
