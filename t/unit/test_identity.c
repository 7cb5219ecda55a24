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
