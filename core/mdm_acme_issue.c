/*
 * The certificate of a finalized ACME order, signed with the location's
 * SCEP CA: the CSR's subject and key, the device's permanent identifier
 * (RFC 4043 otherName, beside any subjectAltName the CSR asks for), a
 * client-authentication leaf, valid like a SCEP-issued certificate.
 */
#include "mdm_acme.h"
#include "mdm_scep_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define OID_PERMANENT_ID "1.3.6.1.5.5.7.8.3"

X509_REQ *
mdm_acme_csr(const unsigned char *der, size_t len, char keyhash[65],
             const char **why)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long) len);
    EVP_PKEY *pk;
    int id, bits;

    if (req == NULL || p != der + len) {
        *why = "the CSR is not one DER PKCS#10 request";
        goto fail;
    }
    pk = X509_REQ_get0_pubkey(req);
    if (pk == NULL) {
        *why = "the CSR's key is unreadable";
        goto fail;
    }
    id = EVP_PKEY_get_base_id(pk);
    bits = EVP_PKEY_get_bits(pk);
    if (!((id == EVP_PKEY_EC && (bits == 256 || bits == 384)) ||
          (id == EVP_PKEY_RSA && bits >= 2048 && bits <= 8192))) {
        *why = "the CSR's key is neither EC P-256/P-384 nor RSA 2048+";
        goto fail;
    }
    if (X509_REQ_verify(req, pk) != 1) {
        *why = "the CSR's signature does not verify";
        goto fail;
    }
    if (mdm_acme_spki_hash(X509_REQ_get_X509_PUBKEY(req), keyhash) != 0) {
        *why = "the CSR's key is unreadable";
        goto fail;
    }
    return req;
fail:
    X509_REQ_free(req);
    return NULL;
}

/* DER tag + length (short or one-byte long form) into p; bytes written. */
static size_t
der_head(unsigned char *p, unsigned char tag, size_t len)
{
    p[0] = tag;
    if (len < 128) {
        p[1] = (unsigned char) len;
        return 2;
    }
    p[1] = 0x81;
    p[2] = (unsigned char) len;
    return 3;
}

/* otherName permanentIdentifier: SEQUENCE { identifierValue UTF8String } */
static GENERAL_NAME *
permanent_id(const char *ident)
{
    unsigned char der[300], inner[160];
    size_t n = strlen(ident), ilen, dlen;
    ASN1_OBJECT *oid = NULL;
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *val = NULL;
    GENERAL_NAME *gen = NULL;

    if (n > MDM_ACME_MAX_IDENT) {
        return NULL;
    }
    ilen = der_head(inner, V_ASN1_UTF8STRING, n);
    memcpy(inner + ilen, ident, n);
    ilen += n;
    dlen = der_head(der, 0x30, ilen);
    memcpy(der + dlen, inner, ilen);
    dlen += ilen;
    if ((oid = OBJ_txt2obj(OID_PERMANENT_ID, 1)) == NULL ||
        (seq = ASN1_STRING_new()) == NULL ||
        ASN1_STRING_set(seq, der, (int) dlen) != 1 ||
        (val = ASN1_TYPE_new()) == NULL) {
        goto fail;
    }
    ASN1_TYPE_set(val, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    if ((gen = GENERAL_NAME_new()) == NULL ||
        GENERAL_NAME_set0_othername(gen, oid, val) != 1) {
        goto fail;
    }
    return gen;
fail:
    GENERAL_NAME_free(gen);
    ASN1_OBJECT_free(oid);
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(val);
    return NULL;
}

/* The CSR's requested subjectAltName (or none) plus the identifier. */
static int
add_san(X509 *x, X509_REQ *csr, const char *ident)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    GENERAL_NAMES *names = NULL;
    GENERAL_NAME *pid;
    int i, ok = 0;

    for (i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
            names = X509V3_EXT_d2i(e);
            break;
        }
    }
    if (names == NULL && (names = GENERAL_NAMES_new()) == NULL) {
        goto done;
    }
    pid = permanent_id(ident);
    if (pid == NULL || !sk_GENERAL_NAME_push(names, pid)) {
        GENERAL_NAME_free(pid);
        goto done;
    }
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
                           X509V3_ADD_DEFAULT) == 1;
done:
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return ok;
}

static int
pem_append(BIO *b, X509 *x)
{
    return PEM_write_bio_X509(b, x) == 1;
}

int
mdm_acme_issue(const struct mdm_scep_ca_s *ca, X509_REQ *csr, const char *ident,
               char **pem, char serial[48])
{
    X509V3_CTX ctx;
    BIGNUM *bn = NULL;
    X509_NAME *subj = X509_REQ_get_subject_name(csr), *own = NULL;
    X509 *x = NULL;
    BIO *b = NULL;
    BUF_MEM *mem;
    char *hex = NULL;
    int i, ok = 0;

    *pem = NULL;
    serial[0] = '\0';
    /* 127 random bits: the serial's DER needs no sign byte */
    if ((bn = mdm_scep_serial_new(0x7f)) == NULL) {
        goto done;
    }
    if (X509_NAME_entry_count(subj) == 0) {
        own = X509_NAME_new();
        if (own == NULL || X509_NAME_add_entry_by_txt(
                               own, "CN", MBSTRING_UTF8,
                               (const unsigned char *) ident, -1, -1, 0) != 1) {
            goto done;
        }
        subj = own;
    }
    if ((x = X509_new()) == NULL ||
        X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)) != 1 ||
        !mdm_scep_cert_frame(x, ca, bn, subj, time(NULL), &ctx) ||
        !add_san(x, csr, ident) ||
        (ca->crl_url && !mdm_scep_add_crl_dp(x, &ctx, ca->crl_url))) {
        goto done;
    }
    if (X509_sign(x, ca->ca_key, EVP_sha256()) <= 0) {
        goto done;
    }
    b = BIO_new(BIO_s_mem());
    if (b == NULL || !pem_append(b, x) || !pem_append(b, ca->ca)) {
        goto done;
    }
    for (i = 0; ca->chain && i < sk_X509_num(ca->chain); i++) {
        if (!pem_append(b, sk_X509_value(ca->chain, i))) {
            goto done;
        }
    }
    BIO_get_mem_ptr(b, &mem);
    *pem = OPENSSL_strndup(mem->data, mem->length);
    hex = BN_bn2hex(bn);
    if (*pem == NULL || hex == NULL) {
        goto done;
    }
    for (i = 0; hex[i] && i < 47; i++) {
        serial[i] = (char) tolower((unsigned char) hex[i]);
    }
    serial[i] = '\0';
    ok = 1;
done:
    OPENSSL_free(hex);
    BIO_free(b);
    X509_free(x);
    X509_NAME_free(own);
    BN_free(bn);
    if (!ok) {
        OPENSSL_free(*pem);
        *pem = NULL;
        return -1;
    }
    return 0;
}
