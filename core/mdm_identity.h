/*
 * mdm_identity: where the device certificate comes from (TLS client
 * certificate, Mdm-Signature header, trusted proxy header) and whether it
 * chains to the configured identity CA.
 *
 * Ownership: every X509 ** out-parameter receives a new reference that the
 * caller frees with X509_free(). mdm_verifier_t is thread-safe.
 */
#ifndef MDM_IDENTITY_H
#define MDM_IDENTITY_H

#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>

typedef enum {
    MDM_ID_OK = 0,
    MDM_ID_ERR_NOMEM,
    MDM_ID_ERR_DECODE,    /* bad base64 / PEM / DER / header syntax */
    MDM_ID_ERR_CMS,       /* not a detached CMS SignedData */
    MDM_ID_ERR_SIGNERS,   /* not exactly one signer (or no signer cert) */
    MDM_ID_ERR_SIGNATURE, /* signature does not verify over the body */
    MDM_ID_ERR_UNTRUSTED, /* no chain to the identity CA */
    MDM_ID_ERR_EXPIRED,   /* certificate (or chain) expired/not yet valid */
    MDM_ID_ERR_USAGE      /* not usable for clientAuth */
} mdm_id_rc_t;

/** Short static name for logs and $mdm_identity: "ok", "bad-signature"... */
const char *mdm_id_rc_name(mdm_id_rc_t rc);

/**
 * Mdm-Signature: b64 is the header value (standard base64; whitespace and
 * line breaks tolerated). body is the raw request body the device signed.
 * Accepts SHA-1 and SHA-256 (any digest OpenSSL verifies). On MDM_ID_OK
 * *signer is the single signer certificate. No chain check here.
 */
mdm_id_rc_t mdm_identity_from_signature(const char *b64, size_t b64len,
                                        const unsigned char *body,
                                        size_t bodylen, X509 **signer,
                                        const char **why);

/** A certificate handed over by the TLS layer: PEM or DER. */
mdm_id_rc_t mdm_identity_from_cert(const unsigned char *data, size_t len,
                                   X509 **cert, const char **why);

/**
 * A header from a trusted TLS-terminating proxy: RFC 9440 ":<base64 DER>:"
 * (Client-Cert), or URL-escaped PEM (nginx $ssl_client_escaped_cert).
 */
mdm_id_rc_t mdm_identity_from_header(const char *value, size_t len, X509 **cert,
                                     const char **why);

/** Lowercase hex SHA-256 of the DER encoding: out has room for 65 bytes. */
int mdm_cert_sha256_hex(X509 *cert, char out[65]);

/** One-line RFC 2253 subject, malloc'd (free()), NULL on failure. */
char *mdm_cert_subject(X509 *cert);

typedef struct mdm_verifier_s mdm_verifier_t;

/**
 * Load ca_file (PEM, any number of roots and intermediates). Successful
 * chain checks are cached by certificate SHA-256: at most cache_size
 * entries, each trusted for cache_ttl seconds (0 disables the cache).
 * Returns NULL and fills err on failure.
 */
mdm_verifier_t *mdm_verifier_new(const char *ca_file, size_t cache_size,
                                 unsigned cache_ttl, char *err, size_t errlen);
void mdm_verifier_free(mdm_verifier_t *v);

/**
 * Chain (against the CA file; intermediates from the file may be used),
 * validity at now, and clientAuth purpose. sha256_hex is the value from
 * mdm_cert_sha256_hex() (the cache key). A cache hit still refuses a
 * certificate past its notAfter.
 */
mdm_id_rc_t mdm_verifier_check(mdm_verifier_t *v, X509 *cert,
                               const char *sha256_hex, time_t now,
                               const char **why);

/**
 * Keep up to size decoded certificates (0 = none). OpenSSL 3.0 spends
 * about 100 us decoding one certificate, so a device polling with the same
 * certificate should not pay that on every request. Returns -1 on
 * allocation failure. Each entry costs one X509 (~2-3 KB).
 */
int mdm_verifier_set_cert_cache(mdm_verifier_t *v, size_t size);

/**
 * The same as mdm_identity_from_signature() / _from_cert() / _from_header()
 * but decoding certificates through v's certificate cache; hash receives
 * the lowercase hex SHA-256 of the certificate's DER.
 */
mdm_id_rc_t mdm_verifier_signature(mdm_verifier_t *v, const char *b64,
                                   size_t b64len, const unsigned char *body,
                                   size_t bodylen, X509 **signer, char hash[65],
                                   const char **why);

/**
 * mdm_verifier_signature(), and the signer's subject (RFC 2253, malloc'd,
 * the caller frees it) when it comes for free from the decoded-certificate
 * cache; *subject is NULL otherwise (then use mdm_cert_subject()).
 */
mdm_id_rc_t mdm_verifier_signature_ex(mdm_verifier_t *v, const char *b64,
                                      size_t b64len, const unsigned char *body,
                                      size_t bodylen, X509 **signer,
                                      char hash[65], char **subject,
                                      const char **why);
mdm_id_rc_t mdm_verifier_cert(mdm_verifier_t *v, const unsigned char *data,
                              size_t len, X509 **cert, char hash[65],
                              const char **why);
mdm_id_rc_t mdm_verifier_header(mdm_verifier_t *v, const char *value,
                                size_t len, X509 **cert, char hash[65],
                                const char **why);

/** Cache statistics, for tests and benchmarks. */
void mdm_verifier_stats(mdm_verifier_t *v, unsigned long *hits,
                        unsigned long *misses, size_t *entries);

/**
 * How many Mdm-Signatures v verified directly, from the DER of their one
 * SignerInfo, without OpenSSL's CMS decoding (the usual device shape;
 * anything else takes CMS_verify()). For tests and metrics.
 */
unsigned long mdm_verifier_direct(mdm_verifier_t *v);

#endif
