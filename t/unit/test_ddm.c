/*
 * Declarative management against a real redis-server: the admin routes
 * (/ddm/...) through the router, the device's DeclarativeManagement
 * check-ins through the core, each counted in Redis round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <hiredis.h>
#include <jansson.h>

#include "mdm.h"
#include "mdm_sync.h"
#include "redis_fixture.h"
#include "sim.h"
#include "store_fixture.h"

#define TOPIC "com.apple.mgmt.External.test-0001"
#define UDID1 "UDID-DDM-1"
#define UDID2 "UDID-DDM-2"

static redis_fixture_t fx;
static redisContext *rc;
static sim_device_t dev1, dev2;
static mdm_conf_t *conf;
static int warm;

static void
log_null(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    (void) id;
    (void) msg;
}

/* Run r's plans by hand; the number of round trips it took. */
static int
run(mdm_req_t *r)
{
    const mdm_plan_t *p;
    redisReply *rep[4096];
    mdm_step_t step;
    size_t i, n;
    int trips = 0;

    mdm_req_set_logger(r, log_null, NULL);
    step = mdm_req_start(r);
    while (step == MDM_STEP_REDIS) {
        p = mdm_req_plan(r);
        n = p->ncmds;
        assert_true(n <= 4096);
        for (i = 0; i < n; i++) {
            redisAppendCommandArgv(rc, p->cmds[i].argc, p->cmds[i].argv,
                                   p->cmds[i].argvlen);
        }
        for (i = 0; i < n; i++) {
            assert_int_equal(redisGetReply(rc, (void **) &rep[i]), REDIS_OK);
        }
        trips++;
        step = mdm_req_feed(r, rep, n);
        for (i = 0; i < n; i++) {
            freeReplyObject(rep[i]);
        }
    }
    return trips;
}

static json_t *
admin(const char *method, const char *path, const char *body, int *status)
{
    mdm_req_t *r = mdm_req_new_admin_http(
        conf, method, strlen(method), path, strlen(path), "", 0,
        (const unsigned char *) body, body ? strlen(body) : 0);
    const mdm_response_t *resp;
    json_t *j;

    assert_non_null(r);
    mdm_req_set_logger(r, log_null, NULL);
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        mdm_exec_sync(rc, r);
    }
    resp = mdm_req_response(r);
    *status = resp->status;
    j = json_loadb((const char *) resp->body, resp->body_len, 0, NULL);
    mdm_req_free(r);
    assert_non_null(j);
    return j;
}

/* A DeclarativeManagement check-in; the body (malloc'd) and round trips. */
static int
dm(const sim_device_t *d, const char *udid, const char *endpoint,
   const char *data, char **body, int *trips)
{
    size_t len;
    char *msg =
        data ? sim_plist(&len, "MessageType", "DeclarativeManagement", "UDID",
                         udid, "Endpoint", endpoint, "Data", data, NULL)
             : sim_plist(&len, "MessageType", "DeclarativeManagement", "UDID",
                         udid, "Endpoint", endpoint, NULL);
    char *sig = sim_sign(d, msg, len);
    mdm_req_t *r = mdm_req_new(conf, MDM_EP_CHECKIN);
    const mdm_response_t *resp;
    int status;

    mdm_req_set_body(r, (const unsigned char *) msg, len);
    mdm_req_set_signature(r, sig, strlen(sig));
    *trips = run(r);
    resp = mdm_req_response(r);
    status = resp->status;
    *body =
        strndup(resp->body ? (const char *) resp->body : "", resp->body_len);
    mdm_req_free(r);
    free(msg);
    free(sig);
    return status;
}

static void
enroll(const sim_device_t *d, const char *udid)
{
    sim_resp_t r;
    size_t len;
    char *b;

    b = sim_plist(&len, "MessageType", "Authenticate", "UDID", udid, "Topic",
                  TOPIC, NULL);
    assert_int_equal(sim_send(rc, conf, MDM_EP_CHECKIN, d, b, len, &r), 200);
    sim_resp_free(&r);
    free(b);
    b = sim_plist(&len, "MessageType", "TokenUpdate", "UDID", udid, "Topic",
                  TOPIC, "Token", "tok", "PushMagic", "M", NULL);
    assert_int_equal(sim_send(rc, conf, MDM_EP_CHECKIN, d, b, len, &r), 200);
    sim_resp_free(&r);
    free(b);
}

static const char decl1[] =
    "{\"Type\":\"com.apple.configuration.management.test\","
    "\"Identifier\":\"c1\",\"ServerToken\":\"v1\",\"Payload\":{\"Echo\":1}}";
static const char decl2[] =
    "{\"Type\":\"com.apple.activation.simple\",\"Identifier\":\"a1\","
    "\"ServerToken\":\"v1\",\"Payload\":{\"StandardConfigurations\":[\"c1\"]}}";

static char *
token_of(const sim_device_t *d, const char *udid)
{
    char *body, *t;
    int trips;
    json_t *j;

    assert_int_equal(dm(d, udid, "tokens", NULL, &body, &trips), 200);
    /* one round trip (two the first time: NOSCRIPT, then EVAL) */
    assert_int_equal(trips, warm ? 1 : 2);
    warm = 1;
    j = json_loads(body, 0, NULL);
    assert_non_null(j);
    t = strdup(json_string_value(json_object_get(
        json_object_get(j, "SyncTokens"), "DeclarationsToken")));
    json_decref(j);
    free(body);
    return t;
}

static void
test_ddm(void **state)
{
    char *body, *t0, *t1, *t2, *t3;
    int status, trips;
    json_t *j;

    (void) state;
    enroll(&dev1, UDID1);
    enroll(&dev2, UDID2);
    t0 = token_of(&dev1, UDID1);

    json_decref(admin("POST", "/ddm/declarations", decl1, &status));
    assert_int_equal(status, 200);
    json_decref(admin("POST", "/ddm/declarations", decl2, &status));
    assert_int_equal(status, 200);
    json_decref(admin("POST", "/ddm/sets/s1",
                      "{\"declarations\":[\"c1\",\"a1\"]}", &status));
    assert_int_equal(status, 200);
    /* nothing assigned yet: no token moved */
    t1 = token_of(&dev1, UDID1);
    assert_string_equal(t0, t1);
    free(t1);

    j = admin("POST", "/ddm/assign/" UDID1, "{\"sets\":[\"s1\"]}", &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(j, "enrollments"), "changed")),
                     1);
    json_decref(j);
    t1 = token_of(&dev1, UDID1);
    assert_string_not_equal(t0, t1);
    t2 = token_of(&dev2, UDID2); /* the other enrollment: untouched */
    assert_string_equal(t0, t2);
    free(t2);

    /* the declaration: one round trip, the stored JSON */
    assert_int_equal(
        dm(&dev1, UDID1, "declaration/configuration/c1", NULL, &body, &trips),
        200);
    assert_int_equal(trips, 1);
    assert_non_null(strstr(body, "\"ServerToken\":\"v1\""));
    free(body);
    assert_int_equal(
        dm(&dev2, UDID2, "declaration/configuration/c1", NULL, &body, &trips),
        404);
    free(body);
    assert_int_equal(dm(&dev1, UDID1, "declaration-items", NULL, &body, &trips),
                     200);
    assert_int_equal(trips, 1);
    assert_non_null(strstr(body, "\"Identifier\":\"a1\""));
    assert_non_null(strstr(body, t1));
    free(body);

    /* a declaration changes: the token changes; the same again: stable */
    json_decref(admin("POST", "/ddm/declarations",
                      "{\"Type\":\"com.apple.configuration.management.test\","
                      "\"Identifier\":\"c1\",\"ServerToken\":\"v2\","
                      "\"Payload\":{}}",
                      &status));
    t2 = token_of(&dev1, UDID1);
    assert_string_not_equal(t1, t2);
    json_decref(admin("POST", "/ddm/sync/" UDID1, NULL, &status));
    assert_int_equal(status, 200);
    t3 = token_of(&dev1, UDID1);
    assert_string_equal(t2, t3);
    free(t3);

    /* direct assignment of a declaration also in the set: no change */
    json_decref(admin("POST", "/ddm/assign/" UDID1,
                      "{\"declarations\":[\"c1\"]}", &status));
    t3 = token_of(&dev1, UDID1);
    assert_string_equal(t2, t3);
    free(t3);
    /* the set unassigned: c1 stays (direct), a1 goes */
    json_decref(
        admin("POST", "/ddm/unassign/" UDID1, "{\"sets\":[\"s1\"]}", &status));
    t3 = token_of(&dev1, UDID1);
    assert_string_not_equal(t2, t3);
    assert_int_equal(
        dm(&dev1, UDID1, "declaration/activation/a1", NULL, &body, &trips),
        404);
    free(body);
    assert_int_equal(
        dm(&dev1, UDID1, "declaration/configuration/c1", NULL, &body, &trips),
        200);
    free(body);

    /* status: merged, stored, one round trip */
    assert_int_equal(dm(&dev1, UDID1, "status",
                        "{\"StatusItems\":{\"a\":{\"b\":1,\"c\":2}}}", &body,
                        &trips),
                     200);
    assert_int_equal(trips, 1);
    free(body);
    assert_int_equal(dm(&dev1, UDID1, "status",
                        "{\"StatusItems\":{\"a\":{\"c\":3}},\"Errors\":[]}",
                        &body, &trips),
                     200);
    free(body);
    assert_int_equal(dm(&dev1, UDID1, "status", "{bad", &body, &trips), 400);
    assert_int_equal(trips, 0);
    free(body);
    j = admin("GET", "/ddm/status/" UDID1, NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(j, "StatusItems"), "a"), "b")),
        1);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(j, "StatusItems"), "a"), "c")),
        3);
    json_decref(j);

    /* deleting the declaration empties the enrollment */
    json_decref(admin("DELETE", "/ddm/declarations/c1", NULL, &status));
    assert_int_equal(status, 200);
    free(t3);
    t3 = token_of(&dev1, UDID1);
    assert_string_equal(t3, t0);
    j = admin("GET", "/ddm/sets/s1", NULL, &status);
    assert_int_equal(json_array_size(json_object_get(j, "declarations")), 1);
    json_decref(j);
    free(t0);
    free(t1);
    free(t2);
    free(t3);
}

static void
test_refusals(void **state)
{
    int status;
    json_t *j;

    (void) state;
    j = admin("POST", "/ddm/declarations",
              "{\"Type\":\"com.apple.configuration.x\",\"Identifier\":\"i\","
              "\"Payload\":{}}",
              &status);
    assert_int_equal(status, 400);
    assert_string_equal(json_string_value(json_object_get(j, "id")),
                        "MDM05030");
    json_decref(j);
    j = admin("GET", "/ddm/declarations", NULL, &status);
    assert_int_equal(json_array_size(json_object_get(j, "declarations")), 0);
    json_decref(j);
    j = admin("POST", "/ddm/sets/bad%2Fname", "{}", &status);
    assert_int_equal(status, 400);
    json_decref(j);
    j = admin("GET", "/ddm/sets/none", NULL, &status);
    assert_int_equal(status, 404);
    json_decref(j);
}

static int
setup(void **state)
{
    const char *p = getenv("MDM_TEST_PKI");

    (void) state;
    if (p == NULL || redis_fixture_start(&fx) != 0) {
        return -1;
    }
    rc = redis_fixture_connect(&fx);
    if (rc == NULL) {
        return -1;
    }
    store_fixture_load(&dev1, p, "dev1");
    store_fixture_load(&dev2, p, "dev2");
    conf = store_fixture_conf(p, TOPIC, (char *) NULL);
    return conf ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    mdm_conf_free(conf);
    sim_device_free(&dev1);
    sim_device_free(&dev2);
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&fx);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_ddm),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
