/*
 * Reading a pkiMessage (RFC 8894 section 3): the outer SignedData and its
 * SCEP attributes (transactionID, messageType, senderNonce), the digest
 * and content cipher it uses, the pkcsPKIEnvelope opened with the RA or
 * CA key, and the challengePassword of the request. Also the spellings of
 * names and serial numbers used in logs, variables and Redis keys.
 *
 * Nothing here answers: the caller decides between a 400 and a FAILURE
 * CertRep.
 */
#include "mdm_scep_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>

/* The single value of a signed attribute, or NULL (absent, repeated or
 * multi-valued: none of those are a SCEP attribute). */
static const ASN1_TYPE *
signed_attr(CMS_SignerInfo *si, const ASN1_OBJECT *obj)
{
    X509_ATTRIBUTE *a;
    int i = CMS_signed_get_attr_by_OBJ(si, obj, -1);

    if (i < 0 || CMS_signed_get_attr_by_OBJ(si, obj, i) >= 0) {
        return NULL;
    }
    a = CMS_signed_get_attr(si, i);
    if (a == NULL || X509_ATTRIBUTE_count(a) != 1) {
        return NULL;
    }
    return X509_ATTRIBUTE_get0_type(a, 0);
}

static int
is_text(int type)
{
    return type == V_ASN1_PRINTABLESTRING || type == V_ASN1_UTF8STRING ||
           type == V_ASN1_IA5STRING || type == V_ASN1_T61STRING;
}

/* A text attribute value without NUL bytes or control characters. */
static int
attr_text(const ASN1_TYPE *t, char *out, size_t cap, int *type)
{
    const unsigned char *p;
    int n, i;

    if (t == NULL || !is_text(t->type)) {
        return -1;
    }
    p = ASN1_STRING_get0_data(t->value.asn1_string);
    n = ASN1_STRING_length(t->value.asn1_string);
    if (n <= 0 || (size_t) n >= cap) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return -1;
        }
    }
    memcpy(out, p, (size_t) n);
    out[n] = '\0';
    if (type) {
        *type = t->type;
    }
    return 0;
}

const char *
mdm_scep_parse_outer(mdm_scep_req_t *r)
{
    const mdm_scep_oids_t *oid = mdm_scep_oids();
    STACK_OF(CMS_SignerInfo) * sis;
    ASN1_OCTET_STRING **pos;
    const ASN1_TYPE *t;
    const unsigned char *p = r->msg;
    char mt[8], *end;
    long v;

    if (oid == NULL) {
        return "out of memory"; /* made by mdm_scep_ca_finish() */
    }
    if (r->msg == NULL || r->msg_len == 0) {
        return "empty message";
    }
    if (r->msg_len > MDM_SCEP_MAX_MSG) {
        return "message too large";
    }
    r->cms = d2i_CMS_ContentInfo(NULL, &p, (long) r->msg_len);
    if (r->cms == NULL || p != r->msg + r->msg_len) {
        return "not a DER CMS ContentInfo";
    }
    if (OBJ_obj2nid(CMS_get0_type(r->cms)) != NID_pkcs7_signed) {
        return "not a CMS SignedData";
    }
    sis = CMS_get0_SignerInfos(r->cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        return "not exactly one signer";
    }
    r->si = sk_CMS_SignerInfo_value(sis, 0);
    if (OBJ_obj2nid(CMS_get0_eContentType(r->cms)) != NID_pkcs7_data) {
        return "encapsulated content is not id-data";
    }
    pos = CMS_get0_content(r->cms);
    if (pos == NULL || *pos == NULL) {
        return "no encapsulated content";
    }
    if (attr_text(signed_attr(r->si, oid->txid), r->txid, sizeof(r->txid),
                  &r->txid_type) != 0) {
        return "no usable transactionID attribute";
    }
    r->vars[MDM_SCEP_VAR_TRANSACTION_ID] = r->txid;
    if (attr_text(signed_attr(r->si, oid->msgtype), mt, sizeof(mt), NULL) !=
        0) {
        return "no usable messageType attribute";
    }
    v = strtol(mt, &end, 10);
    if (*end != '\0' || v < 0 || v > 1000) {
        return "messageType is not a number";
    }
    r->msg_type = (int) v;
    t = signed_attr(r->si, oid->snonce);
    if (t == NULL || t->type != V_ASN1_OCTET_STRING ||
        ASN1_STRING_length(t->value.octet_string) <= 0 ||
        ASN1_STRING_length(t->value.octet_string) > MDM_SCEP_MAX_NONCE) {
        return "no usable senderNonce attribute";
    }
    r->nonce_len = (size_t) ASN1_STRING_length(t->value.octet_string);
    memcpy(r->nonce, ASN1_STRING_get0_data(t->value.octet_string),
           r->nonce_len);
    return NULL;
}

/* The digest of the request, also used for the CertRep. */
const EVP_MD *
mdm_scep_digest_of(CMS_SignerInfo *si, int *nid)
{
    X509_ALGOR *dig = NULL;
    const ASN1_OBJECT *obj;

    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    if (dig == NULL) {
        *nid = NID_undef;
        return NULL;
    }
    X509_ALGOR_get0(&obj, NULL, NULL, dig);
    *nid = OBJ_obj2nid(obj);
    switch (*nid) {
    case NID_sha1:
        return EVP_sha1();
    case NID_sha224:
        return EVP_sha224();
    case NID_sha256:
        return EVP_sha256();
    case NID_sha384:
        return EVP_sha384();
    case NID_sha512:
        return EVP_sha512();
    }
    return NULL;
}

static const EVP_CIPHER *
cipher_of(int nid)
{
    switch (nid) {
    case NID_aes_128_cbc:
        return EVP_aes_128_cbc();
    case NID_aes_192_cbc:
        return EVP_aes_192_cbc();
    case NID_aes_256_cbc:
        return EVP_aes_256_cbc();
    case NID_des_ede3_cbc:
        return EVP_des_ede3_cbc();
    }
    return NULL;
}

char *
mdm_scep_name_str(const X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *s = NULL;
    long len;

    if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
        (len = BIO_get_mem_data(b, &data)) >= 0) {
        /* an empty name leaves the BIO without a buffer */
        s = len > 0 ? mdm_strndup(data, (size_t) len) : mdm_strdup("");
    }
    BIO_free(b);
    return s;
}

/* Lowercase hex without leading zeros: the one spelling used in keys and
 * by the admin API (norm_serial() in mdm_scep_admin.c). */
int
mdm_scep_serial_hex(const ASN1_INTEGER *ai, char *out, size_t cap)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
    char *h, *p;
    int rc = -1;

    if (bn == NULL) {
        return -1;
    }
    if (!BN_is_negative(bn) && (h = BN_bn2hex(bn)) != NULL) {
        /* BN_bn2hex() writes whole bytes ("0ABC"): drop the zero nibble */
        for (p = h; p[0] == '0' && p[1] != '\0'; p++) {
        }
        if (strlen(p) < cap) {
            snprintf(out, cap, "%s", p);
            for (p = out; *p; p++) {
                *p = (char) tolower((unsigned char) *p);
            }
            rc = 0;
        }
        OPENSSL_free(h);
    }
    BN_free(bn);
    return rc;
}

/* Open pkcsPKIEnvelope with the RA or CA key into out. why: what went
 * wrong, for the log (never a secret). */
mdm_scep_env_rc_t
mdm_scep_open_envelope(mdm_scep_req_t *r, mdm_buf_t *out, char *why,
                       size_t whylen)
{
    const mdm_scep_ca_t *ca = r->ca;
    ASN1_OCTET_STRING **pos = CMS_get0_content(r->cms);
    const unsigned char *data = ASN1_STRING_get0_data(*pos), *p;
    long len = ASN1_STRING_length(*pos);
    STACK_OF(CMS_RecipientInfo) * ris;
    CMS_RecipientInfo *ri;
    CMS_ContentInfo *env = NULL;
    PKCS7 *p7 = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    X509_NAME *iss = NULL;
    ASN1_INTEGER *sno = NULL;
    char *iname, sn[48];
    BIO *bio = NULL;
    char *bdata;
    long blen;
    mdm_scep_env_rc_t rc = ENV_NOT_ENVELOPED;
    int i, nid;

    /* the PKCS#7 view exposes the content-encryption algorithm */
    p = data;
    p7 = d2i_PKCS7(NULL, &p, len);
    if (p7 == NULL || p != data + len || !PKCS7_type_is_enveloped(p7) ||
        p7->d.enveloped == NULL || p7->d.enveloped->enc_data == NULL ||
        p7->d.enveloped->enc_data->algorithm == NULL) {
        snprintf(why, whylen, "pkcsPKIEnvelope is not an EnvelopedData");
        goto done;
    }
    nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    r->cipher = cipher_of(nid);
    if (nid == NID_des_cbc && ca->libctx) {
        /* decrypted in the legacy context; the answer gets AES */
        env = CMS_ContentInfo_new_ex(ca->libctx, NULL);
        if (env == NULL) {
            snprintf(why, whylen, "out of memory");
            rc = ENV_DECRYPT;
            goto done;
        }
    } else if (r->cipher == NULL) {
        rc = ENV_BAD_ALG;
        snprintf(why, whylen, "content encryption %s not supported%s",
                 nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid),
                 nid == NID_des_cbc ? " (single DES: see legacy_des)" : "");
        goto done;
    }
    p = data;
    if (env != NULL) {
        /* decoded into env, keeping its library context; a failure frees
         * it and leaves NULL */
        (void) d2i_CMS_ContentInfo(&env, &p, len);
    } else {
        env = d2i_CMS_ContentInfo(NULL, &p, len);
    }
    if (env == NULL || OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
        snprintf(why, whylen, "pkcsPKIEnvelope is not an EnvelopedData");
        goto done;
    }
    ris = CMS_get0_RecipientInfos(env);
    for (i = 0; ris && i < sk_CMS_RecipientInfo_num(ris) && cert == NULL; i++) {
        ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS) {
            continue;
        }
        if (ca->ra && CMS_RecipientInfo_ktri_cert_cmp(ri, ca->ra) == 0) {
            cert = ca->ra;
            key = ca->ra_key;
        } else if (CMS_RecipientInfo_ktri_cert_cmp(ri, ca->ca) == 0) {
            cert = ca->ca;
            key = ca->ca_key;
        } else if (iss == NULL) {
            CMS_RecipientInfo_ktri_get0_signer_id(ri, NULL, &iss, &sno);
        }
    }
    if (cert == NULL) {
        rc = ENV_NOT_FOR_US;
        iname = iss ? mdm_scep_name_str(iss) : NULL;
        if (sno == NULL || mdm_scep_serial_hex(sno, sn, sizeof(sn)) != 0) {
            snprintf(sn, sizeof(sn), "?");
        }
        snprintf(why, whylen,
                 "pkcsPKIEnvelope is not encrypted to this %s (recipient: "
                 "issuer \"%s\", serial %s)",
                 ca->ra ? "RA or CA" : "CA", iname ? iname : "?", sn);
        free(iname);
        goto done;
    }
    /* No CMS_DEBUG_DECRYPT: a wrong key must not be told apart from bad
     * padding (Bleichenbacher); OpenSSL then decrypts with a random key
     * and the content fails to parse instead. */
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL ||
        CMS_decrypt(env, key, cert, NULL, bio, CMS_BINARY) != 1) {
        rc = ENV_DECRYPT;
        snprintf(why, whylen, "cannot decrypt pkcsPKIEnvelope");
        goto done;
    }
    blen = BIO_get_mem_data(bio, &bdata);
    if (blen < 0 || mdm_buf_set(out, bdata, (size_t) blen) != 0) {
        rc = ENV_DECRYPT;
        snprintf(why, whylen, "cannot read the decrypted messageData");
        goto done;
    }
    rc = ENV_OK;
done:
    BIO_free(bio);
    CMS_ContentInfo_free(env);
    PKCS7_free(p7);
    return rc;
}

/* ---- the PKCS#10 request ---- */

/* X509_REQ's templates (RFC 2986) with a SubjectPublicKeyInfo that stays
 * bytes: the algorithm and the BIT STRING. The encoding of the info is
 * kept: the signature is checked over the bytes received. (The macros end
 * without a semicolon: clang-format would indent what follows.) */
/* clang-format off */
ASN1_SEQUENCE(mdm_scep_spki_t) = {
    ASN1_SIMPLE(mdm_scep_spki_t, algor, X509_ALGOR),
    ASN1_SIMPLE(mdm_scep_spki_t, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(mdm_scep_spki_t)

ASN1_SEQUENCE_enc(mdm_scep_csr_info_t, enc, 0) = {
    ASN1_SIMPLE(mdm_scep_csr_info_t, version, ASN1_INTEGER),
    ASN1_SIMPLE(mdm_scep_csr_info_t, subject, X509_NAME),
    ASN1_SIMPLE(mdm_scep_csr_info_t, spki, mdm_scep_spki_t),
    /* optional, as OpenSSL reads it: some encoders leave it out */
    ASN1_IMP_SET_OF_OPT(mdm_scep_csr_info_t, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(mdm_scep_csr_info_t, mdm_scep_csr_info_t)

ASN1_SEQUENCE(mdm_scep_csr_der_t) = {
    ASN1_SIMPLE(mdm_scep_csr_der_t, info, mdm_scep_csr_info_t),
    ASN1_SIMPLE(mdm_scep_csr_der_t, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(mdm_scep_csr_der_t, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(mdm_scep_csr_der_t)

/* The request's key: the signer certificate's when the bytes are the same
 * (a device signs with a self-signed certificate of the key it asks a
 * certificate for), else decoded by OpenSSL (a renewal's new key). */
static EVP_PKEY *
csr_key(X509 *signer, const mdm_scep_spki_t *spki, int *own)
/* clang-format on */
{
    X509_ALGOR *alg;
    const unsigned char *sk, *p;
    unsigned char *der = NULL;
    EVP_PKEY *k = NULL;
    int sklen, n;

    *own = 0;
    if (signer != NULL &&
        X509_PUBKEY_get0_param(NULL, &sk, &sklen, &alg,
                               X509_get_X509_PUBKEY(signer)) == 1 &&
        X509_ALGOR_cmp(alg, spki->algor) == 0 &&
        sklen == ASN1_STRING_length(spki->key) &&
        memcmp(sk, ASN1_STRING_get0_data(spki->key), (size_t) sklen) == 0 &&
        (k = X509_get0_pubkey(signer)) != NULL) {
        return k;
    }
    n = ASN1_item_i2d((const ASN1_VALUE *) spki, &der,
                      ASN1_ITEM_rptr(mdm_scep_spki_t));
    if (n > 0) {
        p = der;
        k = d2i_PUBKEY(NULL, &p, n);
        *own = k != NULL;
    }
    OPENSSL_free(der);
    return k;
}

int
mdm_scep_csr_read(mdm_scep_req_t *r, const mdm_buf_t *data, mdm_scep_csr_t *csr)
{
    const unsigned char *p = data->ptr;

    memset(csr, 0, sizeof(*csr));
    if (data->len == 0 || data->len > LONG_MAX) {
        return -1;
    }
    csr->der = (mdm_scep_csr_der_t *) ASN1_item_d2i(
        NULL, &p, (long) data->len, ASN1_ITEM_rptr(mdm_scep_csr_der_t));
    if (csr->der == NULL || p != data->ptr + data->len) {
        return -1;
    }
    csr->pub = csr_key(r->signer, csr->der->info->spki, &csr->own_pub);
    return 0;
}

/* X509_REQ_verify() of OpenSSL 3.0, over the bytes received */
int
mdm_scep_csr_verify(const mdm_scep_csr_t *csr)
{
    return csr->pub != NULL &&
           ASN1_item_verify_ex(ASN1_ITEM_rptr(mdm_scep_csr_info_t),
                               csr->der->sig_alg, csr->der->signature,
                               csr->der->info, NULL, csr->pub, NULL, NULL) == 1;
}

void
mdm_scep_csr_free(mdm_scep_csr_t *csr)
{
    ASN1_item_free((ASN1_VALUE *) csr->der, ASN1_ITEM_rptr(mdm_scep_csr_der_t));
    if (csr->own_pub) {
        EVP_PKEY_free(csr->pub);
    }
    memset(csr, 0, sizeof(*csr));
}

/* challengePassword: the CSR attribute, else (macOS mdmclient) the signed
 * attribute of the pkiMessage. */
int
mdm_scep_challenge_of(mdm_scep_req_t *r, const mdm_scep_csr_t *csr, char *out,
                      size_t cap)
{
    const STACK_OF(X509_ATTRIBUTE) *attrs = csr->der->info->attributes;
    X509_ATTRIBUTE *a;
    const ASN1_TYPE *t = NULL;
    int i = X509at_get_attr_by_NID(attrs, NID_pkcs9_challengePassword, -1);

    if (i >= 0 && (a = X509at_get_attr(attrs, i)) != NULL &&
        X509_ATTRIBUTE_count(a) == 1) {
        t = X509_ATTRIBUTE_get0_type(a, 0);
    }
    if (t == NULL) {
        i = CMS_signed_get_attr_by_NID(r->si, NID_pkcs9_challengePassword, -1);
        if (i >= 0 && (a = CMS_signed_get_attr(r->si, i)) != NULL &&
            X509_ATTRIBUTE_count(a) == 1) {
            t = X509_ATTRIBUTE_get0_type(a, 0);
        }
    }
    if (t == NULL) {
        return -1;
    }
    /* BMPString is allowed by PKCS#9 but has never been seen from a device */
    return attr_text(t, out, cap, NULL);
}
