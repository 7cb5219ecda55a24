/*
 * mdm_identity: one certificate from its DER, through the verifier's
 * cache of decoded certificates, and what is read off a certificate (its
 * SHA-256, its subject). The bottom layer of the mdm_identity_*.c files.
 */
#include "mdm_identity_int.h"
#include "mdm_text.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>

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

int
mdm_id_no_password(char *buf, int size, int rwflag, void *u)
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

/* The subject of a certificate, RFC 2253 on one line (malloc'd). The
 * decoded-certificate cache keeps it with the certificate (printing it
 * costs ~14,000 instructions). */
static char *
subject_print(X509 *cert)
{
    BIO *bio;
    char *data, *s = NULL;
    long n;

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

char *
mdm_cert_subject(X509 *cert)
{
    return cert ? subject_print(cert) : NULL;
}

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
        free(v->certs[i].der);
        free(v->certs[i].subject);
    }
    free(v->certs);
    v->certs = c;
    v->certs_size = size;
    pthread_mutex_unlock(&v->lock);
    return 0;
}

/* SHA-256 fetched once: EVP_sha256() is fetched again on every use in
 * OpenSSL 3.0 (~12,000 instructions per request, callgrind). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* 64 bits of the bytes, 8 at a time (a multiply-xorshift mix). */
static uint64_t
fast_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;

    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

/**
 * d2i_X509 through the verifier's cache of decoded certificates (content
 * addressed: a hit is the same bytes). *cert is a new reference. hash,
 * when not NULL, receives the hex SHA-256 of the certificate's canonical
 * DER, whatever encoding arrived: it is the binding key, so one
 * certificate must have exactly one.
 */
mdm_id_rc_t
mdm_id_parse_cached(mdm_verifier_t *v, const unsigned char *der, size_t len,
                    X509 **cert, char *hash, char **subject, const char **why)
{
    unsigned char md[32];
    unsigned int n = 0;
    mdm_cert_entry_t *e, *slot = NULL;
    uint64_t key = 0;
    size_t i, home = 0;
    time_t now = time(NULL);
    unsigned char *copy;
    char canon[65], *subj = NULL;
    mdm_id_rc_t rc;

    if (len == 0) {
        mdm_set_why(why, "empty certificate");
        return MDM_ID_ERR_DECODE;
    }
    if (v != NULL && v->certs != NULL) {
        key = fast_hash(der, len);
        home = (size_t) (key % v->certs_size);
        pthread_mutex_lock(&v->lock);
        for (i = 0; i < MDM_CACHE_PROBE && i < v->certs_size; i++) {
            e = &v->certs[(home + i) % v->certs_size];
            if (e->x && e->key == key && e->der_len == len &&
                memcmp(e->der, der, len) == 0 && X509_up_ref(e->x) == 1) {
                e->used = now;
                *cert = e->x;
                if (hash) {
                    memcpy(hash, e->hash, sizeof(e->hash));
                }
                if (subject) {
                    *subject = e->subject ? strdup(e->subject) : NULL;
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

        if (elen > 0 && (size_t) elen == len && memcmp(enc, der, len) == 0 &&
            EVP_Digest(der, len, md, &n, sha256(), NULL) == 1 && n == 32) {
            mdm_tohex(md, sizeof(md), canon);
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
    if (v == NULL || v->certs == NULL || (copy = malloc(len)) == NULL) {
        return MDM_ID_OK;
    }
    memcpy(copy, der, len);
    subj = subject_print(*cert);
    if (subject && subj) {
        *subject = strdup(subj);
    }
    pthread_mutex_lock(&v->lock);
    for (i = 0; i < MDM_CACHE_PROBE && i < v->certs_size; i++) {
        e = &v->certs[(home + i) % v->certs_size];
        if (e->x == NULL) {
            slot = e;
            break;
        }
        if (e->key == key && e->der_len == len &&
            memcmp(e->der, der, len) == 0) {
            slot = NULL; /* another thread was faster */
            break;
        }
        if (slot == NULL || e->used < slot->used) {
            slot = e;
        }
    }
    if (slot && X509_up_ref(*cert) == 1) {
        X509_free(slot->x);
        free(slot->der);
        free(slot->subject);
        slot->subject = subj;
        subj = NULL;
        slot->key = key;
        slot->der = copy;
        slot->der_len = len;
        memcpy(slot->hash, canon, sizeof(canon));
        slot->x = *cert;
        slot->used = now;
        copy = NULL;
    }
    pthread_mutex_unlock(&v->lock);
    free(copy);
    free(subj);
    return MDM_ID_OK;
}
