/*
 * The SCEP admin transaction (JSON answers, same plan/feed loop):
 *
 *   CHALLENGE  a one-time challenge (given, or 32 random hex characters)
 *              stored as its SHA-256 with a lifetime, dynamic mode only
 *   REVOKE     an issued certificate marked revoked (scep_revoke.lua)
 *   PENDING    the requests awaiting approval (scep_pending.lua)
 *   APPROVE    a pending request read, its certificate signed, then
 *              recorded by scep_issue.lua if it is still pending
 *   REJECT     a pending request refused (scep_pending.lua)
 *
 * and their HTTP routes (POST /challenge, POST /revoke/SERIAL, GET
 * /pending, POST /pending/TXID/approve|reject), so that both web server
 * modules expose one API.
 */
#include "mdm_scep_int.h"
#include "mdm_text.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>

static mdm_step_t admin_error(mdm_scep_req_t *r, int status, const char *id,
                              const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mdm_step_t
admin_error(mdm_scep_req_t *r, int status, const char *id, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return mdm_tx_json_error(&r->base, status, id, buf);
}

/* "01:AB:cd" -> "1abcd"; -1 unless 1-40 hex digits. */
static int
norm_serial(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *p;

    for (p = in; *p; p++) {
        if (*p == ':' || *p == ' ') {
            continue;
        }
        if (mdm_hexval((unsigned char) *p) < 0 || o + 1 >= cap || o >= 40) {
            return -1;
        }
        if (o == 0 && *p == '0') {
            continue;
        }
        out[o++] = (char) tolower((unsigned char) *p);
    }
    if (o == 0) {
        /* all zeros (or empty) is no serial this CA issues */
        return -1;
    }
    out[o] = '\0';
    return 0;
}

/* A transactionID as the admin gives it: what a pkiMessage may carry. */
static int
txid_ok(const char *t)
{
    const char *p;

    for (p = t; p && *p; p++) {
        if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e) {
            return 0;
        }
    }
    return t != NULL && p != t && (size_t) (p - t) <= MDM_SCEP_MAX_TXID;
}

static mdm_step_t
pending_start(mdm_scep_req_t *r)
{
    const mdm_scep_ca_t *ca = r->ca;
    mdm_planb_t *pb = &r->base.pb;

    if (r->admin_op == MDM_SCEP_ADMIN_PENDING) {
        mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_PENDING);
        mdm_planb_str(pb, "1");
        mdm_planb_str(pb, ca->k_pending);
        mdm_planb_str(pb, "list");
        mdm_planb_str(pb, ca->k_txn);
        return mdm_scep_plan_done(r, SST_ADMIN);
    }
    if (!txid_ok(r->admin_arg)) {
        return admin_error(r, 400, "MDM08050",
                           "a transactionID is 1-%d printable ASCII "
                           "characters",
                           MDM_SCEP_MAX_TXID);
    }
    snprintf(r->txid, sizeof(r->txid), "%s", r->admin_arg);
    r->vars[MDM_SCEP_VAR_TRANSACTION_ID] = r->txid;
    if (r->admin_op == MDM_SCEP_ADMIN_REJECT) {
        mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_PENDING);
        mdm_planb_str(pb, "2");
        mdm_planb_str(pb, ca->k_pending);
        mdm_planb_fmt(pb, "%s%s", ca->k_txn, r->txid);
        mdm_planb_str(pb, "reject");
        mdm_planb_str(pb, "");
        mdm_planb_str(pb, r->txid);
        mdm_planb_str(pb, MDM_SCEP_TXN_TTL);
        return mdm_scep_plan_done(r, SST_ADMIN);
    }
    mdm_planb_cmd(pb);
    mdm_planb_str(pb, "HMGET");
    mdm_planb_fmt(pb, "%s%s", ca->k_txn, r->txid);
    mdm_planb_str(pb, "state");
    mdm_planb_str(pb, "req");
    mdm_planb_str(pb, "nonce");
    mdm_planb_str(pb, "subject");
    mdm_planb_str(pb, "csr");
    return mdm_scep_plan_done(r, SST_APPROVE_READ);
}

static mdm_step_t
admin_start(mdm_scep_req_t *r)
{
    const mdm_scep_ca_t *ca = r->ca;
    unsigned char rnd[16], md[32];
    unsigned int mdlen;
    char hex[65];
    const char *p;
    long ttl;

    mdm_planb_reset(&r->base.pb);
    r->base.script = 0;
    if (r->admin_op == MDM_SCEP_ADMIN_CHALLENGE) {
        if (ca->challenge_mode != CH_DYNAMIC) {
            return admin_error(
                r, 400, "MDM08050",
                "one-time challenges need challenge \"dynamic\"");
        }
        if (r->admin_arg == NULL) {
            if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
                (r->admin_arg = malloc(33)) == NULL) {
                return mdm_tx_oom(&r->base);
            }
            mdm_hex(rnd, sizeof(rnd), r->admin_arg);
        }
        for (p = r->admin_arg; *p; p++) {
            if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e) {
                break;
            }
        }
        if (*p != '\0' || p == r->admin_arg ||
            strlen(r->admin_arg) > MDM_SCEP_MAX_CHAL) {
            return admin_error(r, 400, "MDM08050",
                               "a challenge is 1-%d printable ASCII characters "
                               "without spaces",
                               MDM_SCEP_MAX_CHAL);
        }
        ttl = r->admin_ttl > 0 ? r->admin_ttl : ca->challenge_ttl;
        if (ttl > INT_MAX || EVP_Digest(r->admin_arg, strlen(r->admin_arg), md,
                                        &mdlen, EVP_sha256(), NULL) != 1) {
            return admin_error(r, 400, "MDM08050", "bad challenge lifetime");
        }
        r->admin_ttl = ttl;
        mdm_hex(md, 32, hex);
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, "SET");
        mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_chal, hex);
        mdm_planb_fmt(&r->base.pb, "%lld", (long long) r->now);
        mdm_planb_str(&r->base.pb, "NX");
        mdm_planb_str(&r->base.pb, "EX");
        mdm_planb_fmt(&r->base.pb, "%ld", ttl);
        return mdm_scep_plan_done(r, SST_ADMIN);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_REVOKE) {
        if (r->admin_arg == NULL ||
            norm_serial(r->admin_arg, r->serial, sizeof(r->serial)) != 0) {
            return admin_error(r, 400, "MDM08050",
                               "a serial number is 1-40 hex digits");
        }
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
        mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_REVOKE);
        mdm_planb_str(&r->base.pb, "2");
        mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_cert, r->serial);
        mdm_planb_str(&r->base.pb, ca->k_revoked);
        mdm_planb_str(&r->base.pb, r->serial);
        return mdm_scep_plan_done(r, SST_ADMIN);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_PENDING ||
        r->admin_op == MDM_SCEP_ADMIN_APPROVE ||
        r->admin_op == MDM_SCEP_ADMIN_REJECT) {
        return pending_start(r);
    }
    return admin_error(r, 400, "MDM08050", "unknown SCEP admin operation");
}

static const redisReply *
str_elem(const redisReply *rep, size_t i)
{
    const redisReply *e = i < rep->elements ? rep->element[i] : NULL;

    return e && e->type == REDIS_REPLY_STRING ? e : NULL;
}

static char *
dup_elem(const redisReply *e)
{
    return e ? mdm_strndup(e->str, e->len) : NULL;
}

static mdm_step_t
no_pending(mdm_scep_req_t *r)
{
    return admin_error(r, 404, "MDM08055",
                       "no request of transaction %s is pending", r->txid);
}

/* The pending request read: sign its certificate, record it if it is
 * still pending. Its CSR was checked when it came. */
static mdm_step_t
approve_sign(mdm_scep_req_t *r, const redisReply *rep)
{
    const redisReply *req, *nonce, *csr;
    mdm_scep_csr_t c;
    int rc;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5) {
        return mdm_scep_storage_failed(r, rep);
    }
    req = str_elem(rep, 1);
    nonce = str_elem(rep, 2);
    csr = str_elem(rep, 4);
    if (str_elem(rep, 0) == NULL || strcmp(str_elem(rep, 0)->str, "pending") ||
        req == NULL || req->len != 64 || nonce == NULL ||
        nonce->len >= sizeof(r->nonce_hex) || csr == NULL) {
        return no_pending(r);
    }
    memcpy(r->req_hash, req->str, 65);
    memcpy(r->nonce_hex, nonce->str, nonce->len + 1);
    free(r->subject);
    r->subject = dup_elem(str_elem(rep, 3));
    r->vars[MDM_SCEP_VAR_SUBJECT] = r->subject;
    r->msg_type = MT_PKCSREQ;
    snprintf(r->chal_hash, sizeof(r->chal_hash), "-");
    if (mdm_buf_set(&r->csr_der, csr->str, csr->len) != 0) {
        return mdm_tx_oom(&r->base);
    }
    if (X509_cmp_time(X509_get0_notBefore(r->ca->ca), &r->now) >= 0 ||
        X509_cmp_time(X509_get0_notAfter(r->ca->ca), &r->now) <= 0) {
        return admin_error(r, 500, "MDM08041",
                           "the CA certificate is not valid now; nothing "
                           "issued");
    }
    rc = mdm_scep_csr_read(r, &r->csr_der, &c) != 0 ||
         mdm_scep_issue(r, &c) != 0 ||
         mdm_scep_serial_hex(X509_get0_serialNumber(r->cert), r->serial,
                             sizeof(r->serial)) != 0 ||
         mdm_cert_sha256_hex(r->cert, r->cert_hash) != 0;
    mdm_scep_csr_free(&c);
    if (rc) {
        return admin_error(r, 500, "MDM08040",
                           "cannot sign the certificate of transaction %s",
                           r->txid);
    }
    r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
    return mdm_scep_plan_issue(r, ISSUE_APPROVE, SST_APPROVE_WRITE);
}

static mdm_step_t
pending_list(mdm_scep_req_t *r, const redisReply *rep)
{
    json_t *a = json_array(), *o;
    const redisReply *e;
    size_t i;

    if (rep->type != REDIS_REPLY_ARRAY || a == NULL) {
        json_decref(a);
        return mdm_scep_storage_failed(r, rep);
    }
    for (i = 0; i < rep->elements; i++) {
        e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
            str_elem(e, 0) == NULL || str_elem(e, 1) == NULL ||
            str_elem(e, 2) == NULL || str_elem(e, 3) == NULL) {
            json_decref(a);
            return mdm_scep_storage_failed(r, rep);
        }
        o = json_pack("{s:s%,s:s%,s:s%,s:I}", "transaction_id",
                      e->element[0]->str, e->element[0]->len, "subject",
                      e->element[1]->str, e->element[1]->len, "kind",
                      e->element[2]->str, e->element[2]->len, "requested",
                      (json_int_t) strtoll(e->element[3]->str, NULL, 10));
        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return mdm_tx_oom(&r->base);
        }
    }
    return mdm_tx_json(&r->base, 200, json_pack("{s:o}", "pending", a));
}

static mdm_step_t
pending_feed(mdm_scep_req_t *r, const redisReply *rep)
{
    const redisReply *s;

    if (r->state == SST_APPROVE_READ) {
        return approve_sign(r, rep);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_PENDING) {
        return pending_list(r, rep);
    }
    if (rep->type != REDIS_REPLY_ARRAY || (s = str_elem(rep, 0)) == NULL) {
        return mdm_scep_storage_failed(r, rep);
    }
    if (strcmp(s->str, "GONE") == 0) {
        return no_pending(r);
    }
    if (strcmp(s->str, "OK") != 0) {
        return mdm_scep_storage_failed(r, rep);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_REJECT) {
        mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM08036",
                   "SCEP request of transaction %s rejected", r->txid);
        return mdm_tx_json(
            &r->base, 200,
            json_pack("{s:s,s:b}", "transaction_id", r->txid, "rejected", 1));
    }
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM08035",
               "SCEP request of transaction %s approved: certificate %s "
               "issued to \"%s\"",
               r->txid, r->serial, r->subject ? r->subject : "");
    return mdm_tx_json(&r->base, 200,
                       json_pack("{s:s,s:s,s:b}", "transaction_id", r->txid,
                                 "serial", r->serial, "approved", 1));
}

static mdm_step_t
admin_feed(mdm_scep_req_t *r, const redisReply *rep)
{
    if (r->admin_op >= MDM_SCEP_ADMIN_PENDING) {
        return pending_feed(r, rep);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_CHALLENGE) {
        if (rep->type == REDIS_REPLY_NIL) {
            return admin_error(r, 409, "MDM08052",
                               "this challenge exists already");
        }
        if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "OK") != 0) {
            return mdm_scep_storage_failed(r, rep);
        }
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM08031",
                   "SCEP one-time challenge created (valid %ld s)",
                   r->admin_ttl);
        return mdm_tx_json(&r->base, 201,
                           json_pack("{s:s,s:I}", "challenge", r->admin_arg,
                                     "ttl", (json_int_t) r->admin_ttl));
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return mdm_scep_storage_failed(r, rep);
    }
    if (strcmp(rep->element[0]->str, "UNKNOWN") == 0) {
        return admin_error(r, 404, "MDM08051",
                           "no certificate with serial %s was issued here",
                           r->serial);
    }
    if (strcmp(rep->element[0]->str, "OK") != 0) {
        return mdm_scep_storage_failed(r, rep);
    }
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM08032",
               "SCEP certificate %s revoked", r->serial);
    return mdm_tx_json(
        &r->base, 200,
        json_pack("{s:s,s:b}", "serial", r->serial, "revoked", 1));
}

/* ---------------------------------------------------------------- */
/* the transaction type                                             */

static mdm_step_t
admin_tx_start(mdm_tx_t *tx)
{
    return mdm_scep_tx_start(tx, admin_start);
}

static mdm_step_t
admin_tx_feed(mdm_tx_t *tx, struct redisReply *const *replies, size_t n)
{
    return mdm_scep_tx_feed(tx, replies, n, admin_feed);
}

static const mdm_tx_ops_t admin_ops = {"scep admin", admin_tx_start,
                                       admin_tx_feed, mdm_scep_tx_free};

mdm_scep_req_t *
mdm_scep_req_new_admin(const mdm_scep_ca_t *ca, mdm_scep_admin_op_t op,
                       const char *arg, long ttl)
{
    mdm_scep_req_t *r = mdm_scep_req_alloc(ca, &admin_ops);

    if (r == NULL) {
        return NULL;
    }
    r->admin_op = op;
    r->admin_ttl = ttl;
    if (arg && (r->admin_arg = mdm_strdup(arg)) == NULL) {
        mdm_scep_req_free(r);
        return NULL;
    }
    return r;
}

/* An admin refusal decided while routing: JSON like the others. */
static mdm_scep_req_t *
admin_refused(mdm_scep_req_t *r, int status, const char *id, const char *msg)
{
    if (r == NULL) {
        return NULL;
    }
    mdm_tx_pre_refuse(&r->base, status, MDM_LOG_NOTICE, id, 1, "%s", msg);
    return r;
}

/* TXID/approve, TXID/reject: the TXID percent-decoded (a base64
 * transactionID has '/' as %2F). */
static mdm_scep_req_t *
pending_route(const mdm_scep_ca_t *ca, const char *method, size_t mlen,
              const char *p, size_t n)
{
    unsigned char txid[3 * MDM_SCEP_MAX_TXID + 1];
    const char *slash = memchr(p, '/', n);
    size_t tl, al;
    int op = 0;

    al = slash ? n - (size_t) (slash - p) - 1 : 0;
    if (slash && al == 7 && memcmp(slash + 1, "approve", 7) == 0) {
        op = MDM_SCEP_ADMIN_APPROVE;
    } else if (slash && al == 6 && memcmp(slash + 1, "reject", 6) == 0) {
        op = MDM_SCEP_ADMIN_REJECT;
    }
    if (op == 0) {
        return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 404,
                             "MDM08053", "no such SCEP admin endpoint");
    }
    if (!mdm_scep_method_is(method, mlen, "POST")) {
        return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                             "MDM08054", "use POST");
    }
    if ((size_t) (slash - p) >= sizeof(txid) ||
        mdm_pct_decode(p, (size_t) (slash - p), txid, &tl, 0) != 0 || tl == 0 ||
        tl > MDM_SCEP_MAX_TXID) {
        return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 400,
                             "MDM08050", "bad transactionID");
    }
    return mdm_scep_req_new_admin(ca, op, (const char *) txid, 0);
}

mdm_scep_req_t *
mdm_scep_req_new_admin_http(const mdm_scep_ca_t *ca, const char *method,
                            size_t mlen, const char *path, size_t plen,
                            const unsigned char *body, size_t blen)
{
    mdm_scep_req_t *r;
    json_t *j = NULL, *v;
    json_error_t je;
    const char *chal = NULL;
    unsigned char serial[64];
    size_t slen;
    long ttl = 0;

    while (plen > 0 && path[0] == '/') {
        path++;
        plen--;
    }
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    if (plen == 9 && memcmp(path, "challenge", 9) == 0) {
        if (!mdm_scep_method_is(method, mlen, "POST")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use POST");
        }
        if (blen > 0) {
            j = json_loadb((const char *) body, blen, 0, &je);
            v = j ? json_object_get(j, "ttl") : NULL;
            if (j == NULL || !json_is_object(j) ||
                (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                       json_integer_value(v) > INT_MAX)) ||
                ((chal = json_string_value(json_object_get(j, "challenge"))) ==
                     NULL &&
                 json_object_get(j, "challenge") != NULL)) {
                json_decref(j);
                return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0),
                                     400, "MDM08050",
                                     "body: {\"challenge\": string, \"ttl\": "
                                     "seconds}, both optional");
            }
            ttl = v ? (long) json_integer_value(v) : 0;
        }
        r = mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_CHALLENGE, chal, ttl);
        json_decref(j);
        return r;
    }
    if (plen > 7 && memcmp(path, "revoke/", 7) == 0) {
        if (!mdm_scep_method_is(method, mlen, "POST")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use POST");
        }
        if (plen - 7 >= sizeof(serial) ||
            mdm_pct_decode(path + 7, plen - 7, serial, &slen, 0) != 0) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 400,
                                 "MDM08050", "bad serial number");
        }
        return mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_REVOKE,
                                      (const char *) serial, 0);
    }
    if (plen == 7 && memcmp(path, "pending", 7) == 0) {
        if (!mdm_scep_method_is(method, mlen, "GET")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use GET");
        }
        return mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_PENDING, NULL, 0);
    }
    if (plen > 8 && memcmp(path, "pending/", 8) == 0) {
        return pending_route(ca, method, mlen, path + 8, plen - 8);
    }
    return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 404,
                         "MDM08053", "no such SCEP admin endpoint");
}
