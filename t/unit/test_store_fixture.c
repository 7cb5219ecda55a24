/* See test_store_fixture.h. */
#include "test_store_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mdm_sync.h"
#include "store_fixture.h"

redis_fixture_t fx;
redisContext *rc;
sim_device_t dev1, dev2, expired, stranger;
char pki[512];
char logbuf[4096];

void
log_sink(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(logbuf, sizeof(logbuf), "%s %s", id, msg);
}

mdm_conf_t *
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

int
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

int
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

int
flush(void **state)
{
    redisReply *r = redisCommand(rc, "FLUSHALL");

    (void) state;
    freeReplyObject(r);
    logbuf[0] = '\0';
    return 0;
}

/* ---- helpers ---- */

int
send_msg(const mdm_conf_t *c, mdm_endpoint_t ep, const sim_device_t *d,
         sim_resp_t *out, const char *body, size_t len)
{
    return sim_send(rc, c, ep, d, body, len, out);
}

void
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

mdm_req_t *
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

int
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

void
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
int
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

void
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

redisReply *
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

long long
cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

    freeReplyObject(r);
    return v;
}

char *
hget(const char *key, const char *field)
{
    redisReply *r = cmd("HGET %s %s", key, field);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

char *
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
