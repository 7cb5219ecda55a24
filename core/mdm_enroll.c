/*
 * Enrollment transactions that are more than one SCEP request: they run
 * a SCEP CA transaction (mdm_scep.h) as a child where they need the CA's
 * storage, and answer through the transaction layer (mdm_tx.h).
 *
 *   PROFILE  with dynamic challenges: one round trip for a fresh one-time
 *            challenge (the child), then the profile is built around it.
 *   CRL      GET ?operation=GetCRL at the SCEP location: the revoked
 *            serials (one round trip), then their revocation times (one
 *            more), then a CRL signed by the CA key.
 *   REVOKE   admin POST /scep/revoke/SERIAL: the CA marks the serial
 *            revoked (the child: its CRL and renewals), then the
 *            certificate's device is found through its binding and
 *            revoke.lua makes every later device request with it fail
 *            (MDM03005). Four round trips: an admin operation, never a
 *            device one.
 *
 * A SCEP request itself and the admin POST /scep/challenges are SCEP
 * transactions of their own: mdm_req.c routes them there directly.
 */
#include "mdm_profile.h"
#include "mdm_scep.h"
#include "mdm_text.h"
#include "mdm_tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>

enum { ENR_PROFILE = 1, ENR_REVOKE, ENR_CRL };

enum {
    EST_NONE = 0,
    EST_SCEP,     /* the child SCEP transaction runs */
    EST_CERT,     /* REVOKE: HGET the certificate record's sha256 */
    EST_BOUND,    /* REVOKE: GET the binding of that certificate */
    EST_DEVICE,   /* REVOKE: revoke.lua on the bound device */
    EST_CRL_SET,  /* CRL: SMEMBERS of the revoked serials */
    EST_CRL_TIMES /* CRL: HGET each one's revocation time */
};

typedef struct {
    mdm_tx_t base;
    int kind;
    int state;
    mdm_scep_req_t *scep; /* the child */
    char *serial;
    char sha[65];
    char *device;
    char **crl_serials; /* the CRL's entries, while their times are read */
    size_t crl_n;
} mdm_enroll_t;

static mdm_step_t enroll_start(mdm_tx_t *tx);
static mdm_step_t enroll_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                              size_t n);

static void
enroll_free(mdm_tx_t *tx)
{
    mdm_enroll_t *r = (mdm_enroll_t *) tx;
    size_t i;

    mdm_scep_req_free(r->scep);
    free(r->serial);
    free(r->device);
    for (i = 0; i < r->crl_n; i++) {
        free(r->crl_serials[i]);
    }
    free(r->crl_serials);
}

static const mdm_tx_ops_t enroll_ops = {"enroll", enroll_start, enroll_feed,
                                        enroll_free};

static mdm_enroll_t *
enroll_new(const mdm_conf_t *c, int kind)
{
    mdm_enroll_t *r = (mdm_enroll_t *) mdm_tx_new(sizeof(*r), &enroll_ops, c);

    if (r) {
        r->kind = kind;
    }
    return r;
}

mdm_req_t *
mdm_enroll_profile_new(const mdm_conf_t *c)
{
    mdm_enroll_t *r = enroll_new(c, ENR_PROFILE);

    return r ? &r->base : NULL;
}

mdm_req_t *
mdm_enroll_crl_new(const mdm_conf_t *c)
{
    mdm_enroll_t *r = enroll_new(c, ENR_CRL);

    return r ? &r->base : NULL;
}

mdm_req_t *
mdm_enroll_revoke_new(const mdm_conf_t *c, const char *serial)
{
    mdm_enroll_t *r = enroll_new(c, ENR_REVOKE);

    if (r == NULL) {
        return NULL;
    }
    if (c->scep) {
        r->scep =
            mdm_scep_req_new_admin(c->scep, MDM_SCEP_ADMIN_REVOKE, serial, 0);
        if (r->scep == NULL) {
            mdm_tx_free(&r->base);
            return NULL;
        }
    }
    return &r->base;
}

/* Run the child one step; DONE: its response is ours too. */
static mdm_step_t
scep_step(mdm_enroll_t *r, mdm_step_t step)
{
    if (step == MDM_STEP_REDIS) {
        r->base.plan = mdm_scep_req_plan(r->scep);
        return MDM_STEP_REDIS;
    }
    r->base.resp = *mdm_scep_req_response(r->scep);
    r->base.vars[MDM_VAR_ERROR_ID] =
        mdm_scep_req_var(r->scep, MDM_SCEP_VAR_ERROR_ID);
    return MDM_STEP_DONE;
}

/* The child's answer is final. */
static mdm_step_t
child_answer(mdm_enroll_t *r)
{
    r->base.done = 1;
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
profile_build(mdm_enroll_t *r, const char *challenge)
{
    mdm_buf_t b = {NULL, 0};

    if (mdm_profile_build(r->base.conf->profile, challenge, r->base.log_fn,
                          r->base.log_data, &b.ptr, &b.len) != 0) {
        /* logged by mdm_profile_build() */
        r->base.vars[MDM_VAR_ERROR_ID] = "MDM10002";
        return mdm_tx_reply(&r->base, 500, NULL, NULL);
    }
    r->base.vars[MDM_VAR_MESSAGE] = "Profile";
    mdm_tx_reply(&r->base, 200, MDM_PROFILE_CONTENT_TYPE, &b);
    r->base.resp.no_store = 1;
    return MDM_STEP_DONE;
}

/*
 * CRL: with no reply yet, ask for the revoked serials; with them (set,
 * the SMEMBERS answer), ask for each one's revocation time.
 */
static mdm_step_t
crl_plan(mdm_enroll_t *r, const redisReply *set)
{
    X509 *cert;
    EVP_PKEY *key;
    const char *k_cert, *k_revoked;
    size_t i;

    if (mdm_scep_ca_crl(r->base.conf->scep, &cert, &key, &k_cert, &k_revoked) !=
        0) {
        return mdm_tx_refuse(&r->base, 404, MDM_LOG_ERR, "MDM08090",
                             "no SCEP CA is configured here");
    }
    mdm_planb_reset(&r->base.pb);
    if (set == NULL) {
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, "SMEMBERS");
        mdm_planb_str(&r->base.pb, k_revoked);
        r->base.plan = mdm_planb_finish(&r->base.pb, 1);
        r->state = EST_CRL_SET;
        return r->base.plan ? MDM_STEP_REDIS : mdm_tx_oom(&r->base);
    }
    r->crl_serials = calloc(set->elements + 1, sizeof(char *));
    if (r->crl_serials == NULL) {
        return mdm_tx_oom(&r->base);
    }
    for (i = 0; i < set->elements; i++) {
        const redisReply *e = set->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }
        r->crl_serials[r->crl_n] = mdm_strndup(e->str, e->len);
        if (r->crl_serials[r->crl_n] == NULL) {
            return mdm_tx_oom(&r->base);
        }
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, "HGET");
        mdm_planb_fmt(&r->base.pb, "%s%s", k_cert, r->crl_serials[r->crl_n]);
        mdm_planb_str(&r->base.pb, "revoked");
        r->crl_n++;
    }
    r->base.plan = mdm_planb_finish(&r->base.pb, r->crl_n);
    r->state = EST_CRL_TIMES;
    return r->base.plan ? MDM_STEP_REDIS : mdm_tx_oom(&r->base);
}

static mdm_step_t
crl_done(mdm_enroll_t *r, struct redisReply *const *rep, size_t n)
{
    X509 *cert;
    EVP_PKEY *key;
    const char *k_cert, *k_revoked;
    mdm_buf_t b = {NULL, 0};
    time_t now = time(NULL), *times;
    size_t i;
    int rc;

    times = calloc(r->crl_n + 1, sizeof(time_t));
    if (times == NULL || mdm_scep_ca_crl(r->base.conf->scep, &cert, &key,
                                         &k_cert, &k_revoked) != 0) {
        free(times);
        return mdm_tx_oom(&r->base);
    }
    for (i = 0; i < r->crl_n; i++) {
        times[i] = now;
        if (i < n && rep[i] && rep[i]->type == REDIS_REPLY_STRING) {
            times[i] = (time_t) strtoll(rep[i]->str, NULL, 10);
        }
    }
    rc = mdm_crl_build(cert, key, r->crl_serials, times, r->crl_n, now,
                       r->base.conf->crl_days ? r->base.conf->crl_days : 7, &b);
    free(times);
    if (rc != 0) {
        return mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM08091",
                             "cannot build the CRL");
    }
    r->base.vars[MDM_VAR_MESSAGE] = "GetCRL";
    return mdm_tx_reply(&r->base, 200, "application/pkix-crl", &b);
}

static mdm_step_t
enroll_start(mdm_tx_t *tx)
{
    mdm_enroll_t *r = (mdm_enroll_t *) tx;
    const mdm_conf_t *c = r->base.conf;

    switch (r->kind) {
    case ENR_PROFILE:
        if (c->profile == NULL) {
            return mdm_tx_refuse(&r->base, 404, MDM_LOG_ERR, "MDM10004",
                                 "no enrollment profile is configured here");
        }
        if (!c->scep || !c->scep_dynamic) {
            return profile_build(r, NULL);
        }
        r->scep =
            mdm_scep_req_new_admin(c->scep, MDM_SCEP_ADMIN_CHALLENGE, NULL, 0);
        break;
    case ENR_CRL:
        return crl_plan(r, NULL);
    default:
        if (c->scep == NULL) {
            return mdm_tx_json_error(&r->base, 404, "MDM08090",
                                     "no SCEP CA is configured for this "
                                     "location");
        }
        break;
    }
    if (r->scep == NULL) {
        return mdm_tx_oom(&r->base);
    }
    mdm_scep_req_set_logger(r->scep, r->base.log_fn, r->base.log_data);
    r->state = EST_SCEP;
    if (scep_step(r, mdm_scep_req_start(r->scep)) == MDM_STEP_REDIS) {
        return MDM_STEP_REDIS;
    }
    return child_answer(r);
}

/* REVOKE, after the CA's part: find the certificate's device. */
static mdm_step_t
revoke_plan(mdm_enroll_t *r, int state, const char *key, const char *a1,
            const char *a2)
{
    mdm_keys_t k;

    mdm_planb_reset(&r->base.pb);
    if (state == EST_DEVICE) {
        if (mdm_keys_init(&k, r->base.conf->prefix, key, NULL) != 0) {
            return mdm_tx_oom(&r->base);
        }
        mdm_tx_evalsha(&r->base, MDM_LUA_REVOKE);
        mdm_keys_push(&r->base.pb, &k, 1);
        mdm_keys_clear(&k);
        mdm_planb_str(&r->base.pb, "off");
        mdm_planb_str(&r->base.pb, "");
        mdm_planb_str(&r->base.pb, "0");
        mdm_planb_str(&r->base.pb, a1);
    } else {
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, a2 ? "HGET" : "GET");
        mdm_planb_fmt(&r->base.pb, "%s", key); /* key is the caller's stack */
        if (a2) {
            mdm_planb_str(&r->base.pb, a2);
        }
    }
    r->base.plan = mdm_planb_finish(&r->base.pb, 1);
    if (r->base.plan == NULL) {
        return mdm_tx_oom(&r->base);
    }
    r->state = state;
    return MDM_STEP_REDIS;
}

static mdm_step_t
revoke_done(mdm_enroll_t *r, const char *device)
{
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM05017",
               "certificate serial %s (sha256 %s) revoked%s%s", r->serial,
               r->sha,
               device ? " for enrollment " : "; no enrollment is bound to it",
               device ? device : "");
    return mdm_tx_json(&r->base, 200,
                       json_pack("{s:s,s:b,s:s,s:s?}", "serial", r->serial,
                                 "revoked", 1, "sha256", r->sha, "enrollment",
                                 device));
}

static mdm_step_t
enroll_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    mdm_enroll_t *r = (mdm_enroll_t *) tx;
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
        if (r->kind == ENR_PROFILE) {
            if (r->base.resp.status != 201) {
                return child_answer(r); /* 503: the challenge failed */
            }
            challenge = answer_str(&r->base.resp, "challenge");
            if (challenge == NULL) {
                return mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM09002",
                                     "no challenge in the CA's answer");
            }
            step = profile_build(r, challenge);
            free(challenge);
            return step;
        }
        if (r->kind != ENR_REVOKE || r->base.resp.status != 200) {
            return child_answer(r);
        }
        r->serial = answer_str(&r->base.resp, "serial");
        if (r->serial == NULL) {
            return mdm_tx_refuse(&r->base, 500, MDM_LOG_ERR, "MDM09002",
                                 "no serial in the CA's answer");
        }
        snprintf(key, sizeof(key), "%s{scep}:cert:%s", r->base.conf->prefix,
                 r->serial);
        return revoke_plan(r, EST_CERT, key, NULL, "sha256");
    }
    if (r->state == EST_CRL_SET || r->state == EST_CRL_TIMES) {
        size_t i;

        for (i = 0; i < (r->state == EST_CRL_SET ? 1 : r->crl_n); i++) {
            if (i >= n || rep == NULL || rep[i] == NULL ||
                rep[i]->type == REDIS_REPLY_ERROR) {
                return mdm_tx_storage_failed(&r->base,
                                             i < n && rep ? rep[i] : NULL);
            }
        }
        if (r->state == EST_CRL_SET && x->type == REDIS_REPLY_ARRAY &&
            x->elements > 0) {
            return crl_plan(r, x);
        }
        return crl_done(r, rep, r->state == EST_CRL_SET ? 0 : n);
    }
    if (r->state == EST_DEVICE && mdm_tx_noscript(&r->base, x)) {
        return MDM_STEP_REDIS;
    }
    if (x == NULL || x->type == REDIS_REPLY_ERROR) {
        return mdm_tx_storage_failed(&r->base, x);
    }
    switch (r->state) {
    case EST_CERT:
        if (x->type != REDIS_REPLY_STRING || x->len != 64) {
            return revoke_done(r, NULL);
        }
        memcpy(r->sha, x->str, 64);
        r->sha[64] = '\0';
        snprintf(key, sizeof(key), "%scert:%s", r->base.conf->prefix, r->sha);
        return revoke_plan(r, EST_BOUND, key, NULL, NULL);
    case EST_BOUND:
        if (x->type != REDIS_REPLY_STRING || x->len == 0 ||
            !mdm_id_valid(x->str, x->len)) {
            return revoke_done(r, NULL);
        }
        r->device = mdm_strndup(x->str, x->len);
        if (r->device == NULL) {
            return mdm_tx_oom(&r->base);
        }
        return revoke_plan(r, EST_DEVICE, r->device, r->sha, NULL);
    case EST_DEVICE:
        /* UNKNOWN (the record is gone) or OK: revoked either way */
        return revoke_done(r, r->device);
    }
    return mdm_tx_storage_failed(&r->base, x);
}
