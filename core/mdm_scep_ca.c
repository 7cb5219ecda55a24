/*
 * The SCEP CA's configuration (mdm_scep_ca_set(), one option at a time,
 * as the web servers read them) and its loading at mdm_scep_ca_finish():
 * the CA and RA certificates and keys (passphrases from files), the chain,
 * the challenge, the GetCACert and GetCACaps answers made once, the
 * legacy provider for single DES, the Redis key prefixes. Also what the
 * CRL needs of the CA (mdm_scep_ca_crl()).
 */
#include "mdm_scep_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

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
    ca->pending_ttl = MDM_SCEP_PENDING_TTL;
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
    free(ca->next_ca_file);
    free(ca->prefix);
    X509_free(ca->next_ca);
    mdm_buf_free(&ca->nextca);
    free(ca->k_pending);
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
        {"next_ca_cert", offsetof(mdm_scep_ca_t, next_ca_file)},
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
    if (strcmp(name, "approval") == 0) {
        if (strcmp(value, "manual") == 0) {
            ca->approval_manual = 1;
        } else if (strcmp(value, "auto") == 0) {
            ca->approval_manual = 0;
        } else {
            snprintf(err, errlen, "approval \"%s\": expected auto or manual",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "pending_ttl") == 0) {
        if (mdm_parse_long(value, 60, 90L * 86400, &ca->pending_ttl) != 0) {
            snprintf(err, errlen,
                     "pending_ttl \"%s\": expected seconds from 60 to %ld",
                     value, 90L * 86400);
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

/* next_ca_cert: the CA that follows this one, and the GetNextCACert
 * answer made once: a SignedData by the current CA (RFC 8894 4.7). */
static int
load_next_ca(mdm_scep_ca_t *ca, char *err, size_t errlen)
{
    STACK_OF(X509) * sk;
    int rc;

    ca->next_ca = load_cert("next_ca_cert", ca->next_ca_file, err, errlen);
    if (ca->next_ca == NULL) {
        return -1;
    }
    if (X509_check_ca(ca->next_ca) < 1) {
        snprintf(err, errlen, "next_ca_cert: \"%s\" is not a CA certificate",
                 ca->next_ca_file);
        return -1;
    }
    if (X509_cmp(ca->next_ca, ca->ca) == 0) {
        snprintf(err, errlen, "next_ca_cert: \"%s\" is the current ca_cert",
                 ca->next_ca_file);
        return -1;
    }
    sk = sk_X509_new_null();
    rc = sk != NULL && sk_X509_push(sk, ca->next_ca) &&
                 mdm_scep_signed_certs(ca, sk, &ca->nextca) == 0
             ? 0
             : -1;
    sk_X509_free(sk);
    if (rc != 0) {
        snprintf(err, errlen,
                 "next_ca_cert: cannot sign the GetNextCACert "
                 "answer with ca_key");
    }
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
        snprintf(err, errlen, "%s: required",
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
        if (mdm_scep_certs_only(all, &ca->cacert) != 0) {
            goto oom;
        }
        ca->cacert_ctype = "application/x-x509-ca-ra-cert";
    }
    if (ca->next_ca_file && load_next_ca(ca, err, errlen) != 0) {
        goto done;
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
             "SCEPStandard\n%s%s",
             ca->renewal ? "Renewal\n" : "",
             ca->next_ca ? "GetNextCACert\n" : "");
    if (asprintf(&ca->k_chal, "%s{scep}:chal:", ca->prefix) < 0 ||
        asprintf(&ca->k_cert, "%s{scep}:cert:", ca->prefix) < 0 ||
        asprintf(&ca->k_txn, "%s{scep}:txn:", ca->prefix) < 0 ||
        asprintf(&ca->k_issued, "%s{scep}:issued", ca->prefix) < 0 ||
        asprintf(&ca->k_revoked, "%s{scep}:revoked", ca->prefix) < 0 ||
        asprintf(&ca->k_pending, "%s{scep}:pending", ca->prefix) < 0) {
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
    if (mdm_scep_oids() == NULL) {
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

int
mdm_scep_ca_challenges(const mdm_scep_ca_t *ca, const char **k_chal, long *ttl)
{
    if (ca == NULL || !ca->finished || ca->challenge_mode != CH_DYNAMIC) {
        return -1;
    }
    *k_chal = ca->k_chal;
    *ttl = ca->challenge_ttl;
    return 0;
}
