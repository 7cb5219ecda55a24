/*
 * What a SCEP client sends, made here with the OpenSSL API: certificates,
 * CSRs (with or without a challenge, signed by the wrong key...), an
 * IssuerAndSerialNumber, and pkiMessages of every message type, digest
 * and content cipher.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>

#include "test_scep.h"

/* ------------------------------------------------------------------ */
/* certificates and requests made here                                 */

static void
set_times(X509 *x, time_t nb, time_t na)
{
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
}

X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          long serial, time_t nb, time_t na)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    X509_set_pubkey(x, key);
    set_times(x, nb, na);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

unsigned char *
make_csr(EVP_PKEY *key, const char *cn, const char *challenge,
         EVP_PKEY *sign_key, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    unsigned char *der = NULL, *out;
    int l;

    X509_REQ_set_version(req, 0);
    if (cn) {
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   (const unsigned char *) cn, -1, -1, 0);
    }
    X509_REQ_set_subject_name(req, n);
    X509_NAME_free(n);
    X509_REQ_set_pubkey(req, key);
    if (challenge) {
        assert_int_equal(X509_REQ_add1_attr_by_NID(
                             req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                             (const unsigned char *) challenge, -1),
                         1);
    }
    assert_true(X509_REQ_sign(req, sign_key ? sign_key : key, EVP_sha256()) >
                0);
    if (sign_key) {
        /* signed by another key: the self-signature no longer holds */
        X509_REQ_set_pubkey(req, key);
    }
    l = i2d_X509_REQ(req, &der);
    assert_true(l > 0);
    out = malloc((size_t) l);
    memcpy(out, der, (size_t) l);
    OPENSSL_free(der);
    X509_REQ_free(req);
    *len = (size_t) l;
    return out;
}

unsigned char *
issuer_and_serial(X509 *issuer, long serial, size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *der = NULL, *out;
    int l;

    X509_NAME_set(&ias->issuer, X509_get_subject_name(issuer));
    ASN1_INTEGER_set(ias->serial, serial);
    l = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
    assert_true(l > 0);
    out = malloc((size_t) l);
    memcpy(out, der, (size_t) l);
    OPENSSL_free(der);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    *len = (size_t) l;
    return out;
}

const unsigned char test_nonce[16] = "nonce-0123456789";

unsigned char *
make_pkimsg(const req_opts_t *o, size_t *len)
{
    STACK_OF(X509) *rc = sk_X509_new_null();
    CMS_ContentInfo *env, *cms;
    CMS_SignerInfo *si;
    BIO *in, *ein;
    unsigned char *envder = NULL, *der = NULL, *out;
    int elen, l;
    const char *txid = o->txid ? o->txid : "TXID-0001";

    sk_X509_push(rc, o->recipient ? o->recipient : sample_ca);
    in = BIO_new_mem_buf(o->content, (int) o->content_len);
    if (o->des) {
        OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
        OSSL_PROVIDER *d = OSSL_PROVIDER_load(lc, "default");
        OSSL_PROVIDER *l = OSSL_PROVIDER_load(lc, "legacy");
        EVP_CIPHER *des = EVP_CIPHER_fetch(lc, "DES-CBC", NULL);

        assert_non_null(des);
        env = CMS_encrypt_ex(rc, in, des, CMS_BINARY, lc, NULL);
        EVP_CIPHER_free(des);
        assert_non_null(env);
        elen = i2d_CMS_ContentInfo(env, &envder);
        CMS_ContentInfo_free(env);
        env = NULL;
        OSSL_PROVIDER_unload(l);
        OSSL_PROVIDER_unload(d);
        OSSL_LIB_CTX_free(lc);
    } else {
        env = CMS_encrypt(rc, in, o->cipher ? o->cipher : EVP_aes_128_cbc(),
                          CMS_BINARY);
        assert_non_null(env);
        elen = i2d_CMS_ContentInfo(env, &envder);
    }
    assert_true(elen > 0);
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    si = CMS_add1_signer(cms, o->signer, o->signer_key,
                         o->md ? o->md : EVP_sha256(),
                         CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP);
    assert_non_null(si);
    assert_int_equal(CMS_signed_add1_attr_by_OBJ(
                         si, o_msgtype, V_ASN1_PRINTABLESTRING,
                         o->msg_type ? o->msg_type : "19",
                         o->msg_type ? (int) strlen(o->msg_type) : 2),
                     1);
    if (!o->no_txid) {
        assert_int_equal(CMS_signed_add1_attr_by_OBJ(si, o_txid,
                                                     V_ASN1_PRINTABLESTRING,
                                                     txid, (int) strlen(txid)),
                         1);
    }
    assert_int_equal(
        CMS_signed_add1_attr_by_OBJ(si, o_snonce, V_ASN1_OCTET_STRING,
                                    o->nonce ? o->nonce : test_nonce, 16),
        1);
    ein = BIO_new_mem_buf(envder, elen);
    assert_int_equal(CMS_final(cms, ein, NULL, CMS_BINARY), 1);
    l = i2d_CMS_ContentInfo(cms, &der);
    assert_true(l > 0);
    out = malloc((size_t) l);
    memcpy(out, der, (size_t) l);
    OPENSSL_free(der);
    OPENSSL_free(envder);
    BIO_free(in);
    BIO_free(ein);
    CMS_ContentInfo_free(env);
    CMS_ContentInfo_free(cms);
    sk_X509_free(rc);
    *len = (size_t) l;
    return out;
}

unsigned char *
pkcsreq_tx(const char *challenge, const char *cn, const char *txid,
           const unsigned char *nonce, X509 **signer, size_t *len)
{
    size_t clen;
    unsigned char *csr = make_csr(dev_key, cn, challenge, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;

    *signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                        T_GEN + DAY);
    o.signer = *signer;
    o.signer_key = dev_key;
    o.txid = txid;
    o.nonce = nonce;
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, len);
    free(csr);
    return m;
}

unsigned char *
pkcsreq(const char *challenge, const EVP_MD *md, const EVP_CIPHER *cipher,
        X509 **signer, size_t *len)
{
    size_t clen;
    unsigned char *csr =
        make_csr(dev_key, "device-0001", challenge, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;

    *signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                        T_GEN + DAY);
    o.signer = *signer;
    o.signer_key = dev_key;
    o.md = md;
    o.cipher = cipher;
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, len);
    free(csr);
    return m;
}
