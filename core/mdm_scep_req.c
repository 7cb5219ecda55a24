/*
 * The SCEP request object, shared by both SCEP transaction types (the
 * HTTP one of mdm_scep.c, the admin one of mdm_scep_admin.c): allocation
 * with a type's ops, the frame that every start and feed runs in, the
 * small helpers they share, and the public accessors. The answers
 * themselves are mdm_tx.c's.
 */
#include "mdm_scep_int.h"

#include <stdio.h>
#include <string.h>

#include <hiredis.h>
#include <openssl/err.h>
#include <openssl/x509.h>

mdm_scep_req_t *
mdm_scep_req_alloc(const mdm_scep_ca_t *ca, const mdm_tx_ops_t *ops)
{
    mdm_scep_req_t *r = (mdm_scep_req_t *) mdm_tx_new(sizeof(*r), ops, NULL);

    if (r != NULL) {
        r->ca = ca;
    }
    return r;
}

void
mdm_scep_tx_free(mdm_tx_t *tx)
{
    mdm_scep_req_t *r = (mdm_scep_req_t *) tx;

    mdm_buf_free(&r->decoded);
    free(r->admin_arg);
    CMS_ContentInfo_free(r->cms);
    X509_free(r->signer);
    X509_free(r->cert);
    mdm_buf_free(&r->cert_der);
    mdm_buf_free(&r->csr_der);
    free(r->subject);
}

/*
 * The frames bracket the work with ERR_set_mark() and ERR_pop_to_mark(),
 * as mdm_identity does: OpenSSL errors raised by a refused message must
 * not reach unrelated code on the same thread (the web server's TLS), and
 * the caller's own errors stay put.
 */
mdm_step_t
mdm_scep_tx_start(mdm_tx_t *tx, mdm_step_t (*fn)(mdm_scep_req_t *r))
{
    mdm_scep_req_t *r = (mdm_scep_req_t *) tx;
    mdm_step_t step;

    ERR_set_mark();
    if (r->state != SST_NONE) {
        step = MDM_STEP_REDIS; /* started already */
    } else {
        if (r->now == 0) {
            r->now = time(NULL);
        }
        if (!r->ca->finished) {
            step = mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM09002",
                                 "SCEP configuration not finished");
        } else {
            step = fn(r);
        }
    }
    ERR_pop_to_mark();
    /* the borrowed message is not read after start */
    r->msg = NULL;
    r->msg_len = 0;
    return step;
}

mdm_step_t
mdm_scep_tx_feed(mdm_tx_t *tx, struct redisReply *const *replies, size_t n,
                 mdm_step_t (*fn)(mdm_scep_req_t *r, const redisReply *rep))
{
    mdm_scep_req_t *r = (mdm_scep_req_t *) tx;
    const redisReply *rep = (replies && n > 0) ? replies[0] : NULL;
    mdm_step_t step;

    if (r->state == SST_NONE) {
        return MDM_STEP_DONE;
    }
    ERR_set_mark();
    if (rep == NULL) {
        step = mdm_scep_storage_failed(r, NULL);
    } else if (mdm_tx_noscript(&r->base, rep)) {
        step = MDM_STEP_REDIS;
    } else {
        step = fn(r, rep);
    }
    ERR_pop_to_mark();
    return step;
}

int
mdm_scep_method_is(const char *m, size_t mlen, const char *want)
{
    return m && mlen == strlen(want) && memcmp(m, want, mlen) == 0;
}

void
mdm_scep_set_var(mdm_scep_req_t *r, mdm_scep_var_t v, const char *value)
{
    r->vars[v] = value;
    if (v == MDM_SCEP_VAR_OPERATION || v == MDM_SCEP_VAR_MESSAGE_TYPE) {
        r->base.vars[MDM_VAR_MESSAGE] = value;
    }
}

mdm_step_t
mdm_scep_storage_failed(mdm_scep_req_t *r, const redisReply *rep)
{
    snprintf(r->what, sizeof(r->what), "SCEP %s",
             mdm_scep_msg_type_name(r->msg_type));
    r->base.what = r->what;
    mdm_tx_storage_failed(&r->base, rep);
    r->base.what = NULL;
    return MDM_STEP_DONE;
}

mdm_step_t
mdm_scep_plan_done(mdm_scep_req_t *r, int state)
{
    r->state = state;
    return mdm_tx_plan(&r->base, r->base.pb.ncmds);
}

/* The DER of r->cert into r->cert_der, its notAfter into *not_after. */
static int
cert_der(mdm_scep_req_t *r, long long *not_after)
{
    unsigned char *der = NULL;
    struct tm tm;
    int n;

    if (ASN1_TIME_to_tm(X509_get0_notAfter(r->cert), &tm) != 1 ||
        (n = i2d_X509(r->cert, &der)) <= 0) {
        return -1;
    }
    *not_after = (long long) timegm(&tm);
    n = mdm_buf_set(&r->cert_der, der, (size_t) n);
    OPENSSL_free(der);
    return n;
}

mdm_step_t
mdm_scep_plan_issue(mdm_scep_req_t *r, int mode, int state)
{
    static const char *const modes[] = {"issue", "pend", "approve"};
    const mdm_scep_ca_t *ca = r->ca;
    mdm_planb_t *pb = &r->base.pb;
    long long not_after = 0;

    if (mode != ISSUE_PEND && cert_der(r, &not_after) != 0) {
        return mdm_tx_oom(&r->base);
    }
    mdm_planb_reset(pb);
    r->base.evalled = 0;
    mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_ISSUE);
    mdm_planb_str(pb, "6");
    mdm_planb_fmt(pb, "%s%s", ca->k_chal, r->chal_hash[0] ? r->chal_hash : "-");
    mdm_planb_fmt(pb, "%s%s", ca->k_cert, mode == ISSUE_PEND ? "-" : r->serial);
    mdm_planb_str(pb, ca->k_issued);
    mdm_planb_str(pb, ca->k_revoked);
    mdm_planb_fmt(pb, "%s%s", ca->k_txn, r->txid);
    mdm_planb_str(pb, ca->k_pending);
    mdm_planb_str(pb, r->consume ? "consume" : "keep");
    mdm_planb_str(pb, mode == ISSUE_PEND ? "" : r->serial);
    mdm_planb_str(pb, r->subject ? r->subject : "");
    mdm_planb_str(pb, mode == ISSUE_PEND ? "" : r->cert_hash);
    mdm_planb_fmt(pb, "%lld", not_after);
    /* borrowed: r->cert_der and r->csr_der live as long as the
     * transaction */
    mdm_planb_arg(pb, r->cert_der.ptr ? (const char *) r->cert_der.ptr : "",
                  r->cert_der.len);
    mdm_planb_str(pb, r->txid);
    mdm_planb_str(pb, mdm_scep_msg_type_name(r->msg_type));
    mdm_planb_str(pb, r->renew_serial);
    if (mode == ISSUE_PEND) {
        mdm_planb_fmt(pb, "%ld", ca->pending_ttl);
    } else {
        mdm_planb_str(pb, MDM_SCEP_TXN_TTL);
    }
    mdm_planb_str(pb, modes[mode]);
    mdm_planb_str(pb, r->req_hash);
    mdm_planb_str(pb, r->nonce_hex);
    mdm_planb_arg(pb, r->csr_der.ptr ? (const char *) r->csr_der.ptr : "",
                  mode == ISSUE_PEND ? r->csr_der.len : 0);
    return mdm_scep_plan_done(r, state);
}

/* ---------------------------------------------------------------- */
/* public accessors                                                 */

mdm_req_t *
mdm_scep_req_tx(mdm_scep_req_t *r)
{
    return &r->base;
}

void
mdm_scep_req_free(mdm_scep_req_t *r)
{
    if (r != NULL) {
        mdm_tx_free(&r->base);
    }
}

void
mdm_scep_req_set_logger(mdm_scep_req_t *r, mdm_log_fn fn, void *data)
{
    r->base.log_fn = fn;
    r->base.log_data = data;
}

void
mdm_scep_req_set_time(mdm_scep_req_t *r, time_t now)
{
    r->now = now;
}

const mdm_plan_t *
mdm_scep_req_plan(const mdm_scep_req_t *r)
{
    return r->base.plan;
}

const mdm_response_t *
mdm_scep_req_response(const mdm_scep_req_t *r)
{
    return &r->base.resp;
}

const char *
mdm_scep_req_var(const mdm_scep_req_t *r, mdm_scep_var_t v)
{
    if (v == MDM_SCEP_VAR_ERROR_ID && r->vars[v] == NULL) {
        return r->base.vars[MDM_VAR_ERROR_ID];
    }
    return (unsigned) v < MDM_SCEP_VAR_COUNT ? r->vars[v] : NULL;
}
