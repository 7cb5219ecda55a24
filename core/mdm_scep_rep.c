/*
 * What the CA sends back in CMS: the certs-only SignedData ("degenerate"
 * PKCS#7) of GetCACert and of a CertRep's content, and the CertRep itself
 * (RFC 8894 section 3.3.2): signed by the RA or the CA with the request's
 * digest, the transactionID and senderNonce echoed, on SUCCESS the issued
 * certificate enveloped to the requester's signer certificate, on FAILURE
 * a failInfo and one log line.
 */
#include "mdm_scep_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/rand.h>

static const char ct_pki[] = "application/x-pki-message";

static int
add_attr(CMS_SignerInfo *si, const ASN1_OBJECT *obj, int type, const void *data,
         size_t len)
{
    return CMS_signed_add1_attr_by_OBJ(si, obj, type, data, (int) len) == 1;
}

static int
cms_der(CMS_ContentInfo *cms, mdm_buf_t *out)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    int rc;

    if (n <= 0) {
        return -1;
    }
    rc = mdm_buf_set(out, der, (size_t) n);
    OPENSSL_free(der);
    return rc;
}

/* A certs-only SignedData (no signers, no content): RFC 8894's
 * "degenerate" PKCS#7, used by GetCACert and inside a CertRep. */
int
mdm_scep_certs_only(STACK_OF(X509) * certs, mdm_buf_t *out)
{
    CMS_ContentInfo *cms;
    unsigned char *der = NULL;
    int n;

    cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL | CMS_BINARY);
    if (cms == NULL || CMS_set_detached(cms, 1) != 1 ||
        (n = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
        CMS_ContentInfo_free(cms);
        return -1;
    }
    CMS_ContentInfo_free(cms);
    free(out->ptr);
    out->ptr = malloc((size_t) n);
    if (out->ptr == NULL) {
        OPENSSL_free(der);
        out->len = 0;
        return -1;
    }
    memcpy(out->ptr, der, (size_t) n);
    out->len = (size_t) n;
    OPENSSL_free(der);
    return 0;
}

/* GetNextCACert (RFC 8894 section 4.7): a SignedData signed by the CA
 * itself (not an RA), its certificates the next CA's, no content. The
 * client verifies it with the CA it has: the signer certificate is left
 * out so that the only certificates are the new ones. */
int
mdm_scep_signed_certs(const mdm_scep_ca_t *ca, STACK_OF(X509) * certs,
                      mdm_buf_t *out)
{
    CMS_ContentInfo *cms;
    BIO *in = BIO_new_mem_buf("", 0);
    int rc = -1;

    cms = in ? CMS_sign(ca->ca, ca->ca_key, certs, in,
                        CMS_BINARY | CMS_NOCERTS | CMS_NOSMIMECAP)
             : NULL;
    if (cms != NULL) {
        rc = cms_der(cms, out);
    }
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return rc;
}

/* The requester's envelope: the issued certificate as a degenerate
 * SignedData, encrypted to the certificate that signed the request. */
static int
envelope(mdm_scep_req_t *r, mdm_buf_t *out)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    mdm_buf_t inner = {0};
    CMS_ContentInfo *env = NULL;
    BIO *in = NULL;
    int rc = -1;

    if (sk == NULL || !sk_X509_push(sk, r->cert) ||
        mdm_scep_certs_only(sk, &inner) != 0) {
        goto done;
    }
    sk_X509_zero(sk);
    if (!sk_X509_push(sk, r->signer) ||
        (in = BIO_new_mem_buf(inner.ptr, (int) inner.len)) == NULL) {
        goto done;
    }
    /* the request's cipher, unless it was single DES (r->cipher NULL) */
    env = CMS_encrypt(sk, in, r->cipher ? r->cipher : EVP_aes_128_cbc(),
                      CMS_BINARY);
    if (env == NULL) {
        goto done;
    }
    rc = cms_der(env, out);
done:
    CMS_ContentInfo_free(env);
    BIO_free(in);
    mdm_buf_free(&inner);
    sk_X509_free(sk); /* references belong to r */
    return rc;
}

/* Build and sign the CertRep into r->base.out. */
static int
certrep(mdm_scep_req_t *r, int status, int fail)
{
    const mdm_scep_ca_t *ca = r->ca;
    X509 *scert = ca->ra ? ca->ra : ca->ca;
    EVP_PKEY *skey = ca->ra ? ca->ra_key : ca->ca_key;
    const mdm_scep_oids_t *oid = mdm_scep_oids();
    mdm_buf_t env = {0};
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    unsigned char snonce[16];
    char st[4], fi[4];
    BIO *content = NULL;
    int rc = -1;

    if (oid == NULL || (status == PKI_SUCCESS && envelope(r, &env) != 0)) {
        goto done;
    }
    if (RAND_bytes(snonce, sizeof(snonce)) != 1) {
        goto done;
    }
    content =
        BIO_new_mem_buf(env.ptr ? (const void *) env.ptr : "", (int) env.len);
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    if (content == NULL || cms == NULL) {
        goto done;
    }
    si = CMS_add1_signer(cms, scert, skey, r->md ? r->md : EVP_sha256(),
                         CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP);
    snprintf(st, sizeof(st), "%d", status);
    snprintf(fi, sizeof(fi), "%d", fail);
    if (si == NULL ||
        !add_attr(si, oid->txid, r->txid_type, r->txid, strlen(r->txid)) ||
        !add_attr(si, oid->msgtype, V_ASN1_PRINTABLESTRING, "3", 1) ||
        !add_attr(si, oid->status, V_ASN1_PRINTABLESTRING, st, strlen(st)) ||
        (status == PKI_FAILURE &&
         !add_attr(si, oid->failinfo, V_ASN1_PRINTABLESTRING, fi,
                   strlen(fi))) ||
        !add_attr(si, oid->snonce, V_ASN1_OCTET_STRING, snonce,
                  sizeof(snonce)) ||
        (r->nonce_len > 0 && !add_attr(si, oid->rnonce, V_ASN1_OCTET_STRING,
                                       r->nonce, r->nonce_len))) {
        goto done;
    }
    /* a FAILURE carries no envelope: its content is empty */
    if (CMS_final(cms, content, NULL, CMS_BINARY) != 1) {
        goto done;
    }
    rc = cms_der(cms, &r->base.out);
done:
    CMS_ContentInfo_free(cms);
    BIO_free(content);
    mdm_buf_free(&env);
    return rc;
}

mdm_step_t
mdm_scep_reply_certrep(mdm_scep_req_t *r, int status, int fail)
{
    int rc;

    rc = certrep(r, status, fail);
    if (rc != 0) {
        return mdm_tx_refuse(
            &r->base, 500, MDM_LOG_ERR, "MDM08040",
            "SCEP %s (transaction %s): cannot build the CertRep",
            mdm_scep_msg_type_name(r->msg_type), r->txid);
    }
    r->vars[MDM_SCEP_VAR_STATUS] = status == PKI_SUCCESS   ? "SUCCESS"
                                   : status == PKI_PENDING ? "PENDING"
                                                           : "FAILURE";
    return mdm_tx_reply(&r->base, 200, ct_pki, &r->base.out);
}

/* A FAILURE CertRep with one log line naming the transaction. */
mdm_step_t
mdm_scep_fail_rep(mdm_scep_req_t *r, int fail, const char *id, const char *fmt,
                  ...)
{
    char buf[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mdm_tx_log(&r->base, MDM_LOG_WARN, id,
               "SCEP %s (transaction %s) refused, %s: %s",
               mdm_scep_msg_type_name(r->msg_type), r->txid,
               mdm_scep_fail_name(fail), buf);
    r->vars[MDM_SCEP_VAR_ERROR_ID] = r->base.vars[MDM_VAR_ERROR_ID] = id;
    r->vars[MDM_SCEP_VAR_FAIL_INFO] = mdm_scep_fail_name(fail);
    mdm_buf_free(&r->base.out);
    if (certrep(r, PKI_FAILURE, fail) != 0) {
        return mdm_tx_reply(&r->base, 500, NULL, NULL);
    }
    r->vars[MDM_SCEP_VAR_STATUS] = "FAILURE";
    return mdm_tx_reply(&r->base, 200, ct_pki, &r->base.out);
}
