/*
 * mdm_scep: a SCEP CA (RFC 8894) in the core. GetCACaps, GetCACert,
 * GetNextCACert and PKIOperation (PKCSReq, RenewalReq, CertPoll, GetCert);
 * CertRep SUCCESS, PENDING (approval manual) or FAILURE with failInfo. Sans-IO:
 * Redis work is planned (one round trip) and its replies fed back, as for
 * mdm_req_*.
 *
 * This file is the top of the SCEP files (their layers: mdm_scep_int.h):
 * the HTTP routing of a SCEP request, its transaction type, and the
 * public mdm_scep_req_start()/mdm_scep_req_feed() that run either type.
 *
 * Message ids MDM08nnn are stable (README "SCEP"). Every failure writes
 * exactly one log line.
 */
#include "mdm_b64.h"
#include "mdm_scep_int.h"
#include "mdm_text.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* GetCACaps and GetCACert answer from what mdm_scep_ca_finish() made; a
 * PKIOperation is mdm_scep_pki.c's. */
static mdm_step_t
http_start(mdm_scep_req_t *r)
{
    mdm_buf_t b = {0};

    switch (r->op) {
    case OP_CAPS:
        if (mdm_buf_set(&b, r->ca->caps, strlen(r->ca->caps)) != 0) {
            return mdm_tx_oom(&r->base);
        }
        return mdm_tx_reply(&r->base, 200, "text/plain", &b);
    case OP_CACERT:
        if (mdm_buf_set(&b, r->ca->cacert.ptr, r->ca->cacert.len) != 0) {
            return mdm_tx_oom(&r->base);
        }
        return mdm_tx_reply(&r->base, 200, r->ca->cacert_ctype, &b);
    case OP_NEXTCACERT:
        if (r->ca->next_ca == NULL) {
            return mdm_tx_refuse(&r->base, 404, MDM_LOG_NOTICE, "MDM08005",
                                 "SCEP GetNextCACert: no next CA is "
                                 "configured (next_ca_cert)");
        }
        if (mdm_buf_set(&b, r->ca->nextca.ptr, r->ca->nextca.len) != 0) {
            return mdm_tx_oom(&r->base);
        }
        return mdm_tx_reply(&r->base, 200, "application/x-x509-next-ca-cert",
                            &b);
    default:
        return mdm_scep_pki_start(r);
    }
}

static mdm_step_t
scep_start(mdm_tx_t *tx)
{
    return mdm_scep_tx_start(tx, http_start);
}

static mdm_step_t
scep_feed(mdm_tx_t *tx, struct redisReply *const *replies, size_t n)
{
    return mdm_scep_tx_feed(tx, replies, n, mdm_scep_pki_feed);
}

static const mdm_tx_ops_t scep_ops = {"scep", scep_start, scep_feed,
                                      mdm_scep_tx_free};

mdm_scep_req_t *
mdm_scep_req_new_http(const mdm_scep_ca_t *ca, const char *method, size_t mlen,
                      const char *query, size_t qlen, const unsigned char *body,
                      size_t blen)
{
    mdm_scep_req_t *r = mdm_scep_req_alloc(ca, &scep_ops);
    const char *v, *msg;
    unsigned char op[32];
    size_t vlen = 0, oplen = 0, msglen = 0;
    int get = mdm_scep_method_is(method, mlen, "GET") ||
              mdm_scep_method_is(method, mlen, "HEAD");
    int post = mdm_scep_method_is(method, mlen, "POST");

    if (r == NULL) {
        return NULL;
    }
    if (!mdm_query_find(query, qlen, "operation", &v, &vlen) || v == NULL ||
        vlen >= sizeof(op) || mdm_pct_decode(v, vlen, op, &oplen, 0) != 0) {
        mdm_tx_pre_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08002", 0,
                          "SCEP request without a valid operation");
        return r;
    }
    if (strcasecmp((char *) op, "GetCACaps") == 0) {
        r->op = OP_CAPS;
        mdm_scep_set_var(r, MDM_SCEP_VAR_OPERATION, "GetCACaps");
    } else if (strcasecmp((char *) op, "GetCACert") == 0) {
        r->op = OP_CACERT;
        mdm_scep_set_var(r, MDM_SCEP_VAR_OPERATION, "GetCACert");
    } else if (strcasecmp((char *) op, "GetNextCACert") == 0) {
        r->op = OP_NEXTCACERT;
        mdm_scep_set_var(r, MDM_SCEP_VAR_OPERATION, "GetNextCACert");
    } else if (strcasecmp((char *) op, "PKIOperation") == 0) {
        r->op = OP_PKI;
        mdm_scep_set_var(r, MDM_SCEP_VAR_OPERATION, "PKIOperation");
    } else {
        for (vlen = 0; vlen < oplen && op[vlen] >= 0x20 && op[vlen] < 0x7f;
             vlen++) {
        }
        /* echoed only when it cannot break the log line */
        mdm_tx_pre_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08002", 0,
                          "SCEP operation \"%.40s\" not supported",
                          vlen == oplen ? (char *) op : "(unprintable)");
        return r;
    }
    if (r->op != OP_PKI) {
        if (!get) {
            mdm_tx_pre_refuse(
                &r->base, 405, MDM_LOG_WARN, "MDM08003", 0,
                "SCEP %s with method %.*s", r->vars[MDM_SCEP_VAR_OPERATION],
                (int) (mlen < 16 ? mlen : 16), method ? method : "");
        }
        return r;
    }
    if (post) {
        /* RFC 8894 says binary; a client that sends base64 anyway is
         * recognised by its first byte (DER starts with 0x30) */
        if (blen > 0 && body != NULL && body[0] != 0x30) {
            if (mdm_scep_b64_decode((const char *) body, blen, &r->decoded.ptr,
                                    &r->decoded.len) != 0) {
                mdm_tx_pre_refuse(
                    &r->base, 400, MDM_LOG_WARN, "MDM08001", 0,
                    "SCEP PKIOperation body is neither DER nor base64");
                return r;
            }
            r->msg = r->decoded.ptr;
            r->msg_len = r->decoded.len;
        } else {
            r->msg = body;
            r->msg_len = blen;
        }
        return r;
    }
    /* HEAD is for the read-only operations: a PKIOperation issues */
    if (!mdm_scep_method_is(method, mlen, "GET")) {
        mdm_tx_pre_refuse(&r->base, 405, MDM_LOG_WARN, "MDM08003", 0,
                          "SCEP PKIOperation with method %.*s",
                          (int) (mlen < 16 ? mlen : 16), method ? method : "");
        return r;
    }
    if (!mdm_query_find(query, qlen, "message", &msg, &msglen) || msg == NULL ||
        mdm_scep_b64_decode(msg, msglen, &r->decoded.ptr, &r->decoded.len) !=
            0) {
        mdm_tx_pre_refuse(&r->base, 400, MDM_LOG_WARN, "MDM08004", 0,
                          "SCEP PKIOperation GET without a base64 message");
        return r;
    }
    r->msg = r->decoded.ptr;
    r->msg_len = r->decoded.len;
    return r;
}

mdm_step_t
mdm_scep_req_start(mdm_scep_req_t *r)
{
    mdm_step_t step = mdm_tx_start(&r->base);

    /* the borrowed message is not read after start */
    r->msg = NULL;
    r->msg_len = 0;
    return step;
}

mdm_step_t
mdm_scep_req_feed(mdm_scep_req_t *r, struct redisReply *const *replies,
                  size_t n)
{
    return mdm_tx_feed(&r->base, replies, n);
}

/* The GET message's base64: the one decoder's lenient mode (mdm_b64.h). */
int
mdm_scep_b64_decode(const char *in, size_t len, unsigned char **out,
                    size_t *outlen)
{
    return mdm_b64_decode(in, len, MDM_B64_LENIENT, out, outlen) == 0 ? 0 : -1;
}
