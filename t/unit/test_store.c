/*
 * Store tests: the core's plans against a real redis-server (started on a
 * free loopback port). Devices sign their messages with the test PKI.
 * This file: device lifecycles, queues, NotNow, user channels, Shared iPad,
 * results and events, one round trip per request, NOSCRIPT, check-in
 * answers. Admin operations, binding, revoke, bad input, storage failure
 * and conf errors are in test_store_admin.c; shared helpers in
 * test_store_fixture.c.
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
#include "test_store_fixture.h"

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
        cmocka_unit_test_setup(test_one_round_trip, flush),
        cmocka_unit_test_setup(test_noscript_fallback, flush),
        cmocka_unit_test_setup(test_checkin_answers, flush),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
