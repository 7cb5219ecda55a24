/*
 * The CA (mdm_scep_ca.c): every loading error names its option, the
 * GetCACaps and GetCACert answers made at loading (with a chain, with an
 * RA), and the routing of those operations (mdm_scep.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "test_scep.h"

/* ------------------------------------------------------------------ */
/* CA loading                                                          */

static void
ca_err(const opt_t *o, const char *want)
{
    char err[512];
    int rc;
    mdm_scep_ca_t *ca = ca_with(o, err, sizeof(err), &rc);

    assert_int_equal(rc, -1);
    if (strstr(err, want) == NULL) {
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    }
    mdm_scep_ca_free(ca);
}

static void
test_ca_load_errors(void **state)
{
    EVP_PKEY *other = dev_key2;
    X509 *leaf;
    const char *cert = sample_path("scep/ca.pem"),
               *key = sample_path("scep/ca.key"),
               *empty = tmp_path("empty-pass");

    (void) state;
    write_key(tmp_path("enc.key"), sample_ca_key, "right passphrase");
    write_file(tmp_path("right-pass"), "right passphrase\n", 17);
    write_file(tmp_path("wrong-pass"), "wrong passphrase\n", 17);
    write_key(tmp_path("other.key"), other, NULL);
    leaf = make_cert(other, "leaf", sample_ca, sample_ca_key, 7, T_GEN - DAY,
                     T_GEN + DAY);
    write_cert(tmp_path("leaf.pem"), leaf);
    X509_free(leaf);
    write_file(tmp_path("chal"), "from-a-file\n", 12);
    write_file(tmp_path("nochal"), "\n", 1);

    {
        opt_t o[] = {{"ca_key", key}, {"challenge", "x"}, {NULL, NULL}};
        ca_err(o, "ca_cert: required");
    }
    {
        opt_t o[] = {{"ca_cert", cert}, {"challenge", "x"}, {NULL, NULL}};
        ca_err(o, "ca_key: required");
    }
    {
        opt_t o[] = {{"ca_cert", tmp_path("nonexistent")},
                     {"ca_key", key},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "ca_cert: cannot open");
    }
    {
        opt_t o[] = {{"ca_cert", key},
                     {"ca_key", key},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "ca_cert: no PEM certificate");
    }
    {
        /* encrypted key, no passphrase file */
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("enc.key")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "is encrypted: set ca_key_pass_file");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("enc.key")},
                     {"ca_key_pass_file", tmp_path("wrong-pass")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "wrong passphrase");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", tmp_path("nonexistent")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "ca_key_pass_file: cannot open");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("other.key")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "does not match ca_cert");
    }
    {
        opt_t o[] = {{"ca_cert", tmp_path("leaf.pem")},
                     {"ca_key", tmp_path("other.key")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "is not a CA certificate");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", empty},
                     {NULL, NULL}};
        ca_err(o, "challenge: required");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", empty},
                     {"challenge_file", tmp_path("nochal")},
                     {NULL, NULL}};
        ca_err(o, "challenge_file:");
    }
    {
        opt_t o[] = {{"ca_cert", cert},           {"ca_key", key},
                     {"ca_key_pass_file", empty}, {"challenge", "x"},
                     {"ra_cert", cert},           {NULL, NULL}};
        ca_err(o, "an RA needs both ra_cert and ra_key");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", empty},
                     {"challenge", "x"},
                     {"ra_cert", cert},
                     {"ra_key", tmp_path("other.key")},
                     {NULL, NULL}};
        ca_err(o, "ra_key:");
    }
    {
        opt_t o[] = {{"validity_days", "0"}, {NULL, NULL}};
        ca_err(o, "validity_days");
    }
    {
        opt_t o[] = {{"min_key_bits", "512"}, {NULL, NULL}};
        ca_err(o, "min_key_bits");
    }
    {
        opt_t o[] = {{"renewal", "maybe"}, {NULL, NULL}};
        ca_err(o, "renewal");
    }
    {
        opt_t o[] = {{"prefix", "a{b"}, {NULL, NULL}};
        ca_err(o, "prefix");
    }
    {
        opt_t o[] = {{"challenge", ""}, {NULL, NULL}};
        ca_err(o, "challenge");
    }
    {
        opt_t o[] = {{"no_such_option", "1"}, {NULL, NULL}};
        ca_err(o, "unknown SCEP option \"no_such_option\"");
    }
    /* and the ones that work */
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("enc.key")},
                     {"ca_key_pass_file", tmp_path("right-pass")},
                     {"challenge_file", tmp_path("chal")},
                     {NULL, NULL}};
        char err[512];
        int rc;
        mdm_scep_ca_t *ca = ca_with(o, err, sizeof(err), &rc);

        if (rc != 0) {
            fail_msg("%s", err);
        }
        mdm_scep_ca_free(ca);
    }
    /* the sample key: DES3 PEM with an empty passphrase */
    mdm_scep_ca_free(sample_ca_conf("none", NULL, NULL, NULL, NULL));
    assert_int_equal(ERR_peek_error(), 0);
}

/* ------------------------------------------------------------------ */
/* GetCACaps, GetCACert, routing                                       */

static mdm_scep_req_t *
get(const mdm_scep_ca_t *ca, const char *method, const char *q,
    mdm_step_t *step)
{
    mdm_scep_req_t *r = mdm_scep_req_new_http(ca, method, strlen(method), q,
                                              strlen(q), NULL, 0);

    assert_non_null(r);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    *step = mdm_scep_req_start(r);
    return r;
}

/* An RA: requests are encrypted to it, CertReps signed by it, the CA key
 * still signs the certificates; GetCACert sends both. */
static void
test_ra(void **state)
{
    EVP_PKEY *rakey = dev_key2;
    X509 *ra = make_cert(rakey, "Test RA", sample_ca, sample_ca_key, 77,
                         T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    mdm_scep_ca_t *ca;
    X509 *signer;
    size_t clen, len;
    unsigned char *csr =
        make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;
    const unsigned char *p;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    CMS_ContentInfo *cms;
    STACK_OF(X509) * certs;

    (void) state;
    write_cert(tmp_path("ra.pem"), ra);
    write_key(tmp_path("ra.key"), rakey, NULL);
    ca = sample_ca_conf(CHALLENGE, "ra_cert", tmp_path("ra.pem"), "ra_key",
                        tmp_path("ra.key"));
    r = get(ca, "GET", "operation=GetCACert", &step);
    resp = mdm_scep_req_response(r);
    assert_string_equal(resp->content_type, "application/x-x509-ca-ra-cert");
    p = resp->body;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) resp->body_len);
    certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 2);
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    mdm_scep_req_free(r);

    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;
    o.content = csr;
    o.content_len = clen;
    o.recipient = ra;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    expect_signer = ra;
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    check_issued(cr.issued, dev_key, "device-0001", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m);
    /* encrypted to the CA itself: accepted too */
    o.recipient = NULL;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    mdm_scep_req_free(r);
    free(m);
    expect_signer = NULL;
    free(csr);
    X509_free(signer);
    X509_free(ra);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_caps_cacert(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("none", NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *ca2;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;
    mdm_step_t step;
    unsigned char *der = NULL;
    const unsigned char *p;
    CMS_ContentInfo *cms;
    STACK_OF(X509) * certs;
    X509 *leaf;
    int n;

    (void) state;
    r = get(ca, "GET", "operation=GetCACaps", &step);
    assert_int_equal(step, MDM_STEP_DONE);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "text/plain");
    assert_int_equal(resp->body_len,
                     strlen("POSTPKIOperation\nSHA-256\nSHA-512\nSHA-1\nAES\n"
                            "DES3\nSCEPStandard\nRenewal\n"));
    assert_memory_equal(resp->body,
                        "POSTPKIOperation\nSHA-256\nSHA-512\nSHA-1\nAES\n"
                        "DES3\nSCEPStandard\nRenewal\n",
                        resp->body_len);
    assert_int_equal(nlogs, 0);
    mdm_scep_req_free(r);

    /* the single CA: raw DER */
    r = get(ca, "GET", "operation=GetCACert&message=anything", &step);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "application/x-x509-ca-cert");
    n = i2d_X509(sample_ca, &der);
    assert_int_equal(resp->body_len, (size_t) n);
    assert_memory_equal(resp->body, der, (size_t) n);
    OPENSSL_free(der);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_OPERATION),
                        "GetCACert");
    mdm_scep_req_free(r);

    /* operation names are matched without case; HEAD is a GET */
    r = get(ca, "HEAD", "x=1&operation=getcacaps", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    mdm_scep_req_free(r);

    r = get(ca, "POST", "operation=GetCACaps", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 405);
    assert_string_equal(last_id, "MDM08003");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    r = get(ca, "HEAD", "operation=PKIOperation&message=MA==", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 405);
    mdm_scep_req_free(r);
    r = get(ca, "PUT", "operation=PKIOperation", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 405);
    assert_string_equal(last_id, "MDM08003");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "operation=GetNextCACert", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    assert_string_equal(last_id, "MDM08005");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "message=x", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08002");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "operation=PKIOperation", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08004");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "operation=PKIOperation&message=%%%", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08004");
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);

    /* with an intermediate: a certs-only PKCS#7 with both, CA first */
    leaf = make_cert(dev_key2, "Intermediate", sample_ca, sample_ca_key, 9,
                     T_GEN - DAY, T_GEN + DAY);
    write_cert(tmp_path("chain.pem"), leaf);
    ca2 = sample_ca_conf("none", "chain", tmp_path("chain.pem"), "renewal",
                         "off");
    r = get(ca2, "GET", "operation=GetCACert", &step);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "application/x-x509-ca-ra-cert");
    p = resp->body;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) resp->body_len);
    assert_non_null(cms);
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 0);
    certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 2);
    /* a SET OF: in DER order, not in ours */
    assert_true((X509_cmp(sk_X509_value(certs, 0), sample_ca) == 0 &&
                 X509_cmp(sk_X509_value(certs, 1), leaf) == 0) ||
                (X509_cmp(sk_X509_value(certs, 1), sample_ca) == 0 &&
                 X509_cmp(sk_X509_value(certs, 0), leaf) == 0));
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    mdm_scep_req_free(r);
    /* renewal off: not advertised */
    r = get(ca2, "GET", "operation=GetCACaps", &step);
    resp = mdm_scep_req_response(r);
    assert_null(memmem(resp->body, resp->body_len, "Renewal", 7));
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca2);
    X509_free(leaf);
}

int
scep_ca_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_load_errors),
        cmocka_unit_test(test_caps_cacert),
        cmocka_unit_test(test_ra),
    };

    return cmocka_run_group_tests_name("scep_ca", tests, NULL, NULL);
}
