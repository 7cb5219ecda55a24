/*
 * The ACME transaction type (mdm_acme.h): RFC 8555 with the
 * device-attest-01 challenge only, identifiers of type
 * permanent-identifier (the device's serial number or UDID).
 *
 * Every POST is verified here (JWS, and for a challenge the attestation)
 * before Redis is asked anything; then one script (lua/acme.lua) consumes
 * the request's nonce, mints the answer's, checks the account and does
 * the operation: one round trip. Finalize reads its order first (to sign
 * for its identifier) and so takes two. An account URL carries the
 * account's key (base64url of its RFC 7638 JSON), so that a "kid" request
 * is verified without a read; the script still requires the account.
 * Every refusal is an RFC 7807 problem document and one log line
 * (MDM15nnn); a refusal changes nothing but the nonces.
 */
#include "mdm_acme.h"
#include "mdm_tx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>

enum {
    R_NONE = 0,
    R_DIR,
    R_NONCE,
    R_NEWACCT,
    R_ACCT,
    R_NEWORDER,
    R_ORDER,
    R_AUTHZ,
    R_CHALL,
    R_FINALIZE,
    R_CERT
};

#define ACME_ERR "urn:ietf:params:acme:error:"
#define MAX_HDRS 4

typedef struct {
    mdm_tx_t base; /* first: an ACME request is a transaction */
    const mdm_acme_conf_t *a;
    const struct mdm_scep_ca_s *ca;
    int route;
    int head; /* HEAD new-nonce */
    int bad_method;
    int stage;   /* finalize: 0 reading the order, 1 the script */
    char *path;  /* after the location, copied */
    char id[40]; /* order, authorization or certificate id */
    char *acct;  /* the account path segment of an account URL */
    char *self;  /* this resource's URL */
    char *kp;    /* key prefix with the hash tag ("mdm:{acme}:") */
    mdm_jws_t jws;
    char nonce[48];   /* the answer's Replay-Nonce */
    int nonce_stored; /* its plan ran: only then is it sent */
    /* new-order */
    char ident[MDM_ACME_MAX_IDENT + 1];
    char order_id[40], authz_id[40];
    char token[48], tokenhash[65];
    /* challenge */
    mdm_attest_t att;
    char att_nonce[129]; /* hex: a plan argument, so it lives here */
    /* new-account */
    char *contact;
    int only_existing;
    /* finalize */
    X509_REQ *csr;
    char keyhash[65];
    char *pem;
    char serial[48];
    /* extra header fields of the answer */
    const char *hn[MAX_HDRS];
    const char *hv[MAX_HDRS];
    char *hv_owned[MAX_HDRS];
} acme_t;

/* ---------------------------------------------------------------- */
/* answers                                                          */

static void
add_header(acme_t *r, const char *name, char *value)
{
    size_t n = r->base.resp.nhdrs;

    if (value == NULL || n >= MAX_HDRS) {
        free(value);
        return;
    }
    r->hn[n] = name;
    r->hv[n] = value;
    r->hv_owned[n] = value;
    r->base.resp.hdr_names = r->hn;
    r->base.resp.hdr_values = r->hv;
    r->base.resp.nhdrs = n + 1;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, f);
    n = vasprintf(&s, f, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* Replay-Nonce (when one was minted) and the directory link. */
static void
common_headers(acme_t *r)
{
    if (r->nonce[0] && r->nonce_stored) {
        add_header(r, "Replay-Nonce", mdm_strdup(r->nonce));
    }
    add_header(r, "Link",
               fmt("<%s/directory>;rel=\"index\"", r->a ? r->a->url : ""));
}

/* An RFC 7807 problem document and one log line. */
static mdm_step_t problem(acme_t *r, int status, const char *type,
                          const char *id, const char *fmtstr, ...)
    __attribute__((format(printf, 5, 6)));

static mdm_step_t
problem(acme_t *r, int status, const char *type, const char *id,
        const char *fmtstr, ...)
{
    char detail[512];
    va_list ap;
    json_t *j;
    char *s;
    mdm_step_t st;

    va_start(ap, fmtstr);
    vsnprintf(detail, sizeof(detail), fmtstr, ap);
    va_end(ap);
    mdm_tx_log(&r->base, status >= 500 ? MDM_LOG_ERR : MDM_LOG_NOTICE, id,
               "ACME %s: %s (%s)", r->path ? r->path : "", detail, type);
    r->base.vars[MDM_VAR_ERROR_ID] = id;
    j = json_pack("{s:s+, s:s, s:i}", "type", ACME_ERR, type, "detail", detail,
                  "status", status);
    s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL) {
        return mdm_tx_oom(&r->base);
    }
    st = mdm_tx_reply_str(&r->base, status, "application/problem+json", s);
    free(s);
    common_headers(r);
    return st;
}

static mdm_step_t
reply_json(acme_t *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    mdm_step_t st;

    json_decref(j);
    if (s == NULL) {
        return mdm_tx_oom(&r->base);
    }
    st = mdm_tx_reply_str(&r->base, status, "application/json", s);
    free(s);
    common_headers(r);
    return st;
}

static void
rfc3339(long long t, char out[32])
{
    time_t tt = (time_t) t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------------------------------------------------------------- */
/* objects                                                          */

/* field value of a flat reply {status, k, v, k, v...} or "" */
static const char *
field(const redisReply *rep, const char *name)
{
    size_t i;

    for (i = 1; i + 1 < rep->elements; i += 2) {
        if (rep->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(rep->element[i]->str, name) == 0 &&
            rep->element[i + 1]->type == REDIS_REPLY_STRING) {
            return rep->element[i + 1]->str;
        }
    }
    return "";
}

static json_t *
order_json(acme_t *r, const char *id, const redisReply *rep)
{
    char exp[32];
    json_t *j;

    rfc3339(atoll(field(rep, "expires")), exp);
    j = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:[s++], s:s+++}", "status",
                  field(rep, "status"), "expires", exp, "identifiers", "type",
                  "permanent-identifier", "value", field(rep, "ident"),
                  "authorizations", r->a->url, "/authz/", field(rep, "authz"),
                  "finalize", r->a->url, "/order/", id, "/finalize");
    if (j && strcmp(field(rep, "status"), "valid") == 0) {
        char *u = fmt("%s/cert/%s", r->a->url, field(rep, "cert"));

        if (u == NULL ||
            json_object_set_new(j, "certificate", json_string(u)) != 0) {
            json_decref(j);
            j = NULL;
        }
        free(u);
    }
    return j;
}

static json_t *
chall_json(acme_t *r, const char *authz_id, const redisReply *rep)
{
    const char *st = field(rep, "status");
    json_t *c = json_pack("{s:s, s:s++, s:s, s:s}", "type", "device-attest-01",
                          "url", r->a->url, "/chall/", authz_id, "status",
                          strcmp(st, "valid") == 0     ? "valid"
                          : strcmp(st, "pending") == 0 ? "pending"
                                                       : "invalid",
                          "token", field(rep, "token"));

    if (c && *field(rep, "validated")) {
        char t[32];

        rfc3339(atoll(field(rep, "validated")), t);
        json_object_set_new(c, "validated", json_string(t));
    }
    return c;
}

static json_t *
authz_json(acme_t *r, const char *id, const redisReply *rep)
{
    char exp[32];
    json_t *c = chall_json(r, id, rep);

    rfc3339(atoll(field(rep, "expires")), exp);
    return c ? json_pack("{s:s, s:s, s:{s:s, s:s}, s:[o]}", "status",
                         field(rep, "status"), "expires", exp, "identifier",
                         "type", "permanent-identifier", "value",
                         field(rep, "ident"), "challenges", c)
             : NULL;
}

/* ---------------------------------------------------------------- */
/* routing                                                          */

static int
is_id(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");

    return n == 32 && s[n] == '\0';
}

/* The route of path (after the location); id filled for objects. */
static int
route_of(acme_t *r, const char *p)
{
    static const struct {
        const char *prefix;
        int route;
    } objs[] = {{"/order/", R_ORDER},
                {"/authz/", R_AUTHZ},
                {"/chall/", R_CHALL},
                {"/cert/", R_CERT}};
    size_t i, n;

    if (*p == '\0' || strcmp(p, "/") == 0 || strcmp(p, "/directory") == 0) {
        return R_DIR;
    }
    if (strcmp(p, "/new-nonce") == 0) {
        return R_NONCE;
    }
    if (strcmp(p, "/new-account") == 0) {
        return R_NEWACCT;
    }
    if (strcmp(p, "/new-order") == 0) {
        return R_NEWORDER;
    }
    if (strncmp(p, "/acct/", 6) == 0 && p[6] && !strchr(p + 6, '/')) {
        r->acct = mdm_strdup(p + 6);
        return r->acct ? R_ACCT : R_NONE;
    }
    for (i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
        n = strlen(objs[i].prefix);
        if (strncmp(p, objs[i].prefix, n) != 0) {
            continue;
        }
        p += n;
        if (objs[i].route == R_ORDER && strlen(p) == 41 &&
            strcmp(p + 32, "/finalize") == 0) {
            memcpy(r->id, p, 32);
            r->id[32] = '\0';
            return is_id(r->id) ? R_FINALIZE : R_NONE;
        }
        if (!is_id(p)) {
            return R_NONE;
        }
        snprintf(r->id, sizeof(r->id), "%s", p);
        return objs[i].route;
    }
    return R_NONE;
}

/* 32 lower-case hex characters from 16 random bytes. */
static int
random_id(char out[40])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return -1;
    }
    mdm_hex(b, sizeof(b), out);
    return 0;
}

static int
random_b64url(char *out, size_t cap)
{
    unsigned char b[32];
    char *s;

    if (RAND_bytes(b, sizeof(b)) != 1 ||
        (s = mdm_b64url(b, sizeof(b))) == NULL) {
        return -1;
    }
    snprintf(out, cap, "%s", s);
    free(s);
    return 0;
}

static void
sha256_hex(const void *p, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (EVP_Digest(p, len, md, &n, EVP_sha256(), NULL) != 1) {
        out[0] = '\0';
        return;
    }
    mdm_hex(md, n, out);
}

/* ---------------------------------------------------------------- */
/* the script                                                       */

/* EVALSHA acme.lua with its five keys and the shared arguments. */
static void
plan_script(acme_t *r, const char *op, const char *k4, const char *k5)
{
    mdm_planb_t *b = &r->base.pb;

    mdm_planb_reset(b);
    mdm_tx_evalsha(&r->base, MDM_LUA_ACME);
    mdm_planb_str(b, "5");
    mdm_planb_fmt(b, "%snonce:%s", r->kp, r->jws.nonce);
    mdm_planb_fmt(b, "%snonce:%s", r->kp, r->nonce);
    mdm_planb_fmt(b, "%sacct:%s", r->kp, r->jws.tp);
    mdm_planb_fmt(b, "%s%s", r->kp, k4 ? k4 : "none");
    mdm_planb_fmt(b, "%s%s", r->kp, k5 ? k5 : "none");
    mdm_planb_str(b, op);
    mdm_planb_fmt(b, "%d", MDM_ACME_NONCE_TTL);
    mdm_planb_str(b, r->kp);
    mdm_planb_str(b, r->jws.tp);
}

static mdm_step_t
bad_payload(acme_t *r, const char *why)
{
    return problem(r, 400, "malformed", "MDM15011", "%s", why);
}

/* The payload as a JSON object; NULL when it is not one. */
static json_t *
payload_obj(acme_t *r)
{
    json_t *j = json_loadb((const char *) r->jws.payload, r->jws.payload_len,
                           JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static mdm_step_t
start_newacct(acme_t *r)
{
    json_t *p = payload_obj(r), *c, *v;
    size_t i;

    if (p == NULL) {
        return bad_payload(r, "the new-account payload is not a JSON object");
    }
    v = json_object_get(p, "onlyReturnExisting");
    r->only_existing = json_is_true(v);
    c = json_object_get(p, "contact");
    if (c && (!json_is_array(c) || json_array_size(c) > 8)) {
        json_decref(p);
        return bad_payload(r, "contact must be an array of at most 8 URLs");
    }
    for (i = 0; c && i < json_array_size(c); i++) {
        v = json_array_get(c, i);
        if (!json_is_string(v) || json_string_length(v) > 256 ||
            strncmp(json_string_value(v), "mailto:", 7) != 0) {
            json_decref(p);
            return problem(r, 400, "unsupportedContact", "MDM15014",
                           "contacts must be mailto: URLs of at most 256 "
                           "characters");
        }
    }
    r->contact = c ? json_dumps(c, JSON_COMPACT) : mdm_strdup("[]");
    json_decref(p);
    if (r->contact == NULL) {
        return mdm_tx_oom(&r->base);
    }
    plan_script(r, "newacct", NULL, NULL);
    mdm_planb_str(&r->base.pb, r->jws.jwk);
    mdm_planb_str(&r->base.pb, r->only_existing ? "1" : "0");
    mdm_planb_str(&r->base.pb, r->contact);
    return mdm_tx_plan(&r->base, 1);
}

static mdm_step_t
start_neworder(acme_t *r)
{
    json_t *p = payload_obj(r), *ids, *id, *t, *v;
    const char *s;
    size_t i, n;

    if (p == NULL) {
        return bad_payload(r, "the new-order payload is not a JSON object");
    }
    ids = json_object_get(p, "identifiers");
    if (!json_is_array(ids) || json_array_size(ids) != 1 ||
        !json_is_object(id = json_array_get(ids, 0)) ||
        !json_is_string(t = json_object_get(id, "type")) ||
        !json_is_string(v = json_object_get(id, "value"))) {
        json_decref(p);
        return bad_payload(r, "an order needs exactly one identifier "
                              "{type, value}");
    }
    if (strcmp(json_string_value(t), "permanent-identifier") != 0) {
        json_decref(p);
        return problem(r, 400, "unsupportedIdentifier", "MDM15012",
                       "only permanent-identifier (serial number or UDID) "
                       "is served here");
    }
    s = json_string_value(v);
    n = json_string_length(v);
    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f) {
            break;
        }
    }
    if (n == 0 || n > MDM_ACME_MAX_IDENT || i < n) {
        json_decref(p);
        return problem(r, 400, "rejectedIdentifier", "MDM15013",
                       "the identifier must be 1-%d printable characters",
                       MDM_ACME_MAX_IDENT);
    }
    memcpy(r->ident, s, n + 1);
    json_decref(p);
    if (random_id(r->order_id) != 0 || random_id(r->authz_id) != 0 ||
        random_b64url(r->token, sizeof(r->token)) != 0) {
        return mdm_tx_oom(&r->base);
    }
    sha256_hex(r->token, strlen(r->token), r->tokenhash);
    {
        char k4[64], k5[64];

        snprintf(k4, sizeof(k4), "order:%s", r->order_id);
        snprintf(k5, sizeof(k5), "authz:%s", r->authz_id);
        plan_script(r, "neworder", k4, k5);
    }
    mdm_planb_str(&r->base.pb, r->ident);
    mdm_planb_str(&r->base.pb, r->order_id);
    mdm_planb_str(&r->base.pb, r->authz_id);
    mdm_planb_str(&r->base.pb, r->token);
    mdm_planb_str(&r->base.pb, r->tokenhash);
    mdm_planb_fmt(&r->base.pb, "%ld", r->a->order_ttl);
    return mdm_tx_plan(&r->base, 1);
}

static mdm_step_t
start_chall(acme_t *r)
{
    json_t *p;
    json_t *ao;
    unsigned char *att = NULL;
    size_t alen = 0;
    const char *why = "";
    char k4[64];
    mdm_attest_err_t rc;

    snprintf(k4, sizeof(k4), "authz:%s", r->id);
    if (r->jws.payload_len == 0) {
        /* POST-as-GET: the challenge as it is */
        plan_script(r, "authz", k4, NULL);
        return mdm_tx_plan(&r->base, 1);
    }
    p = payload_obj(r);
    if (p == NULL) {
        return bad_payload(r, "the challenge payload is not a JSON object");
    }
    ao = json_object_get(p, "attObj");
    if (!json_is_string(ao) ||
        mdm_b64url_decode(json_string_value(ao), json_string_length(ao), &att,
                          &alen) != 0) {
        json_decref(p);
        return problem(r, 400, "malformed", "MDM15011",
                       "device-attest-01 needs {\"attObj\": base64url "
                       "attestation object}");
    }
    json_decref(p);
    rc = mdm_attest_verify(att, alen, r->a->roots, 0, &r->att, &why);
    free(att);
    if (rc == MDM_ATTEST_NOMEM) {
        return mdm_tx_oom(&r->base);
    }
    if (rc == MDM_ATTEST_UNTRUSTED) {
        return problem(r, 400, "badAttestationStatement", "MDM15021",
                       "the attestation does not chain to the attestation "
                       "root: %s",
                       why);
    }
    if (rc != MDM_ATTEST_OK) {
        return problem(r, 400, "badAttestationStatement", "MDM15020", "%s",
                       why);
    }
    if (r->att.nonce_len != 32) {
        return problem(r, 400, "badAttestationStatement", "MDM15022",
                       "the attestation's freshness code is not the SHA-256 "
                       "of the challenge token");
    }
    mdm_hex(r->att.nonce, r->att.nonce_len, r->att_nonce);
    plan_script(r, "chall", k4, NULL);
    mdm_planb_str(&r->base.pb, r->att_nonce);
    mdm_planb_str(&r->base.pb, r->att.serial);
    mdm_planb_str(&r->base.pb, r->att.udid);
    mdm_planb_str(&r->base.pb, r->att.keyhash);
    return mdm_tx_plan(&r->base, 1);
}

static mdm_step_t
start_finalize(acme_t *r)
{
    json_t *p = payload_obj(r), *c;
    unsigned char *der = NULL;
    size_t dlen = 0;
    const char *why = "";

    if (p == NULL) {
        return bad_payload(r, "the finalize payload is not a JSON object");
    }
    c = json_object_get(p, "csr");
    if (!json_is_string(c) ||
        mdm_b64url_decode(json_string_value(c), json_string_length(c), &der,
                          &dlen) != 0) {
        json_decref(p);
        return problem(r, 400, "badCSR", "MDM15030",
                       "finalize needs {\"csr\": base64url DER}");
    }
    json_decref(p);
    r->csr = mdm_acme_csr(der, dlen, r->keyhash, &why);
    free(der);
    if (r->csr == NULL) {
        return problem(r, 400, "badCSR", "MDM15030", "%s", why);
    }
    /* the order's identifier first: the certificate names it */
    mdm_planb_reset(&r->base.pb);
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "HMGET");
    mdm_planb_fmt(&r->base.pb, "%sorder:%s", r->kp, r->id);
    mdm_planb_str(&r->base.pb, "acct");
    mdm_planb_str(&r->base.pb, "status");
    mdm_planb_str(&r->base.pb, "ident");
    mdm_planb_str(&r->base.pb, "keyhash");
    r->stage = 0;
    return mdm_tx_plan(&r->base, 1);
}

/* Finalize, second round trip: the script records what was signed. */
static mdm_step_t
finalize_store(acme_t *r, const redisReply *rep)
{
    const char *acct = NULL, *status = NULL, *ident = NULL, *kh = NULL;
    char k4[64], k5[64];

    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
        acct = rep->element[0]->type == REDIS_REPLY_STRING
                   ? rep->element[0]->str
                   : NULL;
        status = rep->element[1]->type == REDIS_REPLY_STRING
                     ? rep->element[1]->str
                     : NULL;
        ident = rep->element[2]->type == REDIS_REPLY_STRING
                    ? rep->element[2]->str
                    : NULL;
        kh = rep->element[3]->type == REDIS_REPLY_STRING ? rep->element[3]->str
                                                         : NULL;
    }
    /* sign only what the script will accept; otherwise it refuses */
    if (acct && status && ident && kh && strcmp(acct, r->jws.tp) == 0 &&
        strcmp(status, "ready") == 0 && strcmp(kh, r->keyhash) == 0) {
        snprintf(r->ident, sizeof(r->ident), "%s", ident);
        if (mdm_acme_issue(r->ca, r->csr, r->ident, &r->pem, r->serial) != 0) {
            return problem(r, 500, "serverInternal", "MDM15033",
                           "signing the certificate failed");
        }
    }
    r->stage = 1;
    snprintf(k4, sizeof(k4), "order:%s", r->id);
    snprintf(k5, sizeof(k5), "cert:%s", r->id);
    plan_script(r, "finalize", k4, k5);
    mdm_planb_str(&r->base.pb, r->keyhash);
    mdm_planb_str(&r->base.pb, r->ident);
    mdm_planb_str(&r->base.pb, r->id);
    mdm_planb_str(&r->base.pb, r->pem ? r->pem : "");
    mdm_planb_str(&r->base.pb, r->serial);
    mdm_planb_fmt(&r->base.pb, "%ld", r->a->cert_ttl);
    return mdm_tx_plan(&r->base, 1);
}

/* ---------------------------------------------------------------- */
/* start                                                            */

static mdm_step_t
refuse_jws(acme_t *r, mdm_jws_err_t e, const char *why)
{
    switch (e) {
    case MDM_JWS_BADALG:
        return problem(r, 400, "badSignatureAlgorithm", "MDM15005", "%s", why);
    case MDM_JWS_BADSIG:
        return problem(r, 400, "malformed", "MDM15006", "%s", why);
    case MDM_JWS_BADKEY:
        return problem(r, 400, "badPublicKey", "MDM15007", "%s", why);
    case MDM_JWS_BADNONCE:
        return problem(r, 400, "badNonce", "MDM15008", "%s", why);
    case MDM_JWS_NOMEM:
        return mdm_tx_oom(&r->base);
    default:
        return problem(r, 400, "malformed", "MDM15004", "%s", why);
    }
}

static mdm_step_t
directory(acme_t *r)
{
    const char *u = r->a->url;
    json_t *j =
        json_pack("{s:s+, s:s+, s:s+, s:{s:b}}", "newNonce", u, "/new-nonce",
                  "newAccount", u, "/new-account", "newOrder", u, "/new-order",
                  "meta", "externalAccountRequired", 0);

    return reply_json(r, 200, j);
}

static mdm_step_t
acme_start(mdm_tx_t *tx)
{
    acme_t *r = (acme_t *) tx;
    const char *why = "";
    char prefix[600];
    mdm_jws_err_t e;
    int need_jwk;

    if (tx->conf == NULL || tx->conf->acme == NULL || tx->conf->scep == NULL) {
        return problem(r, 404, "malformed", "MDM15002",
                       "no ACME server is configured here");
    }
    r->a = tx->conf->acme;
    r->ca = tx->conf->scep;
    if (r->route == R_NONE) {
        return problem(r, 404, "malformed", "MDM15002",
                       "no such ACME resource");
    }
    if (r->bad_method) {
        add_header(r, "Allow",
                   mdm_strdup(r->route == R_DIR || r->route == R_NONCE
                                  ? "GET, HEAD"
                                  : "POST"));
        return problem(r, 405, "malformed", "MDM15001",
                       "method not allowed on this resource");
    }
    if (r->route == R_DIR) {
        return directory(r);
    }
    /* the answer's nonce: sent only once its plan ran (nonce_stored) */
    if (random_b64url(r->nonce, sizeof(r->nonce)) != 0) {
        return mdm_tx_oom(tx);
    }
    r->kp = fmt("%s{acme}:", tx->conf->prefix ? tx->conf->prefix : "mdm:");
    r->self = fmt("%s%s", r->a->url, r->path);
    if (r->kp == NULL || r->self == NULL) {
        return mdm_tx_oom(tx);
    }
    if (r->route == R_NONCE) {
        mdm_planb_reset(&tx->pb);
        mdm_planb_cmd(&tx->pb);
        mdm_planb_str(&tx->pb, "SET");
        mdm_planb_fmt(&tx->pb, "%snonce:%s", r->kp, r->nonce);
        mdm_planb_str(&tx->pb, "1");
        mdm_planb_str(&tx->pb, "EX");
        mdm_planb_fmt(&tx->pb, "%d", MDM_ACME_NONCE_TTL);
        return mdm_tx_plan(tx, 1);
    }
    if (!mdm_ctype_prefix(tx->in.ctype, tx->in.ctype_len,
                          "application/jose+json")) {
        return problem(r, 415, "malformed", "MDM15003",
                       "the Content-Type must be application/jose+json");
    }
    snprintf(prefix, sizeof(prefix), "%s/acct/", r->a->url);
    e = mdm_jws_parse(tx->in.body, tx->in.body_len, prefix, &r->jws, &why);
    if (e != MDM_JWS_OK) {
        return refuse_jws(r, e, why);
    }
    if (strcmp(r->jws.url, r->self) != 0) {
        return problem(r, 403, "unauthorized", "MDM15009",
                       "the JWS \"url\" is not this resource's URL");
    }
    need_jwk = r->route == R_NEWACCT;
    if (need_jwk != (r->jws.kid == NULL)) {
        return problem(r, 400, "malformed", "MDM15010",
                       need_jwk ? "new-account is signed with a \"jwk\""
                                : "requests of an account are signed with "
                                  "its \"kid\"");
    }
    if (r->route == R_ACCT &&
        strcmp(r->jws.kid + strlen(prefix), r->acct) != 0) {
        return problem(r, 403, "unauthorized", "MDM15044",
                       "this is not the signer's account");
    }
    if ((r->route == R_ORDER || r->route == R_AUTHZ || r->route == R_CERT) &&
        r->jws.payload_len != 0) {
        return bad_payload(r, "this resource takes POST-as-GET (an empty "
                              "payload)");
    }
    switch (r->route) {
    case R_NEWACCT:
        return start_newacct(r);
    case R_ACCT:
        plan_script(r, "acct", NULL, NULL);
        return mdm_tx_plan(tx, 1);
    case R_NEWORDER:
        return start_neworder(r);
    case R_CHALL:
        return start_chall(r);
    case R_FINALIZE:
        return start_finalize(r);
    default: {
        char k4[64];

        snprintf(k4, sizeof(k4), "%s:%s",
                 r->route == R_ORDER   ? "order"
                 : r->route == R_AUTHZ ? "authz"
                                       : "cert",
                 r->id);
        plan_script(r,
                    r->route == R_ORDER   ? "order"
                    : r->route == R_AUTHZ ? "authz"
                                          : "cert",
                    k4, NULL);
        return mdm_tx_plan(tx, 1);
    }
    }
}

/* ---------------------------------------------------------------- */
/* feed                                                             */

static mdm_step_t
script_refusal(acme_t *r, const char *what, const redisReply *rep)
{
    if (strcmp(what, "BADNONCE") == 0) {
        return problem(r, 400, "badNonce", "MDM15040",
                       "the nonce is unknown, used or expired");
    }
    if (strcmp(what, "NOACCT") == 0) {
        return problem(r, 400, "accountDoesNotExist", "MDM15041",
                       "no account has this key");
    }
    if (strcmp(what, "DEACT") == 0) {
        return problem(r, 403, "unauthorized", "MDM15042",
                       "the account is deactivated");
    }
    if (strcmp(what, "NOTFOUND") == 0) {
        return problem(r, 404, "malformed", "MDM15043",
                       "no such object (or it expired)");
    }
    if (strcmp(what, "UNAUTH") == 0) {
        return problem(r, 403, "unauthorized", "MDM15044",
                       "the object belongs to another account");
    }
    if (strcmp(what, "BADTOKEN") == 0) {
        return problem(r, 400, "badAttestationStatement", "MDM15022",
                       "the attestation's freshness code is not the SHA-256 "
                       "of this challenge's token");
    }
    if (strcmp(what, "MISMATCH") == 0) {
        return problem(r, 400, "badAttestationStatement", "MDM15023",
                       "the attested serial number \"%s\" and UDID \"%s\" "
                       "are not the identifier of the order",
                       r->att.serial, r->att.udid);
    }
    if (strcmp(what, "STATE") == 0) {
        const char *st =
            rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_STRING
                ? rep->element[1]->str
                : "?";

        if (r->route == R_FINALIZE) {
            return problem(r, 403, "orderNotReady", "MDM15032",
                           "the order is %s, not ready", st);
        }
        return problem(r, 400, "malformed", "MDM15045",
                       "the authorization is %s, not pending", st);
    }
    if (strcmp(what, "BADKEY") == 0) {
        return problem(r, 400, "badCSR", "MDM15031",
                       "the CSR's key is not the attested key");
    }
    if (strcmp(what, "CHANGED") == 0) {
        return problem(r, 400, "badCSR", "MDM15047",
                       "the order changed while signing");
    }
    if (strcmp(what, "DUP") == 0) {
        return problem(r, 500, "serverInternal", "MDM15048",
                       "an object id was drawn twice");
    }
    return problem(r, 500, "serverInternal", "MDM15049",
                   "unexpected answer \"%s\" from acme.lua", what);
}

static mdm_step_t
answer(acme_t *r, const redisReply *rep)
{
    json_t *j;

    switch (r->route) {
    case R_NEWACCT:
    case R_ACCT: {
        const char *contact =
            rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_STRING
                ? rep->element[1]->str
                : r->contact;
        json_t *c = json_loads(contact ? contact : "[]", 0, NULL);
        char *tpk =
            mdm_b64url((const unsigned char *) r->jws.jwk, strlen(r->jws.jwk));
        int created = strcmp(rep->element[0]->str, "CREATED") == 0;

        j = json_pack("{s:s, s:o}", "status", "valid", "contact",
                      c ? c : json_array());
        if (tpk) {
            add_header(r, "Location", fmt("%s/acct/%s", r->a->url, tpk));
        }
        free(tpk);
        return reply_json(r, created ? 201 : 200, j);
    }
    case R_NEWORDER: {
        char exp[32], *u;

        rfc3339(rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_STRING
                    ? atoll(rep->element[1]->str)
                    : 0,
                exp);
        j = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:[s++], s:s+++}", "status",
                      "pending", "expires", exp, "identifiers", "type",
                      "permanent-identifier", "value", r->ident,
                      "authorizations", r->a->url, "/authz/", r->authz_id,
                      "finalize", r->a->url, "/order/", r->order_id,
                      "/finalize");
        u = fmt("%s/order/%s", r->a->url, r->order_id);
        add_header(r, "Location", u);
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM15101",
                   "ACME order %s for \"%s\"", r->order_id, r->ident);
        return reply_json(r, 201, j);
    }
    case R_ORDER:
        return reply_json(r, 200, order_json(r, r->id, rep));
    case R_AUTHZ:
        return reply_json(r, 200, authz_json(r, r->id, rep));
    case R_CHALL:
        add_header(r, "Link",
                   fmt("<%s/authz/%s>;rel=\"up\"", r->a->url, r->id));
        if (r->att.keyhash[0]) {
            mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM15102",
                       "ACME device-attest-01 valid: serial \"%s\" UDID "
                       "\"%s\"",
                       r->att.serial, r->att.udid);
        }
        return reply_json(r, 200, chall_json(r, r->id, rep));
    case R_FINALIZE:
        /* the order as it is now: valid, with its certificate */
        add_header(r, "Location", fmt("%s/order/%s", r->a->url, r->id));
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM15103",
                   "ACME certificate %s issued for \"%s\"", r->serial,
                   r->ident);
        return reply_json(r, 200, order_json(r, r->id, rep));
    case R_CERT: {
        const char *pem = field(rep, "pem");
        mdm_step_t st;

        if (*pem == '\0') {
            return problem(r, 404, "malformed", "MDM15043",
                           "no such certificate");
        }
        st = mdm_tx_reply_str(&r->base, 200,
                              "application/pem-certificate-chain", pem);
        common_headers(r);
        return st;
    }
    default:
        return problem(r, 500, "serverInternal", "MDM15049",
                       "no answer for this route");
    }
}

static mdm_step_t
acme_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    acme_t *r = (acme_t *) tx;
    const redisReply *x = rep && n > 0 ? rep[0] : NULL;

    if (x == NULL || x->type == REDIS_REPLY_ERROR) {
        if (mdm_tx_noscript(tx, x)) {
            return MDM_STEP_REDIS;
        }
        r->nonce[0] = '\0';
        return mdm_tx_storage_failed(tx, x);
    }
    /* the nonce plan (new-nonce) or the script (which sets the nonce
     * first thing) ran: the answer can carry it */
    r->nonce_stored =
        r->route == R_NONCE || r->route != R_FINALIZE || r->stage == 1;
    if (r->route == R_NONCE) {
        mdm_step_t st = mdm_tx_reply(tx, r->head ? 200 : 204, NULL, NULL);

        tx->resp.no_store = 1;
        common_headers(r);
        return st;
    }
    if (r->route == R_FINALIZE && r->stage == 0) {
        return finalize_store(r, x);
    }
    if (x->type != REDIS_REPLY_ARRAY || x->elements == 0 ||
        x->element[0]->type != REDIS_REPLY_STRING) {
        return problem(r, 500, "serverInternal", "MDM15049",
                       "unexpected answer from acme.lua");
    }
    if (strcmp(x->element[0]->str, "OK") != 0 &&
        strcmp(x->element[0]->str, "CREATED") != 0 &&
        strcmp(x->element[0]->str, "EXISTS") != 0) {
        return script_refusal(r, x->element[0]->str, x);
    }
    return answer(r, x);
}

static void
acme_free(mdm_tx_t *tx)
{
    acme_t *r = (acme_t *) tx;
    size_t i;

    mdm_jws_free(&r->jws);
    X509_REQ_free(r->csr);
    OPENSSL_free(r->pem);
    free(r->path);
    free(r->acct);
    free(r->self);
    free(r->kp);
    free(r->contact);
    for (i = 0; i < MAX_HDRS; i++) {
        free(r->hv_owned[i]);
    }
}

static const mdm_tx_ops_t acme_ops = {"acme", acme_start, acme_feed, acme_free};

mdm_req_t *
mdm_acme_new(const mdm_conf_t *c, const char *method, size_t mlen,
             const char *path, size_t plen)
{
    acme_t *r = (acme_t *) mdm_tx_new(sizeof(acme_t), &acme_ops, c);
    int get, head, post;

    if (r == NULL) {
        return NULL;
    }
    if (path == NULL) {
        path = "";
        plen = 0;
    }
    /* a location "/acme/" leaves "directory": the same as "/directory" */
    r->path = malloc(plen + 2);
    if (r->path != NULL) {
        size_t off = plen > 0 && path[0] != '/';

        r->path[0] = '/';
        memcpy(r->path + off, path, plen);
        r->path[off + plen] = '\0';
    }
    if (r->path == NULL) {
        mdm_tx_free(&r->base);
        return NULL;
    }
    r->base.what = NULL;
    r->route = memchr(path, '\0', plen) == NULL ? route_of(r, r->path) : R_NONE;
    get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    r->head = head;
    if (r->route == R_NONE) {
        return &r->base;
    }
    if (r->route == R_DIR     ? !(get || head)
        : r->route == R_NONCE ? !(get || head)
                              : !post) {
        r->bad_method = 1;
    }
    return &r->base;
}
