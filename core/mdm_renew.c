/*
 * Identity renewal, the admin side (README "Identity renewal"):
 *
 *   GET  /renewals[?days=N]      enrollments whose bound certificate
 *                                expires within N days
 *   POST /renewals/run[?days=N]  offer each of them that was not offered
 *                                a renewal for this certificate yet a
 *                                fresh identity: InstallProfile of the
 *                                enrollment profile with a new one-time
 *                                challenge and a renewal CN, and a push
 *
 * Round trips: ZRANGEBYSCORE on the expiry index (a shared key, written by
 * the device path when a certificate gets bound); HMGET of each record,
 * which is the truth (the index may still name a certificate since
 * replaced); run: per enrollment due, SET of its challenge (the SCEP CA's
 * slot) and renew_offer.lua (its own slot; EVAL: a rare admin operation,
 * no NOSCRIPT path); then one push request (XADD) per offer.
 */
#include "mdm_profile.h"
#include "mdm_tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <plist/plist.h>

#define RENEW_MAX 10000 /* enrollments one request looks at */

enum { RST_NONE = 0, RST_INDEX, RST_RECS, RST_OFFER, RST_PUSH };
enum { ENT_GONE = 0, ENT_DUE, ENT_TO_OFFER, ENT_OFFERED, ENT_SKIPPED };

typedef struct {
    char *id;
    char cert[65];
    long long not_after;
    long long offered_at; /* 0: no offer for this certificate */
    char uuid[37];
    int status;
} renew_ent_t;

typedef struct {
    mdm_tx_t base;
    int run;
    long days;
    long long now;
    int state;
    renew_ent_t *ents;
    size_t n;
} mdm_renew_t;

static mdm_step_t renew_start(mdm_tx_t *tx);
static mdm_step_t renew_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                             size_t n);

static void
renew_free(mdm_tx_t *tx)
{
    mdm_renew_t *r = (mdm_renew_t *) tx;
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->ents[i].id);
    }
    free(r->ents);
}

static const mdm_tx_ops_t renew_ops = {"renewal", renew_start, renew_feed,
                                       renew_free};

mdm_req_t *
mdm_renew_new(const mdm_conf_t *c, int run, long days)
{
    mdm_renew_t *r = (mdm_renew_t *) mdm_tx_new(sizeof(*r), &renew_ops, c);

    if (r == NULL) {
        return NULL;
    }
    r->run = run;
    r->days = days >= 0 ? days : c->renew_days > 0 ? c->renew_days : 30;
    return &r->base;
}

static mdm_step_t
renew_start(mdm_tx_t *tx)
{
    mdm_renew_t *r = (mdm_renew_t *) tx;
    const mdm_conf_t *c = tx->conf;
    const char *k_chal;
    long ttl;

    r->now = (long long) time(NULL);
    tx->vars[MDM_VAR_MESSAGE] = r->run ? "RenewalRun" : "Renewals";
    if (r->run && (c->profile == NULL ||
                   mdm_scep_ca_challenges(c->scep, &k_chal, &ttl) != 0)) {
        return mdm_tx_json_error(
            tx, 409, "MDM13001",
            "identity renewal needs the SCEP CA with one-time challenges "
            "(scep challenge dynamic) and the enrollment profile options "
            "(profile.*) at this admin location");
    }
    mdm_planb_reset(&tx->pb);
    mdm_planb_cmd(&tx->pb);
    mdm_planb_str(&tx->pb, "ZRANGEBYSCORE");
    mdm_planb_str(&tx->pb, c->expiry_key);
    mdm_planb_str(&tx->pb, "-inf");
    mdm_planb_fmt(&tx->pb, "%lld", r->now + (long long) r->days * 86400);
    mdm_planb_str(&tx->pb, "LIMIT");
    mdm_planb_str(&tx->pb, "0");
    mdm_planb_fmt(&tx->pb, "%d", RENEW_MAX);
    r->state = RST_INDEX;
    return mdm_tx_plan(tx, 1);
}

/* ---------------------------------------------------------------- */
/* the renewal profile                                              */

/* The SCEP payload's Subject with its CN replaced by cn. */
static void
set_subject(plist_t scep, const char *cn)
{
    plist_t old = plist_dict_get_item(scep, "Subject"), subj, rdn, pair, t;
    uint32_t i, j, n = old ? plist_array_get_size(old) : 0;
    const char *s;
    int is_cn;

    subj = plist_new_array();
    for (i = 0; i < n; i++) {
        rdn = plist_array_get_item(old, i);
        is_cn = 0;
        for (j = 0; rdn && j < plist_array_get_size(rdn); j++) {
            pair = plist_array_get_item(rdn, j);
            t = pair ? plist_array_get_item(pair, 0) : NULL;
            s = t ? plist_get_string_ptr(t, NULL) : NULL;
            is_cn |= s != NULL && strcmp(s, "CN") == 0;
        }
        if (!is_cn) {
            plist_array_append_item(subj, plist_copy(rdn));
        }
    }
    pair = plist_new_array();
    plist_array_append_item(pair, plist_new_string("CN"));
    plist_array_append_item(pair, plist_new_string(cn));
    rdn = plist_new_array();
    plist_array_append_item(rdn, pair);
    plist_array_append_item(subj, rdn);
    plist_dict_set_item(scep, "Subject", subj);
}

/*
 * The InstallProfile command of one offer: the enrollment profile (same
 * identifiers, so it replaces the installed one) whose SCEP payload
 * carries this offer's challenge and renewal CN; unsigned, since the CN
 * is changed after the build.
 */
static int
offer_command(mdm_renew_t *r, renew_ent_t *e, const char *challenge,
              const char *cn, mdm_buf_t *out)
{
    unsigned char *xml = NULL;
    size_t len = 0, i, n;
    plist_t top = NULL, content, p, t, env, cmd;
    const char *s;
    mdm_buf_t prof = {NULL, 0};
    int rc = -1;

    if (mdm_profile_build_xml(r->base.conf->profile, challenge, r->base.log_fn,
                              r->base.log_data, &xml, &len) != 0) {
        return -1;
    }
    plist_from_xml((const char *) xml, (uint32_t) len, &top);
    free(xml);
    content = top ? plist_dict_get_item(top, "PayloadContent") : NULL;
    n = content ? plist_array_get_size(content) : 0;
    for (i = 0; i < n; i++) {
        p = plist_array_get_item(content, (uint32_t) i);
        t = plist_dict_get_item(p, "PayloadType");
        s = t ? plist_get_string_ptr(t, NULL) : NULL;
        if (s && strcmp(s, "com.apple.security.scep") == 0 &&
            (t = plist_dict_get_item(p, "PayloadContent")) != NULL) {
            set_subject(t, cn);
        }
    }
    if (top == NULL || mdm_plist_xml(top, &prof) != 0 ||
        mdm_uuid(e->uuid) != 0) {
        goto done;
    }
    cmd = plist_new_dict();
    plist_dict_set_item(cmd, "RequestType", plist_new_string("InstallProfile"));
    plist_dict_set_item(cmd, "Payload",
                        plist_new_data((const char *) prof.ptr, prof.len));
    env = plist_new_dict();
    plist_dict_set_item(env, "CommandUUID", plist_new_string(e->uuid));
    plist_dict_set_item(env, "Command", cmd);
    rc = mdm_plist_xml(env, out);
    plist_free(env);
done:
    plist_free(top);
    mdm_buf_free(&prof);
    return rc;
}

/* Plan one offer: its challenge, then renew_offer.lua. */
static int
plan_offer(mdm_renew_t *r, renew_ent_t *e)
{
    const mdm_conf_t *c = r->base.conf;
    unsigned char rnd[16], md[32];
    unsigned int mdlen;
    char chal[33], hex[65], cn[64], cn_hash[65];
    const char *k_chal;
    long ttl;
    mdm_buf_t cmd = {NULL, 0};
    mdm_keys_t k;

    if (mdm_scep_ca_challenges(c->scep, &k_chal, &ttl) != 0 ||
        RAND_bytes(rnd, sizeof(rnd)) != 1 ||
        mdm_renew_new_cn(cn, cn_hash) != 0) {
        return -1;
    }
    mdm_hex(rnd, sizeof(rnd), chal);
    if (EVP_Digest(chal, strlen(chal), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        offer_command(r, e, chal, cn, &cmd) != 0) {
        OPENSSL_cleanse(chal, sizeof(chal));
        return -1;
    }
    OPENSSL_cleanse(chal, sizeof(chal));
    mdm_hex(md, 32, hex);
    if (mdm_keys_init(&k, c->prefix, e->id, NULL) != 0) {
        mdm_buf_free(&cmd);
        return -1;
    }
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "SET");
    mdm_planb_fmt(&r->base.pb, "%s%s", k_chal, hex);
    mdm_planb_fmt(&r->base.pb, "%lld", r->now);
    mdm_planb_str(&r->base.pb, "NX");
    mdm_planb_str(&r->base.pb, "EX");
    mdm_planb_fmt(&r->base.pb, "%ld", ttl);

    mdm_tx_evalsha(&r->base, MDM_LUA_RENEW_OFFER);
    mdm_planb_to_eval(&r->base.pb, r->base.pb.ncmds - 1,
                      mdm_script(MDM_LUA_RENEW_OFFER));
    mdm_keys_push(&r->base.pb, &k, 1);
    mdm_planb_str(&r->base.pb, "off");
    mdm_planb_str(&r->base.pb, "");
    mdm_planb_str(&r->base.pb, "0");
    mdm_planb_str(&r->base.pb, e->cert);
    mdm_planb_str(&r->base.pb, e->uuid);
    mdm_planb_fmt(&r->base.pb, "%.*s", (int) cmd.len, (const char *) cmd.ptr);
    mdm_planb_fmt(&r->base.pb, "%s", k.res);
    mdm_planb_fmt(&r->base.pb, "%s", cn_hash);
    mdm_keys_clear(&k);
    mdm_buf_free(&cmd);
    return 0;
}

/* ---------------------------------------------------------------- */
/* replies                                                          */

static int
rep_ll(const redisReply *e, long long *v)
{
    char buf[32];

    if (e == NULL || e->type != REDIS_REPLY_STRING || e->len == 0 ||
        e->len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    *v = strtoll(buf, NULL, 10);
    return 0;
}

static mdm_step_t answer(mdm_renew_t *r);

static mdm_step_t
read_index(mdm_renew_t *r, const redisReply *rep)
{
    mdm_keys_t k;
    size_t i;

    if (rep->type != REDIS_REPLY_ARRAY) {
        return mdm_tx_storage_failed(&r->base, rep);
    }
    r->ents = calloc(rep->elements + 1, sizeof(*r->ents));
    if (r->ents == NULL) {
        return mdm_tx_oom(&r->base);
    }
    mdm_planb_reset(&r->base.pb);
    for (i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];

        if (e->type != REDIS_REPLY_STRING || !mdm_id_valid(e->str, e->len) ||
            (r->ents[r->n].id = mdm_strndup(e->str, e->len)) == NULL) {
            continue;
        }
        if (mdm_keys_init(&k, r->base.conf->prefix, r->ents[r->n].id, NULL) !=
            0) {
            free(r->ents[r->n].id);
            r->ents[r->n].id = NULL;
            continue;
        }
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, "HMGET");
        mdm_planb_fmt(&r->base.pb, "%s", k.devrec);
        mdm_planb_str(&r->base.pb, "cert");
        mdm_planb_str(&r->base.pb, "not_after");
        mdm_planb_str(&r->base.pb, "renew_for");
        mdm_planb_str(&r->base.pb, "renew_at");
        mdm_keys_clear(&k);
        r->n++;
    }
    if (r->n == 0) {
        return answer(r);
    }
    r->state = RST_RECS;
    return mdm_tx_plan(&r->base, r->n);
}

static json_t *
ent_json(const mdm_renew_t *r, const renew_ent_t *e)
{
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:b}", "id", e->id, "cert", e->cert,
                          "not_after", (json_int_t) e->not_after, "days_left",
                          (json_int_t) ((e->not_after - r->now) / 86400),
                          "offered", e->offered_at > 0);

    if (j && e->offered_at > 0) {
        json_object_set_new(j, "offered_at",
                            json_integer((json_int_t) e->offered_at));
    }
    if (j && e->status == ENT_OFFERED) {
        json_object_set_new(j, "command_uuid", json_string(e->uuid));
    }
    return j;
}

static mdm_step_t
answer(mdm_renew_t *r)
{
    json_t *all = json_array(), *off = json_array();
    size_t i, due = 0, noff = 0;

    for (i = 0; i < r->n; i++) {
        const renew_ent_t *e = &r->ents[i];

        if (e->status == ENT_GONE) {
            continue;
        }
        due++;
        json_array_append_new(all, ent_json(r, e));
        if (e->status == ENT_OFFERED) {
            noff++;
            json_array_append_new(off, json_string(e->id));
        }
    }
    if (!r->run) {
        json_decref(off);
        return mdm_tx_json(&r->base, 200,
                           json_pack("{s:I,s:o}", "days", (json_int_t) r->days,
                                     "enrollments", all));
    }
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM13003",
               "renewal sweep (%ld days): %zu due, %zu offered now", r->days,
               due, noff);
    return mdm_tx_json(&r->base, 200,
                       json_pack("{s:I,s:o,s:o}", "days", (json_int_t) r->days,
                                 "enrollments", all, "offered", off));
}

static mdm_step_t
read_records(mdm_renew_t *r, struct redisReply *const *rep, size_t n)
{
    long long deadline = r->now + (long long) r->days * 86400;
    size_t i, nreplies = 0;

    for (i = 0; i < r->n && i < n; i++) {
        const redisReply *x = rep[i];
        renew_ent_t *e = &r->ents[i];

        if (x == NULL || x->type == REDIS_REPLY_ERROR) {
            return mdm_tx_storage_failed(&r->base, x);
        }
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 4 ||
            x->element[0]->type != REDIS_REPLY_STRING ||
            x->element[0]->len != 64 ||
            rep_ll(x->element[1], &e->not_after) != 0 ||
            e->not_after > deadline) {
            continue; /* gone, or the index is behind the record */
        }
        memcpy(e->cert, x->element[0]->str, 64);
        e->status = ENT_DUE;
        if (x->element[2]->type == REDIS_REPLY_STRING &&
            x->element[2]->len == 64 &&
            memcmp(x->element[2]->str, e->cert, 64) == 0 &&
            rep_ll(x->element[3], &e->offered_at) != 0) {
            e->offered_at = 1;
        }
    }
    if (!r->run) {
        return answer(r);
    }
    mdm_planb_reset(&r->base.pb);
    for (i = 0; i < r->n; i++) {
        renew_ent_t *e = &r->ents[i];

        if (e->status != ENT_DUE || e->offered_at > 0) {
            continue;
        }
        if (plan_offer(r, e) != 0) {
            return mdm_tx_json_error(&r->base, 500, "MDM13004",
                                     "cannot build the renewal profile");
        }
        e->status = ENT_TO_OFFER;
        nreplies += 2;
    }
    if (nreplies == 0) {
        return answer(r);
    }
    r->state = RST_OFFER;
    return mdm_tx_plan(&r->base, nreplies);
}

static mdm_step_t
read_offers(mdm_renew_t *r, struct redisReply *const *rep, size_t n)
{
    size_t i, k = 0, npush = 0;

    mdm_planb_reset(&r->base.pb);
    for (i = 0; i < r->n; i++) {
        renew_ent_t *e = &r->ents[i];
        const redisReply *s, *o;

        if (e->status != ENT_TO_OFFER) {
            continue;
        }
        s = k < n ? rep[k] : NULL;
        o = k + 1 < n ? rep[k + 1] : NULL;
        k += 2;
        if (s == NULL || o == NULL || s->type == REDIS_REPLY_ERROR ||
            o->type == REDIS_REPLY_ERROR) {
            return mdm_tx_storage_failed(
                &r->base, s && s->type == REDIS_REPLY_ERROR ? s : o);
        }
        if (o->type == REDIS_REPLY_ARRAY && o->elements >= 1 &&
            o->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(o->element[0]->str, "OK") == 0) {
            e->status = ENT_OFFERED;
            e->offered_at = r->now;
            mdm_planb_xadd(&r->base.pb, r->base.conf->push_key,
                           r->base.conf->push_maxlen_s);
            mdm_planb_str(&r->base.pb, "id");
            mdm_planb_str(&r->base.pb, e->id);
            npush++;
        } else {
            e->status = ENT_DUE; /* changed meanwhile: the next sweep */
        }
    }
    if (npush == 0) {
        return answer(r);
    }
    r->state = RST_PUSH;
    return mdm_tx_plan(&r->base, npush);
}

static mdm_step_t
renew_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    mdm_renew_t *r = (mdm_renew_t *) tx;

    if (rep == NULL || n == 0 || rep[0] == NULL) {
        return mdm_tx_storage_failed(tx, NULL);
    }
    switch (r->state) {
    case RST_INDEX:
        return read_index(r, rep[0]);
    case RST_RECS:
        return read_records(r, rep, n);
    case RST_OFFER:
        return read_offers(r, rep, n);
    case RST_PUSH:
        /* the offers are queued; a lost push is made up by the next one */
        return answer(r);
    default:
        return MDM_STEP_DONE;
    }
}
