/*
 * ACME parsers without Redis: strict base64url, the strict CBOR decoder,
 * JWS (ES256, RS256, jwk and kid, refusals) and the "apple" attestation
 * statement (good chain, wrong root, malformed objects, the facts read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <plist/plist.h>

#include "mdm_acme.h"
#include "mdm_cbor.h"
#include "mdm_profile.h"
#include "test_acme_fixture.h"

#define URL  "https://mdm.example.com/acme"
#define KIDP URL "/acct/"

static att_pki_t apple, stranger;

/* ---------------------------------------------------------------- */

static void
test_b64url(void **state)
{
    unsigned char *out;
    size_t len;
    char *s;

    (void) state;
    assert_int_equal(mdm_b64url_decode("aGVsbG8", 7, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    /* padding, the standard alphabet, whitespace: refused */
    assert_int_equal(mdm_b64url_decode("aGVsbG8=", 8, &out, &len), -1);
    assert_int_equal(mdm_b64url_decode("a+8", 3, &out, &len), -1);
    assert_int_equal(mdm_b64url_decode("a/8", 3, &out, &len), -1);
    assert_int_equal(mdm_b64url_decode("aGVs bG8", 8, &out, &len), -1);
    /* one character left over; non-zero leftover bits */
    assert_int_equal(mdm_b64url_decode("aGVsb", 5, &out, &len), -1);
    assert_int_equal(mdm_b64url_decode("aGVsbG9", 7, &out, &len), -1);
    assert_null(out);
    /* the URL-safe characters */
    assert_int_equal(mdm_b64url_decode("-_8", 3, &out, &len), 0);
    assert_int_equal(len, 2);
    s = mdm_b64url(out, len);
    assert_string_equal(s, "-_8");
    free(s);
    free(out);
    assert_int_equal(mdm_b64url_decode("", 0, &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
}

/* ---------------------------------------------------------------- */

static int
cbor(const char *hex)
{
    unsigned char b[256];
    size_t n = strlen(hex) / 2, i;
    unsigned v;
    mdm_cbor_doc_t d;
    int rc;

    for (i = 0; i < n; i++) {
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (unsigned char) v;
    }
    rc = mdm_cbor_decode(b, n, &d);
    mdm_cbor_free(&d);
    return rc;
}

static void
test_cbor(void **state)
{
    static const unsigned char m[] = {0xa2, 0x63, 'f',  'm', 't', 0x65,
                                      'a',  'p',  'p',  'l', 'e', 0x61,
                                      'x',  0x82, 0x01, 0x20};
    mdm_cbor_doc_t d;
    const mdm_cbor_t *v;
    size_t x;

    (void) state;
    assert_int_equal(mdm_cbor_decode(m, sizeof(m), &d), 0);
    v = mdm_cbor_map_get(&d, 0, "fmt");
    assert_non_null(v);
    assert_int_equal(v->type, MDM_CBOR_TEXT);
    assert_int_equal(v->len, 5);
    v = mdm_cbor_map_get(&d, 0, "x");
    assert_non_null(v);
    x = mdm_cbor_index(&d, v);
    assert_int_equal(d.items[mdm_cbor_child(&d, x, 0)].u, 1);
    assert_int_equal(d.items[mdm_cbor_child(&d, x, 1)].type, MDM_CBOR_NINT);
    assert_null(mdm_cbor_map_get(&d, 0, "nope"));
    mdm_cbor_free(&d);

    assert_int_equal(cbor("00"), 0);
    assert_int_equal(cbor("f5"), 0);              /* true */
    assert_int_equal(cbor("1817"), -1);           /* 23 in two bytes */
    assert_int_equal(cbor("190017"), -1);         /* not the shortest form */
    assert_int_equal(cbor("5f4100ff"), -1);       /* indefinite bytes */
    assert_int_equal(cbor("9f01ff"), -1);         /* indefinite array */
    assert_int_equal(cbor("c100"), -1);           /* a tag */
    assert_int_equal(cbor("f93c00"), -1);         /* a half float */
    assert_int_equal(cbor("f7"), -1);             /* undefined */
    assert_int_equal(cbor("0000"), -1);           /* trailing byte */
    assert_int_equal(cbor("a2616101616102"), -1); /* duplicate key */
    assert_int_equal(cbor("a1820102"), -1);       /* an array as key, short */
    assert_int_equal(cbor("62c328"), -1);         /* invalid UTF-8 */
    assert_int_equal(cbor("45010203"), -1);       /* bytes past the end */
    assert_int_equal(cbor("9a7fffffff"), -1);     /* a huge array */
    assert_int_equal(cbor(""), -1);
    /* nesting deeper than the limit */
    assert_int_equal(cbor("81818181818181818181818181818181818100"), -1);
    assert_int_equal(cbor("8181818100"), 0);
}

/* ---------------------------------------------------------------- */

static mdm_jws_err_t
parse(const char *body, mdm_jws_t *j)
{
    const char *why = "";

    return mdm_jws_parse((const unsigned char *) body, strlen(body), KIDP, j,
                         &why);
}

static void
test_jws_good(void **state)
{
    EVP_PKEY *ec = key_ec(), *rsa = key_rsa();
    mdm_jws_t j;
    char *b, *kid, *kb;
    char tp[48];

    (void) state;
    b = jws_sign(ec, "ES256", "bm9uY2U", URL "/new-account", NULL,
                 "{\"termsOfServiceAgreed\":true}");
    assert_int_equal(parse(b, &j), MDM_JWS_OK);
    assert_string_equal(j.url, URL "/new-account");
    assert_string_equal(j.nonce, "bm9uY2U");
    assert_null(j.kid);
    assert_non_null(strstr(j.jwk, "\"kty\":\"EC\""));
    assert_string_equal((char *) j.payload, "{\"termsOfServiceAgreed\":true}");
    snprintf(tp, sizeof(tp), "%s", j.tp);
    /* the same key by kid: an account URL carries it */
    kb = mdm_b64url((unsigned char *) j.jwk, strlen(j.jwk));
    assert_true(asprintf(&kid, "%s%s", KIDP, kb) > 0);
    mdm_jws_free(&j);
    free(b);
    b = jws_sign(ec, "ES256", "bm9uY2U", URL "/new-order", kid, "");
    assert_int_equal(parse(b, &j), MDM_JWS_OK);
    assert_string_equal(j.tp, tp);
    assert_int_equal(j.payload_len, 0);
    mdm_jws_free(&j);
    free(b);
    /* the key of another account does not verify this signature */
    {
        EVP_PKEY *other = key_ec();

        b = jws_sign(other, "ES256", "bm9uY2U", URL "/new-order", kid, "{}");
        assert_int_equal(parse(b, &j), MDM_JWS_BADSIG);
        free(b);
        EVP_PKEY_free(other);
    }
    free(kid);
    free(kb);
    /* RS256 */
    b = jws_sign(rsa, "RS256", "bm9uY2U", URL "/new-account", NULL, "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_OK);
    assert_non_null(strstr(j.jwk, "\"kty\":\"RSA\""));
    assert_int_equal(strlen(j.tp), 43);
    mdm_jws_free(&j);
    free(b);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void
test_jws_refused(void **state)
{
    EVP_PKEY *ec = key_ec(), *rsa = key_rsa();
    mdm_jws_t j;
    char *b, *p;

    (void) state;
    /* a flipped signature bit */
    b = jws_sign(ec, "ES256", "bm9uY2U", URL "/x", NULL, "{}");
    p = strstr(b, "\"signature\":\"") + 13;
    *p = *p == 'A' ? 'B' : 'A';
    assert_int_equal(parse(b, &j), MDM_JWS_BADSIG);
    free(b);
    /* alg does not fit the key; unsupported algs */
    b = jws_sign(rsa, "ES256", "bm9uY2U", URL "/x", NULL, "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_BADALG);
    free(b);
    b = jws_sign(ec, "HS256", "bm9uY2U", URL "/x", NULL, "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_BADALG);
    free(b);
    b = jws_sign(ec, "none", "bm9uY2U", URL "/x", NULL, "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_BADALG);
    free(b);
    /* nonce not base64url */
    b = jws_sign(ec, "ES256", "no nce", URL "/x", NULL, "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_BADNONCE);
    free(b);
    /* a kid that is not ours */
    b = jws_sign(ec, "ES256", "bm9uY2U", URL "/x",
                 "https://evil.example/acct/eyJ9", "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_BADKEY);
    free(b);
    b = jws_sign(ec, "ES256", "bm9uY2U", URL "/x", KIDP "!!", "{}");
    assert_int_equal(parse(b, &j), MDM_JWS_BADKEY);
    free(b);
    /* not a flattened JWS */
    assert_int_equal(parse("{}", &j), MDM_JWS_MALFORMED);
    assert_int_equal(parse("[1]", &j), MDM_JWS_MALFORMED);
    assert_int_equal(parse("{\"protected\":\"e30\",\"payload\":\"\","
                           "\"signature\":\"\",\"header\":{}}",
                           &j),
                     MDM_JWS_MALFORMED);
    assert_int_equal(parse("{\"protected\":\"e30=\",\"payload\":\"\","
                           "\"signature\":\"\"}",
                           &j),
                     MDM_JWS_MALFORMED);
    /* {} as header: no alg */
    assert_int_equal(parse("{\"protected\":\"e30\",\"payload\":\"\","
                           "\"signature\":\"\"}",
                           &j),
                     MDM_JWS_BADALG);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

/* ---------------------------------------------------------------- */

static X509_STORE *
roots_of(const att_pki_t *p)
{
    X509_STORE *st = X509_STORE_new();

    X509_STORE_add_cert(st, p->root);
    return st;
}

static void
test_attest(void **state)
{
    EVP_PKEY *dev = key_ec();
    unsigned char nonce[32], *obj;
    size_t len;
    X509_STORE *good = roots_of(&apple), *bad = roots_of(&stranger);
    mdm_attest_t a;
    const char *why = "";
    char kh[65];

    (void) state;
    sha256_str("the-token", nonce);
    assert_int_equal(
        att_obj(&apple, dev, nonce, 32, "C02SERIAL", "UDID-1", &obj, &len), 0);
    /* good chain: the facts */
    assert_int_equal(mdm_attest_verify(obj, len, good, 0, &a, &why),
                     MDM_ATTEST_OK);
    assert_int_equal(a.nonce_len, 32);
    assert_memory_equal(a.nonce, nonce, 32);
    assert_string_equal(a.serial, "C02SERIAL");
    assert_string_equal(a.udid, "UDID-1");
    {
        X509_PUBKEY *pk = NULL;

        X509_PUBKEY_set(&pk, dev);
        assert_int_equal(mdm_acme_spki_hash(pk, kh), 0);
        X509_PUBKEY_free(pk);
    }
    assert_string_equal(a.keyhash, kh);
    /* wrong root */
    assert_int_equal(mdm_attest_verify(obj, len, bad, 0, &a, &why),
                     MDM_ATTEST_UNTRUSTED);
    /* too far in the future for the leaf */
    assert_int_equal(mdm_attest_verify(obj, len, good,
                                       (long long) time(NULL) + 864000, &a,
                                       &why),
                     MDM_ATTEST_UNTRUSTED);
    /* every truncation is refused */
    {
        size_t n;

        for (n = 0; n < len; n += 7) {
            assert_int_equal(mdm_attest_verify(obj, n, good, 0, &a, &why),
                             MDM_ATTEST_MALFORMED);
        }
    }
    /* another format */
    {
        unsigned char *p = memmem(obj, len, "apple", 5);

        p[0] = 'x';
        assert_int_equal(mdm_attest_verify(obj, len, good, 0, &a, &why),
                         MDM_ATTEST_MALFORMED);
        assert_non_null(strstr(why, "apple"));
    }
    free(obj);
    /* no serial and no UDID */
    assert_int_equal(att_obj(&apple, dev, nonce, 32, NULL, NULL, &obj, &len),
                     0);
    assert_int_equal(mdm_attest_verify(obj, len, good, 0, &a, &why),
                     MDM_ATTEST_MALFORMED);
    free(obj);
    /* a serial with a space */
    assert_int_equal(
        att_obj(&apple, dev, nonce, 32, "C02 SERIAL", "U", &obj, &len), 0);
    assert_int_equal(mdm_attest_verify(obj, len, good, 0, &a, &why),
                     MDM_ATTEST_MALFORMED);
    free(obj);
    X509_STORE_free(good);
    X509_STORE_free(bad);
    EVP_PKEY_free(dev);
}

static void
test_csr(void **state)
{
    EVP_PKEY *dev = key_ec();
    unsigned char *der;
    size_t len;
    char kh[65];
    const char *why = "";
    X509_REQ *req;

    (void) state;
    assert_int_equal(csr_der(dev, "dev", &der, &len), 0);
    req = mdm_acme_csr(der, len, kh, &why);
    assert_non_null(req);
    X509_REQ_free(req);
    der[len - 3] ^= 1; /* the signature */
    assert_null(mdm_acme_csr(der, len, kh, &why));
    assert_null(mdm_acme_csr(der, len - 1, kh, &why));
    OPENSSL_free(der);
    EVP_PKEY_free(dev);
}

/* ---------------------------------------------------------------- */
/* the enrollment profile's ACME payload                            */

static mdm_profile_conf_t *
acme_profile(const char *extra_name, const char *extra_value, char *err)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    static const char *opts[][2] = {
        {"server_url", "https://mdm.example.com/mdm"},
        {"topic", "com.apple.mgmt.External.test"},
        {"acme_url", "https://mdm.example.com/acme/directory"},
        {"acme_client_identifier", "C02TESTSERIAL"},
        {"unsigned", "on"},
    };
    size_t i;

    for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        assert_int_equal(
            mdm_profile_conf_set(p, opts[i][0], opts[i][1], err, 512), 0);
    }
    if (extra_name &&
        mdm_profile_conf_set(p, extra_name, extra_value, err, 512) != 0) {
        mdm_profile_conf_free(p);
        return NULL;
    }
    if (mdm_profile_conf_finish(p, err, 512) != 0) {
        mdm_profile_conf_free(p);
        return NULL;
    }
    return p;
}

static void
test_profile_payload(void **state)
{
    char err[512], *v = NULL, *uuid = NULL, *ident = NULL;
    mdm_profile_conf_t *p = acme_profile(NULL, NULL, err);
    unsigned char *out;
    size_t len, i;
    plist_t top = NULL, content, d, acme = NULL, mdm = NULL;
    uint64_t u;
    uint8_t b;

    (void) state;
    assert_non_null(p);
    assert_int_equal(mdm_profile_build(p, NULL, NULL, NULL, &out, &len), 0);
    plist_from_xml((const char *) out, (uint32_t) len, &top);
    free(out);
    assert_non_null(top);
    content = plist_dict_get_item(top, "PayloadContent");
    for (i = 0; i < plist_array_get_size(content); i++) {
        d = plist_array_get_item(content, (uint32_t) i);
        plist_get_string_val(plist_dict_get_item(d, "PayloadType"), &v);
        assert_string_not_equal(v, "com.apple.security.scep");
        if (strcmp(v, "com.apple.security.acme") == 0) {
            acme = d;
        } else if (strcmp(v, "com.apple.mdm") == 0) {
            mdm = d;
        }
        free(v);
    }
    assert_non_null(acme);
    assert_non_null(mdm);
    plist_get_string_val(plist_dict_get_item(acme, "DirectoryURL"), &v);
    assert_string_equal(v, "https://mdm.example.com/acme/directory");
    free(v);
    plist_get_string_val(plist_dict_get_item(acme, "ClientIdentifier"), &v);
    assert_string_equal(v, "C02TESTSERIAL");
    free(v);
    plist_get_string_val(plist_dict_get_item(acme, "KeyType"), &v);
    assert_string_equal(v, "ECSECPrimeRandom");
    free(v);
    plist_get_uint_val(plist_dict_get_item(acme, "KeySize"), &u);
    assert_int_equal(u, 384);
    plist_get_bool_val(plist_dict_get_item(acme, "HardwareBound"), &b);
    assert_true(b);
    plist_get_bool_val(plist_dict_get_item(acme, "Attest"), &b);
    assert_true(b);
    assert_non_null(plist_dict_get_item(acme, "Subject"));
    /* the MDM payload's identity is the ACME payload */
    plist_get_string_val(plist_dict_get_item(acme, "PayloadUUID"), &uuid);
    plist_get_string_val(plist_dict_get_item(mdm, "IdentityCertificateUUID"),
                         &ident);
    assert_string_equal(uuid, ident);
    free(uuid);
    free(ident);
    plist_free(top);
    mdm_profile_conf_free(p);

    /* Apple's key rules */
    assert_null(acme_profile("acme_key_type", "RSA", err));
    assert_non_null(strstr(err, "acme_key_size"));
    assert_null(acme_profile("acme_key_size", "521", err));
    assert_null(acme_profile("acme_hardware_bound", "off", err));
    assert_non_null(strstr(err, "acme_attest"));
    assert_null(acme_profile("acme_url", "http://plain.example/acme", err));
    p = acme_profile("acme_key_size", "256", err);
    assert_non_null(p);
    mdm_profile_conf_free(p);
    p = mdm_profile_conf_new();
    assert_int_equal(mdm_profile_conf_set(p, "server_url",
                                          "https://mdm.example.com/mdm", err,
                                          sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "topic",
                                          "com.apple.mgmt.External.t", err,
                                          sizeof(err)),
                     0);
    assert_int_equal(mdm_profile_conf_set(p, "acme_url",
                                          "https://mdm.example.com/acme", err,
                                          sizeof(err)),
                     0);
    assert_int_equal(
        mdm_profile_conf_set(p, "unsigned", "on", err, sizeof(err)), 0);
    assert_int_equal(mdm_profile_conf_finish(p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "acme_client_identifier"));
    mdm_profile_conf_free(p);
}

static int
setup(void **state)
{
    (void) state;
    return att_pki_new(&apple, "Test Attestation") ||
           att_pki_new(&stranger, "Stranger");
}

static int
teardown(void **state)
{
    (void) state;
    att_pki_free(&apple);
    att_pki_free(&stranger);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_cbor),
        cmocka_unit_test(test_jws_good),
        cmocka_unit_test(test_jws_refused),
        cmocka_unit_test(test_attest),
        cmocka_unit_test(test_csr),
        cmocka_unit_test(test_profile_payload),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
