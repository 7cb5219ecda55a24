/*
 * A minimal DER reader for one job: lifting the certificate set out of a
 * CMS ContentInfo(SignedData), so that each certificate can be decoded
 * once and cached (OpenSSL 3.0 spends ~100 us decoding a certificate's
 * public key, five times one RSA-2048 verification).
 */
#ifndef MDM_DER_H
#define MDM_DER_H

#include <stddef.h>

#define MDM_CMS_MAX_CERTS 8

typedef struct {
    unsigned char *stripped; /* malloc'd: the ContentInfo minus the certs */
    size_t stripped_len;
    const unsigned char *cert[MDM_CMS_MAX_CERTS]; /* borrowed from input */
    size_t cert_len[MDM_CMS_MAX_CERTS];
    size_t ncerts;
} mdm_cms_split_t;

/**
 * Split a DER ContentInfo(SignedData). Returns 0 on success (free
 * out->stripped), -1 when the input is not definite-length DER of that
 * shape or has more than MDM_CMS_MAX_CERTS certificates: the caller then
 * decodes it whole. Nothing is validated beyond the framing; OpenSSL
 * parses both halves afterwards.
 */
int mdm_cms_split(const unsigned char *in, size_t len, mdm_cms_split_t *out);

/**
 * 1 when every digestAlgorithm of a DER ContentInfo(SignedData) is SHA-1
 * or SHA-2, 0 when one is anything else, -1 when the input is not
 * definite-length DER of that shape. (OpenSSL 3.0's CMS_verify() leaks
 * when it meets a digest it cannot fetch: such input never reaches it.)
 */
int mdm_cms_digests_ok(const unsigned char *in, size_t len);

/** A DER byte range, borrowed from the parsed input. */
typedef struct {
    const unsigned char *ptr;
    size_t len;
} mdm_der_span_t;

/**
 * What verifying a detached SignedData with one signer needs, read
 * straight from the DER (no OpenSSL structures): the common shape of a
 * device's Mdm-Signature. OIDs are their contents bytes.
 */
typedef struct {
    mdm_der_span_t cert[MDM_CMS_MAX_CERTS]; /* whole certificates */
    size_t ncerts;
    mdm_der_span_t econtent_type;  /* encapContentInfo eContentType */
    mdm_der_span_t issuer;         /* sid: issuer Name (whole element) */
    mdm_der_span_t serial;         /* sid: serialNumber (contents) */
    mdm_der_span_t digest_alg;     /* SignerInfo digestAlgorithm OID */
    mdm_der_span_t sig_alg;        /* signatureAlgorithm OID */
    mdm_der_span_t signed_attrs;   /* [0] IMPLICIT SET: whole element */
    mdm_der_span_t message_digest; /* the attribute's OCTET STRING */
    mdm_der_span_t content_type;   /* the attribute's OID */
    mdm_der_span_t signature;      /* contents of the OCTET STRING */
} mdm_cms_signed_t;

/**
 * Read a DER ContentInfo(SignedData) of that shape: certificates present,
 * no CRLs, a detached encapContentInfo, exactly one SignerInfo naming its
 * signer by issuer and serial number, algorithm parameters absent or
 * NULL, signed attributes with exactly one messageDigest and one
 * contentType. Returns 0, or -1 for anything else (the caller then takes
 * OpenSSL's CMS path, which decides). Checks framing and shape only, no
 * cryptography.
 */
int mdm_cms_parse_signed(const unsigned char *in, size_t len,
                         mdm_cms_signed_t *out);

/**
 * The issuer Name (whole element) and serialNumber (contents) of a DER
 * certificate, borrowed from in. 0, or -1 when in is not of that shape.
 */
int mdm_cert_issuer_serial(const unsigned char *in, size_t len,
                           mdm_der_span_t *issuer, mdm_der_span_t *serial);

#endif
