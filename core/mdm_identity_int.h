/*
 * Private to the device identity files (mdm_identity_*.c): the verifier
 * structure and what the files share. Layers, each file calling only
 * mdm_identity_certs.c (and mdm_b64.c, mdm_der.c):
 *
 *   mdm_identity_sig.c      the Mdm-Signature header (CMS)
 *   mdm_identity_tls.c      TLS client certificate, proxy headers
 *   mdm_identity_verify.c   the verifier: chain check and its cache
 *   mdm_identity_certs.c    one certificate through the decoded-certificate
 *                           cache; its SHA-256 and subject
 *
 * Every public entry point brackets its work with ERR_set_mark() and
 * ERR_pop_to_mark(): OpenSSL errors raised by a refused input must not be
 * picked up later by unrelated code (the web server's own TLS stack reads
 * the same per-thread queue), and errors queued by the caller stay put.
 */
#ifndef MDM_IDENTITY_INT_H
#define MDM_IDENTITY_INT_H

#include "mdm_b64.h"
#include "mdm_identity.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

/* Probe window of the caches: small, so that a lookup stays cheap. */
#define MDM_CACHE_PROBE 8

/* A successful chain check, keyed by the certificate's SHA-256. */
typedef struct {
    unsigned char key[32];
    time_t verified_at;
    /* earliest notAfter of the whole verified chain */
    time_t not_after;
    int used;
} mdm_cache_entry_t;

/*
 * A decoded certificate, keyed by the bytes as received: a fast 64-bit
 * hash of them picks the slot, the bytes themselves (kept) decide. Not a
 * cryptographic hash: nothing is trusted on it, and the SHA-256 over a
 * ~1 KB certificate cost ~20,000 instructions per request.
 */
typedef struct {
    uint64_t key;       /* mdm_id_fast_hash() of der */
    unsigned char *der; /* malloc'd copy of the bytes as received */
    size_t der_len;
    X509 *x;
    char *subject; /* RFC 2253, printed once (malloc'd) */
    time_t used;
    char hash[65]; /* SHA-256 of the canonical DER: the binding key */
} mdm_cert_entry_t;

struct mdm_verifier_s {
    X509_STORE *store;
    mdm_cert_entry_t *certs; /* decoded certificates (mdm_id_parse_cached) */
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
    unsigned long direct; /* signatures verified without CMS_verify() */
};

static inline void
mdm_set_why(const char **why, const char *msg)
{
    if (why != NULL) {
        *why = msg;
    }
}

/** The identity result of mdm_b64_decode()'s rc on len characters. */
static inline mdm_id_rc_t
mdm_id_b64_rc(int rc, size_t len, const char **why)
{
    if (rc == MDM_B64_NOMEM) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    if (rc != 0) {
        mdm_set_why(why, len == 0 ? "empty base64" : "invalid base64");
        return MDM_ID_ERR_DECODE;
    }
    return MDM_ID_OK;
}

/** A pem_password_cb that never prompts: an "encrypted" PEM block fails. */
int mdm_id_no_password(char *buf, int size, int rwflag, void *u);

/**
 * d2i_X509 of der[0..len) (the whole of it) through v's cache of decoded
 * certificates when v has one (v may be NULL). On MDM_ID_OK *cert is a
 * new reference (X509_free()) and hash, when not NULL, has room for 65
 * and receives the hex SHA-256 of the certificate's canonical DER.
 */
mdm_id_rc_t mdm_id_parse_cached(mdm_verifier_t *v, const unsigned char *der,
                                size_t len, X509 **cert, char *hash,
                                char **subject, const char **why);

#endif
