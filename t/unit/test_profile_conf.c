/*
 * Unit tests for the enrollment profile's configuration: option values
 * (mdm_profile_syntax.c), certificate and key files (mdm_profile_certs.c),
 * setting options (mdm_profile_conf.c), and the checks and derived
 * identifiers of mdm_profile_conf_finish() (mdm_profile_finish.c).
 *
 * Needs MDM_TEST_PKI (see test_profile_fixture.c).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#include "test_profile_fixture.h"

static void
test_uuids_stable(void **state)
{
    mdm_profile_conf_t *a = base_conf(URL), *b = base_conf(URL),
                       *c = base_conf("https://other.example.com/mdm"),
                       *d = base_conf(URL);
    char ua[2048], ub[2048], ua2[2048], uc[2048], ud[2048];
    plist_t ra, ra2, rb, rc, rd;

    (void) state;
    set_ok(d, "topic", "com.apple.mgmt.External.another");
    finish_ok(a);
    finish_ok(b);
    finish_ok(c);
    finish_ok(d);
    ra = build_signed(a, "first");
    ra2 = build_signed(a, "second");
    rb = build_xml(b, "third");
    rc = build_signed(c, "first");
    rd = build_signed(d, "first");
    collect_uuids(ra, ua, sizeof(ua));
    collect_uuids(ra2, ua2, sizeof(ua2));
    collect_uuids(rb, ub, sizeof(ub));
    collect_uuids(rc, uc, sizeof(uc));
    collect_uuids(rd, ud, sizeof(ud));
    /* two downloads, and a second configuration of the same server */
    assert_string_equal(ua, ua2);
    assert_string_equal(ua, ub);
    /* another server or another topic: other UUIDs */
    assert_string_not_equal(ua, uc);
    assert_string_not_equal(ua, ud);
    assert_string_not_equal(str(ra, "PayloadUUID"), str(rc, "PayloadUUID"));
    assert_string_not_equal(
        str(payload(ra, "com.apple.security.scep", 0), "PayloadUUID"),
        str(payload(rc, "com.apple.security.scep", 0), "PayloadUUID"));
    assert_string_not_equal(
        str(payload(ra, "com.apple.mdm", 0), "PayloadUUID"),
        str(payload(rd, "com.apple.mdm", 0), "PayloadUUID"));
    /* all UUIDs of one profile differ from each other */
    assert_string_not_equal(
        str(payload(ra, "com.apple.mdm", 0), "PayloadUUID"),
        str(payload(ra, "com.apple.security.scep", 0), "PayloadUUID"));
    assert_string_not_equal(
        str(payload(ra, "com.apple.security.root", 0), "PayloadUUID"),
        str(payload(ra, "com.apple.security.pkcs1", 0), "PayloadUUID"));
    plist_free(ra);
    plist_free(ra2);
    plist_free(rb);
    plist_free(rc);
    plist_free(rd);
    mdm_profile_conf_free(a);
    mdm_profile_conf_free(b);
    mdm_profile_conf_free(c);
    mdm_profile_conf_free(d);
}

static void
expect_set_error(mdm_profile_conf_t *p, const char *name, const char *value,
                 const char *must_contain)
{
    char err[512] = "";

    if (mdm_profile_conf_set(p, name, value, err, sizeof(err)) != -1) {
        fail_msg("%s=\"%s\" was accepted", name, value);
    }
    if (strstr(err, must_contain) == NULL) {
        fail_msg("%s=\"%s\": message \"%s\" does not name \"%s\"", name, value,
                 err, must_contain);
    }
}

static void
test_topic_from_push_cert(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    char err[512] = "", *t = NULL;
    plist_t root;

    (void) state;
    assert_int_equal(
        mdm_push_topic_from_file(tmp("push.pem"), &t, err, sizeof(err)), 0);
    assert_string_equal(t, TOPIC);
    free(t);
    t = NULL;
    assert_int_equal(
        mdm_push_topic_from_file(tmp("nouid.pem"), &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "0.9.2342.19200300.100.1.1"));
    assert_null(t);

    set_ok(p, "server_url", URL);
    set_ok(p, "push_cert", tmp("push.pem"));
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "unsigned", "on");
    finish_ok(p);
    assert_string_equal(mdm_profile_topic(p), TOPIC);
    root = build_xml(p, NULL);
    assert_string_equal(str(payload(root, "com.apple.mdm", 0), "Topic"), TOPIC);
    plist_free(root);
    mdm_profile_conf_free(p);

    /* refused certificates name push_cert */
    p = mdm_profile_conf_new();
    expect_set_error(p, "push_cert", tmp("nouid.pem"), "push_cert");
    expect_set_error(p, "push_cert", tmp("nouid.pem"), "UID");
    expect_set_error(p, "push_cert", tmp("badtopic.pem"), "com.apple.mgmt.");
    expect_set_error(p, "push_cert", tmp("badtopic.pem"), "push_cert");
    expect_set_error(p, "push_cert", tmp("notcert.txt"), "push_cert");
    expect_set_error(p, "push_cert", "/nonexistent/push.pem", "push_cert");
    mdm_profile_conf_free(p);

    /* topic and push certificate must agree */
    p = base_conf(URL);
    set_ok(p, "push_cert", tmp("push2.pem"));
    assert_int_equal(mdm_profile_conf_finish(p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "push_cert"));
    assert_non_null(strstr(err, "topic"));
    mdm_profile_conf_free(p);
    p = base_conf(URL);
    set_ok(p, "push_cert", tmp("push.pem"));
    finish_ok(p);
    mdm_profile_conf_free(p);
}

static void
test_bad_options(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();

    (void) state;
    expect_set_error(p, "server_url", "http://mdm.example.com/", "server_url");
    expect_set_error(p, "server_url", "mdm.example.com", "server_url");
    expect_set_error(p, "server_url", "https://", "server_url");
    expect_set_error(p, "server_url", "https://a b/", "server_url");
    expect_set_error(p, "server_url", "https://u:pw@host/", "server_url");
    expect_set_error(p, "checkin_url", "ftp://x/", "checkin_url");
    expect_set_error(p, "scep_url", "scep://x/", "scep_url");
    expect_set_error(p, "topic", "com.example.topic", "topic");
    expect_set_error(p, "topic", "com.apple.mgmt.", "topic");
    expect_set_error(p, "access_rights", "0", "access_rights");
    expect_set_error(p, "access_rights", "8192", "access_rights");
    expect_set_error(p, "access_rights", "-1", "access_rights");
    expect_set_error(p, "access_rights", "all", "access_rights");
    expect_set_error(p, "scep_key_size", "1024", "scep_key_size");
    expect_set_error(p, "scep_key_usage", "2", "scep_key_usage");
    expect_set_error(p, "scep_retries", "101", "scep_retries");
    expect_set_error(p, "scep_retry_delay", "x", "scep_retry_delay");
    expect_set_error(p, "scep_fingerprint", "md5", "scep_fingerprint");
    expect_set_error(p, "scep_subject", "CN=x", "scep_subject");
    expect_set_error(p, "scep_subject", "/CN=", "scep_subject");
    expect_set_error(p, "scep_subject", "/NOTANATTR=x", "scep_subject");
    expect_set_error(p, "scep_subject", "/", "scep_subject");
    expect_set_error(p, "scep_challenge", "", "scep_challenge");
    expect_set_error(p, "scep_challenge", "bad\nchallenge", "scep_challenge");
    expect_set_error(p, "scep_ca", tmp("notcert.txt"), "scep_ca");
    expect_set_error(p, "scep_ca", "/nonexistent", "scep_ca");
    expect_set_error(p, "trust_cert", "/nonexistent", "trust_cert");
    expect_set_error(p, "sign_cert", tmp("sign.key"), "sign_cert");
    expect_set_error(p, "sign_key", tmp("sign.pem"), "sign_key");
    expect_set_error(p, "sign_chain", tmp("notcert.txt"), "sign_chain");
    expect_set_error(p, "sign_message", "maybe", "sign_message");
    expect_set_error(p, "check_out_when_removed", "2",
                     "check_out_when_removed");
    expect_set_error(p, "use_development_apns", "", "use_development_apns");
    expect_set_error(p, "unsigned", "perhaps", "unsigned");
    expect_set_error(p, "server_capabilities", "com.apple.mdm.token bad!",
                     "server_capabilities");
    expect_set_error(p, "server_capabilities", "", "server_capabilities");
    expect_set_error(p, "identifier", "has space", "identifier");
    expect_set_error(p, "identifier", ".leading", "identifier");
    expect_set_error(p, "organization", "", "organization");
    expect_set_error(p, "display_name", "tab\there", "display_name");
    expect_set_error(p, "frobnicate", "1", "frobnicate");
    expect_set_error(p, "scep_subject",
                     "/1.2.3.4.5.6.7.8.9.10.11.12.13.14.15."
                     "16.17.18.19.20.21.22.23.24.25.26.27.28.29.30=x",
                     "scep_subject");
    mdm_profile_conf_free(p);
}

/* Random text through the parsers: no crash, no leak (ASan), and any
 * accepted value still builds. */
static void
test_random_option_values(void **state)
{
    static const char *const names[] = {
        "scep_subject", "server_url", "scep_url",     "server_capabilities",
        "identifier",   "topic",      "access_rights"};
    static const char alphabet[] = "/=\\,.:@[]-_ aZ09CNOUST%+";
    mdm_profile_conf_t *p;
    char v[64], err[512];
    unsigned char *out;
    size_t i, k, len, n;

    (void) state;
    for (i = 0; i < 3000; i++) {
        /* no files: thousands of rounds stay fast under ASan */
        p = mdm_profile_conf_new();
        set_ok(p, "server_url", URL);
        set_ok(p, "topic", TOPIC);
        set_ok(p, "scep_url", "https://mdm.example.com/scep");
        set_ok(p, "scep_fingerprint", "none");
        set_ok(p, "unsigned", "on");
        n = (size_t) (random() % (long) (sizeof(v) - 1));
        for (k = 0; k < n; k++) {
            v[k] = alphabet[random() % (long) (sizeof(alphabet) - 1)];
        }
        v[n] = '\0';
        if (i % 2 == 0 && n > 0) {
            v[0] = '/';
        }
        (void) mdm_profile_conf_set(p, names[i % 7], v, err, sizeof(err));
        if (mdm_profile_conf_finish(p, err, sizeof(err)) == 0) {
            out = NULL;
            assert_int_equal(
                mdm_profile_build_xml(p, NULL, NULL, NULL, &out, &len), 0);
            free(out);
        }
        mdm_profile_conf_free(p);
    }
}

static void
expect_finish_error(mdm_profile_conf_t *p, const char *must_contain)
{
    char err[512] = "";

    assert_int_equal(mdm_profile_conf_finish(p, err, sizeof(err)), -1);
    if (strstr(err, must_contain) == NULL) {
        fail_msg("finish: \"%s\" does not name \"%s\"", err, must_contain);
    }
    mdm_profile_conf_free(p);
}

static void
test_finish_errors(void **state)
{
    mdm_profile_conf_t *p;
    unsigned char *out = NULL;
    size_t len = 0;

    (void) state;
    p = base_conf(URL);
    set_ok(p, "unsigned", "on");
    expect_finish_error(p, "unsigned");

    p = mdm_profile_conf_new();
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    expect_finish_error(p, "server_url");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    expect_finish_error(p, "scep_url");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    expect_finish_error(p, "topic");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "unsigned", "on");
    expect_finish_error(p, "scep_ca");

    /* signing is the default: no certificate is an error */
    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    expect_finish_error(p, "sign_cert");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "sign_cert", tmp("sign.pem"));
    expect_finish_error(p, "sign_key");

    p = base_conf(URL);
    set_ok(p, "sign_key", pki("dev1.key"));
    expect_finish_error(p, "does not match");

    /* a CA certificate (keyCertSign, cRLSign) does not sign profiles */
    p = base_conf(URL);
    set_ok(p, "sign_cert", pki("root.pem"));
    set_ok(p, "sign_key", pki("root.key"));
    expect_finish_error(p, "digitalSignature");

    /* an encrypted key is refused (and nothing prompts for a password) */
    p = mdm_profile_conf_new();
    expect_set_error(p, "sign_key", tmp("sign-enc.key"), "sign_key");
    mdm_profile_conf_free(p);

    /* not finished: build refuses with its log id */
    p = base_conf(URL);
    last_log_id[0] = '\0';
    assert_int_equal(mdm_profile_build(p, NULL, log_cb, NULL, &out, &len), -1);
    assert_string_equal(last_log_id, MDM_PROFILE_LOG_CONF);
    finish_ok(p);
    /* finished: read-only */
    expect_set_error(p, "organization", "Late", "finished");
    mdm_profile_conf_free(p);
}

/** Files with several certificates, DER files, and the identifier path. */
static void
test_cert_files(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    X509 *x = load_cert(pki("root.pem"));
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *fpdata = NULL;
    uint64_t fplen = 0;
    int len;
    FILE *fp;
    plist_t root, sc;

    (void) state;
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    fp = fopen(tmp("root.der"), "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(der, 1, (size_t) len, fp), (size_t) len);
    fclose(fp);
    OPENSSL_free(der);
    set_ok(p, "server_url", "https://[::1]:8443/mdm");
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", tmp("root.der"));
    set_ok(p, "trust_cert", tmp("root.der"));
    set_ok(p, "trust_cert", pki("server-chain.pem"));
    set_ok(p, "unsigned", "yes");
    finish_ok(p);
    root = build_xml(p, NULL);
    /* root (DER) + server + int */
    assert_int_equal(
        plist_array_get_size(item(root, "PayloadContent", PLIST_ARRAY)), 5);
    assert_non_null(payload(root, "com.apple.security.root", 0));
    assert_non_null(payload(root, "com.apple.security.pkcs1", 1));
    assert_null(payload(root, "com.apple.security.pkcs1", 2));
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    plist_get_data_val(item(sc, "CAFingerprint", PLIST_DATA), &fpdata, &fplen);
    assert_int_equal(X509_digest(x, EVP_sha1(), md, &mdlen), 1);
    assert_int_equal(fplen, 20);
    assert_memory_equal(fpdata, md, 20);
    free(fpdata);
    /* an IPv6 literal still gives an identifier */
    {
        const char *id = str(root, "PayloadIdentifier");

        assert_true(strlen(id) > 11);
        assert_string_equal(id + strlen(id) - 11, ".enrollment");
    }
    plist_free(root);
    X509_free(x);
    mdm_profile_conf_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuids_stable),
        cmocka_unit_test(test_topic_from_push_cert),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_random_option_values),
        cmocka_unit_test(test_finish_errors),
        cmocka_unit_test(test_cert_files),
    };

    return cmocka_run_group_tests(tests, profile_setup, profile_teardown);
}
