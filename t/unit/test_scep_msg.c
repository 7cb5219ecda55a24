/*
 * Reading a pkiMessage (mdm_scep_msg.c) and the refusals on the way: the
 * real Apple vectors (t/samples/scep, t/samples/commandment), single DES,
 * and every failInfo path with requests made here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "test_scep.h"

/* ------------------------------------------------------------------ */
/* the real vectors                                                    */

static const unsigned char sample_nonce[8] = {0xae, 0x7f, 0xe8, 0x81,
                                              0x6c, 0xc6, 0xbe, 0xdd};

static void
test_real_pkcsreq(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("none", NULL, NULL, NULL, NULL);
    size_t len, csrlen;
    unsigned char *m = slurp(sample_path("scep/PKCSReq.der"), &len);
    unsigned char *csrder =
        slurp(sample_path("scep/PKCSReq.decrypted-csr.der"), &csrlen);
    const unsigned char *p = csrder;
    X509_REQ *csr = d2i_X509_REQ(NULL, &p, (long) csrlen);
    X509 *signer = sample_signer("scep/PKCSReq.der"), *issued;
    const mdm_plan_t *plan;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    (void) state;
    assert_non_null(csr);
    r = post(ca, m, len, T_SAMPLE, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_MESSAGE_TYPE),
                        "PKCSReq");
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_TRANSACTION_ID),
                        SAMPLE_TXID);
    /* the CSR inside the envelope: the one the DERIVED file holds */
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_SUBJECT),
                        "CN=" SAMPLE_CN);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "EVALSHA");
    assert_string_equal(plan->cmds[0].argv[2], "6");
    assert_string_equal(plan->cmds[0].argv[3], "t:{scep}:chal:-");
    assert_string_equal(plan->cmds[0].argv[9], "keep");
    assert_string_equal(plan->cmds[0].argv[10],
                        mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
    assert_string_equal(plan->cmds[0].argv[16], "PKCSReq");
    issued = planned_cert(r);
    assert_non_null(issued);
    check_issued(issued, X509_REQ_get0_pubkey(csr), SAMPLE_CN, T_SAMPLE);

    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    resp = mdm_scep_req_response(r);
    read_certrep(resp, SAMPLE_TXID, sample_nonce, 8, signer, NULL, &cr);
    assert_int_equal(cr.status, 0);
    /* the request's algorithms: SHA-1, DES3 */
    assert_int_equal(cr.md_nid, NID_sha1);
    assert_int_equal(cr.cipher_nid, NID_des_ede3_cbc);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_STATUS), "SUCCESS");
    assert_string_equal(last_id, "MDM08030");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* GET with the message base64, URL-escaped */
    {
        char *b64 = malloc(4 * ((len + 2) / 3) + 1), *q;
        size_t i, o = 0;

        EVP_EncodeBlock((unsigned char *) b64, m, (int) len);
        q = malloc(strlen(b64) * 3 + 64);
        o = (size_t) sprintf(q, "operation=PKIOperation&message=");
        for (i = 0; b64[i]; i++) {
            if (b64[i] == '+' || b64[i] == '/' || b64[i] == '=') {
                o += (size_t) sprintf(q + o, "%%%02X", b64[i]);
            } else {
                q[o++] = b64[i];
            }
        }
        q[o] = '\0';
        r = mdm_scep_req_new_http(ca, "GET", 3, q, o, NULL, 0);
        mdm_scep_req_set_time(r, T_SAMPLE);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_TRANSACTION_ID),
                            SAMPLE_TXID);
        mdm_scep_req_free(r);
        free(q);
        free(b64);
    }
    mdm_scep_ca_free(ca);

    /* the sample has no challenge: a CA that wants one refuses it */
    ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    r = post(ca, m, len, T_SAMPLE, &step);
    assert_int_equal(step, MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), SAMPLE_TXID, sample_nonce, 8, signer,
                 NULL, &cr);
    assert_int_equal(cr.status, 2);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08017");
    assert_non_null(strstr(last_msg, "no challengePassword"));
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);

    /* and its 1024-bit key is below the default minimum */
    {
        opt_t o[] = {{"ca_cert", sample_path("scep/ca.pem")},
                     {"ca_key", sample_path("scep/ca.key")},
                     {"ca_key_pass_file", tmp_path("empty-pass")},
                     {"challenge", "none"},
                     {NULL, NULL}};
        char err[256];
        int rc;

        ca = ca_with(o, err, sizeof(err), &rc);
        assert_int_equal(rc, 0);
    }
    r = post(ca, m, len, T_SAMPLE, &step);
    read_certrep(mdm_scep_req_response(r), SAMPLE_TXID, sample_nonce, 8, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08016");
    mdm_scep_req_free(r);

    /* today the sample CA is expired: nothing is issued */
    r = post(ca, m, len, (time_t) 1798761600 /* 2027-01-01 */, &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);
    ca = sample_ca_conf("none", NULL, NULL, NULL, NULL);
    r = post(ca, m, len, (time_t) 1798761600, &step);
    assert_int_equal(step, MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 500);
    assert_string_equal(last_id, "MDM08041");
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);

    X509_REQ_free(csr);
    X509_free(issued);
    X509_free(signer);
    free(csrder);
    free(m);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_real_mdmclient(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    size_t len;
    unsigned char *m =
        slurp(sample_path("commandment/mdmclient-PKIOperation.der"), &len);
    X509 *signer = sample_signer("commandment/mdmclient-PKIOperation.der");
    const unsigned char *p = m;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    const ASN1_TYPE *nonce = attr1(si, o_snonce);
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    char name[256];

    (void) state;
    X509_NAME_oneline(X509_get_subject_name(signer), name, sizeof(name));
    assert_string_equal(name, "/CN=MDM SCEP SIGNER/C=AU");
    /* the caller's own OpenSSL error survives, and nothing is added */
    ERR_raise(ERR_LIB_USER, 42);
    r = post(ca, m, len, (time_t) 1491445800 /* 2017-04-06 */, &step);
    assert_int_equal(ERR_GET_REASON(ERR_get_error()), 42);
    assert_int_equal(ERR_peek_error(), 0);
    assert_int_equal(step, MDM_STEP_DONE);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_MESSAGE_TYPE),
                        "PKCSReq");
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_TRANSACTION_ID),
                        MDMCL_TXID);
    /* signature fine, SHA-512; the envelope is for a Microsoft NDES RA */
    read_certrep(mdm_scep_req_response(r), MDMCL_TXID,
                 ASN1_STRING_get0_data(nonce->value.octet_string),
                 (size_t) ASN1_STRING_length(nonce->value.octet_string), signer,
                 NULL, &cr);
    assert_int_equal(cr.status, 2);
    assert_int_equal(cr.fail, 1);
    assert_int_equal(cr.md_nid, NID_sha512);
    assert_string_equal(last_id, "MDM08012");
    assert_non_null(strstr(last_msg, "not encrypted to this CA"));
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_FAIL_INFO),
                        "badMessageCheck");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    CMS_ContentInfo_free(cms);
    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

/* Single DES (Debian's scepclient, old NDES clients): refused unless
 * legacy_des is on; then the answer is AES-128, never DES. */
static void
test_legacy_des(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *des =
        sample_ca_conf(CHALLENGE, "legacy_des", "on", NULL, NULL);
    X509 *signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1,
                             T_GEN - DAY, T_GEN + DAY);
    size_t clen, len;
    unsigned char *csr =
        make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    (void) state;
    o.signer = signer;
    o.signer_key = dev_key;
    o.content = csr;
    o.content_len = clen;
    o.des = 1;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 0, "MDM08010", NULL);
    assert_non_null(strstr(last_msg, "legacy_des"));
    r = post(des, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_int_equal(cr.cipher_nid, NID_aes_128_cbc);
    check_issued(cr.issued, dev_key, "device-0001", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m);
    free(csr);
    X509_free(signer);
    mdm_scep_ca_free(ca);
    mdm_scep_ca_free(des);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_failures(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer, *other_ca;
    size_t len, clen;
    unsigned char *m, *csr, *hit;
    req_opts_t o = {0};

    (void) state;
    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;

    /* tampered: one byte of the envelope changed after signing */
    m = pkcsreq(CHALLENGE, NULL, NULL, &other_ca, &len);
    X509_free(other_ca);
    hit = m + len / 2;
    *hit ^= 0x01;
    expect_fail(ca, m, len, T_GEN, 1, "MDM08011", NULL);
    free(m);

    /* MD5: badAlg before anything else */
    csr = make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    o.md = EVP_md5();
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 0, "MDM08010", NULL);
    free(m);
    o.md = NULL;

    /* an envelope cipher we do not speak */
    o.cipher = EVP_camellia_128_cbc();
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 0, "MDM08010", NULL);
    assert_non_null(strstr(last_msg, "CAMELLIA"));
    free(m);
    o.cipher = NULL;

    /* encrypted to someone else */
    other_ca = make_cert(dev_key2, "Other CA", NULL, NULL, 5, T_GEN - DAY,
                         T_GEN + DAY);
    o.recipient = other_ca;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 1, "MDM08012", NULL);
    assert_non_null(strstr(last_msg, "CN=Other CA"));
    free(m);
    o.recipient = NULL;
    free(csr);

    /* wrong and missing challenge */
    csr = make_csr(dev_key, "device-0001", "not-the-challenge", NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    assert_non_null(strstr(last_msg, "wrong challengePassword"));
    /* the log never shows a challenge */
    assert_null(strstr(last_msg, "not-the-challenge"));
    free(m);
    free(csr);
    /* a prefix of the right one is wrong too */
    csr = make_csr(dev_key, "device-0001", "s3cret", NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    free(m);
    free(csr);
    csr = make_csr(dev_key, "device-0001", NULL, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    free(m);
    free(csr);

    /* CSR signed by another key */
    csr = make_csr(dev_key, "device-0001", CHALLENGE, dev_key2, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 1, "MDM08014", NULL);
    free(m);
    free(csr);

    /* not a CSR at all */
    o.content = (const unsigned char *) "\x30\x03\x02\x01\x00";
    o.content_len = 5;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08014", NULL);
    free(m);

    /* empty subject */
    csr = make_csr(dev_key, NULL, CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08015", NULL);
    free(m);
    free(csr);

    /* GetCRL and other message types */
    csr = make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    o.msg_type = "22";
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08013", NULL);
    free(m);
    o.msg_type = "3";
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08013", NULL);
    free(m);
    o.msg_type = NULL;

    /* not a pkiMessage: 400, no CertRep */
    {
        mdm_scep_req_t *r;
        mdm_step_t step;

        o.no_txid = 1;
        m = make_pkimsg(&o, &len);
        r = post(ca, m, len, T_GEN, &step);
        assert_int_equal(step, MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_int_equal(mdm_scep_req_response(r)->body_len, 0);
        assert_string_equal(last_id, "MDM08001");
        assert_non_null(strstr(last_msg, "transactionID"));
        assert_int_equal(nlogs, 1);
        mdm_scep_req_free(r);
        free(m);
        o.no_txid = 0;

        r = post(ca, (const unsigned char *) "\x30\x03garbage", 10, T_GEN,
                 &step);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(last_id, "MDM08001");
        mdm_scep_req_free(r);
        r = post(ca, NULL, 0, T_GEN, &step);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(last_id, "MDM08001");
        mdm_scep_req_free(r);
        r = post(ca, (const unsigned char *) "not base64 @@", 13, T_GEN, &step);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(last_id, "MDM08001");
        mdm_scep_req_free(r);
        /* a certificate is DER but no pkiMessage */
        {
            unsigned char *der = NULL;
            int n = i2d_X509(sample_ca, &der);

            r = post(ca, der, (size_t) n, T_GEN, &step);
            assert_int_equal(mdm_scep_req_response(r)->status, 400);
            assert_string_equal(last_id, "MDM08001");
            mdm_scep_req_free(r);
            OPENSSL_free(der);
        }
    }
    free(csr);
    X509_free(other_ca);
    X509_free(signer);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

int
scep_msg_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_pkcsreq),
        cmocka_unit_test(test_real_mdmclient),
        cmocka_unit_test(test_legacy_des),
        cmocka_unit_test(test_failures),
    };

    return cmocka_run_group_tests_name("scep_msg", tests, NULL, NULL);
}
