/*
 * libFuzzer target for the identity parsers of core/mdm_identity_*.c and
 * the CMS splitter of core/mdm_der.c.
 *
 * Input: byte 0 selects the mode (mod 7).
 *   0: Mdm-Signature. Bytes 1-2 are the big-endian length of the header
 *      value (clamped to what is left), then the header, then the body.
 *   1: proxy certificate header (RFC 9440 or URL-escaped PEM).
 *   2: certificate from the TLS layer (PEM or DER).
 *   3, 4, 5: the same as 0, 1, 2 through mdm_verifier_signature(),
 *      _header() and _cert(), with a verifier (made once) whose decoded
 *      certificate cache is small. Each input goes through twice (decoded,
 *      then from the cache) and is compared with the uncached function.
 *   6: mdm_cms_split() on bytes 1..end.
 * Seeds in t/fuzz/corpus/signature/ follow this layout. Those of modes
 * 3 to 5 (vsig-*, vhdr-*, vcert-*) are the seeds of modes 0 to 2 of the
 * same name with another first byte, plus, made from the synthetic
 * vector (t/samples/synthetic/Mdm-Signature.header.txt, signed body
 * checkin-body.TokenUpdate.plist):
 *   vsig-synthetic-ber, split-synthetic-ber: the vector re-encoded with
 *     indefinite lengths (ContentInfo, [0], SignedData, certificate set);
 *   split-synthetic: the vector's DER as it is;
 *   vsig-two-certs, split-two-certs: the vector with the certificate of
 *     t/samples/micromdm/appleca_signed.device-identity.pem added after
 *     the signer's in the certificate set (still a valid signature).
 *
 * MDM_FUZZ_CA names the verifier's CA file. Without it, the certificate
 * below is written to a temporary file for mdm_verifier_new(): it is
 * t/samples/synthetic/signer-identity.cert.pem, the signer of the synthetic
 * Mdm-Signature vector (a public test vector, self-signed).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mdm_der.h"
#include "mdm_identity.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MDM_FUZZ_MODES 7

/* t/samples/synthetic/signer-identity.cert.pem */
static const char mdm_fuzz_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDbDCCAlSgAwIBAgIUOVJbO8BgiUsTSrGZznoJ/yqL8HswDQYJKoZIhvcNAQEL\n"
    "BQAwMzEfMB0GA1UEAwwWc3ludGhldGljLW1kbS1pZGVudGl0eTEQMA4GA1UECgwH\n"
    "ZXhhbXBsZTAeFw0yNjExMjIwNTQxMTlaFw0zNjExMTkwNTQxMTlaMDMxHzAdBgNV\n"
    "BAMMFnN5bnRoZXRpYy1tZG0taWRlbnRpdHkxEDAOBgNVBAoMB2V4YW1wbGUwggEi\n"
    "MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDjf9RSs3f7Oa1k9GErLDQ0s/F3\n"
    "KAh3itOa68GYHkw9Wxei6GL19T7w6rH9RPeR0qU4GJqd7uvWM7iFSYH2qqkZWtK1\n"
    "68raltC6uUfH133E6roLsiAlVDRY6qoL3LDWeTU36tP2sbo7D8b3W+whaAwyvdl+\n"
    "IeDr5HDgs2OP4QZT4kzvtiAw3SGAeUjQZhj9cy4Fp+0mEgXKNzTM7zsgByaAd8Nh\n"
    "JvHu95JqMHTNmwMWcLfMaRHp2cM1ODMtdX5NFqj1jYTEmGnH+jcP78pZE+tmKOgM\n"
    "6O6h5WCiK3r5frACzn0vqdEFgykhAwiHKw3U0/EKu58jOXbkfr5jbM8eVxEtAgMB\n"
    "AAGjeDB2MB0GA1UdDgQWBBS4mXwnDqOnoChxdgWdp90HbembYTAfBgNVHSMEGDAW\n"
    "gBS4mXwnDqOnoChxdgWdp90HbembYTAPBgNVHRMBAf8EBTADAQH/MBMGA1UdJQQM\n"
    "MAoGCCsGAQUFBwMCMA4GA1UdDwEB/wQEAwIHgDANBgkqhkiG9w0BAQsFAAOCAQEA\n"
    "oHbpYYjZScYoeUxbL5rqeHsnI/SVDgLYo5gECUnI3SmwCwmA1WaM4JEygn/pGt01\n"
    "VI5PAPH1WPsx2MwJCOefhMoZK0MPw23MzIZWGoEYNeKZgaM99ObyFbY0IXe2SBdi\n"
    "/Fn3Sh7+XutLT+0cN9H3/Xz/qKLsqIwRk53O43BO/MaDBQyKhwKQnE5wi93Rz8wX\n"
    "5+YbqoNNplS0aGzYPOWmafJMkOsdO2Hj/ty6l5QBSYyo/BcbxJkpKEocQwyyeNIg\n"
    "jruoOkAmqZk+zcZYi7MVXphLePLhQSv52XL3xfQiq4IDvDPl4S9HmOXgvKu6XOtb\n"
    "ypxLkFLOLCT0ubxZJLCZ8Q==\n"
    "-----END CERTIFICATE-----\n";

static mdm_verifier_t *mdm_fuzz_v;
static volatile unsigned char mdm_fuzz_sink;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *ca = getenv("MDM_FUZZ_CA"), *dir = getenv("TMPDIR");
    char path[4096], err[256];
    size_t len = sizeof(mdm_fuzz_ca_pem) - 1;
    int fd = -1;

    (void) argc;
    (void) argv;
    if (ca == NULL || ca[0] == '\0') {
        snprintf(path, sizeof(path), "%s/fuzz_signature_ca.XXXXXX",
                 dir && dir[0] ? dir : "/tmp");
        fd = mkstemp(path);
        if (fd < 0 || write(fd, mdm_fuzz_ca_pem, len) != (ssize_t) len) {
            perror("fuzz_signature: temporary CA file");
            abort();
        }
        close(fd);
        ca = path;
    }
    mdm_fuzz_v = mdm_verifier_new(ca, 4, 60, err, sizeof(err));
    if (fd >= 0) {
        unlink(path);
    }
    if (mdm_fuzz_v == NULL) {
        fprintf(stderr, "fuzz_signature: %s\n", err);
        abort();
    }
    /* small: inputs keep evicting each other */
    if (mdm_verifier_set_cert_cache(mdm_fuzz_v, 4) != 0) {
        abort();
    }
    return 0;
}

static void
mdm_fuzz_use(X509 *x)
{
    char hex[65];
    char *s;

    /* the accessors the servers call on whatever was accepted */
    if (mdm_cert_sha256_hex(x, hex) != 0) {
        abort();
    }
    s = mdm_cert_subject(x);
    free(s);
    X509_free(x);
}

/* contract: a certificate exactly on success, a reason always, and
 * nothing left on the OpenSSL error queue */
static void
mdm_fuzz_contract(mdm_id_rc_t rc, X509 *x, const char *why)
{
    if ((rc == MDM_ID_OK) != (x != NULL) || why == NULL ||
        ERR_peek_error() != 0) {
        abort();
    }
    (void) mdm_id_rc_name(rc);
}

/* X509_cmp() may queue errors of its own (a certificate's extensions
 * are parsed on first use): they are not the library's to answer for */
static int
mdm_fuzz_cmp(const X509 *a, const X509 *b)
{
    int rc;

    ERR_set_mark();
    rc = X509_cmp(a, b);
    ERR_pop_to_mark();
    return rc;
}

/*
 * hash as returned by a verifier function: the SHA-256 of the
 * certificate's DER, which is what mdm_cert_sha256_hex() computes.
 *
 * Known and reported, so not fatal unless built with
 * -DMDM_FUZZ_STRICT_HASH: the verifier functions hash the certificate's
 * bytes as received, mdm_cert_sha256_hex() hashes i2d_X509(), which
 * re-encodes what lies outside the TBSCertificate (outer SEQUENCE,
 * signatureAlgorithm, signature). Both agree on DER input only. Where the
 * received bytes are known (raw), the difference must be exactly that.
 */
static void
mdm_fuzz_hash(X509 *x, const char *hash, const uint8_t *raw, size_t rawlen)
{
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char md[32], *der = NULL;
    unsigned int mdlen = 0;
    char hex[65];
    int i, n;

    if (mdm_cert_sha256_hex(x, hex) != 0) {
        abort();
    }
    if (memcmp(hex, hash, sizeof(hex)) == 0) {
        return;
    }
#ifdef MDM_FUZZ_STRICT_HASH
    abort();
#else
    if (strlen(hash) != 64 || strspn(hash, hexdigits) != 64) {
        abort();
    }
    if (raw == NULL) {
        return;
    }
    if (EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        abort();
    }
    for (i = 0; i < 32; i++) {
        if (hash[2 * i] != hexdigits[md[i] >> 4] ||
            hash[2 * i + 1] != hexdigits[md[i] & 0xf]) {
            abort();
        }
    }
    /* so the input was not DER */
    n = i2d_X509(x, &der);
    if (n == (int) rawlen && memcmp(der, raw, rawlen) == 0) {
        abort();
    }
    OPENSSL_free(der);
    ERR_clear_error();
#endif
}

typedef struct {
    mdm_id_rc_t rc;
    X509 *x;
    char hash[65];
} mdm_fuzz_res_t;

/* One call of a verifier function (mode 3, 4 or 5) on the input. */
static void
mdm_fuzz_cached(int mode, const uint8_t *in, size_t len, size_t hlen,
                mdm_fuzz_res_t *r)
{
    const char *why = NULL;

    r->x = NULL;
    memset(r->hash, 0, sizeof(r->hash));
    switch (mode) {
    case 3:
        r->rc =
            mdm_verifier_signature(mdm_fuzz_v, (const char *) in, hlen,
                                   in + hlen, len - hlen, &r->x, r->hash, &why);
        break;
    case 4:
        r->rc = mdm_verifier_header(mdm_fuzz_v, (const char *) in, len, &r->x,
                                    r->hash, &why);
        break;
    default:
        r->rc = mdm_verifier_cert(mdm_fuzz_v, in, len, &r->x, r->hash, &why);
        break;
    }
    mdm_fuzz_contract(r->rc, r->x, why);
    if (r->x != NULL) {
        /* a DER certificate straight from the TLS layer: its own bytes */
        if (mode == 5 && len > 0 && in[0] == 0x30) {
            mdm_fuzz_hash(r->x, r->hash, in, len);
        } else {
            mdm_fuzz_hash(r->x, r->hash, NULL, 0);
        }
        /* and what the caller does next */
        (void) mdm_verifier_check(mdm_fuzz_v, r->x, r->hash, time(NULL), &why);
        if (why == NULL || ERR_peek_error() != 0) {
            abort();
        }
    }
}

static void
mdm_fuzz_verifier(int mode, const uint8_t *in, size_t len, size_t hlen)
{
    unsigned long direct;
    mdm_fuzz_res_t a, b;
    const char *why = NULL;
    mdm_id_rc_t rc;
    X509 *x = NULL;

    direct = mdm_verifier_direct(mdm_fuzz_v);
    mdm_fuzz_cached(mode, in, len, hlen, &a);
    direct = mdm_verifier_direct(mdm_fuzz_v) - direct;
    /* the second time from the cache: the same answer */
    mdm_fuzz_cached(mode, in, len, hlen, &b);
    if (a.rc != b.rc ||
        (a.x && (mdm_fuzz_cmp(a.x, b.x) != 0 || strcmp(a.hash, b.hash) != 0))) {
        abort();
    }
    X509_free(b.x);

    /* the cache changes the cost, not the outcome */
    switch (mode) {
    case 3:
        rc = mdm_identity_from_signature((const char *) in, hlen, in + hlen,
                                         len - hlen, &x, &why);
        break;
    case 4:
        rc = mdm_identity_from_header((const char *) in, len, &x, &why);
        break;
    default:
        rc = mdm_identity_from_cert(in, len, &x, &why);
        break;
    }
    mdm_fuzz_contract(rc, x, why);
    /* what the direct path accepted, the CMS path accepts too */
    if (direct > 0 && rc != MDM_ID_OK) {
        abort();
    }
    if (rc != a.rc) {
        /*
         * Known: mdm_cms_split() lifts a certificate set from anywhere in
         * the SignedData, so the fast path accepts what the whole decoder
         * refuses for field order. Anything else differing is a bug.
         */
        if (!(mode == 3 && rc == MDM_ID_ERR_DECODE)) {
            abort();
        }
    } else if (x != NULL && mdm_fuzz_cmp(x, a.x) != 0) {
        abort();
    }
    X509_free(x);
    if (a.x != NULL) {
        mdm_fuzz_use(a.x);
    }
}

static void
mdm_fuzz_split(const uint8_t *in, size_t len)
{
    mdm_cms_split_t s, again;
    const uint8_t *next = in;
    size_t i;

    if (mdm_cms_split(in, len, &s) != 0) {
        if (s.stripped != NULL) {
            abort();
        }
        return;
    }
    if (s.stripped == NULL || s.ncerts == 0 || s.ncerts > MDM_CMS_MAX_CERTS ||
        s.stripped_len >= len) {
        abort();
    }
    /* every certificate inside the input, in order, without overlap,
     * and at least a SEQUENCE header */
    for (i = 0; i < s.ncerts; i++) {
        if (s.cert[i] < next || s.cert[i] > in + len || s.cert_len[i] < 2 ||
            s.cert_len[i] > (size_t) (in + len - s.cert[i]) ||
            s.cert[i][0] != 0x30) {
            abort();
        }
        /* read the last byte too: ASan objects if it is not the input's */
        mdm_fuzz_sink ^= s.cert[i][s.cert_len[i] - 1];
        next = s.cert[i] + s.cert_len[i];
    }
    /* what was left holds no certificate set any more */
    if (mdm_cms_split(s.stripped, s.stripped_len, &again) == 0) {
        abort();
    }
    free(s.stripped);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    X509 *x = NULL;
    mdm_id_rc_t rc;
    size_t hlen = 0;
    int mode;

    if (size < 1) {
        return 0;
    }
    mode = data[0] % MDM_FUZZ_MODES;
    if (mode == 0 || mode == 3) {
        if (size < 3) {
            return 0;
        }
        hlen = (size_t) data[1] << 8 | data[2];
        if (hlen > size - 3) {
            hlen = size - 3;
        }
    }
    switch (mode) {
    case 0:
        rc = mdm_identity_from_signature((const char *) data + 3, hlen,
                                         data + 3 + hlen, size - 3 - hlen, &x,
                                         &why);
        break;
    case 1:
        rc = mdm_identity_from_header((const char *) data + 1, size - 1, &x,
                                      &why);
        break;
    case 2:
        rc = mdm_identity_from_cert(data + 1, size - 1, &x, &why);
        break;
    case 3:
        mdm_fuzz_verifier(mode, data + 3, size - 3, hlen);
        return 0;
    case 4:
    case 5:
        mdm_fuzz_verifier(mode, data + 1, size - 1, 0);
        return 0;
    default:
        mdm_fuzz_split(data + 1, size - 1);
        return 0;
    }

    mdm_fuzz_contract(rc, x, why);
    if (x != NULL) {
        mdm_fuzz_use(x);
    }
    return 0;
}
