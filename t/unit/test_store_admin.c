/*
 * Store tests, the admin side: admin operations and result pushes, binding
 * (strict and retro), revoke, refusals leaving no event, bad input leaving
 * Redis unchanged, storage failure (503), conf errors, too many ids; against
 * a real redis-server on a free loopback port. Device lifecycles and queues
 * are in test_store.c; shared helpers in test_store_fixture.c.
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
        cmocka_unit_test_setup(test_admin_ops, flush),
        cmocka_unit_test_setup(test_admin_result_push, flush),
        cmocka_unit_test_setup(test_binding, flush),
        cmocka_unit_test_setup(test_binding_retro, flush),
        cmocka_unit_test_setup(test_revoke, flush),
        cmocka_unit_test_setup(test_refusal_leaves_no_event, flush),
        cmocka_unit_test_setup(test_bad_input_leaves_store, flush),
        cmocka_unit_test_setup(test_storage_down, flush),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_too_many_ids),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
