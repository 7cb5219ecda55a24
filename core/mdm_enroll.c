/*
 * Enrollment behind mdm_req_*: the SCEP CA (mdm_scep.c) and the profile
 * (mdm_profile.c) run through the same start/plan/feed/response loop as
 * device requests, so the modules drive them with the code they already
 * have. Their options reach them through mdm_conf_set() as "scep.NAME"
 * and "profile.NAME".
 *
 * Transactions:
 *   SCEP     the SCEP request itself (mdm_scep_req_*), driven as is.
 *   PROFILE  with dynamic challenges: one round trip for a fresh one-time
 *            challenge, then the profile is built around it.
 *   CHALL    admin POST /scep/challenges: create a one-time challenge.
 *   CRL      GET ?operation=GetCRL at the SCEP location: the revoked
 *            serials (one round trip), then their revocation times (one
 *            more), then a CRL signed by the CA key.
 *   REVOKE   admin POST /scep/revoke/SERIAL: the CA marks the serial
 *            revoked (its CRL and renewals), then the certificate's
 *            device is found through its binding and revoke.lua makes
 *            every later device request with it fail (MDM03005). Four
 *            round trips: an admin operation, never a device one.
 */
#include "mdm_internal.h"
#include "mdm_msg.h"
#include "mdm_profile.h"
#include "mdm_scep.h"
#include "mdm_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>

enum { ENR_SCEP = 1, ENR_PROFILE, ENR_CHALL, ENR_REVOKE, ENR_CRL };

enum {
    EST_SCEP = 100, /* the SCEP transaction runs */
    EST_CERT,       /* REVOKE: HGET the certificate record's sha256 */
    EST_BOUND,      /* REVOKE: GET the binding of that certificate */
    EST_DEVICE,     /* REVOKE: revoke.lua on the bound device */
    EST_CRL_SET,    /* CRL: SMEMBERS of the revoked serials */
    EST_CRL_TIMES   /* CRL: HGET each one's revocation time */
};

/* ---------------------------------------------------------------- */
/* configuration                                                    */

/*
 * The sub-configurations' messages name their option ("ca_key: ...");
 * say which family it is ("scep.ca_key: ...") so the glue can name its
 * directive.
 */
static void
enroll_err(const char *family, const char *opt, char *err, size_t errlen)
{
    char tmp[512];
    size_t n = 0;

    snprintf(tmp, sizeof(tmp), "%s", err);
    while (tmp[n] && (tmp[n] == '_' || (tmp[n] >= 'a' && tmp[n] <= 'z'))) {
        n++;
    }
    if (n > 0 && tmp[n] == ':') {
        snprintf(err, errlen, "%s.%s", family, tmp);
    } else if (opt) {
        snprintf(err, errlen, "%s.%s: %s", family, opt, tmp);
    } else {
        snprintf(err, errlen, "%s: %s", family, tmp);
    }
}

int
mdm_enroll_conf_set(mdm_conf_t *c, const char *name, const char *value,
                    char *err, size_t errlen)
{
    if (strncmp(name, "scep.", 5) == 0) {
        name += 5;
        if (strcmp(name, "crl_days") == 0) {
            char *end;
            long n = strtol(value, &end, 10);

            if (*end || n < 1 || n > 365) {
                snprintf(err, errlen,
                         "scep.crl_days: expected 1-365 days, got \"%s\"",
                         value);
                return -1;
            }
            c->crl_days = n;
            return 0;
        }
        if (c->scep == NULL && (c->scep = mdm_scep_ca_new()) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (strcmp(name, "prefix") == 0) {
            snprintf(err, errlen,
                     "scep.prefix: the SCEP CA uses the "
                     "configuration's prefix");
            return -1;
        }
        if (mdm_scep_ca_set(c->scep, name, value, err, errlen) != 0) {
            enroll_err("scep", name, err, errlen);
            return -1;
        }
        if (strcmp(name, "challenge") == 0) {
            c->scep_dynamic = strcmp(value, "dynamic") == 0;
        }
        return 0;
    }
    name += 8; /* "profile." */
    if (c->profile == NULL && (c->profile = mdm_profile_conf_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mdm_profile_conf_set(c->profile, name, value, err, errlen) != 0) {
        enroll_err("profile", name, err, errlen);
        return -1;
    }
    return 0;
}

int
mdm_enroll_conf_finish(mdm_conf_t *c, char *err, size_t errlen)
{
    if (c->scep &&
        (mdm_scep_ca_set(c->scep, "prefix", c->prefix, err, errlen) != 0 ||
         mdm_scep_ca_finish(c->scep, err, errlen) != 0)) {
        enroll_err("scep", NULL, err, errlen);
        return -1;
    }
    if (c->profile && mdm_profile_conf_finish(c->profile, err, errlen) != 0) {
        enroll_err("profile", NULL, err, errlen);
        return -1;
    }
    return 0;
}

void
mdm_enroll_conf_free(mdm_conf_t *c)
{
    mdm_scep_ca_free(c->scep);
    mdm_profile_conf_free(c->profile);
}

int
mdm_conf_can(const mdm_conf_t *c, mdm_can_t what)
{
    if (!c->finished) {
        return 0;
    }
    return what == MDM_CAN_SCEP ? c->scep != NULL : c->profile != NULL;
}

/* ---------------------------------------------------------------- */
/* transactions                                                     */

static mdm_req_t *
enroll_new(const mdm_conf_t *c, int kind)
{
    mdm_req_t *r = calloc(1, sizeof(*r));

    if (r) {
        r->conf = c;
        r->enroll = kind;
    }
    return r;
}

/* GET ?operation=GetCRL: ours, not a SCEP operation of RFC 8894's */
static int
is_get_crl(const char *method, size_t mlen, const char *q, size_t qlen)
{
    static const char op[] = "operation=GetCRL";
    size_t n = sizeof(op) - 1, i = 0;

    if (mlen != 3 || memcmp(method, "GET", 3) != 0) {
        return 0;
    }
    while (q && i < qlen) {
        if (qlen - i >= n && memcmp(q + i, op, n) == 0 &&
            (i + n == qlen || q[i + n] == '&')) {
            return 1;
        }
        while (i < qlen && q[i] != '&') {
            i++;
        }
        i++;
    }
    return 0;
}

mdm_req_t *
mdm_req_new_scep_http(const mdm_conf_t *c, const char *method, size_t mlen,
                      const char *query, size_t qlen, const unsigned char *body,
                      size_t blen)
{
    mdm_req_t *r;

    if (is_get_crl(method, mlen, query, qlen)) {
        return enroll_new(c, ENR_CRL);
    }
    r = enroll_new(c, ENR_SCEP);

    if (r && c->scep &&
        (r->scep = mdm_scep_req_new_http(c->scep, method, mlen, query, qlen,
                                         body, blen)) == NULL) {
        mdm_req_free(r);
        return NULL;
    }
    return r;
}

mdm_req_t *
mdm_req_new_profile(const mdm_conf_t *c)
{
    return enroll_new(c, ENR_PROFILE);
}

/* The admin API's /scep/... routes (mdm_admin.c hands them here). */
mdm_req_t *
mdm_enroll_admin_http(const mdm_conf_t *c, int is_post, const char *path,
                      size_t plen, long ttl)
{
    mdm_req_t *r;
    char *serial;

    if (plen == 11 && memcmp(path, "/challenges", 11) == 0) {
        r = enroll_new(c, ENR_CHALL);
        if (r && c->scep) {
            r->scep = mdm_scep_req_new_admin(c->scep, MDM_SCEP_ADMIN_CHALLENGE,
                                             NULL, ttl);
        }
    } else if (plen > 8 && memcmp(path, "/revoke/", 8) == 0 &&
               memchr(path + 8, '/', plen - 8) == NULL) {
        r = enroll_new(c, ENR_REVOKE);
        serial = mdm_strndup(path + 8, plen - 8);
        if (r && serial && c->scep) {
            r->scep = mdm_scep_req_new_admin(c->scep, MDM_SCEP_ADMIN_REVOKE,
                                             serial, 0);
        }
        free(serial);
    } else {
        return NULL; /* not ours: mdm_admin.c answers 404 */
    }
    if (r) {
        r->pre_status = !is_post ? 405 : c->scep == NULL ? 404 : 0;
    }
    return r;
}

void
mdm_enroll_free(mdm_req_t *r)
{
    mdm_scep_req_free(r->scep);
    size_t i;

    free(r->enroll_serial);
    free(r->enroll_device);
    for (i = 0; i < r->crl_n; i++) {
        free(r->crl_serials[i]);
    }
    free(r->crl_serials);
}

/* Run the SCEP transaction one step; DONE: its response is ours too. */
static mdm_step_t
scep_step(mdm_req_t *r, mdm_step_t step)
{
    if (step == MDM_STEP_REDIS) {
        r->plan = mdm_scep_req_plan(r->scep);
        return MDM_STEP_REDIS;
    }
    r->resp = *mdm_scep_req_response(r->scep);
    r->vars[MDM_VAR_MESSAGE] =
        mdm_scep_req_var(r->scep, MDM_SCEP_VAR_MESSAGE_TYPE);
    if (r->vars[MDM_VAR_MESSAGE] == NULL) {
        r->vars[MDM_VAR_MESSAGE] =
            mdm_scep_req_var(r->scep, MDM_SCEP_VAR_OPERATION);
    }
    r->vars[MDM_VAR_ERROR_ID] =
        mdm_scep_req_var(r->scep, MDM_SCEP_VAR_ERROR_ID);
    return MDM_STEP_DONE;
}

/* A JSON string member of the SCEP admin answer, malloc'd, or NULL. */
static char *
answer_str(const mdm_response_t *resp, const char *key)
{
    json_t *j = json_loadb((const char *) resp->body, resp->body_len, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    char *s = v ? mdm_strdup(v) : NULL;

    json_decref(j);
    return s;
}

static mdm_step_t
profile_build(mdm_req_t *r, const char *challenge)
{
    mdm_buf_t b = {NULL, 0};

    if (mdm_profile_build(r->conf->profile, challenge, r->log_fn, r->log_data,
                          &b.ptr, &b.len) != 0) {
        r->vars[MDM_VAR_ERROR_ID] = "MDM10002";
        r->resp.status = 500;
        r->resp.body = NULL;
        r->resp.body_len = 0;
        r->resp.content_type = NULL;
        return MDM_STEP_DONE;
    }
    r->vars[MDM_VAR_MESSAGE] = "Profile";
    mdm_req_reply(r, 200, MDM_PROFILE_CONTENT_TYPE, &b);
    r->resp.no_store = 1;
    return MDM_STEP_DONE;
}

/*
 * CRL: with no reply yet, ask for the revoked serials; with them (set,
 * the SMEMBERS answer), ask for each one's revocation time.
 */
static mdm_step_t
crl_plan(mdm_req_t *r, const redisReply *set)
{
    X509 *cert;
    EVP_PKEY *key;
    const char *k_cert, *k_revoked;
    size_t i;

    if (mdm_scep_ca_crl(r->conf->scep, &cert, &key, &k_cert, &k_revoked) != 0) {
        return mdm_req_refuse(r, 404, MDM_LOG_ERR, "MDM08090",
                              "no SCEP CA is configured here");
    }
    mdm_planb_reset(&r->pb);
    if (set == NULL) {
        mdm_planb_cmd(&r->pb);
        mdm_planb_str(&r->pb, "SMEMBERS");
        mdm_planb_str(&r->pb, k_revoked);
        r->plan = mdm_planb_finish(&r->pb, 1);
        r->state = EST_CRL_SET;
        return r->plan ? MDM_STEP_REDIS
                       : mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001",
                                        "out of memory");
    }
    r->crl_serials = calloc(set->elements + 1, sizeof(char *));
    if (r->crl_serials == NULL) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
    }
    for (i = 0; i < set->elements; i++) {
        const redisReply *e = set->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }
        r->crl_serials[r->crl_n] = mdm_strndup(e->str, e->len);
        if (r->crl_serials[r->crl_n] == NULL) {
            return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001",
                                  "out of memory");
        }
        mdm_planb_cmd(&r->pb);
        mdm_planb_str(&r->pb, "HGET");
        mdm_planb_fmt(&r->pb, "%s%s", k_cert, r->crl_serials[r->crl_n]);
        mdm_planb_str(&r->pb, "revoked");
        r->crl_n++;
    }
    r->plan = mdm_planb_finish(&r->pb, r->crl_n);
    r->state = EST_CRL_TIMES;
    return r->plan ? MDM_STEP_REDIS
                   : mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001",
                                    "out of memory");
}

static mdm_step_t
crl_done(mdm_req_t *r, struct redisReply *const *rep, size_t n)
{
    X509 *cert;
    EVP_PKEY *key;
    const char *k_cert, *k_revoked;
    mdm_buf_t b = {NULL, 0};
    time_t now = time(NULL), *times;
    size_t i;
    int rc;

    times = calloc(r->crl_n + 1, sizeof(time_t));
    if (times == NULL ||
        mdm_scep_ca_crl(r->conf->scep, &cert, &key, &k_cert, &k_revoked) != 0) {
        free(times);
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
    }
    for (i = 0; i < r->crl_n; i++) {
        times[i] = now;
        if (i < n && rep[i] && rep[i]->type == REDIS_REPLY_STRING) {
            times[i] = (time_t) strtoll(rep[i]->str, NULL, 10);
        }
    }
    rc = mdm_crl_build(cert, key, r->crl_serials, times, r->crl_n, now,
                       r->conf->crl_days ? r->conf->crl_days : 7, &b);
    free(times);
    if (rc != 0) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM08091",
                              "cannot build the CRL");
    }
    r->vars[MDM_VAR_MESSAGE] = "GetCRL";
    return mdm_req_reply(r, 200, "application/pkix-crl", &b);
}

mdm_step_t
mdm_enroll_start(mdm_req_t *r)
{
    if (r->pre_status == 405) {
        return mdm_admin_error(r, 405, "MDM05011",
                               "method not allowed here; use POST");
    }
    if (r->pre_status == 404) {
        return mdm_admin_error(r, 404, "MDM08090",
                               "no SCEP CA is configured for this location");
    }
    switch (r->enroll) {
    case ENR_PROFILE:
        if (r->conf->profile == NULL) {
            return mdm_req_refuse(r, 404, MDM_LOG_ERR, "MDM10004",
                                  "no enrollment profile is configured here");
        }
        if (!r->conf->scep || !r->conf->scep_dynamic) {
            return profile_build(r, NULL);
        }
        r->scep = mdm_scep_req_new_admin(r->conf->scep,
                                         MDM_SCEP_ADMIN_CHALLENGE, NULL, 0);
        break;
    case ENR_CRL:
        return crl_plan(r, NULL);
    case ENR_SCEP:
        if (r->conf->scep == NULL) {
            return mdm_req_refuse(r, 404, MDM_LOG_ERR, "MDM08090",
                                  "no SCEP CA is configured here");
        }
        break;
    default:
        break;
    }
    if (r->scep == NULL) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
    }
    mdm_scep_req_set_logger(r->scep, r->log_fn, r->log_data);
    r->state = EST_SCEP;
    return scep_step(r, mdm_scep_req_start(r->scep));
}

/* REVOKE, after the CA's part: find the certificate's device. */
static mdm_step_t
revoke_plan(mdm_req_t *r, int state, const char *key, const char *a1,
            const char *a2)
{
    mdm_keys_t k;

    mdm_planb_reset(&r->pb);
    if (state == EST_DEVICE) {
        if (mdm_keys_init(&k, r->conf->prefix, key, NULL) != 0) {
            return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001",
                                  "out of memory");
        }
        mdm_req_evalsha(r, MDM_LUA_REVOKE);
        mdm_keys_push(&r->pb, &k, 1);
        mdm_keys_clear(&k);
        mdm_planb_str(&r->pb, "off");
        mdm_planb_str(&r->pb, "");
        mdm_planb_str(&r->pb, "0");
        mdm_planb_str(&r->pb, a1);
    } else {
        mdm_planb_cmd(&r->pb);
        mdm_planb_str(&r->pb, a2 ? "HGET" : "GET");
        mdm_planb_fmt(&r->pb, "%s", key); /* key is the caller's stack */
        if (a2) {
            mdm_planb_str(&r->pb, a2);
        }
    }
    r->plan = mdm_planb_finish(&r->pb, 1);
    if (r->plan == NULL) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
    }
    r->state = state;
    return MDM_STEP_REDIS;
}

static mdm_step_t
revoke_done(mdm_req_t *r, const char *device)
{
    mdm_req_log(r, MDM_LOG_NOTICE, "MDM05017",
                "certificate serial %s (sha256 %s) revoked%s%s",
                r->enroll_serial, r->enroll_sha,
                device ? " for enrollment " : "; no enrollment is bound to it",
                device ? device : "");
    return mdm_admin_reply_json(
        r, 200,
        json_pack("{s:s,s:b,s:s,s:s?}", "serial", r->enroll_serial, "revoked",
                  1, "sha256", r->enroll_sha, "enrollment", device));
}

mdm_step_t
mdm_enroll_feed(mdm_req_t *r, struct redisReply *const *rep, size_t n)
{
    const redisReply *x = n > 0 && rep ? rep[0] : NULL;
    char key[400], *challenge;
    mdm_step_t step;

    if (r->state < EST_SCEP) {
        return MDM_STEP_DONE; /* answered already */
    }
    if (r->state == EST_SCEP) {
        step = scep_step(r, mdm_scep_req_feed(r->scep, rep, n));
        if (step == MDM_STEP_REDIS) {
            return step;
        }
        if (r->enroll == ENR_PROFILE) {
            if (r->resp.status != 201) {
                return MDM_STEP_DONE; /* 503: the challenge failed */
            }
            challenge = answer_str(&r->resp, "challenge");
            if (challenge == NULL) {
                return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09002",
                                      "no challenge in the CA's answer");
            }
            step = profile_build(r, challenge);
            free(challenge);
            return step;
        }
        if (r->enroll != ENR_REVOKE || r->resp.status != 200) {
            return MDM_STEP_DONE;
        }
        r->enroll_serial = answer_str(&r->resp, "serial");
        if (r->enroll_serial == NULL) {
            return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09002",
                                  "no serial in the CA's answer");
        }
        snprintf(key, sizeof(key), "%s{scep}:cert:%s", r->conf->prefix,
                 r->enroll_serial);
        return revoke_plan(r, EST_CERT, key, NULL, "sha256");
    }
    if (r->state == EST_CRL_SET || r->state == EST_CRL_TIMES) {
        size_t i;

        for (i = 0; i < (r->state == EST_CRL_SET ? 1 : r->crl_n); i++) {
            if (i >= n || rep == NULL || rep[i] == NULL ||
                rep[i]->type == REDIS_REPLY_ERROR) {
                return mdm_req_storage_failed(r, i < n && rep ? rep[i] : NULL);
            }
        }
        if (r->state == EST_CRL_SET && x->type == REDIS_REPLY_ARRAY &&
            x->elements > 0) {
            return crl_plan(r, x);
        }
        return crl_done(r, rep, r->state == EST_CRL_SET ? 0 : n);
    }
    if (r->state == EST_DEVICE && mdm_req_noscript(r, x)) {
        return MDM_STEP_REDIS;
    }
    if (x == NULL || x->type == REDIS_REPLY_ERROR) {
        return mdm_req_storage_failed(r, x);
    }
    switch (r->state) {
    case EST_CERT:
        if (x->type != REDIS_REPLY_STRING || x->len != 64) {
            return revoke_done(r, NULL);
        }
        memcpy(r->enroll_sha, x->str, 64);
        r->enroll_sha[64] = '\0';
        snprintf(key, sizeof(key), "%scert:%s", r->conf->prefix, r->enroll_sha);
        return revoke_plan(r, EST_BOUND, key, NULL, NULL);
    case EST_BOUND:
        if (x->type != REDIS_REPLY_STRING || x->len == 0 ||
            !mdm_id_valid(x->str, x->len)) {
            return revoke_done(r, NULL);
        }
        r->enroll_device = mdm_strndup(x->str, x->len);
        if (r->enroll_device == NULL) {
            return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001",
                                  "out of memory");
        }
        return revoke_plan(r, EST_DEVICE, r->enroll_device, r->enroll_sha,
                           NULL);
    case EST_DEVICE:
        /* UNKNOWN (the record is gone) or OK: revoked either way */
        return revoke_done(r, r->enroll_device);
    }
    return mdm_req_storage_failed(r, x);
}
