/*
 * libFuzzer target for the identity parsers of core/mdm_identity.c.
 *
 * Input: byte 0 selects the parser (mod 3).
 *   0: Mdm-Signature. Bytes 1-2 are the big-endian length of the header
 *      value (clamped to what is left), then the header, then the body.
 *   1: proxy certificate header (RFC 9440 or URL-escaped PEM).
 *   2: certificate from the TLS layer (PEM or DER).
 * Seeds in t/fuzz/corpus/signature/ follow this layout.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "mdm_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
mdm_fuzz_use(X509 *x)
{
    char hex[65];
    char *s;

    /* the accessors the servers call on whatever was accepted */
    if (mdm_cert_sha256_hex(x, hex) != 0) {
        abort();
    }
    s = mdm_cert_subject(x);
    free(s);
    X509_free(x);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    X509 *x = NULL;
    mdm_id_rc_t rc;
    size_t hlen;

    if (size < 1) {
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        if (size < 3) {
            return 0;
        }
        hlen = (size_t) data[1] << 8 | data[2];
        if (hlen > size - 3) {
            hlen = size - 3;
        }
        rc = mdm_identity_from_signature((const char *) data + 3, hlen,
                                         data + 3 + hlen, size - 3 - hlen, &x,
                                         &why);
        break;
    case 1:
        rc = mdm_identity_from_header((const char *) data + 1, size - 1, &x,
                                      &why);
        break;
    default:
        rc = mdm_identity_from_cert(data + 1, size - 1, &x, &why);
        break;
    }

    /* contract: a certificate exactly on success, a reason always, and
     * nothing left on the OpenSSL error queue */
    if ((rc == MDM_ID_OK) != (x != NULL) || why == NULL ||
        ERR_peek_error() != 0) {
        abort();
    }
    (void) mdm_id_rc_name(rc);
    if (x != NULL) {
        mdm_fuzz_use(x);
    }
    return 0;
}
