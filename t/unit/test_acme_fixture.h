/*
 * ACME test helpers: a test attestation PKI (root, intermediate, leaf
 * with Apple's freshness code, serial number and UDID extensions), a
 * small CBOR writer for attestation objects, and JWS signing (ES256,
 * RS256) as an ACME client does it.
 */
#ifndef TEST_ACME_FIXTURE_H
#define TEST_ACME_FIXTURE_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct {
    EVP_PKEY *root_key, *int_key;
    X509 *root, *inter;
} att_pki_t;

/** A root and an intermediate named after name; 0 on success. */
int att_pki_new(att_pki_t *p, const char *name);
void att_pki_free(att_pki_t *p);
/** The root as a PEM file at path. */
int att_pki_write_root(const att_pki_t *p, const char *path);

EVP_PKEY *key_ec(void);
EVP_PKEY *key_rsa(void);

/**
 * An "apple" attestation object (CBOR, malloc'd into *out) for the key
 * dev: its leaf carries nonce (nlen bytes), serial and udid (NULL: the
 * extension is left out).
 */
int att_obj(const att_pki_t *p, EVP_PKEY *dev, const unsigned char *nonce,
            size_t nlen, const char *serial, const char *udid,
            unsigned char **out, size_t *outlen);

/** SHA-256 of the text s. */
void sha256_str(const char *s, unsigned char md[32]);

/**
 * A flattened JWS (malloc'd JSON text) over payload, signed by key with
 * alg ("ES256" or "RS256"); kid NULL: the key goes as "jwk".
 */
char *jws_sign(EVP_PKEY *key, const char *alg, const char *nonce,
               const char *url, const char *kid, const char *payload);

/** A DER CSR for key (malloc'd into *der). */
int csr_der(EVP_PKEY *key, const char *cn, unsigned char **der, size_t *len);

#endif
