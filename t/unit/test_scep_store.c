/*
 * The SCEP CA against a private redis-server (t/unit/redis_fixture.c),
 * run by the blocking runner (tools/mdm_sync.h): one-time challenges,
 * issuing and what is recorded, CertPoll and GetCert, revocation and the
 * renewal it refuses, static mode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/pkcs7.h>

#include "mdm_sync.h"
#include "redis_fixture.h"
#include "test_scep.h"

static redis_fixture_t fx;
static redisContext *rc;

static int
store_setup(void **state)
{
    (void) state;
    if (redis_fixture_start(&fx) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return -1;
    }
    rc = redis_fixture_connect(&fx);
    /* the transaction's record is read from Redis, not made up */
    post_autocheck = 0;
    return rc ? 0 : -1;
}

static int
store_teardown(void **state)
{
    (void) state;
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&fx);
    post_autocheck = 1;
    return 0;
}

static long long
redis_int(const char *fmt, const char *arg)
{
    redisReply *x = redisCommand(rc, fmt, arg);
    long long v;

    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_INTEGER);
    v = x->integer;
    freeReplyObject(x);
    return v;
}

static char *
redis_str(const char *fmt, const char *a, const char *b)
{
    redisReply *x = redisCommand(rc, fmt, a, b);
    char *s = NULL;

    assert_non_null(x);
    if (x->type == REDIS_REPLY_STRING) {
        /* binary-safe: DER values contain NUL bytes */
        s = malloc(x->len + 1);
        memcpy(s, x->str, x->len);
        s[x->len] = '\0';
    }
    freeReplyObject(x);
    return s;
}

static mdm_scep_req_t *
run(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len)
{
    mdm_step_t step;
    mdm_scep_req_t *r = post(ca, m, len, T_GEN, &step);

    if (step == MDM_STEP_REDIS) {
        mdm_scep_exec_sync(rc, r);
    }
    return r;
}

static mdm_scep_req_t *
admin(const mdm_scep_ca_t *ca, mdm_scep_admin_op_t op, const char *arg,
      long ttl)
{
    mdm_scep_req_t *r = mdm_scep_req_new_admin(ca, op, arg, ttl);

    mdm_scep_req_set_logger(r, log_sink, NULL);
    /* the sample CA is valid then: an approval signs */
    mdm_scep_req_set_time(r, T_GEN);
    log_reset();
    if (mdm_scep_req_start(r) == MDM_STEP_REDIS) {
        mdm_scep_exec_sync(rc, r);
    }
    return r;
}

static void
test_store_dynamic(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *st = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_req_t *r;
    X509 *signer, *signer2;
    size_t len, len2, clen;
    unsigned char *m, *m2, *ias;
    certrep_t cr;
    char key[256], serial[64], chal[64], *s;
    const char *c;
    req_opts_t o = {0};
    long long dbsize;

    (void) state;
    freeReplyObject(redisCommand(rc, "FLUSHALL"));

    /* a generated one-time challenge */
    r = admin(ca, MDM_SCEP_ADMIN_CHALLENGE, NULL, 120);
    assert_int_equal(mdm_scep_req_response(r)->status, 201);
    assert_string_equal(last_id, "MDM08031");
    s = strndup((const char *) mdm_scep_req_response(r)->body,
                mdm_scep_req_response(r)->body_len);
    mdm_scep_req_free(r);
    c = strstr(s, "\"challenge\":\"") + 13;
    snprintf(chal, sizeof(chal), "%.*s", (int) strcspn(c, "\""), c);
    free(s);
    assert_int_equal(strlen(chal), 32);
    /* the same one again: 409 */
    r = admin(ca, MDM_SCEP_ADMIN_CHALLENGE, chal, 120);
    assert_int_equal(mdm_scep_req_response(r)->status, 409);
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("DBSIZE", NULL), 1);

    m = pkcsreq(chal, NULL, NULL, &signer, &len);
    /* the script is not loaded yet: NOSCRIPT, then EVAL */
    r = run(ca, m, len);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    snprintf(serial, sizeof(serial), "%s",
             mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
    mdm_scep_req_free(r);
    /* recorded: serial, subject, SHA-256, notAfter, the DER */
    snprintf(key, sizeof(key), "t:{scep}:cert:%s", serial);
    s = redis_str("HGET %s %s", key, "subject");
    assert_string_equal(s, "CN=device-0001");
    free(s);
    s = redis_str("HGET %s %s", key, "sha256");
    assert_int_equal(strlen(s), 64);
    free(s);
    s = redis_str("HGET %s %s", key, "kind");
    assert_string_equal(s, "PKCSReq");
    free(s);
    s = redis_str("HGET %s %s", key, "not_after");
    assert_true(atoll(s) > (long long) T_GEN);
    free(s);
    s = redis_str("ZSCORE %s %s", "t:{scep}:issued", serial);
    assert_non_null(s);
    free(s);
    assert_true(redis_int("TTL %s", "t:{scep}:txn:TXID-0001") > 0);
    X509_free(cr.issued);

    /* the challenge is spent: a second request with it gets nothing and
     * leaves nothing */
    dbsize = redis_int("DBSIZE", NULL);
    m2 = pkcsreq_tx(chal, "device-0002", "TXID-0002", NULL, &signer2, &len2);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "TXID-0002", test_nonce, 16, signer2,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08017");
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("DBSIZE", NULL), dbsize);
    free(m2);
    X509_free(signer2);

    /* CertPoll for that transaction: the same certificate */
    o.signer = signer;
    o.signer_key = dev_key;
    o.msg_type = "20";
    o.content = (const unsigned char *) "\x30\x00";
    o.content_len = 2;
    m2 = make_pkimsg(&o, &len2);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL), serial);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m2);

    /* GetCert by serial */
    {
        BIGNUM *bn = NULL;

        BN_hex2bn(&bn, serial);
        ias = issuer_and_serial(sample_ca, 1, &clen);
        {
            PKCS7_ISSUER_AND_SERIAL *x;
            const unsigned char *p = ias;
            unsigned char *der = NULL;
            int n;

            x = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long) clen);
            BN_to_ASN1_INTEGER(bn, x->serial);
            free(ias);
            n = i2d_PKCS7_ISSUER_AND_SERIAL(x, &der);
            ias = malloc((size_t) n);
            memcpy(ias, der, (size_t) n);
            clen = (size_t) n;
            OPENSSL_free(der);
            PKCS7_ISSUER_AND_SERIAL_free(x);
        }
        BN_free(bn);
    }
    o.msg_type = "21";
    o.content = ias;
    o.content_len = clen;
    m2 = make_pkimsg(&o, &len2);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m2);
    free(ias);

    /* revoke it: recorded, and a renewal signed by it is refused */
    r = admin(st, MDM_SCEP_ADMIN_REVOKE, serial, 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    assert_string_equal(last_id, "MDM08032");
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("SISMEMBER t:{scep}:revoked %s", serial), 1);
    s = redis_str("HGET %s %s", key, "revoked");
    assert_non_null(s);
    free(s);
    r = admin(st, MDM_SCEP_ADMIN_REVOKE, "123456", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    assert_string_equal(last_id, "MDM08051");
    mdm_scep_req_free(r);

    {
        X509 *issued;
        const unsigned char *p;

        s = redis_str("HGET %s %s", key, "der");
        p = (const unsigned char *) s;
        issued = d2i_X509(NULL, &p, 4096);
        assert_non_null(issued);
        o.signer = issued;
        o.msg_type = "17";
        o.txid = "RENEW-1";
        {
            size_t cl;
            unsigned char *csr =
                make_csr(dev_key, "device-0001", NULL, NULL, &cl);

            o.content = csr;
            o.content_len = cl;
            m2 = make_pkimsg(&o, &len2);
            free(csr);
        }
        dbsize = redis_int("DBSIZE", NULL);
        r = run(st, m2, len2);
        read_certrep(mdm_scep_req_response(r), "RENEW-1", test_nonce, 16,
                     issued, NULL, &cr);
        assert_int_equal(cr.fail, 2);
        assert_string_equal(last_id, "MDM08020");
        mdm_scep_req_free(r);
        assert_int_equal(redis_int("DBSIZE", NULL), dbsize);
        /* unrevoked (by hand), the renewal goes through and says where it
         * came from */
        freeReplyObject(redisCommand(rc, "SREM t:{scep}:revoked %s", serial));
        r = run(st, m2, len2);
        read_certrep(mdm_scep_req_response(r), "RENEW-1", test_nonce, 16,
                     issued, dev_key, &cr);
        assert_int_equal(cr.status, 0);
        X509_free(cr.issued);
        snprintf(key, sizeof(key), "t:{scep}:cert:%s",
                 mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
        mdm_scep_req_free(r);
        free(s);
        s = redis_str("HGET %s %s", key, "renewed_from");
        assert_string_equal(s, serial);
        free(s);
        X509_free(issued);
        free(m2);
    }

    /* static mode records too */
    free(m);
    X509_free(signer);
    m = pkcsreq_tx(CHALLENGE, "device-0001", "TXID-STATIC", NULL, &signer,
                   &len);
    dbsize = redis_int("DBSIZE", NULL);
    r = run(st, m, len);
    read_certrep(mdm_scep_req_response(r), "TXID-STATIC", test_nonce, 16,
                 signer, NULL, &cr);
    assert_int_equal(cr.status, 0);
    mdm_scep_req_free(r);
    /* one more record, and the transaction's */
    assert_int_equal(redis_int("DBSIZE", NULL), dbsize + 2);

    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
    mdm_scep_ca_free(st);
}

static const unsigned char nonce2[16] = "nonce-abcdefghij";

/* Replays: the same pkiMessage bytes, the same request with a new
 * senderNonce, another request in the transaction; static and one-time
 * challenges; a replay racing the first (the script decides). */
static void
test_store_replay(void **state)
{
    mdm_scep_ca_t *st = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *dyn = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    mdm_scep_req_t *r;
    X509 *signer, *first;
    size_t len, len2;
    unsigned char *m, *m2;
    certrep_t cr;
    char serial[64];
    long long dbsize;
    int i;

    (void) state;
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    m = pkcsreq_tx(CHALLENGE, "device-r1", "REPLAY-1", NULL, &signer, &len);
    r = run(st, m, len);
    read_certrep(mdm_scep_req_response(r), "REPLAY-1", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    first = cr.issued;
    snprintf(serial, sizeof(serial), "%s",
             mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
    mdm_scep_req_free(r);
    dbsize = redis_int("DBSIZE", NULL);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 1);

    /* the exact bytes again, twice: the same certificate, nothing signed
     * or stored */
    for (i = 0; i < 2; i++) {
        r = run(st, m, len);
        read_certrep(mdm_scep_req_response(r), "REPLAY-1", test_nonce, 16,
                     signer, dev_key, &cr);
        assert_int_equal(cr.status, 0);
        assert_int_equal(X509_cmp(cr.issued, first), 0);
        assert_string_equal(last_id, "MDM08034");
        assert_int_equal(nlogs, 1);
        assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL), serial);
        X509_free(cr.issued);
        mdm_scep_req_free(r);
    }
    assert_int_equal(redis_int("DBSIZE", NULL), dbsize);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 1);

    /* a replay that raced the first past the check: the script finds the
     * record and the signed certificate is thrown away */
    post_autocheck = 1;
    r = run(st, m, len);
    post_autocheck = 0;
    read_certrep(mdm_scep_req_response(r), "REPLAY-1", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(X509_cmp(cr.issued, first), 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 1);

    /* the same request resent with a new senderNonce: the same answer */
    X509_free(signer);
    m2 = pkcsreq_tx(CHALLENGE, "device-r1", "REPLAY-1", nonce2, &signer, &len2);
    r = run(st, m2, len2);
    read_certrep(mdm_scep_req_response(r), "REPLAY-1", nonce2, 16, signer,
                 dev_key, &cr);
    assert_int_equal(X509_cmp(cr.issued, first), 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m2);

    /* another request in that transaction, with either nonce: refused */
    X509_free(signer);
    m2 = pkcsreq_tx(CHALLENGE, "device-r2", "REPLAY-1", nonce2, &signer, &len2);
    r = run(st, m2, len2);
    read_certrep(mdm_scep_req_response(r), "REPLAY-1", nonce2, 16, signer, NULL,
                 &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08024");
    mdm_scep_req_free(r);
    free(m2);
    X509_free(signer);
    m2 = pkcsreq_tx(CHALLENGE, "device-r2", "REPLAY-1", NULL, &signer, &len2);
    r = run(st, m2, len2);
    read_certrep(mdm_scep_req_response(r), "REPLAY-1", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08024");
    assert_non_null(strstr(last_msg, "senderNonce"));
    mdm_scep_req_free(r);
    free(m2);
    assert_int_equal(redis_int("DBSIZE", NULL), dbsize);
    free(m);
    X509_free(signer);

    /* a one-time challenge: the replay is answered though the challenge
     * is spent, and still one certificate */
    r = admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, "replay-chal", 60);
    assert_int_equal(mdm_scep_req_response(r)->status, 201);
    mdm_scep_req_free(r);
    m = pkcsreq_tx("replay-chal", "device-r3", "REPLAY-2", NULL, &signer, &len);
    for (i = 0; i < 3; i++) {
        r = run(dyn, m, len);
        read_certrep(mdm_scep_req_response(r), "REPLAY-2", test_nonce, 16,
                     signer, dev_key, &cr);
        assert_int_equal(cr.status, 0);
        if (i == 0) {
            X509_free(first);
            first = cr.issued;
        } else {
            assert_int_equal(X509_cmp(cr.issued, first), 0);
            X509_free(cr.issued);
        }
        mdm_scep_req_free(r);
    }
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 2);
    X509_free(first);
    X509_free(signer);
    free(m);
    mdm_scep_ca_free(st);
    mdm_scep_ca_free(dyn);
}

static mdm_scep_req_t *
certpoll(const mdm_scep_ca_t *ca, X509 *signer, const char *txid)
{
    req_opts_t o = {0};
    mdm_scep_req_t *r;
    unsigned char *m;
    size_t len;

    o.signer = signer;
    o.signer_key = dev_key;
    o.msg_type = "20";
    o.txid = txid;
    o.content = (const unsigned char *) "\x30\x00";
    o.content_len = 2;
    m = make_pkimsg(&o, &len);
    r = run(ca, m, len);
    free(m);
    return r;
}

static char *
body_of(mdm_scep_req_t *r)
{
    return strndup((const char *) mdm_scep_req_response(r)->body,
                   mdm_scep_req_response(r)->body_len);
}

/* approval manual: PENDING, CertPoll, the admin's approve and reject */
static void
test_store_approval(void **state)
{
    mdm_scep_ca_t *ca =
        sample_ca_conf(CHALLENGE, "approval", "manual", NULL, NULL);
    mdm_scep_req_t *r;
    X509 *signer, *signer2;
    size_t len, len2;
    unsigned char *m, *m2;
    certrep_t cr;
    char *s;
    int i;

    (void) state;
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    m = pkcsreq_tx(CHALLENGE, "device-m1", "MANUAL-1", NULL, &signer, &len);
    /* kept, twice the same answer: PENDING */
    for (i = 0; i < 2; i++) {
        r = run(ca, m, len);
        read_certrep(mdm_scep_req_response(r), "MANUAL-1", test_nonce, 16,
                     signer, NULL, &cr);
        assert_int_equal(cr.status, 3);
        assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_STATUS),
                            "PENDING");
        assert_string_equal(last_id, "MDM08033");
        mdm_scep_req_free(r);
    }
    assert_int_equal(redis_int("EXISTS %s", "t:{scep}:issued"), 0);
    s = redis_str("HGET %s %s", "t:{scep}:txn:MANUAL-1", "state");
    assert_string_equal(s, "pending");
    free(s);
    assert_true(redis_int("TTL %s", "t:{scep}:txn:MANUAL-1") > 86400);
    r = certpoll(ca, signer, "MANUAL-1");
    read_certrep(mdm_scep_req_response(r), "MANUAL-1", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.status, 3);
    mdm_scep_req_free(r);

    /* the list */
    r = admin(ca, MDM_SCEP_ADMIN_PENDING, NULL, 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    s = body_of(r);
    assert_non_null(strstr(s, "\"transaction_id\":\"MANUAL-1\""));
    assert_non_null(strstr(s, "\"subject\":\"CN=device-m1\""));
    assert_non_null(strstr(s, "\"kind\":\"PKCSReq\""));
    free(s);
    mdm_scep_req_free(r);

    /* approved: the next CertPoll and a resend get the certificate */
    r = admin(ca, MDM_SCEP_ADMIN_APPROVE, "MANUAL-1", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    assert_string_equal(last_id, "MDM08035");
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 1);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:pending"), 0);
    r = certpoll(ca, signer, "MANUAL-1");
    read_certrep(mdm_scep_req_response(r), "MANUAL-1", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    check_issued(cr.issued, dev_key, "device-m1", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    r = run(ca, m, len);
    read_certrep(mdm_scep_req_response(r), "MANUAL-1", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 1);
    r = admin(ca, MDM_SCEP_ADMIN_APPROVE, "MANUAL-1", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    assert_string_equal(last_id, "MDM08055");
    mdm_scep_req_free(r);

    /* rejected: CertPoll and resend get FAILURE badRequest */
    m2 = pkcsreq_tx(CHALLENGE, "device-m2", "MANUAL-2", NULL, &signer2, &len2);
    r = run(ca, m2, len2);
    mdm_scep_req_free(r);
    r = admin(ca, MDM_SCEP_ADMIN_REJECT, "MANUAL-2", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    assert_string_equal(last_id, "MDM08036");
    mdm_scep_req_free(r);
    r = certpoll(ca, signer2, "MANUAL-2");
    read_certrep(mdm_scep_req_response(r), "MANUAL-2", test_nonce, 16, signer2,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08025");
    mdm_scep_req_free(r);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "MANUAL-2", test_nonce, 16, signer2,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08025");
    mdm_scep_req_free(r);
    r = admin(ca, MDM_SCEP_ADMIN_REJECT, "MANUAL-2", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    mdm_scep_req_free(r);
    r = admin(ca, MDM_SCEP_ADMIN_APPROVE, "MANUAL-2", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("ZCARD %s", "t:{scep}:issued"), 1);
    /* bad transactionIDs store nothing */
    r = admin(ca, MDM_SCEP_ADMIN_APPROVE, "bad id", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08050");
    mdm_scep_req_free(r);
    r = admin(ca, MDM_SCEP_ADMIN_PENDING, NULL, 0);
    s = body_of(r);
    assert_string_equal(s, "{\"pending\":[]}");
    free(s);
    mdm_scep_req_free(r);

    X509_free(signer);
    X509_free(signer2);
    free(m);
    free(m2);
    mdm_scep_ca_free(ca);
}

int
scep_store_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_dynamic),
        cmocka_unit_test(test_store_replay),
        cmocka_unit_test(test_store_approval),
    };

    return cmocka_run_group_tests_name("scep_store", tests, store_setup,
                                       store_teardown);
}
