/*
 * PKIOperation (mdm_scep_pki.c): issuing with each digest and cipher,
 * renewal, GetCert and CertPoll lookups, and the replies the issuing
 * script may give (NOSCRIPT, a spent challenge, a storage error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "test_scep.h"

static void
issue_with(const EVP_MD *md, const EVP_CIPHER *cipher, int want_md,
           int want_cipher)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer;
    size_t len;
    unsigned char *m = pkcsreq(CHALLENGE, md, cipher, &signer, &len);
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    X509 *planned;

    r = post(ca, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    planned = planned_cert(r);
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_int_equal(cr.md_nid, want_md);
    assert_int_equal(cr.cipher_nid, want_cipher);
    assert_non_null(cr.issued);
    check_issued(cr.issued, dev_key, "device-0001", T_GEN);
    /* what the device gets is what was recorded */
    assert_int_equal(X509_cmp(cr.issued, planned), 0);
    X509_free(cr.issued);
    X509_free(planned);
    X509_free(signer);
    mdm_scep_req_free(r);
    free(m);
    mdm_scep_ca_free(ca);
}

static void
test_issue(void **state)
{
    (void) state;
    issue_with(EVP_sha256(), EVP_aes_128_cbc(), NID_sha256, NID_aes_128_cbc);
    issue_with(EVP_sha512(), EVP_des_ede3_cbc(), NID_sha512, NID_des_ede3_cbc);
    issue_with(EVP_sha1(), EVP_aes_256_cbc(), NID_sha1, NID_aes_256_cbc);
    assert_int_equal(ERR_peek_error(), 0);
}

/* A P-256 device key: its SubjectPublicKeyInfo has a parameter (the
 * curve), copied as it is into the certificate. Signed with a certificate
 * of the same key (the key is reused from it; the CertRep's envelope is
 * then key agreement, which the PKCS#7 view of read_certrep() cannot
 * read: the recorded certificate is checked), then with the RSA device
 * key (the CSR's key decoded on its own). */
static void
test_issue_ec(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    X509 *signer, *planned;
    req_opts_t o = {0};
    unsigned char *csr, *m;
    size_t clen, len;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    int i;

    (void) state;
    assert_non_null(ec);
    csr = make_csr(ec, "device-ec", CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    for (i = 0; i < 2; i++) {
        /* the signer: the same EC key, then the RSA device key */
        o.signer_key = i == 0 ? ec : dev_key;
        signer = make_cert(o.signer_key, "MDM SCEP SIGNER", NULL, NULL, 1,
                           T_GEN - DAY, T_GEN + DAY);
        o.signer = signer;
        m = make_pkimsg(&o, &len);
        r = post(ca, m, len, T_GEN, &step);
        if (step != MDM_STEP_REDIS) {
            fail_msg("%s %s", last_id, last_msg);
        }
        planned = planned_cert(r);
        assert_non_null(planned);
        assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 200);
        check_issued(planned, ec, "device-ec", T_GEN);
        if (i == 1) {
            read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16,
                         signer, dev_key, &cr);
            assert_int_equal(cr.status, 0);
            assert_non_null(cr.issued);
            assert_int_equal(X509_cmp(cr.issued, planned), 0);
            X509_free(cr.issued);
        }
        X509_free(planned);
        X509_free(signer);
        mdm_scep_req_free(r);
        free(m);
    }
    free(csr);
    EVP_PKEY_free(ec);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_renewal(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *off;
    X509 *ours, *expired, *stranger;
    size_t len, clen;
    unsigned char *m, *csr;
    req_opts_t o = {0};
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    (void) state;
    ours = make_cert(dev_key, "device-0001", sample_ca, sample_ca_key, 0x1234,
                     T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    expired = make_cert(dev_key, "device-0001", sample_ca, sample_ca_key,
                        0x1235, T_GEN - 10 * DAY, T_GEN - DAY);
    stranger = make_cert(dev_key, "device-0001", NULL, NULL, 0x1236,
                         T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    /* no challenge in a renewal */
    csr = make_csr(dev_key2, "device-0001", NULL, NULL, &clen);
    o.msg_type = "17";
    o.signer_key = dev_key;
    o.content = csr;
    o.content_len = clen;

    o.signer = ours;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[16], "RenewalReq");
    assert_string_equal(plan->cmds[0].argv[17], "1234");
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, ours,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    check_issued(cr.issued, dev_key2, "device-0001", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);

    /* the certificate was revoked meanwhile: the script says so */
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    assert_int_equal(feed1(r, rep_array1("REVOKED")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, ours,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08020");
    mdm_scep_req_free(r);

    /* renewal switched off */
    off = sample_ca_conf(CHALLENGE, "renewal", "off", NULL, NULL);
    expect_fail(off, m, len, T_GEN, 2, "MDM08013", NULL);
    mdm_scep_ca_free(off);
    free(m);

    o.signer = expired;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 3, "MDM08018", NULL);
    free(m);
    o.signer = stranger;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08019", NULL);
    free(m);
    /* a renewal keeps the name */
    free(csr);
    csr = make_csr(dev_key2, "device-9999", NULL, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    o.signer = ours;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08023", NULL);
    free(m);

    free(csr);
    X509_free(ours);
    X509_free(expired);
    X509_free(stranger);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_getcert_certpoll(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer, *known, *other;
    size_t len, clen;
    unsigned char *m, *ias, *der = NULL;
    req_opts_t o = {0};
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    redisReply *rep;
    int n;

    (void) state;
    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    known = make_cert(dev_key2, "device-0002", sample_ca, sample_ca_key, 0xabcd,
                      T_GEN - DAY, T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;

    /* GetCert: looked up by serial */
    ias = issuer_and_serial(sample_ca, 0xabcd, &clen);
    o.msg_type = "21";
    o.content = ias;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "HMGET");
    assert_string_equal(plan->cmds[0].argv[1], "t:{scep}:cert:abcd");
    assert_int_equal(feed1(r, rep_lookup(NULL, 0, NULL)), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 4);
    assert_string_equal(last_id, "MDM08021");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* known serial: the certificate, encrypted to the asker */
    r = post(ca, m, len, T_GEN, &step);
    n = i2d_X509(known, &der);
    rep = rep_lookup(der, (size_t) n, NULL);
    OPENSSL_free(der);
    assert_int_equal(feed1(r, rep), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_int_equal(X509_cmp(cr.issued, known), 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);

    /* storage down: 503, not a CertRep */
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(feed1(r, NULL), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_int_equal(mdm_scep_req_response(r)->retry_after, 5);
    assert_string_equal(last_id, "MDM04001");
    mdm_scep_req_free(r);
    free(m);
    free(ias);

    /* serials are spelled without a leading zero nibble (0x0abc) */
    ias = issuer_and_serial(sample_ca, 0xabc, &clen);
    o.content = ias;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    assert_string_equal(mdm_scep_req_plan(r)->cmds[0].argv[1],
                        "t:{scep}:cert:abc");
    mdm_scep_req_free(r);
    free(m);
    free(ias);

    /* another issuer: badCertId without asking Redis */
    other = make_cert(dev_key2, "Other CA", NULL, NULL, 5, T_GEN - DAY,
                      T_GEN + DAY);
    ias = issuer_and_serial(other, 0xabcd, &clen);
    o.content = ias;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 4, "MDM08021", NULL);
    free(m);
    free(ias);
    o.content = (const unsigned char *) "\x05\x00";
    o.content_len = 2;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08021", NULL);
    free(m);

    /* CertPoll: by transactionID */
    o.msg_type = "20";
    o.txid = "POLL-0001";
    o.content = (const unsigned char *) "\x30\x00";
    o.content_len = 2;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[1], "t:{scep}:txn:POLL-0001");
    assert_int_equal(feed1(r, rep_lookup(NULL, 0, NULL)), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "POLL-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 4);
    assert_string_equal(last_id, "MDM08022");
    mdm_scep_req_free(r);
    free(m);

    X509_free(other);
    X509_free(known);
    X509_free(signer);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

/* Replies the script may give, and NOSCRIPT. */
static void
test_issue_replies(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    X509 *signer;
    size_t len;
    unsigned char *m = pkcsreq("one-time-1", NULL, NULL, &signer, &len);
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    unsigned char md[32];
    char want[128], hex[65];
    int i;

    (void) state;
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    /* the key holds the challenge's SHA-256, never the challenge */
    EVP_Digest("one-time-1", 10, md, NULL, EVP_sha256(), NULL);
    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", md[i]);
    }
    snprintf(want, sizeof(want), "t:{scep}:chal:%s", hex);
    assert_string_equal(plan->cmds[0].argv[3], want);
    assert_string_equal(plan->cmds[0].argv[9], "consume");
    /* NOSCRIPT: the same call once more, with EVAL */
    assert_int_equal(
        feed1(r, rep_new(REDIS_REPLY_ERROR, "NOSCRIPT No matching script")),
        MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "EVAL");
    assert_string_equal(plan->cmds[0].argv[3], want);
    assert_int_equal(feed1(r, rep_array1("NOCHALLENGE")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08017");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* a second NOSCRIPT is a storage error */
    r = post(ca, m, len, T_GEN, &step);
    feed1(r, rep_new(REDIS_REPLY_ERROR, "NOSCRIPT x"));
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_ERROR, "NOSCRIPT x")),
                     MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_string_equal(last_id, "MDM04002");
    mdm_scep_req_free(r);

    /* dynamic mode without a challenge: refused before Redis */
    X509_free(signer);
    free(m);
    m = pkcsreq(NULL, NULL, NULL, &signer, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
}

int
scep_pki_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue),
        cmocka_unit_test(test_issue_ec),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_getcert_certpoll),
        cmocka_unit_test(test_issue_replies),
    };

    return cmocka_run_group_tests_name("scep_pki", tests, NULL, NULL);
}
