/*
 * Unit tests for the Mdm-Signature header (core/mdm_identity_sig.c)
 * without a verifier: base64, CMS shape, signers, digests, the body.
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

static mdm_id_rc_t
verify_der(const unsigned char *der, size_t len)
{
    X509 *x = NULL;
    char *s = b64(der, len, 0);
    mdm_id_rc_t rc = verify_b64(s, test_body, TEST_BODY_LEN, &x);

    X509_free(x);
    free(s);
    return rc;
}

static void
test_synthetic_vector(void **state)
{
    unsigned char *hdr, *body, *pem;
    size_t hdrlen, bodylen, pemlen, i;
    X509 *signer = NULL, *expect;
    char got[65], want[65];
    BIO *bio;

    (void) state;
    hdr = read_all(path_in(samples_dir, "synthetic/Mdm-Signature.header.txt"),
                   &hdrlen);
    body = read_all(
        path_in(samples_dir, "synthetic/checkin-body.TokenUpdate.plist"),
        &bodylen);
    pem = read_all(path_in(samples_dir, "synthetic/signer-identity.cert.pem"),
                   &pemlen);
    bio = BIO_new_mem_buf(pem, (int) pemlen);
    expect = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(expect);

    assert_int_equal(verify_b64((char *) hdr, body, bodylen, &signer),
                     MDM_ID_OK);
    assert_non_null(signer);
    assert_int_equal(mdm_cert_sha256_hex(signer, got), 0);
    fingerprint(expect, want);
    assert_string_equal(got, want);
    assert_int_equal(X509_cmp(signer, expect), 0);
    X509_free(signer);

    /* every single changed body byte breaks the signature */
    for (i = 0; i < bodylen; i++) {
        body[i] ^= 0x01;
        signer = NULL;
        assert_int_equal(verify_b64((char *) hdr, body, bodylen, &signer),
                         MDM_ID_ERR_SIGNATURE);
        body[i] ^= 0x01;
    }
    /* so do a missing and an extra byte */
    assert_int_equal(verify_b64((char *) hdr, body, bodylen - 1, &signer),
                     MDM_ID_ERR_SIGNATURE);
    body[bodylen] = '\n';
    assert_int_equal(verify_b64((char *) hdr, body, bodylen + 1, &signer),
                     MDM_ID_ERR_SIGNATURE);

    X509_free(expect);
    free(hdr);
    free(body);
    free(pem);
}

static void
test_sha1_sha256_wrapped(void **state)
{
    const char *names[] = {"dev1", "devec"};
    const EVP_MD *mds[2];
    X509 *signer, *expect;
    char *sig;
    int n, m, wrap;

    (void) state;
    mds[0] = EVP_sha1();
    mds[1] = EVP_sha256();
    for (n = 0; n < 2; n++) {
        expect = pki_cert(names[n]);
        for (m = 0; m < 2; m++) {
            for (wrap = 0; wrap < 2; wrap++) {
                sig = sign_b64(names[n], mds[m], wrap);
                if (wrap) {
                    assert_non_null(strchr(sig, '\n'));
                }
                signer = NULL;
                assert_int_equal(
                    verify_b64(sig, test_body, TEST_BODY_LEN, &signer),
                    MDM_ID_OK);
                assert_same_cert(signer, expect);
                X509_free(signer);
                /* the digest algorithm does not weaken the body check */
                assert_int_equal(
                    verify_b64(sig, test_body, TEST_BODY_LEN - 1, &signer),
                    MDM_ID_ERR_SIGNATURE);
                free(sig);
            }
        }
        X509_free(expect);
    }
}

static void
test_body_with_crlf_is_binary(void **state)
{
    /* CMS_BINARY: a body with bare LFs must verify as signed */
    static const unsigned char body[] = "a\nb\nc\n";
    signer_spec_t s = {"dev1", NULL, 0};
    unsigned char *der;
    size_t derlen;
    X509 *x = NULL;
    char *sig;

    (void) state;
    s.md = EVP_sha256();
    make_cms(body, sizeof(body) - 1, &s, 1, 0, &der, &derlen);
    sig = b64(der, derlen, 0);
    assert_int_equal(verify_b64(sig, body, sizeof(body) - 1, &x), MDM_ID_OK);
    X509_free(x);
    assert_int_equal(
        verify_b64(sig, (const unsigned char *) "a\r\nb\r\nc\r\n", 9, &x),
        MDM_ID_ERR_SIGNATURE);
    free(sig);
    OPENSSL_free(der);
}

static void
test_bad_base64(void **state)
{
    static const char *bad[] = {
        "",     "   \n", "!!!!",    "AAAA=A", "A",    "AAAAA",
        "AA=A", "AAA==", "AAAA===", "QUJD-",  "\x80", "AA==AAAA",
    };
    X509 *x = NULL;
    char *sig, *junk;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(verify_b64(bad[i], test_body, TEST_BODY_LEN, &x),
                         MDM_ID_ERR_DECODE);
    }
    /* a valid signature followed by garbage is not a valid signature */
    sig = sign_b64("dev1", EVP_sha256(), 0);
    junk = malloc(strlen(sig) + 16);
    assert_non_null(junk);
    sprintf(junk, "%s-garbage", sig);
    assert_int_equal(verify_b64(junk, test_body, TEST_BODY_LEN, &x),
                     MDM_ID_ERR_DECODE);
    sprintf(junk, "%s#", sig);
    assert_int_equal(verify_b64(junk, test_body, TEST_BODY_LEN, &x),
                     MDM_ID_ERR_DECODE);
    /* NULL pointer with zero length */
    assert_int_equal(mdm_identity_from_signature(NULL, 0, test_body,
                                                 TEST_BODY_LEN, &x, NULL),
                     MDM_ID_ERR_DECODE);
    assert_null(x);
    free(junk);
    free(sig);
}

static void
test_bad_der(void **state)
{
    signer_spec_t s = {"dev1", NULL, 0};
    unsigned char *der, *longer, *cder = NULL;
    size_t derlen;
    X509 *cert;
    int clen;

    (void) state;
    s.md = EVP_sha256();
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_OK);

    /* truncated */
    assert_int_equal(verify_der(der, derlen - 1), MDM_ID_ERR_DECODE);
    assert_int_equal(verify_der(der, derlen / 2), MDM_ID_ERR_DECODE);
    assert_int_equal(verify_der(der, 3), MDM_ID_ERR_DECODE);
    /* trailing byte after the ContentInfo */
    longer = malloc(derlen + 1);
    assert_non_null(longer);
    memcpy(longer, der, derlen);
    longer[derlen] = 0;
    assert_int_equal(verify_der(longer, derlen + 1), MDM_ID_ERR_DECODE);

    /* DER, but a certificate, not a CMS */
    cert = pki_cert("dev1");
    clen = i2d_X509(cert, &cder);
    assert_true(clen > 0);
    assert_int_equal(verify_der(cder, (size_t) clen), MDM_ID_ERR_DECODE);

    OPENSSL_free(cder);
    X509_free(cert);
    free(longer);
    OPENSSL_free(der);
}

static void
test_not_signed_data(void **state)
{
    CMS_ContentInfo *cms;
    unsigned char *der;
    size_t derlen;
    BIO *in;

    (void) state;
    in = BIO_new_mem_buf(test_body, (int) TEST_BODY_LEN);
    cms = CMS_data_create(in, CMS_BINARY);
    assert_non_null(cms);
    der = cms_der(cms, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_ERR_CMS);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
}

static void
test_attached(void **state)
{
    signer_spec_t s = {"dev1", NULL, 0};
    unsigned char *der;
    size_t derlen;

    (void) state;
    s.md = EVP_sha256();
    /* a valid signature, and over the very same body, but embedded */
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 1, &der, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_ERR_CMS);
    OPENSSL_free(der);
}

static void
test_no_signer(void **state)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    CMS_ContentInfo *cms;
    unsigned char *der;
    size_t derlen;

    (void) state;
    assert_non_null(certs);
    assert_true(sk_X509_push(certs, pki_cert("dev1")) > 0);
    /* degenerate "certs-only" SignedData, as in a PKCS#7 bundle */
    cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL | CMS_DETACHED);
    assert_non_null(cms);
    assert_int_equal(CMS_is_detached(cms), 1);
    der = cms_der(cms, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_ERR_SIGNERS);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    sk_X509_pop_free(certs, X509_free);
}

/* a digestAlgorithms entry other than SHA-1/SHA-2 is refused before
 * OpenSSL's CMS_verify() (which leaks on one it cannot fetch) */
static void
test_unknown_digest(void **state)
{
    static const unsigned char sha256[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x01};
    signer_spec_t s[1] = {{"dev1", NULL, 0}};
    unsigned char *der, *p;
    size_t derlen;

    (void) state;
    s[0].md = EVP_sha256();
    make_cms(test_body, TEST_BODY_LEN, s, 1, 0, &der, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_OK);
    /* the first SHA-256 OID is the SignedData's digestAlgorithms entry:
     * give it an arc no digest has (2.16.968...) */
    p = memmem(der, derlen, sha256, sizeof(sha256));
    assert_non_null(p);
    p[3] = 0x87;
    assert_int_equal(verify_der(der, derlen), MDM_ID_ERR_SIGNATURE);
    OPENSSL_free(der);
}

static void
test_two_signers(void **state)
{
    signer_spec_t s[2] = {{"dev1", NULL, 0}, {"dev2", NULL, 0}};
    unsigned char *der;
    size_t derlen;

    (void) state;
    s[0].md = EVP_sha256();
    s[1].md = EVP_sha256();
    /* both signatures are valid: the identity would be ambiguous */
    make_cms(test_body, TEST_BODY_LEN, s, 2, 0, &der, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_ERR_SIGNERS);
    OPENSSL_free(der);
}

static void
test_signer_cert_missing(void **state)
{
    signer_spec_t s = {"dev1", NULL, CMS_NOCERTS};
    unsigned char *der;
    size_t derlen;

    (void) state;
    s.md = EVP_sha256();
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    assert_int_equal(verify_der(der, derlen), MDM_ID_ERR_SIGNERS);
    OPENSSL_free(der);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_vector),
        cmocka_unit_test(test_sha1_sha256_wrapped),
        cmocka_unit_test(test_body_with_crlf_is_binary),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_bad_der),
        cmocka_unit_test(test_not_signed_data),
        cmocka_unit_test(test_attached),
        cmocka_unit_test(test_no_signer),
        cmocka_unit_test(test_unknown_digest),
        cmocka_unit_test(test_two_signers),
        cmocka_unit_test(test_signer_cert_missing),
    };

    return cmocka_run_group_tests(tests, identity_setup, NULL);
}
