/*
 * mdm_scep: a SCEP CA (RFC 8894) in the core. GetCACaps, GetCACert and
 * PKIOperation (PKCSReq, RenewalReq, CertPoll, GetCert); CertRep SUCCESS
 * or FAILURE with failInfo. Sans-IO: Redis work is planned (one round
 * trip) and its replies fed back, as for mdm_req_*.
 *
 * Message ids MDM08nnn are stable (README "SCEP"). Every failure writes
 * exactly one log line.
 */
#include "mdm_scep.h"
#include "mdm_tx.h"
#include "mdm_text.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis.h>
#include <jansson.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MDM_SCEP_MAX_MSG   (256 * 1024)
#define MDM_SCEP_MAX_FILE  (1024 * 1024)
#define MDM_SCEP_MAX_TXID  128
#define MDM_SCEP_MAX_NONCE 64
#define MDM_SCEP_MAX_CHAL  255
/* issued certificates start a little in the past: device clocks drift */
#define MDM_SCEP_SKEW    300
#define MDM_SCEP_TXN_TTL "86400"

enum { CH_UNSET = 0, CH_NONE, CH_STATIC, CH_DYNAMIC };

enum {
    MT_CERTREP = 3,
    MT_RENEWAL = 17,
    MT_PKCSREQ = 19,
    MT_CERTPOLL = 20,
    MT_GETCERT = 21
};

enum { PKI_SUCCESS = 0, PKI_FAILURE = 2 };

enum {
    FAIL_BADALG = 0,
    FAIL_BADMESSAGECHECK = 1,
    FAIL_BADREQUEST = 2,
    FAIL_BADTIME = 3,
    FAIL_BADCERTID = 4
};

enum { OP_NONE = 0, OP_CAPS, OP_CACERT, OP_PKI, OP_ADMIN };

enum { SST_NONE = 0, SST_ISSUE, SST_LOOKUP, SST_ADMIN };

static const char ct_pki[] = "application/x-pki-message";

struct mdm_scep_ca_s {
    char *ca_cert_file, *ca_key_file, *ca_pass_file;
    char *ra_cert_file, *ra_key_file, *ra_pass_file;
    char **chain_files;
    size_t nchain_files;
    long validity_days;
    long min_key_bits;
    long challenge_ttl;
    int challenge_mode;
    char *challenge;
    char *challenge_file;
    int renewal;
    char *crl_url; /* CRL distribution point of issued certificates */
    int legacy_des;
    char *prefix;

    /* loaded by mdm_scep_ca_finish() */
    int finished;
    X509 *ca;
    EVP_PKEY *ca_key;
    X509 *ra;
    EVP_PKEY *ra_key;
    STACK_OF(X509) * chain;
    /* single DES (legacy_des on): OpenSSL 3 has it in the legacy provider
     * only, loaded into a private context so that the process's default
     * context (the web server's TLS) is left alone */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov_default, *prov_legacy;
    unsigned char challenge_md[32];
    mdm_buf_t cacert; /* the GetCACert body */
    const char *cacert_ctype;
    char caps[128];
    char *k_chal, *k_cert, *k_txn; /* prefixes, the rest is appended */
    char *k_issued, *k_revoked;
};

struct mdm_scep_req_s {
    mdm_tx_t base; /* first: a SCEP request is a transaction */
    const mdm_scep_ca_t *ca;
    time_t now;
    int op;
    int state;

    /* HTTP input */
    const unsigned char *msg;
    size_t msg_len;
    mdm_buf_t decoded; /* the GET message, base64-decoded */

    /* admin */
    mdm_scep_admin_op_t admin_op;
    char *admin_arg;
    long admin_ttl;

    /* the pkiMessage */
    CMS_ContentInfo *cms;
    CMS_SignerInfo *si;
    int msg_type;
    char txid[MDM_SCEP_MAX_TXID + 1];
    int txid_type;
    unsigned char nonce[MDM_SCEP_MAX_NONCE];
    size_t nonce_len;
    const EVP_MD *md;
    const EVP_CIPHER *cipher;
    X509 *signer;
    X509 *cert; /* issued, or found by CertPoll / GetCert */
    char serial[48];
    char *subject;
    char cert_hash[65];
    mdm_buf_t cert_der;
    char renew_serial[48];

    const char *vars[MDM_SCEP_VAR_COUNT];
    char what[40]; /* "SCEP PKCSReq": storage failures say which */
    char fail_s[2];
};

/* ---------------------------------------------------------------- */
/* SCEP attribute OIDs, created once                                */

static ASN1_OBJECT *oid_msgtype, *oid_status, *oid_failinfo, *oid_snonce,
    *oid_rnonce, *oid_txid;
static pthread_once_t oid_once = PTHREAD_ONCE_INIT;

static void
oid_init(void)
{
    /* no_name = 1: dotted numbers only, nothing is registered globally */
    oid_msgtype = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
    oid_status = OBJ_txt2obj("2.16.840.1.113733.1.9.3", 1);
    oid_failinfo = OBJ_txt2obj("2.16.840.1.113733.1.9.4", 1);
    oid_snonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);
    oid_rnonce = OBJ_txt2obj("2.16.840.1.113733.1.9.6", 1);
    oid_txid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);
}

static int
oids_ok(void)
{
    pthread_once(&oid_once, oid_init);
    return oid_msgtype && oid_status && oid_failinfo && oid_snonce &&
           oid_rnonce && oid_txid;
}

static const char *
fail_name(int f)
{
    static const char *const names[] = {"badAlg", "badMessageCheck",
                                        "badRequest", "badTime", "badCertId"};

    return f >= 0 && f <= 4 ? names[f] : "unknown";
}

static const char *
msg_type_name(int t)
{
    switch (t) {
    case MT_RENEWAL:
        return "RenewalReq";
    case MT_PKCSREQ:
        return "PKCSReq";
    case MT_CERTPOLL:
        return "CertPoll";
    case MT_GETCERT:
        return "GetCert";
    case MT_CERTREP:
        return "CertRep";
    case 22:
        return "GetCRL";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- */
/* configuration                                                    */

mdm_scep_ca_t *
mdm_scep_ca_new(void)
{
    mdm_scep_ca_t *ca = calloc(1, sizeof(*ca));

    if (ca == NULL) {
        return NULL;
    }
    ca->validity_days = 365;
    ca->min_key_bits = 2048;
    ca->challenge_ttl = 3600;
    ca->renewal = 1;
    ca->prefix = mdm_strdup("mdm:");
    if (ca->prefix == NULL) {
        free(ca);
        return NULL;
    }
    return ca;
}

void
mdm_scep_ca_free(mdm_scep_ca_t *ca)
{
    size_t i;

    if (ca == NULL) {
        return;
    }
    free(ca->ca_cert_file);
    free(ca->ca_key_file);
    free(ca->ca_pass_file);
    free(ca->ra_cert_file);
    free(ca->ra_key_file);
    free(ca->ra_pass_file);
    for (i = 0; i < ca->nchain_files; i++) {
        free(ca->chain_files[i]);
    }
    free(ca->chain_files);
    if (ca->challenge) {
        OPENSSL_cleanse(ca->challenge, strlen(ca->challenge));
    }
    free(ca->challenge);
    free(ca->challenge_file);
    free(ca->crl_url);
    free(ca->prefix);
    X509_free(ca->ca);
    EVP_PKEY_free(ca->ca_key);
    X509_free(ca->ra);
    EVP_PKEY_free(ca->ra_key);
    sk_X509_pop_free(ca->chain, X509_free);
    if (ca->prov_legacy) {
        OSSL_PROVIDER_unload(ca->prov_legacy);
    }
    if (ca->prov_default) {
        OSSL_PROVIDER_unload(ca->prov_default);
    }
    OSSL_LIB_CTX_free(ca->libctx);
    mdm_buf_free(&ca->cacert);
    free(ca->k_chal);
    free(ca->k_cert);
    free(ca->k_txn);
    free(ca->k_issued);
    free(ca->k_revoked);
    free(ca);
}

int
mdm_scep_ca_set(mdm_scep_ca_t *ca, const char *name, const char *value,
                char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t off;
    } files[] = {
        {"ca_cert", offsetof(mdm_scep_ca_t, ca_cert_file)},
        {"ca_key", offsetof(mdm_scep_ca_t, ca_key_file)},
        {"ca_key_pass_file", offsetof(mdm_scep_ca_t, ca_pass_file)},
        {"ra_cert", offsetof(mdm_scep_ca_t, ra_cert_file)},
        {"ra_key", offsetof(mdm_scep_ca_t, ra_key_file)},
        {"ra_key_pass_file", offsetof(mdm_scep_ca_t, ra_pass_file)},
        {"challenge_file", offsetof(mdm_scep_ca_t, challenge_file)},
    };
    size_t i;
    char **t;

    if (ca->finished) {
        snprintf(err, errlen, "SCEP configuration already finished");
        return -1;
    }
    if (value == NULL) {
        snprintf(err, errlen, "%s: a value is required", name);
        return -1;
    }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strcmp(name, files[i].name) == 0) {
            if (*value == '\0') {
                snprintf(err, errlen, "%s: empty file name", name);
                return -1;
            }
            if (strcmp(name, "challenge_file") == 0) {
                ca->challenge_mode = CH_STATIC;
            }
            return mdm_set_str((char **) ((char *) ca + files[i].off), value);
        }
    }
    if (strcmp(name, "chain") == 0) {
        t = realloc(ca->chain_files, (ca->nchain_files + 1) * sizeof(char *));
        if (t == NULL) {
            return -1;
        }
        ca->chain_files = t;
        if ((t[ca->nchain_files] = mdm_strdup(value)) == NULL) {
            return -1;
        }
        ca->nchain_files++;
        return 0;
    }
    if (strcmp(name, "validity_days") == 0) {
        if (mdm_parse_long(value, 1, 3650, &ca->validity_days) != 0) {
            snprintf(err, errlen,
                     "validity_days \"%s\": expected a number from 1 to 3650",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "min_key_bits") == 0) {
        if (mdm_parse_long(value, 1024, 16384, &ca->min_key_bits) != 0) {
            snprintf(err, errlen,
                     "min_key_bits \"%s\": expected a number from 1024 to "
                     "16384",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "challenge_ttl") == 0) {
        if (mdm_parse_long(value, 1, INT_MAX, &ca->challenge_ttl) != 0) {
            snprintf(err, errlen,
                     "challenge_ttl \"%s\": expected seconds from 1 to %d",
                     value, INT_MAX);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "challenge") == 0) {
        free(ca->challenge);
        ca->challenge = NULL;
        if (strcmp(value, "dynamic") == 0) {
            ca->challenge_mode = CH_DYNAMIC;
            return 0;
        }
        if (strcmp(value, "none") == 0) {
            ca->challenge_mode = CH_NONE;
            return 0;
        }
        if (*value == '\0' || strlen(value) > MDM_SCEP_MAX_CHAL) {
            snprintf(err, errlen,
                     "challenge: 1-%d characters, \"dynamic\" or \"none\"",
                     MDM_SCEP_MAX_CHAL);
            return -1;
        }
        ca->challenge_mode = CH_STATIC;
        return mdm_set_str(&ca->challenge, value);
    }
    if (strcmp(name, "crl_url") == 0) {
        if ((strncmp(value, "http://", 7) != 0 &&
             strncmp(value, "https://", 8) != 0) ||
            strpbrk(value, " ,\"\\") != NULL) {
            snprintf(err, errlen,
                     "crl_url \"%s\": expected an http:// or https:// URL "
                     "without spaces or commas",
                     value);
            return -1;
        }
        return mdm_set_str(&ca->crl_url, value);
    }
    if (strcmp(name, "renewal") == 0) {
        if (strcmp(value, "on") == 0) {
            ca->renewal = 1;
        } else if (strcmp(value, "off") == 0) {
            ca->renewal = 0;
        } else {
            snprintf(err, errlen, "renewal \"%s\": expected on or off", value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "legacy_des") == 0) {
        if (strcmp(value, "on") == 0) {
            ca->legacy_des = 1;
        } else if (strcmp(value, "off") == 0) {
            ca->legacy_des = 0;
        } else {
            snprintf(err, errlen, "legacy_des \"%s\": expected on or off",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "prefix") == 0) {
        if (*value == '\0' || strlen(value) > 64 || strpbrk(value, "{} ")) {
            snprintf(err, errlen,
                     "prefix \"%s\": 1-64 characters, no braces or spaces",
                     value);
            return -1;
        }
        return mdm_set_str(&ca->prefix, value);
    }
    snprintf(err, errlen, "unknown SCEP option \"%s\"", name);
    return -1;
}

/* The first line of a file: passphrases and challenges kept out of the
 * web server's configuration. */
static int
read_secret(const char *opt, const char *path, mdm_buf_t *out, char *err,
            size_t errlen)
{
    char why[256];
    size_t n;

    if (mdm_read_file(path, out, 4096, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", opt, why);
        return -1;
    }
    n = strcspn((const char *) out->ptr, "\r\n");
    if (n < out->len) {
        OPENSSL_cleanse(out->ptr + n, out->len - n);
    }
    out->len = n;
    out->ptr[n] = '\0';
    return 0;
}

typedef struct {
    const mdm_buf_t *pass;
    int asked;
} mdm_pw_t;

static int
pw_cb(char *buf, int size, int rwflag, void *u)
{
    mdm_pw_t *pw = u;

    (void) rwflag;
    pw->asked = 1;
    if (pw->pass == NULL || pw->pass->len > (size_t) size) {
        return -1;
    }
    memcpy(buf, pw->pass->ptr, pw->pass->len);
    return (int) pw->pass->len;
}

static EVP_PKEY *
load_key(const char *opt, const char *path, const char *pass_opt,
         const char *pass_path, char *err, size_t errlen)
{
    mdm_buf_t pass = {0};
    mdm_pw_t pw = {NULL, 0};
    EVP_PKEY *k = NULL;
    BIO *b;

    if (pass_path != NULL) {
        if (read_secret(pass_opt, pass_path, &pass, err, errlen) != 0) {
            return NULL;
        }
        pw.pass = &pass;
    }
    b = BIO_new_file(path, "r");
    if (b == NULL) {
        snprintf(err, errlen, "%s: cannot open \"%s\"", opt, path);
        goto done;
    }
    k = PEM_read_bio_PrivateKey(b, NULL, pw_cb, &pw);
    BIO_free(b);
    if (k != NULL) {
        goto done;
    }
    if (pw.asked && pw.pass == NULL) {
        snprintf(err, errlen, "%s: \"%s\" is encrypted: set %s", opt, path,
                 pass_opt);
    } else if (pw.asked) {
        snprintf(err, errlen,
                 "%s: cannot decrypt \"%s\" with the passphrase from %s "
                 "(wrong passphrase?)",
                 opt, path, pass_opt);
    } else {
        snprintf(err, errlen, "%s: no PEM private key in \"%s\"", opt, path);
    }
done:
    if (pass.ptr) {
        OPENSSL_cleanse(pass.ptr, pass.len);
    }
    mdm_buf_free(&pass);
    return k;
}

/* Every certificate of a PEM file into sk (at least one). */
static int
load_certs(const char *opt, const char *path, STACK_OF(X509) * sk, char *err,
           size_t errlen)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x;
    int n = 0;

    if (b == NULL) {
        snprintf(err, errlen, "%s: cannot open \"%s\"", opt, path);
        return -1;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            BIO_free(b);
            snprintf(err, errlen, "%s: out of memory", opt);
            return -1;
        }
        n++;
    }
    BIO_free(b);
    if (n == 0) {
        snprintf(err, errlen, "%s: no PEM certificate in \"%s\"", opt, path);
        return -1;
    }
    return 0;
}

static X509 *
load_cert(const char *opt, const char *path, char *err, size_t errlen)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x = NULL;

    if (sk == NULL) {
        snprintf(err, errlen, "%s: out of memory", opt);
        return NULL;
    }
    if (load_certs(opt, path, sk, err, errlen) == 0) {
        x = sk_X509_shift(sk);
    }
    sk_X509_pop_free(sk, X509_free);
    return x;
}

/* A certs-only SignedData (no signers, no content): RFC 8894's
 * "degenerate" PKCS#7, used by GetCACert and inside a CertRep. */
static int
certs_only(STACK_OF(X509) * certs, mdm_buf_t *out)
{
    CMS_ContentInfo *cms;
    unsigned char *der = NULL;
    int n;

    cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL | CMS_BINARY);
    if (cms == NULL || CMS_set_detached(cms, 1) != 1 ||
        (n = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
        CMS_ContentInfo_free(cms);
        return -1;
    }
    CMS_ContentInfo_free(cms);
    free(out->ptr);
    out->ptr = malloc((size_t) n);
    if (out->ptr == NULL) {
        OPENSSL_free(der);
        out->len = 0;
        return -1;
    }
    memcpy(out->ptr, der, (size_t) n);
    out->len = (size_t) n;
    OPENSSL_free(der);
    return 0;
}

static int
der_of(X509 *x, mdm_buf_t *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    int rc;

    if (n <= 0) {
        return -1;
    }
    rc = mdm_buf_set(out, der, (size_t) n);
    OPENSSL_free(der);
    return rc;
}

static int
ca_load(mdm_scep_ca_t *ca, char *err, size_t errlen)
{
    STACK_OF(X509) *all = NULL;
    mdm_buf_t chal = {0};
    unsigned int mdlen;
    size_t i;
    int rc = -1;

    if (ca->ca_cert_file == NULL || ca->ca_key_file == NULL) {
        snprintf(err, errlen, "%s is required",
                 ca->ca_cert_file ? "ca_key" : "ca_cert");
        return -1;
    }
    if ((ca->ca = load_cert("ca_cert", ca->ca_cert_file, err, errlen)) ==
        NULL) {
        return -1;
    }
    if (X509_check_ca(ca->ca) < 1) {
        snprintf(err, errlen, "ca_cert: \"%s\" is not a CA certificate",
                 ca->ca_cert_file);
        return -1;
    }
    ca->ca_key = load_key("ca_key", ca->ca_key_file, "ca_key_pass_file",
                          ca->ca_pass_file, err, errlen);
    if (ca->ca_key == NULL) {
        return -1;
    }
    if (X509_check_private_key(ca->ca, ca->ca_key) != 1) {
        snprintf(err, errlen, "ca_key: \"%s\" does not match ca_cert \"%s\"",
                 ca->ca_key_file, ca->ca_cert_file);
        return -1;
    }
    if ((ca->ra_cert_file == NULL) != (ca->ra_key_file == NULL)) {
        snprintf(err, errlen, "%s: an RA needs both ra_cert and ra_key",
                 ca->ra_cert_file ? "ra_cert" : "ra_key");
        return -1;
    }
    if (ca->ra_cert_file) {
        if ((ca->ra = load_cert("ra_cert", ca->ra_cert_file, err, errlen)) ==
            NULL) {
            return -1;
        }
        ca->ra_key = load_key("ra_key", ca->ra_key_file, "ra_key_pass_file",
                              ca->ra_pass_file, err, errlen);
        if (ca->ra_key == NULL) {
            return -1;
        }
        if (X509_check_private_key(ca->ra, ca->ra_key) != 1) {
            snprintf(err, errlen,
                     "ra_key: \"%s\" does not match ra_cert \"%s\"",
                     ca->ra_key_file, ca->ra_cert_file);
            return -1;
        }
    }
    if ((ca->chain = sk_X509_new_null()) == NULL) {
        snprintf(err, errlen, "chain: out of memory");
        return -1;
    }
    for (i = 0; i < ca->nchain_files; i++) {
        if (load_certs("chain", ca->chain_files[i], ca->chain, err, errlen) !=
            0) {
            return -1;
        }
    }

    switch (ca->challenge_mode) {
    case CH_UNSET:
        snprintf(err, errlen,
                 "challenge: required (a static challenge, challenge_file, "
                 "\"dynamic\" or \"none\")");
        return -1;
    case CH_STATIC:
        if (ca->challenge_file) {
            if (read_secret("challenge_file", ca->challenge_file, &chal, err,
                            errlen) != 0) {
                return -1;
            }
            if (chal.len == 0) {
                snprintf(err, errlen, "challenge_file: \"%s\" is empty",
                         ca->challenge_file);
                mdm_buf_free(&chal);
                return -1;
            }
            rc = EVP_Digest(chal.ptr, chal.len, ca->challenge_md, &mdlen,
                            EVP_sha256(), NULL);
            OPENSSL_cleanse(chal.ptr, chal.len);
            mdm_buf_free(&chal);
        } else {
            rc = EVP_Digest(ca->challenge, strlen(ca->challenge),
                            ca->challenge_md, &mdlen, EVP_sha256(), NULL);
        }
        if (rc != 1) {
            snprintf(err, errlen, "challenge: SHA-256 unavailable");
            return -1;
        }
        rc = -1;
        break;
    default:
        break;
    }

    /* GetCACert: the bare CA, or everything a client may need */
    if (ca->ra == NULL && sk_X509_num(ca->chain) == 0) {
        if (der_of(ca->ca, &ca->cacert) != 0) {
            goto oom;
        }
        ca->cacert_ctype = "application/x-x509-ca-cert";
    } else {
        if ((all = sk_X509_new_null()) == NULL || !sk_X509_push(all, ca->ca) ||
            (ca->ra && !sk_X509_push(all, ca->ra))) {
            goto oom;
        }
        for (i = 0; i < (size_t) sk_X509_num(ca->chain); i++) {
            if (!sk_X509_push(all, sk_X509_value(ca->chain, (int) i))) {
                goto oom;
            }
        }
        if (certs_only(all, &ca->cacert) != 0) {
            goto oom;
        }
        ca->cacert_ctype = "application/x-x509-ca-ra-cert";
    }
    if (ca->legacy_des &&
        ((ca->libctx = OSSL_LIB_CTX_new()) == NULL ||
         (ca->prov_default = OSSL_PROVIDER_load(ca->libctx, "default")) ==
             NULL ||
         (ca->prov_legacy = OSSL_PROVIDER_load(ca->libctx, "legacy")) ==
             NULL)) {
        snprintf(err, errlen,
                 "legacy_des: the OpenSSL legacy provider cannot be loaded");
        goto done;
    }
    snprintf(ca->caps, sizeof(ca->caps),
             "POSTPKIOperation\nSHA-256\nSHA-512\nSHA-1\nAES\nDES3\n"
             "SCEPStandard\n%s",
             ca->renewal ? "Renewal\n" : "");
    if (asprintf(&ca->k_chal, "%s{scep}:chal:", ca->prefix) < 0 ||
        asprintf(&ca->k_cert, "%s{scep}:cert:", ca->prefix) < 0 ||
        asprintf(&ca->k_txn, "%s{scep}:txn:", ca->prefix) < 0 ||
        asprintf(&ca->k_issued, "%s{scep}:issued", ca->prefix) < 0 ||
        asprintf(&ca->k_revoked, "%s{scep}:revoked", ca->prefix) < 0) {
        goto oom;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory loading the SCEP CA");
done:
    sk_X509_free(all); /* the certificates belong to ca */
    return rc;
}

int
mdm_scep_ca_finish(mdm_scep_ca_t *ca, char *err, size_t errlen)
{
    int rc;

    if (ca->finished) {
        return 0;
    }
    if (!oids_ok()) {
        snprintf(err, errlen, "out of memory creating the SCEP OIDs");
        return -1;
    }
    ERR_set_mark();
    rc = ca_load(ca, err, errlen);
    ERR_pop_to_mark();
    if (rc == 0) {
        (void) mdm_script(MDM_LUA_SCEP_ISSUE);
        ca->finished = 1;
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* lenient base64                                                   */

static int
b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

int
mdm_scep_b64_decode(const char *in, size_t len, unsigned char **out,
                    size_t *outlen)
{
    unsigned char *buf, c;
    unsigned acc = 0;
    size_t i, n = 0, pad = 0, o = 0;
    int bits = 0, v, hi, lo;

    *out = NULL;
    *outlen = 0;
    if (in == NULL || len == 0) {
        return -1;
    }
    buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];
        /* decoded once only: %25 is not a way to spell another escape */
        if (c == '%') {
            if (len - i < 3 ||
                (hi = mdm_hexval((unsigned char) in[i + 1])) < 0 ||
                (lo = mdm_hexval((unsigned char) in[i + 2])) < 0) {
                goto bad;
            }
            c = (unsigned char) (hi << 4 | lo);
            i += 2;
        }
        if (c == '\r' || c == '\n' || c == '\t') {
            continue;
        }
        /* a '+' that went through form decoding */
        if (c == ' ') {
            c = '+';
        }
        if (c == '=') {
            if (++pad > 2) {
                goto bad;
            }
            continue;
        }
        v = b64_digit(c);
        if (v < 0 || pad > 0) {
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
    if (n == 0 || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0)) {
        goto bad;
    }
    *out = buf;
    *outlen = o;
    return 0;
bad:
    free(buf);
    return -1;
}

/* ---------------------------------------------------------------- */
/* transaction plumbing (the answers are mdm_tx.c's)                */

static mdm_step_t scep_start(mdm_tx_t *tx);
static mdm_step_t scep_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                            size_t n);
static void scep_free(mdm_tx_t *tx);

static const mdm_tx_ops_t scep_ops = {"scep", scep_start, scep_feed, scep_free};

static mdm_scep_req_t *
req_alloc(const mdm_scep_ca_t *ca)
{
    mdm_scep_req_t *r =
        (mdm_scep_req_t *) mdm_tx_new(sizeof(*r), &scep_ops, NULL);

    if (r != NULL) {
        r->ca = ca;
    }
    return r;
}

/* Set a variable; the operation and message type are also $mdm_message. */
static void
set_var(mdm_scep_req_t *r, mdm_scep_var_t v, const char *value)
{
    r->vars[v] = value;
    if (v == MDM_SCEP_VAR_OPERATION || v == MDM_SCEP_VAR_MESSAGE_TYPE) {
        r->base.vars[MDM_VAR_MESSAGE] = value;
    }
}

static mdm_step_t
storage_failed(mdm_scep_req_t *r, const redisReply *rep)
{
    snprintf(r->what, sizeof(r->what), "SCEP %s", msg_type_name(r->msg_type));
    r->base.what = r->what;
    mdm_tx_storage_failed(&r->base, rep);
    r->base.what = NULL;
    return MDM_STEP_DONE;
}

mdm_req_t *
mdm_scep_req_tx(mdm_scep_req_t *r)
{
    return &r->base;
}

void
mdm_scep_req_free(mdm_scep_req_t *r)
{
    if (r != NULL) {
        mdm_tx_free(&r->base);
    }
}

static void
scep_free(mdm_tx_t *tx)
{
    mdm_scep_req_t *r = (mdm_scep_req_t *) tx;

    mdm_buf_free(&r->decoded);
    free(r->admin_arg);
    CMS_ContentInfo_free(r->cms);
    X509_free(r->signer);
    X509_free(r->cert);
    mdm_buf_free(&r->cert_der);
    free(r->subject);
}

void
mdm_scep_req_set_logger(mdm_scep_req_t *r, mdm_log_fn fn, void *data)
{
    r->base.log_fn = fn;
    r->base.log_data = data;
}

void
mdm_scep_req_set_time(mdm_scep_req_t *r, time_t now)
{
    r->now = now;
}

const mdm_plan_t *
mdm_scep_req_plan(const mdm_scep_req_t *r)
{
    return r->base.plan;
}

const mdm_response_t *
mdm_scep_req_response(const mdm_scep_req_t *r)
{
    return &r->base.resp;
}

const char *
mdm_scep_req_var(const mdm_scep_req_t *r, mdm_scep_var_t v)
{
    if (v == MDM_SCEP_VAR_ERROR_ID && r->vars[v] == NULL) {
        return r->base.vars[MDM_VAR_ERROR_ID];
    }
    return (unsigned) v < MDM_SCEP_VAR_COUNT ? r->vars[v] : NULL;
}

static int
method_is(const char *m, size_t mlen, const char *want)
{
    return m && mlen == strlen(want) && memcmp(m, want, mlen) == 0;
}

mdm_scep_req_t *
mdm_scep_req_new_http(const mdm_scep_ca_t *ca, const char *method, size_t mlen,
                      const char *query, size_t qlen, const unsigned char *body,
                      size_t blen)
{
    mdm_scep_req_t *r = req_alloc(ca);
    const char *v, *msg;
    unsigned char op[32];
    size_t vlen = 0, oplen = 0, msglen = 0;
    int get = method_is(method, mlen, "GET") || method_is(method, mlen, "HEAD");
    int post = method_is(method, mlen, "POST");

    if (r == NULL) {
        return NULL;
    }
    if (!mdm_query_find(query, qlen, "operation", &v, &vlen) || v == NULL ||
        vlen >= sizeof(op) || mdm_pct_decode(v, vlen, op, &oplen, 0) != 0) {
        mdm_tx_pre_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08002", 0,
                          "SCEP request without a valid operation");
        return r;
    }
    if (strcasecmp((char *) op, "GetCACaps") == 0) {
        r->op = OP_CAPS;
        set_var(r, MDM_SCEP_VAR_OPERATION, "GetCACaps");
    } else if (strcasecmp((char *) op, "GetCACert") == 0) {
        r->op = OP_CACERT;
        set_var(r, MDM_SCEP_VAR_OPERATION, "GetCACert");
    } else if (strcasecmp((char *) op, "PKIOperation") == 0) {
        r->op = OP_PKI;
        set_var(r, MDM_SCEP_VAR_OPERATION, "PKIOperation");
    } else {
        for (vlen = 0; vlen < oplen && op[vlen] >= 0x20 && op[vlen] < 0x7f;
             vlen++) {
        }
        /* echoed only when it cannot break the log line */
        mdm_tx_pre_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08002", 0,
                          "SCEP operation \"%.40s\" not supported",
                          vlen == oplen ? (char *) op : "(unprintable)");
        return r;
    }
    if (r->op != OP_PKI) {
        if (!get) {
            mdm_tx_pre_refuse(
                &r->base, 405, MDM_LOG_WARN, "MDM08003", 0,
                "SCEP %s with method %.*s", r->vars[MDM_SCEP_VAR_OPERATION],
                (int) (mlen < 16 ? mlen : 16), method ? method : "");
        }
        return r;
    }
    if (post) {
        /* RFC 8894 says binary; a client that sends base64 anyway is
         * recognised by its first byte (DER starts with 0x30) */
        if (blen > 0 && body != NULL && body[0] != 0x30) {
            if (mdm_scep_b64_decode((const char *) body, blen, &r->decoded.ptr,
                                    &r->decoded.len) != 0) {
                mdm_tx_pre_refuse(
                    &r->base, 400, MDM_LOG_WARN, "MDM08001", 0,
                    "SCEP PKIOperation body is neither DER nor base64");
                return r;
            }
            r->msg = r->decoded.ptr;
            r->msg_len = r->decoded.len;
        } else {
            r->msg = body;
            r->msg_len = blen;
        }
        return r;
    }
    /* HEAD is for the read-only operations: a PKIOperation issues */
    if (!method_is(method, mlen, "GET")) {
        mdm_tx_pre_refuse(&r->base, 405, MDM_LOG_WARN, "MDM08003", 0,
                          "SCEP PKIOperation with method %.*s",
                          (int) (mlen < 16 ? mlen : 16), method ? method : "");
        return r;
    }
    if (!mdm_query_find(query, qlen, "message", &msg, &msglen) || msg == NULL ||
        mdm_scep_b64_decode(msg, msglen, &r->decoded.ptr, &r->decoded.len) !=
            0) {
        mdm_tx_pre_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08004", 0,
                          "SCEP PKIOperation GET without a base64 message");
        return r;
    }
    r->msg = r->decoded.ptr;
    r->msg_len = r->decoded.len;
    return r;
}

mdm_scep_req_t *
mdm_scep_req_new_admin(const mdm_scep_ca_t *ca, mdm_scep_admin_op_t op,
                       const char *arg, long ttl)
{
    mdm_scep_req_t *r = req_alloc(ca);

    if (r == NULL) {
        return NULL;
    }
    r->op = OP_ADMIN;
    r->admin_op = op;
    r->admin_ttl = ttl;
    if (arg && (r->admin_arg = mdm_strdup(arg)) == NULL) {
        mdm_scep_req_free(r);
        return NULL;
    }
    return r;
}

/* An admin refusal decided while routing: JSON like the others. */
static mdm_scep_req_t *
admin_refused(mdm_scep_req_t *r, int status, const char *id, const char *msg)
{
    if (r == NULL) {
        return NULL;
    }
    r->op = OP_ADMIN;
    mdm_tx_pre_refuse(&r->base, status, MDM_LOG_NOTICE, id, 1, "%s", msg);
    return r;
}

mdm_scep_req_t *
mdm_scep_req_new_admin_http(const mdm_scep_ca_t *ca, const char *method,
                            size_t mlen, const char *path, size_t plen,
                            const unsigned char *body, size_t blen)
{
    mdm_scep_req_t *r;
    json_t *j = NULL, *v;
    json_error_t je;
    const char *chal = NULL;
    unsigned char serial[64];
    size_t slen;
    long ttl = 0;

    while (plen > 0 && path[0] == '/') {
        path++;
        plen--;
    }
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    if (plen == 9 && memcmp(path, "challenge", 9) == 0) {
        if (!method_is(method, mlen, "POST")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use POST");
        }
        if (blen > 0) {
            j = json_loadb((const char *) body, blen, 0, &je);
            v = j ? json_object_get(j, "ttl") : NULL;
            if (j == NULL || !json_is_object(j) ||
                (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                       json_integer_value(v) > INT_MAX)) ||
                ((chal = json_string_value(json_object_get(j, "challenge"))) ==
                     NULL &&
                 json_object_get(j, "challenge") != NULL)) {
                json_decref(j);
                return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0),
                                     400, "MDM08050",
                                     "body: {\"challenge\": string, \"ttl\": "
                                     "seconds}, both optional");
            }
            ttl = v ? (long) json_integer_value(v) : 0;
        }
        r = mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_CHALLENGE, chal, ttl);
        json_decref(j);
        return r;
    }
    if (plen > 7 && memcmp(path, "revoke/", 7) == 0) {
        if (!method_is(method, mlen, "POST")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use POST");
        }
        if (plen - 7 >= sizeof(serial) ||
            mdm_pct_decode(path + 7, plen - 7, serial, &slen, 0) != 0) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 400,
                                 "MDM08050", "bad serial number");
        }
        return mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_REVOKE,
                                      (const char *) serial, 0);
    }
    return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 404,
                         "MDM08053", "no such SCEP admin endpoint");
}

/* ---------------------------------------------------------------- */
/* CertRep                                                          */

static int
add_attr(CMS_SignerInfo *si, const ASN1_OBJECT *obj, int type, const void *data,
         size_t len)
{
    return CMS_signed_add1_attr_by_OBJ(si, obj, type, data, (int) len) == 1;
}

static int
cms_der(CMS_ContentInfo *cms, mdm_buf_t *out)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    int rc;

    if (n <= 0) {
        return -1;
    }
    rc = mdm_buf_set(out, der, (size_t) n);
    OPENSSL_free(der);
    return rc;
}

/* The requester's envelope: the issued certificate as a degenerate
 * SignedData, encrypted to the certificate that signed the request. */
static int
envelope(mdm_scep_req_t *r, mdm_buf_t *out)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    mdm_buf_t inner = {0};
    CMS_ContentInfo *env = NULL;
    BIO *in = NULL;
    int rc = -1;

    if (sk == NULL || !sk_X509_push(sk, r->cert) ||
        certs_only(sk, &inner) != 0) {
        goto done;
    }
    sk_X509_zero(sk);
    if (!sk_X509_push(sk, r->signer) ||
        (in = BIO_new_mem_buf(inner.ptr, (int) inner.len)) == NULL) {
        goto done;
    }
    /* the request's cipher, unless it was single DES (r->cipher NULL) */
    env = CMS_encrypt(sk, in, r->cipher ? r->cipher : EVP_aes_128_cbc(),
                      CMS_BINARY);
    if (env == NULL) {
        goto done;
    }
    rc = cms_der(env, out);
done:
    CMS_ContentInfo_free(env);
    BIO_free(in);
    mdm_buf_free(&inner);
    sk_X509_free(sk); /* references belong to r */
    return rc;
}

/* Build and sign the CertRep into r->base.out. */
static int
certrep(mdm_scep_req_t *r, int status, int fail)
{
    const mdm_scep_ca_t *ca = r->ca;
    X509 *scert = ca->ra ? ca->ra : ca->ca;
    EVP_PKEY *skey = ca->ra ? ca->ra_key : ca->ca_key;
    mdm_buf_t env = {0};
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    unsigned char snonce[16];
    char st[4], fi[4];
    BIO *content = NULL;
    int rc = -1;

    if (status == PKI_SUCCESS && envelope(r, &env) != 0) {
        goto done;
    }
    if (RAND_bytes(snonce, sizeof(snonce)) != 1) {
        goto done;
    }
    content =
        BIO_new_mem_buf(env.ptr ? (const void *) env.ptr : "", (int) env.len);
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    if (content == NULL || cms == NULL) {
        goto done;
    }
    si = CMS_add1_signer(cms, scert, skey, r->md ? r->md : EVP_sha256(),
                         CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP);
    snprintf(st, sizeof(st), "%d", status);
    snprintf(fi, sizeof(fi), "%d", fail);
    if (si == NULL ||
        !add_attr(si, oid_txid, r->txid_type, r->txid, strlen(r->txid)) ||
        !add_attr(si, oid_msgtype, V_ASN1_PRINTABLESTRING, "3", 1) ||
        !add_attr(si, oid_status, V_ASN1_PRINTABLESTRING, st, strlen(st)) ||
        (status == PKI_FAILURE &&
         !add_attr(si, oid_failinfo, V_ASN1_PRINTABLESTRING, fi, strlen(fi))) ||
        !add_attr(si, oid_snonce, V_ASN1_OCTET_STRING, snonce,
                  sizeof(snonce)) ||
        (r->nonce_len > 0 && !add_attr(si, oid_rnonce, V_ASN1_OCTET_STRING,
                                       r->nonce, r->nonce_len))) {
        goto done;
    }
    /* a FAILURE carries no envelope: its content is empty */
    if (CMS_final(cms, content, NULL, CMS_BINARY) != 1) {
        goto done;
    }
    rc = cms_der(cms, &r->base.out);
done:
    CMS_ContentInfo_free(cms);
    BIO_free(content);
    mdm_buf_free(&env);
    return rc;
}

static mdm_step_t
reply_certrep(mdm_scep_req_t *r, int status, int fail)
{
    int rc;

    rc = certrep(r, status, fail);
    if (rc != 0) {
        return mdm_tx_refuse(
            &r->base, 500, MDM_LOG_ERR, "MDM08040",
            "SCEP %s (transaction %s): cannot build the CertRep",
            msg_type_name(r->msg_type), r->txid);
    }
    r->vars[MDM_SCEP_VAR_STATUS] =
        status == PKI_SUCCESS ? "SUCCESS" : "FAILURE";
    return mdm_tx_reply(&r->base, 200, ct_pki, &r->base.out);
}

static mdm_step_t fail_rep(mdm_scep_req_t *r, int fail, const char *id,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A FAILURE CertRep with one log line naming the transaction. */
static mdm_step_t
fail_rep(mdm_scep_req_t *r, int fail, const char *id, const char *fmt, ...)
{
    char buf[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mdm_tx_log(&r->base, MDM_LOG_WARN, id,
               "SCEP %s (transaction %s) refused, %s: %s",
               msg_type_name(r->msg_type), r->txid, fail_name(fail), buf);
    r->vars[MDM_SCEP_VAR_ERROR_ID] = r->base.vars[MDM_VAR_ERROR_ID] = id;
    r->vars[MDM_SCEP_VAR_FAIL_INFO] = fail_name(fail);
    mdm_buf_free(&r->base.out);
    if (certrep(r, PKI_FAILURE, fail) != 0) {
        return mdm_tx_reply(&r->base, 500, NULL, NULL);
    }
    r->vars[MDM_SCEP_VAR_STATUS] = "FAILURE";
    return mdm_tx_reply(&r->base, 200, ct_pki, &r->base.out);
}

/* ---------------------------------------------------------------- */
/* parsing                                                          */

/* The single value of a signed attribute, or NULL (absent, repeated or
 * multi-valued: none of those are a SCEP attribute). */
static const ASN1_TYPE *
signed_attr(CMS_SignerInfo *si, const ASN1_OBJECT *obj)
{
    X509_ATTRIBUTE *a;
    int i = CMS_signed_get_attr_by_OBJ(si, obj, -1);

    if (i < 0 || CMS_signed_get_attr_by_OBJ(si, obj, i) >= 0) {
        return NULL;
    }
    a = CMS_signed_get_attr(si, i);
    if (a == NULL || X509_ATTRIBUTE_count(a) != 1) {
        return NULL;
    }
    return X509_ATTRIBUTE_get0_type(a, 0);
}

static int
is_text(int type)
{
    return type == V_ASN1_PRINTABLESTRING || type == V_ASN1_UTF8STRING ||
           type == V_ASN1_IA5STRING || type == V_ASN1_T61STRING;
}

/* A text attribute value without NUL bytes or control characters. */
static int
attr_text(const ASN1_TYPE *t, char *out, size_t cap, int *type)
{
    const unsigned char *p;
    int n, i;

    if (t == NULL || !is_text(t->type)) {
        return -1;
    }
    p = ASN1_STRING_get0_data(t->value.asn1_string);
    n = ASN1_STRING_length(t->value.asn1_string);
    if (n <= 0 || (size_t) n >= cap) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return -1;
        }
    }
    memcpy(out, p, (size_t) n);
    out[n] = '\0';
    if (type) {
        *type = t->type;
    }
    return 0;
}

static const char *
parse_outer(mdm_scep_req_t *r)
{
    STACK_OF(CMS_SignerInfo) * sis;
    ASN1_OCTET_STRING **pos;
    const ASN1_TYPE *t;
    const unsigned char *p = r->msg;
    char mt[8], *end;
    long v;

    if (r->msg == NULL || r->msg_len == 0) {
        return "empty message";
    }
    if (r->msg_len > MDM_SCEP_MAX_MSG) {
        return "message too large";
    }
    r->cms = d2i_CMS_ContentInfo(NULL, &p, (long) r->msg_len);
    if (r->cms == NULL || p != r->msg + r->msg_len) {
        return "not a DER CMS ContentInfo";
    }
    if (OBJ_obj2nid(CMS_get0_type(r->cms)) != NID_pkcs7_signed) {
        return "not a CMS SignedData";
    }
    sis = CMS_get0_SignerInfos(r->cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        return "not exactly one signer";
    }
    r->si = sk_CMS_SignerInfo_value(sis, 0);
    if (OBJ_obj2nid(CMS_get0_eContentType(r->cms)) != NID_pkcs7_data) {
        return "encapsulated content is not id-data";
    }
    pos = CMS_get0_content(r->cms);
    if (pos == NULL || *pos == NULL) {
        return "no encapsulated content";
    }
    if (attr_text(signed_attr(r->si, oid_txid), r->txid, sizeof(r->txid),
                  &r->txid_type) != 0) {
        return "no usable transactionID attribute";
    }
    r->vars[MDM_SCEP_VAR_TRANSACTION_ID] = r->txid;
    if (attr_text(signed_attr(r->si, oid_msgtype), mt, sizeof(mt), NULL) != 0) {
        return "no usable messageType attribute";
    }
    v = strtol(mt, &end, 10);
    if (*end != '\0' || v < 0 || v > 1000) {
        return "messageType is not a number";
    }
    r->msg_type = (int) v;
    t = signed_attr(r->si, oid_snonce);
    if (t == NULL || t->type != V_ASN1_OCTET_STRING ||
        ASN1_STRING_length(t->value.octet_string) <= 0 ||
        ASN1_STRING_length(t->value.octet_string) > MDM_SCEP_MAX_NONCE) {
        return "no usable senderNonce attribute";
    }
    r->nonce_len = (size_t) ASN1_STRING_length(t->value.octet_string);
    memcpy(r->nonce, ASN1_STRING_get0_data(t->value.octet_string),
           r->nonce_len);
    return NULL;
}

/* The digest of the request, also used for the CertRep. */
static const EVP_MD *
digest_of(CMS_SignerInfo *si, int *nid)
{
    X509_ALGOR *dig = NULL;
    const ASN1_OBJECT *obj;

    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    if (dig == NULL) {
        *nid = NID_undef;
        return NULL;
    }
    X509_ALGOR_get0(&obj, NULL, NULL, dig);
    *nid = OBJ_obj2nid(obj);
    switch (*nid) {
    case NID_sha1:
        return EVP_sha1();
    case NID_sha224:
        return EVP_sha224();
    case NID_sha256:
        return EVP_sha256();
    case NID_sha384:
        return EVP_sha384();
    case NID_sha512:
        return EVP_sha512();
    }
    return NULL;
}

static const EVP_CIPHER *
cipher_of(int nid)
{
    switch (nid) {
    case NID_aes_128_cbc:
        return EVP_aes_128_cbc();
    case NID_aes_192_cbc:
        return EVP_aes_192_cbc();
    case NID_aes_256_cbc:
        return EVP_aes_256_cbc();
    case NID_des_ede3_cbc:
        return EVP_des_ede3_cbc();
    }
    return NULL;
}

static char *
name_str(const X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *s = NULL;
    long len;

    if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
        (len = BIO_get_mem_data(b, &data)) >= 0) {
        /* an empty name leaves the BIO without a buffer */
        s = len > 0 ? mdm_strndup(data, (size_t) len) : mdm_strdup("");
    }
    BIO_free(b);
    return s;
}

/* Lowercase hex without leading zeros: the one spelling used in keys and
 * by the admin API (norm_serial). */
static int
serial_hex(const ASN1_INTEGER *ai, char *out, size_t cap)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
    char *h, *p;
    int rc = -1;

    if (bn == NULL) {
        return -1;
    }
    if (!BN_is_negative(bn) && (h = BN_bn2hex(bn)) != NULL) {
        /* BN_bn2hex() writes whole bytes ("0ABC"): drop the zero nibble */
        for (p = h; p[0] == '0' && p[1] != '\0'; p++) {
        }
        if (strlen(p) < cap) {
            snprintf(out, cap, "%s", p);
            for (p = out; *p; p++) {
                *p = (char) tolower((unsigned char) *p);
            }
            rc = 0;
        }
        OPENSSL_free(h);
    }
    BN_free(bn);
    return rc;
}

typedef enum {
    ENV_OK = 0,
    ENV_NOT_ENVELOPED,
    ENV_BAD_ALG,
    ENV_NOT_FOR_US,
    ENV_DECRYPT
} env_rc_t;

/* Open pkcsPKIEnvelope with the RA or CA key. why: a static or malloc'd
 * detail (*why_owned set when malloc'd). */
static env_rc_t
open_envelope(mdm_scep_req_t *r, mdm_buf_t *out, char *why, size_t whylen)
{
    const mdm_scep_ca_t *ca = r->ca;
    ASN1_OCTET_STRING **pos = CMS_get0_content(r->cms);
    const unsigned char *data = ASN1_STRING_get0_data(*pos), *p;
    long len = ASN1_STRING_length(*pos);
    STACK_OF(CMS_RecipientInfo) * ris;
    CMS_RecipientInfo *ri;
    CMS_ContentInfo *env = NULL;
    PKCS7 *p7 = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    X509_NAME *iss = NULL;
    ASN1_INTEGER *sno = NULL;
    char *iname, sn[48];
    BIO *bio = NULL;
    char *bdata;
    long blen;
    env_rc_t rc = ENV_NOT_ENVELOPED;
    int i, nid;

    /* the PKCS#7 view exposes the content-encryption algorithm */
    p = data;
    p7 = d2i_PKCS7(NULL, &p, len);
    if (p7 == NULL || p != data + len || !PKCS7_type_is_enveloped(p7) ||
        p7->d.enveloped == NULL || p7->d.enveloped->enc_data == NULL ||
        p7->d.enveloped->enc_data->algorithm == NULL) {
        snprintf(why, whylen, "pkcsPKIEnvelope is not an EnvelopedData");
        goto done;
    }
    nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    r->cipher = cipher_of(nid);
    if (nid == NID_des_cbc && ca->libctx) {
        /* decrypted in the legacy context; the answer gets AES */
        env = CMS_ContentInfo_new_ex(ca->libctx, NULL);
        if (env == NULL) {
            snprintf(why, whylen, "out of memory");
            rc = ENV_DECRYPT;
            goto done;
        }
    } else if (r->cipher == NULL) {
        rc = ENV_BAD_ALG;
        snprintf(why, whylen, "content encryption %s not supported%s",
                 nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid),
                 nid == NID_des_cbc ? " (single DES: see legacy_des)" : "");
        goto done;
    }
    p = data;
    if (env != NULL) {
        /* decoded into env, keeping its library context; a failure frees
         * it and leaves NULL */
        (void) d2i_CMS_ContentInfo(&env, &p, len);
    } else {
        env = d2i_CMS_ContentInfo(NULL, &p, len);
    }
    if (env == NULL || OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
        snprintf(why, whylen, "pkcsPKIEnvelope is not an EnvelopedData");
        goto done;
    }
    ris = CMS_get0_RecipientInfos(env);
    for (i = 0; ris && i < sk_CMS_RecipientInfo_num(ris) && cert == NULL; i++) {
        ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS) {
            continue;
        }
        if (ca->ra && CMS_RecipientInfo_ktri_cert_cmp(ri, ca->ra) == 0) {
            cert = ca->ra;
            key = ca->ra_key;
        } else if (CMS_RecipientInfo_ktri_cert_cmp(ri, ca->ca) == 0) {
            cert = ca->ca;
            key = ca->ca_key;
        } else if (iss == NULL) {
            CMS_RecipientInfo_ktri_get0_signer_id(ri, NULL, &iss, &sno);
        }
    }
    if (cert == NULL) {
        rc = ENV_NOT_FOR_US;
        iname = iss ? name_str(iss) : NULL;
        if (sno == NULL || serial_hex(sno, sn, sizeof(sn)) != 0) {
            snprintf(sn, sizeof(sn), "?");
        }
        snprintf(why, whylen,
                 "pkcsPKIEnvelope is not encrypted to this %s (recipient: "
                 "issuer \"%s\", serial %s)",
                 ca->ra ? "RA or CA" : "CA", iname ? iname : "?", sn);
        free(iname);
        goto done;
    }
    /* No CMS_DEBUG_DECRYPT: a wrong key must not be told apart from bad
     * padding (Bleichenbacher); OpenSSL then decrypts with a random key
     * and the content fails to parse instead. */
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL ||
        CMS_decrypt(env, key, cert, NULL, bio, CMS_BINARY) != 1) {
        rc = ENV_DECRYPT;
        snprintf(why, whylen, "cannot decrypt pkcsPKIEnvelope");
        goto done;
    }
    blen = BIO_get_mem_data(bio, &bdata);
    if (blen < 0 || mdm_buf_set(out, bdata, (size_t) blen) != 0) {
        rc = ENV_DECRYPT;
        snprintf(why, whylen, "cannot read the decrypted messageData");
        goto done;
    }
    rc = ENV_OK;
done:
    BIO_free(bio);
    CMS_ContentInfo_free(env);
    PKCS7_free(p7);
    return rc;
}

/* challengePassword: the CSR attribute, else (macOS mdmclient) the signed
 * attribute of the pkiMessage. */
static int
challenge_of(mdm_scep_req_t *r, X509_REQ *csr, char *out, size_t cap)
{
    X509_ATTRIBUTE *a;
    const ASN1_TYPE *t = NULL;
    int i = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1);

    if (i >= 0 && (a = X509_REQ_get_attr(csr, i)) != NULL &&
        X509_ATTRIBUTE_count(a) == 1) {
        t = X509_ATTRIBUTE_get0_type(a, 0);
    }
    if (t == NULL) {
        i = CMS_signed_get_attr_by_NID(r->si, NID_pkcs9_challengePassword, -1);
        if (i >= 0 && (a = CMS_signed_get_attr(r->si, i)) != NULL &&
            X509_ATTRIBUTE_count(a) == 1) {
            t = X509_ATTRIBUTE_get0_type(a, 0);
        }
    }
    if (t == NULL) {
        return -1;
    }
    /* BMPString is allowed by PKCS#9 but has never been seen from a device */
    return attr_text(t, out, cap, NULL);
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value);

/* where relying parties find the CRL (GET ?operation=GetCRL, or a copy) */
static int
add_crl_dp(X509 *x, X509V3_CTX *ctx, const char *url)
{
    char v[1100];

    snprintf(v, sizeof(v), "URI:%s", url);
    return add_ext(x, ctx, NID_crl_distribution_points, v);
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    return ok;
}

/* Sign the certificate for csr into r->cert. */
static int
issue(mdm_scep_req_t *r, X509_REQ *csr)
{
    const mdm_scep_ca_t *ca = r->ca;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    unsigned char rnd[16];
    X509V3_CTX ctx;
    ASN1_INTEGER *sn = NULL;
    BIGNUM *bn = NULL;
    X509 *x = NULL;
    X509_EXTENSION *e;
    time_t now = r->now;
    int i, ok = 0;

    /* 128 random bits, made positive by the DER encoding's sign byte */
    do {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            goto done;
        }
        BN_free(bn);
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    } while (bn != NULL && BN_is_zero(bn));
    if (bn == NULL || (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        (x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
        X509_set_serialNumber(x, sn) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->ca)) != 1 ||
        X509_set_subject_name(x, X509_REQ_get_subject_name(csr)) != 1 ||
        X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -MDM_SCEP_SKEW, &now) ==
            NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int) ca->validity_days, 0,
                         &now) == NULL) {
        goto done;
    }
    /* never beyond the CA itself: the chain would be invalid sooner */
    if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca->ca)) >
            0 &&
        X509_set1_notAfter(x, X509_get0_notAfter(ca->ca)) != 1) {
        goto done;
    }
    X509V3_set_ctx(&ctx, ca->ca, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &ctx, NID_authority_key_identifier, "keyid,issuer") ||
        (ca->crl_url && !add_crl_dp(x, &ctx, ca->crl_url))) {
        goto done;
    }
    /* the payload's SubjectAltName travels as a requested extension */
    exts = X509_REQ_get_extensions(csr);
    for (i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name &&
            X509_add_ext(x, e, -1) != 1) {
            goto done;
        }
    }
    if (X509_sign(x, ca->ca_key, EVP_sha256()) <= 0) {
        goto done;
    }
    ok = 1;
done:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return -1;
    }
    X509_free(r->cert);
    r->cert = x;
    return 0;
}

/* ---------------------------------------------------------------- */
/* plans                                                            */

static mdm_step_t
plan_done(mdm_scep_req_t *r, int state)
{
    r->state = state;
    return mdm_tx_plan(&r->base, r->base.pb.ncmds);
}

static mdm_step_t
plan_issue(mdm_scep_req_t *r, const char *challenge)
{
    const mdm_scep_ca_t *ca = r->ca;
    unsigned char md[32], *der = NULL;
    unsigned int mdlen;
    struct tm tm;
    char hex[65];
    int n, consume = 0;

    if (ca->challenge_mode == CH_DYNAMIC && r->msg_type == MT_PKCSREQ) {
        if (EVP_Digest(challenge, strlen(challenge), md, &mdlen, EVP_sha256(),
                       NULL) != 1) {
            return mdm_tx_oom(&r->base);
        }
        mdm_hex(md, 32, hex);
        consume = 1;
    } else {
        snprintf(hex, sizeof(hex), "-");
    }
    if (ASN1_TIME_to_tm(X509_get0_notAfter(r->cert), &tm) != 1 ||
        (n = i2d_X509(r->cert, &der)) <= 0) {
        return mdm_tx_oom(&r->base);
    }
    n = mdm_buf_set(&r->cert_der, der, (size_t) n);
    OPENSSL_free(der);
    if (n != 0) {
        return mdm_tx_oom(&r->base);
    }
    mdm_planb_reset(&r->base.pb);
    r->base.evalled = 0;
    mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_ISSUE);
    mdm_planb_str(&r->base.pb, "5");
    mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_chal, hex);
    mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_cert, r->serial);
    mdm_planb_str(&r->base.pb, ca->k_issued);
    mdm_planb_str(&r->base.pb, ca->k_revoked);
    mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_txn, r->txid);
    mdm_planb_str(&r->base.pb, consume ? "consume" : "keep");
    mdm_planb_str(&r->base.pb, r->serial);
    mdm_planb_str(&r->base.pb, r->subject ? r->subject : "");
    mdm_planb_str(&r->base.pb, r->cert_hash);
    mdm_planb_fmt(&r->base.pb, "%lld", (long long) timegm(&tm));
    /* borrowed: r->cert_der lives as long as the transaction */
    mdm_planb_arg(&r->base.pb, r->cert_der.ptr, r->cert_der.len);
    mdm_planb_str(&r->base.pb, r->txid);
    mdm_planb_str(&r->base.pb, msg_type_name(r->msg_type));
    mdm_planb_str(&r->base.pb, r->renew_serial);
    mdm_planb_str(&r->base.pb, MDM_SCEP_TXN_TTL);
    return plan_done(r, SST_ISSUE);
}

static mdm_step_t
plan_lookup(mdm_scep_req_t *r, const char *key_prefix, const char *id)
{
    mdm_planb_reset(&r->base.pb);
    r->base.script = 0;
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "HGET");
    mdm_planb_fmt(&r->base.pb, "%s%s", key_prefix, id);
    mdm_planb_str(&r->base.pb, "der");
    return plan_done(r, SST_LOOKUP);
}

/* ---------------------------------------------------------------- */
/* PKIOperation                                                     */

static mdm_step_t
pki_cert_request(mdm_scep_req_t *r, const mdm_buf_t *data)
{
    const mdm_scep_ca_t *ca = r->ca;
    const unsigned char *p = data->ptr;
    X509_REQ *csr = NULL;
    EVP_PKEY *pub;
    unsigned char md[32];
    unsigned int mdlen;
    char chal[MDM_SCEP_MAX_CHAL + 1] = "";
    mdm_step_t step;
    int bits, ok, id;

    if (data->len == 0 || data->len > LONG_MAX ||
        (csr = d2i_X509_REQ(NULL, &p, (long) data->len)) == NULL ||
        p != data->ptr + data->len) {
        X509_REQ_free(csr);
        return fail_rep(r, FAIL_BADREQUEST, "MDM08014",
                        "messageData is not a DER PKCS#10 request");
    }
    /* the version field is not checked: macOS 2016 sent 2 instead of 0 */
    pub = X509_REQ_get0_pubkey(csr);
    if (pub == NULL || X509_REQ_verify(csr, pub) != 1) {
        step = fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08014",
                        "the CSR's self-signature does not verify");
        goto done;
    }
    free(r->subject);
    r->subject = name_str(X509_REQ_get_subject_name(csr));
    r->vars[MDM_SCEP_VAR_SUBJECT] = r->subject;
    if (X509_NAME_entry_count(X509_REQ_get_subject_name(csr)) == 0) {
        step = fail_rep(r, FAIL_BADREQUEST, "MDM08015",
                        "the CSR has an empty subject");
        goto done;
    }
    bits = EVP_PKEY_get_bits(pub);
    id = EVP_PKEY_get_base_id(pub);
    if (id == EVP_PKEY_RSA) {
        ok = bits >= ca->min_key_bits;
    } else if (id == EVP_PKEY_EC) {
        ok = bits >= 256;
    } else {
        step = fail_rep(r, FAIL_BADALG, "MDM08010",
                        "CSR key type %s not supported (RSA or EC only)",
                        OBJ_nid2sn(id));
        goto done;
    }
    if (!ok) {
        step = fail_rep(r, FAIL_BADREQUEST, "MDM08016",
                        "CSR key of %d bits is below the minimum of %ld", bits,
                        id == EVP_PKEY_RSA ? ca->min_key_bits : 256L);
        goto done;
    }

    if (r->msg_type == MT_PKCSREQ && ca->challenge_mode != CH_NONE) {
        if (challenge_of(r, csr, chal, sizeof(chal)) != 0) {
            step = fail_rep(r, FAIL_BADREQUEST, "MDM08017",
                            "no challengePassword in the request");
            goto done;
        }
        if (ca->challenge_mode == CH_STATIC) {
            /* digests of equal length: the comparison leaks nothing,
             * not even the configured challenge's length */
            ok = EVP_Digest(chal, strlen(chal), md, &mdlen, EVP_sha256(),
                            NULL) == 1 &&
                 CRYPTO_memcmp(md, ca->challenge_md, 32) == 0;
            if (!ok) {
                step = fail_rep(r, FAIL_BADREQUEST, "MDM08017",
                                "wrong challengePassword");
                goto done;
            }
        }
    }
    if (r->msg_type == MT_RENEWAL) {
        if (X509_check_issued(ca->ca, r->signer) != X509_V_OK ||
            X509_verify(r->signer, X509_get0_pubkey(ca->ca)) != 1) {
            step =
                fail_rep(r, FAIL_BADREQUEST, "MDM08019",
                         "RenewalReq not signed by a certificate of this CA");
            goto done;
        }
        if (X509_cmp_time(X509_get0_notBefore(r->signer), &r->now) >= 0 ||
            X509_cmp_time(X509_get0_notAfter(r->signer), &r->now) <= 0) {
            step = fail_rep(r, FAIL_BADTIME, "MDM08018",
                            "RenewalReq signed by a certificate that is "
                            "expired or not yet valid");
            goto done;
        }
        if (serial_hex(X509_get0_serialNumber(r->signer), r->renew_serial,
                       sizeof(r->renew_serial)) != 0) {
            step = fail_rep(r, FAIL_BADREQUEST, "MDM08019",
                            "RenewalReq signer has an unusable serial number");
            goto done;
        }
        /* a certificate renews itself, it does not buy another name */
        if (X509_NAME_cmp(X509_REQ_get_subject_name(csr),
                          X509_get_subject_name(r->signer)) != 0) {
            step = fail_rep(r, FAIL_BADREQUEST, "MDM08023",
                            "RenewalReq for another subject than the "
                            "certificate it is signed with");
            goto done;
        }
    }
    if (X509_cmp_time(X509_get0_notBefore(ca->ca), &r->now) >= 0 ||
        X509_cmp_time(X509_get0_notAfter(ca->ca), &r->now) <= 0) {
        step =
            mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM08041",
                          "SCEP %s (transaction %s): the CA certificate is not "
                          "valid now; nothing issued",
                          msg_type_name(r->msg_type), r->txid);
        goto done;
    }
    if (issue(r, csr) != 0 ||
        serial_hex(X509_get0_serialNumber(r->cert), r->serial,
                   sizeof(r->serial)) != 0 ||
        mdm_cert_sha256_hex(r->cert, r->cert_hash) != 0) {
        step = mdm_tx_refuse(
            &r->base, 500, MDM_LOG_ERR, "MDM08040",
            "SCEP %s (transaction %s): cannot sign the certificate",
            msg_type_name(r->msg_type), r->txid);
        goto done;
    }
    r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
    step = plan_issue(r, chal);
done:
    OPENSSL_cleanse(chal, sizeof(chal));
    X509_REQ_free(csr);
    return step;
}

static mdm_step_t
pki_get_cert(mdm_scep_req_t *r, const mdm_buf_t *data)
{
    const unsigned char *p = data->ptr;
    PKCS7_ISSUER_AND_SERIAL *ias = NULL;
    mdm_step_t step;

    if (data->len == 0 || data->len > LONG_MAX ||
        (ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long) data->len)) ==
            NULL ||
        p != data->ptr + data->len) {
        PKCS7_ISSUER_AND_SERIAL_free(ias);
        return fail_rep(r, FAIL_BADREQUEST, "MDM08021",
                        "GetCert messageData is not an IssuerAndSerialNumber");
    }
    if (X509_NAME_cmp(ias->issuer, X509_get_subject_name(r->ca->ca)) != 0) {
        step = fail_rep(r, FAIL_BADCERTID, "MDM08021",
                        "GetCert for a certificate of another issuer");
    } else if (serial_hex(ias->serial, r->serial, sizeof(r->serial)) != 0) {
        step = fail_rep(r, FAIL_BADCERTID, "MDM08021",
                        "GetCert for an unusable serial number");
    } else {
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
        step = plan_lookup(r, r->ca->k_cert, r->serial);
    }
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    return step;
}

static mdm_step_t
pki_start(mdm_scep_req_t *r)
{
    const char *why;
    char detail[512];
    mdm_buf_t data = {0};
    STACK_OF(X509) * signers;
    mdm_step_t step;
    int nid;

    why = parse_outer(r);
    if (why != NULL) {
        return mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08001",
                             "SCEP PKIOperation is not a pkiMessage: %s", why);
    }
    set_var(r, MDM_SCEP_VAR_MESSAGE_TYPE, msg_type_name(r->msg_type));
    r->md = digest_of(r->si, &nid);
    if (r->md == NULL) {
        return fail_rep(r, FAIL_BADALG, "MDM08010",
                        "digest algorithm %s not supported",
                        nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid));
    }
    /* The signer is the requester's own (often self-signed) certificate:
     * its trust is decided per message type below, not by a chain. */
    if (CMS_verify(r->cms, NULL, NULL, NULL, NULL,
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
        return fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08011",
                        "the pkiMessage signature does not verify");
    }
    signers = CMS_get0_signers(r->cms);
    if (signers == NULL || sk_X509_num(signers) != 1 ||
        sk_X509_value(signers, 0) == NULL) {
        sk_X509_free(signers);
        return fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08011",
                        "the signer certificate is not in the pkiMessage");
    }
    r->signer = sk_X509_value(signers, 0);
    X509_up_ref(r->signer);
    sk_X509_free(signers);

    switch (r->msg_type) {
    case MT_PKCSREQ:
    case MT_CERTPOLL:
    case MT_GETCERT:
        break;
    case MT_RENEWAL:
        if (r->ca->renewal) {
            break;
        }
        /* fall through */
    default:
        return fail_rep(r, FAIL_BADREQUEST, "MDM08013",
                        "messageType %d not supported", r->msg_type);
    }

    switch (open_envelope(r, &data, detail, sizeof(detail))) {
    case ENV_OK:
        break;
    case ENV_BAD_ALG:
        return fail_rep(r, FAIL_BADALG, "MDM08010", "%s", detail);
    case ENV_NOT_ENVELOPED:
        return fail_rep(r, FAIL_BADREQUEST, "MDM08012", "%s", detail);
    default:
        return fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08012", "%s", detail);
    }

    switch (r->msg_type) {
    case MT_CERTPOLL:
        /* IssuerAndSubject; the transactionID is what identifies the
         * request, and answers stay encrypted to the poller */
        step = plan_lookup(r, r->ca->k_txn, r->txid);
        break;
    case MT_GETCERT:
        step = pki_get_cert(r, &data);
        break;
    default:
        step = pki_cert_request(r, &data);
        break;
    }
    OPENSSL_cleanse(data.ptr, data.len);
    mdm_buf_free(&data);
    return step;
}

/* ---------------------------------------------------------------- */
/* admin                                                            */

static mdm_step_t admin_error(mdm_scep_req_t *r, int status, const char *id,
                              const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mdm_step_t
admin_error(mdm_scep_req_t *r, int status, const char *id, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return mdm_tx_json_error(&r->base, status, id, buf);
}

/* "01:AB:cd" -> "1abcd"; -1 unless 1-40 hex digits. */
static int
norm_serial(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *p;

    for (p = in; *p; p++) {
        if (*p == ':' || *p == ' ') {
            continue;
        }
        if (mdm_hexval((unsigned char) *p) < 0 || o + 1 >= cap || o >= 40) {
            return -1;
        }
        if (o == 0 && *p == '0') {
            continue;
        }
        out[o++] = (char) tolower((unsigned char) *p);
    }
    if (o == 0) {
        /* all zeros (or empty) is no serial this CA issues */
        return -1;
    }
    out[o] = '\0';
    return 0;
}

static mdm_step_t
admin_start(mdm_scep_req_t *r)
{
    const mdm_scep_ca_t *ca = r->ca;
    unsigned char rnd[16], md[32];
    unsigned int mdlen;
    char hex[65];
    const char *p;
    long ttl;

    mdm_planb_reset(&r->base.pb);
    r->base.script = 0;
    if (r->admin_op == MDM_SCEP_ADMIN_CHALLENGE) {
        if (ca->challenge_mode != CH_DYNAMIC) {
            return admin_error(
                r, 400, "MDM08050",
                "one-time challenges need challenge \"dynamic\"");
        }
        if (r->admin_arg == NULL) {
            if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
                (r->admin_arg = malloc(33)) == NULL) {
                return mdm_tx_oom(&r->base);
            }
            mdm_hex(rnd, sizeof(rnd), r->admin_arg);
        }
        for (p = r->admin_arg; *p; p++) {
            if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e) {
                break;
            }
        }
        if (*p != '\0' || p == r->admin_arg ||
            strlen(r->admin_arg) > MDM_SCEP_MAX_CHAL) {
            return admin_error(r, 400, "MDM08050",
                               "a challenge is 1-%d printable ASCII characters "
                               "without spaces",
                               MDM_SCEP_MAX_CHAL);
        }
        ttl = r->admin_ttl > 0 ? r->admin_ttl : ca->challenge_ttl;
        if (ttl > INT_MAX || EVP_Digest(r->admin_arg, strlen(r->admin_arg), md,
                                        &mdlen, EVP_sha256(), NULL) != 1) {
            return admin_error(r, 400, "MDM08050", "bad challenge lifetime");
        }
        r->admin_ttl = ttl;
        mdm_hex(md, 32, hex);
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, "SET");
        mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_chal, hex);
        mdm_planb_fmt(&r->base.pb, "%lld", (long long) r->now);
        mdm_planb_str(&r->base.pb, "NX");
        mdm_planb_str(&r->base.pb, "EX");
        mdm_planb_fmt(&r->base.pb, "%ld", ttl);
        return plan_done(r, SST_ADMIN);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_REVOKE) {
        if (r->admin_arg == NULL ||
            norm_serial(r->admin_arg, r->serial, sizeof(r->serial)) != 0) {
            return admin_error(r, 400, "MDM08050",
                               "a serial number is 1-40 hex digits");
        }
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
        mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_REVOKE);
        mdm_planb_str(&r->base.pb, "2");
        mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_cert, r->serial);
        mdm_planb_str(&r->base.pb, ca->k_revoked);
        mdm_planb_str(&r->base.pb, r->serial);
        return plan_done(r, SST_ADMIN);
    }
    return admin_error(r, 400, "MDM08050", "unknown SCEP admin operation");
}

static mdm_step_t
admin_feed(mdm_scep_req_t *r, const redisReply *rep)
{
    if (r->admin_op == MDM_SCEP_ADMIN_CHALLENGE) {
        if (rep->type == REDIS_REPLY_NIL) {
            return admin_error(r, 409, "MDM08052",
                               "this challenge exists already");
        }
        if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "OK") != 0) {
            return storage_failed(r, rep);
        }
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM08031",
                   "SCEP one-time challenge created (valid %ld s)",
                   r->admin_ttl);
        return mdm_tx_json(&r->base, 201,
                           json_pack("{s:s,s:I}", "challenge", r->admin_arg,
                                     "ttl", (json_int_t) r->admin_ttl));
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return storage_failed(r, rep);
    }
    if (strcmp(rep->element[0]->str, "UNKNOWN") == 0) {
        return admin_error(r, 404, "MDM08051",
                           "no certificate with serial %s was issued here",
                           r->serial);
    }
    if (strcmp(rep->element[0]->str, "OK") != 0) {
        return storage_failed(r, rep);
    }
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM08032",
               "SCEP certificate %s revoked", r->serial);
    return mdm_tx_json(
        &r->base, 200,
        json_pack("{s:s,s:b}", "serial", r->serial, "revoked", 1));
}

/* ---------------------------------------------------------------- */
/* start / feed                                                     */

static mdm_step_t
start(mdm_scep_req_t *r)
{
    mdm_buf_t b = {0};

    if (r->state != SST_NONE) {
        return MDM_STEP_REDIS; /* started already */
    }
    if (r->now == 0) {
        r->now = time(NULL);
    }
    if (!r->ca->finished) {
        return mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM09002",
                             "SCEP configuration not finished");
    }
    switch (r->op) {
    case OP_CAPS:
        if (mdm_buf_set(&b, r->ca->caps, strlen(r->ca->caps)) != 0) {
            return mdm_tx_oom(&r->base);
        }
        return mdm_tx_reply(&r->base, 200, "text/plain", &b);
    case OP_CACERT:
        if (mdm_buf_set(&b, r->ca->cacert.ptr, r->ca->cacert.len) != 0) {
            return mdm_tx_oom(&r->base);
        }
        return mdm_tx_reply(&r->base, 200, r->ca->cacert_ctype, &b);
    case OP_ADMIN:
        return admin_start(r);
    default:
        return pki_start(r);
    }
}

static mdm_step_t
scep_start(mdm_tx_t *tx)
{
    mdm_scep_req_t *r = (mdm_scep_req_t *) tx;
    mdm_step_t step;

    ERR_set_mark();
    step = start(r);
    ERR_pop_to_mark();
    /* the borrowed message is not read after start */
    r->msg = NULL;
    r->msg_len = 0;
    return step;
}

static mdm_step_t
found_cert(mdm_scep_req_t *r, const redisReply *rep)
{
    const unsigned char *p = (const unsigned char *) rep->str;
    X509 *x = d2i_X509(NULL, &p, (long) rep->len);
    mdm_step_t step;

    if (x == NULL || p != (const unsigned char *) rep->str + rep->len) {
        X509_free(x);
        return storage_failed(r, rep);
    }
    X509_free(r->cert);
    r->cert = x;
    if (serial_hex(X509_get0_serialNumber(x), r->serial, sizeof(r->serial)) ==
        0) {
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
    }
    step = reply_certrep(r, PKI_SUCCESS, 0);
    if (r->base.resp.status == 200) {
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM08030",
                   "SCEP %s (transaction %s): certificate %s sent",
                   msg_type_name(r->msg_type), r->txid, r->serial);
    }
    return step;
}

static mdm_step_t
feed(mdm_scep_req_t *r, struct redisReply *const *replies, size_t n)
{
    const redisReply *rep = (replies && n > 0) ? replies[0] : NULL;
    const char *s;
    mdm_step_t step;

    if (r->state == SST_NONE) {
        return MDM_STEP_DONE;
    }
    if (rep == NULL) {
        return storage_failed(r, NULL);
    }
    if (mdm_tx_noscript(&r->base, rep)) {
        return MDM_STEP_REDIS;
    }
    if (r->state == SST_ADMIN) {
        return admin_feed(r, rep);
    }
    if (r->state == SST_LOOKUP) {
        if (rep->type == REDIS_REPLY_NIL) {
            if (r->msg_type == MT_CERTPOLL) {
                return fail_rep(r, FAIL_BADCERTID, "MDM08022",
                                "no certificate was issued in this "
                                "transaction");
            }
            return fail_rep(r, FAIL_BADCERTID, "MDM08021",
                            "no certificate with serial %s was issued here",
                            r->serial);
        }
        if (rep->type != REDIS_REPLY_STRING) {
            return storage_failed(r, rep);
        }
        return found_cert(r, rep);
    }
    /* SST_ISSUE */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return storage_failed(r, rep);
    }
    s = rep->element[0]->str;
    if (strcmp(s, "NOCHALLENGE") == 0) {
        return fail_rep(r, FAIL_BADREQUEST, "MDM08017",
                        "challenge unknown, expired or already used");
    }
    if (strcmp(s, "REVOKED") == 0) {
        return fail_rep(r, FAIL_BADREQUEST, "MDM08020",
                        "RenewalReq signed by revoked certificate %s",
                        r->renew_serial);
    }
    if (strcmp(s, "OK") != 0) {
        return storage_failed(r, rep);
    }
    step = reply_certrep(r, PKI_SUCCESS, 0);
    if (r->base.resp.status == 200) {
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM08030",
                   "SCEP %s (transaction %s): issued certificate %s to \"%s\"",
                   msg_type_name(r->msg_type), r->txid, r->serial,
                   r->subject ? r->subject : "");
    }
    return step;
}

/*
 * The entry points bracket their work with ERR_set_mark() and
 * ERR_pop_to_mark(), as mdm_identity does: OpenSSL errors raised by a
 * refused message must not reach unrelated code on the same thread (the
 * web server's TLS), and the caller's own errors stay put.
 */
static mdm_step_t
scep_feed(mdm_tx_t *tx, struct redisReply *const *replies, size_t n)
{
    mdm_step_t step;

    ERR_set_mark();
    step = feed((mdm_scep_req_t *) tx, replies, n);
    ERR_pop_to_mark();
    return step;
}

mdm_step_t
mdm_scep_req_start(mdm_scep_req_t *r)
{
    mdm_step_t step = mdm_tx_start(&r->base);

    /* the borrowed message is not read after start */
    r->msg = NULL;
    r->msg_len = 0;
    return step;
}

mdm_step_t
mdm_scep_req_feed(mdm_scep_req_t *r, struct redisReply *const *replies,
                  size_t n)
{
    return mdm_tx_feed(&r->base, replies, n);
}

/* ---------------------------------------------------------------- */

int
mdm_scep_ca_crl(const mdm_scep_ca_t *ca, X509 **cert, EVP_PKEY **key,
                const char **k_cert, const char **k_revoked)
{
    if (ca == NULL || !ca->finished) {
        return -1;
    }
    *cert = ca->ca;
    *key = ca->ca_key;
    *k_cert = ca->k_cert;
    *k_revoked = ca->k_revoked;
    return 0;
}
