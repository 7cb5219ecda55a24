/*
 * Unit tests for building the enrollment profile: the payloads of the XML
 * plist (mdm_profile_payload.c) and the CMS signature
 * (mdm_profile_sign.c), also from several threads at once.
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
test_signed_profile_keys(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    plist_t root, scep, sc, mdm, caps, subj, rdn, pair, fp, trust;
    X509 *rootc = load_cert(pki("root.pem"));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *fpdata = NULL;
    uint64_t fplen = 0;

    (void) state;
    finish_ok(p);
    assert_string_equal(mdm_profile_topic(p), TOPIC);
    root = build_signed(p, "one-time-XYZ");

    /* top level */
    assert_string_equal(str(root, "PayloadType"), "Configuration");
    common_keys(root);
    assert_string_equal(str(root, "PayloadIdentifier"),
                        "com.example.mdm.enrollment");
    assert_string_equal(str(root, "PayloadOrganization"), "Example Org");
    str(root, "PayloadDisplayName");
    /* cafile.pem = root + int: one root payload, one pkcs1; first */
    assert_int_equal(
        plist_array_get_size(item(root, "PayloadContent", PLIST_ARRAY)), 4);
    trust = payload(root, "com.apple.security.root", 0);
    assert_non_null(trust);
    common_keys(trust);
    item(trust, "PayloadContent", PLIST_DATA);
    str(trust, "PayloadCertificateFileName");
    assert_ptr_equal(
        plist_array_get_item(item(root, "PayloadContent", PLIST_ARRAY), 0),
        trust);
    trust = payload(root, "com.apple.security.pkcs1", 0);
    assert_non_null(trust);
    common_keys(trust);
    item(trust, "PayloadContent", PLIST_DATA);

    /* SCEP */
    scep = payload(root, "com.apple.security.scep", 0);
    assert_non_null(scep);
    common_keys(scep);
    sc = item(scep, "PayloadContent", PLIST_DICT);
    assert_string_equal(str(sc, "URL"), "https://mdm.example.com/scep");
    assert_string_equal(str(sc, "Challenge"), "one-time-XYZ");
    assert_int_equal(uint_of(sc, "Keysize"), 2048);
    assert_string_equal(str(sc, "Key Type"), "RSA");
    assert_int_equal(uint_of(sc, "Key Usage"), 5);
    assert_int_equal(uint_of(sc, "Retries"), 3);
    assert_int_equal(uint_of(sc, "RetryDelay"), 10);
    subj = item(sc, "Subject", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(subj), 2);
    rdn = plist_array_get_item(subj, 1);
    assert_int_equal(plist_get_node_type(rdn), PLIST_ARRAY);
    pair = plist_array_get_item(rdn, 0);
    assert_int_equal(plist_get_node_type(pair), PLIST_ARRAY);
    assert_string_equal(
        plist_get_string_ptr(plist_array_get_item(pair, 0), NULL), "CN");
    /* CAFingerprint: SHA-1 of the root, though int.pem came first */
    fp = item(sc, "CAFingerprint", PLIST_DATA);
    plist_get_data_val(fp, &fpdata, &fplen);
    assert_int_equal(X509_digest(rootc, EVP_sha1(), md, &mdlen), 1);
    assert_int_equal(fplen, mdlen);
    assert_memory_equal(fpdata, md, mdlen);
    free(fpdata);

    /* MDM */
    mdm = payload(root, "com.apple.mdm", 0);
    assert_non_null(mdm);
    common_keys(mdm);
    assert_ptr_equal(
        plist_array_get_item(item(root, "PayloadContent", PLIST_ARRAY), 3),
        mdm);
    assert_string_equal(str(mdm, "ServerURL"), URL);
    assert_string_equal(str(mdm, "CheckInURL"),
                        "https://mdm.example.com/mdm/checkin");
    assert_string_equal(str(mdm, "Topic"), TOPIC);
    assert_string_equal(str(mdm, "IdentityCertificateUUID"),
                        str(scep, "PayloadUUID"));
    assert_int_equal(boolean(mdm, "SignMessage"), 1);
    assert_int_equal(uint_of(mdm, "AccessRights"), 8191);
    assert_int_equal(boolean(mdm, "CheckOutWhenRemoved"), 1);
    assert_null(plist_dict_get_item(mdm, "UseDevelopmentAPNS"));
    caps = item(mdm, "ServerCapabilities", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(caps), 2);
    assert_string_equal(
        plist_get_string_ptr(plist_array_get_item(caps, 0), NULL),
        "com.apple.mdm.per-user-connections");
    assert_string_equal(
        plist_get_string_ptr(plist_array_get_item(caps, 1), NULL),
        "com.apple.mdm.bootstraptoken");

    plist_free(root);
    X509_free(rootc);
    mdm_profile_conf_free(p);
}

static void
test_options_reach_the_plist(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    plist_t root, sc, mdm, subj, pair, caps;
    const char *want[][2] = {{"C", "US"},
                             {"O", "Ex/ample"},
                             {"CN", "dev 1"},
                             {"1.2.3.4", "x"},
                             {"1.2.840.113549.1.9.1", "a@example.com"}};
    size_t i;

    (void) state;
    set_ok(p, "scep_subject",
           "/C=US/O=Ex\\/ample/CN=dev 1/1.2.3.4=x/emailAddress=a@example.com");
    set_ok(p, "scep_name", "ca-1");
    set_ok(p, "scep_key_size", "4096");
    set_ok(p, "scep_key_usage", "1");
    set_ok(p, "scep_retries", "7");
    set_ok(p, "scep_retry_delay", "30");
    set_ok(p, "scep_fingerprint", "sha256");
    set_ok(p, "access_rights", "17");
    set_ok(p, "sign_message", "off");
    set_ok(p, "check_out_when_removed", "false");
    set_ok(p, "use_development_apns", "on");
    set_ok(p, "server_capabilities", "com.apple.mdm.token");
    set_ok(p, "identifier", "org.example.enroll");
    set_ok(p, "display_name", "Enroll Me");
    set_ok(p, "description", "Lets Example manage this device");
    finish_ok(p);
    root = build_signed(p, NULL);
    assert_string_equal(str(root, "PayloadIdentifier"), "org.example.enroll");
    assert_string_equal(str(root, "PayloadDisplayName"), "Enroll Me");
    str(root, "PayloadDescription");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(
        str(payload(root, "com.apple.security.scep", 0), "PayloadIdentifier"),
        "org.example.enroll.scep");
    assert_string_equal(str(sc, "Name"), "ca-1");
    assert_int_equal(uint_of(sc, "Keysize"), 4096);
    assert_int_equal(uint_of(sc, "Key Usage"), 1);
    assert_int_equal(uint_of(sc, "Retries"), 7);
    assert_int_equal(uint_of(sc, "RetryDelay"), 30);
    /* no challenge given, none configured: no key */
    assert_null(plist_dict_get_item(sc, "Challenge"));
    {
        char *d = NULL;
        uint64_t n = 0;

        plist_get_data_val(item(sc, "CAFingerprint", PLIST_DATA), &d, &n);
        assert_int_equal(n, 32);
        free(d);
    }
    subj = item(sc, "Subject", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(subj), 5);
    for (i = 0; i < 5; i++) {
        pair =
            plist_array_get_item(plist_array_get_item(subj, (uint32_t) i), 0);
        assert_string_equal(
            plist_get_string_ptr(plist_array_get_item(pair, 0), NULL),
            want[i][0]);
        assert_string_equal(
            plist_get_string_ptr(plist_array_get_item(pair, 1), NULL),
            want[i][1]);
    }
    mdm = payload(root, "com.apple.mdm", 0);
    assert_int_equal(uint_of(mdm, "AccessRights"), 17);
    assert_int_equal(boolean(mdm, "SignMessage"), 0);
    assert_int_equal(boolean(mdm, "CheckOutWhenRemoved"), 0);
    assert_int_equal(boolean(mdm, "UseDevelopmentAPNS"), 1);
    caps = item(mdm, "ServerCapabilities", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(caps), 1);
    plist_free(root);
    mdm_profile_conf_free(p);

    /* no capabilities at all, no CAFingerprint, no scep_ca needed */
    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "http://scep.example.com/cgi-bin/pkiclient.exe");
    set_ok(p, "scep_fingerprint", "none");
    set_ok(p, "server_capabilities", "none");
    set_ok(p, "unsigned", "on");
    finish_ok(p);
    root = build_xml(p, NULL);
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_null(plist_dict_get_item(sc, "CAFingerprint"));
    mdm = payload(root, "com.apple.mdm", 0);
    assert_null(plist_dict_get_item(mdm, "ServerCapabilities"));
    assert_null(plist_dict_get_item(mdm, "CheckInURL"));
    assert_null(payload(root, "com.apple.security.root", 0));
    plist_free(root);
    mdm_profile_conf_free(p);
}

/** The chain may come in the sign_cert file itself. */
static void
test_chain_in_sign_cert_file(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    plist_t root;

    (void) state;
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "sign_cert", tmp("sign-int.pem"));
    set_ok(p, "sign_key", tmp("sign.key"));
    finish_ok(p);
    /* verify_and_parse trusts only the root: int must be in the CMS */
    root = build_signed(p, NULL);
    assert_string_equal(str(root, "PayloadType"), "Configuration");
    plist_free(root);
    mdm_profile_conf_free(p);
}

static void
test_unsigned_mode(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    unsigned char *out = NULL;
    size_t len = 0;
    plist_t root;

    (void) state;
    set_ok(p, "server_url", "https://MDM.Example.com:8443/mdm/connect");
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "unsigned", "on");
    finish_ok(p);
    assert_int_equal(mdm_profile_build(p, "c", log_cb, NULL, &out, &len), 0);
    /* the profile is the XML plist itself */
    root = xml_parse(out, len);
    assert_string_equal(str(root, "PayloadType"), "Configuration");
    assert_string_equal(str(item(payload(root, "com.apple.security.scep", 0),
                                 "PayloadContent", PLIST_DICT),
                            "Challenge"),
                        "c");
    /* default identifier from the host: reversed, lower case, no port */
    assert_string_equal(str(root, "PayloadIdentifier"),
                        "com.example.mdm.enrollment");
    plist_free(root);
    free(out);
    mdm_profile_conf_free(p);
}

static void
test_challenges(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    unsigned char *out = NULL;
    size_t len = 0;
    plist_t root, sc;

    (void) state;
    set_ok(p, "scep_challenge", "static-secret");
    finish_ok(p);
    /* NULL: the static one */
    root = build_xml(p, NULL);
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(str(sc, "Challenge"), "static-secret");
    plist_free(root);
    /* the caller's (one-time) challenge wins */
    root = build_signed(p, "one-time-1");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(str(sc, "Challenge"), "one-time-1");
    plist_free(root);
    /* "": no Challenge at all */
    root = build_xml(p, "");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_null(plist_dict_get_item(sc, "Challenge"));
    plist_free(root);
    /* XML-special characters are escaped, and come back intact */
    root = build_signed(p, "a<b>&\"c'");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(str(sc, "Challenge"), "a<b>&\"c'");
    plist_free(root);
    /* control characters are refused with their log id */
    last_log_id[0] = '\0';
    assert_int_equal(
        mdm_profile_build(p, "bad\r\nchallenge", log_cb, NULL, &out, &len), -1);
    assert_string_equal(last_log_id, MDM_PROFILE_LOG_CHALLENGE);
    assert_null(out);
    mdm_profile_conf_free(p);
}

/* Apache builds profiles in several threads from one configuration. */
struct thread_arg {
    const mdm_profile_conf_t *p;
    int failures;
    unsigned char *first;
    size_t first_len;
};

static void *
build_many(void *v)
{
    struct thread_arg *a = v;
    unsigned char *out;
    size_t len;
    int i;

    for (i = 0; i < 25; i++) {
        out = NULL;
        if (mdm_profile_build(a->p, "threaded", NULL, NULL, &out, &len) != 0 ||
            len < 100) {
            a->failures++;
        }
        if (i == 0) {
            a->first = out;
            a->first_len = len;
        } else {
            free(out);
        }
    }
    return NULL;
}

static void
test_threads(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    struct thread_arg args[4];
    pthread_t th[4];
    char u0[2048], u[2048];
    plist_t root;
    int i;

    (void) state;
    finish_ok(p);
    memset(args, 0, sizeof(args));
    for (i = 0; i < 4; i++) {
        args[i].p = p;
        assert_int_equal(pthread_create(&th[i], NULL, build_many, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(args[i].failures, 0);
        root = verify_and_parse(args[i].first, args[i].first_len);
        collect_uuids(root, i == 0 ? u0 : u, sizeof(u));
        if (i > 0) {
            assert_string_equal(u0, u);
        }
        plist_free(root);
        free(args[i].first);
    }
    mdm_profile_conf_free(p);
}

/* anchor_certs for a DEP profile: the trust_cert certificates in file
 * order, each the base64 of its DER, as a JSON array */
static void
test_anchor_certs(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    STACK_OF(X509) *sk = NULL;
    char *json = NULL, *expect, *b64;
    unsigned char *der;
    size_t len = 0, used;
    BIO *bio;
    X509 *x;
    int i, dlen;

    (void) state;
    /* none: an empty array, unfinished configuration */
    assert_int_equal(mdm_profile_anchor_certs(p, &json, &len), 0);
    assert_string_equal(json, "[]");
    assert_int_equal(len, 2);
    free(json);
    set_ok(p, "trust_cert", pki("cafile.pem"));
    set_ok(p, "trust_cert", pki("root.pem"));
    assert_int_equal(mdm_profile_anchor_certs(p, &json, &len), 0);
    assert_int_equal(strlen(json), len);

    sk = sk_X509_new_null();
    bio = BIO_new_file(pki("cafile.pem"), "r");
    assert_non_null(bio);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(sk, x);
    }
    BIO_free(bio);
    ERR_clear_error();
    sk_X509_push(sk, load_cert(pki("root.pem")));
    assert_int_equal(sk_X509_num(sk), 3);
    expect = calloc(1, 65536);
    assert_non_null(expect);
    used = 0;
    expect[used++] = '[';
    for (i = 0; i < sk_X509_num(sk); i++) {
        der = NULL;
        dlen = i2d_X509(sk_X509_value(sk, i), &der);
        assert_true(dlen > 0);
        b64 = calloc(1, 4 * ((size_t) dlen + 2) / 3 + 1);
        assert_non_null(b64);
        EVP_EncodeBlock((unsigned char *) b64, der, dlen);
        used += (size_t) snprintf(expect + used, 65536 - used, "%s\"%s\"",
                                  i ? "," : "", b64);
        free(b64);
        OPENSSL_free(der);
    }
    expect[used++] = ']';
    assert_string_equal(json, expect);
    free(expect);
    free(json);
    sk_X509_pop_free(sk, X509_free);
    mdm_profile_conf_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_profile_keys),
        cmocka_unit_test(test_options_reach_the_plist),
        cmocka_unit_test(test_unsigned_mode),
        cmocka_unit_test(test_challenges),
        cmocka_unit_test(test_chain_in_sign_cert_file),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_anchor_certs),
    };

    return cmocka_run_group_tests(tests, profile_setup, profile_teardown);
}
