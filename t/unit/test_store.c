/*
 * Store tests: the core's plans against a real redis-server (started on a
 * free loopback port). Devices sign their messages with the test PKI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <cmocka.h>

#include <hiredis.h>

#include "mdm.h"
#include "mdm_sync.h"
#include "redis_fixture.h"
#include "sim.h"
#include "store_fixture.h"

#define TOPIC  "com.apple.mgmt.External.test-0001"
#define UDID1  "UDID-0001"
#define UDID2  "UDID-0002"
#define USER1  "11111111-2222-3333-4444-555555555555"
#define SHARED "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

static redis_fixture_t fx;
static redisContext *rc;
static sim_device_t dev1, dev2, expired, stranger;
static char pki[512];
static char logbuf[4096];

static void
log_sink(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(logbuf, sizeof(logbuf), "%s %s", id, msg);
}

static mdm_conf_t *
make_conf(const char *binding, const char *extra_name, const char *extra_value)
{
    /* a NULL extra_name ends the list early */
    mdm_conf_t *c =
        store_fixture_conf(pki, TOPIC, "binding", binding, "results_ttl", "60",
                           extra_name, extra_value, (char *) NULL);

    if (c == NULL) {
        fail_msg("conf refused");
    }
    return c;
}

static int
group_setup(void **state)
{
    const char *p = getenv("MDM_TEST_PKI");

    (void) state;
    if (p == NULL) {
        fprintf(stderr, "MDM_TEST_PKI is not set\n");
        return -1;
    }
    snprintf(pki, sizeof(pki), "%s", p);
    if (redis_fixture_start(&fx) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return -1;
    }
    rc = redis_fixture_connect(&fx);
    store_fixture_load(&dev1, pki, "dev1");
    store_fixture_load(&dev2, pki, "dev2");
    store_fixture_load(&expired, pki, "expired");
    store_fixture_load(&stranger, pki, "stranger");
    return rc ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void) state;
    sim_device_free(&dev1);
    sim_device_free(&dev2);
    sim_device_free(&expired);
    sim_device_free(&stranger);
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&fx);
    return 0;
}

static int
flush(void **state)
{
    redisReply *r = redisCommand(rc, "FLUSHALL");

    (void) state;
    freeReplyObject(r);
    logbuf[0] = '\0';
    return 0;
}

/* ---- helpers ---- */

static int
send_msg(const mdm_conf_t *c, mdm_endpoint_t ep, const sim_device_t *d,
         sim_resp_t *out, const char *body, size_t len)
{
    return sim_send(rc, c, ep, d, body, len, out);
}

#define SEND(c, ep, d, out, ...)                                               \
    do {                                                                       \
        size_t len_;                                                           \
        char *b_ = sim_plist(&len_, __VA_ARGS__, NULL);                        \
        send_msg(c, ep, d, out, b_, len_);                                     \
        free(b_);                                                              \
    } while (0)

static void
enroll(const mdm_conf_t *c, const sim_device_t *d, const char *udid)
{
    sim_resp_t r;

    SEND(c, MDM_EP_CHECKIN, d, &r, "MessageType", "Authenticate", "UDID", udid,
         "Topic", TOPIC, "SerialNumber", "SER1");
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, d, &r, "MessageType", "TokenUpdate", "UDID", udid,
         "Topic", TOPIC, "Token", "tok-device", "PushMagic", "MAGIC-1");
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
}

static mdm_req_t *
admin_req(const mdm_conf_t *c, mdm_admin_op_t op, const char *id,
          const char *uuid, const char *body)
{
    mdm_admin_args_t a;
    const char *ids[1] = {id};

    memset(&a, 0, sizeof(a));
    a.op = op;
    a.ids = ids;
    a.nids = 1;
    a.uuid = uuid;
    a.body = (const unsigned char *) body;
    a.body_len = body ? strlen(body) : 0;
    return mdm_req_new_admin(c, &a);
}

static int
admin(const mdm_conf_t *c, mdm_admin_op_t op, const char *id, const char *uuid,
      const char *body, char *out, size_t outlen)
{
    mdm_req_t *r = admin_req(c, op, id, uuid, body);
    const mdm_response_t *resp;
    int status;

    mdm_req_set_logger(r, log_sink, NULL);
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        mdm_exec_sync(rc, r);
    }
    resp = mdm_req_response(r);
    status = resp->status;
    if (out) {
        snprintf(out, outlen, "%.*s", (int) resp->body_len,
                 (const char *) resp->body);
    }
    mdm_req_free(r);
    return status;
}

static void
enqueue(const mdm_conf_t *c, const char *id, const char *uuid, const char *type)
{
    char body[512], out[1024];

    snprintf(body, sizeof(body),
             "{\"CommandUUID\":\"%s\",\"Command\":{\"RequestType\":\"%s\"}}",
             uuid, type);
    assert_int_equal(
        admin(c, MDM_ADMIN_ENQUEUE, id, NULL, body, out, sizeof(out)), 200);
}

/* Report Status for uuid; returns the status; next uuid in r->next_uuid. */
static int
report(const mdm_conf_t *c, const sim_device_t *d, const char *udid,
       const char *user, const char *status, const char *uuid, sim_resp_t *r)
{
    size_t len;
    char *b;

    if (user && uuid) {
        b = sim_plist(&len, "UDID", udid, "UserID", user, "Status", status,
                      "CommandUUID", uuid, NULL);
    } else if (user) {
        b = sim_plist(&len, "UDID", udid, "UserID", user, "Status", status,
                      NULL);
    } else if (uuid) {
        b = sim_plist(&len, "UDID", udid, "Status", status, "CommandUUID", uuid,
                      NULL);
    } else {
        b = sim_plist(&len, "UDID", udid, "Status", status, NULL);
    }
    send_msg(c, MDM_EP_COMMAND, d, r, b, len);
    free(b);
    return r->status;
}

static void
expect_next(const mdm_conf_t *c, const sim_device_t *d, const char *udid,
            const char *user, const char *status, const char *uuid,
            const char *next)
{
    sim_resp_t r;

    assert_int_equal(report(c, d, udid, user, status, uuid, &r), 200);
    if (next == NULL) {
        if (r.body_len != 0) {
            fail_msg("%s %s: expected an empty body, got command %s", status,
                     uuid ? uuid : "", r.next_uuid);
        }
    } else {
        assert_string_equal(r.next_uuid, next);
        assert_non_null(strstr(r.body, next));
        assert_non_null(strstr(r.body, "<key>Command</key>"));
    }
    sim_resp_free(&r);
}

static redisReply *
cmd(const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long
cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

    freeReplyObject(r);
    return v;
}

static char *
hget(const char *key, const char *field)
{
    redisReply *r = cmd("HGET %s %s", key, field);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

static char *
digest(void)
{
    redisReply *r = cmd("DEBUG DIGEST");
    char *v = r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING
                  ? strdup(r->str)
                  : NULL;

    freeReplyObject(r);
    assert_non_null(v);
    return v;
}

/* ---- tests ---- */

static void
test_lifecycle(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;
    char *v;

    (void) state;
    enroll(c, &dev1, UDID1);
    v = hget("t:{" UDID1 "}:rec", "enabled");
    assert_string_equal(v, "1");
    free(v);
    v = hget("t:{" UDID1 "}:rec", "token");
    assert_string_equal(v, "746f6b2d646576696365"); /* hex of tok-device */
    free(v);
    v = hget("t:{" UDID1 "}:rec", "serial");
    assert_string_equal(v, "SER1");
    free(v);

    enqueue(c, UDID1, "CMD-A", "DeviceInformation");
    enqueue(c, UDID1, "CMD-B", "SecurityInfo");
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "CMD-A");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "CMD-A", "CMD-B");
    expect_next(c, &dev1, UDID1, NULL, "Error", "CMD-B", NULL);
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, NULL);

    v = hget("t:{" UDID1 "}:res:CMD-A", "status");
    assert_string_equal(v, "Acknowledged");
    free(v);
    v = hget("t:{" UDID1 "}:res:CMD-B", "status");
    assert_string_equal(v, "Error");
    free(v);
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:q"), 0);

    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "CheckOut", "UDID", UDID1,
         "Topic", TOPIC);
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    v = hget("t:{" UDID1 "}:rec", "enabled");
    assert_string_equal(v, "0");
    free(v);
    /* TokenUpdate enables again */
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "Topic", TOPIC, "Token", "tok2", "PushMagic", "MAGIC-2");
    sim_resp_free(&r);
    v = hget("t:{" UDID1 "}:rec", "enabled");
    assert_string_equal(v, "1");
    free(v);
    mdm_conf_free(c);
}

static void
test_notnow(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);

    (void) state;
    enroll(c, &dev1, UDID1);
    enqueue(c, UDID1, "CMD-1", "DeviceInformation");
    enqueue(c, UDID1, "CMD-2", "InstallProfile");
    enqueue(c, UDID1, "CMD-3", "ProfileList");
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "CMD-1");
    /* NotNow: skipped for the rest of the session */
    expect_next(c, &dev1, UDID1, NULL, "NotNow", "CMD-1", "CMD-2");
    expect_next(c, &dev1, UDID1, NULL, "NotNow", "CMD-2", "CMD-3");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "CMD-3", NULL);
    /* never lost */
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:q"), 2);
    /* offered again at the next Idle, in order */
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "CMD-1");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "CMD-1", "CMD-2");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "CMD-2", NULL);
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:q"), 0);
    mdm_conf_free(c);
}

static void
test_user_channel(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;
    char *v;

    (void) state;
    enroll(c, &dev1, UDID1);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "UserID", USER1, "UserShortName", "alice", "UserLongName",
         "Alice", "Topic", TOPIC, "Token", "tok-user", "PushMagic", "UM");
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    v = hget("t:{" UDID1 "}:" USER1 ":rec", "parent");
    assert_string_equal(v, UDID1);
    free(v);
    /* the device channel's token is not overwritten */
    v = hget("t:{" UDID1 "}:rec", "token");
    assert_string_equal(v, "746f6b2d646576696365");
    free(v);

    enqueue(c, UDID1 ":" USER1, "UCMD-1", "ProfileList");
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, NULL);
    expect_next(c, &dev1, UDID1, USER1, "Idle", NULL, "UCMD-1");
    expect_next(c, &dev1, UDID1, USER1, "Acknowledged", "UCMD-1", NULL);
    mdm_conf_free(c);
}

static void
test_shared_ipad(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;
    char *v;

    (void) state;
    enroll(c, &dev1, UDID1);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "UserID", SHARED, "UserShortName", "bob@example.com", "Topic",
         TOPIC, "Token", "tok-bob", "PushMagic", "BM");
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    v = hget("t:{" UDID1 "}:bob@example.com:rec", "type");
    assert_string_equal(v, "SharediPad");
    free(v);
    enqueue(c, UDID1 ":bob@example.com", "SCMD-1", "ProfileList");
    {
        size_t len;
        char *b =
            sim_plist(&len, "UDID", UDID1, "UserID", SHARED, "UserShortName",
                      "bob@example.com", "Status", "Idle", NULL);

        send_msg(c, MDM_EP_COMMAND, &dev1, &r, b, len);
        free(b);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.next_uuid, "SCMD-1");
        sim_resp_free(&r);
    }
    mdm_conf_free(c);
}

static void
test_authenticate_clears_queues(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;

    (void) state;
    enroll(c, &dev1, UDID1);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "UserID", USER1, "Topic", TOPIC, "Token", "t", "PushMagic",
         "m");
    sim_resp_free(&r);
    enqueue(c, UDID1, "D-1", "DeviceInformation");
    enqueue(c, UDID1 ":" USER1, "U-1", "ProfileList");
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:q"), 1);
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:" USER1 ":q"), 1);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "Authenticate", "UDID",
         UDID1, "Topic", TOPIC);
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    assert_int_equal(cmd_int("EXISTS %s", "t:{" UDID1 "}:q"), 0);
    assert_int_equal(cmd_int("EXISTS %s", "t:{" UDID1 "}:cmd"), 0);
    assert_int_equal(cmd_int("EXISTS %s", "t:{" UDID1 "}:" USER1 ":q"), 0);
    /* disabled until the next TokenUpdate */
    {
        char *v = hget("t:{" UDID1 "}:rec", "enabled");

        assert_string_equal(v, "0");
        free(v);
    }
    mdm_conf_free(c);
}

static void
test_results_ttl_and_events(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    long long ttl, n0, n1;
    redisReply *x;

    (void) state;
    enroll(c, &dev1, UDID1);
    n0 = cmd_int("XLEN %s", "t:events");
    assert_int_equal(n0, 2); /* Authenticate + TokenUpdate */
    enqueue(c, UDID1, "R-1", "DeviceInformation");
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "R-1");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "R-1", NULL);
    ttl = cmd_int("TTL %s", "t:{" UDID1 "}:res:R-1");
    assert_true(ttl > 0 && ttl <= 60);
    n1 = cmd_int("XLEN %s", "t:events");
    assert_int_equal(n1, n0 + 2);
    x = cmd("XREVRANGE t:events + - COUNT 1");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    {
        redisReply *f = x->element[0]->element[1];
        int found = 0;
        size_t i;

        for (i = 0; i + 1 < f->elements; i += 2) {
            if (strcmp(f->element[i]->str, "status") == 0) {
                assert_string_equal(f->element[i + 1]->str, "Acknowledged");
                found++;
            }
            if (strcmp(f->element[i]->str, "uuid") == 0) {
                assert_string_equal(f->element[i + 1]->str, "R-1");
                found++;
            }
        }
        assert_int_equal(found, 2);
    }
    freeReplyObject(x);
    mdm_conf_free(c);
}

static void
test_duplicate_uuid(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    char out[1024];
    const char *body =
        "{\"CommandUUID\":\"DUP-1\",\"Command\":{\"RequestType\":\"X\"}}";

    (void) state;
    enroll(c, &dev1, UDID1);
    assert_int_equal(
        admin(c, MDM_ADMIN_ENQUEUE, UDID1, NULL, body, out, sizeof(out)), 200);
    assert_int_equal(
        admin(c, MDM_ADMIN_ENQUEUE, UDID1, NULL, body, out, sizeof(out)), 409);
    assert_non_null(strstr(out, "duplicate"));
    /* still refused once the command has a result */
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "DUP-1");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "DUP-1", NULL);
    assert_int_equal(
        admin(c, MDM_ADMIN_ENQUEUE, UDID1, NULL, body, out, sizeof(out)), 409);
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:q"), 0);
    /* unknown enrollment */
    assert_int_equal(
        admin(c, MDM_ADMIN_ENQUEUE, "NOPE", NULL, body, out, sizeof(out)), 404);
    mdm_conf_free(c);
}

static void
test_admin_ops(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    char out[4096];
    const char *ids[2] = {UDID1, UDID2};
    mdm_admin_args_t a;
    mdm_req_t *r;

    (void) state;
    enroll(c, &dev1, UDID1);
    enroll(c, &dev2, UDID2);

    /* many ids, bare command, plist body, UUID generated, push appended */
    memset(&a, 0, sizeof(a));
    a.op = MDM_ADMIN_ENQUEUE;
    a.ids = ids;
    a.nids = 2;
    a.body = (const unsigned char
                  *) "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
                     "<key>RequestType</key><string>ProfileList</string></"
                     "dict></plist>";
    a.body_len = strlen((const char *) a.body);
    r = mdm_req_new_admin(c, &a);
    assert_int_equal(mdm_req_start(r), MDM_STEP_REDIS);
    mdm_exec_sync(rc, r);
    assert_int_equal(mdm_req_response(r)->status, 200);
    assert_non_null(strstr((const char *) mdm_req_response(r)->body,
                           "\"request_type\":\"ProfileList\""));
    mdm_req_free(r);
    assert_int_equal(cmd_int("XLEN %s", "t:push"), 2);
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID2 "}:q"), 1);

    /* nopush */
    a.nopush = 1;
    a.nids = 1;
    r = mdm_req_new_admin(c, &a);
    assert_int_equal(mdm_req_start(r), MDM_STEP_REDIS);
    mdm_exec_sync(rc, r);
    assert_int_equal(mdm_req_response(r)->status, 200);
    mdm_req_free(r);
    assert_int_equal(cmd_int("XLEN %s", "t:push"), 2);

    enqueue(c, UDID1, "Q-3", "DeviceInformation");
    assert_int_equal(
        admin(c, MDM_ADMIN_QUEUE, UDID1, NULL, NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"uuid\":\"Q-3\""));
    assert_non_null(strstr(out, "\"request_type\":\"DeviceInformation\""));

    assert_int_equal(
        admin(c, MDM_ADMIN_ENROLLMENT, UDID1, NULL, NULL, out, sizeof(out)),
        200);
    assert_non_null(strstr(out, "\"queue_length\":3"));
    assert_non_null(strstr(out, "\"magic\":\"MAGIC-1\""));
    assert_int_equal(
        admin(c, MDM_ADMIN_ENROLLMENT, "UNKNOWN", NULL, NULL, out, sizeof(out)),
        404);

    assert_int_equal(
        admin(c, MDM_ADMIN_DELETE, UDID1, "Q-3", NULL, out, sizeof(out)), 200);
    assert_int_equal(
        admin(c, MDM_ADMIN_DELETE, UDID1, "Q-3", NULL, out, sizeof(out)), 404);
    assert_int_equal(cmd_int("LLEN %s", "t:{" UDID1 "}:q"), 2);
    assert_int_equal(
        admin(c, MDM_ADMIN_CLEAR, UDID1, NULL, NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"removed\":2"));
    assert_int_equal(cmd_int("EXISTS %s", "t:{" UDID1 "}:q"), 0);
    mdm_conf_free(c);
}

static void
test_admin_result_push(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    char out[4096];

    (void) state;
    enroll(c, &dev1, UDID1);
    enqueue(c, UDID1, "RES-1", "DeviceInformation");
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "RES-1");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "RES-1", NULL);
    assert_int_equal(
        admin(c, MDM_ADMIN_RESULT, UDID1, "RES-1", NULL, out, sizeof(out)),
        200);
    assert_non_null(strstr(out, "\"status\":\"Acknowledged\""));
    assert_non_null(strstr(out, "RES-1"));
    assert_int_equal(
        admin(c, MDM_ADMIN_RESULT, UDID1, "NONE", NULL, out, sizeof(out)), 404);
    assert_int_equal(
        admin(c, MDM_ADMIN_PUSH, UDID1, NULL, NULL, out, sizeof(out)), 200);
    assert_int_equal(cmd_int("XLEN %s", "t:push"), 2);
    /* bad admin input */
    assert_int_equal(
        admin(c, MDM_ADMIN_ENQUEUE, UDID1, NULL, "{\"x\":1}", out, sizeof(out)),
        400);
    assert_non_null(strstr(out, "MDM05004"));
    assert_int_equal(admin(c, MDM_ADMIN_ENQUEUE, "bad id", NULL,
                           "{\"RequestType\":\"X\"}", out, sizeof(out)),
                     400);
    mdm_conf_free(c);
}

/* One Redis round trip per device request, and only EVALSHA + XADD. */
static void
test_one_round_trip(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    redisContext *mon;
    redisReply *x;
    mdm_req_t *r;
    size_t len, plans = 0, top = 0;
    char *b, *sig;
    void *reply;
    struct timeval tv = {0, 300000};

    (void) state;
    enroll(c, &dev1, UDID1);
    enqueue(c, UDID1, "RT-1", "DeviceInformation");
    mon = redis_fixture_connect(&fx);
    x = redisCommand(mon, "MONITOR");
    freeReplyObject(x);

    b = sim_plist(&len, "UDID", UDID1, "Status", "Idle", NULL);
    sig = sim_sign(&dev1, b, len);
    r = mdm_req_new(c, MDM_EP_COMMAND);
    mdm_req_set_body(r, (unsigned char *) b, len);
    mdm_req_set_signature(r, sig, strlen(sig));
    /* drive the loop by hand to count plans (= network round trips) */
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        do {
            const mdm_plan_t *p = mdm_req_plan(r);
            redisReply *reps[8];
            size_t i;

            plans++;
            assert_true(p->nreplies <= 8);
            for (i = 0; i < p->ncmds; i++) {
                redisAppendCommandArgv(rc, p->cmds[i].argc, p->cmds[i].argv,
                                       p->cmds[i].argvlen);
            }
            for (i = 0; i < p->ncmds; i++) {
                assert_int_equal(redisGetReply(rc, &reply), REDIS_OK);
                if (i < p->nreplies) {
                    reps[i] = reply;
                } else {
                    freeReplyObject(reply);
                }
            }
            if (mdm_req_feed(r, reps, p->nreplies) == MDM_STEP_DONE) {
                for (i = 0; i < p->nreplies; i++) {
                    freeReplyObject(reps[i]);
                }
                break;
            }
            for (i = 0; i < p->nreplies; i++) {
                freeReplyObject(reps[i]);
            }
        } while (1);
    }
    assert_int_equal(mdm_req_response(r)->status, 200);
    assert_string_equal(mdm_req_var(r, MDM_VAR_NEXT_UUID), "RT-1");
    mdm_req_free(r);
    free(b);
    free(sig);
    assert_int_equal(plans, 1);

    /* the monitor sees the top-level commands; script calls say "lua" */
    redisSetTimeout(mon, tv);
    while (redisGetReply(mon, &reply) == REDIS_OK) {
        x = reply;
        if (x->type == REDIS_REPLY_STATUS && strstr(x->str, "lua]") == NULL) {
            top++;
            assert_true(strstr(x->str, "\"EVALSHA\"") != NULL ||
                        strstr(x->str, "\"XADD\"") != NULL);
        }
        freeReplyObject(x);
    }
    assert_int_equal(top, 2);
    redisFree(mon);
    mdm_conf_free(c);
}

static void
test_noscript_fallback(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    redisReply *x;

    (void) state;
    enroll(c, &dev1, UDID1);
    enqueue(c, UDID1, "NS-1", "DeviceInformation");
    x = cmd("SCRIPT FLUSH");
    freeReplyObject(x);
    expect_next(c, &dev1, UDID1, NULL, "Idle", NULL, "NS-1");
    x = cmd("SCRIPT FLUSH");
    freeReplyObject(x);
    enqueue(c, UDID1, "NS-2", "DeviceInformation");
    expect_next(c, &dev1, UDID1, NULL, "Acknowledged", "NS-1", "NS-2");
    mdm_conf_free(c);
}

static void
test_binding(void **state)
{
    /* no events stream here, so the digest shows any stored change */
    mdm_conf_t *c = make_conf("strict", "events_maxlen", "0");
    sim_resp_t r;
    char *d0, *d1;

    (void) state;
    enroll(c, &dev1, UDID1);
    enroll(c, &dev2, UDID2);

    /* certificate already bound to another enrollment */
    d0 = digest();
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "Authenticate", "UDID",
         UDID2, "Topic", TOPIC);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM03002");
    sim_resp_free(&r);

    /* request whose certificate is not the one bound to its enrollment */
    SEND(c, MDM_EP_CHECKIN, &dev2, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "Topic", TOPIC, "Token", "x", "PushMagic", "y");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM03004");
    sim_resp_free(&r);
    assert_int_equal(report(c, &dev2, UDID1, NULL, "Idle", NULL, &r), 400);
    assert_string_equal(r.error_id, "MDM03004");
    sim_resp_free(&r);

    /* never authenticated */
    assert_int_equal(report(c, &dev1, "UDID-NEVER", NULL, "Idle", NULL, &r),
                     400);
    assert_string_equal(r.error_id, "MDM03003");
    sim_resp_free(&r);

    /* topic */
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "Topic", "com.apple.mgmt.Other", "Token", "x", "PushMagic",
         "y");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM03001");
    sim_resp_free(&r);
    /* refusals never change stored state */
    d1 = digest();
    assert_string_equal(d0, d1);
    free(d0);
    free(d1);
    mdm_conf_free(c);
}

/* revoke: the bound certificate is refused on every path from the next
 * request on, in the same round trip; a new certificate enrolls again */
static void
test_revoke(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;
    char out[1024], key[300], *bound, *v;
    mdm_req_t *q;

    (void) state;
    enroll(c, &dev1, UDID1);
    snprintf(key, sizeof(key), "t:{%s}:rec", UDID1);
    bound = hget(key, "cert");
    assert_non_null(bound);

    /* bad hash, unknown enrollment, wrong method over HTTP */
    assert_int_equal(
        admin(c, MDM_ADMIN_REVOKE, UDID1, "abc", NULL, out, sizeof(out)), 400);
    assert_non_null(strstr(out, "MDM05015"));
    assert_int_equal(
        admin(c, MDM_ADMIN_REVOKE, "UDID-NEVER", NULL, NULL, out, sizeof(out)),
        404);
    q = mdm_req_new_admin_http(c, "GET", 3, "/revoke/X", 9, NULL, 0, NULL, 0);
    assert_int_equal(mdm_req_start(q), MDM_STEP_DONE);
    assert_int_equal(mdm_req_response(q)->status, 405);
    mdm_req_free(q);

    assert_int_equal(
        admin(c, MDM_ADMIN_REVOKE, UDID1, NULL, NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, bound));
    assert_non_null(strstr(logbuf, "MDM05017"));
    assert_null(hget(key, "cert"));
    v = hget(key, "enabled");
    assert_string_equal(v, "0");
    free(v);
    /* nothing bound any more: naming no certificate is a conflict */
    assert_int_equal(
        admin(c, MDM_ADMIN_REVOKE, UDID1, NULL, NULL, out, sizeof(out)), 409);

    /* every device path refuses the revoked certificate, Authenticate too */
    assert_int_equal(report(c, &dev1, UDID1, NULL, "Idle", NULL, &r), 400);
    assert_string_equal(r.error_id, "MDM03005");
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "Topic", TOPIC, "Token", "x", "PushMagic", "y");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM03005");
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "Authenticate", "UDID",
         UDID1, "Topic", TOPIC);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM03005");
    sim_resp_free(&r);
    assert_null(hget(key, "cert"));

    /* a new identity enrolls the same device again */
    enroll(c, &dev2, UDID1);
    expect_next(c, &dev2, UDID1, NULL, "Idle", NULL, NULL);

    /* revoking by hash, uppercase accepted, the bound one included */
    v = hget(key, "cert");
    assert_non_null(v);
    for (char *p = v; *p; p++) {
        if (*p >= 'a' && *p <= 'f') {
            *p = (char) (*p - 'a' + 'A');
        }
    }
    assert_int_equal(
        admin(c, MDM_ADMIN_REVOKE, UDID1, v, NULL, out, sizeof(out)), 200);
    free(v);
    assert_int_equal(report(c, &dev2, UDID1, NULL, "Idle", NULL, &r), 400);
    assert_string_equal(r.error_id, "MDM03005");
    sim_resp_free(&r);
    free(bound);
    mdm_conf_free(c);
}

static void
test_binding_retro(void **state)
{
    mdm_conf_t *strict = make_conf("strict", NULL, NULL);
    mdm_conf_t *c = make_conf("retro", NULL, NULL);
    sim_resp_t r;
    char *v;

    (void) state;
    /* a migrated device: never authenticated here */
    assert_int_equal(report(strict, &dev1, UDID1, NULL, "Idle", NULL, &r), 400);
    sim_resp_free(&r);
    assert_int_equal(report(c, &dev1, UDID1, NULL, "Idle", NULL, &r), 200);
    sim_resp_free(&r);
    v = hget("t:{" UDID1 "}:rec", "cert");
    assert_non_null(v);
    free(v);
    /* now bound: another certificate is refused */
    assert_int_equal(report(c, &dev2, UDID1, NULL, "Idle", NULL, &r), 400);
    assert_string_equal(r.error_id, "MDM03004");
    sim_resp_free(&r);
    /* a certificate already seen elsewhere is not associated */
    assert_int_equal(report(c, &dev1, UDID2, NULL, "Idle", NULL, &r), 400);
    assert_string_equal(r.error_id, "MDM03002");
    sim_resp_free(&r);
    assert_int_equal(cmd_int("EXISTS %s", "t:{" UDID2 "}:rec"), 0);
    mdm_conf_free(strict);
    mdm_conf_free(c);
}

/* A refusal decided in Redis takes its event back out of the stream. */
static void
test_refusal_leaves_no_event(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;
    long long n0;

    (void) state;
    enroll(c, &dev1, UDID1);
    enroll(c, &dev2, UDID2);
    n0 = cmd_int("XLEN %s", "t:events");
    assert_int_equal(report(c, &dev2, UDID1, NULL, "Idle", NULL, &r), 400);
    assert_string_equal(r.error_id, "MDM03004");
    sim_resp_free(&r);
    assert_int_equal(report(c, &dev1, "UDID-NEVER", NULL, "Idle", NULL, &r),
                     400);
    assert_string_equal(r.error_id, "MDM03003");
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "Authenticate", "UDID",
         UDID2, "Topic", TOPIC);
    assert_int_equal(r.status, 400);
    sim_resp_free(&r);
    assert_int_equal(cmd_int("XLEN %s", "t:events"), n0);
    /* and an accepted one still adds its event */
    assert_int_equal(report(c, &dev1, UDID1, NULL, "Idle", NULL, &r), 200);
    sim_resp_free(&r);
    assert_int_equal(cmd_int("XLEN %s", "t:events"), n0 + 1);
    mdm_conf_free(c);
}

/* Bad input: documented status, and Redis left exactly as it was. */
static void
test_bad_input_leaves_store(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    sim_resp_t r;
    char *d0, *d1, *body, *huge;
    size_t len, i;
    mdm_req_t *q;
    static const char garbage[] = "\x01\x02not a plist\xff";

    (void) state;
    enroll(c, &dev1, UDID1);
    enqueue(c, UDID1, "KEEP-1", "DeviceInformation");
    d0 = digest();

    body = sim_plist(&len, "UDID", UDID1, "Status", "Idle", NULL);
    /* truncated */
    send_msg(c, MDM_EP_COMMAND, &dev1, &r, body, len / 2);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM01001");
    sim_resp_free(&r);
    /* garbage */
    send_msg(c, MDM_EP_COMMAND, &dev1, &r, garbage, sizeof(garbage) - 1);
    assert_int_equal(r.status, 400);
    sim_resp_free(&r);
    /* huge */
    huge = malloc(4 * 1024 * 1024);
    for (i = 0; i < 4 * 1024 * 1024; i++) {
        huge[i] = "<array>"[i % 7];
    }
    send_msg(c, MDM_EP_COMMAND, &dev1, &r, huge, 4 * 1024 * 1024);
    assert_int_equal(r.status, 400);
    sim_resp_free(&r);
    free(huge);
    /* no identity */
    send_msg(c, MDM_EP_COMMAND, NULL, &r, body, len);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM02001");
    sim_resp_free(&r);
    /* signer from another CA, expired certificate */
    send_msg(c, MDM_EP_COMMAND, &stranger, &r, body, len);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM02005");
    sim_resp_free(&r);
    send_msg(c, MDM_EP_COMMAND, &expired, &r, body, len);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM02005");
    sim_resp_free(&r);
    /* base64 garbage and a tampered body */
    q = mdm_req_new(c, MDM_EP_COMMAND);
    mdm_req_set_body(q, (unsigned char *) body, len);
    mdm_req_set_signature(q, "!!!not base64!!!", 16);
    assert_int_equal(mdm_req_start(q), MDM_STEP_DONE);
    assert_int_equal(mdm_req_response(q)->status, 400);
    assert_string_equal(mdm_req_var(q, MDM_VAR_ERROR_ID), "MDM02002");
    mdm_req_free(q);
    {
        char *sig = sim_sign(&dev1, body, len);

        body[len - 20] ^= 1;
        q = mdm_req_new(c, MDM_EP_COMMAND);
        mdm_req_set_body(q, (unsigned char *) body, len);
        mdm_req_set_signature(q, sig, strlen(sig));
        assert_int_equal(mdm_req_start(q), MDM_STEP_DONE);
        assert_int_equal(mdm_req_response(q)->status, 400);
        assert_string_equal(mdm_req_var(q, MDM_VAR_IDENTITY), "bad-signature");
        mdm_req_free(q);
        free(sig);
    }
    free(body);
    /* wrong types, missing keys, unknown MessageType */
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "TokenUpdate", "UDID",
         UDID1, "Topic", TOPIC, "PushMagic", "m");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM01003");
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "Frobnicate", "UDID",
         UDID1);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM01004");
    sim_resp_free(&r);
    {
        static const char wrong[] =
            "<plist version=\"1.0\"><dict><key>UDID</key><integer>5"
            "</integer><key>Status</key><string>Idle</string></dict></plist>";

        send_msg(c, MDM_EP_COMMAND, &dev1, &r, wrong, sizeof(wrong) - 1);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.error_id, "MDM01002");
        sim_resp_free(&r);
    }
    d1 = digest();
    assert_string_equal(d0, d1);
    free(d0);
    free(d1);
    mdm_conf_free(c);
}

static void
test_checkin_answers(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    mdm_conf_t *za = make_conf("strict", "user_auth", "zero-length");
    sim_resp_t r;

    (void) state;
    enroll(c, &dev1, UDID1);
    /* bootstrap token: none, set, get, delete */
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "GetBootstrapToken",
         "UDID", UDID1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "SetBootstrapToken",
         "UDID", UDID1, "BootstrapToken", "secret-bt");
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "GetBootstrapToken",
         "UDID", UDID1);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<key>BootstrapToken</key>"));
    assert_non_null(strstr(r.body, "c2VjcmV0LWJ0")); /* base64 secret-bt */
    sim_resp_free(&r);
    /* UserAuthenticate: 410 by default, zero-length challenge on option */
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "UserAuthenticate",
         "UDID", UDID1, "UserID", USER1);
    assert_int_equal(r.status, 410);
    sim_resp_free(&r);
    SEND(za, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "UserAuthenticate",
         "UDID", UDID1, "UserID", USER1);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<key>DigestChallenge</key>"));
    sim_resp_free(&r);
    SEND(za, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "UserAuthenticate",
         "UDID", UDID1, "UserID", USER1, "DigestResponse", "x");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    sim_resp_free(&r);
    /* DeclarativeManagement, GetToken, ReturnToService */
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "DeclarativeManagement",
         "UDID", UDID1, "Endpoint", "tokens");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "SyncTokens"));
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "GetToken", "UDID", UDID1,
         "TokenServiceType", "com.apple.maid");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_id, "MDM01007");
    sim_resp_free(&r);
    SEND(c, MDM_EP_CHECKIN, &dev1, &r, "MessageType", "ReturnToService", "UDID",
         UDID1);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<key>Enabled</key>"));
    assert_non_null(strstr(r.body, "<false/>"));
    sim_resp_free(&r);
    /* one URL for both: the combined endpoint routes by content */
    SEND(c, MDM_EP_ANY, &dev1, &r, "MessageType", "TokenUpdate", "UDID", UDID1,
         "Topic", TOPIC, "Token", "t", "PushMagic", "m");
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    assert_int_equal(report(c, &dev1, UDID1, NULL, "Idle", NULL, &r), 200);
    sim_resp_free(&r);
    mdm_conf_free(c);
    mdm_conf_free(za);
}

static void
test_storage_down(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    redis_fixture_t dead = fx;
    redisContext *save = rc;
    sim_resp_t r;
    size_t len;
    char *b = sim_plist(&len, "UDID", UDID1, "Status", "Idle", NULL);
    mdm_req_t *q;

    (void) state;
    enroll(c, &dev1, UDID1);
    /* a connection whose peer went away */
    rc = redis_fixture_connect(&dead);
    {
        redisReply *x = redisCommand(rc, "CLIENT KILL TYPE normal SKIPME no");

        freeReplyObject(x);
    }
    q = mdm_req_new(c, MDM_EP_COMMAND);
    {
        char *sig = sim_sign(&dev1, b, len);

        mdm_req_set_body(q, (unsigned char *) b, len);
        mdm_req_set_signature(q, sig, strlen(sig));
        assert_int_equal(mdm_req_start(q), MDM_STEP_REDIS);
        mdm_exec_sync(rc, q);
        assert_int_equal(mdm_req_response(q)->status, 503);
        assert_true(mdm_req_response(q)->retry_after > 0);
        assert_string_equal(mdm_req_var(q, MDM_VAR_ERROR_ID), "MDM04001");
        free(sig);
    }
    mdm_req_free(q);
    redisFree(rc);
    rc = save;
    /* feeding no replies is a storage failure too */
    q = mdm_req_new(c, MDM_EP_COMMAND);
    {
        char *sig = sim_sign(&dev1, b, len);

        mdm_req_set_body(q, (unsigned char *) b, len);
        mdm_req_set_signature(q, sig, strlen(sig));
        assert_int_equal(mdm_req_start(q), MDM_STEP_REDIS);
        assert_int_equal(mdm_req_feed(q, NULL, 0), MDM_STEP_DONE);
        assert_int_equal(mdm_req_response(q)->status, 503);
        free(sig);
    }
    mdm_req_free(q);
    (void) r;
    free(b);
    mdm_conf_free(c);
}

static void
test_conf_errors(void **state)
{
    mdm_conf_t *c = mdm_conf_new();
    char err[256];

    (void) state;
    assert_int_equal(mdm_conf_set(c, "binding", "loose", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "binding"));
    assert_int_equal(mdm_conf_set(c, "topic", "x.y", err, sizeof(err)), -1);
    assert_int_equal(mdm_conf_set(c, "results_ttl", "0", err, sizeof(err)), -1);
    assert_int_equal(mdm_conf_set(c, "identity", "magic", err, sizeof(err)),
                     -1);
    assert_int_equal(mdm_conf_set(c, "nope", "1", err, sizeof(err)), -1);
    assert_int_equal(
        mdm_conf_set(c, "ca_file", "/nonexistent/ca.pem", err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_finish(c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    mdm_conf_free(c);
}

/* More ids than one HTTP request may name: refused, never cut short. */
static void
test_too_many_ids(void **state)
{
    mdm_conf_t *c = make_conf("strict", NULL, NULL);
    char path[16384];
    size_t n = 0;
    int i;
    mdm_req_t *q;

    (void) state;
    n = (size_t) snprintf(path, sizeof(path), "/enqueue/");
    for (i = 0; i < 1025; i++) {
        n += (size_t) snprintf(path + n, sizeof(path) - n, "%s%d", i ? "," : "",
                               i);
    }
    q = mdm_req_new_admin_http(c, "POST", 4, path, n, NULL, 0,
                               (const unsigned char *) "{}", 2);
    assert_non_null(q);
    assert_int_equal(mdm_req_start(q), MDM_STEP_DONE);
    assert_int_equal(mdm_req_response(q)->status, 400);
    mdm_req_free(q);
    mdm_conf_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_lifecycle, flush),
        cmocka_unit_test_setup(test_notnow, flush),
        cmocka_unit_test_setup(test_user_channel, flush),
        cmocka_unit_test_setup(test_shared_ipad, flush),
        cmocka_unit_test_setup(test_authenticate_clears_queues, flush),
        cmocka_unit_test_setup(test_results_ttl_and_events, flush),
        cmocka_unit_test_setup(test_duplicate_uuid, flush),
        cmocka_unit_test_setup(test_admin_ops, flush),
        cmocka_unit_test_setup(test_admin_result_push, flush),
        cmocka_unit_test_setup(test_one_round_trip, flush),
        cmocka_unit_test_setup(test_noscript_fallback, flush),
        cmocka_unit_test_setup(test_binding, flush),
        cmocka_unit_test_setup(test_binding_retro, flush),
        cmocka_unit_test_setup(test_revoke, flush),
        cmocka_unit_test_setup(test_refusal_leaves_no_event, flush),
        cmocka_unit_test_setup(test_bad_input_leaves_store, flush),
        cmocka_unit_test_setup(test_checkin_answers, flush),
        cmocka_unit_test_setup(test_storage_down, flush),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_too_many_ids),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
