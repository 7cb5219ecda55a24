/*
 * Declarative management, the admin side's plan helpers and the
 * recompute (mdm_ddm_int.h): for each enrollment a change affects, read
 * its assigned sets and declarations (its slot), the sets' members and
 * the declarations' categories and ServerTokens (their own slots), then
 * one ddm_sync.lua on its slot stores the effective list and the
 * DeclarationsToken and queues a DeclarativeManagement command when the
 * token changed; a push request follows for those. In batches of BATCH
 * enrollments: a set assigned to a whole fleet costs a few round trips
 * per batch.
 */
#include "mdm_ddm_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <plist/plist.h>

void
ddm_batch_free(ddm_admin_t *r)
{
    size_t i;

    for (i = 0; r->cmds && i < BATCH; i++) {
        mdm_buf_free(&r->cmds[i]);
    }
    json_decref(r->bassign);
    json_decref(r->bnames);
    json_decref(r->setmem);
    json_decref(r->dinfo);
    r->bassign = r->bnames = r->setmem = r->dinfo = NULL;
}

/* ---------------------------------------------------------------- */
/* plan helpers                                                     */

void
ddm_cmd(ddm_admin_t *r, const char *name)
{
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, name);
}

/* a catalog key: <P>ddm:<kind>:<name> */
void
ddm_ckey(ddm_admin_t *r, const char *kind, const char *name)
{
    ARG(r, "%sddm:%s:%s", r->base.conf->prefix, kind, name);
}

/* an enrollment's key: <base>:ddm:<what> or <base>:<what> */
int
ddm_ekey(ddm_admin_t *r, const char *id, const char *what)
{
    mdm_keys_t k;

    if (mdm_keys_init(&k, r->base.conf->prefix, id, NULL) != 0) {
        r->base.pb.failed = 1;
        return -1;
    }
    ARG(r, "%s:%s", k.base, what);
    mdm_keys_clear(&k);
    return 0;
}

/* the strings of a as arguments */
void
ddm_args(ddm_admin_t *r, json_t *a)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v)
    {
        ARG(r, "%s", json_string_value(v));
    }
}

/* cmd key m1 m2 ... for every string of a (skipped when a is empty) */
void
ddm_cmd_members(ddm_admin_t *r, const char *name, const char *kind,
                const char *key, json_t *a)
{
    if (json_array_size(a) == 0) {
        return;
    }
    ddm_cmd(r, name);
    ddm_ckey(r, kind, key);
    ddm_args(r, a);
}

mdm_step_t
ddm_plan(ddm_admin_t *r, int state)
{
    r->state = state;
    return mdm_tx_plan(&r->base, r->base.pb.ncmds);
}

/* A storage failure in any reply: answered, and 1. */
int
ddm_failed(ddm_admin_t *r, struct redisReply *const *rep, size_t n, size_t want)
{
    size_t i;

    for (i = 0; i < want; i++) {
        if (i >= n || rep[i] == NULL) {
            mdm_tx_storage_failed(&r->base, NULL);
            return 1;
        }
        if (rep[i]->type == REDIS_REPLY_ERROR &&
            (r->state != RC_SYNC || strncmp(rep[i]->str, "NOSCRIPT", 8) != 0)) {
            mdm_tx_storage_failed(&r->base, rep[i]);
            return 1;
        }
    }
    return 0;
}

static int
sort_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* the strings of an array reply, sorted */
json_t *
ddm_strings(const redisReply *x)
{
    json_t *a = json_array();
    const char **v;
    size_t i, n = 0;

    if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements == 0) {
        return a;
    }
    v = calloc(x->elements, sizeof(*v));
    for (i = 0; v && i < x->elements; i++) {
        if (x->element[i]->type == REDIS_REPLY_STRING) {
            v[n++] = x->element[i]->str;
        }
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), sort_cmp);
    }
    for (i = 0; i < n; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    free(v);
    return a;
}

void
ddm_add_all(json_t *set, const redisReply *x)
{
    size_t i;

    for (i = 0; x && x->type == REDIS_REPLY_ARRAY && i < x->elements; i++) {
        if (x->element[i]->type == REDIS_REPLY_STRING) {
            json_object_set_new(set, x->element[i]->str, json_null());
        }
    }
}

/* ---------------------------------------------------------------- */
/* recompute                                                        */

static mdm_step_t rc_batch(ddm_admin_t *r);

static mdm_step_t
finish(ddm_admin_t *r)
{
    json_t *e;

    e = json_pack("{s:I,s:O,s:I,s:I}", "recomputed", (json_int_t) r->nenr,
                  "changed", r->changed_ids, "unchanged", (json_int_t) r->same,
                  "unknown", (json_int_t) r->unknown);
    if (r->changed > MAX_CHANGED) {
        json_object_set_new(e, "changed_count", json_integer(r->changed));
    }
    json_object_set_new(r->result, "enrollments", e);
    json_object_set_new(r->result, "pushed",
                        json_boolean(r->changed > 0 && !r->a.nopush));
    if (r->nenr) {
        mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM05036",
                   "declarative management change: %zu enrollment(s) "
                   "recomputed, %zu changed, %zu unknown",
                   r->nenr, r->changed, r->unknown);
    }
    e = r->result;
    r->result = NULL;
    return mdm_tx_json(&r->base, 200, e);
}

/* Recompute every enrollment in r->affected, then answer r->result. */
mdm_step_t
ddm_recompute(ddm_admin_t *r)
{
    const char *k;
    json_t *v;

    r->nenr = json_object_size(r->affected);
    r->elist = calloc(r->nenr + 1, sizeof(char *));
    r->estate = calloc(BATCH, sizeof(int));
    r->cmds = calloc(BATCH, sizeof(mdm_buf_t));
    r->uuids = calloc(BATCH, sizeof(*r->uuids));
    if (r->elist == NULL || r->estate == NULL || r->cmds == NULL ||
        r->uuids == NULL) {
        return mdm_tx_oom(&r->base);
    }
    r->nenr = 0;
    json_object_foreach(r->affected, k, v)
    {
        r->elist[r->nenr++] = k;
    }
    qsort(r->elist, r->nenr, sizeof(char *), sort_cmp);
    r->pos = 0;
    return rc_batch(r);
}

static mdm_step_t
rc_batch(ddm_admin_t *r)
{
    size_t i;

    ddm_batch_free(r);
    r->pos = r->end;
    if (r->pos >= r->nenr) {
        return finish(r);
    }
    r->end = r->pos + BATCH < r->nenr ? r->pos + BATCH : r->nenr;
    memset(r->estate, 0, BATCH * sizeof(int));
    r->bassign = json_array();
    r->setmem = json_object();
    r->dinfo = json_object();
    mdm_planb_reset(&r->base.pb);
    for (i = r->pos; i < r->end; i++) {
        ddm_cmd(r, "SMEMBERS");
        ddm_ekey(r, r->elist[i], "ddm:sets");
        ddm_cmd(r, "SMEMBERS");
        ddm_ekey(r, r->elist[i], "ddm:decls");
    }
    return ddm_plan(r, RC_ASSIGN);
}

/* names: object name -> null, planned as one command each */
static mdm_step_t
plan_names(ddm_admin_t *r, json_t *names, const char *op, const char *kind,
           int state)
{
    const char *k;
    json_t *v;

    json_decref(r->bnames);
    r->bnames = json_array();
    mdm_planb_reset(&r->base.pb);
    json_object_foreach(names, k, v)
    {
        json_array_append_new(r->bnames, json_string(k));
        ddm_cmd(r, op);
        ddm_ckey(r, kind, k);
        if (strcmp(op, "HMGET") == 0) {
            mdm_planb_str(&r->base.pb, "category");
            mdm_planb_str(&r->base.pb, "token");
        }
    }
    json_decref(names);
    return ddm_plan(r, state);
}

static int
sync_cmd(ddm_admin_t *r, size_t i, const char *token, const char *ts)
{
    plist_t d = plist_new_dict(), c = plist_new_dict();
    json_t *j = json_pack("{s:{s:s,s:s}}", "SyncTokens", "DeclarationsToken",
                          token, "Timestamp", ts);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int rc = -1;

    json_decref(j);
    if (s && mdm_uuid(r->uuids[i]) == 0) {
        plist_dict_set_item(c, "RequestType",
                            plist_new_string("DeclarativeManagement"));
        plist_dict_set_item(c, "Data", plist_new_data(s, strlen(s)));
        plist_dict_set_item(d, "Command", c);
        c = NULL;
        plist_dict_set_item(d, "CommandUUID", plist_new_string(r->uuids[i]));
        mdm_buf_free(&r->cmds[i]);
        rc = mdm_plist_xml(d, &r->cmds[i]);
    }
    free(s);
    plist_free(c);
    plist_free(d);
    return rc;
}

/* One ddm_sync.lua per enrollment of the batch still to do. */
static mdm_step_t
plan_sync(ddm_admin_t *r)
{
    mdm_ddm_item_t *items;
    json_t *ids, *info, *v;
    const char *id;
    size_t i, b, n, cap;
    char token[65], ts[21];
    mdm_keys_t k;

    mdm_ddm_timestamp(time(NULL), ts);
    mdm_planb_reset(&r->base.pb);
    for (i = r->pos; i < r->end; i++) {
        b = i - r->pos;
        if (r->estate[b] != E_PENDING && r->estate[b] != E_NOSCRIPT) {
            continue;
        }
        ids = json_array_get(json_array_get(r->bassign, b), 2);
        cap = json_object_size(ids) + 1;
        items = calloc(cap, sizeof(*items));
        if (items == NULL) {
            return mdm_tx_oom(&r->base);
        }
        n = 0;
        json_object_foreach(ids, id, v)
        {
            info = json_object_get(r->dinfo, id);
            if (info) {
                items[n].id = id;
                items[n].category = json_string_value(json_array_get(info, 0));
                items[n++].token = json_string_value(json_array_get(info, 1));
            }
        }
        if (mdm_ddm_token(items, n, token) != 0 ||
            sync_cmd(r, b, token, ts) != 0 ||
            mdm_keys_init(&k, r->base.conf->prefix, r->elist[i], NULL) != 0) {
            free(items);
            return mdm_tx_oom(&r->base);
        }
        mdm_tx_evalsha(&r->base, MDM_LUA_DDM_SYNC);
        if (r->base.evalled) {
            mdm_planb_to_eval(&r->base.pb, r->base.pb.ncmds - 1,
                              mdm_script(MDM_LUA_DDM_SYNC));
        }
        mdm_keys_push_more(&r->base.pb, &k, 1, 2);
        ARG(r, "%s:ddm:eff", k.base);
        ARG(r, "%s:ddm:state", k.base);
        mdm_keys_clear(&k);
        mdm_planb_str(&r->base.pb, "off");
        mdm_planb_str(&r->base.pb, "");
        mdm_planb_str(&r->base.pb, "0");
        ARG(r, "%s", token);
        ARG(r, "%s", ts);
        mdm_planb_str(&r->base.pb, mdm_ddm_empty_token());
        mdm_planb_str(&r->base.pb, r->uuids[b]);
        mdm_planb_arg(&r->base.pb, r->cmds[b].ptr, r->cmds[b].len);
        for (b = 0; b < n; b++) {
            ARG(r, "%s", items[b].id);
            ARG(r, "%s %s", items[b].category, items[b].token);
        }
        free(items);
    }
    return ddm_plan(r, RC_SYNC);
}

mdm_step_t
ddm_recompute_feed(ddm_admin_t *r, struct redisReply *const *rep, size_t n)
{
    json_t *names, *a, *ids, *v, *w;
    const redisReply *x;
    size_t i, j, b, k = 0, noscript = 0, npush = 0;
    const char *s;

    switch (r->state) {
    case RC_ASSIGN:
        names = json_object();
        for (i = 0; i < r->end - r->pos; i++) {
            a = json_pack("[o,o,{}]", ddm_strings(rep[2 * i]),
                          ddm_strings(rep[2 * i + 1]));
            json_array_append_new(r->bassign, a);
            ddm_add_all(names, rep[2 * i]);
        }
        if (json_object_size(names) > 0) {
            return plan_names(r, names, "SMEMBERS", "set", RC_SETS);
        }
        json_decref(names);
        /* no sets at all */
        /* fall through */
    case RC_SETS:
        for (i = 0; r->state == RC_SETS && i < json_array_size(r->bnames);
             i++) {
            json_object_set_new(r->setmem,
                                json_string_value(json_array_get(r->bnames, i)),
                                ddm_strings(rep[i]));
        }
        names = json_object();
        json_array_foreach(r->bassign, b, a)
        {
            ids = json_array_get(a, 2);
            json_array_foreach(json_array_get(a, 1), j, v)
            {
                json_object_set_new(ids, json_string_value(v), json_null());
            }
            json_array_foreach(json_array_get(a, 0), j, v)
            {
                size_t m;

                json_array_foreach(
                    json_object_get(r->setmem, json_string_value(v)), m, w)
                {
                    json_object_set_new(ids, json_string_value(w), json_null());
                }
            }
            json_object_update(names, ids);
        }
        if (json_object_size(names) > 0) {
            return plan_names(r, names, "HMGET", "decl", RC_DECLS);
        }
        json_decref(names);
        return plan_sync(r);
    case RC_DECLS:
        for (i = 0; i < json_array_size(r->bnames); i++) {
            x = rep[i];
            if (x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
                x->element[0]->type == REDIS_REPLY_STRING &&
                x->element[1]->type == REDIS_REPLY_STRING) {
                json_object_set_new(
                    r->dinfo, json_string_value(json_array_get(r->bnames, i)),
                    json_pack("[s,s]", x->element[0]->str, x->element[1]->str));
            }
        }
        return plan_sync(r);
    case RC_SYNC:
        for (b = 0; b < r->end - r->pos; b++) {
            if (r->estate[b] != E_PENDING && r->estate[b] != E_NOSCRIPT) {
                continue;
            }
            x = k < n ? rep[k] : NULL;
            k++;
            if (x && x->type == REDIS_REPLY_ERROR && !r->base.evalled) {
                r->estate[b] = E_NOSCRIPT;
                noscript++;
                continue;
            }
            if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements < 1 ||
                x->element[0]->type != REDIS_REPLY_STRING) {
                return mdm_tx_storage_failed(&r->base, x);
            }
            s = x->element[0]->str;
            if (strcmp(s, "CHANGED") == 0) {
                r->estate[b] = E_CHANGED;
                r->changed++;
                npush++;
                if (json_array_size(r->changed_ids) < MAX_CHANGED) {
                    json_array_append_new(r->changed_ids,
                                          json_string(r->elist[r->pos + b]));
                }
            } else if (strcmp(s, "SAME") == 0) {
                r->estate[b] = E_SAME;
                r->same++;
            } else {
                r->estate[b] = E_UNKNOWN;
                r->unknown++;
            }
        }
        if (noscript) {
            r->base.evalled = 1;
            return plan_sync(r);
        }
        if (npush == 0 || r->a.nopush) {
            return rc_batch(r);
        }
        mdm_planb_reset(&r->base.pb);
        for (b = 0; b < r->end - r->pos; b++) {
            if (r->estate[b] == E_CHANGED) {
                mdm_planb_xadd(&r->base.pb, r->base.conf->push_key,
                               r->base.conf->push_maxlen_s);
                mdm_planb_str(&r->base.pb, "id");
                mdm_planb_str(&r->base.pb, r->elist[r->pos + b]);
            }
        }
        return ddm_plan(r, RC_PUSH);
    default: /* RC_PUSH */
        return rc_batch(r);
    }
}

mdm_step_t
ddm_bad(ddm_admin_t *r, int status, const char *id, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mdm_tx_json_error(&r->base, status, id, msg);
}

int
ddm_str_eq(const redisReply *x, const char *s)
{
    return x && x->type == REDIS_REPLY_STRING && strcmp(x->str, s) == 0;
}
