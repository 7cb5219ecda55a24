/*
 * mdm_identity: the Mdm-Signature header, a detached CMS SignedData over
 * the request body whose single signer is the device.
 */
#include "mdm_identity_int.h"
#include "mdm_der.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
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

/* ---------------------------------------------------------------- */
/* the direct path                                                  */

/*
 * A device's Mdm-Signature always has one shape (mdm_cms_parse_signed()):
 * for it, the SignerInfo is verified directly, as RFC 5652 5.4 says, with
 * the signer's certificate from the decoded-certificate cache: the
 * messageDigest attribute is the digest of the body, the contentType
 * attribute is the eContentType (id-data), and the signature verifies
 * over the DER of the signed attributes. That skips decoding the CMS
 * structure into OpenSSL's objects, OpenSSL's CMS bookkeeping and an
 * implicit algorithm fetch per digest (~130,000 instructions per request,
 * callgrind, bench/core.sh). The direct path only ever accepts: anything
 * it does not recognise or that does not verify goes the CMS_verify()
 * way below, which decides (and logs why).
 */

enum { MD_SHA1 = 0, MD_SHA224, MD_SHA256, MD_SHA384, MD_SHA512, MD_N };

static EVP_MD *fetched_md[MD_N];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void
md_fetch(void)
{
    static const char *const names[MD_N] = {"SHA1", "SHA224", "SHA256",
                                            "SHA384", "SHA512"};
    size_t i;

    for (i = 0; i < MD_N; i++) {
        fetched_md[i] = EVP_MD_fetch(NULL, names[i], NULL);
    }
}

/*
 * The digest of a digestAlgorithm OID, if the signatureAlgorithm OID goes
 * with it and with the key type: rsaEncryption or shaNWithRSAEncryption
 * for RSA, ecdsa-with-SHAn for EC. -1: anything else.
 */
static int
md_index(const mdm_der_span_t *dalg, const mdm_der_span_t *salg, int key)
{
    static const unsigned char sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
    static const unsigned char sha2[] = {0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02};
    /* 1.2.840.113549.1.1.n and 1.2.840.10045.4.n */
    static const unsigned char rsa[] = {0x2a, 0x86, 0x48, 0x86,
                                        0xf7, 0x0d, 0x01, 0x01};
    static const unsigned char ecdsa[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04};
    /* by MD_*: the last arc of shaNWithRSAEncryption; of ecdsa-with-SHAn
     * after 4.3 (SHA-1 is 4.1) */
    static const unsigned char with_rsa[MD_N] = {5, 14, 11, 12, 13};
    static const unsigned char with_ec[MD_N] = {0, 1, 2, 3, 4};
    int i;

    if (dalg->len == sizeof(sha1) &&
        memcmp(dalg->ptr, sha1, sizeof(sha1)) == 0) {
        i = MD_SHA1;
    } else if (dalg->len == sizeof(sha2) + 1 &&
               memcmp(dalg->ptr, sha2, sizeof(sha2)) == 0 &&
               dalg->ptr[sizeof(sha2)] >= 1 && dalg->ptr[sizeof(sha2)] <= 4) {
        /* sha256 (1), sha384 (2), sha512 (3), sha224 (4) */
        static const int by_arc[] = {0, MD_SHA256, MD_SHA384, MD_SHA512,
                                     MD_SHA224};

        i = by_arc[dalg->ptr[sizeof(sha2)]];
    } else {
        return -1;
    }
    if (key == EVP_PKEY_RSA) {
        if (salg->len != sizeof(rsa) + 1 ||
            memcmp(salg->ptr, rsa, sizeof(rsa)) != 0 ||
            (salg->ptr[sizeof(rsa)] != 1 &&
             salg->ptr[sizeof(rsa)] != with_rsa[i])) {
            return -1;
        }
    } else if (key == EVP_PKEY_EC) {
        if (salg->len < sizeof(ecdsa) + 1 ||
            memcmp(salg->ptr, ecdsa, sizeof(ecdsa)) != 0 ||
            !(i == MD_SHA1 ? salg->len == sizeof(ecdsa) + 1 &&
                                 salg->ptr[sizeof(ecdsa)] == 1
                           : salg->len == sizeof(ecdsa) + 2 &&
                                 salg->ptr[sizeof(ecdsa)] == 3 &&
                                 salg->ptr[sizeof(ecdsa) + 1] == with_ec[i])) {
            return -1;
        }
    } else {
        return -1;
    }
    pthread_once(&md_once, md_fetch);
    return fetched_md[i] ? i : -1;
}

static int
span_eq(const mdm_der_span_t *a, const mdm_der_span_t *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* 0: verified, *signer and hash set; -1: let the CMS path decide. */
static int
mdm_signature_direct(mdm_verifier_t *v, const unsigned char *der, size_t derlen,
                     const unsigned char *body, size_t bodylen, X509 **signer,
                     char *hash, char **subject)
{
    /* 1.2.840.113549.1.7.1 id-data */
    static const unsigned char id_data[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                            0x0d, 0x01, 0x07, 0x01};
    static const mdm_der_span_t data = {id_data, sizeof(id_data)};
    mdm_cms_signed_t s;
    mdm_der_span_t issuer, serial;
    unsigned char md[EVP_MAX_MD_SIZE], stack[1024], *attrs = stack;
    unsigned int mdlen;
    char h[65];
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pk;
    X509 *x = NULL;
    size_t i, found = MDM_CMS_MAX_CERTS;
    int mi, ok = 0;

    if (v == NULL || v->certs == NULL ||
        mdm_cms_parse_signed(der, derlen, &s) != 0 ||
        mdm_cms_digests_ok(der, derlen) != 1 ||
        !span_eq(&s.econtent_type, &data) || !span_eq(&s.content_type, &data)) {
        return -1;
    }
    for (i = 0; i < s.ncerts; i++) {
        /* every certificate must decode, as on the CMS path (cached) */
        if (mdm_cert_issuer_serial(s.cert[i].ptr, s.cert[i].len, &issuer,
                                   &serial) != 0 ||
            mdm_id_parse_cached(v, s.cert[i].ptr, s.cert[i].len, &x, NULL, NULL,
                                NULL) != MDM_ID_OK) {
            return -1;
        }
        X509_free(x);
        x = NULL;
        /* the same serial twice: OpenSSL matches issuers by
         * X509_NAME_cmp() and takes the first, let it say */
        if (span_eq(&serial, &s.serial)) {
            if (found != MDM_CMS_MAX_CERTS) {
                return -1;
            }
            if (span_eq(&issuer, &s.issuer)) {
                found = i;
            } else {
                found = MDM_CMS_MAX_CERTS + 1;
            }
        }
    }
    if (found > MDM_CMS_MAX_CERTS) {
        return -1;
    }
    if (found == MDM_CMS_MAX_CERTS ||
        mdm_id_parse_cached(v, s.cert[found].ptr, s.cert[found].len, &x, h,
                            subject, NULL) != MDM_ID_OK) {
        return -1;
    }
    pk = X509_get0_pubkey(x);
    if (pk == NULL ||
        (mi = md_index(&s.digest_alg, &s.sig_alg, EVP_PKEY_get_base_id(pk))) <
            0 ||
        EVP_Digest(body, bodylen, md, &mdlen, fetched_md[mi], NULL) != 1 ||
        mdlen != s.message_digest.len ||
        CRYPTO_memcmp(md, s.message_digest.ptr, mdlen) != 0) {
        goto done;
    }
    /* the signature covers the attributes with the SET OF tag */
    if (s.signed_attrs.len > sizeof(stack) &&
        (attrs = malloc(s.signed_attrs.len)) == NULL) {
        goto done;
    }
    memcpy(attrs, s.signed_attrs.ptr, s.signed_attrs.len);
    attrs[0] = 0x31;
    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL &&
         EVP_DigestVerifyInit(ctx, NULL, fetched_md[mi], NULL, pk) == 1 &&
         EVP_DigestVerify(ctx, s.signature.ptr, s.signature.len, attrs,
                          s.signed_attrs.len) == 1;
done:
    EVP_MD_CTX_free(ctx);
    if (attrs != stack) {
        free(attrs);
    }
    if (!ok) {
        if (subject) {
            free(*subject);
            *subject = NULL;
        }
        X509_free(x);
        return -1;
    }
    *signer = x;
    if (hash) {
        memcpy(hash, h, 65);
    }
    __atomic_fetch_add(&v->direct, 1, __ATOMIC_RELAXED);
    return 0;
}

/* ---------------------------------------------------------------- */
/* the CMS path                                                     */

static mdm_id_rc_t
mdm_signature_impl(mdm_verifier_t *v, const char *b64, size_t b64len,
                   const unsigned char *body, size_t bodylen, X509 **signer,
                   char *hash, char **subject, const char **why)
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
    if (mdm_signature_direct(v, der, derlen, body, bodylen, signer, hash,
                             subject) == 0) {
        rc = MDM_ID_OK;
        mdm_set_why(why, "ok");
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
                                     hashes[i], NULL, why);
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
                              NULL, why);
}

mdm_id_rc_t
mdm_verifier_signature(mdm_verifier_t *v, const char *b64, size_t b64len,
                       const unsigned char *body, size_t bodylen, X509 **signer,
                       char hash[65], const char **why)
{
    return mdm_signature_impl(v, b64, b64len, body, bodylen, signer, hash, NULL,
                              why);
}

mdm_id_rc_t
mdm_verifier_signature_ex(mdm_verifier_t *v, const char *b64, size_t b64len,
                          const unsigned char *body, size_t bodylen,
                          X509 **signer, char hash[65], char **subject,
                          const char **why)
{
    *subject = NULL;
    return mdm_signature_impl(v, b64, b64len, body, bodylen, signer, hash,
                              subject, why);
}
