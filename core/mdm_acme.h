/*
 * ACME (RFC 8555) with device attestation (draft-ietf-acme-device-attest,
 * the device-attest-01 challenge of Apple's com.apple.security.acme
 * payload), internal to libmdm. The files, each calling only files below:
 *
 *   mdm_acme.c         the ACME transaction type: routes, one Lua script
 *                      per POST (lua/acme.lua), the JSON answers
 *     mdm_acme_issue.c   signing the finalize CSR with the SCEP CA
 *     mdm_acme_attest.c  the "apple" attestation statement: CBOR, x5c
 *                        chain, nonce / serial / UDID extensions
 *     mdm_acme_jws.c     base64url, JWS (flattened JSON), JWK, RFC 7638
 *                        thumbprints
 *     mdm_acme_conf.c    the acme.* options
 *       mdm_cbor.c         the strict CBOR decoder
 *
 * Options (mdm_conf_set("acme.NAME")):
 *   url        the external URL of the ACME location
 *              ("https://mdm.example.com/acme"): the directory, every
 *              resource URL and every JWS "url" are made from it
 *   attest_ca  PEM file of the attestation roots (Apple's Enterprise
 *              Attestation Root CA); required
 *   order_ttl  seconds an order and its authorization live (default 86400)
 *   cert_ttl   seconds an issued certificate stays downloadable
 *              (default 7776000, 90 days)
 * Certificates are signed by the location's SCEP CA (scep.* options).
 */
#ifndef MDM_ACME_H
#define MDM_ACME_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define MDM_ACME_NONCE_TTL   3600
#define MDM_ACME_MAX_TOKEN   64
#define MDM_ACME_MAX_IDENT   128
#define MDM_ACME_MAX_PAYLOAD 65536

struct mdm_scep_ca_s;

typedef struct mdm_acme_conf_s {
    char *url;
    char *attest_file;
    long order_ttl;
    long cert_ttl;
    /* mdm_acme_conf_finish() */
    X509_STORE *roots;
    char *path; /* the path part of url ("/acme"), no trailing '/' */
} mdm_acme_conf_t;

/* ---- mdm_acme.c ---- */

struct mdm_conf_s;
struct mdm_req_s;
/** The ACME transaction (mdm_req_new_acme_http()); path copied. */
struct mdm_req_s *mdm_acme_new(const struct mdm_conf_s *c, const char *method,
                               size_t mlen, const char *path, size_t plen);

/* ---- mdm_acme_conf.c ---- */

mdm_acme_conf_t *mdm_acme_conf_new(void);
void mdm_acme_conf_free(mdm_acme_conf_t *a);
/** One option by name (without "acme."); -1 with err naming it. */
int mdm_acme_conf_set(mdm_acme_conf_t *a, const char *name, const char *value,
                      char *err, size_t errlen);
/** Load the roots; -1 with err naming the option. */
int mdm_acme_conf_finish(mdm_acme_conf_t *a, char *err, size_t errlen);
/** Roots of a PEM file into a new store; NULL with err. */
X509_STORE *mdm_acme_load_roots(const char *file, char *err, size_t errlen);

/* ---- mdm_acme_jws.c ---- */

/** Strict base64url without padding (RFC 7515 §2): 0 with *out malloc'd
 * (NUL-terminated, not counted in *outlen); -1 bad text, -2 no memory. */
int mdm_b64url_decode(const char *in, size_t len, unsigned char **out,
                      size_t *outlen);
/** base64url without padding, malloc'd, NUL-terminated. */
char *mdm_b64url(const unsigned char *in, size_t len);

/* why a JWS is refused: the RFC 8555 error type it answers with */
typedef enum {
    MDM_JWS_OK = 0,
    MDM_JWS_MALFORMED, /* malformed */
    MDM_JWS_BADALG,    /* badSignatureAlgorithm */
    MDM_JWS_BADSIG,    /* unauthorized: the signature does not verify */
    MDM_JWS_BADKEY,    /* badPublicKey */
    MDM_JWS_BADNONCE,  /* badNonce: no or malformed nonce */
    MDM_JWS_URL,       /* unauthorized: "url" is not this resource */
    MDM_JWS_NOMEM
} mdm_jws_err_t;

typedef struct {
    char alg[8]; /* ES256, RS256 */
    char *nonce; /* as sent (base64url) */
    char *url;
    char *kid;              /* NULL when the key came as "jwk" */
    char *jwk;              /* the key's RFC 7638 members as JSON (canonical) */
    char tp[48];            /* RFC 7638 SHA-256 thumbprint, base64url */
    unsigned char *payload; /* decoded, NUL-terminated; "" for POST-as-GET */
    size_t payload_len;
    EVP_PKEY *key;
} mdm_jws_t;

/**
 * Parse a flattened JSON JWS (RFC 7515 §7.2.2, exactly "protected",
 * "payload", "signature") and its protected header. With a "kid", the key
 * is the one kid_jwk() finds in it (mdm_acme.c makes account URLs that
 * carry their key); the signature is verified. *why names the fault in a
 * static text.
 */
mdm_jws_err_t mdm_jws_parse(const unsigned char *body, size_t len,
                            const char *kid_prefix, mdm_jws_t *jws,
                            const char **why);
void mdm_jws_free(mdm_jws_t *jws);
/** The key of a JWK JSON object text; its canonical members and
 * thumbprint into jws (jwk, tp, key). */
mdm_jws_err_t mdm_jws_key(const char *jwk_json, size_t len, mdm_jws_t *jws,
                          const char **why);

/* ---- mdm_acme_attest.c ---- */

typedef struct {
    unsigned char
        nonce[64]; /* the freshness code (1.2.840.113635.100.8.11.1) */
    size_t nonce_len;
    char serial[MDM_ACME_MAX_IDENT + 1]; /* 1.2.840.113635.100.8.9.1 */
    char udid[MDM_ACME_MAX_IDENT + 1];   /* 1.2.840.113635.100.8.9.2 */
    char keyhash[65]; /* SHA-256 (hex) of the attested key's SPKI DER */
} mdm_attest_t;

typedef enum {
    MDM_ATTEST_OK = 0,
    MDM_ATTEST_MALFORMED, /* not an "apple" attestation object */
    MDM_ATTEST_UNTRUSTED, /* the x5c chain does not reach a root */
    MDM_ATTEST_NOMEM
} mdm_attest_err_t;

/**
 * Read the attestation object (CBOR, already base64url-decoded) and, when
 * roots is not NULL, verify its x5c chain against them at time now (0:
 * the current time). The facts go to out; *why names the fault.
 */
mdm_attest_err_t mdm_attest_verify(const unsigned char *att, size_t len,
                                   X509_STORE *roots, long long now,
                                   mdm_attest_t *out, const char **why);

/* ---- mdm_acme_issue.c ---- */

/**
 * Sign a certificate for the DER CSR (already verified) with the SCEP CA:
 * its subject (or CN=ident when empty), its key, its subjectAltName with
 * the permanent identifier (RFC 4043) ident added, clientAuth. The PEM of
 * the certificate followed by the CA goes to *pem (OPENSSL_free()), its serial
 * (hex) to serial.
 */
int mdm_acme_issue(const struct mdm_scep_ca_s *ca, X509_REQ *csr,
                   const char *ident, char **pem, char serial[48]);
/** Parse a DER CSR and verify its self-signature; the SHA-256 (hex) of
 * its SPKI into keyhash. NULL with *why. */
X509_REQ *mdm_acme_csr(const unsigned char *der, size_t len, char keyhash[65],
                       const char **why);
/** SHA-256 (hex) of a key's SubjectPublicKeyInfo DER; -1 on failure. */
int mdm_acme_spki_hash(X509_PUBKEY *pk, char out[65]);

#endif
