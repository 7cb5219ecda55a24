/*
 * mdm_identity: the certificate a TLS layer hands over (PEM or DER), or a
 * trusted TLS-terminating proxy puts in a header (RFC 9440 Client-Cert,
 * or URL-escaped PEM as nginx's $ssl_client_escaped_cert).
 */
#include "mdm_identity_int.h"
#include "mdm_text.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define MDM_PEM_BEGIN     "-----BEGIN"
#define MDM_PEM_BEGIN_LEN (sizeof(MDM_PEM_BEGIN) - 1)

static int
mdm_is_pem(const unsigned char *data, size_t len)
{
    return len >= MDM_PEM_BEGIN_LEN &&
           memcmp(data, MDM_PEM_BEGIN, MDM_PEM_BEGIN_LEN) == 0;
}

/* PEM to DER without decoding the certificate (see mdm_id_parse_cached). */
static mdm_id_rc_t
mdm_pem_to_der(const unsigned char *data, size_t len, unsigned char **der,
               long *derlen, const char **why)
{
    BIO *bio;
    int ok;

    if (len > INT_MAX) {
        mdm_set_why(why, "certificate too large");
        return MDM_ID_ERR_DECODE;
    }
    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    ok = PEM_bytes_read_bio(der, derlen, NULL, PEM_STRING_X509, bio,
                            mdm_id_no_password, NULL);
    BIO_free(bio);
    if (!ok) {
        mdm_set_why(why, "invalid PEM certificate");
        return MDM_ID_ERR_DECODE;
    }
    return MDM_ID_OK;
}

static mdm_id_rc_t
mdm_pem_cached(mdm_verifier_t *v, const unsigned char *data, size_t len,
               X509 **cert, char *hash, const char **why)
{
    unsigned char *der = NULL;
    long derlen = 0;
    mdm_id_rc_t rc = mdm_pem_to_der(data, len, &der, &derlen, why);

    if (rc == MDM_ID_OK) {
        rc =
            mdm_id_parse_cached(v, der, (size_t) derlen, cert, hash, NULL, why);
    }
    OPENSSL_free(der);
    return rc;
}

static mdm_id_rc_t
mdm_cert_impl(mdm_verifier_t *v, const unsigned char *data, size_t len,
              X509 **cert, char *hash, const char **why)
{
    mdm_id_rc_t rc;

    *cert = NULL;
    if (data == NULL || len == 0) {
        mdm_set_why(why, "empty certificate");
        return MDM_ID_ERR_DECODE;
    }
    ERR_set_mark();
    if (mdm_is_pem(data, len)) {
        rc = mdm_pem_cached(v, data, len, cert, hash, why);
    } else {
        rc = mdm_id_parse_cached(v, data, len, cert, hash, NULL, why);
    }
    if (rc == MDM_ID_OK) {
        mdm_set_why(why, "ok");
    }
    ERR_pop_to_mark();
    return rc;
}

mdm_id_rc_t
mdm_identity_from_cert(const unsigned char *data, size_t len, X509 **cert,
                       const char **why)
{
    return mdm_cert_impl(NULL, data, len, cert, NULL, why);
}

mdm_id_rc_t
mdm_verifier_cert(mdm_verifier_t *v, const unsigned char *data, size_t len,
                  X509 **cert, char hash[65], const char **why)
{
    return mdm_cert_impl(v, data, len, cert, hash, why);
}

/**
 * Percent-decoding as nginx's $ssl_client_escaped_cert produces it. '+' is
 * kept as is: it is a base64 character in the PEM, not an escaped space.
 * On success *out is malloc'd and owned by the caller.
 */
static mdm_id_rc_t
mdm_percent_decode(const char *in, size_t len, unsigned char **out,
                   size_t *outlen, const char **why)
{
    unsigned char *buf = malloc(len + 1);

    if (buf == NULL) {
        mdm_set_why(why, "out of memory");
        return MDM_ID_ERR_NOMEM;
    }
    if (mdm_pct_decode(in, len, buf, outlen, 1) != 0) {
        free(buf);
        mdm_set_why(why, "invalid percent-encoding");
        return MDM_ID_ERR_DECODE;
    }
    *out = buf;
    return MDM_ID_OK;
}

static mdm_id_rc_t
mdm_header_impl(mdm_verifier_t *v, const char *value, size_t len, X509 **cert,
                char *hash, const char **why)
{
    unsigned char *buf = NULL;
    size_t buflen = 0;
    mdm_id_rc_t rc;

    *cert = NULL;
    if (value == NULL) {
        len = 0;
    }
    /* optional whitespace around a field value is not part of it */
    while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    if (len == 0) {
        mdm_set_why(why, "empty certificate header");
        return MDM_ID_ERR_DECODE;
    }

    ERR_set_mark();
    if (value[0] == ':') {
        /* RFC 9440: an sf-binary, base64 between colons, no whitespace */
        if (len < 3 || value[len - 1] != ':') {
            rc = MDM_ID_ERR_DECODE;
            mdm_set_why(why, "RFC 9440 value not enclosed in colons");
            goto done;
        }
        rc = mdm_id_b64_rc(mdm_b64_decode(value + 1, len - 2, 0, &buf, &buflen),
                           len - 2, why);
        if (rc == MDM_ID_OK) {
            rc = mdm_id_parse_cached(v, buf, buflen, cert, hash, NULL, why);
        }
    } else {
        rc = mdm_percent_decode(value, len, &buf, &buflen, why);
        if (rc == MDM_ID_OK) {
            if (mdm_is_pem(buf, buflen)) {
                rc = mdm_pem_cached(v, buf, buflen, cert, hash, why);
            } else {
                rc = MDM_ID_ERR_DECODE;
                mdm_set_why(why, "certificate header is not PEM");
            }
        }
    }
    if (rc == MDM_ID_OK) {
        mdm_set_why(why, "ok");
    }

done:
    free(buf);
    ERR_pop_to_mark();
    return rc;
}

mdm_id_rc_t
mdm_identity_from_header(const char *value, size_t len, X509 **cert,
                         const char **why)
{
    return mdm_header_impl(NULL, value, len, cert, NULL, why);
}

mdm_id_rc_t
mdm_verifier_header(mdm_verifier_t *v, const char *value, size_t len,
                    X509 **cert, char hash[65], const char **why)
{
    return mdm_header_impl(v, value, len, cert, hash, why);
}
