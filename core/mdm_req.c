/*
 * The public transaction API (mdm.h) and the one dispatcher: every
 * mdm_req_new_*() routes to a transaction type, every mdm_req_start()/
 * mdm_req_feed() runs that type's ops through the transaction layer
 * (mdm_tx.c). The types never call back up here.
 */
#include "mdm_acme.h"
#include "mdm_ddm.h"
#include "mdm_scep.h"
#include "mdm_tx.h"
#include "mdm_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

/* ---------------------------------------------------------------- */
/* constructors                                                     */

mdm_req_t *
mdm_req_new(const mdm_conf_t *c, mdm_endpoint_t ep)
{
    return mdm_device_new(c, ep);
}

mdm_req_t *
mdm_req_new_admin(const mdm_conf_t *c, const mdm_admin_args_t *a)
{
    return mdm_admin_new(c, a);
}

mdm_req_t *
mdm_req_new_profile(const mdm_conf_t *c)
{
    return mdm_enroll_profile_new(c);
}

mdm_req_t *
mdm_req_new_acme_http(const mdm_conf_t *c, const char *method, size_t mlen,
                      const char *path, size_t plen, const unsigned char *body,
                      size_t blen)
{
    mdm_req_t *r = mdm_acme_new(c, method, mlen, path, plen);

    if (r) {
        r->in.body = body;
        r->in.body_len = blen;
    }
    return r;
}

static int
method_is(const char *m, size_t mlen, const char *want)
{
    return m && mlen == strlen(want) && memcmp(m, want, mlen) == 0;
}

/* A transaction that only answers a routing refusal. */
static mdm_req_t *
refused(const mdm_conf_t *c, int status, const char *id, int json,
        const char *msg)
{
    mdm_admin_args_t a;
    mdm_req_t *r;

    memset(&a, 0, sizeof(a));
    r = mdm_admin_new(c, &a);
    if (r) {
        mdm_tx_pre_refuse(r, status, json ? MDM_LOG_NOTICE : MDM_LOG_ERR, id,
                          json, "%s", msg);
    }
    return r;
}

mdm_req_t *
mdm_req_new_scep_http(const mdm_conf_t *c, const char *method, size_t mlen,
                      const char *query, size_t qlen, const unsigned char *body,
                      size_t blen)
{
    mdm_req_t *r;

    /* GET ?operation=GetCRL: ours, not a SCEP operation of RFC 8894's */
    if (method_is(method, mlen, "GET") &&
        mdm_query_is(query, qlen, "operation", "GetCRL")) {
        return mdm_enroll_crl_new(c);
    }
    if (c->scep == NULL) {
        return refused(c, 404, "MDM08090", 0, "no SCEP CA is configured here");
    }
    r = (mdm_req_t *) mdm_scep_req_new_http(c->scep, method, mlen, query, qlen,
                                            body, blen);
    if (r) {
        r->conf = c;
    }
    return r;
}

/* Percent-decode [p, p+n) into a malloc'd string; NULL on bad escapes. */
static char *
pct_decode(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    size_t len;

    if (s != NULL && mdm_pct_decode(p, n, (unsigned char *) s, &len, 0) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

/*
 * /scep/pending[/TXID/approve|reject]: the requests of a CA with approval
 * manual (dec: the decoded segments after "scep").
 */
static mdm_req_t *
scep_pending(const mdm_conf_t *c, int is_get, int is_post, char *const *dec,
             size_t n)
{
    mdm_scep_admin_op_t op;
    mdm_req_t *r;

    if (n == 1) {
        if (!is_get) {
            return refused(c, 405, "MDM05011", 1,
                           "method not allowed here; use GET");
        }
        op = MDM_SCEP_ADMIN_PENDING;
    } else if (n == 3 && (strcmp(dec[2], "approve") == 0 ||
                          strcmp(dec[2], "reject") == 0)) {
        if (!is_post) {
            return refused(c, 405, "MDM05011", 1,
                           "method not allowed here; use POST");
        }
        op = dec[2][0] == 'a' ? MDM_SCEP_ADMIN_APPROVE : MDM_SCEP_ADMIN_REJECT;
    } else {
        return refused(c, 404, "MDM05010", 1, "no such admin endpoint");
    }
    if (c->scep == NULL) {
        return refused(c, 404, "MDM08090", 1,
                       "no SCEP CA is configured for this location");
    }
    r = (mdm_req_t *) mdm_scep_req_new_admin(c->scep, op,
                                             n == 3 ? dec[1] : NULL, 0);
    if (r) {
        r->conf = c;
    }
    return r;
}

/*
 * The admin API's /scep/... routes (path after "/scep"):
 *   POST /scep/challenges[?ttl=N]  a one-time challenge (SCEP transaction)
 *   POST /scep/revoke/SERIAL       revoke at the CA, then the device
 *   GET  /scep/pending             requests awaiting approval
 *   POST /scep/pending/TXID/approve, /scep/pending/TXID/reject
 */
static mdm_req_t *
scep_admin(const mdm_conf_t *c, int is_get, int is_post, const char *path,
           size_t plen, const char *query, size_t qlen, char *const *dec,
           size_t ndec)
{
    mdm_req_t *r;
    char ttl[24] = "", *serial;
    const char *v;
    size_t vl;
    int chall = plen == 11 && memcmp(path, "/challenges", 11) == 0;

    if (ndec >= 1 && strcmp(dec[0], "pending") == 0) {
        return scep_pending(c, is_get, is_post, dec, ndec);
    }
    if (!chall && !(plen > 8 && memcmp(path, "/revoke/", 8) == 0 &&
                    memchr(path + 8, '/', plen - 8) == NULL)) {
        return refused(c, 404, "MDM05010", 1, "no such admin endpoint");
    }
    if (!is_post) {
        return refused(c, 405, "MDM05011", 1,
                       "method not allowed here; use POST");
    }
    if (c->scep == NULL) {
        return refused(c, 404, "MDM08090", 1,
                       "no SCEP CA is configured for this location");
    }
    if (!chall) {
        serial = mdm_strndup(path + 8, plen - 8);
        r = serial ? mdm_enroll_revoke_new(c, serial) : NULL;
        free(serial);
        return r;
    }
    if (mdm_query_find(query, qlen, "ttl", &v, &vl) && v && vl < sizeof(ttl)) {
        memcpy(ttl, v, vl);
        ttl[vl] = '\0';
    }
    r = (mdm_req_t *) mdm_scep_req_new_admin(c->scep, MDM_SCEP_ADMIN_CHALLENGE,
                                             NULL, strtol(ttl, NULL, 10));
    if (r) {
        r->conf = c;
    }
    return r;
}

/*
 * The admin API's /ddm/... routes (dec: the decoded segments after "ddm"):
 *   POST   /ddm/declarations             store a declaration (body)
 *   GET    /ddm/declarations[/ID]        list, or one declaration
 *   DELETE /ddm/declarations/ID
 *   POST   /ddm/sets/NAME                replace its members (body)
 *   GET    /ddm/sets[/NAME]              list, or one set
 *   DELETE /ddm/sets/NAME
 *   POST   /ddm/sets/NAME/ID             add a member
 *   DELETE /ddm/sets/NAME/ID             remove a member
 *   POST   /ddm/assign/IDS, /ddm/unassign/IDS  (body: sets, declarations)
 *   GET    /ddm/enrollments/ID           assignments, effective set, token
 *   GET    /ddm/status/ID                the stored status report
 *   POST   /ddm/sync/IDS                 recompute
 */
static mdm_req_t *
ddm_admin(const mdm_conf_t *c, const char *method, size_t mlen,
          char *const *dec, size_t n, const char *query, size_t qlen,
          const unsigned char *body, size_t blen)
{
    mdm_ddm_admin_args_t a;
    int get = method_is(method, mlen, "GET");
    int post = method_is(method, mlen, "POST");
    int del = method_is(method, mlen, "DELETE");
    const char *want = NULL;

#define IS(i, s) (n > (i) && strcmp(dec[i], s) == 0)
    memset(&a, 0, sizeof(a));
    a.body = body;
    a.body_len = blen;
    a.nopush = mdm_query_flag(query, qlen, "nopush");
    a.name = n > 1 ? dec[1] : NULL;
    if (IS(0, "declarations") && n <= 2) {
        want = n == 1 ? "GET, POST" : "GET, DELETE";
        a.op = n == 1 ? (get    ? MDM_DDM_LIST_DECLS
                         : post ? MDM_DDM_PUT_DECL
                                : 0)
                      : (get   ? MDM_DDM_GET_DECL
                         : del ? MDM_DDM_DEL_DECL
                               : 0);
    } else if (IS(0, "sets") && n <= 3) {
        want = n == 1 ? "GET" : n == 2 ? "GET, POST, DELETE" : "POST, DELETE";
        if (n == 1) {
            a.op = get ? MDM_DDM_LIST_SETS : 0;
        } else if (n == 2) {
            a.op = get    ? MDM_DDM_GET_SET
                   : post ? MDM_DDM_PUT_SET
                   : del  ? MDM_DDM_DEL_SET
                          : 0;
        } else {
            a.member = dec[2];
            a.op = post ? MDM_DDM_ADD_MEMBER : del ? MDM_DDM_DEL_MEMBER : 0;
        }
    } else if ((IS(0, "assign") || IS(0, "unassign") || IS(0, "sync") ||
                IS(0, "enrollments") || IS(0, "status")) &&
               n == 2) {
        a.name = NULL;
        a.ids = dec[1];
        if (IS(0, "enrollments") || IS(0, "status")) {
            want = "GET";
            a.op = !get                   ? 0
                   : IS(0, "enrollments") ? MDM_DDM_SHOW
                                          : MDM_DDM_STATUS_GET;
        } else {
            want = "POST";
            a.op = !post               ? 0
                   : IS(0, "assign")   ? MDM_DDM_ASSIGN
                   : IS(0, "unassign") ? MDM_DDM_UNASSIGN
                                       : MDM_DDM_SYNC;
        }
    } else {
        return refused(c, 404, "MDM05010", 1, "no such admin endpoint");
    }
#undef IS
    if (a.op == 0) {
        char msg[96];

        snprintf(msg, sizeof(msg), "method not allowed here; use %s", want);
        return refused(c, 405, "MDM05011", 1, msg);
    }
    return mdm_ddm_admin_new(c, &a);
}

/*
 * The admin API's /renewals routes (README "Identity renewal"):
 *   GET  /renewals[?days=N]      enrollments expiring within N days
 *   POST /renewals/run[?days=N]  offer them a renewal (once per certificate)
 */
static mdm_req_t *
renewals_admin(const mdm_conf_t *c, int is_get, int is_post, const char *sub,
               const char *query, size_t qlen)
{
    const char *v;
    size_t vl;
    long days = -1;
    char buf[16];
    int run = sub != NULL;

    if (run && strcmp(sub, "run") != 0) {
        return refused(c, 404, "MDM05010", 1, "no such admin endpoint");
    }
    if (run ? !is_post : !is_get) {
        return refused(c, 405, "MDM05011", 1,
                       run ? "method not allowed here; use POST"
                           : "method not allowed here; use GET");
    }
    if (mdm_query_find(query, qlen, "days", &v, &vl)) {
        if (v == NULL || vl == 0 || vl >= sizeof(buf)) {
            return refused(c, 400, "MDM13002", 1,
                           "days must be a number from 0 to 3650");
        }
        memcpy(buf, v, vl);
        buf[vl] = '\0';
        if (mdm_parse_long(buf, 0, 3650, &days) != 0) {
            return refused(c, 400, "MDM13002", 1,
                           "days must be a number from 0 to 3650");
        }
    }
    return mdm_renew_new(c, run, days);
}

/* The admin API's routes (mdm.h). */
mdm_req_t *
mdm_req_new_admin_http(const mdm_conf_t *c, const char *method, size_t mlen,
                       const char *path, size_t plen, const char *query,
                       size_t qlen, const unsigned char *body, size_t blen)
{
    const char *seg[4];
    size_t segl[4], nseg = 0, i = 0, s;
    char *dec[3] = {NULL, NULL, NULL}, *save = NULL, *tok;
    const char *ids[1024];
    mdm_admin_args_t a;
    mdm_req_t *r = NULL;
    const char *want;
    int is_get = method_is(method, mlen, "GET");
    int is_post = method_is(method, mlen, "POST");
    int is_del = method_is(method, mlen, "DELETE");

    while (i < plen && nseg < 4) {
        while (i < plen && path[i] == '/') {
            i++;
        }
        s = i;
        while (i < plen && path[i] != '/') {
            i++;
        }
        if (i > s) {
            seg[nseg] = path + s;
            segl[nseg++] = i - s;
        }
    }
    while (i < plen && path[i] == '/') {
        i++;
    }
    if (nseg == 0 || i < plen) {
        return refused(c, 404, "MDM05010", 1, "no such admin endpoint");
    }
    for (s = 1; s < nseg; s++) {
        dec[s - 1] = pct_decode(seg[s], segl[s]);
        if (dec[s - 1] == NULL) {
            r = refused(c, 400, "MDM05002", 1, "bad percent-encoding");
            goto done;
        }
    }
    if (segl[0] == 3 && memcmp(seg[0], "ddm", 3) == 0) {
        r = nseg > 1 ? ddm_admin(c, method, mlen, dec, nseg - 1, query, qlen,
                                 body, blen)
                     : refused(c, 404, "MDM05010", 1, "no such admin endpoint");
        goto done;
    }
    if (segl[0] == 8 && memcmp(seg[0], "profiles", 8) == 0) {
        /* POST /profiles/encrypted/ID[?nopush=1][&unsigned=1] */
        if (nseg != 3 || strcmp(dec[0], "encrypted") != 0) {
            r = refused(c, 404, "MDM05010", 1, "no such admin endpoint");
        } else if (!is_post) {
            r = refused(c, 405, "MDM05011", 1,
                        "method not allowed here; use POST");
        } else {
            r = mdm_encprofile_new(c, dec[1], body, blen,
                                   mdm_query_flag(query, qlen, "nopush"),
                                   mdm_query_flag(query, qlen, "unsigned"));
        }
        goto done;
    }
    if (segl[0] == 4 && memcmp(seg[0], "scep", 4) == 0) {
        r = scep_admin(c, is_get, is_post, seg[0] + 4,
                       path + plen - (seg[0] + 4), query, qlen, dec, nseg - 1);
        goto done;
    }
    if (segl[0] == 8 && memcmp(seg[0], "renewals", 8) == 0 && nseg <= 2) {
        r = renewals_admin(c, is_get, is_post, nseg > 1 ? dec[0] : NULL, query,
                           qlen);
        goto done;
    }
    memset(&a, 0, sizeof(a));
    a.body = body;
    a.body_len = blen;
    a.ids = ids;

#define SEG(name)                                                              \
    (segl[0] == sizeof(name) - 1 && !memcmp(seg[0], name, segl[0]))
    if ((SEG("enqueue") || SEG("push")) && nseg == 2) {
        want = "POST";
        a.op = SEG("enqueue") ? MDM_ADMIN_ENQUEUE : MDM_ADMIN_PUSH;
        a.nopush = mdm_query_flag(query, qlen, "nopush");
        for (tok = strtok_r(dec[0], ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (a.nids == sizeof(ids) / sizeof(ids[0])) {
                /* more than one request may name: refused (400), never
                 * cut short */
                a.nids = (size_t) -1;
                break;
            }
            ids[a.nids++] = tok;
        }
        if (!is_post) {
            goto not_allowed;
        }
    } else if (SEG("enrollments") && nseg == 2) {
        want = "GET";
        a.op = MDM_ADMIN_ENROLLMENT;
        if (!is_get) {
            goto not_allowed;
        }
    } else if (SEG("queue") && nseg == 2) {
        want = "GET, DELETE";
        a.op = is_del ? MDM_ADMIN_CLEAR : MDM_ADMIN_QUEUE;
        if (!is_get && !is_del) {
            goto not_allowed;
        }
    } else if (SEG("queue") && nseg == 3) {
        want = "DELETE";
        a.op = MDM_ADMIN_DELETE;
        if (!is_del) {
            goto not_allowed;
        }
    } else if (SEG("revoke") && (nseg == 2 || nseg == 3)) {
        want = "POST";
        a.op = MDM_ADMIN_REVOKE;
        if (!is_post) {
            goto not_allowed;
        }
    } else if (SEG("results") && nseg == 3) {
        want = "GET";
        a.op = MDM_ADMIN_RESULT;
        if (!is_get) {
            goto not_allowed;
        }
    } else {
        r = refused(c, 404, "MDM05010", 1, "no such admin endpoint");
        goto done;
    }
#undef SEG
    if (a.op != MDM_ADMIN_ENQUEUE && a.op != MDM_ADMIN_PUSH) {
        ids[0] = dec[0];
        a.nids = 1;
    }
    a.uuid = nseg == 3 ? dec[1] : NULL;
    r = mdm_admin_new(c, &a);
    goto done;

not_allowed : {
    char msg[96];

    snprintf(msg, sizeof(msg), "method not allowed here; use %s", want);
    r = refused(c, 405, "MDM05011", 1, msg);
}
done:
    free(dec[0]);
    free(dec[1]);
    free(dec[2]);
    return r;
}

/* ---------------------------------------------------------------- */
/* the loop                                                         */

void
mdm_req_free(mdm_req_t *r)
{
    mdm_tx_free(r);
}

void
mdm_req_set_logger(mdm_req_t *r, mdm_log_fn fn, void *data)
{
    r->log_fn = fn;
    r->log_data = data;
}

mdm_step_t
mdm_req_start(mdm_req_t *r)
{
    if (r->conf && !r->conf->finished) {
        return mdm_tx_refuse(r, 500, MDM_LOG_ERR, "MDM09002",
                             "configuration not finished");
    }
    return mdm_tx_start(r);
}

mdm_step_t
mdm_req_feed(mdm_req_t *r, struct redisReply *const *replies, size_t n)
{
    return mdm_tx_feed(r, replies, n);
}

const mdm_plan_t *
mdm_req_plan(const mdm_req_t *r)
{
    return r->plan;
}

const mdm_response_t *
mdm_req_response(const mdm_req_t *r)
{
    return &r->resp;
}

const char *
mdm_req_var(const mdm_req_t *r, mdm_var_t v)
{
    return (unsigned) v < MDM_VAR_COUNT ? r->vars[v] : NULL;
}

/* ---------------------------------------------------------------- */
/* request input                                                    */

void
mdm_req_set_content_type(mdm_req_t *r, const char *v, size_t len)
{
    r->in.ctype = v;
    r->in.ctype_len = len;
}

void
mdm_req_set_body(mdm_req_t *r, const unsigned char *body, size_t len)
{
    r->in.body = body;
    r->in.body_len = len;
}

void
mdm_req_set_tls_cert(mdm_req_t *r, const unsigned char *v, size_t len)
{
    r->in.tls = v;
    r->in.tls_len = len;
}

void
mdm_req_set_signature(mdm_req_t *r, const char *v, size_t len)
{
    r->in.sig = v;
    r->in.sig_len = len;
}

void
mdm_req_set_cert_header(mdm_req_t *r, const char *v, size_t len)
{
    r->in.hdr = v;
    r->in.hdr_len = len;
}

void
mdm_req_set_verify_only(mdm_req_t *r)
{
    r->in.verify_only = 1;
}

char *
mdm_req_cert_rfc9440(const mdm_req_t *r)
{
    X509 *cert = mdm_device_cert(r);
    unsigned char *der = NULL;
    char *b64, *out = NULL;
    int n;

    if (cert == NULL) {
        return NULL;
    }
    n = i2d_X509(cert, &der);
    if (n <= 0) {
        return NULL;
    }
    b64 = mdm_b64(der, (size_t) n);
    OPENSSL_free(der);
    if (b64 && asprintf(&out, ":%s:", b64) < 0) {
        out = NULL;
    }
    free(b64);
    return out;
}
