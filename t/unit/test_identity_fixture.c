/*
 * Shared by the device identity unit tests (test_identity_*.c): the test
 * PKI and samples, signatures made with the OpenSSL API so that each
 * refusal rule is exercised on its own, a small DER writer for hand-made
 * inputs, and calls of the identity API with their contract checks.
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
#include "test_identity_fixture.h"

const char *pki_dir;
const char *samples_dir;

char *
path_in(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

/** Whole file, malloc'd and NUL-terminated; the caller frees it. */
unsigned char *
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

X509 *
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

X509 *
pki_cert(const char *name)
{
    char file[256];

    snprintf(file, sizeof(file), "%s.pem", name);
    return load_cert_path(path_in(pki_dir, file));
}

EVP_PKEY *
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

/** Independent fingerprint: SHA-256 over i2d_X509(), lowercase hex. */
void
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
char *
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

unsigned char *
cms_der(CMS_ContentInfo *cms, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);

    assert_true(n > 0);
    *len = (size_t) n;
    return der;
}

/**
 * CMS SignedData over body; detached unless attached is set. Returns the
 * DER (OPENSSL_free) in *der.
 */
void
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
char *
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

mdm_id_rc_t
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

void
assert_same_cert(X509 *a, X509 *b)
{
    char fa[65], fb[65];

    fingerprint(a, fa);
    fingerprint(b, fb);
    assert_string_equal(fa, fb);
}

mdm_verifier_t *
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

/** A fresh clientAuth certificate issued by int with serial n (X509_free). */
X509 *
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

/* ------------------------------------------------------------------ */
/* A small DER writer for hand-made inputs. */

blob_t
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
blob_t
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
blob_t
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

/**
 * An element: tag, length, content (consumed). lenbytes LEN_DER, LEN_BER,
 * or n > 0 for the long form with n length octets (BER, not DER, where
 * fewer would do).
 */
blob_t
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

/** No chain cache; a decoded-certificate cache of size entries. */
mdm_verifier_t *
cert_cache_verifier(size_t size)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 0, 0);

    assert_int_equal(mdm_verifier_set_cert_cache(v, size), 0);
    return v;
}

/** Base64, line breaks allowed, to bytes (OPENSSL_free). */
unsigned char *
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
unsigned char *
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
int
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
 * Detached SHA-256 signature over test_body by name's key whose
 * certificate set is exactly certs (the signer's own only if listed).
 * Base64 (free()).
 */
char *
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
size_t
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
blob_t
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
unsigned char *
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

/** mdm_verifier_cert() with the contract checks; hash as in vsig(). */
mdm_id_rc_t
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

int
identity_setup(void **state)
{
    (void) state;
    pki_dir = getenv("MDM_TEST_PKI");
    samples_dir = getenv("MDM_SAMPLES");
    if (pki_dir == NULL || samples_dir == NULL) {
        fprintf(stderr, "set MDM_TEST_PKI (t/pki/mkpki.sh output) and "
                        "MDM_SAMPLES (t/samples)\n");
        return -1;
    }
    return 0;
}
