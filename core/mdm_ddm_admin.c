/*
 * Declarative management, the admin type (mdm_ddm.h): declarations, sets,
 * assignments, status reports. Declarations and sets live in their own
 * keys (their own slots); every enrollment a change affects is then
 * recomputed: its sets, their members and the members' ServerTokens are
 * read (several round trips, many slots), and one script on the
 * enrollment's slot (ddm_sync.lua) stores the effective list and token
 * the device path reads, queueing a DeclarativeManagement command when
 * the token changed; a push request follows. Keys: core/lua/KEYS.md.
 */
#include "mdm_ddm_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <plist/plist.h>

static mdm_step_t ddm_start(mdm_tx_t *tx);
static mdm_step_t ddm_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                           size_t n);
static void ddm_free(mdm_tx_t *tx);
static mdm_step_t read_assign(ddm_admin_t *r, struct redisReply *const *rep);

static const mdm_tx_ops_t ddm_ops = {"ddm-admin", ddm_start, ddm_feed,
                                     ddm_free};

mdm_req_t *
mdm_ddm_admin_new(const mdm_conf_t *c, const mdm_ddm_admin_args_t *a)
{
    ddm_admin_t *r = (ddm_admin_t *) mdm_tx_new(sizeof(*r), &ddm_ops, c);
    char *ids, *tok, *save = NULL;

    if (r == NULL) {
        return NULL;
    }
    r->a = *a;
    r->affected = json_object();
    r->changed_ids = json_array();
    if (r->affected == NULL || r->changed_ids == NULL ||
        (a->name && (r->name = mdm_strdup(a->name)) == NULL) ||
        (a->member && (r->member = mdm_strdup(a->member)) == NULL)) {
        goto fail;
    }
    if (a->ids) {
        r->ids = calloc(MAX_IDS + 1, sizeof(char *));
        ids = mdm_strdup(a->ids);
        if (r->ids == NULL || ids == NULL) {
            free(ids);
            goto fail;
        }
        for (tok = strtok_r(ids, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (r->nids == MAX_IDS) {
                r->nids++; /* refused at start */
                break;
            }
            if ((r->ids[r->nids++] = mdm_strdup(tok)) == NULL) {
                free(ids);
                goto fail;
            }
        }
        free(ids);
    }
    return &r->base;
fail:
    mdm_tx_free(&r->base);
    return NULL;
}

static void
ddm_free(mdm_tx_t *tx)
{
    ddm_admin_t *r = (ddm_admin_t *) tx;
    size_t i;

    ddm_batch_free(r);
    for (i = 0; r->ids && i < r->nids && i < MAX_IDS; i++) {
        free(r->ids[i]);
    }
    free(r->ids);
    free(r->name);
    free(r->member);
    free(r->elist);
    free(r->estate);
    free(r->cmds);
    free(r->uuids);
    json_decref(r->decl);
    json_decref(r->sets);
    json_decref(r->decls);
    json_decref(r->next);
    json_decref(r->affected);
    json_decref(r->result);
    json_decref(r->changed_ids);
}

/* ---------------------------------------------------------------- */
/* input                                                            */

/* body[key]: an array of valid names, deduplicated; missing: empty */
static json_t *
name_list(json_t *body, const char *key, const char **why)
{
    json_t *a = json_object_get(body, key), *out, *seen, *v;
    size_t i;

    if (a == NULL) {
        return json_array();
    }
    if (!json_is_array(a) || json_array_size(a) > MAX_NAMES) {
        *why = "must be an array of names";
        return NULL;
    }
    out = json_array();
    seen = json_object();
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) ||
            !mdm_ddm_name_valid(json_string_value(v), json_string_length(v))) {
            *why = "names are 1-255 printable characters without spaces, "
                   "braces, '/' or ','";
            json_decref(out);
            json_decref(seen);
            return NULL;
        }
        if (json_object_get(seen, json_string_value(v)) == NULL) {
            json_object_set_new(seen, json_string_value(v), json_null());
            json_array_append(out, v);
        }
    }
    json_decref(seen);
    return out;
}

static json_t *
body_json(ddm_admin_t *r)
{
    json_error_t je;
    json_t *j = r->a.body_len ? json_loadb((const char *) r->a.body,
                                           r->a.body_len, 0, &je)
                              : NULL;

    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* SMISMEMBER <index> names...: the names not in it, comma-separated */
static void
missing(const redisReply *x, json_t *names, char *out, size_t len)
{
    size_t i, o = 0;

    out[0] = '\0';
    for (i = 0; x && x->type == REDIS_REPLY_ARRAY && i < x->elements; i++) {
        if (x->element[i]->integer == 0 && o + 2 < len) {
            o += snprintf(out + o, len - o, "%s%s", o ? ", " : "",
                          json_string_value(json_array_get(names, i)));
            if (o >= len) {
                o = len - 1;
            }
        }
    }
}

/* ---------------------------------------------------------------- */
/* operations: start                                                */

static mdm_step_t
start_put_decl(ddm_admin_t *r)
{
    const char *why = NULL, *id, *type, *token;
    char *json, now[24];

    r->decl = mdm_ddm_decl_parse(r->a.body, r->a.body_len, &why);
    if (r->decl == NULL) {
        return ddm_bad(r, 400, "MDM05030", "declaration refused: %s", why);
    }
    id = json_string_value(json_object_get(r->decl, "Identifier"));
    type = json_string_value(json_object_get(r->decl, "Type"));
    token = json_string_value(json_object_get(r->decl, "ServerToken"));
    r->name = mdm_strdup(id);
    json = json_dumps(r->decl, JSON_COMPACT);
    if (r->name == NULL || json == NULL) {
        free(json);
        return mdm_tx_oom(&r->base);
    }
    snprintf(now, sizeof(now), "%lld", (long long) time(NULL));
    ddm_cmd(r, "HMGET");
    ddm_ckey(r, "decl", id);
    mdm_planb_str(&r->base.pb, "token");
    mdm_planb_str(&r->base.pb, "category");
    ddm_cmd(r, "HSET");
    ddm_ckey(r, "decl", id);
    mdm_planb_str(&r->base.pb, "json");
    ARG(r, "%s", json);
    mdm_planb_str(&r->base.pb, "type");
    ARG(r, "%s", type);
    mdm_planb_str(&r->base.pb, "category");
    mdm_planb_str(&r->base.pb, mdm_ddm_category(type));
    mdm_planb_str(&r->base.pb, "token");
    ARG(r, "%s", token);
    mdm_planb_str(&r->base.pb, "updated");
    ARG(r, "%s", now);
    ddm_cmd(r, "SADD");
    ARG(r, "%sddm:decls", r->base.conf->prefix);
    ARG(r, "%s", id);
    ddm_cmd(r, "SMEMBERS");
    ddm_ckey(r, "dsets", id);
    ddm_cmd(r, "SMEMBERS");
    ddm_ckey(r, "denr", id);
    free(json);
    r->result = json_pack("{s:s,s:s,s:s}", "identifier", id, "type", type,
                          "server_token", token);
    return ddm_plan(r, S_READ);
}

static mdm_step_t
start_set(ddm_admin_t *r)
{
    json_t *body;
    const char *why = NULL;

    if (r->a.op == MDM_DDM_PUT_SET) {
        body = body_json(r);
        if (body == NULL) {
            return ddm_bad(r, 400, "MDM05032",
                           "body must be a JSON object {\"declarations\": "
                           "[...]}");
        }
        r->decls = name_list(body, "declarations", &why);
        json_decref(body);
        if (r->decls == NULL) {
            return ddm_bad(r, 400, "MDM05032", "declarations: %s", why);
        }
    } else {
        if (!mdm_ddm_name_valid(r->member, strlen(r->member))) {
            return ddm_bad(r, 400, "MDM05031",
                           "invalid declaration identifier");
        }
        r->decls = json_pack("[s]", r->member);
    }
    ddm_cmd(r, "SMEMBERS");
    ddm_ckey(r, "set", r->name);
    ddm_cmd(r, "SISMEMBER");
    ARG(r, "%sddm:sets", r->base.conf->prefix);
    ARG(r, "%s", r->name);
    if (json_array_size(r->decls) && r->a.op != MDM_DDM_DEL_MEMBER) {
        ddm_cmd(r, "SMISMEMBER");
        ARG(r, "%sddm:decls", r->base.conf->prefix);
        ddm_args(r, r->decls);
    }
    return ddm_plan(r, S_READ);
}

static mdm_step_t
start_assign(ddm_admin_t *r)
{
    json_t *body = body_json(r);
    const char *why = NULL;
    size_t i;

    if (body == NULL) {
        return ddm_bad(r, 400, "MDM05032",
                       "body must be a JSON object {\"sets\": [...], "
                       "\"declarations\": [...]}");
    }
    r->sets = name_list(body, "sets", &why);
    if (r->sets) {
        r->decls = name_list(body, "declarations", &why);
    }
    json_decref(body);
    if (r->sets == NULL || r->decls == NULL) {
        return ddm_bad(r, 400, "MDM05032", "sets or declarations: %s", why);
    }
    if (json_array_size(r->sets) + json_array_size(r->decls) == 0) {
        return ddm_bad(r, 400, "MDM05032", "no sets and no declarations given");
    }
    if (r->a.op == MDM_DDM_UNASSIGN) {
        r->state = S_READ;
        return read_assign(r, NULL); /* nothing to check first */
    }
    if (json_array_size(r->sets)) {
        ddm_cmd(r, "SMISMEMBER");
        ARG(r, "%sddm:sets", r->base.conf->prefix);
        ddm_args(r, r->sets);
    }
    if (json_array_size(r->decls)) {
        ddm_cmd(r, "SMISMEMBER");
        ARG(r, "%sddm:decls", r->base.conf->prefix);
        ddm_args(r, r->decls);
    }
    for (i = 0; i < r->nids; i++) {
        ddm_cmd(r, "EXISTS");
        ddm_ekey(r, r->ids[i], "rec");
    }
    return ddm_plan(r, S_READ);
}

static mdm_step_t
start_ops(ddm_admin_t *r)
{
    const char *p = r->base.conf->prefix;
    size_t i;

    switch (r->a.op) {
    case MDM_DDM_GET_DECL:
    case MDM_DDM_DEL_DECL:
        ddm_cmd(r, r->a.op == MDM_DDM_GET_DECL ? "HGETALL" : "EXISTS");
        ddm_ckey(r, "decl", r->name);
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "dsets", r->name);
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "denr", r->name);
        break;
    case MDM_DDM_LIST_DECLS:
    case MDM_DDM_LIST_SETS:
        ddm_cmd(r, "SMEMBERS");
        ARG(r, "%sddm:%s", p, r->a.op == MDM_DDM_LIST_SETS ? "sets" : "decls");
        break;
    case MDM_DDM_GET_SET:
    case MDM_DDM_DEL_SET:
        ddm_cmd(r, "SISMEMBER");
        ARG(r, "%sddm:sets", p);
        ARG(r, "%s", r->name);
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "set", r->name);
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "senr", r->name);
        break;
    case MDM_DDM_SHOW:
        ddm_cmd(r, "SMEMBERS");
        ddm_ekey(r, r->ids[0], "ddm:sets");
        ddm_cmd(r, "SMEMBERS");
        ddm_ekey(r, r->ids[0], "ddm:decls");
        ddm_cmd(r, "HGETALL");
        ddm_ekey(r, r->ids[0], "ddm:eff");
        ddm_cmd(r, "HMGET");
        ddm_ekey(r, r->ids[0], "ddm:state");
        mdm_planb_str(&r->base.pb, "token");
        mdm_planb_str(&r->base.pb, "timestamp");
        ddm_cmd(r, "EXISTS");
        ddm_ekey(r, r->ids[0], "rec");
        break;
    case MDM_DDM_STATUS_GET:
        ddm_cmd(r, "HGETALL");
        ddm_ekey(r, r->ids[0], "ddm:si");
        ddm_cmd(r, "HMGET");
        ddm_ekey(r, r->ids[0], "ddm:st");
        mdm_planb_str(&r->base.pb, "time");
        mdm_planb_str(&r->base.pb, "errors");
        mdm_planb_str(&r->base.pb, "report");
        break;
    default: /* MDM_DDM_SYNC */
        for (i = 0; i < r->nids; i++) {
            json_object_set_new(r->affected, r->ids[i], json_null());
        }
        r->result = json_object();
        return ddm_recompute(r);
    }
    return ddm_plan(r, S_READ);
}

static mdm_step_t
ddm_start(mdm_tx_t *tx)
{
    ddm_admin_t *r = (ddm_admin_t *) tx;
    mdm_ddm_op_t op = r->a.op;
    size_t i;

    mdm_planb_reset(&r->base.pb);
    if (op == MDM_DDM_ASSIGN || op == MDM_DDM_UNASSIGN || op == MDM_DDM_SHOW ||
        op == MDM_DDM_STATUS_GET || op == MDM_DDM_SYNC) {
        if (r->nids == 0 || r->nids > MAX_IDS ||
            (r->nids > 1 && (op == MDM_DDM_SHOW || op == MDM_DDM_STATUS_GET))) {
            return ddm_bad(r, 400, "MDM05001", "%s enrollment id(s) given",
                           r->nids ? "too many" : "no");
        }
        for (i = 0; i < r->nids; i++) {
            if (!mdm_id_valid(r->ids[i], strlen(r->ids[i])) ||
                r->ids[i][0] == ':') {
                return ddm_bad(r, 400, "MDM05002",
                               "invalid enrollment id \"%.255s\"", r->ids[i]);
            }
        }
    }
    if (r->name && !mdm_ddm_name_valid(r->name, strlen(r->name))) {
        return ddm_bad(r, 400, "MDM05031", "invalid %s name \"%.255s\"",
                       op >= MDM_DDM_PUT_SET ? "set" : "declaration", r->name);
    }
    switch (op) {
    case MDM_DDM_PUT_DECL:
        return start_put_decl(r);
    case MDM_DDM_PUT_SET:
    case MDM_DDM_ADD_MEMBER:
    case MDM_DDM_DEL_MEMBER:
        return start_set(r);
    case MDM_DDM_ASSIGN:
    case MDM_DDM_UNASSIGN:
        return start_assign(r);
    default:
        if (op < MDM_DDM_PUT_DECL || op > MDM_DDM_SYNC ||
            ((op == MDM_DDM_GET_DECL || op == MDM_DDM_DEL_DECL ||
              op == MDM_DDM_GET_SET || op == MDM_DDM_DEL_SET) &&
             r->name == NULL)) {
            return ddm_bad(r, 400, "MDM05005", "unknown operation");
        }
        return start_ops(r);
    }
}

/* ---------------------------------------------------------------- */
/* operations: replies                                              */

static mdm_step_t
plan_enr_of_sets(ddm_admin_t *r, const redisReply *sets)
{
    size_t i;

    if (sets->elements == 0) {
        return ddm_recompute(r);
    }
    mdm_planb_reset(&r->base.pb);
    for (i = 0; i < sets->elements; i++) {
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "senr", sets->element[i]->str);
    }
    return ddm_plan(r, S_SETENR);
}

static mdm_step_t
read_put_decl(ddm_admin_t *r, struct redisReply *const *rep)
{
    const char *type = json_string_value(json_object_get(r->decl, "Type"));
    const char *tok =
        json_string_value(json_object_get(r->decl, "ServerToken"));
    int same = rep[0]->elements == 2 && ddm_str_eq(rep[0]->element[0], tok) &&
               ddm_str_eq(rep[0]->element[1], mdm_ddm_category(type));

    json_object_set_new(r->result, "changed", json_boolean(!same));
    if (same) {
        /* the same ServerToken: no device sees a change */
        return ddm_recompute(r);
    }
    ddm_add_all(r->affected, rep[4]);
    return plan_enr_of_sets(r, rep[3]);
}

static mdm_step_t
read_del_decl(ddm_admin_t *r, struct redisReply *const *rep)
{
    json_t *sets, *enr, *v;
    size_t i;

    if (rep[0]->integer == 0) {
        return ddm_bad(r, 404, "MDM05033", "unknown declaration \"%s\"",
                       r->name);
    }
    sets = ddm_strings(rep[1]);
    enr = ddm_strings(rep[2]);
    ddm_add_all(r->affected, rep[2]);
    mdm_planb_reset(&r->base.pb);
    /* one DEL per catalog key: each has its own Cluster slot */
    ddm_cmd(r, "DEL");
    ddm_ckey(r, "decl", r->name);
    ddm_cmd(r, "DEL");
    ddm_ckey(r, "dsets", r->name);
    ddm_cmd(r, "DEL");
    ddm_ckey(r, "denr", r->name);
    ddm_cmd(r, "SREM");
    ARG(r, "%sddm:decls", r->base.conf->prefix);
    ARG(r, "%s", r->name);
    json_array_foreach(sets, i, v)
    {
        ddm_cmd(r, "SREM");
        ddm_ckey(r, "set", json_string_value(v));
        ARG(r, "%s", r->name);
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "senr", json_string_value(v));
    }
    json_array_foreach(enr, i, v)
    {
        ddm_cmd(r, "SREM");
        ddm_ekey(r, json_string_value(v), "ddm:decls");
        ARG(r, "%s", r->name);
    }
    r->result = json_pack("{s:s,s:b,s:o}", "identifier", r->name, "deleted", 1,
                          "sets", sets);
    json_decref(enr);
    return ddm_plan(r, S_WRITE);
}

static int
has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* a minus b */
static json_t *
minus(json_t *a, json_t *b)
{
    json_t *out = json_array(), *v;
    size_t i;

    json_array_foreach(a, i, v)
    {
        if (!has(b, json_string_value(v))) {
            json_array_append(out, v);
        }
    }
    return out;
}

static mdm_step_t
read_set(ddm_admin_t *r, struct redisReply *const *rep, size_t n)
{
    json_t *old, *added, *removed, *v;
    char miss[400];
    size_t i;

    if (r->a.op == MDM_DDM_DEL_MEMBER && rep[1]->integer == 0) {
        return ddm_bad(r, 404, "MDM05034", "unknown set \"%s\"", r->name);
    }
    if (n > 2) {
        missing(rep[2], r->decls, miss, sizeof(miss));
        if (miss[0]) {
            return ddm_bad(r, 404, "MDM05033", "unknown declaration(s): %s",
                           miss);
        }
    }
    old = ddm_strings(rep[0]);
    if (r->a.op == MDM_DDM_PUT_SET) {
        r->next = json_incref(r->decls);
    } else if (r->a.op == MDM_DDM_ADD_MEMBER) {
        r->next = json_copy(old);
        if (!has(old, r->member)) {
            json_array_append_new(r->next, json_string(r->member));
        }
    } else {
        if (!has(old, r->member)) {
            json_decref(old);
            return ddm_bad(r, 404, "MDM05033",
                           "declaration \"%s\" is not in set \"%s\"", r->member,
                           r->name);
        }
        r->next = minus(old, r->decls);
    }
    added = minus(r->next, old);
    removed = minus(old, r->next);
    mdm_planb_reset(&r->base.pb);
    ddm_cmd(r, "DEL");
    ddm_ckey(r, "set", r->name);
    ddm_cmd_members(r, "SADD", "set", r->name, r->next);
    ddm_cmd(r, "SADD");
    ARG(r, "%sddm:sets", r->base.conf->prefix);
    ARG(r, "%s", r->name);
    json_array_foreach(added, i, v)
    {
        ddm_cmd(r, "SADD");
        ddm_ckey(r, "dsets", json_string_value(v));
        ARG(r, "%s", r->name);
    }
    json_array_foreach(removed, i, v)
    {
        ddm_cmd(r, "SREM");
        ddm_ckey(r, "dsets", json_string_value(v));
        ARG(r, "%s", r->name);
    }
    if (json_array_size(added) + json_array_size(removed) > 0) {
        /* only then do its enrollments change */
        ddm_cmd(r, "SMEMBERS");
        ddm_ckey(r, "senr", r->name);
    }
    r->result = json_pack("{s:s,s:O,s:o,s:o}", "set", r->name, "declarations",
                          r->next, "added", added, "removed", removed);
    json_decref(old);
    return ddm_plan(r, S_WRITE);
}

static mdm_step_t
read_del_set(ddm_admin_t *r, struct redisReply *const *rep)
{
    size_t i;

    if (rep[0]->integer == 0) {
        return ddm_bad(r, 404, "MDM05034", "unknown set \"%s\"", r->name);
    }
    ddm_add_all(r->affected, rep[2]);
    mdm_planb_reset(&r->base.pb);
    /* one DEL per catalog key: each has its own Cluster slot */
    ddm_cmd(r, "DEL");
    ddm_ckey(r, "set", r->name);
    ddm_cmd(r, "DEL");
    ddm_ckey(r, "senr", r->name);
    ddm_cmd(r, "SREM");
    ARG(r, "%sddm:sets", r->base.conf->prefix);
    ARG(r, "%s", r->name);
    for (i = 0; i < rep[1]->elements; i++) {
        ddm_cmd(r, "SREM");
        ddm_ckey(r, "dsets", rep[1]->element[i]->str);
        ARG(r, "%s", r->name);
    }
    for (i = 0; i < rep[2]->elements; i++) {
        ddm_cmd(r, "SREM");
        ddm_ekey(r, rep[2]->element[i]->str, "ddm:sets");
        ARG(r, "%s", r->name);
    }
    r->result = json_pack("{s:s,s:b,s:o}", "set", r->name, "deleted", 1,
                          "declarations", ddm_strings(rep[1]));
    return ddm_plan(r, S_WRITE);
}

static mdm_step_t
read_assign(ddm_admin_t *r, struct redisReply *const *rep)
{
    const char *verb = r->a.op == MDM_DDM_ASSIGN ? "SADD" : "SREM";
    char miss[400];
    size_t i, k = 0, o = 0;
    json_t *ids = json_array(), *v;

    if (rep && json_array_size(r->sets)) {
        missing(rep[k++], r->sets, miss, sizeof(miss));
        if (miss[0]) {
            json_decref(ids);
            return ddm_bad(r, 404, "MDM05034", "unknown set(s): %s", miss);
        }
    }
    if (rep && json_array_size(r->decls)) {
        missing(rep[k++], r->decls, miss, sizeof(miss));
        if (miss[0]) {
            json_decref(ids);
            return ddm_bad(r, 404, "MDM05033", "unknown declaration(s): %s",
                           miss);
        }
    }
    miss[0] = '\0';
    for (i = 0; rep && i < r->nids; i++) {
        if (rep[k + i]->integer == 0 && o + 2 < sizeof(miss)) {
            o += snprintf(miss + o, sizeof(miss) - o, "%s%.100s", o ? ", " : "",
                          r->ids[i]);
        }
    }
    if (miss[0]) {
        json_decref(ids);
        return ddm_bad(r, 404, "MDM05007", "unknown enrollment(s): %s", miss);
    }
    mdm_planb_reset(&r->base.pb);
    for (i = 0; i < r->nids; i++) {
        json_array_append_new(ids, json_string(r->ids[i]));
        json_object_set_new(r->affected, r->ids[i], json_null());
        if (json_array_size(r->sets)) {
            ddm_cmd(r, verb);
            ddm_ekey(r, r->ids[i], "ddm:sets");
            ddm_args(r, r->sets);
        }
        if (json_array_size(r->decls)) {
            ddm_cmd(r, verb);
            ddm_ekey(r, r->ids[i], "ddm:decls");
            ddm_args(r, r->decls);
        }
    }
    json_array_foreach(r->sets, i, v)
    {
        ddm_cmd_members(r, verb, "senr", json_string_value(v), ids);
    }
    json_array_foreach(r->decls, i, v)
    {
        ddm_cmd_members(r, verb, "denr", json_string_value(v), ids);
    }
    r->result =
        json_pack("{s:s,s:o,s:O,s:O}", "action",
                  r->a.op == MDM_DDM_ASSIGN ? "assigned" : "unassigned", "ids",
                  ids, "sets", r->sets, "declarations", r->decls);
    return ddm_plan(r, S_WRITE);
}

static mdm_step_t
ddm_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    ddm_admin_t *r = (ddm_admin_t *) tx;
    size_t i;

    /* rep NULL: the storage failed (mdm.h), a 503 like an error reply */
    if (ddm_failed(r, rep, n, r->base.plan->nreplies)) {
        return MDM_STEP_DONE;
    }
    if (r->state >= RC_ASSIGN) {
        return ddm_recompute_feed(r, rep, n);
    }
    switch (r->state) {
    case S_SETENR:
    case S_WRITE:
        for (i = 0; i < n; i++) {
            ddm_add_all(r->affected, rep[i]);
        }
        return ddm_recompute(r);
    default: /* S_READ */
        break;
    }
    switch (r->a.op) {
    case MDM_DDM_PUT_DECL:
        return read_put_decl(r, rep);
    case MDM_DDM_DEL_DECL:
        return read_del_decl(r, rep);
    case MDM_DDM_PUT_SET:
    case MDM_DDM_ADD_MEMBER:
    case MDM_DDM_DEL_MEMBER:
        return read_set(r, rep, n);
    case MDM_DDM_DEL_SET:
        return read_del_set(r, rep);
    case MDM_DDM_ASSIGN:
    case MDM_DDM_UNASSIGN:
        return read_assign(r, rep);
    default:
        return ddm_read_answer(r, rep);
    }
}
