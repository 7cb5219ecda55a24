/*
 * mdm_identity: the Mdm-Signature header, a detached CMS SignedData over
 * the request body whose single signer is the device.
 */
#include "mdm_identity_int.h"
#include "mdm_der.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

/*
 * Every digestAlgorithm of the SignedData is SHA-1 or SHA-2. der is what
 * cms was decoded from; BER (or anything else the DER walk does not take)
 * is re-encoded first, a rare path.
 */
static int
mdm_digests_ok(CMS_ContentInfo *cms, const unsigned char *der, size_t len)
{
    unsigned char *re = NULL;
    int n, ok;

    ok = mdm_cms_digests_ok(der, len);
    if (ok >= 0) {
        return ok;
    }
    n = i2d_CMS_ContentInfo(cms, &re);
    ok = n > 0 && mdm_cms_digests_ok(re, (size_t) n) == 1;
    OPENSSL_free(re);
    return ok;
}

static mdm_id_rc_t
mdm_signature_impl(mdm_verifier_t *v, const char *b64, size_t b64len,
                   const unsigned char *body, size_t bodylen, X509 **signer,
                   char *hash, const char **why)
{
    mdm_cms_split_t split = {0};
    STACK_OF(X509) *certs = NULL;
    char hashes[MDM_CMS_MAX_CERTS][65];
    size_t i;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t derlen = 0;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(CMS_SignerInfo) * sis;
    STACK_OF(X509) *signers = NULL;
    CMS_SignerInfo *si;
    X509 *x = NULL;
    BIO *bio = NULL;
    mdm_id_rc_t rc;

    *signer = NULL;
    ERR_set_mark();

    rc = mdm_id_b64_rc(mdm_b64_decode(b64, b64len, MDM_B64_WS, &der, &derlen),
                       b64len, why);
    if (rc != MDM_ID_OK) {
        goto done;
    }
    if (derlen > LONG_MAX) {
        rc = MDM_ID_ERR_DECODE;
        mdm_set_why(why, "signature too large");
        goto done;
    }

    /*
     * Fast path: decode the embedded certificates through the verifier's
     * cache and the rest of the structure on its own. Anything the
     * splitter does not recognise (BER, odd shapes) is decoded whole.
     */
    if (v && v->certs && mdm_cms_split(der, derlen, &split) == 0) {
        certs = sk_X509_new_null();
        if (certs == NULL) {
            rc = MDM_ID_ERR_NOMEM;
            mdm_set_why(why, "out of memory");
            goto done;
        }
        for (i = 0; i < split.ncerts; i++) {
            rc = mdm_id_parse_cached(v, split.cert[i], split.cert_len[i], &x,
                                     hashes[i], why);
            if (rc != MDM_ID_OK) {
                goto done;
            }
            if (!sk_X509_push(certs, x)) {
                X509_free(x);
                rc = MDM_ID_ERR_NOMEM;
                mdm_set_why(why, "out of memory");
                goto done;
            }
        }
        x = NULL;
        free(der);
        der = split.stripped;
        derlen = split.stripped_len;
        split.stripped = NULL;
    }
    p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) derlen);
    if (cms == NULL || p != der + derlen) {
        rc = MDM_ID_ERR_DECODE;
        mdm_set_why(why, "signature is not a DER CMS ContentInfo");
        goto done;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        rc = MDM_ID_ERR_CMS;
        mdm_set_why(why, "CMS is not SignedData");
        goto done;
    }
    if (!mdm_digests_ok(cms, der, derlen)) {
        rc = MDM_ID_ERR_SIGNATURE;
        mdm_set_why(why, "CMS names a digest algorithm other than SHA-1 "
                         "or SHA-2");
        goto done;
    }
    /* an attached content would let the signature cover something else
     * than the body we were sent */
    if (CMS_is_detached(cms) != 1) {
        rc = MDM_ID_ERR_CMS;
        mdm_set_why(why, "CMS SignedData is not detached");
        goto done;
    }

    sis = CMS_get0_SignerInfos(cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "CMS does not have exactly one signer");
        goto done;
    }
    /*
     * Resolve the signer certificate from the CMS certificate set before
     * CMS_verify(), which would report a missing certificate as a mere
     * verification failure.
     */
    if (CMS_set1_signers_certs(cms, certs, 0) < 0) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "cannot resolve the signer certificate");
        goto done;
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    CMS_SignerInfo_get0_algs(si, NULL, &x, NULL, NULL);
    if (x == NULL) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "signer certificate not included");
        goto done;
    }

    if (bodylen > INT_MAX) {
        rc = MDM_ID_ERR_SIGNATURE;
        mdm_set_why(why, "body too large");
        goto done;
    }
    /* BIO_new_mem_buf() refuses a NULL buffer even for length 0 */
    bio = BIO_new_mem_buf(bodylen ? (const void *) body : "", (int) bodylen);
    if (bio == NULL) {
        rc = MDM_ID_ERR_NOMEM;
        mdm_set_why(why, "out of memory");
        goto done;
    }
    /*
     * CMS_BINARY: devices sign the raw bytes, without it OpenSSL would
     * canonicalise LF to CRLF. The chain is checked separately by
     * mdm_verifier_check(), hence CMS_NO_SIGNER_CERT_VERIFY.
     */
    if (CMS_verify(cms, certs, NULL, bio, NULL,
                   CMS_DETACHED | CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) !=
        1) {
        rc = MDM_ID_ERR_SIGNATURE;
        mdm_set_why(why, "signature does not verify over the body");
        goto done;
    }

    signers = CMS_get0_signers(cms);
    if (signers == NULL || sk_X509_num(signers) != 1 ||
        sk_X509_value(signers, 0) == NULL) {
        rc = MDM_ID_ERR_SIGNERS;
        mdm_set_why(why, "not exactly one signer certificate");
        goto done;
    }
    x = sk_X509_value(signers, 0);
    if (X509_up_ref(x) != 1) {
        rc = MDM_ID_ERR_NOMEM;
        mdm_set_why(why, "out of memory");
        goto done;
    }
    *signer = x;
    if (hash) {
        hash[0] = '\0';
        for (i = 0; certs && i < (size_t) sk_X509_num(certs); i++) {
            if (sk_X509_value(certs, (int) i) == x) {
                memcpy(hash, hashes[i], 65);
            }
        }
        if (hash[0] == '\0' && mdm_cert_sha256_hex(x, hash) != 0) {
            X509_free(x);
            *signer = NULL;
            rc = MDM_ID_ERR_NOMEM;
            mdm_set_why(why, "out of memory");
            goto done;
        }
    }
    rc = MDM_ID_OK;
    mdm_set_why(why, "ok");

done:
    /* the stack is ours, the certificates belong to cms */
    sk_X509_free(signers);
    sk_X509_pop_free(certs, X509_free);
    free(split.stripped);
    BIO_free(bio);
    CMS_ContentInfo_free(cms);
    free(der);
    ERR_pop_to_mark();
    return rc;
}

mdm_id_rc_t
mdm_identity_from_signature(const char *b64, size_t b64len,
                            const unsigned char *body, size_t bodylen,
                            X509 **signer, const char **why)
{
    return mdm_signature_impl(NULL, b64, b64len, body, bodylen, signer, NULL,
                              why);
}

mdm_id_rc_t
mdm_verifier_signature(mdm_verifier_t *v, const char *b64, size_t b64len,
                       const unsigned char *body, size_t bodylen, X509 **signer,
                       char hash[65], const char **why)
{
    return mdm_signature_impl(v, b64, b64len, body, bodylen, signer, hash, why);
}
