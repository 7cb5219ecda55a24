/*
 * Admin operations: enqueue, push, inspect, delete, clear, results.
 * Same plan/feed loop as device requests; responses are JSON.
 */
#include "mdm_tx.h"
#include "mdm_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>
#include <plist/plist.h>

#define MDM_MAX_IDS 10000

enum {
    AST_NONE = 0,
    AST_MAIN, /* the operation's own commands */
    AST_PUSH  /* enqueue: push requests for what was queued */
};

enum { ID_PENDING = 0, ID_QUEUED, ID_UNKNOWN, ID_DUP, ID_NOSCRIPT };

typedef struct {
    mdm_tx_t base;
    int state;
    mdm_admin_args_t a;
    char **ids;
    char *uuid;
    char *request_type;
    mdm_buf_t cmd;
    int *id_state;
} mdm_admin_t;

static mdm_step_t admin_start(mdm_tx_t *tx);
static mdm_step_t admin_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                             size_t n);
static void admin_free(mdm_tx_t *tx);

static const mdm_tx_ops_t admin_ops = {"admin", admin_start, admin_feed,
                                       admin_free};

mdm_req_t *
mdm_admin_new(const mdm_conf_t *c, const mdm_admin_args_t *a)
{
    mdm_admin_t *r = (mdm_admin_t *) mdm_tx_new(sizeof(*r), &admin_ops, c);
    size_t i;

    if (r == NULL) {
        return NULL;
    }
    r->a = *a;
    r->a.ids = NULL;
    r->a.uuid = NULL;
    if (a->nids > MDM_MAX_IDS) {
        r->a.nids = MDM_MAX_IDS + 1; /* refused at start */
        return &r->base;
    }
    if (a->nids) {
        r->ids = calloc(a->nids, sizeof(char *));
        r->id_state = calloc(a->nids, sizeof(int));
        if (r->ids == NULL || r->id_state == NULL) {
            goto fail;
        }
        for (i = 0; i < a->nids; i++) {
            r->ids[i] = mdm_strdup(a->ids[i] ? a->ids[i] : "");
            if (r->ids[i] == NULL) {
                goto fail;
            }
        }
    }
    if (a->uuid && (r->uuid = mdm_strdup(a->uuid)) == NULL) {
        goto fail;
    }
    return &r->base;
fail:
    mdm_tx_free(&r->base);
    return NULL;
}

static void
admin_free(mdm_tx_t *tx)
{
    mdm_admin_t *r = (mdm_admin_t *) tx;
    size_t i;

    for (i = 0; r->ids && i < r->a.nids; i++) {
        free(r->ids[i]);
    }
    free(r->ids);
    free(r->id_state);
    free(r->uuid);
    free(r->request_type);
    mdm_buf_free(&r->cmd);
}

/* ---------------------------------------------------------------- */
/* command input: plist or JSON, envelope or bare command           */

static plist_t json_to_plist(json_t *j, const char **why);

static plist_t
json_obj_to_plist(json_t *j, const char **why)
{
    const char *k;
    json_t *v;
    plist_t d, item;
    json_t *data = json_object_get(j, "$data");

    if (data && json_object_size(j) == 1) {
        /* {"$data": "<base64>"} is a plist <data> value */
        const char *b64 = json_string_value(data);
        unsigned char *raw;
        size_t len, blen;
        int n;

        if (b64 == NULL) {
            *why = "$data must be a base64 string";
            return NULL;
        }
        blen = strlen(b64);
        raw = malloc(blen / 4 * 3 + 3);
        if (raw == NULL) {
            return NULL;
        }
        n = EVP_DecodeBlock(raw, (const unsigned char *) b64, (int) blen);
        if (n < 0 || blen % 4 != 0) {
            free(raw);
            *why = "$data is not valid base64";
            return NULL;
        }
        len = (size_t) n;
        while (blen && b64[--blen] == '=' && len) {
            len--;
        }
        d = plist_new_data((char *) raw, len);
        free(raw);
        return d;
    }
    d = plist_new_dict();
    json_object_foreach(j, k, v)
    {
        if (json_is_null(v)) {
            continue;
        }
        item = json_to_plist(v, why);
        if (item == NULL) {
            plist_free(d);
            return NULL;
        }
        plist_dict_set_item(d, k, item);
    }
    return d;
}

static plist_t
json_to_plist(json_t *j, const char **why)
{
    size_t i;
    plist_t a, item;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return json_obj_to_plist(j, why);
    case JSON_ARRAY:
        a = plist_new_array();
        for (i = 0; i < json_array_size(j); i++) {
            item = json_to_plist(json_array_get(j, i), why);
            if (item == NULL) {
                plist_free(a);
                return NULL;
            }
            plist_array_append_item(a, item);
        }
        return a;
    case JSON_STRING:
        return plist_new_string(json_string_value(j));
    case JSON_INTEGER:
        return plist_new_uint((uint64_t) json_integer_value(j));
    case JSON_REAL:
        return plist_new_real(json_real_value(j));
    case JSON_TRUE:
        return plist_new_bool(1);
    case JSON_FALSE:
        return plist_new_bool(0);
    default:
        *why = "null is not allowed in a command";
        return NULL;
    }
}

void *
mdm_admin_body_dict(const unsigned char *p, size_t n, const char **why)
{
    plist_t root = NULL;
    size_t i = 0;

    while (i < n &&
           (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) {
        i++;
    }
    if (i < n && p[i] == '{') {
        json_error_t je;
        json_t *j = json_loadb((const char *) p, n, 0, &je);

        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            *why = "body is not a JSON object or a plist dictionary";
            return NULL;
        }
        root = json_to_plist(j, why);
        json_decref(j);
        return root;
    }
    if (n > 0 && n <= UINT32_MAX) {
        plist_from_memory((const char *) p, (uint32_t) n, &root);
        if (root == NULL || plist_get_node_type(root) != PLIST_DICT) {
            plist_free(root);
            *why = "body is not a JSON object or a plist dictionary";
            return NULL;
        }
        return root;
    }
    *why = "empty body";
    return NULL;
}

/* Normalize the body into a command envelope; fills r->uuid, r->cmd. */
static int
admin_command(mdm_admin_t *r, const char **why)
{
    plist_t root, cmd, env, u, rt;
    char uuid[37];
    const char *s;
    uint64_t slen = 0;

    root = mdm_admin_body_dict(r->a.body, r->a.body_len, why);
    if (root == NULL) {
        if (*why != NULL && strcmp(*why, "empty body") != 0 &&
            strncmp(*why, "body is not", 11) == 0) {
            *why = "body is not a JSON object or a command plist";
        }
        return -1;
    }

    cmd = plist_dict_get_item(root, "Command");
    if (cmd != NULL) {
        env = root;
    } else {
        if (plist_dict_get_item(root, "RequestType") == NULL) {
            plist_free(root);
            *why = "not an MDM command: neither Command nor RequestType";
            return -1;
        }
        env = plist_new_dict();
        plist_dict_set_item(env, "Command", root);
        cmd = root;
    }
    rt = plist_get_node_type(cmd) == PLIST_DICT
             ? plist_dict_get_item(cmd, "RequestType")
             : NULL;
    if (rt == NULL || plist_get_node_type(rt) != PLIST_STRING ||
        (s = plist_get_string_ptr(rt, &slen)) == NULL || slen == 0) {
        plist_free(env);
        *why = "Command.RequestType must be a non-empty string";
        return -1;
    }
    r->request_type = mdm_strdup(s);
    u = plist_dict_get_item(env, "CommandUUID");
    if (u == NULL) {
        if (mdm_uuid(uuid) != 0) {
            plist_free(env);
            *why = "no randomness for a CommandUUID";
            return -1;
        }
        plist_dict_set_item(env, "CommandUUID", plist_new_string(uuid));
        r->uuid = mdm_strdup(uuid);
    } else if (plist_get_node_type(u) != PLIST_STRING ||
               (s = plist_get_string_ptr(u, &slen)) == NULL ||
               !mdm_id_valid(s, (size_t) slen)) {
        plist_free(env);
        *why = "CommandUUID must be 1-255 printable characters without "
               "spaces or braces";
        return -1;
    } else {
        r->uuid = mdm_strdup(s);
    }
    if (r->uuid == NULL || r->request_type == NULL ||
        mdm_plist_xml(env, &r->cmd) != 0) {
        plist_free(env);
        *why = "out of memory";
        return -1;
    }
    plist_free(env);
    return 0;
}

/* ---------------------------------------------------------------- */
/* planning                                                         */

static int
push_keys(mdm_admin_t *r, size_t i, mdm_keys_t *k)
{
    if (mdm_keys_init(k, r->base.conf->prefix, r->ids[i], NULL) != 0) {
        r->base.pb.failed = 1;
        return -1;
    }
    return 0;
}

/* dequeue and revoke: one script on the enrollment's keys, one argument */
static void
plan_dequeue(mdm_admin_t *r, const mdm_keys_t *k, const char *uuid, int eval)
{
    mdm_tx_evalsha(&r->base, r->base.script);
    if (eval) {
        mdm_planb_to_eval(&r->base.pb, r->base.pb.ncmds - 1,
                          mdm_script(r->base.script));
    }
    mdm_keys_push(&r->base.pb, k, 1);
    mdm_planb_str(&r->base.pb, "off");
    mdm_planb_str(&r->base.pb, "");
    mdm_planb_str(&r->base.pb, "0");
    mdm_planb_str(&r->base.pb, uuid);
}

/* A push request for enrollment id, read by mdm-pushd. */
static void
plan_push(mdm_admin_t *r, const char *id)
{
    mdm_planb_xadd(&r->base.pb, r->base.conf->push_key,
                   r->base.conf->push_maxlen_s);
    mdm_planb_str(&r->base.pb, "id");
    mdm_planb_str(&r->base.pb, id);
}

static mdm_step_t
plan_main(mdm_admin_t *r)
{
    mdm_keys_t k;
    size_t i, nreplies = 0;
    int eval;

    mdm_planb_reset(&r->base.pb);
    switch (r->a.op) {
    case MDM_ADMIN_ENQUEUE:
        for (i = 0; i < r->a.nids; i++) {
            if (r->id_state[i] != ID_PENDING && r->id_state[i] != ID_NOSCRIPT) {
                continue;
            }
            eval = r->id_state[i] == ID_NOSCRIPT;
            if (push_keys(r, i, &k) != 0) {
                break;
            }
            mdm_tx_evalsha(&r->base, MDM_LUA_ENQUEUE);
            if (eval) {
                mdm_planb_to_eval(&r->base.pb, r->base.pb.ncmds - 1,
                                  mdm_script(MDM_LUA_ENQUEUE));
            }
            mdm_keys_push(&r->base.pb, &k, 1);
            mdm_planb_str(&r->base.pb, "off");
            mdm_planb_str(&r->base.pb, "");
            mdm_planb_str(&r->base.pb, "0");
            mdm_planb_str(&r->base.pb, r->uuid);
            mdm_planb_arg(&r->base.pb, r->cmd.ptr, r->cmd.len);
            mdm_planb_fmt(&r->base.pb, "%s", k.res);
            mdm_keys_clear(&k);
            nreplies++;
        }
        break;
    case MDM_ADMIN_PUSH:
        for (i = 0; i < r->a.nids; i++) {
            plan_push(r, r->ids[i]);
            nreplies++;
        }
        break;
    case MDM_ADMIN_ENROLLMENT:
    case MDM_ADMIN_QUEUE:
    case MDM_ADMIN_RESULT:
        if (push_keys(r, 0, &k) != 0) {
            break;
        }
        if (r->a.op == MDM_ADMIN_ENROLLMENT) {
            mdm_planb_cmd(&r->base.pb);
            mdm_planb_str(&r->base.pb, "HGETALL");
            mdm_planb_fmt(&r->base.pb, "%s", k.rec);
            mdm_planb_cmd(&r->base.pb);
            mdm_planb_str(&r->base.pb, "LLEN");
            mdm_planb_fmt(&r->base.pb, "%s", k.q);
            nreplies = 2;
        } else if (r->a.op == MDM_ADMIN_QUEUE) {
            mdm_planb_cmd(&r->base.pb);
            mdm_planb_str(&r->base.pb, "LRANGE");
            mdm_planb_fmt(&r->base.pb, "%s", k.q);
            mdm_planb_str(&r->base.pb, "0");
            mdm_planb_str(&r->base.pb, "-1");
            mdm_planb_cmd(&r->base.pb);
            mdm_planb_str(&r->base.pb, "HGETALL");
            mdm_planb_fmt(&r->base.pb, "%s", k.cmd);
            mdm_planb_cmd(&r->base.pb);
            mdm_planb_str(&r->base.pb, "SMEMBERS");
            mdm_planb_fmt(&r->base.pb, "%s", k.nn);
            nreplies = 3;
        } else {
            mdm_planb_cmd(&r->base.pb);
            mdm_planb_str(&r->base.pb, "HGETALL");
            mdm_planb_fmt(&r->base.pb, "%s%s", k.res, r->uuid);
            nreplies = 1;
        }
        mdm_keys_clear(&k);
        break;
    case MDM_ADMIN_DELETE:
    case MDM_ADMIN_CLEAR:
    case MDM_ADMIN_REVOKE:
        if (push_keys(r, 0, &k) != 0) {
            break;
        }
        r->base.script =
            r->a.op == MDM_ADMIN_REVOKE ? MDM_LUA_REVOKE : MDM_LUA_DEQUEUE;
        plan_dequeue(r, &k,
                     r->a.op != MDM_ADMIN_CLEAR && r->uuid ? r->uuid : "",
                     r->base.evalled);
        mdm_keys_clear(&k);
        nreplies = 1;
        break;
    }
    r->base.plan = mdm_planb_finish(&r->base.pb, nreplies);
    if (r->base.plan == NULL) {
        return mdm_tx_oom(&r->base);
    }
    r->state = AST_MAIN;
    return MDM_STEP_REDIS;
}

/* 64 hex digits, lowercased in place as stored hashes are; 0 if not */
static int
sha256_hex_lower(char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        if (i >= 64 || mdm_hexval((unsigned char) s[i]) < 0) {
            return 0;
        }
        if (s[i] >= 'A' && s[i] <= 'F') {
            s[i] = (char) (s[i] - 'A' + 'a');
        }
    }
    return i == 64;
}

static mdm_step_t
admin_start(mdm_tx_t *tx)
{
    mdm_admin_t *r = (mdm_admin_t *) tx;
    const char *why = NULL;
    size_t i;

    if (r->a.nids == 0) {
        return mdm_tx_json_error(&r->base, 400, "MDM05001",
                                 "no enrollment id given");
    }
    if (r->a.nids > MDM_MAX_IDS) {
        return mdm_tx_json_error(&r->base, 400, "MDM05001",
                                 "too many enrollment ids");
    }
    for (i = 0; i < r->a.nids; i++) {
        if (!mdm_id_valid(r->ids[i], strlen(r->ids[i]))) {
            char msg[320];

            snprintf(msg, sizeof(msg), "invalid enrollment id \"%.255s\"",
                     r->ids[i]);
            return mdm_tx_json_error(&r->base, 400, "MDM05002", msg);
        }
    }
    if ((r->a.op == MDM_ADMIN_DELETE || r->a.op == MDM_ADMIN_RESULT) &&
        (r->uuid == NULL || !mdm_id_valid(r->uuid, strlen(r->uuid)))) {
        return mdm_tx_json_error(&r->base, 400, "MDM05003",
                                 "invalid command uuid");
    }
    if (r->a.op == MDM_ADMIN_REVOKE && r->uuid && !sha256_hex_lower(r->uuid)) {
        return mdm_tx_json_error(&r->base, 400, "MDM05015",
                                 "invalid certificate SHA-256 (64 hex digits)");
    }
    if (r->a.op == MDM_ADMIN_ENQUEUE && admin_command(r, &why) != 0) {
        return mdm_tx_json_error(&r->base, 400, "MDM05004", why);
    }
    if (r->a.op < MDM_ADMIN_ENQUEUE || r->a.op > MDM_ADMIN_REVOKE) {
        return mdm_tx_json_error(&r->base, 400, "MDM05005",
                                 "unknown operation");
    }
    return plan_main(r);
}

/* ---------------------------------------------------------------- */
/* replies                                                          */

static int
is_noscript(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR &&
           strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

static json_t *
bulk_json(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);

    if (j == NULL) {
        /* not UTF-8 (tokens, binary plists): base64 */
        char *b = mdm_b64((const unsigned char *) s, len);

        j = json_pack("{s:s}", "$data", b ? b : "");
        free(b);
    }
    return j;
}

static json_t *
hash_json(const redisReply *rep)
{
    json_t *o = json_object();
    size_t i;

    for (i = 0; i + 1 < rep->elements; i += 2) {
        json_object_set_new(
            o, rep->element[i]->str,
            bulk_json(rep->element[i + 1]->str, rep->element[i + 1]->len));
    }
    return o;
}

static char *
command_type(const char *body, size_t len)
{
    plist_t root = NULL, rt;
    char *s = NULL;

    plist_from_memory(body, (uint32_t) len, &root);
    rt = root ? plist_access_path(root, 2, "Command", "RequestType") : NULL;
    if (rt && plist_get_node_type(rt) == PLIST_STRING) {
        plist_get_string_val(rt, &s);
    }
    plist_free(root);
    return s;
}

static mdm_step_t
enqueue_done(mdm_admin_t *r)
{
    static const char *const names[] = {"pending", "queued", "unknown",
                                        "duplicate", "pending"};
    json_t *j, *e;
    size_t i, ok = 0, unknown = 0, dup = 0;
    int status;

    e = json_object();
    for (i = 0; i < r->a.nids; i++) {
        json_object_set_new(e, r->ids[i], json_string(names[r->id_state[i]]));
        ok += r->id_state[i] == ID_QUEUED;
        unknown += r->id_state[i] == ID_UNKNOWN;
        dup += r->id_state[i] == ID_DUP;
    }
    if (ok == r->a.nids) {
        status = 200;
    } else if (unknown == r->a.nids) {
        status = 404;
    } else if (dup == r->a.nids) {
        status = 409;
    } else if (ok == 0) {
        status = 400;
    } else {
        status = 207;
    }
    if (ok < r->a.nids) {
        mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM05006",
                   "enqueue of %s: %zu queued, %zu unknown enrollment(s), "
                   "%zu duplicate uuid(s)",
                   r->uuid, ok, unknown, dup);
    }
    j = json_pack("{s:s,s:s,s:o,s:b}", "command_uuid", r->uuid, "request_type",
                  r->request_type, "enrollments", e, "pushed",
                  ok > 0 && !r->a.nopush);
    return mdm_tx_json(&r->base, status, j);
}

static mdm_step_t
feed_enqueue(mdm_admin_t *r, struct redisReply *const *rep, size_t n)
{
    size_t i, k = 0, npush = 0, noscript = 0;
    const redisReply *x;

    for (i = 0; i < r->a.nids; i++) {
        if (r->id_state[i] != ID_PENDING && r->id_state[i] != ID_NOSCRIPT) {
            continue;
        }
        x = k < n ? rep[k] : NULL;
        k++;
        if (x == NULL) {
            return mdm_tx_storage_failed(&r->base, NULL);
        }
        if (is_noscript(x) && !r->base.evalled) {
            r->id_state[i] = ID_NOSCRIPT;
            noscript++;
            continue;
        }
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 1) {
            return mdm_tx_storage_failed(&r->base, x);
        }
        if (strcmp(x->element[0]->str, "OK") == 0) {
            r->id_state[i] = ID_QUEUED;
            npush++;
        } else if (strcmp(x->element[0]->str, "DUP") == 0) {
            r->id_state[i] = ID_DUP;
        } else {
            r->id_state[i] = ID_UNKNOWN;
        }
    }
    if (noscript) {
        r->base.evalled = 1;
        return plan_main(r);
    }
    if (npush == 0 || r->a.nopush) {
        return enqueue_done(r);
    }
    mdm_planb_reset(&r->base.pb);
    for (i = 0; i < r->a.nids; i++) {
        if (r->id_state[i] != ID_QUEUED) {
            continue;
        }
        plan_push(r, r->ids[i]);
    }
    r->base.plan = mdm_planb_finish(&r->base.pb, npush);
    if (r->base.plan == NULL) {
        return mdm_tx_oom(&r->base);
    }
    r->state = AST_PUSH;
    return MDM_STEP_REDIS;
}

static mdm_step_t
feed_queue(mdm_admin_t *r, struct redisReply *const *rep)
{
    const redisReply *q = rep[0], *cmd = rep[1], *nn = rep[2];
    json_t *list = json_array(), *item;
    size_t i, j;
    char *rt;
    int notnow;

    for (i = 0; i < q->elements; i++) {
        const redisReply *u = q->element[i];

        rt = NULL;
        for (j = 0; j + 1 < cmd->elements; j += 2) {
            if (cmd->element[j]->len == u->len &&
                memcmp(cmd->element[j]->str, u->str, u->len) == 0) {
                rt = command_type(cmd->element[j + 1]->str,
                                  cmd->element[j + 1]->len);
                break;
            }
        }
        notnow = 0;
        for (j = 0; j < nn->elements; j++) {
            if (nn->element[j]->len == u->len &&
                memcmp(nn->element[j]->str, u->str, u->len) == 0) {
                notnow = 1;
            }
        }
        item = json_pack("{s:s%,s:s?,s:b}", "uuid", u->str, u->len,
                         "request_type", rt, "notnow", notnow);
        free(rt);
        json_array_append_new(list, item);
    }
    return mdm_tx_json(
        &r->base, 200,
        json_pack("{s:s,s:o}", "id", r->ids[0], "commands", list));
}

static mdm_step_t
feed_revoke(mdm_admin_t *r, const redisReply *rep)
{
    const char *s;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return mdm_tx_storage_failed(&r->base, rep);
    }
    s = rep->element[0]->str;
    if (strcmp(s, "UNKNOWN") == 0) {
        return mdm_tx_json_error(&r->base, 404, "MDM05007",
                                 "unknown enrollment");
    }
    if (strcmp(s, "NOCERT") == 0) {
        return mdm_tx_json_error(&r->base, 409, "MDM05016",
                                 "no certificate is bound to this enrollment; "
                                 "name the one to revoke by its SHA-256");
    }
    if (strcmp(s, "OK") != 0 || rep->elements < 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        return mdm_tx_storage_failed(&r->base, rep);
    }
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM05017",
               "certificate sha256 %s revoked for enrollment %s",
               rep->element[1]->str, r->ids[0]);
    return mdm_tx_json(&r->base, 200,
                       json_pack("{s:s,s:s}", "id", r->ids[0], "revoked",
                                 rep->element[1]->str));
}

static mdm_step_t
admin_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    mdm_admin_t *r = (mdm_admin_t *) tx;
    size_t i;
    json_t *j;

    if (r->state == AST_PUSH) {
        for (i = 0; i < r->base.plan->nreplies; i++) {
            if (i >= n || rep[i] == NULL || rep[i]->type == REDIS_REPLY_ERROR) {
                return mdm_tx_storage_failed(&r->base, i < n ? rep[i] : NULL);
            }
        }
        return enqueue_done(r);
    }
    if (r->a.op == MDM_ADMIN_ENQUEUE) {
        return feed_enqueue(r, rep, n);
    }
    for (i = 0; i < r->base.plan->nreplies; i++) {
        if (i >= n || rep[i] == NULL) {
            return mdm_tx_storage_failed(&r->base, NULL);
        }
        if (is_noscript(rep[i]) && !r->base.evalled) {
            r->base.evalled = 1;
            return plan_main(r);
        }
        if (rep[i]->type == REDIS_REPLY_ERROR) {
            return mdm_tx_storage_failed(&r->base, rep[i]);
        }
    }
    switch (r->a.op) {
    case MDM_ADMIN_PUSH:
        j = json_array();
        for (i = 0; i < r->a.nids; i++) {
            json_array_append_new(j, json_string(r->ids[i]));
        }
        return mdm_tx_json(&r->base, 200, json_pack("{s:o}", "pushed", j));
    case MDM_ADMIN_ENROLLMENT:
        if (rep[0]->elements == 0) {
            return mdm_tx_json_error(&r->base, 404, "MDM05007",
                                     "unknown enrollment");
        }
        return mdm_tx_json(&r->base, 200,
                           json_pack("{s:s,s:o,s:I}", "id", r->ids[0], "record",
                                     hash_json(rep[0]), "queue_length",
                                     (json_int_t) rep[1]->integer));
    case MDM_ADMIN_QUEUE:
        return feed_queue(r, rep);
    case MDM_ADMIN_RESULT:
        if (rep[0]->elements == 0) {
            return mdm_tx_json_error(&r->base, 404, "MDM05008",
                                     "no such result");
        }
        j = hash_json(rep[0]);
        json_object_set_new(j, "id", json_string(r->ids[0]));
        json_object_set_new(j, "uuid", json_string(r->uuid));
        return mdm_tx_json(&r->base, 200, j);
    case MDM_ADMIN_DELETE:
    case MDM_ADMIN_CLEAR:
        if (rep[0]->type != REDIS_REPLY_ARRAY || rep[0]->elements < 2) {
            return mdm_tx_storage_failed(&r->base, rep[0]);
        }
        i = (size_t) strtoul(rep[0]->element[1]->str, NULL, 10);
        if (r->a.op == MDM_ADMIN_DELETE && i == 0) {
            return mdm_tx_json_error(&r->base, 404, "MDM05009",
                                     "no such command in the queue");
        }
        return mdm_tx_json(&r->base, 200,
                           json_pack("{s:I}", "removed", (json_int_t) i));
    case MDM_ADMIN_REVOKE:
        return feed_revoke(r, rep[0]);
    default:
        return mdm_tx_json_error(&r->base, 400, "MDM05005",
                                 "unknown operation");
    }
}
