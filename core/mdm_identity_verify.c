/*
 * mdm_identity: the verifier, the chain check against the identity CA
 * file and the bounded cache of successful checks.
 */
#include "mdm_identity_int.h"
#include "mdm_text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

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
        x = PEM_read_bio_X509_AUX(bio, NULL, mdm_id_no_password, NULL);
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
    (void) mdm_verifier_set_cert_cache(v, 0); /* frees, cannot fail */
    X509_STORE_free(v->store);
    ASN1_TIME_free(v->epoch);
    pthread_mutex_destroy(&v->lock);
    free(v->cache);
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

unsigned long
mdm_verifier_direct(mdm_verifier_t *v)
{
    return v ? __atomic_load_n(&v->direct, __ATOMIC_RELAXED) : 0;
}
