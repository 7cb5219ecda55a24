/*
 * mdm_identity: device identity from a TLS certificate, an Mdm-Signature
 * header or a trusted proxy header, and the chain check against the
 * identity CA with a bounded per-verifier cache.
 */
#include "mdm_identity.h"
#include "mdm_der.h"
#include "mdm_text.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* Probe window of the cache: small, so that a lookup stays cheap. */
#define MDM_CACHE_PROBE 8

#define MDM_PEM_BEGIN     "-----BEGIN"
#define MDM_PEM_BEGIN_LEN (sizeof(MDM_PEM_BEGIN) - 1)

typedef struct {
    unsigned char key[32];
    time_t verified_at;
    /* earliest notAfter of the whole verified chain */
    time_t not_after;
    int used;
} mdm_cache_entry_t;

/* A decoded certificate, keyed by the SHA-256 of its DER. */
typedef struct {
    unsigned char key[32]; /* SHA-256 of the bytes as received */
    X509 *x;
    time_t used;
    char hash[65]; /* SHA-256 of the canonical DER: the binding key */
} mdm_cert_entry_t;

struct mdm_verifier_s {
    X509_STORE *store;
    mdm_cert_entry_t *certs; /* decoded certificates, see mdm_parse_cached */
    size_t certs_size;
    /* 1970-01-01, to turn ASN1_TIME into time_t without timegm() */
    ASN1_TIME *epoch;
    pthread_mutex_t lock;
    mdm_cache_entry_t *cache;
    size_t cache_size;
    size_t entries;
    unsigned ttl;
    unsigned long hits;
    unsigned long misses;
};

const char *
mdm_id_rc_name(mdm_id_rc_t rc)
{
    switch (rc) {
    case MDM_ID_OK:
        return "ok";
    case MDM_ID_ERR_NOMEM:
        return "no-memory";
    case MDM_ID_ERR_DECODE:
        return "bad-encoding";
    case MDM_ID_ERR_CMS:
        return "bad-cms";
    case MDM_ID_ERR_SIGNERS:
        return "bad-signer";
    case MDM_ID_ERR_SIGNATURE:
        return "bad-signature";
    case MDM_ID_ERR_UNTRUSTED:
        return "untrusted";
    case MDM_ID_ERR_EXPIRED:
        return "expired";
    case MDM_ID_ERR_USAGE:
        return "bad-usage";
    }
    return "unknown";
}

static void mdm_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
mdm_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void
mdm_set_why(const char **why, const char *msg)
{
    if (why != NULL) {
        *why = msg;
    }
}

/* 0-63: digit value; 64: whitespace; 65: '='; 0xff: invalid. A table
 * because this runs over every Mdm-Signature header (~3 KB). */
static const unsigned char mdm_b64_tab[256] = {
    ['A'] = 0,   ['B'] = 1,   ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,
    ['G'] = 6,   ['H'] = 7,   ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11,
    ['M'] = 12,  ['N'] = 13,  ['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17,
    ['S'] = 18,  ['T'] = 19,  ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24,  ['Z'] = 25,  ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29,
    ['e'] = 30,  ['f'] = 31,  ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35,
    ['k'] = 36,  ['l'] = 37,  ['m'] = 38, ['n'] = 39, ['o'] = 40, ['p'] = 41,
    ['q'] = 42,  ['r'] = 43,  ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48,  ['x'] = 49,  ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53,
    ['2'] = 54,  ['3'] = 55,  ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59,
    ['8'] = 60,  ['9'] = 61,  ['+'] = 62, ['/'] = 63, [' '] = 64, ['\t'] = 64,
    ['\r'] = 64, ['\n'] = 64, ['='] = 65,
};

/* The table's zero entries are ambiguous ('A' is 0): check 'A' apart. */
static int
mdm_b64_value(unsigned char c)
{
    unsigned char v = mdm_b64_tab[c];

    if (v == 0 && c != 'A') {
        return -1;
    }
    return v;
}

/**
 * Standard base64. Own decoder rather than EVP_DecodeUpdate() because the
 * latter silently stops at '-' and so would accept trailing garbage.
 * allow_ws: skip SP, HTAB, CR, LF anywhere (wrapped header values).
 * On success *out is malloc'd and owned by the caller.
 */
static mdm_id_rc_t
mdm_b64_decode(const char *in, size_t len, int allow_ws, unsigned char **out,
               size_t *outlen, const char **why)
{
    unsigned char *buf;
    unsigned acc = 0;
    size_t i, n = 0, pad = 0, o = 0;
    int bits = 0, v;
    unsigned char c;

    *out = NULL;
    *outlen = 0;
    if (in == NULL || len == 0) {
        mdm_set_why(why, "empty base64");
        return MDM_ID_ERR_DECODE;
    }
    buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];
        v = mdm_b64_value(c);
        if (v == 64) {
            if (!allow_ws) {
                goto bad;
            }
            continue;
        }
        if (v == 65) {
            if (++pad > 2) {
                goto bad;
            }
            continue;
        }
        if (pad > 0 || v < 0) {
            goto bad;
        }
        acc = ((acc << 6) | (unsigned) v) & 0xfff;
        bits += 6;
        n++;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char) (acc >> bits);
        }
    }
    /* a single character of a last quantum cannot encode a byte */
    if (n == 0 || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0)) {
        goto bad;
    }
    *out = buf;
    *outlen = o;
    return MDM_ID_OK;

bad:
    free(buf);
    mdm_set_why(why, "invalid base64");
    return MDM_ID_ERR_DECODE;
}

/*
 * Every digestAlgorithm of the SignedData is SHA-1 or SHA-2. der is what
 * cms was decoded from; BER (or anything else the DER walk does not take)
 * is re-encoded first, a rare path.
 */
static int
mdm_digests_ok(CMS_ContentInfo *cms, const unsigned char *der, size_t len)
{
    unsigned char *re = NULL;
    int n, ok;

    ok = mdm_cms_digests_ok(der, len);
    if (ok >= 0) {
        return ok;
    }
    n = i2d_CMS_ContentInfo(cms, &re);
    ok = n > 0 && mdm_cms_digests_ok(re, (size_t) n) == 1;
    OPENSSL_free(re);
    return ok;
}

/* Never prompt on a terminal for an "encrypted" PEM block. */
static int
mdm_no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1;
}

static mdm_id_rc_t
mdm_parse_der(const unsigned char *data, size_t len, X509 **cert,
              const char **why)
{
    const unsigned char *p = data;
    X509 *x;

    if (len == 0 || len > LONG_MAX) {
        mdm_set_why(why, "bad certificate length");
        return MDM_ID_ERR_DECODE;
    }
    x = d2i_X509(NULL, &p, (long) len);
    if (x == NULL || p != data + len) {
        X509_free(x);
        mdm_set_why(why, "invalid DER certificate");
        return MDM_ID_ERR_DECODE;
    }
    *cert = x;
    return MDM_ID_OK;
}

static int
mdm_is_pem(const unsigned char *data, size_t len)
{
    return len >= MDM_PEM_BEGIN_LEN &&
           memcmp(data, MDM_PEM_BEGIN, MDM_PEM_BEGIN_LEN) == 0;
}

/*
 * Every entry point below brackets its work with ERR_set_mark() and
 * ERR_pop_to_mark(): OpenSSL errors raised by a refused input must not be
 * picked up later by unrelated code (the web server's own TLS stack reads
 * the same per-thread queue), and errors queued by the caller stay put.
 */

static mdm_id_rc_t mdm_parse_cached(mdm_verifier_t *v, const unsigned char *der,
                                    size_t len, X509 **cert, char *hash,
                                    const char **why);

static mdm_id_rc_t
mdm_signature_impl(mdm_verifier_t *v, const char *b64, size_t b64len,
                   const unsigned char *body, size_t bodylen, X509 **signer,
                   char *hash, const char **why)
{
    mdm_cms_split_t split = {0};
    STACK_OF(X509) *certs = NULL;
    char hashes[MDM_CMS_MAX_CERTS][65];
    size_t i;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t derlen = 0;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(CMS_SignerInfo) * sis;
    STACK_OF(X509) *signers = NULL;
    CMS_SignerInfo *si;
    X509 *x = NULL;
    BIO *bio = NULL;
    mdm_id_rc_t rc;

    *signer = NULL;
    ERR_set_mark();

    rc = mdm_b64_decode(b64, b64len, 1, &der, &derlen, why);
    if (rc != MDM_ID_OK) {
        goto done;
    }
    if (derlen > LONG_MAX) {
        rc = MDM_ID_ERR_DECODE;
        mdm_set_why(why, "signature too large");
        goto done;
    }

    /*
     * Fast path: decode the embedded certificates through the verifier's
     * cache and the rest of the structure on its own. Anything the
     * splitter does not recognise (BER, odd shapes) is decoded whole.
     */
    if (v && v->certs && mdm_cms_split(der, derlen, &split) == 0) {
        certs = sk_X509_new_null();
        if (certs == NULL) {
            rc = MDM_ID_ERR_NOMEM;
            mdm_set_why(why, "out of memory");
            goto done;
        }
        for (i = 0; i < split.ncerts; i++) {
            rc = mdm_parse_cached(v, split.cert[i], split.cert_len[i], &x,
                                  hashes[i], why);
            if (rc != MDM_ID_OK) {
                goto done;
            }
            if (!sk_X509_push(certs, x)) {
                X509_free(x);
                rc = MDM_ID_ERR_NOMEM;
                mdm_set_why(why, "out of memory");
                goto done;
            }
        }
        x = NULL;
        free(der);
        der = split.stripped;
        derlen = split.stripped_len;
        split.stripped = NULL;
    }
    p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) derlen);
    if (cms == NULL || p != der + derlen) {
        rc = MDM_ID_ERR_DECODE;
        mdm_set_why(why, "signature is not a DER CMS ContentInfo");
        goto done;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        rc = MDM_ID_ERR_CMS;
        mdm_set_why(why, "CMS is not SignedData");
        goto done;
    }
    if (!mdm_digests_ok(cms, der, derlen)) {
        rc = MDM_ID_ERR_SIGNATURE;
        mdm_set_why(why, "CMS names a digest algorithm other than SHA-1 "
                         "or SHA-2");
        goto done;
    }
    /* an attached content would let the signature cover something else
     * than the body we were sent */
    if (CMS_is_detached(cms) != 1) {
        rc = MDM_ID_ERR_CMS;
        mdm_set_why(why, "CMS SignedData is not detached");
        goto done;
    }

    sis = CMS_get0_SignerInfos(cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "CMS does not have exactly one signer");
        goto done;
    }
    /*
     * Resolve the signer certificate from the CMS certificate set before
     * CMS_verify(), which would report a missing certificate as a mere
     * verification failure.
     */
    if (CMS_set1_signers_certs(cms, certs, 0) < 0) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "cannot resolve the signer certificate");
        goto done;
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    CMS_SignerInfo_get0_algs(si, NULL, &x, NULL, NULL);
    if (x == NULL) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "signer certificate not included");
        goto done;
    }

    if (bodylen > INT_MAX) {
        rc = MDM_ID_ERR_SIGNATURE;
        mdm_set_why(why, "body too large");
        goto done;
    }
    /* BIO_new_mem_buf() refuses a NULL buffer even for length 0 */
    bio = BIO_new_mem_buf(bodylen ? (const void *) body : "", (int) bodylen);
    if (bio == NULL) {
        rc = MDM_ID_ERR_NOMEM;
        mdm_set_why(why, "out of memory");
        goto done;
    }
    /*
     * CMS_BINARY: devices sign the raw bytes, without it OpenSSL would
     * canonicalise LF to CRLF. The chain is checked separately by
     * mdm_verifier_check(), hence CMS_NO_SIGNER_CERT_VERIFY.
     */
    if (CMS_verify(cms, certs, NULL, bio, NULL,
                   CMS_DETACHED | CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) !=
        1) {
        rc = MDM_ID_ERR_SIGNATURE;
        mdm_set_why(why, "signature does not verify over the body");
        goto done;
    }

    signers = CMS_get0_signers(cms);
    if (signers == NULL || sk_X509_num(signers) != 1 ||
        sk_X509_value(signers, 0) == NULL) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "not exactly one signer certificate");
        goto done;
    }
    x = sk_X509_value(signers, 0);
    if (X509_up_ref(x) != 1) {
        rc = MDM_ID_ERR_NOMEM;
        mdm_set_why(why, "out of memory");
        goto done;
    }
    *signer = x;
    if (hash) {
        hash[0] = '\0';
        for (i = 0; certs && i < (size_t) sk_X509_num(certs); i++) {
            if (sk_X509_value(certs, (int) i) == x) {
                memcpy(hash, hashes[i], 65);
            }
        }
        if (hash[0] == '\0' && mdm_cert_sha256_hex(x, hash) != 0) {
            X509_free(x);
            *signer = NULL;
            rc = MDM_ID_ERR_NOMEM;
            mdm_set_why(why, "out of memory");
            goto done;
        }
    }
    rc = MDM_ID_OK;
    mdm_set_why(why, "ok");

done:
    /* the stack is ours, the certificates belong to cms */
    sk_X509_free(signers);
    sk_X509_pop_free(certs, X509_free);
    free(split.stripped);
    BIO_free(bio);
    CMS_ContentInfo_free(cms);
    free(der);
    ERR_pop_to_mark();
    return rc;
}

mdm_id_rc_t
mdm_identity_from_signature(const char *b64, size_t b64len,
                            const unsigned char *body, size_t bodylen,
                            X509 **signer, const char **why)
{
    return mdm_signature_impl(NULL, b64, b64len, body, bodylen, signer, NULL,
                              why);
}

mdm_id_rc_t
mdm_verifier_signature(mdm_verifier_t *v, const char *b64, size_t b64len,
                       const unsigned char *body, size_t bodylen, X509 **signer,
                       char hash[65], const char **why)
{
    return mdm_signature_impl(v, b64, b64len, body, bodylen, signer, hash, why);
}

/* PEM to DER without decoding the certificate (see mdm_parse_cached). */
static mdm_id_rc_t
mdm_pem_to_der(const unsigned char *data, size_t len, unsigned char **der,
               long *derlen, const char **why)
{
    BIO *bio;
    int ok;

    if (len > INT_MAX) {
        mdm_set_why(why, "certificate too large");
        return MDM_ID_ERR_DECODE;
    }
    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    ok = PEM_bytes_read_bio(der, derlen, NULL, PEM_STRING_X509, bio,
                            mdm_no_password, NULL);
    BIO_free(bio);
    if (!ok) {
        mdm_set_why(why, "invalid PEM certificate");
        return MDM_ID_ERR_DECODE;
    }
    return MDM_ID_OK;
}

static mdm_id_rc_t
mdm_pem_cached(mdm_verifier_t *v, const unsigned char *data, size_t len,
               X509 **cert, char *hash, const char **why)
{
    unsigned char *der = NULL;
    long derlen = 0;
    mdm_id_rc_t rc = mdm_pem_to_der(data, len, &der, &derlen, why);

    if (rc == MDM_ID_OK) {
        rc = mdm_parse_cached(v, der, (size_t) derlen, cert, hash, why);
    }
    OPENSSL_free(der);
    return rc;
}

static mdm_id_rc_t
mdm_cert_impl(mdm_verifier_t *v, const unsigned char *data, size_t len,
              X509 **cert, char *hash, const char **why)
{
    mdm_id_rc_t rc;

    *cert = NULL;
    if (data == NULL || len == 0) {
        mdm_set_why(why, "empty certificate");
        return MDM_ID_ERR_DECODE;
    }
    ERR_set_mark();
    if (mdm_is_pem(data, len)) {
        rc = mdm_pem_cached(v, data, len, cert, hash, why);
    } else {
        rc = mdm_parse_cached(v, data, len, cert, hash, why);
    }
    if (rc == MDM_ID_OK) {
        mdm_set_why(why, "ok");
    }
    ERR_pop_to_mark();
    return rc;
}

mdm_id_rc_t
mdm_identity_from_cert(const unsigned char *data, size_t len, X509 **cert,
                       const char **why)
{
    return mdm_cert_impl(NULL, data, len, cert, NULL, why);
}

mdm_id_rc_t
mdm_verifier_cert(mdm_verifier_t *v, const unsigned char *data, size_t len,
                  X509 **cert, char hash[65], const char **why)
{
    return mdm_cert_impl(v, data, len, cert, hash, why);
}

/**
 * Percent-decoding as nginx's $ssl_client_escaped_cert produces it. '+' is
 * kept as is: it is a base64 character in the PEM, not an escaped space.
 * On success *out is malloc'd and owned by the caller.
 */
static mdm_id_rc_t
mdm_percent_decode(const char *in, size_t len, unsigned char **out,
                   size_t *outlen, const char **why)
{
    unsigned char *buf = malloc(len + 1);

    if (buf == NULL) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    if (mdm_pct_decode(in, len, buf, outlen, 1) != 0) {
        free(buf);
        mdm_set_why(why, "invalid percent-encoding");
        return MDM_ID_ERR_DECODE;
    }
    *out = buf;
    return MDM_ID_OK;
}

static mdm_id_rc_t
mdm_header_impl(mdm_verifier_t *v, const char *value, size_t len, X509 **cert,
                char *hash, const char **why)
{
    unsigned char *buf = NULL;
    size_t buflen = 0;
    mdm_id_rc_t rc;

    *cert = NULL;
    if (value == NULL) {
        len = 0;
    }
    /* optional whitespace around a field value is not part of it */
    while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    if (len == 0) {
        mdm_set_why(why, "empty certificate header");
        return MDM_ID_ERR_DECODE;
    }

    ERR_set_mark();
    if (value[0] == ':') {
        /* RFC 9440: an sf-binary, base64 between colons, no whitespace */
        if (len < 3 || value[len - 1] != ':') {
            rc = MDM_ID_ERR_DECODE;
            mdm_set_why(why, "RFC 9440 value not enclosed in colons");
            goto done;
        }
        rc = mdm_b64_decode(value + 1, len - 2, 0, &buf, &buflen, why);
        if (rc == MDM_ID_OK) {
            rc = mdm_parse_cached(v, buf, buflen, cert, hash, why);
        }
    } else {
        rc = mdm_percent_decode(value, len, &buf, &buflen, why);
        if (rc == MDM_ID_OK) {
            if (mdm_is_pem(buf, buflen)) {
                rc = mdm_pem_cached(v, buf, buflen, cert, hash, why);
            } else {
                rc = MDM_ID_ERR_DECODE;
                mdm_set_why(why, "certificate header is not PEM");
            }
        }
    }
    if (rc == MDM_ID_OK) {
        mdm_set_why(why, "ok");
    }

done:
    free(buf);
    ERR_pop_to_mark();
    return rc;
}

mdm_id_rc_t
mdm_identity_from_header(const char *value, size_t len, X509 **cert,
                         const char **why)
{
    return mdm_header_impl(NULL, value, len, cert, NULL, why);
}

mdm_id_rc_t
mdm_verifier_header(mdm_verifier_t *v, const char *value, size_t len,
                    X509 **cert, char hash[65], const char **why)
{
    return mdm_header_impl(v, value, len, cert, hash, why);
}

/** Returns 0, or -1 (and an empty string in out) on failure. */
int
mdm_cert_sha256_hex(X509 *cert, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok;

    out[0] = '\0';
    if (cert == NULL) {
        return -1;
    }
    ERR_set_mark();
    ok = X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == 32;
    ERR_pop_to_mark();
    if (!ok) {
        return -1;
    }
    mdm_tohex(md, 32, out);
    return 0;
}

char *
mdm_cert_subject(X509 *cert)
{
    BIO *bio;
    char *data, *s = NULL;
    long n;

    if (cert == NULL) {
        return NULL;
    }
    ERR_set_mark();
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        goto done;
    }
    /* RFC 2253 flags escape control characters: the result is one line */
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                           XN_FLAG_RFC2253) < 0) {
        goto done;
    }
    n = BIO_get_mem_data(bio, &data);
    if (n < 0) {
        goto done;
    }
    s = malloc((size_t) n + 1);
    if (s == NULL) {
        goto done;
    }
    if (n > 0) {
        memcpy(s, data, (size_t) n);
    }
    s[n] = '\0';

done:
    BIO_free(bio);
    ERR_pop_to_mark();
    return s;
}

/* ------------------------------------------------------------------ */
/* verifier                                                            */

mdm_verifier_t *
mdm_verifier_new(const char *ca_file, size_t cache_size, unsigned cache_ttl,
                 char *err, size_t errlen)
{
    mdm_verifier_t *v;
    FILE *fp;
    BIO *bio = NULL;
    X509 *x;
    unsigned long e;
    size_t count = 0;
    int lock_ok = 0;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (ca_file == NULL) {
        mdm_errf(err, errlen, "no CA file given");
        return NULL;
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        mdm_errf(err, errlen, "out of memory");
        return NULL;
    }
    ERR_set_mark();

    if (pthread_mutex_init(&v->lock, NULL) != 0) {
        mdm_errf(err, errlen, "cannot initialise the cache mutex");
        goto fail;
    }
    lock_ok = 1;

    v->store = X509_STORE_new();
    v->epoch = ASN1_TIME_set(NULL, 0);
    if (v->store == NULL || v->epoch == NULL) {
        mdm_errf(err, errlen, "out of memory");
        goto fail;
    }
    /*
     * An operator may list only the intermediate that issues device
     * identities: a chain that ends at any certificate of the CA file is
     * trusted, it need not reach a self-signed root.
     */
    X509_STORE_set_flags(v->store, X509_V_FLAG_PARTIAL_CHAIN);

    fp = fopen(ca_file, "r");
    if (fp == NULL) {
        mdm_errf(err, errlen, "cannot read CA file %s: %s", ca_file,
                 strerror(errno));
        goto fail;
    }
    bio = BIO_new_fp(fp, BIO_CLOSE);
    if (bio == NULL) {
        fclose(fp);
        mdm_errf(err, errlen, "out of memory");
        goto fail;
    }
    for (;;) {
        x = PEM_read_bio_X509_AUX(bio, NULL, mdm_no_password, NULL);
        if (x == NULL) {
            break;
        }
        if (X509_STORE_add_cert(v->store, x) != 1) {
            X509_free(x);
            mdm_errf(err, errlen, "cannot add certificate %zu of %s", count + 1,
                     ca_file);
            goto fail;
        }
        X509_free(x);
        count++;
    }
    /* the loop ends on "no start line" at end of file; anything else is a
     * damaged certificate block */
    e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
                    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        mdm_errf(err, errlen, "bad certificate in CA file %s: %s", ca_file,
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                            : "parse error");
        goto fail;
    }
    if (count == 0) {
        mdm_errf(err, errlen, "no certificate in CA file %s", ca_file);
        goto fail;
    }
    BIO_free(bio);
    bio = NULL;

    if (cache_size > 0 && cache_ttl > 0) {
        v->cache = calloc(cache_size, sizeof(*v->cache));
        if (v->cache == NULL) {
            mdm_errf(err, errlen, "cannot allocate a cache of %zu entries",
                     cache_size);
            goto fail;
        }
        v->cache_size = cache_size;
        v->ttl = cache_ttl;
    }
    ERR_pop_to_mark();
    return v;

fail:
    BIO_free(bio);
    X509_STORE_free(v->store);
    ASN1_TIME_free(v->epoch);
    if (lock_ok) {
        pthread_mutex_destroy(&v->lock);
    }
    free(v);
    ERR_pop_to_mark();
    return NULL;
}

void
mdm_verifier_free(mdm_verifier_t *v)
{
    if (v == NULL) {
        return;
    }
    X509_STORE_free(v->store);
    ASN1_TIME_free(v->epoch);
    pthread_mutex_destroy(&v->lock);
    free(v->cache);
    for (size_t i = 0; i < v->certs_size; i++) {
        X509_free(v->certs[i].x);
    }
    free(v->certs);
    free(v);
}

static int
mdm_hex_to_key(const char *hex, unsigned char key[32])
{
    int i, hi, lo;

    if (hex == NULL) {
        return -1;
    }
    for (i = 0; i < 32; i++) {
        hi = mdm_hexval((unsigned char) hex[2 * i]);
        if (hi < 0) {
            return -1;
        }
        lo = mdm_hexval((unsigned char) hex[2 * i + 1]);
        if (lo < 0) {
            return -1;
        }
        key[i] = (unsigned char) (hi << 4 | lo);
    }
    return hex[64] == '\0' ? 0 : -1;
}

static size_t
mdm_cache_home(const mdm_verifier_t *v, const unsigned char key[32])
{
    uint64_t h = 0;
    int i;

    /* the key is a SHA-256: its first bytes are already well spread */
    for (i = 0; i < 8; i++) {
        h = h << 8 | key[i];
    }
    return (size_t) (h % v->cache_size);
}

static size_t
mdm_cache_window(const mdm_verifier_t *v)
{
    return v->cache_size < MDM_CACHE_PROBE ? v->cache_size : MDM_CACHE_PROBE;
}

/* Called with v->lock held. */
static mdm_cache_entry_t *
mdm_cache_find(mdm_verifier_t *v, const unsigned char key[32])
{
    size_t home, i, w;
    mdm_cache_entry_t *e;

    home = mdm_cache_home(v, key);
    w = mdm_cache_window(v);
    for (i = 0; i < w; i++) {
        e = &v->cache[(home + i) % v->cache_size];
        if (e->used && memcmp(e->key, key, 32) == 0) {
            return e;
        }
    }
    return NULL;
}

/*
 * Called with v->lock held. The table never grows: when the whole probe
 * window is taken, the entry verified longest ago is replaced.
 */
static void
mdm_cache_put(mdm_verifier_t *v, const unsigned char key[32], time_t now,
              time_t not_after)
{
    size_t home, i, w;
    mdm_cache_entry_t *e, *victim = NULL;

    e = mdm_cache_find(v, key);
    if (e == NULL) {
        home = mdm_cache_home(v, key);
        w = mdm_cache_window(v);
        for (i = 0; i < w; i++) {
            e = &v->cache[(home + i) % v->cache_size];
            if (!e->used) {
                victim = e;
                break;
            }
            if (victim == NULL || e->verified_at < victim->verified_at) {
                victim = e;
            }
        }
        e = victim;
        if (!e->used) {
            v->entries++;
        }
        memcpy(e->key, key, 32);
        e->used = 1;
    }
    e->verified_at = now;
    e->not_after = not_after;
}

static time_t
mdm_asn1_to_time(const mdm_verifier_t *v, const ASN1_TIME *t, int *ok)
{
    int days = 0, secs = 0;

    if (t == NULL || ASN1_TIME_diff(&days, &secs, v->epoch, t) != 1) {
        *ok = 0;
        return 0;
    }
    return (time_t) days * 86400 + secs;
}

static mdm_id_rc_t
mdm_map_verify_error(int e)
{
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return MDM_ID_ERR_EXPIRED;
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
        return MDM_ID_ERR_USAGE;
    default:
        return MDM_ID_ERR_UNTRUSTED;
    }
}

/**
 * The full check. On success *not_after is the earliest notAfter of the
 * chain, which bounds how long the result may be cached.
 */
static mdm_id_rc_t
mdm_verify_chain(mdm_verifier_t *v, X509 *cert, time_t now, time_t *not_after,
                 const char **why)
{
    X509_STORE_CTX *ctx;
    STACK_OF(X509) * chain;
    time_t t, min = 0;
    mdm_id_rc_t rc;
    int i, ok = 1, e;

    ctx = X509_STORE_CTX_new();
    if (ctx == NULL) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    /* no untrusted certificates: intermediates come from the CA file */
    if (X509_STORE_CTX_init(ctx, v->store, cert, NULL) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        X509_STORE_CTX_free(ctx);
        mdm_set_why(why, "cannot set up certificate verification");
        return MDM_ID_ERR_NOMEM;
    }
    X509_STORE_CTX_set_time(ctx, 0, now);

    if (X509_verify_cert(ctx) == 1) {
        chain = X509_STORE_CTX_get0_chain(ctx);
        for (i = 0; i < sk_X509_num(chain); i++) {
            t = mdm_asn1_to_time(v, X509_get0_notAfter(sk_X509_value(chain, i)),
                                 &ok);
            if (i == 0 || t < min) {
                min = t;
            }
        }
        *not_after = ok ? min : now;
        rc = MDM_ID_OK;
        mdm_set_why(why, "ok");
    } else {
        e = X509_STORE_CTX_get_error(ctx);
        rc = mdm_map_verify_error(e);
        mdm_set_why(why, X509_verify_cert_error_string(e));
    }
    X509_STORE_CTX_free(ctx);
    return rc;
}

mdm_id_rc_t
mdm_verifier_check(mdm_verifier_t *v, X509 *cert, const char *sha256_hex,
                   time_t now, const char **why)
{
    unsigned char key[32];
    char hex[65];
    mdm_cache_entry_t *e;
    time_t not_after = 0;
    mdm_id_rc_t rc;
    int cached = 0;

    if (v == NULL || cert == NULL) {
        mdm_set_why(why, "no certificate");
        return MDM_ID_ERR_UNTRUSTED;
    }
    if (v->cache != NULL) {
        if (sha256_hex == NULL && mdm_cert_sha256_hex(cert, hex) == 0) {
            sha256_hex = hex;
        }
        cached = mdm_hex_to_key(sha256_hex, key) == 0;
    }

    if (cached) {
        pthread_mutex_lock(&v->lock);
        e = mdm_cache_find(v, key);
        if (e != NULL) {
            /* a clock that went backwards also forces a fresh check */
            if (now >= e->verified_at &&
                now - e->verified_at < (time_t) v->ttl && now <= e->not_after) {
                v->hits++;
                pthread_mutex_unlock(&v->lock);
                mdm_set_why(why, "ok (cached)");
                return MDM_ID_OK;
            }
            e->used = 0;
            v->entries--;
        }
        v->misses++;
        pthread_mutex_unlock(&v->lock);
    } else {
        pthread_mutex_lock(&v->lock);
        v->misses++;
        pthread_mutex_unlock(&v->lock);
    }

    ERR_set_mark();
    rc = mdm_verify_chain(v, cert, now, &not_after, why);
    ERR_pop_to_mark();

    if (rc == MDM_ID_OK && cached) {
        pthread_mutex_lock(&v->lock);
        mdm_cache_put(v, key, now, not_after);
        pthread_mutex_unlock(&v->lock);
    }
    return rc;
}

void
mdm_verifier_stats(mdm_verifier_t *v, unsigned long *hits,
                   unsigned long *misses, size_t *entries)
{
    if (v == NULL) {
        return;
    }
    pthread_mutex_lock(&v->lock);
    if (hits != NULL) {
        *hits = v->hits;
    }
    if (misses != NULL) {
        *misses = v->misses;
    }
    if (entries != NULL) {
        *entries = v->entries;
    }
    pthread_mutex_unlock(&v->lock);
}

/* ---------------------------------------------------------------- */
/* decoded certificates                                             */

int
mdm_verifier_set_cert_cache(mdm_verifier_t *v, size_t size)
{
    mdm_cert_entry_t *c = NULL;

    if (size > 0 && (c = calloc(size, sizeof(*c))) == NULL) {
        return -1;
    }
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->certs_size; i++) {
        X509_free(v->certs[i].x);
    }
    free(v->certs);
    v->certs = c;
    v->certs_size = size;
    pthread_mutex_unlock(&v->lock);
    return 0;
}

/**
 * d2i_X509 through the verifier's cache of decoded certificates (content
 * addressed: a hit is the same bytes). *cert is a new reference. hash,
 * when not NULL, receives the hex SHA-256 of the certificate's canonical
 * DER, whatever encoding arrived: it is the binding key, so one
 * certificate must have exactly one.
 */
static mdm_id_rc_t
mdm_parse_cached(mdm_verifier_t *v, const unsigned char *der, size_t len,
                 X509 **cert, char *hash, const char **why)
{
    unsigned char key[32];
    unsigned int n = 0;
    mdm_cert_entry_t *e, *slot = NULL;
    uint64_t h = 0;
    size_t i, home = 0;
    time_t now = time(NULL);
    char canon[65];
    mdm_id_rc_t rc;

    if (len == 0 || EVP_Digest(der, len, key, &n, EVP_sha256(), NULL) != 1) {
        mdm_set_why(why, len ? "out of memory" : "empty certificate");
        return len ? MDM_ID_ERR_NOMEM : MDM_ID_ERR_DECODE;
    }
    if (v != NULL && v->certs != NULL) {
        for (i = 0; i < 8; i++) {
            h = h << 8 | key[i];
        }
        home = (size_t) (h % v->certs_size);
        pthread_mutex_lock(&v->lock);
        for (i = 0; i < MDM_CACHE_PROBE && i < v->certs_size; i++) {
            e = &v->certs[(home + i) % v->certs_size];
            if (e->x && memcmp(e->key, key, sizeof(key)) == 0 &&
                X509_up_ref(e->x) == 1) {
                e->used = now;
                *cert = e->x;
                if (hash) {
                    memcpy(hash, e->hash, sizeof(e->hash));
                }
                pthread_mutex_unlock(&v->lock);
                return MDM_ID_OK;
            }
        }
        pthread_mutex_unlock(&v->lock);
    }

    rc = mdm_parse_der(der, len, cert, why);
    if (rc != MDM_ID_OK) {
        return rc;
    }
    /* the bytes are canonical DER almost always: then their hash is it */
    {
        unsigned char *enc = NULL;
        int elen = i2d_X509(*cert, &enc);

        if (elen > 0 && (size_t) elen == len && memcmp(enc, der, len) == 0) {
            mdm_tohex(key, sizeof(key), canon);
        } else if (mdm_cert_sha256_hex(*cert, canon) != 0) {
            OPENSSL_free(enc);
            X509_free(*cert);
            *cert = NULL;
            mdm_set_why(why, "out of memory");
            return MDM_ID_ERR_NOMEM;
        }
        OPENSSL_free(enc);
    }
    if (hash) {
        memcpy(hash, canon, sizeof(canon));
    }
    if (v == NULL || v->certs == NULL) {
        return MDM_ID_OK;
    }
    pthread_mutex_lock(&v->lock);
    for (i = 0; i < MDM_CACHE_PROBE && i < v->certs_size; i++) {
        e = &v->certs[(home + i) % v->certs_size];
        if (e->x == NULL) {
            slot = e;
            break;
        }
        if (memcmp(e->key, key, sizeof(key)) == 0) {
            slot = NULL; /* another thread was faster */
            break;
        }
        if (slot == NULL || e->used < slot->used) {
            slot = e;
        }
    }
    if (slot && X509_up_ref(*cert) == 1) {
        X509_free(slot->x);
        memcpy(slot->key, key, sizeof(key));
        memcpy(slot->hash, canon, sizeof(canon));
        slot->x = *cert;
        slot->used = now;
    }
    pthread_mutex_unlock(&v->lock);
    return MDM_ID_OK;
}
