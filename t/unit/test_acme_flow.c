/*
 * ACME transactions against a real redis-server: new-nonce, new-account,
 * new-order, the device-attest-01 answer (wrong freshness code, wrong
 * serial, wrong root: refused and nothing stored; then the right one),
 * finalize with the SCEP CA of the test PKI, the certificate. Every POST
 * is one script round trip (finalize two).
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
#include <jansson.h>
#include <openssl/pem.h>

#include "mdm.h"
#include "mdm_acme.h"
#include "mdm_sync.h"
#include "redis_fixture.h"
#include "test_acme_fixture.h"

#define URL    "https://mdm.example.com/acme"
#define SERIAL "C02TESTSERIAL"
#define UDID   "00008030-0011223344556677"

static redis_fixture_t fx;
static redisContext *rc;
static att_pki_t apple, stranger;
static mdm_conf_t *conf;
static char root_file[300];
static char logbuf[8192];

static void
log_sink(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    size_t n = strlen(logbuf);

    (void) data;
    (void) level;
    snprintf(logbuf + n, sizeof(logbuf) - n, "%s %s\n", id, msg);
}

typedef struct {
    int status;
    char ctype[64];
    char body[8192];
    char nonce[64];
    char location[1024];
    int rounds;
} resp_t;

static void
run(const char *method, const char *path, const char *ctype, const char *body,
    resp_t *out)
{
    mdm_req_t *r = mdm_req_new_acme_http(
        conf, method, strlen(method), path, strlen(path),
        (const unsigned char *) body, body ? strlen(body) : 0);
    const mdm_response_t *resp;
    mdm_step_t st;
    size_t i;

    assert_non_null(r);
    memset(out, 0, sizeof(*out));
    mdm_req_set_logger(r, log_sink, NULL);
    if (ctype) {
        mdm_req_set_content_type(r, ctype, strlen(ctype));
    }
    for (st = mdm_req_start(r); st == MDM_STEP_REDIS;) {
        const mdm_plan_t *p = mdm_req_plan(r);
        redisReply *rep;

        out->rounds++;
        assert_int_equal(p->nreplies, 1);
        rep = redisCommandArgv(rc, p->cmds[0].argc, p->cmds[0].argv,
                               p->cmds[0].argvlen);
        st = mdm_req_feed(r, &rep, 1);
        freeReplyObject(rep);
    }
    resp = mdm_req_response(r);
    out->status = resp->status;
    snprintf(out->ctype, sizeof(out->ctype), "%s",
             resp->content_type ? resp->content_type : "");
    snprintf(out->body, sizeof(out->body), "%.*s", (int) resp->body_len,
             (const char *) resp->body);
    for (i = 0; i < resp->nhdrs; i++) {
        if (strcmp(resp->hdr_names[i], "Replay-Nonce") == 0) {
            snprintf(out->nonce, sizeof(out->nonce), "%s", resp->hdr_values[i]);
        }
        if (strcmp(resp->hdr_names[i], "Location") == 0) {
            snprintf(out->location, sizeof(out->location), "%s",
                     resp->hdr_values[i]);
        }
    }
    mdm_req_free(r);
}

static char nonce[64];

static void
fresh_nonce(void)
{
    resp_t r;

    run("HEAD", "/new-nonce", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.rounds, 1);
    snprintf(nonce, sizeof(nonce), "%s", r.nonce);
}

/* POST a signed payload to path; the answer's nonce is kept. */
static void
post(EVP_PKEY *key, const char *kid, const char *path, const char *payload,
     resp_t *out)
{
    char url[1200];
    char *b;

    snprintf(url, sizeof(url), "%s%s", URL, path);
    b = jws_sign(key, "ES256", nonce, url, kid, payload);
    run("POST", path, "application/jose+json", b, out);
    free(b);
    if (out->nonce[0]) {
        snprintf(nonce, sizeof(nonce), "%s", out->nonce);
    } else {
        fresh_nonce();
    }
}

/* Every key under the ACME prefix but the nonces, with its fields. */
static char *
snapshot(void)
{
    redisReply *keys = redisCommand(rc, "KEYS t:{acme}:*");
    json_t *all = json_object();
    size_t i, k;
    char *s;

    for (i = 0; i < keys->elements; i++) {
        const char *name = keys->element[i]->str;
        redisReply *h;
        json_t *o;

        if (strstr(name, ":nonce:")) {
            continue;
        }
        h = redisCommand(rc, "HGETALL %s", name);
        o = json_object();
        for (k = 0; k + 1 < h->elements; k += 2) {
            json_object_set_new(o, h->element[k]->str,
                                json_string(h->element[k + 1]->str));
        }
        json_object_set_new(all, name, o);
        freeReplyObject(h);
    }
    freeReplyObject(keys);
    s = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(all);
    return s;
}

static const char *
jstr(const char *body, const char *path0, const char *path1, size_t idx)
{
    static char out[1024];
    json_t *j = json_loads(body, 0, NULL), *v;

    out[0] = '\0';
    v = json_object_get(j, path0);
    if (path1) {
        v = json_is_array(v) ? json_array_get(v, idx) : v;
        v = json_object_get(v, path1);
    } else if (json_is_array(v)) {
        v = json_array_get(v, idx);
    }
    if (json_is_string(v)) {
        snprintf(out, sizeof(out), "%s", json_string_value(v));
    }
    json_decref(j);
    return out;
}

static void
chall(EVP_PKEY *acct, const char *kid, const char *cpath, const att_pki_t *p,
      EVP_PKEY *dev, const char *token, const char *serial, resp_t *out)
{
    unsigned char md[32], *obj;
    size_t len;
    char *b64, *payload;

    sha256_str(token, md);
    assert_int_equal(att_obj(p, dev, md, 32, serial, UDID, &obj, &len), 0);
    b64 = mdm_b64url(obj, len);
    assert_true(asprintf(&payload, "{\"attObj\":\"%s\"}", b64) > 0);
    post(acct, kid, cpath, payload, out);
    free(payload);
    free(b64);
    free(obj);
}

static void
test_flow(void **state)
{
    EVP_PKEY *acct = key_ec(), *dev = key_ec(), *other = key_ec();
    resp_t r;
    char kid[1024], order[1024], authz[1024], cpath[1024], fin[1024];
    char token[128], *before, *after;
    unsigned char *der;
    size_t dlen;
    char *b64, *payload;

    (void) state;
    run("GET", "/directory", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "newNonce", NULL, 0), URL "/new-nonce");
    fresh_nonce();

    post(acct, NULL, "/new-account", "{\"termsOfServiceAgreed\":true}", &r);
    assert_int_equal(r.status, 201);
    /* 2 when the script is not loaded yet (NOSCRIPT, then EVAL) */
    assert_in_range(r.rounds, 1, 2);
    snprintf(kid, sizeof(kid), "%s", r.location);
    assert_int_equal(strncmp(kid, URL "/acct/", strlen(URL "/acct/")), 0);
    /* again: the same account, 200 */
    post(acct, NULL, "/new-account", "{}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.location, kid);

    post(acct, kid, "/new-order",
         "{\"identifiers\":[{\"type\":\"permanent-identifier\","
         "\"value\":\"" SERIAL "\"}]}",
         &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.rounds, 1);
    snprintf(order, sizeof(order), "%s", r.location + strlen(URL));
    snprintf(authz, sizeof(authz), "%s",
             jstr(r.body, "authorizations", NULL, 0) + strlen(URL));
    snprintf(fin, sizeof(fin), "%s",
             jstr(r.body, "finalize", NULL, 0) + strlen(URL));
    post(acct, kid, authz, "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "challenges", "type", 0),
                        "device-attest-01");
    snprintf(token, sizeof(token), "%s",
             jstr(r.body, "challenges", "token", 0));
    snprintf(cpath, sizeof(cpath), "%s",
             jstr(r.body, "challenges", "url", 0) + strlen(URL));

    /* refusals: nothing stored */
    before = snapshot();
    logbuf[0] = '\0';
    chall(acct, kid, cpath, &apple, dev, "another token", SERIAL, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.ctype, "application/problem+json");
    assert_non_null(strstr(r.body, "badAttestationStatement"));
    assert_non_null(strstr(logbuf, "MDM15022"));
    chall(acct, kid, cpath, &apple, dev, token, "C02WRONG", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(logbuf, "MDM15023"));
    chall(acct, kid, cpath, &stranger, dev, token, SERIAL, &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.rounds, 0);
    assert_non_null(strstr(logbuf, "MDM15021"));
    after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* finalize before the challenge: not ready */
    assert_int_equal(csr_der(dev, "ACME device", &der, &dlen), 0);
    b64 = mdm_b64url(der, dlen);
    OPENSSL_free(der);
    assert_true(asprintf(&payload, "{\"csr\":\"%s\"}", b64) > 0);
    post(acct, kid, fin, payload, &r);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "orderNotReady"));

    /* another account may not answer */
    {
        char kid2[1024];

        post(other, NULL, "/new-account", "{}", &r);
        snprintf(kid2, sizeof(kid2), "%s", r.location);
        chall(other, kid2, cpath, &apple, dev, token, SERIAL, &r);
        assert_int_equal(r.status, 403);
        assert_non_null(strstr(r.body, "unauthorized"));
    }

    /* the right attestation */
    chall(acct, kid, cpath, &apple, dev, token, SERIAL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.rounds, 1);
    assert_string_equal(jstr(r.body, "status", NULL, 0), "valid");
    post(acct, kid, order, "", &r);
    assert_string_equal(jstr(r.body, "status", NULL, 0), "ready");

    post(acct, kid, fin, payload, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.rounds, 2);
    assert_string_equal(jstr(r.body, "status", NULL, 0), "valid");
    {
        char cert[1024];
        BIO *bio;
        X509 *x;

        snprintf(cert, sizeof(cert), "%s",
                 jstr(r.body, "certificate", NULL, 0) + strlen(URL));
        post(acct, kid, cert, "", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, "application/pem-certificate-chain");
        bio = BIO_new_mem_buf(r.body, -1);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        assert_non_null(x);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), dev), 1);
        X509_free(x);
        BIO_free(bio);
    }
    /* finalize twice: the order is valid, not ready */
    post(acct, kid, fin, payload, &r);
    assert_int_equal(r.status, 403);
    free(payload);
    free(b64);
    EVP_PKEY_free(acct);
    EVP_PKEY_free(dev);
    EVP_PKEY_free(other);
}

static void
test_nonce_once(void **state)
{
    EVP_PKEY *acct = key_ec();
    resp_t r;
    char used[64], *b;

    (void) state;
    fresh_nonce();
    snprintf(used, sizeof(used), "%s", nonce);
    post(acct, NULL, "/new-account", "{}", &r);
    assert_int_equal(r.status, 201);
    /* the same nonce again: badNonce, with a fresh one */
    b = jws_sign(acct, "ES256", used, URL "/new-account", NULL, "{}");
    run("POST", "/new-account", "application/jose+json", b, &r);
    free(b);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "badNonce"));
    assert_true(r.nonce[0] != '\0');
    /* a url that is not this resource */
    snprintf(nonce, sizeof(nonce), "%s", r.nonce);
    b = jws_sign(acct, "ES256", nonce, URL "/new-order", NULL, "{}");
    run("POST", "/new-account", "application/jose+json", b, &r);
    free(b);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "unauthorized"));
    /* wrong method, unknown resource, wrong content type */
    run("GET", "/new-account", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    run("GET", "/nothing", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    run("POST", "/new-order", "application/json", "{}", &r);
    assert_int_equal(r.status, 415);
    EVP_PKEY_free(acct);
}

static int
setup(void **state)
{
    const char *pki = getenv("MDM_TEST_PKI");
    char err[512], v[600];

    (void) state;
    if (pki == NULL) {
        fprintf(stderr, "MDM_TEST_PKI is not set\n");
        return -1;
    }
    if (att_pki_new(&apple, "Test Attestation") ||
        att_pki_new(&stranger, "Stranger")) {
        return -1;
    }
    snprintf(root_file, sizeof(root_file), "%s/acme-root-%d.pem",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int) getpid());
    if (att_pki_write_root(&apple, root_file) != 0 ||
        redis_fixture_start(&fx) != 0) {
        return -1;
    }
    rc = redis_fixture_connect(&fx);
    conf = mdm_conf_new();
#define SET(n, val)                                                            \
    if (mdm_conf_set(conf, n, val, err, sizeof(err)) != 0) {                   \
        fprintf(stderr, "%s: %s\n", n, err);                                   \
        return -1;                                                             \
    }
    SET("prefix", "t:");
    SET("identity", "none");
    SET("binding", "off");
    snprintf(v, sizeof(v), "%s/scep-ca.pem", pki);
    SET("scep.ca_cert", v);
    snprintf(v, sizeof(v), "%s/scep-ca.key", pki);
    SET("scep.ca_key", v);
    SET("scep.challenge", "none");
    SET("acme.url", URL "/");
    SET("acme.attest_ca", root_file);
#undef SET
    if (mdm_conf_finish(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "finish: %s\n", err);
        return -1;
    }
    return rc && mdm_conf_can(conf, MDM_CAN_ACME) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    mdm_conf_free(conf);
    att_pki_free(&apple);
    att_pki_free(&stranger);
    unlink(root_file);
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&fx);
    return 0;
}

static void
test_conf_errors(void **state)
{
    mdm_conf_t *c = mdm_conf_new();
    char err[512];

    (void) state;
    assert_int_equal(mdm_conf_set(c, "identity", "none", err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_set(c, "binding", "off", err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_set(c, "acme.url", "ftp://x", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "acme.url"));
    assert_int_equal(mdm_conf_set(c, "acme.order_ttl", "5", err, sizeof(err)),
                     -1);
    assert_int_equal(mdm_conf_set(c, "acme.nope", "5", err, sizeof(err)), -1);
    assert_int_equal(
        mdm_conf_set(c, "acme.url", "https://a.example/acme", err, sizeof(err)),
        0);
    assert_int_equal(
        mdm_conf_set(c, "acme.attest_ca", "/nonexistent", err, sizeof(err)), 0);
    assert_int_equal(mdm_conf_finish(c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "acme.attest_ca"));
    mdm_conf_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_nonce_once),
        cmocka_unit_test(test_conf_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
