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

#endif
