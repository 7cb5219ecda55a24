/*
 * Unit tests for certificates from the TLS layer and from a trusted
 * proxy's header (core/mdm_identity_tls.c), without and with the
 * verifier's cache of decoded certificates.
 *
 * Needs MDM_TEST_PKI and MDM_SAMPLES (see test_identity_fixture.c).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mdm_der.h"
#include "mdm_identity.h"
#include "test_identity_fixture.h"

static void
test_from_cert(void **state)
{
    unsigned char *pem, *der = NULL, *longer;
    size_t pemlen;
    X509 *x = NULL, *expect = pki_cert("dev1");
    const char *why;
    int derlen;

    (void) state;
    pem = read_all(path_in(pki_dir, "dev1.pem"), &pemlen);
    assert_int_equal(mdm_identity_from_cert(pem, pemlen, &x, &why), MDM_ID_OK);
    assert_same_cert(x, expect);
    X509_free(x);

    derlen = i2d_X509(expect, &der);
    assert_true(derlen > 0);
    x = NULL;
    assert_int_equal(mdm_identity_from_cert(der, (size_t) derlen, &x, &why),
                     MDM_ID_OK);
    assert_same_cert(x, expect);
    X509_free(x);

    /* bad input */
    assert_int_equal(mdm_identity_from_cert(der, (size_t) derlen - 1, &x, &why),
                     MDM_ID_ERR_DECODE);
    assert_null(x);
    longer = malloc((size_t) derlen + 1);
    assert_non_null(longer);
    memcpy(longer, der, (size_t) derlen);
    longer[derlen] = 0;
    assert_int_equal(
        mdm_identity_from_cert(longer, (size_t) derlen + 1, &x, &why),
        MDM_ID_ERR_DECODE);
    assert_int_equal(mdm_identity_from_cert(pem, pemlen / 2, &x, &why),
                     MDM_ID_ERR_DECODE);
    assert_int_equal(
        mdm_identity_from_cert((const unsigned char *) "", 0, &x, &why),
        MDM_ID_ERR_DECODE);
    assert_int_equal(
        mdm_identity_from_cert((const unsigned char *) "garbage", 7, &x, &why),
        MDM_ID_ERR_DECODE);
    assert_null(x);
    assert_int_equal(ERR_peek_error(), 0);

    free(longer);
    OPENSSL_free(der);
    X509_free(expect);
    free(pem);
}

/** Percent-encode all but unreserved characters, like ngx_escape_uri(). */
static char *
url_escape(const unsigned char *in, size_t len, int keep_plus)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(len * 3 + 1), *o = out;
    size_t i;

    assert_non_null(out);
    for (i = 0; i < len; i++) {
        unsigned char c = in[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || (keep_plus && c == '+')) {
            *o++ = (char) c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xf];
        }
    }
    *o = '\0';
    return out;
}

static mdm_id_rc_t
header(const char *value, X509 **x)
{
    const char *why = NULL;
    mdm_id_rc_t rc;

    *x = NULL;
    rc = mdm_identity_from_header(value, strlen(value), x, &why);
    assert_non_null(why);
    if (rc != MDM_ID_OK) {
        assert_null(*x);
    }
    assert_int_equal(ERR_peek_error(), 0);
    return rc;
}

static void
test_from_header(void **state)
{
    X509 *x, *expect = pki_cert("dev1");
    unsigned char *pem, *der = NULL;
    size_t pemlen;
    char *enc, *val, *val2, *esc;
    int derlen;

    (void) state;
    derlen = i2d_X509(expect, &der);
    assert_true(derlen > 0);
    enc = b64(der, (size_t) derlen, 0);
    val = malloc(strlen(enc) + 8);
    assert_non_null(val);

    /* RFC 9440 */
    sprintf(val, ":%s:", enc);
    assert_int_equal(header(val, &x), MDM_ID_OK);
    assert_same_cert(x, expect);
    X509_free(x);
    sprintf(val, " :%s:\t", enc);
    assert_int_equal(header(val, &x), MDM_ID_OK);
    X509_free(x);

    /* URL-escaped PEM, as nginx's $ssl_client_escaped_cert */
    pem = read_all(path_in(pki_dir, "dev1.pem"), &pemlen);
    assert_non_null(memchr(pem, '+', pemlen));
    esc = url_escape(pem, pemlen, 0);
    assert_int_equal(header(esc, &x), MDM_ID_OK);
    assert_same_cert(x, expect);
    X509_free(x);
    /* the PEM must start the value: no text before it is skipped */
    val2 = malloc(strlen(esc) + 8);
    assert_non_null(val2);
    sprintf(val2, "junk%%0A%s", esc);
    assert_int_equal(header(val2, &x), MDM_ID_ERR_DECODE);
    free(val2);
    free(esc);
    /* a literal '+' is base64, not an escaped space */
    esc = url_escape(pem, pemlen, 1);
    assert_non_null(strchr(esc, '+'));
    assert_int_equal(header(esc, &x), MDM_ID_OK);
    assert_same_cert(x, expect);
    X509_free(x);
    free(esc);

    /* bad values */
    assert_int_equal(header("", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header("  ", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header(":", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header("::", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header(":!!!!:", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header(":QUJD:", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header("%zz", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header("%4", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header("not a certificate", &x), MDM_ID_ERR_DECODE);
    assert_int_equal(header("-----BEGIN%20CERTIFICATE-----%0Agarbage%0A"
                            "-----END%20CERTIFICATE-----%0A",
                            &x),
                     MDM_ID_ERR_DECODE);
    /* strict colons */
    sprintf(val, ":%s", enc);
    assert_int_equal(header(val, &x), MDM_ID_ERR_DECODE);
    sprintf(val, "%s:", enc);
    assert_int_equal(header(val, &x), MDM_ID_ERR_DECODE);
    sprintf(val, ":%sA", enc);
    assert_int_equal(header(val, &x), MDM_ID_ERR_DECODE);
    /* sf-binary has no whitespace inside */
    sprintf(val, ":%.10s %s:", enc, enc + 10);
    assert_int_equal(header(val, &x), MDM_ID_ERR_DECODE);
    /* RFC 9440 carries DER: PEM text between colons is refused */
    free(val);
    val = malloc(pemlen * 2 + 8);
    assert_non_null(val);
    free(enc);
    enc = b64(pem, pemlen, 0);
    sprintf(val, ":%s:", enc);
    assert_int_equal(header(val, &x), MDM_ID_ERR_DECODE);
    /* raw DER base64 without colons is neither form */
    free(enc);
    enc = b64(der, (size_t) derlen, 0);
    assert_int_equal(header(enc, &x), MDM_ID_ERR_DECODE);

    free(val);
    free(enc);
    free(pem);
    OPENSSL_free(der);
    X509_free(expect);
}

/** mdm_verifier_header(), likewise. */
static mdm_id_rc_t
vheader(mdm_verifier_t *v, const char *value, X509 **x, char hash[65])
{
    const char *why = NULL;
    char want[65];
    mdm_id_rc_t rc;

    memset(hash, 'x', 64);
    hash[64] = '\0';
    rc = mdm_verifier_header(v, value, strlen(value), x, hash, &why);
    assert_non_null(why);
    if (rc == MDM_ID_OK) {
        assert_non_null(*x);
        fingerprint(*x, want);
        assert_string_equal(hash, want);
    } else {
        assert_null(*x);
    }
    assert_int_equal(ERR_peek_error(), 0);
    return rc;
}

static void
test_vcert_vheader(void **state)
{
    static const char *names[] = {"dev1", "devec"};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *first, *x, *expect;
    unsigned char *pem, *der, *longer;
    size_t pemlen, derlen, i;
    char hash[65], want[65], *enc, *val, *esc;

    (void) state;
    for (i = 0; i < 2; i++) {
        expect = pki_cert(names[i]);
        fingerprint(expect, want);
        pem = read_all(path_in(pki_dir, i ? "devec.pem" : "dev1.pem"), &pemlen);
        der = cert_der(expect, &derlen);
        enc = b64(der, derlen, 0);
        val = malloc(strlen(enc) + 3);
        assert_non_null(val);
        sprintf(val, ":%s:", enc);
        esc = url_escape(pem, pemlen, 0);

        /* PEM: decoded once, then the same object */
        assert_int_equal(vcert(v, pem, pemlen, &first, hash), MDM_ID_OK);
        assert_int_equal(X509_cmp(first, expect), 0);
        assert_string_equal(hash, want);
        assert_int_equal(vcert(v, pem, pemlen, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        assert_string_equal(hash, want);
        X509_free(x);
        /* the cache is keyed by the DER: DER and both header forms of
         * the same certificate find the same entry */
        assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        assert_string_equal(hash, want);
        X509_free(x);
        assert_int_equal(vheader(v, val, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        assert_string_equal(hash, want);
        X509_free(x);
        assert_int_equal(vheader(v, esc, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        assert_string_equal(hash, want);
        X509_free(x);
        X509_free(first);

        /* first seen in a header, then as DER */
        mdm_verifier_free(v);
        v = cert_cache_verifier(16);
        assert_int_equal(vheader(v, val, &first, hash), MDM_ID_OK);
        assert_int_equal(X509_cmp(first, expect), 0);
        assert_int_equal(vheader(v, val, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        X509_free(x);
        assert_int_equal(vheader(v, esc, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        X509_free(x);
        assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_OK);
        assert_ptr_equal(x, first);
        assert_string_equal(hash, want);
        X509_free(x);
        X509_free(first);

        /* refusals are the same as without a cache, and not cached */
        assert_int_equal(vcert(v, der, derlen - 1, &x, hash),
                         MDM_ID_ERR_DECODE);
        longer = malloc(derlen + 1);
        assert_non_null(longer);
        memcpy(longer, der, derlen);
        longer[derlen] = 0;
        assert_int_equal(vcert(v, longer, derlen + 1, &x, hash),
                         MDM_ID_ERR_DECODE);
        free(longer);
        assert_int_equal(vcert(v, pem, pemlen / 2, &x, hash),
                         MDM_ID_ERR_DECODE);
        assert_int_equal(
            vcert(v, (const unsigned char *) "garbage", 7, &x, hash),
            MDM_ID_ERR_DECODE);
        assert_int_equal(mdm_verifier_cert(v, der, 0, &x, hash, NULL),
                         MDM_ID_ERR_DECODE);
        assert_null(x);
        der[4] ^= 0xff;
        assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_ERR_DECODE);
        assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_ERR_DECODE);
        der[4] ^= 0xff;
        assert_int_equal(vheader(v, ":QUJD:", &x, hash), MDM_ID_ERR_DECODE);
        assert_int_equal(vheader(v, "", &x, hash), MDM_ID_ERR_DECODE);
        assert_int_equal(vheader(v, "%zz", &x, hash), MDM_ID_ERR_DECODE);
        assert_int_equal(vheader(v, enc, &x, hash), MDM_ID_ERR_DECODE);

        free(esc);
        free(val);
        free(enc);
        OPENSSL_free(der);
        free(pem);
        X509_free(expect);
    }
    mdm_verifier_free(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_cert),
        cmocka_unit_test(test_from_header),
        cmocka_unit_test(test_vcert_vheader),
    };

    return cmocka_run_group_tests(tests, identity_setup, NULL);
}
