/*
 * Issuing a certificate for a verified CSR with the CA key: a random
 * 128-bit serial, valid from a little before now for validity_days (never
 * beyond the CA), the CSR's subject and key, a client-authentication leaf's
 * extensions, the CRL distribution point when one is configured, and the
 * subjectAltName the device asked for.
 */
#include "mdm_scep_int.h"

#include <stdio.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    return ok;
}

/*
 * The CSR's SubjectPublicKeyInfo copied into x as it is: algorithm,
 * parameters and key bits. X509_set_pubkey() would encode the decoded key
 * and decode it again (OpenSSL 3 provider encoders and decoders, a tenth
 * of an issuance); the issued certificate only needs the bytes. Its
 * X509_get0_pubkey() stays NULL: nothing here asks for it.
 */
static int
copy_spki(X509 *x, const mdm_scep_spki_t *from)
{
    const unsigned char *pk = ASN1_STRING_get0_data(from->key);
    int pklen = ASN1_STRING_length(from->key);
    unsigned char *bits = NULL;
    const ASN1_OBJECT *obj;
    ASN1_OBJECT *o = NULL;
    const void *pval;
    void *v = NULL;
    int ptype;

    if (pklen <= 0) {
        return 0;
    }
    X509_ALGOR_get0(&obj, &ptype, &pval, from->algor);
    switch (ptype) {
    case V_ASN1_UNDEF:
    case V_ASN1_NULL:
        break;
    case V_ASN1_OBJECT: /* an EC key's named curve */
        if ((v = OBJ_dup(pval)) == NULL) {
            return 0;
        }
        break;
    case V_ASN1_BOOLEAN:
        return 0; /* no key algorithm has one */
    default:      /* explicit EC parameters... held as a string */
        if ((v = ASN1_STRING_dup(pval)) == NULL) {
            return 0;
        }
        break;
    }
    if ((o = OBJ_dup(obj)) == NULL ||
        (bits = OPENSSL_memdup(pk, (size_t) pklen)) == NULL ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), o, ptype, v, bits,
                               pklen) != 1) {
        OPENSSL_free(bits);
        ASN1_OBJECT_free(o);
        if (ptype == V_ASN1_OBJECT) {
            ASN1_OBJECT_free(v);
        } else {
            ASN1_STRING_free(v);
        }
        return 0;
    }
    return 1;
}

/* The extensions the request asks for (X509_REQ_get_extensions()):
 * none is an empty stack, NULL unreadable. */
static STACK_OF(X509_EXTENSION) * csr_extensions(const mdm_scep_csr_t *csr)
{
    const STACK_OF(X509_ATTRIBUTE) *attrs = csr->der->info->attributes;
    const ASN1_TYPE *t = NULL;
    const unsigned char *p;
    int i;

    i = X509at_get_attr_by_NID(attrs, NID_ext_req, -1);
    if (i < 0) {
        i = X509at_get_attr_by_NID(attrs, NID_ms_ext_req, -1);
    }
    if (i >= 0) {
        t = X509_ATTRIBUTE_get0_type(X509at_get_attr(attrs, i), 0);
    }
    if (t == NULL) {
        return sk_X509_EXTENSION_new_null();
    }
    if (t->type != V_ASN1_SEQUENCE) {
        return NULL;
    }
    p = ASN1_STRING_get0_data(t->value.sequence);
    return (STACK_OF(X509_EXTENSION) *) ASN1_item_d2i(
        NULL, &p, ASN1_STRING_length(t->value.sequence),
        ASN1_ITEM_rptr(X509_EXTENSIONS));
}

/* where relying parties find the CRL (GET ?operation=GetCRL, or a copy) */
int
mdm_scep_add_crl_dp(X509 *x, X509V3_CTX *ctx, const char *url)
{
    char v[1100];

    snprintf(v, sizeof(v), "URI:%s", url);
    return add_ext(x, ctx, NID_crl_distribution_points, v);
}

BIGNUM *
mdm_scep_serial_new(unsigned char top_mask)
{
    unsigned char rnd[16];
    BIGNUM *bn = NULL;

    do {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            BN_free(bn);
            return NULL;
        }
        rnd[0] &= top_mask;
        BN_free(bn);
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    } while (bn != NULL && BN_is_zero(bn));
    return bn;
}

int
mdm_scep_cert_frame(X509 *x, const mdm_scep_ca_t *ca, const BIGNUM *serial,
                    const X509_NAME *subject, time_t now, X509V3_CTX *ctx)
{
    ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(serial, NULL);
    int ok = 0;

    if (sn == NULL || X509_set_version(x, 2) != 1 ||
        X509_set_serialNumber(x, sn) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->ca)) != 1 ||
        X509_set_subject_name(x, subject) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -MDM_SCEP_SKEW, &now) ==
            NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int) ca->validity_days, 0,
                         &now) == NULL) {
        goto done;
    }
    /* never beyond the CA itself: the chain would be invalid sooner */
    if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca->ca)) >
            0 &&
        X509_set1_notAfter(x, X509_get0_notAfter(ca->ca)) != 1) {
        goto done;
    }
    X509V3_set_ctx(ctx, ca->ca, x, NULL, NULL, 0);
    ok = add_ext(x, ctx, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x, ctx, NID_key_usage, "critical,digitalSignature") &&
         add_ext(x, ctx, NID_ext_key_usage, "clientAuth") &&
         add_ext(x, ctx, NID_subject_key_identifier, "hash") &&
         add_ext(x, ctx, NID_authority_key_identifier, "keyid,issuer");
done:
    ASN1_INTEGER_free(sn);
    return ok;
}

/* Sign the certificate for csr into r->cert. */
int
mdm_scep_issue(mdm_scep_req_t *r, const mdm_scep_csr_t *csr)
{
    const mdm_scep_ca_t *ca = r->ca;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509V3_CTX ctx;
    BIGNUM *bn = NULL;
    X509 *x = NULL;
    X509_EXTENSION *e;
    int i, ok = 0;

    /* 128 random bits, made positive by the DER encoding's sign byte */
    if ((bn = mdm_scep_serial_new(0xff)) == NULL || (x = X509_new()) == NULL ||
        !copy_spki(x, csr->der->info->spki) ||
        !mdm_scep_cert_frame(x, ca, bn, csr->der->info->subject, r->now,
                             &ctx) ||
        (ca->crl_url && !mdm_scep_add_crl_dp(x, &ctx, ca->crl_url))) {
        goto done;
    }
    /* the payload's SubjectAltName travels as a requested extension */
    exts = csr_extensions(csr);
    for (i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name &&
            X509_add_ext(x, e, -1) != 1) {
            goto done;
        }
    }
    if (X509_sign(x, ca->ca_key, EVP_sha256()) <= 0) {
        goto done;
    }
    ok = 1;
done:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return -1;
    }
    X509_free(r->cert);
    r->cert = x;
    return 0;
}
