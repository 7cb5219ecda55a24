/*
 * Unit tests for core/mdm_identity.c.
 *
 * Needs MDM_TEST_PKI (a directory made by t/pki/mkpki.sh) and MDM_SAMPLES
 * (t/samples). Signatures are made here with the OpenSSL API so that each
 * refusal rule is exercised on its own.
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

#define DAY 86400

static const char *pki_dir;
static const char *samples_dir;

static const unsigned char test_body[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict>\n"
    "<key>MessageType</key><string>Authenticate</string>\n"
    "<key>UDID</key><string>0000-TEST</string>\n"
    "</dict></plist>\n";
#define TEST_BODY_LEN (sizeof(test_body) - 1)

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static char *
path_in(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

/** Whole file, malloc'd and NUL-terminated; the caller frees it. */
static unsigned char *
read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, fp), (size_t) n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t) n;
    return buf;
}

static X509 *
load_cert_path(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x;

    assert_non_null(fp);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static X509 *
pki_cert(const char *name)
{
    char file[256];

    snprintf(file, sizeof(file), "%s.pem", name);
    return load_cert_path(path_in(pki_dir, file));
}

static EVP_PKEY *
pki_key(const char *name)
{
    char file[256];
    FILE *fp;
    EVP_PKEY *k;

    snprintf(file, sizeof(file), "%s.key", name);
    fp = fopen(path_in(pki_dir, file), "r");
    assert_non_null(fp);
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

static time_t
asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return timegm(&tm);
}

/** Independent fingerprint: SHA-256 over i2d_X509(), lowercase hex. */
static void
fingerprint(X509 *x, char out[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len, i;

    len = i2d_X509(x, &der);
    assert_true(len > 0);
    assert_int_equal(
        EVP_Digest(der, (size_t) len, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    for (i = 0; i < 32; i++) {
        sprintf(out + 2 * i, "%02x", md[i]);
    }
    OPENSSL_free(der);
}

/** Base64 of der, one line, or wrapped at 76 columns; caller frees. */
static char *
b64(const unsigned char *der, size_t len, int wrap)
{
    size_t n = 4 * ((len + 2) / 3);
    char *flat = malloc(n + 1), *out;
    size_t i, o = 0;

    assert_non_null(flat);
    assert_int_equal(EVP_EncodeBlock((unsigned char *) flat, der, (int) len),
                     (int) n);
    if (!wrap) {
        return flat;
    }
    out = malloc(n + n / 76 * 2 + 3);
    assert_non_null(out);
    for (i = 0; i < n; i++) {
        if (i > 0 && i % 76 == 0) {
            out[o++] = '\r';
            out[o++] = '\n';
        }
        out[o++] = flat[i];
    }
    out[o++] = '\n';
    out[o] = '\0';
    free(flat);
    return out;
}

static unsigned char *
cms_der(CMS_ContentInfo *cms, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);

    assert_true(n > 0);
    *len = (size_t) n;
    return der;
}

typedef struct {
    const char *name; /* PKI name of the signer */
    const EVP_MD *md;
    unsigned int flags; /* extra CMS_add1_signer flags, e.g. CMS_NOCERTS */
} signer_spec_t;

/**
 * CMS SignedData over body; detached unless attached is set. Returns the
 * DER (OPENSSL_free) in *der.
 */
static void
make_cms(const unsigned char *body, size_t len, const signer_spec_t *s,
         int nsigners, int attached, unsigned char **der, size_t *derlen)
{
    unsigned int flags =
        CMS_BINARY | CMS_PARTIAL | (attached ? 0 : CMS_DETACHED);
    CMS_ContentInfo *cms;
    BIO *in;
    int i;

    cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    assert_non_null(cms);
    for (i = 0; i < nsigners; i++) {
        X509 *x = pki_cert(s[i].name);
        EVP_PKEY *k = pki_key(s[i].name);

        assert_non_null(
            CMS_add1_signer(cms, x, k, s[i].md, CMS_BINARY | s[i].flags));
        X509_free(x);
        EVP_PKEY_free(k);
    }
    in = BIO_new_mem_buf(body, (int) len);
    assert_non_null(in);
    assert_int_equal(CMS_final(cms, in, NULL, flags & ~CMS_PARTIAL), 1);
    BIO_free(in);
    *der = cms_der(cms, derlen);
    CMS_ContentInfo_free(cms);
}

/** One signer, detached, base64 (free()). */
static char *
sign_b64(const char *name, const EVP_MD *md, int wrap)
{
    signer_spec_t s = {name, md, 0};
    unsigned char *der;
    size_t derlen;
    char *out;

    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    out = b64(der, derlen, wrap);
    OPENSSL_free(der);
    return out;
}

static mdm_id_rc_t
verify_b64(const char *sig, const unsigned char *body, size_t bodylen,
           X509 **signer)
{
    const char *why = NULL;
    mdm_id_rc_t rc;

    rc = mdm_identity_from_signature(sig, strlen(sig), body, bodylen, signer,
                                     &why);
    assert_non_null(why);
    if (rc != MDM_ID_OK) {
        assert_null(*signer);
    }
    /* nothing may be left behind for unrelated code to trip over */
    assert_int_equal(ERR_peek_error(), 0);
    return rc;
}

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
assert_same_cert(X509 *a, X509 *b)
{
    char fa[65], fb[65];

    fingerprint(a, fa);
    fingerprint(b, fb);
    assert_string_equal(fa, fb);
}

/* ------------------------------------------------------------------ */
/* Mdm-Signature                                                       */

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

/* ------------------------------------------------------------------ */
/* chain                                                               */

static mdm_verifier_t *
verifier(const char *cafile, size_t size, unsigned ttl)
{
    char err[256] = "";
    mdm_verifier_t *v = mdm_verifier_new(cafile, size, ttl, err, sizeof(err));

    if (v == NULL) {
        fail_msg("mdm_verifier_new: %s", err);
    }
    assert_int_equal(ERR_peek_error(), 0);
    return v;
}

static mdm_id_rc_t
check_at(mdm_verifier_t *v, const char *name, time_t now)
{
    X509 *x = pki_cert(name);
    const char *why = NULL;
    char hex[65];
    mdm_id_rc_t rc;

    assert_int_equal(mdm_cert_sha256_hex(x, hex), 0);
    rc = mdm_verifier_check(v, x, hex, now, &why);
    assert_non_null(why);
    assert_int_equal(ERR_peek_error(), 0);
    X509_free(x);
    return rc;
}

static mdm_id_rc_t
check(mdm_verifier_t *v, const char *name)
{
    return check_at(v, name, time(NULL));
}

static time_t
not_after_of(const char *name)
{
    X509 *x = pki_cert(name);
    time_t t = asn1_to_time(X509_get0_notAfter(x));

    X509_free(x);
    return t;
}

static time_t
not_before_of(const char *name)
{
    X509 *x = pki_cert(name);
    time_t t = asn1_to_time(X509_get0_notBefore(x));

    X509_free(x);
    return t;
}

static void
test_chain(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 0, 0);

    (void) state;
    assert_int_equal(check(v, "dev1"), MDM_ID_OK);
    assert_int_equal(check(v, "dev2"), MDM_ID_OK);
    assert_int_equal(check(v, "devec"), MDM_ID_OK);
    assert_int_equal(check(v, "devroot"), MDM_ID_OK);
    assert_int_equal(check(v, "stranger"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "selfsigned"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "expired"), MDM_ID_ERR_EXPIRED);
    assert_int_equal(check(v, "notyet"), MDM_ID_ERR_EXPIRED);
    assert_int_equal(check(v, "serverauth"), MDM_ID_ERR_USAGE);
    /* a TLS server certificate is not a device identity either */
    assert_int_equal(check(v, "server"), MDM_ID_ERR_USAGE);
    mdm_verifier_free(v);
}

static void
test_chain_time_is_now_argument(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 0, 0);
    time_t mid = not_before_of("expired") +
                 (not_after_of("expired") - not_before_of("expired")) / 2;

    (void) state;
    /* validity is judged at the given time, not at the wall clock */
    assert_int_equal(check_at(v, "expired", mid), MDM_ID_OK);
    assert_int_equal(check_at(v, "notyet", not_before_of("notyet") + DAY),
                     MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", not_after_of("dev1") + 1),
                     MDM_ID_ERR_EXPIRED);
    assert_int_equal(check_at(v, "dev1", not_before_of("dev1") - 1),
                     MDM_ID_ERR_EXPIRED);
    mdm_verifier_free(v);
}

static void
test_chain_partial_cafile(void **state)
{
    mdm_verifier_t *v;

    (void) state;
    /*
     * Only the root: the verifier uses no intermediates but those of the
     * CA file (the device sends none), so dev1 cannot be chained.
     */
    v = verifier(path_in(pki_dir, "root.pem"), 0, 0);
    assert_int_equal(check(v, "dev1"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "devroot"), MDM_ID_OK);
    mdm_verifier_free(v);

    /* Only the intermediate: a chain ending at it is trusted. */
    v = verifier(path_in(pki_dir, "int.pem"), 0, 0);
    assert_int_equal(check(v, "dev1"), MDM_ID_OK);
    assert_int_equal(check(v, "devec"), MDM_ID_OK);
    assert_int_equal(check(v, "devroot"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "expired"), MDM_ID_ERR_EXPIRED);
    assert_int_equal(check(v, "serverauth"), MDM_ID_ERR_USAGE);
    mdm_verifier_free(v);

    /* The other root trusts its own device and nothing of ours. */
    v = verifier(path_in(pki_dir, "other-root.pem"), 0, 0);
    assert_int_equal(check(v, "stranger"), MDM_ID_OK);
    assert_int_equal(check(v, "dev1"), MDM_ID_ERR_UNTRUSTED);
    mdm_verifier_free(v);
}

static void
test_verifier_new_errors(void **state)
{
    char err[256];
    char tmpl[] = "/tmp/mdm_test_caXXXXXX";
    int fd;

    (void) state;
    err[0] = '\0';
    assert_null(
        mdm_verifier_new("/nonexistent/ca.pem", 8, 60, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read CA file /nonexistent/ca.pem"));

    fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello\n", 6), 6);
    close(fd);
    err[0] = '\0';
    assert_null(mdm_verifier_new(tmpl, 8, 60, err, sizeof(err)));
    assert_non_null(strstr(err, "no certificate in CA file"));
    assert_int_equal(ERR_peek_error(), 0);

    /* a key file holds no certificate either */
    err[0] = '\0';
    assert_null(mdm_verifier_new(path_in(pki_dir, "dev1.key"), 8, 60, err,
                                 sizeof(err)));
    assert_non_null(strstr(err, "no certificate in CA file"));

    /* NULL err buffer must not crash */
    assert_null(mdm_verifier_new(tmpl, 8, 60, NULL, 0));
    unlink(tmpl);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ------------------------------------------------------------------ */
/* cache                                                               */

static void
test_cache_hit(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 16, 60);
    unsigned long hits, misses;
    size_t entries;
    time_t now = time(NULL);

    (void) state;
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 1);
    assert_int_equal(entries, 1);

    assert_int_equal(check_at(v, "dev1", now + 1), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    assert_int_equal(entries, 1);

    /* failures are never cached */
    assert_int_equal(check_at(v, "stranger", now), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check_at(v, "stranger", now), MDM_ID_ERR_UNTRUSTED);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 3);
    assert_int_equal(entries, 1);
    mdm_verifier_free(v);

    /* size 0 or ttl 0: no cache */
    v = verifier(path_in(pki_dir, "cafile.pem"), 0, 60);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 0);
    assert_int_equal(entries, 0);
    mdm_verifier_free(v);
    v = verifier(path_in(pki_dir, "cafile.pem"), 16, 0);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 0);
    assert_int_equal(entries, 0);
    mdm_verifier_free(v);
}

/** A fresh clientAuth certificate issued by int with serial n (X509_free). */
static X509 *
mint(X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *pub, long n)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    char cn[64];
    static const char *exts[][2] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,digitalSignature"},
        {"extendedKeyUsage", "clientAuth"},
    };
    size_t i;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1000 + n), 1);
    snprintf(cn, sizeof(cn), "minted-%ld", n);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (unsigned char *) cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer)), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -DAY));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 30L * DAY));
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        ext = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, ikey, EVP_sha256()) > 0);
    return x;
}

static void
test_cache_bounded(void **state)
{
    static const size_t sizes[] = {1, 2, 7, 16};
    X509 *issuer = pki_cert("int");
    EVP_PKEY *ikey = pki_key("int"), *pub = pki_key("dev1");
    X509 *certs[40];
    mdm_verifier_t *v;
    unsigned long hits, misses;
    size_t entries, s, i, max;
    time_t now = time(NULL);
    char hex[65];

    (void) state;
    for (i = 0; i < 40; i++) {
        certs[i] = mint(issuer, ikey, pub, (long) i);
    }
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        v = verifier(path_in(pki_dir, "cafile.pem"), sizes[s], 3600);
        max = 0;
        for (i = 0; i < 40; i++) {
            assert_int_equal(mdm_cert_sha256_hex(certs[i], hex), 0);
            assert_int_equal(
                mdm_verifier_check(v, certs[i], hex, now + (time_t) i, NULL),
                MDM_ID_OK);
            mdm_verifier_stats(v, NULL, NULL, &entries);
            assert_true(entries <= sizes[s]);
            if (entries > max) {
                max = entries;
            }
        }
        /* it did cache something, just not everything */
        assert_true(max >= 1);
        mdm_verifier_stats(v, &hits, &misses, &entries);
        assert_int_equal(hits, 0);
        assert_int_equal(misses, 40);
        /* the last certificate is still cached, the first was evicted */
        assert_int_equal(mdm_cert_sha256_hex(certs[39], hex), 0);
        assert_int_equal(mdm_verifier_check(v, certs[39], hex, now + 40, NULL),
                         MDM_ID_OK);
        mdm_verifier_stats(v, &hits, NULL, NULL);
        assert_int_equal(hits, 1);
        assert_int_equal(mdm_cert_sha256_hex(certs[0], hex), 0);
        assert_int_equal(mdm_verifier_check(v, certs[0], hex, now + 41, NULL),
                         MDM_ID_OK);
        mdm_verifier_stats(v, &hits, NULL, &entries);
        assert_int_equal(hits, 1);
        assert_true(entries <= sizes[s]);
        mdm_verifier_free(v);
    }
    for (i = 0; i < 40; i++) {
        X509_free(certs[i]);
    }
    X509_free(issuer);
    EVP_PKEY_free(ikey);
    EVP_PKEY_free(pub);
}

static void
test_cache_ttl(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 16, 60);
    unsigned long hits, misses;
    time_t now = time(NULL);

    (void) state;
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", now + 59), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    /* 60 s after the check the entry is stale: verified again */
    assert_int_equal(check_at(v, "dev1", now + 60), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 2);
    /* and cached again from that second check */
    assert_int_equal(check_at(v, "dev1", now + 61), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 2);
    mdm_verifier_free(v);
}

static void
test_cache_not_after(void **state)
{
    /* a ttl far longer than the certificate's life */
    mdm_verifier_t *v =
        verifier(path_in(pki_dir, "cafile.pem"), 16, 4000000000u);
    time_t nb = not_before_of("expired"), na = not_after_of("expired");
    unsigned long hits, misses;

    (void) state;
    assert_int_equal(check_at(v, "expired", nb + 60), MDM_ID_OK);
    assert_int_equal(check_at(v, "expired", na), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);
    assert_int_equal(check_at(v, "expired", na + 1), MDM_ID_ERR_EXPIRED);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);

    /* the same for the cert of an ordinary device, years ahead */
    assert_int_equal(check_at(v, "dev1", time(NULL)), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", not_after_of("dev1") + 3600),
                     MDM_ID_ERR_EXPIRED);
    mdm_verifier_free(v);
}

typedef struct {
    mdm_verifier_t *v;
    X509 *cert[2];
    char hex[2][65];
    time_t now;
    int failures;
} thread_arg_t;

static void *
check_thread(void *p)
{
    thread_arg_t *a = p;
    int i;

    for (i = 0; i < 300; i++) {
        if (mdm_verifier_check(a->v, a->cert[i % 2], a->hex[i % 2],
                               a->now + i / 50, NULL) != MDM_ID_OK) {
            a->failures++;
        }
    }
    return NULL;
}

static void
test_cache_threads(void **state)
{
    /* a small cache shared by threads, as in Apache's worker MPM */
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 1, 3);
    thread_arg_t a[4];
    pthread_t t[4];
    unsigned long hits, misses;
    size_t entries;
    int i;

    (void) state;
    for (i = 0; i < 4; i++) {
        a[i].v = v;
        a[i].cert[0] = pki_cert(i % 2 ? "dev1" : "devec");
        a[i].cert[1] = pki_cert(i % 2 ? "dev2" : "devroot");
        assert_int_equal(mdm_cert_sha256_hex(a[i].cert[0], a[i].hex[0]), 0);
        assert_int_equal(mdm_cert_sha256_hex(a[i].cert[1], a[i].hex[1]), 0);
        a[i].now = time(NULL);
        a[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, check_thread, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
        X509_free(a[i].cert[0]);
        X509_free(a[i].cert[1]);
    }
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits + misses, 4 * 300);
    assert_true(entries <= 1);
    mdm_verifier_free(v);
}

/* ------------------------------------------------------------------ */
/* certificates from the TLS layer and from proxy headers              */

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

static void
test_cert_names(void **state)
{
    X509 *x = pki_cert("dev1");
    char hex[65], want[65];
    char *s;

    (void) state;
    assert_int_equal(mdm_cert_sha256_hex(x, hex), 0);
    fingerprint(x, want);
    assert_string_equal(hex, want);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(mdm_cert_sha256_hex(NULL, hex), -1);
    s = mdm_cert_subject(x);
    assert_non_null(s);
    assert_string_equal(s, "CN=device-1,O=libmdm test");
    free(s);
    assert_null(mdm_cert_subject(NULL));

    assert_string_equal(mdm_id_rc_name(MDM_ID_OK), "ok");
    assert_string_equal(mdm_id_rc_name(MDM_ID_ERR_SIGNATURE), "bad-signature");
    assert_string_equal(mdm_id_rc_name(MDM_ID_ERR_UNTRUSTED), "untrusted");
    X509_free(x);
}

/* ------------------------------------------------------------------ */
/* A small DER writer for hand-made inputs. */

typedef struct {
    unsigned char *p;
    size_t len;
} blob_t;

static blob_t
blob(const void *data, size_t len)
{
    blob_t b;

    b.p = malloc(len + 1);
    assert_non_null(b.p);
    if (len > 0) {
        memcpy(b.p, data, len);
    }
    b.len = len;
    return b;
}

/** n bytes of a pattern that differs with seed. */
static blob_t
filler(size_t n, unsigned seed)
{
    blob_t b;
    size_t i;

    b.p = malloc(n + 1);
    assert_non_null(b.p);
    for (i = 0; i < n; i++) {
        b.p[i] = (unsigned char) (i * 7 + seed * 31 + 1);
    }
    b.len = n;
    return b;
}

/** a then b; both are consumed. */
static blob_t
cat(blob_t a, blob_t b)
{
    blob_t c;

    c.p = realloc(a.p, a.len + b.len + 1);
    assert_non_null(c.p);
    memcpy(c.p + a.len, b.p, b.len);
    c.len = a.len + b.len;
    free(b.p);
    return c;
}

#define LEN_DER 0  /* shortest length encoding */
#define LEN_BER -1 /* indefinite length, end-of-contents octets */

/**
 * An element: tag, length, content (consumed). lenbytes LEN_DER, LEN_BER,
 * or n > 0 for the long form with n length octets (BER, not DER, where
 * fewer would do).
 */
static blob_t
tlv(unsigned char tag, blob_t c, int lenbytes)
{
    unsigned char h[16];
    size_t n = 0;
    int i, k = lenbytes;

    h[n++] = tag;
    if (lenbytes == LEN_BER) {
        h[n++] = 0x80;
        c = cat(c, blob("\0\0", 2));
    } else {
        if (k == LEN_DER && c.len >= 0x80) {
            for (k = 1; k < 8 && (c.len >> (8 * k)) != 0; k++) {
            }
        }
        if (k == 0) {
            h[n++] = (unsigned char) c.len;
        } else {
            h[n++] = (unsigned char) (0x80 | k);
            for (i = k; i > 0; i--) {
                h[n++] = (unsigned char) (c.len >> (8 * (i - 1)));
            }
        }
    }
    return cat(blob(h, n), c);
}

/* ------------------------------------------------------------------ */
/* decoded-certificate cache: mdm_verifier_signature, _cert, _header   */

/** No chain cache; a decoded-certificate cache of size entries. */
static mdm_verifier_t *
cert_cache_verifier(size_t size)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 0, 0);

    assert_int_equal(mdm_verifier_set_cert_cache(v, size), 0);
    return v;
}

/** Base64, line breaks allowed, to bytes (OPENSSL_free). */
static unsigned char *
unb64(const char *s, size_t *len)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    unsigned char *out = OPENSSL_malloc(strlen(s) + 4);
    int n = 0, m = 0;

    assert_non_null(ctx);
    assert_non_null(out);
    EVP_DecodeInit(ctx);
    assert_true(EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *) s,
                                 (int) strlen(s)) >= 0);
    assert_int_equal(EVP_DecodeFinal(ctx, out + n, &m), 1);
    EVP_ENCODE_CTX_free(ctx);
    *len = (size_t) (n + m);
    return out;
}

/** DER of x (OPENSSL_free). */
static unsigned char *
cert_der(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    *len = (size_t) n;
    return der;
}

/**
 * Whether the base64 signature takes the fast path (mdm_cms_split()
 * accepts it); *ncerts is the number of certificates it lifted.
 */
static int
splits(const char *sig, size_t *ncerts)
{
    mdm_cms_split_t s;
    unsigned char *der;
    size_t len;
    int rc;

    der = unb64(sig, &len);
    rc = mdm_cms_split(der, len, &s);
    if (ncerts != NULL) {
        *ncerts = rc == 0 ? s.ncerts : 0;
    }
    free(s.stripped);
    OPENSSL_free(der);
    return rc == 0;
}

/**
 * mdm_verifier_signature() with the contract checks of verify_b64(). On
 * success hash must be the SHA-256 of the signer's DER.
 */
static mdm_id_rc_t
vsig(mdm_verifier_t *v, const char *sig, const unsigned char *body,
     size_t bodylen, X509 **signer, char hash[65])
{
    const char *why = NULL;
    char want[65];
    mdm_id_rc_t rc;

    *signer = NULL;
    /* not a hash: a result that was never written shows */
    memset(hash, 'x', 64);
    hash[64] = '\0';
    rc = mdm_verifier_signature(v, sig, strlen(sig), body, bodylen, signer,
                                hash, &why);
    assert_non_null(why);
    if (rc == MDM_ID_OK) {
        assert_non_null(*signer);
        fingerprint(*signer, want);
        assert_string_equal(hash, want);
    } else {
        assert_null(*signer);
    }
    assert_int_equal(ERR_peek_error(), 0);
    return rc;
}

/** vsig(), dropping the certificate. */
static mdm_id_rc_t
vsig_rc(mdm_verifier_t *v, const char *sig, const unsigned char *body,
        size_t bodylen)
{
    char hash[65];
    X509 *x = NULL;
    mdm_id_rc_t rc = vsig(v, sig, body, bodylen, &x, hash);

    X509_free(x);
    return rc;
}

/** verify_b64() (the uncached function), dropping the certificate. */
static mdm_id_rc_t
plain_rc(const char *sig, const unsigned char *body, size_t bodylen)
{
    X509 *x = NULL;
    mdm_id_rc_t rc = verify_b64(sig, body, bodylen, &x);

    X509_free(x);
    return rc;
}

/**
 * Detached SHA-256 signature over test_body by name's key whose
 * certificate set is exactly certs (the signer's own only if listed).
 * Base64 (free()).
 */
static char *
sign_with_certs(const char *name, unsigned int sflags, X509 **certs, int ncerts)
{
    unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_DETACHED;
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    X509 *x = pki_cert(name);
    EVP_PKEY *k = pki_key(name);
    unsigned char *der;
    size_t derlen;
    char *sig;
    BIO *in;
    int i;

    assert_non_null(cms);
    assert_non_null(CMS_add1_signer(cms, x, k, EVP_sha256(),
                                    CMS_BINARY | CMS_NOCERTS | sflags));
    for (i = 0; i < ncerts; i++) {
        assert_int_equal(CMS_add1_cert(cms, certs[i]), 1);
    }
    in = BIO_new_mem_buf(test_body, (int) TEST_BODY_LEN);
    assert_non_null(in);
    assert_int_equal(CMS_final(cms, in, NULL, flags & ~CMS_PARTIAL), 1);
    BIO_free(in);
    der = cms_der(cms, &derlen);
    sig = b64(der, derlen, 0);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    X509_free(x);
    EVP_PKEY_free(k);
    return sig;
}

/** The size of the element at p, whose header must be DER or BER long form. */
static size_t
elem_size(const unsigned char *p, size_t *hdr)
{
    size_t len = 0, i, n = 2;

    assert_int_not_equal(p[1], 0x80);
    if (p[1] < 0x80) {
        len = p[1];
    } else {
        n = 2 + (p[1] & 0x7f);
        for (i = 2; i < n; i++) {
            len = len << 8 | p[i];
        }
    }
    *hdr = n;
    return n + len;
}

/**
 * A DER ContentInfo(SignedData) re-encoded: the ContentInfo, [0] and
 * SignedData headers with outer_lb, the certificate set's with certs_lb
 * (see tlv()), the rest as it was. OpenSSL's own BER writer (CMS_STREAM)
 * always embeds the content, so a detached BER signature is made this
 * way.
 */
static blob_t
reencode(const unsigned char *der, size_t len, int outer_lb, int certs_lb)
{
    const unsigned char *p = der, *end;
    size_t hdr, n;
    blob_t sd = blob(NULL, 0), oid;

    assert_int_equal(p[0], 0x30);
    elem_size(p, &hdr);
    p += hdr;
    n = elem_size(p, &hdr);
    oid = blob(p, n);
    p += n;
    assert_int_equal(p[0], 0xa0);
    elem_size(p, &hdr);
    p += hdr;
    assert_int_equal(p[0], 0x30);
    end = p + elem_size(p, &hdr);
    for (p += hdr; p < end; p += n) {
        n = elem_size(p, &hdr);
        if (p[0] == 0xa0) {
            sd = cat(sd, tlv(0xa0, blob(p + hdr, n - hdr), certs_lb));
        } else {
            sd = cat(sd, blob(p, n));
        }
    }
    assert_ptr_equal(end, der + len);
    return tlv(0x30, cat(oid, tlv(0xa0, tlv(0x30, sd, outer_lb), outer_lb)),
               outer_lb);
}

/**
 * A detached signature over body in BER: indefinite lengths from the
 * ContentInfo down to the certificate set (OPENSSL_free).
 */
static unsigned char *
sign_ber(const char *name, const unsigned char *body, size_t bodylen,
         size_t *len)
{
    signer_spec_t s = {NULL, NULL, 0};
    unsigned char *der, *ber;
    size_t derlen;
    blob_t b;

    s.name = name;
    s.md = EVP_sha256();
    make_cms(body, bodylen, &s, 1, 0, &der, &derlen);
    b = reencode(der, derlen, LEN_BER, LEN_BER);
    assert_int_equal(b.p[1], 0x80);
    ber = OPENSSL_memdup(b.p, b.len);
    assert_non_null(ber);
    *len = b.len;
    free(b.p);
    OPENSSL_free(der);
    return ber;
}

/** The offset of the only occurrence of needle in hay. */
static size_t
find_once(const unsigned char *hay, size_t len, const unsigned char *needle,
          size_t nlen)
{
    size_t i, at = (size_t) -1, count = 0;

    for (i = 0; nlen <= len && i <= len - nlen; i++) {
        if (memcmp(hay + i, needle, nlen) == 0) {
            at = i;
            count++;
        }
    }
    assert_int_equal(count, 1);
    return at;
}

/**
 * A certificate with every field of like (serial, names, dates,
 * extensions, so also the subject key identifier) but pub's public key,
 * issued by int: what an attacker holding some other key would like the
 * verifier to mistake for like.
 */
static X509 *
mint_twin(X509 *like, EVP_PKEY *pub)
{
    EVP_PKEY *ikey = pki_key("int");
    X509 *x = X509_new();
    int i;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_get_version(like)), 1);
    assert_int_equal(X509_set_serialNumber(x, X509_get_serialNumber(like)), 1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_issuer_name(like)), 1);
    assert_int_equal(X509_set_subject_name(x, X509_get_subject_name(like)), 1);
    assert_int_equal(X509_set1_notBefore(x, X509_get0_notBefore(like)), 1);
    assert_int_equal(X509_set1_notAfter(x, X509_get0_notAfter(like)), 1);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    for (i = 0; i < X509_get_ext_count(like); i++) {
        assert_int_equal(X509_add_ext(x, X509_get_ext(like, i), -1), 1);
    }
    assert_true(X509_sign(x, ikey, EVP_sha256()) > 0);
    EVP_PKEY_free(ikey);
    return x;
}

static void
test_vsig_same_as_plain(void **state)
{
    const char *names[] = {"dev1", "devec"};
    const EVP_MD *mds[2];
    mdm_verifier_t *v = cert_cache_verifier(16);
    char hash[65], hash2[65], want[65];
    X509 *x, *x2, *plain, *expect;
    unsigned char *body;
    size_t nc;
    char *sig;
    int n, m;

    (void) state;
    mds[0] = EVP_sha1();
    mds[1] = EVP_sha256();
    body = malloc(TEST_BODY_LEN);
    assert_non_null(body);
    for (n = 0; n < 2; n++) {
        expect = pki_cert(names[n]);
        fingerprint(expect, want);
        for (m = 0; m < 2; m++) {
            sig = sign_b64(names[n], mds[m], m);
            /* the fast path, or this test would prove nothing */
            assert_true(splits(sig, &nc));
            assert_int_equal(nc, 1);

            plain = NULL;
            assert_int_equal(verify_b64(sig, test_body, TEST_BODY_LEN, &plain),
                             MDM_ID_OK);
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                             MDM_ID_OK);
            assert_int_equal(X509_cmp(x, plain), 0);
            assert_int_equal(X509_cmp(x, expect), 0);
            assert_string_equal(hash, want);

            /* again: the very same decoded certificate, still verified */
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash2),
                             MDM_ID_OK);
            assert_ptr_equal(x2, x);
            assert_string_equal(hash2, want);
            X509_free(x2);

            /* a cached certificate does not spare the signature check */
            memcpy(body, test_body, TEST_BODY_LEN);
            body[TEST_BODY_LEN / 2] ^= 0x20;
            assert_int_equal(vsig_rc(v, sig, body, TEST_BODY_LEN),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(plain_rc(sig, body, TEST_BODY_LEN),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(vsig_rc(v, sig, test_body, 0),
                             MDM_ID_ERR_SIGNATURE);
            /* and the good body still passes afterwards */
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash2),
                             MDM_ID_OK);
            assert_ptr_equal(x2, x);
            X509_free(x2);

            X509_free(x);
            X509_free(plain);
            free(sig);
        }
        X509_free(expect);
    }
    free(body);
    mdm_verifier_free(v);
}

static void
test_vsig_synthetic(void **state)
{
    unsigned char *hdr, *body, *pem, *der;
    size_t hdrlen, bodylen, pemlen, derlen, i, nc;
    X509 *x, *x2, *plain = NULL, *expect;
    char hash[65], want[65], *sig;
    mdm_verifier_t *v = cert_cache_verifier(16);
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
    fingerprint(expect, want);

    assert_true(splits((char *) hdr, &nc));
    assert_int_equal(nc, 1);
    assert_int_equal(verify_b64((char *) hdr, body, bodylen, &plain),
                     MDM_ID_OK);
    assert_int_equal(vsig(v, (char *) hdr, body, bodylen, &x, hash), MDM_ID_OK);
    assert_string_equal(hash, want);
    assert_int_equal(X509_cmp(x, expect), 0);
    assert_int_equal(X509_cmp(x, plain), 0);
    assert_int_equal(vsig(v, (char *) hdr, body, bodylen, &x2, hash),
                     MDM_ID_OK);
    assert_ptr_equal(x2, x);
    assert_string_equal(hash, want);
    X509_free(x2);

    /* changed body bytes, with the certificate in the cache */
    for (i = 0; i < bodylen; i += 37) {
        body[i] ^= 0x01;
        assert_int_equal(vsig_rc(v, (char *) hdr, body, bodylen),
                         MDM_ID_ERR_SIGNATURE);
        body[i] ^= 0x01;
    }
    /* a changed signature value (the last bytes of the SignerInfo) */
    der = unb64((char *) hdr, &derlen);
    der[derlen - 1] ^= 0x01;
    sig = b64(der, derlen, 0);
    assert_true(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, body, bodylen), MDM_ID_ERR_SIGNATURE);
    assert_int_equal(plain_rc(sig, body, bodylen), MDM_ID_ERR_SIGNATURE);
    free(sig);

    OPENSSL_free(der);
    X509_free(x);
    X509_free(plain);
    X509_free(expect);
    free(hdr);
    free(body);
    free(pem);
    mdm_verifier_free(v);
}

static void
test_vsig_signers(void **state)
{
    signer_spec_t s[2] = {{"dev1", NULL, 0}, {"dev2", NULL, 0}};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *other[1];
    unsigned char *der;
    size_t derlen, nc;
    char *sig;

    (void) state;
    s[0].md = EVP_sha256();
    s[1].md = EVP_sha256();

    /* two valid signers */
    make_cms(test_body, TEST_BODY_LEN, s, 2, 0, &der, &derlen);
    sig = b64(der, derlen, 0);
    assert_true(splits(sig, &nc));
    assert_int_equal(nc, 2);
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    /* and once more, with both certificates cached */
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    free(sig);
    OPENSSL_free(der);

    /* no certificate at all (no certificate set: the fallback path) */
    s[0].flags = CMS_NOCERTS;
    make_cms(test_body, TEST_BODY_LEN, s, 1, 0, &der, &derlen);
    sig = b64(der, derlen, 0);
    assert_false(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    free(sig);
    OPENSSL_free(der);

    /* the certificate set holds somebody else's certificate only */
    other[0] = pki_cert("dev2");
    sig = sign_with_certs("dev1", 0, other, 1);
    assert_true(splits(sig, &nc));
    assert_int_equal(nc, 1);
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    free(sig);
    X509_free(other[0]);
    mdm_verifier_free(v);
}

static void
test_vsig_swapped_cert(void **state)
{
    static const unsigned int sid[] = {0, CMS_USE_KEYID};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *dev1 = pki_cert("dev1"), *twin, *x;
    EVP_PKEY *k2 = pki_key("dev2");
    unsigned char *d1, *dt, *der;
    size_t d1len, dtlen, derlen, at, i;
    char hash[65], want[65], *good, *bad;
    mdm_id_rc_t rc;

    (void) state;
    twin = mint_twin(dev1, k2);
    d1 = cert_der(dev1, &d1len);
    dt = cert_der(twin, &dtlen);
    /* same length (RSA-2048 key, same issuer key): spliced in place */
    assert_int_equal(dtlen, d1len);
    assert_memory_not_equal(dt, d1, d1len);
    fingerprint(dev1, want);

    for (i = 0; i < 2; i++) {
        /* dev1's key, with dev1's certificate, then the twin in its place */
        good = sign_with_certs("dev1", sid[i], &dev1, 1);
        der = unb64(good, &derlen);
        at = find_once(der, derlen, d1, d1len);
        memcpy(der + at, dt, dtlen);
        bad = b64(der, derlen, 0);
        assert_true(splits(bad, NULL));

        /* the genuine one first, so that dev1 is in the cache */
        assert_int_equal(vsig(v, good, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_string_equal(hash, want);
        X509_free(x);
        rc = vsig_rc(v, bad, test_body, TEST_BODY_LEN);
        assert_true(rc == MDM_ID_ERR_SIGNATURE || rc == MDM_ID_ERR_SIGNERS);
        assert_int_equal(plain_rc(bad, test_body, TEST_BODY_LEN), rc);
        /* the twin is cached now: neither result changes */
        assert_int_equal(vsig_rc(v, bad, test_body, TEST_BODY_LEN), rc);
        assert_int_equal(vsig(v, good, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_string_equal(hash, want);
        assert_int_equal(X509_cmp(x, dev1), 0);
        X509_free(x);
        free(good);
        free(bad);
        OPENSSL_free(der);
    }
    OPENSSL_free(d1);
    OPENSSL_free(dt);
    X509_free(twin);
    X509_free(dev1);
    EVP_PKEY_free(k2);
    mdm_verifier_free(v);
}

static void
test_vsig_with_intermediate(void **state)
{
    static const char *sets[][3] = {
        /* signer last in the argument list: the leaf is no first cert */
        {"devec", "int", "dev1"},
        {"int", "dev1", NULL},
        {"dev1", "int", "devec"},
    };
    static const char *signer[] = {"dev1", "dev1", "devec"};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *certs[3], *x, *x2, *expect;
    mdm_cms_split_t split;
    unsigned char *der, *ld;
    size_t derlen, ldlen, i, j, n, first = 0;
    char hash[65], want[65], *sig;

    (void) state;
    for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        for (n = 0; n < 3 && sets[i][n] != NULL; n++) {
            certs[n] = pki_cert(sets[i][n]);
        }
        expect = pki_cert(signer[i]);
        fingerprint(expect, want);
        sig = sign_with_certs(signer[i], 0, certs, (int) n);

        /* where the signer's certificate is in the encoded set */
        der = unb64(sig, &derlen);
        ld = cert_der(expect, &ldlen);
        assert_int_equal(mdm_cms_split(der, derlen, &split), 0);
        assert_int_equal(split.ncerts, n);
        for (j = 0; j < n; j++) {
            if (split.cert_len[j] == ldlen &&
                memcmp(split.cert[j], ld, ldlen) == 0) {
                break;
            }
        }
        assert_true(j < n);
        if (j > 0) {
            first++;
        }
        free(split.stripped);
        OPENSSL_free(ld);
        OPENSSL_free(der);

        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x, expect), 0);
        assert_string_equal(hash, want);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash),
                         MDM_ID_OK);
        assert_ptr_equal(x2, x);
        assert_string_equal(hash, want);
        X509_free(x2);
        X509_free(x);
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);

        free(sig);
        X509_free(expect);
        for (j = 0; j < n; j++) {
            X509_free(certs[j]);
        }
    }
    /* at least one set put another certificate before the signer's */
    assert_true(first > 0);
    mdm_verifier_free(v);
}

static void
test_vsig_ber(void **state)
{
    static const char *names[] = {"dev1", "devec"};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *x, *x2, *expect;
    unsigned char *ber;
    char hash[65], want[65], *sig;
    size_t berlen, i;

    (void) state;
    for (i = 0; i < 2; i++) {
        expect = pki_cert(names[i]);
        fingerprint(expect, want);
        ber = sign_ber(names[i], test_body, TEST_BODY_LEN, &berlen);
        sig = b64(ber, berlen, 1);
        /* the splitter refuses BER: this goes the fallback way */
        assert_false(splits(sig, NULL));

        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x, expect), 0);
        assert_string_equal(hash, want);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x2, expect), 0);
        assert_string_equal(hash, want);
        X509_free(x2);
        X509_free(x);
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);
        free(sig);
        OPENSSL_free(ber);
        X509_free(expect);
    }
    mdm_verifier_free(v);
}

static void
test_vsig_reencoded(void **state)
{
    /* outer headers, certificate set header: the fast path only takes
     * definite lengths (and then writes DER lengths itself) */
    static const int lbs[][2] = {
        {LEN_BER, LEN_DER}, {LEN_DER, LEN_BER}, {LEN_BER, LEN_BER},
        {4, LEN_DER},       {LEN_DER, 4},       {4, 4},
        {3, LEN_BER},       {LEN_DER, LEN_DER},
    };
    signer_spec_t s = {"dev1", NULL, 0};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *x, *expect = pki_cert("dev1");
    unsigned char *der;
    size_t derlen, i;
    char hash[65], want[65], *sig;
    blob_t b;

    (void) state;
    s.md = EVP_sha256();
    fingerprint(expect, want);
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    for (i = 0; i < sizeof(lbs) / sizeof(lbs[0]); i++) {
        b = reencode(der, derlen, lbs[i][0], lbs[i][1]);
        if (lbs[i][0] == LEN_DER && lbs[i][1] == LEN_DER) {
            assert_int_equal(b.len, derlen);
            assert_memory_equal(b.p, der, derlen);
        }
        sig = b64(b.p, b.len, 0);
        assert_int_equal(splits(sig, NULL),
                         lbs[i][0] != LEN_BER && lbs[i][1] != LEN_BER);
        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x, expect), 0);
        assert_string_equal(hash, want);
        X509_free(x);
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);
        free(sig);
        free(b.p);
    }
    OPENSSL_free(der);
    X509_free(expect);
    mdm_verifier_free(v);
}

static void
test_vsig_many_certs(void **state)
{
    static const char *extra[] = {
        "root",     "int",        "dev2",       "devec",
        "devroot",  "expired",    "notyet",     "serverauth",
        "stranger", "selfsigned", "other-root", "server",
    };
    static const size_t totals[] = {2, 8, 9, 13};
    mdm_verifier_t *v = cert_cache_verifier(4);
    X509 *certs[13], *x, *expect = pki_cert("dev1");
    char hash[65], want[65], *sig;
    size_t t, i, nc;
    int round;

    (void) state;
    fingerprint(expect, want);
    for (t = 0; t < sizeof(totals) / sizeof(totals[0]); t++) {
        /* the signer's certificate in the middle of the set */
        for (i = 0; i + 1 < totals[t]; i++) {
            certs[i + (i >= totals[t] / 2)] = pki_cert(extra[i]);
        }
        certs[totals[t] / 2] = pki_cert("dev1");
        sig = sign_with_certs("dev1", 0, certs, (int) totals[t]);
        assert_int_equal(splits(sig, &nc), totals[t] <= MDM_CMS_MAX_CERTS);
        if (totals[t] <= MDM_CMS_MAX_CERTS) {
            assert_int_equal(nc, totals[t]);
        }
        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        /* more certificates than cache entries: twice, to evict */
        for (round = 0; round < 2; round++) {
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                             MDM_ID_OK);
            assert_int_equal(X509_cmp(x, expect), 0);
            assert_string_equal(hash, want);
            X509_free(x);
        }
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);
        free(sig);
        for (i = 0; i < totals[t]; i++) {
            X509_free(certs[i]);
        }
    }
    X509_free(expect);
    mdm_verifier_free(v);
}

static void
test_vsig_bad_cert_in_set(void **state)
{
    signer_spec_t s = {"dev1", NULL, 0};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *dev1 = pki_cert("dev1");
    unsigned char *der, *d1;
    size_t derlen, d1len, at;
    char *sig;

    (void) state;
    s.md = EVP_sha256();
    d1 = cert_der(dev1, &d1len);
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    at = find_once(der, derlen, d1, d1len);

    /* the TBSCertificate is no SEQUENCE: the set splits, d2i_X509 fails */
    assert_int_equal(der[at + 4], 0x30);
    der[at + 4] = 0x04;
    sig = b64(der, derlen, 0);
    assert_true(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_DECODE);
    assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_DECODE);
    free(sig);
    der[at + 4] = 0x30;

    /* the certificate is no SEQUENCE: refused by the splitter and then by
     * the whole decoder */
    der[at] = 0x31;
    sig = b64(der, derlen, 0);
    assert_false(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_DECODE);
    free(sig);
    der[at] = 0x30;

    /* and the repaired one passes */
    sig = b64(der, derlen, 0);
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
    free(sig);

    OPENSSL_free(d1);
    OPENSSL_free(der);
    X509_free(dev1);
    mdm_verifier_free(v);
}

/** mdm_verifier_cert() with the contract checks; hash as in vsig(). */
static mdm_id_rc_t
vcert(mdm_verifier_t *v, const unsigned char *data, size_t len, X509 **x,
      char hash[65])
{
    const char *why = NULL;
    char want[65];
    mdm_id_rc_t rc;

    memset(hash, 'x', 64);
    hash[64] = '\0';
    rc = mdm_verifier_cert(v, data, len, x, hash, &why);
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

static void
test_cert_cache_bounded(void **state)
{
    static const char *names[] = {"dev1", "dev2", "devec", "devroot", "server"};
    static const size_t sizes[] = {1, 2, 3};
    X509 *expect[5], *held[5], *x, *y;
    unsigned char *der[5];
    size_t derlen[5], s, i, k, same;
    char want[5][65], hash[65];
    mdm_verifier_t *v;
    int round;

    (void) state;
    for (i = 0; i < 5; i++) {
        expect[i] = pki_cert(names[i]);
        fingerprint(expect[i], want[i]);
        der[i] = cert_der(expect[i], &derlen[i]);
    }
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        v = cert_cache_verifier(sizes[s]);
        for (i = 0; i < 5; i++) {
            held[i] = NULL;
        }
        for (round = 0; round < 12; round++) {
            same = 0;
            for (k = 0; k < 5; k++) {
                /* in changing orders */
                i = (k * (size_t) (round % 2 ? 3 : 1) + (size_t) round) % 5;
                assert_int_equal(vcert(v, der[i], derlen[i], &x, hash),
                                 MDM_ID_OK);
                assert_int_equal(X509_cmp(x, expect[i]), 0);
                assert_string_equal(hash, want[i]);
                /* what was decoded a moment ago is a hit */
                assert_int_equal(vcert(v, der[i], derlen[i], &y, hash),
                                 MDM_ID_OK);
                assert_ptr_equal(y, x);
                X509_free(y);
                if (x == held[i]) {
                    same++;
                }
                /* the previous round's reference outlives its eviction */
                if (held[i] != NULL) {
                    assert_int_equal(X509_cmp(held[i], expect[i]), 0);
                    X509_free(held[i]);
                }
                held[i] = x;
            }
            /* five certificates do not fit: at most size of them can
             * still be the objects of the previous round */
            if (round > 0) {
                assert_true(same <= sizes[s]);
            }
        }
        mdm_verifier_free(v);
        /* references handed out stay valid after the verifier is gone */
        for (i = 0; i < 5; i++) {
            assert_int_equal(X509_cmp(held[i], expect[i]), 0);
            fingerprint(held[i], hash);
            assert_string_equal(hash, want[i]);
            X509_free(held[i]);
        }
    }
    for (i = 0; i < 5; i++) {
        OPENSSL_free(der[i]);
        X509_free(expect[i]);
    }
}

static void
test_cert_cache_same_slot(void **state)
{
    /*
     * A cache of one entry: every certificate has the same slot. Two
     * certificates whose SHA-256 start with the same byte must still not
     * be taken for each other (the whole key is compared).
     */
    X509 *issuer = pki_cert("int"), *minted[200], *x;
    EVP_PKEY *ikey = pki_key("int"), *pub = pki_key("dev1");
    unsigned char *der[2], md[200][32];
    unsigned int mdlen;
    size_t derlen[2], i, j = 0, k, found = 0;
    char hash[65], want[2][65];
    mdm_verifier_t *v;
    int round;

    (void) state;
    for (i = 0; i < 200 && !found; i++) {
        minted[i] = mint(issuer, ikey, pub, 100 + (long) i);
        der[0] = cert_der(minted[i], &derlen[0]);
        assert_int_equal(
            EVP_Digest(der[0], derlen[0], md[i], &mdlen, EVP_sha256(), NULL),
            1);
        OPENSSL_free(der[0]);
        for (j = 0; j < i; j++) {
            if (md[j][0] == md[i][0]) {
                found = 1;
                break;
            }
        }
    }
    /* 200 random bytes without a repeat: p < 1e-30 */
    assert_true(found);
    i--;
    der[0] = cert_der(minted[j], &derlen[0]);
    der[1] = cert_der(minted[i], &derlen[1]);
    fingerprint(minted[j], want[0]);
    fingerprint(minted[i], want[1]);
    assert_string_not_equal(want[0], want[1]);
    assert_memory_equal(want[0], want[1], 2);

    v = cert_cache_verifier(1);
    for (round = 0; round < 4; round++) {
        for (k = 0; k < 2; k++) {
            assert_int_equal(vcert(v, der[k], derlen[k], &x, hash), MDM_ID_OK);
            assert_string_equal(hash, want[k]);
            assert_int_equal(X509_cmp(x, k ? minted[i] : minted[j]), 0);
            X509_free(x);
        }
    }
    mdm_verifier_free(v);
    for (k = 0; k <= i; k++) {
        X509_free(minted[k]);
    }
    OPENSSL_free(der[0]);
    OPENSSL_free(der[1]);
    X509_free(issuer);
    EVP_PKEY_free(ikey);
    EVP_PKEY_free(pub);
}

static void
test_cert_cache_resize(void **state)
{
    mdm_verifier_t *v = cert_cache_verifier(4);
    X509 *expect = pki_cert("dev1"), *x, *y;
    unsigned char *der;
    size_t derlen;
    char hash[65], want[65];

    (void) state;
    fingerprint(expect, want);
    der = cert_der(expect, &derlen);
    assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_OK);
    assert_int_equal(vcert(v, der, derlen, &y, hash), MDM_ID_OK);
    assert_ptr_equal(x, y);
    X509_free(y);

    /* a new cache starts empty; what callers hold is untouched */
    assert_int_equal(mdm_verifier_set_cert_cache(v, 8), 0);
    assert_int_equal(X509_cmp(x, expect), 0);
    assert_int_equal(vcert(v, der, derlen, &y, hash), MDM_ID_OK);
    assert_ptr_not_equal(y, x);
    assert_string_equal(hash, want);
    X509_free(x);
    x = y;

    /* size 0: no cache, every call decodes */
    assert_int_equal(mdm_verifier_set_cert_cache(v, 0), 0);
    assert_int_equal(X509_cmp(x, expect), 0);
    assert_int_equal(vcert(v, der, derlen, &y, hash), MDM_ID_OK);
    assert_ptr_not_equal(y, x);
    assert_string_equal(hash, want);
    X509_free(x);
    assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_OK);
    assert_ptr_not_equal(y, x);
    assert_string_equal(hash, want);
    X509_free(y);
    X509_free(x);

    OPENSSL_free(der);
    X509_free(expect);
    mdm_verifier_free(v);
}

typedef struct {
    mdm_verifier_t *v;
    const char *sig[2];
    const char *want[2];
    int id;
    int failures;
} vsig_thread_arg_t;

/* No cmocka assertions in here: they longjmp out of the main thread. */
static void *
vsig_thread(void *p)
{
    vsig_thread_arg_t *a = p;
    unsigned char body[TEST_BODY_LEN], *der, md[32];
    unsigned int mdlen;
    const char *why;
    char hash[65], fp[65];
    mdm_id_rc_t rc;
    X509 *x;
    int i, j, n, k;

    memcpy(body, test_body, TEST_BODY_LEN);
    for (i = 0; i < 120; i++) {
        j = (i + a->id) % 2;
        x = NULL;
        rc = mdm_verifier_signature(a->v, a->sig[j], strlen(a->sig[j]), body,
                                    TEST_BODY_LEN, &x, hash, &why);
        if (rc != MDM_ID_OK || x == NULL || strcmp(hash, a->want[j]) != 0) {
            a->failures++;
            X509_free(x);
            continue;
        }
        /* the certificate itself, fingerprinted independently */
        der = NULL;
        n = i2d_X509(x, &der);
        mdlen = 0;
        if (n <= 0 ||
            EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL) != 1) {
            a->failures++;
        } else {
            for (k = 0; k < 32; k++) {
                sprintf(fp + 2 * k, "%02x", md[k]);
            }
            if (strcmp(fp, a->want[j]) != 0) {
                a->failures++;
            }
        }
        OPENSSL_free(der);
        X509_free(x);
        if (i % 10 == 0) {
            body[i % TEST_BODY_LEN] ^= 0x01;
            x = NULL;
            if (mdm_verifier_signature(a->v, a->sig[j], strlen(a->sig[j]), body,
                                       TEST_BODY_LEN, &x, hash,
                                       &why) != MDM_ID_ERR_SIGNATURE ||
                x != NULL) {
                a->failures++;
            }
            body[i % TEST_BODY_LEN] ^= 0x01;
        }
        if (ERR_peek_error() != 0) {
            a->failures++;
        }
    }
    return NULL;
}

static void
test_vsig_threads(void **state)
{
    /* one entry for two devices: every thread keeps evicting the other's */
    mdm_verifier_t *v = cert_cache_verifier(1);
    vsig_thread_arg_t a[4];
    pthread_t t[4];
    char *sig[2], want[2][65];
    X509 *x;
    int i;

    (void) state;
    sig[0] = sign_b64("dev1", EVP_sha256(), 0);
    sig[1] = sign_b64("dev2", EVP_sha1(), 1);
    x = pki_cert("dev1");
    fingerprint(x, want[0]);
    X509_free(x);
    x = pki_cert("dev2");
    fingerprint(x, want[1]);
    X509_free(x);
    assert_true(splits(sig[0], NULL));
    assert_true(splits(sig[1], NULL));
    for (i = 0; i < 4; i++) {
        a[i].v = v;
        a[i].sig[0] = sig[0];
        a[i].sig[1] = sig[1];
        a[i].want[0] = want[0];
        a[i].want[1] = want[1];
        a[i].id = i;
        a[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, vsig_thread, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(a[i].failures, 0);
    }
    free(sig[0]);
    free(sig[1]);
    mdm_verifier_free(v);
}

/* ------------------------------------------------------------------ */
/* mdm_cms_split                                                       */

/** mdm_cms_split() that must refuse: nothing is left to free. */
static void
assert_no_split(const unsigned char *in, size_t len)
{
    mdm_cms_split_t s;

    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(mdm_cms_split(in, len, &s), -1);
    assert_null(s.stripped);
}

static void
test_split_real(void **state)
{
    static const char *names[] = {"dev1", "int"};
    X509 *certs[2], *x;
    STACK_OF(X509) * got, *mine;
    CMS_ContentInfo *cms;
    mdm_cms_split_t s;
    unsigned char *der, *cd[2];
    const unsigned char *p;
    size_t derlen, cdlen[2], i, j, seen[2] = {0, 0};
    char *sig;
    BIO *in;

    (void) state;
    for (i = 0; i < 2; i++) {
        certs[i] = pki_cert(names[i]);
        cd[i] = cert_der(certs[i], &cdlen[i]);
    }
    sig = sign_with_certs("dev1", 0, certs, 2);
    der = unb64(sig, &derlen);

    assert_int_equal(mdm_cms_split(der, derlen, &s), 0);
    assert_int_equal(s.ncerts, 2);
    for (i = 0; i < s.ncerts; i++) {
        /* borrowed from the input, not copied */
        assert_true(s.cert[i] >= der && s.cert_len[i] <= derlen &&
                    (size_t) (s.cert[i] - der) <= derlen - s.cert_len[i]);
        for (j = 0; j < 2; j++) {
            if (s.cert_len[i] == cdlen[j] &&
                memcmp(s.cert[i], cd[j], cdlen[j]) == 0) {
                seen[j]++;
            }
        }
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);

    /* what is left is a ContentInfo without certificates */
    assert_non_null(s.stripped);
    assert_true(s.stripped_len < derlen - cdlen[0] - cdlen[1]);
    p = s.stripped;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) s.stripped_len);
    assert_non_null(cms);
    assert_ptr_equal(p, s.stripped + s.stripped_len);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
    got = CMS_get1_certs(cms);
    assert_true(got == NULL || sk_X509_num(got) == 0);
    sk_X509_pop_free(got, X509_free);
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 1);
    /* and still the signature, given the lifted certificates */
    mine = sk_X509_new_null();
    assert_non_null(mine);
    for (i = 0; i < s.ncerts; i++) {
        p = s.cert[i];
        x = d2i_X509(NULL, &p, (long) s.cert_len[i]);
        assert_non_null(x);
        assert_true(sk_X509_push(mine, x) > 0);
    }
    in = BIO_new_mem_buf(test_body, (int) TEST_BODY_LEN);
    assert_int_equal(
        CMS_verify(cms, mine, NULL, in, NULL,
                   CMS_DETACHED | CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY),
        1);
    BIO_free(in);
    sk_X509_pop_free(mine, X509_free);
    CMS_ContentInfo_free(cms);

    /* every prefix, and one byte more, is refused */
    for (i = 0; i < derlen; i++) {
        assert_no_split(der, i);
    }
    der = OPENSSL_realloc(der, derlen + 1);
    assert_non_null(der);
    der[derlen] = 0;
    assert_no_split(der, derlen + 1);

    free(s.stripped);
    OPENSSL_free(der);
    free(sig);
    for (i = 0; i < 2; i++) {
        OPENSSL_free(cd[i]);
        X509_free(certs[i]);
    }
}

static void
test_split_refused_cms(void **state)
{
    signer_spec_t s = {"dev1", NULL, CMS_NOCERTS};
    static const char *extra[] = {"root",   "int",        "dev2",
                                  "devec",  "devroot",    "expired",
                                  "notyet", "serverauth", "dev1"};
    X509 *certs[9];
    CMS_ContentInfo *cms;
    unsigned char *der;
    size_t derlen, i;
    char *sig;
    BIO *in;

    (void) state;
    s.md = EVP_sha256();
    /* BER */
    der = sign_ber("dev1", test_body, TEST_BODY_LEN, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);

    /* a SignedData without certificates */
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);

    /* not a SignedData */
    in = BIO_new_mem_buf(test_body, (int) TEST_BODY_LEN);
    cms = CMS_data_create(in, CMS_BINARY);
    assert_non_null(cms);
    der = cms_der(cms, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);

    /* nine certificates */
    for (i = 0; i < 9; i++) {
        certs[i] = pki_cert(extra[i]);
    }
    sig = sign_with_certs("dev1", 0, certs, 9);
    der = unb64(sig, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);
    free(sig);
    /* eight are fine */
    sig = sign_with_certs("dev1", 0, certs + 1, 8);
    assert_true(splits(sig, &i));
    assert_int_equal(i, 8);
    free(sig);
    for (i = 0; i < 9; i++) {
        X509_free(certs[i]);
    }
}

static const unsigned char oid_signed_data[] = {
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
static const unsigned char oid_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x07, 0x01};

enum { L_CI, L_EXP, L_SD, L_CERTS, L_CERT, L_MAX };

typedef struct {
    size_t ncerts;            /* certificates: SEQUENCEs of filler */
    size_t cert_len;          /* content length of each */
    size_t si_len;            /* content length of the signerInfos SET */
    int lb[L_MAX];            /* length encodings, see tlv() */
    int certs_tag;            /* 0: 0xa0 */
    int cert_tag;             /* 0: 0x30 */
    int dup_certs;            /* a second [0] after the first */
    int certs_last;           /* [0] after signerInfos (not where it belongs) */
    const unsigned char *oid; /* NULL: SignedData */
    blob_t *after_sd; /* appended inside [0] EXPLICIT, after SignedData */
} sd_shape_t;

/** The certificate set's elements of shape (no header). */
static blob_t
shape_certs(const sd_shape_t *s)
{
    blob_t b = blob(NULL, 0);
    size_t i;

    for (i = 0; i < s->ncerts; i++) {
        b = cat(b, tlv(s->cert_tag ? (unsigned char) s->cert_tag : 0x30,
                       filler(s->cert_len, (unsigned) i), s->lb[L_CERT]));
    }
    return b;
}

/** A ContentInfo(SignedData) of shape, with or without certificates. */
static blob_t
shape_der(const sd_shape_t *s, int with_certs)
{
    unsigned char certs_tag =
        s->certs_tag ? (unsigned char) s->certs_tag : 0xa0;
    blob_t sd, exp, certs;
    int lb_sd = with_certs ? s->lb[L_SD] : LEN_DER;

    sd = blob("\x02\x01\x01", 3);
    sd = cat(sd, tlv(0x31, blob(NULL, 0), LEN_DER));
    sd = cat(sd, tlv(0x30, blob(oid_data, sizeof(oid_data)), LEN_DER));
    if (with_certs && !s->certs_last) {
        sd = cat(sd, tlv(certs_tag, shape_certs(s), s->lb[L_CERTS]));
        if (s->dup_certs) {
            sd = cat(sd, tlv(certs_tag, shape_certs(s), s->lb[L_CERTS]));
        }
    }
    sd = cat(sd, tlv(0x31, filler(s->si_len, 99), LEN_DER));
    if (with_certs && s->certs_last) {
        sd = cat(sd, tlv(certs_tag, shape_certs(s), s->lb[L_CERTS]));
    }
    exp = tlv(0x30, sd, lb_sd);
    if (with_certs && s->after_sd != NULL) {
        exp = cat(exp, blob(s->after_sd->p, s->after_sd->len));
    }
    certs = tlv(0xa0, exp, with_certs ? s->lb[L_EXP] : LEN_DER);
    return tlv(
        0x30,
        cat(blob(s->oid ? s->oid : oid_signed_data, sizeof(oid_signed_data)),
            certs),
        with_certs ? s->lb[L_CI] : LEN_DER);
}

/**
 * Split shape's encoding: the certificates must be the very bytes of the
 * input and the rest the DER of the same ContentInfo without them.
 */
static void
assert_split_shape(const sd_shape_t *s)
{
    blob_t in = shape_der(s, 1), want = shape_der(s, 0), one;
    mdm_cms_split_t out;
    size_t i, prev = 0;

    assert_int_equal(mdm_cms_split(in.p, in.len, &out), 0);
    assert_int_equal(out.ncerts, s->ncerts);
    for (i = 0; i < s->ncerts; i++) {
        one = tlv(0x30, filler(s->cert_len, (unsigned) i), s->lb[L_CERT]);
        assert_int_equal(out.cert_len[i], one.len);
        /* in order, inside the input, not overlapping */
        assert_true(out.cert[i] >= in.p + prev);
        assert_true((size_t) (out.cert[i] - in.p) <= in.len - one.len);
        assert_memory_equal(out.cert[i], one.p, one.len);
        prev = (size_t) (out.cert[i] - in.p) + one.len;
        free(one.p);
    }
    assert_int_equal(out.stripped_len, want.len);
    assert_memory_equal(out.stripped, want.p, want.len);
    /* nothing more to lift from what is left */
    assert_no_split(out.stripped, out.stripped_len);
    free(out.stripped);
    free(in.p);
    free(want.p);
}

static void
assert_no_split_shape(const sd_shape_t *s)
{
    blob_t in = shape_der(s, 1);

    assert_no_split(in.p, in.len);
    free(in.p);
}

static const sd_shape_t base_shape = {2, 10, 20, {0}, 0, 0, 0, 0, NULL, NULL};

static void
test_split_crafted(void **state)
{
    static const unsigned char oid_enveloped[] = {
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03};
    sd_shape_t s;
    blob_t b, c, extra;
    size_t i;
    int l;

    (void) state;
    s = base_shape;
    assert_split_shape(&s);
    /* one to eight certificates; the splitter does not look inside */
    for (i = 1; i <= MDM_CMS_MAX_CERTS; i++) {
        s.ncerts = i;
        assert_split_shape(&s);
        s.cert_len = 0;
        assert_split_shape(&s);
        s.cert_len = 10;
    }
    s.ncerts = MDM_CMS_MAX_CERTS + 1;
    assert_no_split_shape(&s);
    s.ncerts = 20;
    assert_no_split_shape(&s);
    /* an empty set lifts nothing */
    s.ncerts = 0;
    assert_no_split_shape(&s);

    /* long-form lengths where DER wants the short form, at each level */
    for (l = 0; l < L_MAX; l++) {
        s = base_shape;
        s.lb[l] = 1;
        assert_split_shape(&s);
        s.lb[l] = 4;
        assert_split_shape(&s);
        /* five length octets: never DER */
        s.lb[l] = 5;
        assert_no_split_shape(&s);
        /* indefinite length at any level */
        s.lb[l] = LEN_BER;
        assert_no_split_shape(&s);
    }
    s = base_shape;
    for (l = 0; l < L_MAX; l++) {
        s.lb[l] = 4;
    }
    assert_split_shape(&s);

    /* shapes that are not a SignedData with one certificate set */
    s = base_shape;
    s.oid = oid_enveloped;
    assert_no_split_shape(&s);
    s.oid = oid_data;
    assert_no_split_shape(&s);
    s = base_shape;
    s.dup_certs = 1;
    assert_no_split_shape(&s);
    s = base_shape;
    s.cert_tag = 0x31;
    assert_no_split_shape(&s);
    s.cert_tag = 0xa1; /* another CertificateChoices */
    assert_no_split_shape(&s);
    s.cert_tag = 0x1f; /* multi-octet tag */
    assert_no_split_shape(&s);
    s = base_shape;
    s.certs_tag = 0xa1; /* [1] crls only: no certificate set */
    assert_no_split_shape(&s);
    s = base_shape;
    extra = blob("\x05\x00", 2);
    s.after_sd = &extra;
    assert_no_split_shape(&s);
    free(extra.p);

    /* the ContentInfo and SignedData must be SEQUENCEs, [0] the wrapper */
    for (i = 0; i < 3; i++) {
        static const size_t at[] = {0, 13, 15};
        static const unsigned char bad[] = {0x31, 0xa1, 0x31};

        b = shape_der(&base_shape, 1);
        assert_int_equal(b.p[at[i]], i == 1 ? 0xa0 : 0x30);
        b.p[at[i]] = bad[i];
        assert_no_split(b.p, b.len);
        free(b.p);
    }
    /* an element after [0] inside the ContentInfo */
    c = shape_der(&base_shape, 1);
    assert_int_equal(c.p[1], c.len - 2);
    b = tlv(0x30, cat(blob(c.p + 2, c.len - 2), blob("\x05\x00", 2)), LEN_DER);
    assert_no_split(b.p, b.len);
    free(b.p);
    free(c.p);
    /* an OID of the right length but another tag */
    b = shape_der(&base_shape, 1);
    b.p[2] = 0x04;
    assert_no_split(b.p, b.len);
    free(b.p);

    /* every prefix of a good input, and trailing bytes */
    b = shape_der(&base_shape, 1);
    for (i = 0; i < b.len; i++) {
        assert_no_split(b.p, i);
    }
    b = cat(b, blob("", 1));
    assert_no_split(b.p, b.len);
    free(b.p);
    assert_no_split((const unsigned char *) "", 0);
}

static void
test_split_lengths(void **state)
{
    /* lengths that do not fit: in headers, and past what holds them */
    static const struct {
        const char *bytes;
        size_t len;
    } raw[] = {
        {"\x30", 1},
        {"\x30\x80", 2},
        {"\x30\x80\x00\x00", 4},
        {"\x30\x81", 2},
        {"\x30\x82\x01", 3},
        {"\x30\x84\xff\xff\xff\xff", 6},
        {"\x30\x84\xff\xff\xff\xff\x06\x09", 8},
        {"\x30\x84\x00\x00\x00\x02\x05\x00", 8},
        {"\x30\x85\x00\x00\x00\x00\x02\x05\x00", 9},
        {"\x30\x88\x00\x00\x00\x00\x00\x00\x00\x02\x05\x00", 12},
        {"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xf0\x05\x00", 12},
        {"\x30\x8f\x05\x00", 4},
        {"\x30\xff\x05\x00", 4},
        {"\x30\x02\x05\x00", 4},
        {"\x1f\x02\x05\x00", 4},
        {"\x3f\x81\x00\x00", 4},
    };
    sd_shape_t s = base_shape;
    /* where the four length octets are when every length has four: the
     * ContentInfo, [0], SignedData, certificate set, first certificate */
    static const size_t lens[] = {2, 19, 25, 49, 55};
    static const unsigned char tags[] = {0x30, 0xa0, 0x30, 0xa0, 0x30};
    static const unsigned char huge[][4] = {{0xff, 0xff, 0xff, 0xff},
                                            {0x80, 0x00, 0x00, 0x00},
                                            {0x7f, 0xff, 0xff, 0xff},
                                            {0xff, 0xff, 0xff, 0xf0}};
    blob_t b, c;
    size_t i, j, v;
    int l;

    (void) state;
    for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        assert_no_split((const unsigned char *) raw[i].bytes, raw[i].len);
    }
    /* a certificate with an indefinite length (0x80 read as an empty
     * element would leave "30 00" as a second certificate) */
    b = blob("\x02\x01\x01\x31\x00", 5);
    b = cat(b, tlv(0x30, blob(oid_data, sizeof(oid_data)), LEN_DER));
    c = blob("\x30\x80\x30\x00", 4);
    b = cat(b, tlv(0xa0, c, LEN_DER));
    b = cat(b, tlv(0x31, filler(4, 1), LEN_DER));
    b = tlv(0x30,
            cat(blob(oid_signed_data, sizeof(oid_signed_data)),
                tlv(0xa0, tlv(0x30, b, LEN_DER), LEN_DER)),
            LEN_DER);
    assert_no_split(b.p, b.len);
    free(b.p);
    for (l = 0; l < L_MAX; l++) {
        s.lb[l] = 4;
    }
    assert_split_shape(&s);
    b = shape_der(&s, 1);
    for (j = 0; j < 5; j++) {
        assert_int_equal(b.p[lens[j] - 2], tags[j]);
        assert_int_equal(b.p[lens[j] - 1], 0x84);
        /* lengths far beyond the input */
        for (i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
            c = blob(b.p, b.len);
            memcpy(c.p + lens[j], huge[i], 4);
            assert_no_split(c.p, c.len);
            free(c.p);
        }
        /* one octet more than the enclosing element leaves */
        c = blob(b.p, b.len);
        v = (size_t) c.p[lens[j]] << 24 | (size_t) c.p[lens[j] + 1] << 16 |
            (size_t) c.p[lens[j] + 2] << 8 | c.p[lens[j] + 3];
        v++;
        c.p[lens[j]] = (unsigned char) (v >> 24);
        c.p[lens[j] + 1] = (unsigned char) (v >> 16);
        c.p[lens[j] + 2] = (unsigned char) (v >> 8);
        c.p[lens[j] + 3] = (unsigned char) v;
        assert_no_split(c.p, c.len);
        free(c.p);
    }
    free(b.p);
}

/** The DER header length of a content of n octets (test's own count). */
static size_t
der_hdr(size_t n)
{
    size_t k = 0;

    if (n < 0x80) {
        return 2;
    }
    while (n != 0) {
        n >>= 8;
        k++;
    }
    return 2 + k;
}

static void
test_split_length_boundaries(void **state)
{
    /* where the length of the rewritten headers changes size */
    static const size_t bounds[] = {0x80, 0x100, 0x10000, 0x1000000};
    sd_shape_t s = base_shape;
    size_t bi, si, lo, sdc, expc, cic, done = 0;

    (void) state;
    for (bi = 0; bi < sizeof(bounds) / sizeof(bounds[0]); bi++) {
        lo = bounds[bi] > 64 ? bounds[bi] - 64 : 0;
        for (si = lo; si < bounds[bi] + 8; si++) {
            /* the stripped lengths, as shape_der() makes them */
            sdc = 3 + 2 + 13 + der_hdr(si) + si;
            expc = der_hdr(sdc) + sdc;
            cic = sizeof(oid_signed_data) + der_hdr(expc) + expc;
            /* the big ones only at the edges: they take time */
            if (bounds[bi] > 0x10000 &&
                !(sdc + 1 >= bounds[bi] && sdc <= bounds[bi]) &&
                !(expc + 1 >= bounds[bi] && expc <= bounds[bi]) &&
                !(cic + 1 >= bounds[bi] && cic <= bounds[bi])) {
                continue;
            }
            s.si_len = si;
            s.ncerts = 3;
            s.cert_len = 40;
            assert_split_shape(&s);
            done++;
        }
    }
    assert_true(done > 200);
}

/* Regressions found by fuzzing the fast path (t/fuzz/corpus/signature). */
static void
test_fastpath_regressions(void **state)
{
    unsigned char *der, *bad;
    size_t len, i;
    X509 *x = NULL;
    char hash[65];
    const char *why;
    mdm_cms_split_t sp;
    mdm_verifier_t *v;
    char err[256];
    static const unsigned char null_params[] = {
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};

    (void) state;
    /* the certificate set is accepted only where the decoder expects it */
    der =
        read_all(path_in(samples_dir,
                         "../fuzz/corpus/signature/split-misplaced-first.der"),
                 &len);
    assert_int_equal(mdm_cms_split(der, len, &sp), -1);
    free(der);
    der = read_all(path_in(samples_dir,
                           "../fuzz/corpus/signature/split-misplaced-last.der"),
                   &len);
    assert_int_equal(mdm_cms_split(der, len, &sp), -1);
    free(der);

    /* a certificate whose unsigned outer part was altered: decoded like
     * the full decoder does; the hash is always that of its canonical DER
     * (cached or not), and the chain check refuses it (the outer and
     * signed signature algorithms differ) */
    x = load_cert_path(path_in(pki_dir, "dev1.pem"));
    der = NULL;
    len = (size_t) i2d_X509(x, &der);
    X509_free(x);
    x = NULL;
    bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, der, len);
    for (i = len - sizeof(null_params); i > 0; i--) {
        if (memcmp(bad + i, null_params, sizeof(null_params)) == 0) {
            break;
        }
    }
    assert_true(i > 0);
    bad[i + sizeof(null_params) - 2] = 0x3a; /* NULL -> another tag */
    v = mdm_verifier_new(path_in(pki_dir, "cafile.pem"), 16, 60, err,
                         sizeof(err));
    assert_non_null(v);
    assert_int_equal(mdm_verifier_set_cert_cache(v, 4), 0);
    {
        char canon[65];

        assert_int_equal(mdm_verifier_cert(v, der, len, &x, canon, &why),
                         MDM_ID_OK);
        X509_free(x);
        x = NULL;
        /* twice: the miss, then the cache hit */
        for (i = 0; i < 2; i++) {
            assert_int_equal(mdm_verifier_cert(v, bad, len, &x, hash, &why),
                             MDM_ID_OK);
            assert_int_equal(mdm_cert_sha256_hex(x, canon), 0);
            assert_string_equal(hash, canon);
            assert_int_not_equal(
                mdm_verifier_check(v, x, hash, time(NULL), &why), MDM_ID_OK);
            X509_free(x);
            x = NULL;
        }
    }
    mdm_verifier_free(v);
    OPENSSL_free(der);
    free(bad);
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
        cmocka_unit_test(test_two_signers),
        cmocka_unit_test(test_unknown_digest),
        cmocka_unit_test(test_signer_cert_missing),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_chain_time_is_now_argument),
        cmocka_unit_test(test_chain_partial_cafile),
        cmocka_unit_test(test_verifier_new_errors),
        cmocka_unit_test(test_cache_hit),
        cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_cache_ttl),
        cmocka_unit_test(test_cache_not_after),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_from_cert),
        cmocka_unit_test(test_from_header),
        cmocka_unit_test(test_cert_names),
        cmocka_unit_test(test_vsig_same_as_plain),
        cmocka_unit_test(test_vsig_synthetic),
        cmocka_unit_test(test_vsig_signers),
        cmocka_unit_test(test_vsig_swapped_cert),
        cmocka_unit_test(test_vsig_with_intermediate),
        cmocka_unit_test(test_vsig_ber),
        cmocka_unit_test(test_vsig_reencoded),
        cmocka_unit_test(test_vsig_many_certs),
        cmocka_unit_test(test_vsig_bad_cert_in_set),
        cmocka_unit_test(test_vcert_vheader),
        cmocka_unit_test(test_cert_cache_bounded),
        cmocka_unit_test(test_cert_cache_same_slot),
        cmocka_unit_test(test_cert_cache_resize),
        cmocka_unit_test(test_vsig_threads),
        cmocka_unit_test(test_split_real),
        cmocka_unit_test(test_split_refused_cms),
        cmocka_unit_test(test_split_crafted),
        cmocka_unit_test(test_split_lengths),
        cmocka_unit_test(test_split_length_boundaries),
        cmocka_unit_test(test_fastpath_regressions),
    };

    pki_dir = getenv("MDM_TEST_PKI");
    samples_dir = getenv("MDM_SAMPLES");
    if (pki_dir == NULL || samples_dir == NULL) {
        fprintf(stderr, "test_identity: set MDM_TEST_PKI (t/pki/mkpki.sh "
                        "output) and MDM_SAMPLES (t/samples)\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
