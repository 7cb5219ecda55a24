/*
 * PKIOperation (RFC 8894 section 3.3): the checks on a pkiMessage and
 * what each message type asks, and the storage behind it.
 *
 *   PKCSReq, RenewalReq   the CSR checked (self-signature, subject, key,
 *                         challenge; a renewal's signer one of ours, valid
 *                         and of the same subject), the certificate signed,
 *                         then one script consumes a dynamic challenge and
 *                         records it (ISSUE): only if it says OK does the
 *                         device get it
 *   CertPoll, GetCert     the certificate looked up by transactionID or
 *                         serial number (LOOKUP)
 *
 * Past the outer SignedData every refusal is a FAILURE CertRep.
 */
#include "mdm_scep_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <hiredis.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>

/* ---------------------------------------------------------------- */
/* plans                                                            */

/* The transaction's record before anything is signed: a request seen
 * before is answered from it (decide()). */
static mdm_step_t
plan_check(mdm_scep_req_t *r)
{
    mdm_planb_reset(&r->base.pb);
    r->base.script = 0;
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "HMGET");
    mdm_planb_fmt(&r->base.pb, "%s%s", r->ca->k_txn, r->txid);
    mdm_planb_str(&r->base.pb, "state");
    mdm_planb_str(&r->base.pb, "req");
    mdm_planb_str(&r->base.pb, "nonce");
    mdm_planb_str(&r->base.pb, "der");
    return mdm_scep_plan_done(r, SST_CHECK);
}

static mdm_step_t
plan_lookup(mdm_scep_req_t *r, const char *key_prefix, const char *id)
{
    mdm_planb_reset(&r->base.pb);
    r->base.script = 0;
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "HMGET");
    mdm_planb_fmt(&r->base.pb, "%s%s", key_prefix, id);
    mdm_planb_str(&r->base.pb, "der");
    mdm_planb_str(&r->base.pb, "state");
    return mdm_scep_plan_done(r, SST_LOOKUP);
}

/* ---------------------------------------------------------------- */
/* PKIOperation                                                     */

/*
 * What names a checked PKCSReq or RenewalReq across the round trips: the
 * CSR kept, the digest of the request (signer certificate and CSR: a
 * replay and a resend have the same), the senderNonce in hex, the digest
 * of a one-time challenge to consume. The challenge itself is not kept.
 */
static int
request_ids(mdm_scep_req_t *r, const mdm_buf_t *csr, const char *chal)
{
    unsigned char md[32], *der = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen;
    int n, ok;

    n = i2d_X509(r->signer, &der);
    ok = ctx != NULL && n > 0 && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(ctx, der, (size_t) n) &&
         EVP_DigestUpdate(ctx, csr->ptr, csr->len) &&
         EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    if (!ok || mdm_buf_set(&r->csr_der, csr->ptr, csr->len) != 0) {
        return -1;
    }
    mdm_hex(md, 32, r->req_hash);
    mdm_hex(r->nonce, r->nonce_len, r->nonce_hex);
    r->consume =
        r->ca->challenge_mode == CH_DYNAMIC && r->msg_type == MT_PKCSREQ;
    if (!r->consume) {
        snprintf(r->chal_hash, sizeof(r->chal_hash), "-");
        return 0;
    }
    if (EVP_Digest(chal, strlen(chal), md, &mdlen, EVP_sha256(), NULL) != 1) {
        return -1;
    }
    mdm_hex(md, 32, r->chal_hash);
    return 0;
}

static mdm_step_t
pki_cert_request(mdm_scep_req_t *r, const mdm_buf_t *data)
{
    const mdm_scep_ca_t *ca = r->ca;
    mdm_scep_csr_t csr;
    X509_NAME *subject;
    EVP_PKEY *pub;
    unsigned char md[32];
    unsigned int mdlen;
    char chal[MDM_SCEP_MAX_CHAL + 1] = "";
    mdm_step_t step;
    int bits, ok, id;

    if (mdm_scep_csr_read(r, data, &csr) != 0) {
        mdm_scep_csr_free(&csr);
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08014",
                                 "messageData is not a DER PKCS#10 request");
    }
    /* the version field is not checked: macOS 2016 sent 2 instead of 0 */
    pub = csr.pub;
    subject = csr.der->info->subject;
    if (!mdm_scep_csr_verify(&csr)) {
        step = mdm_scep_fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08014",
                                 "the CSR's self-signature does not verify");
        goto done;
    }
    free(r->subject);
    r->subject = mdm_scep_name_str(subject);
    r->vars[MDM_SCEP_VAR_SUBJECT] = r->subject;
    if (X509_NAME_entry_count(subject) == 0) {
        step = mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08015",
                                 "the CSR has an empty subject");
        goto done;
    }
    bits = EVP_PKEY_get_bits(pub);
    id = EVP_PKEY_get_base_id(pub);
    if (id == EVP_PKEY_RSA) {
        ok = bits >= ca->min_key_bits;
    } else if (id == EVP_PKEY_EC) {
        ok = bits >= 256;
    } else {
        step = mdm_scep_fail_rep(
            r, FAIL_BADALG, "MDM08010",
            "CSR key type %s not supported (RSA or EC only)", OBJ_nid2sn(id));
        goto done;
    }
    if (!ok) {
        step = mdm_scep_fail_rep(
            r, FAIL_BADREQUEST, "MDM08016",
            "CSR key of %d bits is below the minimum of %ld", bits,
            id == EVP_PKEY_RSA ? ca->min_key_bits : 256L);
        goto done;
    }

    if (r->msg_type == MT_PKCSREQ && ca->challenge_mode != CH_NONE) {
        if (mdm_scep_challenge_of(r, &csr, chal, sizeof(chal)) != 0) {
            step = mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08017",
                                     "no challengePassword in the request");
            goto done;
        }
        if (ca->challenge_mode == CH_STATIC) {
            /* digests of equal length: the comparison leaks nothing,
             * not even the configured challenge's length */
            ok = EVP_Digest(chal, strlen(chal), md, &mdlen, EVP_sha256(),
                            NULL) == 1 &&
                 CRYPTO_memcmp(md, ca->challenge_md, 32) == 0;
            if (!ok) {
                step = mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08017",
                                         "wrong challengePassword");
                goto done;
            }
        }
    }
    if (r->msg_type == MT_RENEWAL) {
        if (X509_check_issued(ca->ca, r->signer) != X509_V_OK ||
            X509_verify(r->signer, X509_get0_pubkey(ca->ca)) != 1) {
            step = mdm_scep_fail_rep(
                r, FAIL_BADREQUEST, "MDM08019",
                "RenewalReq not signed by a certificate of this CA");
            goto done;
        }
        if (X509_cmp_time(X509_get0_notBefore(r->signer), &r->now) >= 0 ||
            X509_cmp_time(X509_get0_notAfter(r->signer), &r->now) <= 0) {
            step =
                mdm_scep_fail_rep(r, FAIL_BADTIME, "MDM08018",
                                  "RenewalReq signed by a certificate that is "
                                  "expired or not yet valid");
            goto done;
        }
        if (mdm_scep_serial_hex(X509_get0_serialNumber(r->signer),
                                r->renew_serial,
                                sizeof(r->renew_serial)) != 0) {
            step = mdm_scep_fail_rep(
                r, FAIL_BADREQUEST, "MDM08019",
                "RenewalReq signer has an unusable serial number");
            goto done;
        }
        /* a certificate renews itself, it does not buy another name */
        if (X509_NAME_cmp(subject, X509_get_subject_name(r->signer)) != 0) {
            step = mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08023",
                                     "RenewalReq for another subject than the "
                                     "certificate it is signed with");
            goto done;
        }
    }
    if (X509_cmp_time(X509_get0_notBefore(ca->ca), &r->now) >= 0 ||
        X509_cmp_time(X509_get0_notAfter(ca->ca), &r->now) <= 0) {
        step =
            mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM08041",
                          "SCEP %s (transaction %s): the CA certificate is not "
                          "valid now; nothing issued",
                          mdm_scep_msg_type_name(r->msg_type), r->txid);
        goto done;
    }
    if (request_ids(r, data, chal) != 0) {
        step = mdm_tx_oom(&r->base);
        goto done;
    }
    step = plan_check(r);
done:
    OPENSSL_cleanse(chal, sizeof(chal));
    mdm_scep_csr_free(&csr);
    return step;
}

static mdm_step_t
pki_get_cert(mdm_scep_req_t *r, const mdm_buf_t *data)
{
    const unsigned char *p = data->ptr;
    PKCS7_ISSUER_AND_SERIAL *ias = NULL;
    mdm_step_t step;

    if (data->len == 0 || data->len > LONG_MAX ||
        (ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long) data->len)) ==
            NULL ||
        p != data->ptr + data->len) {
        PKCS7_ISSUER_AND_SERIAL_free(ias);
        return mdm_scep_fail_rep(
            r, FAIL_BADREQUEST, "MDM08021",
            "GetCert messageData is not an IssuerAndSerialNumber");
    }
    if (X509_NAME_cmp(ias->issuer, X509_get_subject_name(r->ca->ca)) != 0) {
        step = mdm_scep_fail_rep(r, FAIL_BADCERTID, "MDM08021",
                                 "GetCert for a certificate of another issuer");
    } else if (mdm_scep_serial_hex(ias->serial, r->serial, sizeof(r->serial)) !=
               0) {
        step = mdm_scep_fail_rep(r, FAIL_BADCERTID, "MDM08021",
                                 "GetCert for an unusable serial number");
    } else {
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
        step = plan_lookup(r, r->ca->k_cert, r->serial);
    }
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    return step;
}

/* The outer SignedData, its signature and message type, the envelope:
 * then what the message type asks. */
mdm_step_t
mdm_scep_pki_start(mdm_scep_req_t *r)
{
    const char *why;
    char detail[512];
    mdm_buf_t data = {0};
    STACK_OF(X509) * signers;
    mdm_step_t step;
    int nid;

    why = mdm_scep_parse_outer(r);
    if (why != NULL) {
        return mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08001",
                             "SCEP PKIOperation is not a pkiMessage: %s", why);
    }
    mdm_scep_set_var(r, MDM_SCEP_VAR_MESSAGE_TYPE,
                     mdm_scep_msg_type_name(r->msg_type));
    r->md = mdm_scep_digest_of(r->si, &nid);
    if (r->md == NULL) {
        return mdm_scep_fail_rep(
            r, FAIL_BADALG, "MDM08010", "digest algorithm %s not supported",
            nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid));
    }
    /* The signer is the requester's own (often self-signed) certificate:
     * its trust is decided per message type below, not by a chain. */
    if (CMS_verify(r->cms, NULL, NULL, NULL, NULL,
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
        return mdm_scep_fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08011",
                                 "the pkiMessage signature does not verify");
    }
    signers = CMS_get0_signers(r->cms);
    if (signers == NULL || sk_X509_num(signers) != 1 ||
        sk_X509_value(signers, 0) == NULL) {
        sk_X509_free(signers);
        return mdm_scep_fail_rep(
            r, FAIL_BADMESSAGECHECK, "MDM08011",
            "the signer certificate is not in the pkiMessage");
    }
    r->signer = sk_X509_value(signers, 0);
    X509_up_ref(r->signer);
    sk_X509_free(signers);

    switch (r->msg_type) {
    case MT_PKCSREQ:
    case MT_CERTPOLL:
    case MT_GETCERT:
        break;
    case MT_RENEWAL:
        if (r->ca->renewal) {
            break;
        }
        /* fall through */
    default:
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08013",
                                 "messageType %d not supported", r->msg_type);
    }

    switch (mdm_scep_open_envelope(r, &data, detail, sizeof(detail))) {
    case ENV_OK:
        break;
    case ENV_BAD_ALG:
        return mdm_scep_fail_rep(r, FAIL_BADALG, "MDM08010", "%s", detail);
    case ENV_NOT_ENVELOPED:
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08012", "%s", detail);
    default:
        return mdm_scep_fail_rep(r, FAIL_BADMESSAGECHECK, "MDM08012", "%s",
                                 detail);
    }

    switch (r->msg_type) {
    case MT_CERTPOLL:
        /* IssuerAndSubject; the transactionID is what identifies the
         * request, and answers stay encrypted to the poller */
        step = plan_lookup(r, r->ca->k_txn, r->txid);
        break;
    case MT_GETCERT:
        step = pki_get_cert(r, &data);
        break;
    default:
        step = pki_cert_request(r, &data);
        break;
    }
    OPENSSL_cleanse(data.ptr, data.len);
    mdm_buf_free(&data);
    return step;
}

/* ---------------------------------------------------------------- */
/* replies                                                          */

static mdm_step_t
found_cert(mdm_scep_req_t *r, const char *der, size_t len, int repeated)
{
    const unsigned char *p = (const unsigned char *) der;
    X509 *x = len > 0 && len < 65536 ? d2i_X509(NULL, &p, (long) len) : NULL;
    mdm_step_t step;

    if (x == NULL || p != (const unsigned char *) der + len) {
        X509_free(x);
        return mdm_scep_storage_failed(r, NULL);
    }
    X509_free(r->cert);
    r->cert = x;
    if (mdm_scep_serial_hex(X509_get0_serialNumber(x), r->serial,
                            sizeof(r->serial)) == 0) {
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
    }
    step = mdm_scep_reply_certrep(r, PKI_SUCCESS, 0);
    if (r->base.resp.status == 200) {
        mdm_tx_log(&r->base, MDM_LOG_INFO, repeated ? "MDM08034" : "MDM08030",
                   repeated ? "SCEP %s (transaction %s) seen before: "
                              "certificate %s sent again, nothing issued"
                            : "SCEP %s (transaction %s): certificate %s sent",
                   mdm_scep_msg_type_name(r->msg_type), r->txid, r->serial);
    }
    return step;
}

static mdm_step_t
pending_rep(mdm_scep_req_t *r, const char *id, const char *what)
{
    mdm_step_t step = mdm_scep_reply_certrep(r, PKI_PENDING, 0);

    if (r->base.resp.status == 200) {
        mdm_tx_log(&r->base, MDM_LOG_INFO, id,
                   "SCEP %s (transaction %s)%s%s%s: %s",
                   mdm_scep_msg_type_name(r->msg_type), r->txid,
                   r->subject ? " for \"" : "", r->subject ? r->subject : "",
                   r->subject ? "\"" : "", what);
    }
    return step;
}

/* A string element of a reply, NULL when nil (or not a string). */
static const redisReply *
elem(const redisReply *rep, size_t i)
{
    const redisReply *e = i < rep->elements ? rep->element[i] : NULL;

    return e && e->type == REDIS_REPLY_STRING ? e : NULL;
}

static int
elem_is(const redisReply *e, const char *s)
{
    return e && e->len == strlen(s) && memcmp(e->str, s, e->len) == 0;
}

/*
 * A PKCSReq or RenewalReq whose transaction has a record (state, request
 * digest, senderNonce, certificate). The same request (a replayed
 * pkiMessage, or the client resending after a lost answer) gets the
 * record's answer and nothing is signed; another request in an answered
 * transaction is refused, except a RenewalReq with its own request and
 * nonce, which starts the transaction over. 1 in *fresh: go on.
 */
static mdm_step_t
decide(mdm_scep_req_t *r, const redisReply *state, const redisReply *req,
       const redisReply *nonce, const redisReply *der, int *fresh)
{
    *fresh = 0;
    if (state == NULL || req == NULL) {
        *fresh = 1;
        return MDM_STEP_DONE;
    }
    if (elem_is(req, r->req_hash)) {
        if (elem_is(state, "pending")) {
            return pending_rep(r, "MDM08033",
                               "seen before, still waiting for approval");
        }
        if (elem_is(state, "rejected")) {
            return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08025",
                                     "the request was rejected by the admin");
        }
        if (der == NULL) {
            return mdm_scep_storage_failed(r, NULL);
        }
        return found_cert(r, der->str, der->len, 1);
    }
    if (elem_is(nonce, r->nonce_hex)) {
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08024",
                                 "senderNonce %.32s reused by another "
                                 "request",
                                 r->nonce_hex);
    }
    if (r->msg_type == MT_RENEWAL && !elem_is(state, "pending")) {
        *fresh = 1;
        return MDM_STEP_DONE;
    }
    return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08024",
                             "transactionID already used by another request");
}

/* A new request: kept for approval, or signed and recorded. */
static mdm_step_t
issue_now(mdm_scep_req_t *r)
{
    mdm_scep_csr_t csr;
    int rc;

    if (r->ca->approval_manual && r->msg_type == MT_PKCSREQ) {
        return mdm_scep_plan_issue(r, ISSUE_PEND, SST_ISSUE);
    }
    rc = mdm_scep_csr_read(r, &r->csr_der, &csr) != 0 ||
         mdm_scep_issue(r, &csr) != 0 ||
         mdm_scep_serial_hex(X509_get0_serialNumber(r->cert), r->serial,
                             sizeof(r->serial)) != 0 ||
         mdm_cert_sha256_hex(r->cert, r->cert_hash) != 0;
    mdm_scep_csr_free(&csr);
    if (rc) {
        return mdm_tx_refuse(
            &r->base, 500, MDM_LOG_ERR, "MDM08040",
            "SCEP %s (transaction %s): cannot sign the certificate",
            mdm_scep_msg_type_name(r->msg_type), r->txid);
    }
    r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
    return mdm_scep_plan_issue(r, ISSUE_NEW, SST_ISSUE);
}

static mdm_step_t
lookup_reply(mdm_scep_req_t *r, const redisReply *rep)
{
    const redisReply *der, *state;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        return mdm_scep_storage_failed(r, rep);
    }
    der = elem(rep, 0);
    state = elem(rep, 1);
    if (elem_is(state, "pending")) {
        return pending_rep(r, "MDM08033", "still waiting for approval");
    }
    if (elem_is(state, "rejected")) {
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08025",
                                 "the request was rejected by the admin");
    }
    if (der == NULL) {
        if (r->msg_type == MT_CERTPOLL) {
            return mdm_scep_fail_rep(r, FAIL_BADCERTID, "MDM08022",
                                     "no certificate was issued in this "
                                     "transaction");
        }
        return mdm_scep_fail_rep(r, FAIL_BADCERTID, "MDM08021",
                                 "no certificate with serial %s was issued "
                                 "here",
                                 r->serial);
    }
    return found_cert(r, der->str, der->len, 0);
}

/* The reply to the CHECK, ISSUE or LOOKUP plan: the CertRep, or the next
 * plan. */
mdm_step_t
mdm_scep_pki_feed(mdm_scep_req_t *r, const redisReply *rep)
{
    const redisReply *s;
    mdm_step_t step;
    int fresh;

    if (r->state == SST_LOOKUP) {
        return lookup_reply(r, rep);
    }
    if (r->state == SST_CHECK) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
            return mdm_scep_storage_failed(r, rep);
        }
        step = decide(r, elem(rep, 0), elem(rep, 1), elem(rep, 2), elem(rep, 3),
                      &fresh);
        return fresh ? issue_now(r) : step;
    }
    /* SST_ISSUE */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        (s = elem(rep, 0)) == NULL) {
        return mdm_scep_storage_failed(r, rep);
    }
    if (elem_is(s, "EXISTS") && rep->elements == 5) {
        /* a request of the same transaction got there first */
        step = decide(r, elem(rep, 1), elem(rep, 2), elem(rep, 3), elem(rep, 4),
                      &fresh);
        return fresh ? mdm_scep_storage_failed(r, rep) : step;
    }
    if (elem_is(s, "NOCHALLENGE")) {
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08017",
                                 "challenge unknown, expired or already used");
    }
    if (elem_is(s, "REVOKED")) {
        return mdm_scep_fail_rep(r, FAIL_BADREQUEST, "MDM08020",
                                 "RenewalReq signed by revoked certificate %s",
                                 r->renew_serial);
    }
    if (!elem_is(s, "OK")) {
        return mdm_scep_storage_failed(r, rep);
    }
    if (r->cert == NULL) {
        return pending_rep(r, "MDM08033", "kept for the admin's approval");
    }
    step = mdm_scep_reply_certrep(r, PKI_SUCCESS, 0);
    if (r->base.resp.status == 200) {
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM08030",
                   "SCEP %s (transaction %s): issued certificate %s to \"%s\"",
                   mdm_scep_msg_type_name(r->msg_type), r->txid, r->serial,
                   r->subject ? r->subject : "");
    }
    return step;
}
