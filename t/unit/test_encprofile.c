/*
 * Per-device encrypted profiles: the builder (mdm_profile_enc.c) checked
 * with openssl cms -verify / -decrypt and the test PKI's device key, and
 * POST /profiles/encrypted/ID (mdm_encprofile.c) on a real redis-server:
 * refusals store nothing, the queued InstallProfile decrypts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis.h>
#include <openssl/pem.h>

#include "mdm_profile_enc.h"
#include "mdm_sync.h"
#include "redis_fixture.h"
#include "sim.h"
#include "store_fixture.h"

#define TOPIC "com.apple.mgmt.External.0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

static char pki[512], dir[64];
static redis_fixture_t fx;
static redisContext *rc;
static sim_device_t dev1, devec;
static char logbuf[1024];

static const char payload_json[] =
    "{\"PayloadDisplayName\": \"Secret Wi-Fi\","
    " \"PayloadIdentifier\": \"com.example.wifi\","
    " \"PayloadContent\": [{\"PayloadType\": \"com.apple.wifi.managed\","
    " \"SSID_STR\": \"corp\", \"Password\": \"s3cr3t-pw\","
    " \"Blob\": {\"$data\": \"AAEC\"}}]}";

static void
log_sink(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(logbuf, sizeof(logbuf), "%s %s", id, msg);
}

static char *
path(const char *name)
{
    static char buf[4][700];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", name[0] == '@' ? dir : pki,
             name + (name[0] == '@'));
    return buf[i];
}

static int
group_setup(void **state)
{
    const char *p = getenv("MDM_TEST_PKI");

    (void) state;
    if (p == NULL) {
        return -1;
    }
    snprintf(pki, sizeof(pki), "%s", p);
    snprintf(dir, sizeof(dir), "/tmp/mdm-encprofile.XXXXXX");
    if (mkdtemp(dir) == NULL || redis_fixture_start(&fx) != 0) {
        return -1;
    }
    rc = redis_fixture_connect(&fx);
    store_fixture_load(&dev1, pki, "dev1");
    store_fixture_load(&devec, pki, "devec");
    return rc ? 0 : -1;
}

static int
group_teardown(void **state)
{
    char cmd[128];

    (void) state;
    sim_device_free(&dev1);
    sim_device_free(&devec);
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&fx);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static plist_t
read_plist(const char *p)
{
    static char buf[65536];
    plist_t root = NULL;
    FILE *f = fopen(p, "rb");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    plist_from_memory(buf, (uint32_t) n, &root);
    assert_non_null(root);
    return root;
}

static void
run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fail_msg("failed: %s", cmd);
    }
}

/* The profile bytes (signed or not) -> the decrypted payload array, after
 * checking the signature with openssl and decrypting with the device key. */
static plist_t
open_profile(const unsigned char *b, size_t n, int is_signed, const char *dev)
{
    plist_t outer, epc, inner;
    const char *data;
    uint64_t len = 0;

    write_file(path("@profile"), b, n);
    assert_null(memmem(b, n, "s3cr3t-pw", 9)); /* never in clear */
    if (is_signed) {
        run("openssl cms -verify -binary -inform DER -in %s -CAfile %s "
            "-purpose any -out %s 2>/dev/null",
            path("@profile"), path("cafile.pem"), path("@outer.xml"));
    } else {
        assert_memory_equal(b, "<?xml", 5);
        run("cp %s %s", path("@profile"), path("@outer.xml"));
    }
    outer = read_plist(path("@outer.xml"));
    assert_null(plist_dict_get_item(outer, "PayloadContent"));
    assert_string_equal(
        plist_get_string_ptr(plist_dict_get_item(outer, "PayloadType"), NULL),
        "Configuration");
    epc = plist_dict_get_item(outer, "EncryptedPayloadContent");
    assert_non_null(epc);
    data = plist_get_data_ptr(epc, &len);
    write_file(path("@epc.der"), data, len);
    plist_free(outer);
    run("openssl cms -decrypt -binary -inform DER -in %s -recip %s/%s.pem "
        "-inkey %s/%s.key -out %s",
        path("@epc.der"), pki, dev, pki, dev, path("@inner.xml"));
    /* the cipher: AES-256-CBC */
    run("openssl cms -cmsout -print -inform DER -in %s | grep -q aes-256-cbc",
        path("@epc.der"));
    inner = read_plist(path("@inner.xml"));
    assert_int_equal(plist_get_node_type(inner), PLIST_ARRAY);
    return inner;
}

static void
check_inner(plist_t inner)
{
    plist_t p = plist_array_get_item(inner, 0);
    uint64_t n = 0;

    assert_int_equal(plist_array_get_size(inner), 1);
    assert_string_equal(
        plist_get_string_ptr(plist_dict_get_item(p, "Password"), NULL),
        "s3cr3t-pw");
    assert_string_equal(
        plist_get_string_ptr(plist_dict_get_item(p, "PayloadType"), NULL),
        "com.apple.wifi.managed");
    assert_non_null(plist_dict_get_item(p, "PayloadUUID"));
    assert_string_equal(
        plist_get_string_ptr(plist_dict_get_item(p, "PayloadIdentifier"), NULL),
        "com.example.wifi.payload1");
    assert_memory_equal(plist_get_data_ptr(plist_dict_get_item(p, "Blob"), &n),
                        "\0\1\2", 3);
    assert_int_equal(n, 3);
}

static mdm_profile_conf_t *
signer_conf(void)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    char err[512];

    assert_int_equal(mdm_profile_conf_set(p, "server_url",
                                          "https://mdm.example.com/mdm", err,
                                          sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "topic", TOPIC, err, sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "scep_url",
                                          "https://mdm.example.com/scep", err,
                                          sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "scep_ca", path("scep-ca.pem"),
                                          err, sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "sign_cert",
                                          path("signer-chain.pem"), err,
                                          sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "sign_key", path("signer.key"),
                                          err, sizeof(err)),
                     0);
    if (mdm_profile_conf_finish(p, err, sizeof(err)) != 0) {
        fail_msg("profile conf: %s", err);
    }
    return p;
}

static plist_t
body_of(const char *s)
{
    const char *why = NULL;
    plist_t b = mdm_admin_body_dict((const unsigned char *) s, strlen(s), &why);

    assert_non_null(b);
    return b;
}

/* ---- the builder ---- */

static void
test_prepare_refusals(void **state)
{
    static const char *const bad[] = {
        "{\"PayloadDisplayName\": \"x\"}",
        "{\"PayloadContent\": []}",
        "{\"PayloadContent\": \"text\"}",
        "{\"PayloadContent\": [\"text\"]}",
        "{\"PayloadContent\": [{\"SSID_STR\": \"x\"}]}",
        "{\"PayloadContent\": [{\"PayloadType\": 5}]}",
        "{\"PayloadType\": \"Other\", \"PayloadContent\": [{\"PayloadType\": "
        "\"a\"}]}",
        "{\"PayloadIdentifier\": \"bad id\", \"PayloadContent\": "
        "[{\"PayloadType\": \"a\"}]}",
        "{\"EncryptedPayloadContent\": {\"$data\": \"AA==\"}}",
    };
    mdm_encprof_t e;
    char why[256];
    size_t i;
    plist_t b;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = body_of(bad[i]);
        why[0] = '\0';
        if (mdm_encprof_prepare(&e, b, why, sizeof(why)) == 0) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_true(why[0] != '\0');
        assert_null(e.outer);
        plist_free(b);
    }
    assert_int_equal(mdm_encprof_prepare(&e, NULL, why, sizeof(why)), -1);
}

static void
test_build_openssl(void **state)
{
    mdm_profile_conf_t *signer = signer_conf();
    mdm_encprof_t e;
    unsigned char *out = NULL;
    size_t len = 0;
    char why[256];
    plist_t b = body_of(payload_json), inner;

    (void) state;
    assert_int_equal(mdm_encprof_prepare(&e, b, why, sizeof(why)), 0);
    assert_string_equal(e.identifier, "com.example.wifi");
    assert_int_equal(strlen(e.uuid), 36);
    /* signed */
    assert_true(mdm_encprof_can_sign(signer));
    assert_int_equal(
        mdm_encprof_build(&e, dev1.cert, signer, &out, &len, why, sizeof(why)),
        0);
    inner = open_profile(out, len, 1, "dev1");
    check_inner(inner);
    plist_free(inner);
    free(out);
    /* unsigned */
    assert_int_equal(
        mdm_encprof_build(&e, dev1.cert, NULL, &out, &len, why, sizeof(why)),
        0);
    inner = open_profile(out, len, 0, "dev1");
    check_inner(inner);
    plist_free(inner);
    free(out);
    /* an EC device key: no RSA key transport */
    out = NULL;
    assert_int_equal(
        mdm_encprof_build(&e, devec.cert, NULL, &out, &len, why, sizeof(why)),
        -1);
    assert_null(out);
    assert_non_null(strstr(why, "not RSA"));
    mdm_encprof_clear(&e);
    plist_free(b);
    mdm_profile_conf_free(signer);
}

static void
test_single_payload(void **state)
{
    mdm_encprof_t e;
    char why[256];
    plist_t b = body_of("{\"PayloadType\": \"com.apple.wifi.managed\", "
                        "\"PayloadIdentifier\": \"com.example.w\"}"),
            p;

    (void) state;
    assert_int_equal(mdm_encprof_prepare(&e, b, why, sizeof(why)), 0);
    assert_string_equal(e.identifier, "com.example.w.profile");
    assert_int_equal(plist_array_get_size(e.content), 1);
    p = plist_array_get_item(e.content, 0);
    assert_string_equal(
        plist_get_string_ptr(plist_dict_get_item(p, "PayloadIdentifier"), NULL),
        "com.example.w");
    assert_non_null(plist_dict_get_item(p, "PayloadVersion"));
    mdm_encprof_clear(&e);
    plist_free(b);
}

/* ---- POST /profiles/encrypted/ID on redis ---- */

static mdm_conf_t *
make_conf(const char *binding, int with_signer)
{
    mdm_conf_t *c = mdm_conf_new();
    char err[512];

    assert_int_equal(mdm_conf_set(c, "prefix", "t:", err, sizeof(err)), 0);
    assert_int_equal(
        mdm_conf_set(c, "ca_file", path("cafile.pem"), err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_set(c, "topic", TOPIC, err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_set(c, "binding", binding, err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_set(c, "store_der", "on", err, sizeof(err)), 0);
    if (with_signer) {
        assert_int_equal(mdm_conf_set(c, "profile.server_url",
                                      "https://mdm.example.com/mdm", err,
                                      sizeof(err)),
                         0);
        assert_int_equal(
            mdm_conf_set(c, "profile.topic", TOPIC, err, sizeof(err)), 0);
        assert_int_equal(mdm_conf_set(c, "profile.scep_url",
                                      "https://mdm.example.com/scep", err,
                                      sizeof(err)),
                         0);
        assert_int_equal(mdm_conf_set(c, "profile.scep_ca", path("scep-ca.pem"),
                                      err, sizeof(err)),
                         0);
        assert_int_equal(mdm_conf_set(c, "profile.sign_cert",
                                      path("signer-chain.pem"), err,
                                      sizeof(err)),
                         0);
        assert_int_equal(mdm_conf_set(c, "profile.sign_key", path("signer.key"),
                                      err, sizeof(err)),
                         0);
    }
    if (mdm_conf_finish(c, err, sizeof(err)) != 0) {
        fail_msg("conf: %s", err);
    }
    return c;
}

static int
post(const mdm_conf_t *c, const char *id, const char *query, const char *body,
     char *out, size_t outlen)
{
    char p[300];
    mdm_req_t *r;
    const mdm_response_t *resp;
    int status;

    snprintf(p, sizeof(p), "/profiles/encrypted/%s", id);
    r = mdm_req_new_admin_http(
        c, "POST", 4, p, strlen(p), query, query ? strlen(query) : 0,
        (const unsigned char *) body, body ? strlen(body) : 0);
    assert_non_null(r);
    mdm_req_set_logger(r, log_sink, NULL);
    logbuf[0] = '\0';
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        mdm_exec_sync(rc, r);
    }
    resp = mdm_req_response(r);
    status = resp->status;
    snprintf(out, outlen, "%.*s", (int) resp->body_len,
             (const char *) resp->body);
    mdm_req_free(r);
    return status;
}

static long long
dbsize(void)
{
    redisReply *x = redisCommand(rc, "DBSIZE");
    long long n = x ? x->integer : -1;

    freeReplyObject(x);
    return n;
}

static long long
xlen(const char *key)
{
    redisReply *x = redisCommand(rc, "XLEN %s", key);
    long long n = x ? x->integer : -1;

    freeReplyObject(x);
    return n;
}

static void
send_checkin(const mdm_conf_t *c, const sim_device_t *d, const char *type,
             const char *udid, sim_resp_t *r)
{
    size_t len;
    char *b;

    if (strcmp(type, "Idle") == 0) {
        b = sim_plist(&len, "Status", "Idle", "UDID", udid, NULL);
        sim_send(rc, c, MDM_EP_COMMAND, d, b, len, r);
    } else if (strcmp(type, "Authenticate") == 0) {
        b = sim_plist(&len, "MessageType", type, "UDID", udid, "Topic", TOPIC,
                      NULL);
        sim_send(rc, c, MDM_EP_CHECKIN, d, b, len, r);
    } else {
        b = sim_plist(&len, "MessageType", type, "UDID", udid, "Topic", TOPIC,
                      "Token", "tok", "PushMagic", "M", NULL);
        sim_send(rc, c, MDM_EP_CHECKIN, d, b, len, r);
    }
    free(b);
}

static void
enroll(const mdm_conf_t *c, const sim_device_t *d, const char *udid)
{
    sim_resp_t r;

    send_checkin(c, d, "Authenticate", udid, &r);
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
    send_checkin(c, d, "TokenUpdate", udid, &r);
    assert_int_equal(r.status, 200);
    sim_resp_free(&r);
}

static void
test_admin_flow(void **state)
{
    mdm_conf_t *c = make_conf("strict", 1), *off = make_conf("off", 0);
    char out[4096];
    long long n;
    sim_resp_t r;
    plist_t cmd = NULL, inner;
    const char *data;
    uint64_t len = 0;
    redisReply *x;

    (void) state;
    x = redisCommand(rc, "FLUSHALL");
    freeReplyObject(x);
    /* unknown enrollment */
    assert_int_equal(post(c, "U1", NULL, payload_json, out, sizeof(out)), 404);
    assert_non_null(strstr(out, "MDM05061"));
    assert_int_equal(dbsize(), 0);
    /* enrolled without binding: no certificate known */
    enroll(off, &dev1, "U0");
    n = dbsize();
    assert_int_equal(post(c, "U0", NULL, payload_json, out, sizeof(out)), 409);
    assert_non_null(strstr(out, "MDM05062"));
    assert_int_equal(dbsize(), n);
    /* bound, with its DER */
    enroll(c, &dev1, "U1");
    n = dbsize();
    assert_int_equal(post(c, "U1", NULL, "not a plist", out, sizeof(out)), 400);
    assert_non_null(strstr(out, "MDM05060"));
    assert_int_equal(
        post(c, "U1", NULL, "{\"PayloadContent\": 1}", out, sizeof(out)), 400);
    assert_non_null(strstr(out, "MDM05060"));
    assert_int_equal(post(c, "U1", NULL, NULL, out, sizeof(out)), 400);
    assert_int_equal(post(c, "bad id", NULL, payload_json, out, sizeof(out)),
                     400);
    assert_int_equal(dbsize(), n);
    assert_int_equal(xlen("t:push"), 0);

    assert_int_equal(post(c, "U1", NULL, payload_json, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"signed\":true"));
    assert_non_null(strstr(out, "\"pushed\":true"));
    assert_non_null(strstr(logbuf, "MDM05065"));
    assert_int_equal(xlen("t:push"), 1);

    /* the device's next Idle gets it */
    send_checkin(c, &dev1, "Idle", "U1", &r);
    assert_int_equal(r.status, 200);
    plist_from_memory(r.body, (uint32_t) r.body_len, &cmd);
    sim_resp_free(&r);
    assert_non_null(cmd);
    assert_string_equal(
        plist_get_string_ptr(
            plist_access_path(cmd, 2, "Command", "RequestType"), NULL),
        "InstallProfile");
    data = plist_get_data_ptr(plist_access_path(cmd, 2, "Command", "Payload"),
                              &len);
    inner = open_profile((const unsigned char *) data, len, 1, "dev1");
    check_inner(inner);
    plist_free(inner);
    plist_free(cmd);

    /* unsigned on request, no push */
    assert_int_equal(
        post(c, "U1", "unsigned=1&nopush=1", payload_json, out, sizeof(out)),
        200);
    assert_non_null(strstr(out, "\"signed\":false"));
    assert_non_null(strstr(out, "\"pushed\":false"));
    assert_int_equal(xlen("t:push"), 1);

    /* an EC identity: 409, nothing stored */
    enroll(c, &devec, "U2");
    n = dbsize();
    assert_int_equal(post(c, "U2", NULL, payload_json, out, sizeof(out)), 409);
    assert_non_null(strstr(out, "MDM05063"));
    assert_int_equal(dbsize(), n);

    /* revoked: the DER goes with the binding */
    x = redisCommand(rc, "EXISTS t:{U1}:der");
    assert_int_equal(x->integer, 1);
    freeReplyObject(x);
    {
        mdm_admin_args_t a;
        const char *ids[1] = {"U1"};
        mdm_req_t *q;

        memset(&a, 0, sizeof(a));
        a.op = MDM_ADMIN_REVOKE;
        a.ids = ids;
        a.nids = 1;
        q = mdm_req_new_admin(c, &a);
        mdm_req_set_logger(q, log_sink, NULL);
        if (mdm_req_start(q) == MDM_STEP_REDIS) {
            mdm_exec_sync(rc, q);
        }
        assert_int_equal(mdm_req_response(q)->status, 200);
        mdm_req_free(q);
    }
    x = redisCommand(rc, "EXISTS t:{U1}:der");
    assert_int_equal(x->integer, 0);
    freeReplyObject(x);
    assert_int_equal(post(c, "U1", NULL, payload_json, out, sizeof(out)), 409);
    assert_non_null(strstr(out, "MDM05062"));
    mdm_conf_free(c);
    mdm_conf_free(off);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepare_refusals),
        cmocka_unit_test(test_build_openssl),
        cmocka_unit_test(test_single_payload),
        cmocka_unit_test(test_admin_flow),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
