/*
 * The SCEP CA's certificate revocation list: built from the revoked
 * serials kept in Redis, signed by the CA key, DER (application/pkix-crl).
 */
#include "mdm_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int
crl_add(X509_CRL *crl, const char *serial_hex, time_t when)
{
    X509_REVOKED *rv = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    ASN1_TIME *t = NULL;
    int ok = 0;

    if (rv && BN_hex2bn(&bn, serial_hex) == (int) strlen(serial_hex) &&
        (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
        (t = ASN1_TIME_set(NULL, when)) != NULL &&
        X509_REVOKED_set_serialNumber(rv, sn) == 1 &&
        X509_REVOKED_set_revocationDate(rv, t) == 1 &&
        X509_CRL_add0_revoked(crl, rv) == 1) {
        rv = NULL; /* the CRL owns it */
        ok = 1;
    }
    X509_REVOKED_free(rv);
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(t);
    BN_free(bn);
    return ok;
}

int
mdm_crl_build(X509 *issuer, EVP_PKEY *key, char *const *serials,
              const time_t *times, size_t n, time_t now, long days,
              mdm_buf_t *out)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = NULL, *next = NULL;
    ASN1_INTEGER *num = NULL;
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    unsigned char *der = NULL;
    size_t i;
    int len, ok = 0;

    if (crl == NULL || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1 ||
        (last = ASN1_TIME_set(NULL, now)) == NULL ||
        (next = ASN1_TIME_set(NULL, now + days * 86400)) == NULL ||
        X509_CRL_set1_lastUpdate(crl, last) != 1 ||
        X509_CRL_set1_nextUpdate(crl, next) != 1) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (serials[i] && !crl_add(crl, serials[i], times[i])) {
            goto done;
        }
    }
    /* the CRL number only has to grow: the signing time does */
    num = ASN1_INTEGER_new();
    if (num == NULL || ASN1_INTEGER_set_int64(num, (int64_t) now) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1) {
        goto done;
    }
    X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
    ext =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
    if (ext == NULL || X509_CRL_add_ext(crl, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        goto done;
    }
    X509_EXTENSION_free(ext);
    if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, key, EVP_sha256()) <= 0 ||
        (len = i2d_X509_CRL(crl, &der)) <= 0) {
        goto done;
    }
    ok = mdm_buf_set(out, der, (size_t) len) == 0;
done:
    OPENSSL_free(der);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return ok ? 0 : -1;
}
