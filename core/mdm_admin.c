/*
 * Admin operations: enqueue, push, inspect, delete, clear, results.
 * Same plan/feed loop as device requests; responses are JSON.
 */
#include "mdm_internal.h"
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
    AST_PUSH, /* enqueue: push requests for what was queued */
    AST_DONE
};

enum { ID_PENDING = 0, ID_QUEUED, ID_UNKNOWN, ID_DUP, ID_NOSCRIPT };

static const char ct_json[] = "application/json";

mdm_req_t *
mdm_req_new_admin(const mdm_conf_t *c, const mdm_admin_args_t *a)
{
    mdm_req_t *r = calloc(1, sizeof(*r));
    size_t i;

    if (r == NULL) {
        return NULL;
    }
    r->conf = c;
    r->admin = 1;
    r->a = *a;
    r->a.ids = NULL;
    r->a.uuid = NULL;
    if (a->nids > MDM_MAX_IDS) {
        r->a.nids = MDM_MAX_IDS + 1; /* refused at start */
        return r;
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
    return r;
fail:
    mdm_req_free(r);
    return NULL;
}

void
mdm_admin_free(mdm_req_t *r)
{
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

mdm_step_t
mdm_admin_reply_json(mdm_req_t *r, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    mdm_buf_t b = {0};

    json_decref(j);
    if (s == NULL) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
    }
    b.ptr = (unsigned char *) s;
    b.len = strlen(s);
    return mdm_req_reply(r, status, ct_json, &b);
}

mdm_step_t
mdm_admin_error(mdm_req_t *r, int status, const char *id, const char *msg)
{
    json_t *j;

    mdm_req_log(r, MDM_LOG_NOTICE, id, "admin request refused: %s", msg);
    r->vars[MDM_VAR_ERROR_ID] = id;
    j = json_pack("{s:s,s:s}", "error", msg, "id", id);
    return mdm_admin_reply_json(r, status, j);
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

/* Normalize the body into a command envelope; fills r->uuid, r->cmd. */
static int
admin_command(mdm_req_t *r, const char **why)
{
    plist_t root = NULL, cmd, env, u, rt;
    const unsigned char *p = r->a.body;
    size_t n = r->a.body_len, i = 0;
    char uuid[37];
    const char *s;
    uint64_t slen = 0;

    while (i < n &&
           (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) {
        i++;
    }
    if (i < n && p[i] == '{') {
        json_error_t je;
        json_t *j = json_loadb((const char *) p, n, 0, &je);

        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            *why = "body is not a JSON object or a command plist";
            return -1;
        }
        root = json_to_plist(j, why);
        json_decref(j);
        if (root == NULL) {
            return -1;
        }
    } else if (n > 0 && n <= UINT32_MAX) {
        plist_from_memory((const char *) p, (uint32_t) n, &root);
        if (root == NULL || plist_get_node_type(root) != PLIST_DICT) {
            plist_free(root);
            *why = "body is not a JSON object or a command plist";
            return -1;
        }
    } else {
        *why = "empty body";
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
push_keys(mdm_req_t *r, size_t i, mdm_keys_t *k)
{
    if (mdm_keys_init(k, r->conf->prefix, r->ids[i], NULL) != 0) {
        r->pb.failed = 1;
        return -1;
    }
    return 0;
}

/* dequeue and revoke: one script on the enrollment's keys, one argument */
static void
plan_dequeue(mdm_req_t *r, const mdm_keys_t *k, const char *uuid, int eval)
{
    mdm_req_evalsha(r, r->script);
    if (eval) {
        mdm_planb_to_eval(&r->pb, r->pb.ncmds - 1, mdm_script(r->script));
    }
    mdm_keys_push(&r->pb, k, 1);
    mdm_planb_str(&r->pb, "off");
    mdm_planb_str(&r->pb, "");
    mdm_planb_str(&r->pb, "0");
    mdm_planb_str(&r->pb, uuid);
}

static mdm_step_t
plan_main(mdm_req_t *r)
{
    mdm_keys_t k;
    size_t i, nreplies = 0;
    int eval;

    mdm_planb_reset(&r->pb);
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
            mdm_req_evalsha(r, MDM_LUA_ENQUEUE);
            if (eval) {
                mdm_planb_to_eval(&r->pb, r->pb.ncmds - 1,
                                  mdm_script(MDM_LUA_ENQUEUE));
            }
            mdm_keys_push(&r->pb, &k, 1);
            mdm_planb_str(&r->pb, "off");
            mdm_planb_str(&r->pb, "");
            mdm_planb_str(&r->pb, "0");
            mdm_planb_str(&r->pb, r->uuid);
            mdm_planb_arg(&r->pb, r->cmd.ptr, r->cmd.len);
            mdm_planb_fmt(&r->pb, "%s", k.res);
            mdm_keys_clear(&k);
            nreplies++;
        }
        break;
    case MDM_ADMIN_PUSH:
        for (i = 0; i < r->a.nids; i++) {
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "XADD");
            mdm_planb_str(&r->pb, r->conf->push_key);
            mdm_planb_str(&r->pb, "MAXLEN");
            mdm_planb_str(&r->pb, "~");
            mdm_planb_str(&r->pb, r->conf->push_maxlen_s);
            mdm_planb_str(&r->pb, "*");
            mdm_planb_str(&r->pb, "id");
            mdm_planb_str(&r->pb, r->ids[i]);
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
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "HGETALL");
            mdm_planb_fmt(&r->pb, "%s", k.rec);
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "LLEN");
            mdm_planb_fmt(&r->pb, "%s", k.q);
            nreplies = 2;
        } else if (r->a.op == MDM_ADMIN_QUEUE) {
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "LRANGE");
            mdm_planb_fmt(&r->pb, "%s", k.q);
            mdm_planb_str(&r->pb, "0");
            mdm_planb_str(&r->pb, "-1");
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "HGETALL");
            mdm_planb_fmt(&r->pb, "%s", k.cmd);
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "SMEMBERS");
            mdm_planb_fmt(&r->pb, "%s", k.nn);
            nreplies = 3;
        } else {
            mdm_planb_cmd(&r->pb);
            mdm_planb_str(&r->pb, "HGETALL");
            mdm_planb_fmt(&r->pb, "%s%s", k.res, r->uuid);
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
        r->script =
            r->a.op == MDM_ADMIN_REVOKE ? MDM_LUA_REVOKE : MDM_LUA_DEQUEUE;
        plan_dequeue(r, &k,
                     r->a.op != MDM_ADMIN_CLEAR && r->uuid ? r->uuid : "",
                     r->evalled);
        mdm_keys_clear(&k);
        nreplies = 1;
        break;
    }
    r->plan = mdm_planb_finish(&r->pb, nreplies);
    if (r->plan == NULL) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
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

mdm_step_t
mdm_admin_start(mdm_req_t *r)
{
    const char *why = NULL;
    size_t i;

    if (r->pre_status) {
        return mdm_admin_error(r, r->pre_status, r->pre_id, r->pre_msg);
    }
    if (r->a.nids == 0) {
        return mdm_admin_error(r, 400, "MDM05001", "no enrollment id given");
    }
    if (r->a.nids > MDM_MAX_IDS) {
        return mdm_admin_error(r, 400, "MDM05001", "too many enrollment ids");
    }
    for (i = 0; i < r->a.nids; i++) {
        if (!mdm_id_valid(r->ids[i], strlen(r->ids[i]))) {
            char msg[320];

            snprintf(msg, sizeof(msg), "invalid enrollment id \"%.255s\"",
                     r->ids[i]);
            return mdm_admin_error(r, 400, "MDM05002", msg);
        }
    }
    if ((r->a.op == MDM_ADMIN_DELETE || r->a.op == MDM_ADMIN_RESULT) &&
        (r->uuid == NULL || !mdm_id_valid(r->uuid, strlen(r->uuid)))) {
        return mdm_admin_error(r, 400, "MDM05003", "invalid command uuid");
    }
    if (r->a.op == MDM_ADMIN_REVOKE && r->uuid && !sha256_hex_lower(r->uuid)) {
        return mdm_admin_error(r, 400, "MDM05015",
                               "invalid certificate SHA-256 (64 hex digits)");
    }
    if (r->a.op == MDM_ADMIN_ENQUEUE && admin_command(r, &why) != 0) {
        return mdm_admin_error(r, 400, "MDM05004", why);
    }
    if (r->a.op < MDM_ADMIN_ENQUEUE || r->a.op > MDM_ADMIN_REVOKE) {
        return mdm_admin_error(r, 400, "MDM05005", "unknown operation");
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
enqueue_done(mdm_req_t *r)
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
        mdm_req_log(r, MDM_LOG_NOTICE, "MDM05006",
                    "enqueue of %s: %zu queued, %zu unknown enrollment(s), "
                    "%zu duplicate uuid(s)",
                    r->uuid, ok, unknown, dup);
    }
    j = json_pack("{s:s,s:s,s:o,s:b}", "command_uuid", r->uuid, "request_type",
                  r->request_type, "enrollments", e, "pushed",
                  ok > 0 && !r->a.nopush);
    return mdm_admin_reply_json(r, status, j);
}

static mdm_step_t
feed_enqueue(mdm_req_t *r, struct redisReply *const *rep, size_t n)
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
            return mdm_req_storage_failed(r, NULL);
        }
        if (is_noscript(x) && !r->evalled) {
            r->id_state[i] = ID_NOSCRIPT;
            noscript++;
            continue;
        }
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 1) {
            return mdm_req_storage_failed(r, x);
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
        r->evalled = 1;
        return plan_main(r);
    }
    if (npush == 0 || r->a.nopush) {
        return enqueue_done(r);
    }
    mdm_planb_reset(&r->pb);
    for (i = 0; i < r->a.nids; i++) {
        if (r->id_state[i] != ID_QUEUED) {
            continue;
        }
        mdm_planb_cmd(&r->pb);
        mdm_planb_str(&r->pb, "XADD");
        mdm_planb_str(&r->pb, r->conf->push_key);
        mdm_planb_str(&r->pb, "MAXLEN");
        mdm_planb_str(&r->pb, "~");
        mdm_planb_str(&r->pb, r->conf->push_maxlen_s);
        mdm_planb_str(&r->pb, "*");
        mdm_planb_str(&r->pb, "id");
        mdm_planb_str(&r->pb, r->ids[i]);
    }
    r->plan = mdm_planb_finish(&r->pb, npush);
    if (r->plan == NULL) {
        return mdm_req_refuse(r, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
    }
    r->state = AST_PUSH;
    return MDM_STEP_REDIS;
}

static mdm_step_t
feed_queue(mdm_req_t *r, struct redisReply *const *rep)
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
    return mdm_admin_reply_json(
        r, 200, json_pack("{s:s,s:o}", "id", r->ids[0], "commands", list));
}

static mdm_step_t
feed_revoke(mdm_req_t *r, const redisReply *rep)
{
    const char *s;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return mdm_req_storage_failed(r, rep);
    }
    s = rep->element[0]->str;
    if (strcmp(s, "UNKNOWN") == 0) {
        return mdm_admin_error(r, 404, "MDM05007", "unknown enrollment");
    }
    if (strcmp(s, "NOCERT") == 0) {
        return mdm_admin_error(r, 409, "MDM05016",
                               "no certificate is bound to this enrollment; "
                               "name the one to revoke by its SHA-256");
    }
    if (strcmp(s, "OK") != 0 || rep->elements < 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        return mdm_req_storage_failed(r, rep);
    }
    mdm_req_log(r, MDM_LOG_NOTICE, "MDM05017",
                "certificate sha256 %s revoked for enrollment %s",
                rep->element[1]->str, r->ids[0]);
    return mdm_admin_reply_json(r, 200,
                                json_pack("{s:s,s:s}", "id", r->ids[0],
                                          "revoked", rep->element[1]->str));
}

mdm_step_t
mdm_admin_feed(mdm_req_t *r, struct redisReply *const *rep, size_t n)
{
    size_t i;
    json_t *j;

    if (r->state == AST_PUSH) {
        for (i = 0; i < r->plan->nreplies; i++) {
            if (i >= n || rep[i] == NULL || rep[i]->type == REDIS_REPLY_ERROR) {
                return mdm_req_storage_failed(r, i < n ? rep[i] : NULL);
            }
        }
        return enqueue_done(r);
    }
    if (r->a.op == MDM_ADMIN_ENQUEUE) {
        return feed_enqueue(r, rep, n);
    }
    for (i = 0; i < r->plan->nreplies; i++) {
        if (i >= n || rep[i] == NULL) {
            return mdm_req_storage_failed(r, NULL);
        }
        if (is_noscript(rep[i]) && !r->evalled) {
            r->evalled = 1;
            return plan_main(r);
        }
        if (rep[i]->type == REDIS_REPLY_ERROR) {
            return mdm_req_storage_failed(r, rep[i]);
        }
    }
    switch (r->a.op) {
    case MDM_ADMIN_PUSH:
        j = json_array();
        for (i = 0; i < r->a.nids; i++) {
            json_array_append_new(j, json_string(r->ids[i]));
        }
        return mdm_admin_reply_json(r, 200, json_pack("{s:o}", "pushed", j));
    case MDM_ADMIN_ENROLLMENT:
        if (rep[0]->elements == 0) {
            return mdm_admin_error(r, 404, "MDM05007", "unknown enrollment");
        }
        return mdm_admin_reply_json(r, 200,
                                    json_pack("{s:s,s:o,s:I}", "id", r->ids[0],
                                              "record", hash_json(rep[0]),
                                              "queue_length",
                                              (json_int_t) rep[1]->integer));
    case MDM_ADMIN_QUEUE:
        return feed_queue(r, rep);
    case MDM_ADMIN_RESULT:
        if (rep[0]->elements == 0) {
            return mdm_admin_error(r, 404, "MDM05008", "no such result");
        }
        j = hash_json(rep[0]);
        json_object_set_new(j, "id", json_string(r->ids[0]));
        json_object_set_new(j, "uuid", json_string(r->uuid));
        return mdm_admin_reply_json(r, 200, j);
    case MDM_ADMIN_DELETE:
    case MDM_ADMIN_CLEAR:
        if (rep[0]->type != REDIS_REPLY_ARRAY || rep[0]->elements < 2) {
            return mdm_req_storage_failed(r, rep[0]);
        }
        i = (size_t) strtoul(rep[0]->element[1]->str, NULL, 10);
        if (r->a.op == MDM_ADMIN_DELETE && i == 0) {
            return mdm_admin_error(r, 404, "MDM05009",
                                   "no such command in the queue");
        }
        return mdm_admin_reply_json(
            r, 200, json_pack("{s:I}", "removed", (json_int_t) i));
    case MDM_ADMIN_REVOKE:
        return feed_revoke(r, rep[0]);
    default:
        return mdm_admin_error(r, 400, "MDM05005", "unknown operation");
    }
}

/* ---------------------------------------------------------------- */
/* HTTP routing                                                     */

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
 * Find parameter name in the query string: 1 with *v, *vl its value (NULL,
 * 0 for a bare "name"), 0 when absent.
 */
static int
query_find(const char *q, size_t qlen, const char *name, const char **v,
           size_t *vl)
{
    size_t n = strlen(name), i = 0, e;

    while (q && i < qlen) {
        e = i;
        while (e < qlen && q[e] != '&') {
            e++;
        }
        if (e - i >= n && strncmp(q + i, name, n) == 0 &&
            (e - i == n || q[i + n] == '=')) {
            *v = e - i == n ? NULL : q + i + n + 1;
            *vl = e - i == n ? 0 : e - i - n - 1;
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

/* "name", "name=1", "name=true", "name=yes" */
static int
query_flag(const char *q, size_t qlen, const char *name)
{
    const char *v;
    size_t vl;

    if (!query_find(q, qlen, name, &v, &vl)) {
        return 0;
    }
    return v == NULL || (vl == 1 && v[0] == '1') ||
           (vl == 4 && strncmp(v, "true", 4) == 0) ||
           (vl == 3 && strncmp(v, "yes", 3) == 0);
}

/* The value of query parameter name, cut to outlen - 1; "" if absent. */
static void
query_value(const char *q, size_t qlen, const char *name, char *out,
            size_t outlen)
{
    const char *v;
    size_t vl;

    out[0] = '\0';
    if (query_find(q, qlen, name, &v, &vl) && v) {
        if (vl >= outlen) {
            vl = outlen - 1;
        }
        memcpy(out, v, vl);
        out[vl] = '\0';
    }
}

static mdm_req_t *
admin_refused(const mdm_conf_t *c, int status, const char *id, const char *msg)
{
    mdm_admin_args_t a;
    mdm_req_t *r;

    memset(&a, 0, sizeof(a));
    r = mdm_req_new_admin(c, &a);
    if (r) {
        r->pre_status = status;
        r->pre_id = id;
        snprintf(r->pre_msg, sizeof(r->pre_msg), "%s", msg);
    }
    return r;
}

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
    int is_get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    int is_post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    int is_del = mlen == 6 && memcmp(method, "DELETE", 6) == 0;

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
        return admin_refused(c, 404, "MDM05010", "no such admin endpoint");
    }
    for (s = 1; s < nseg; s++) {
        dec[s - 1] = pct_decode(seg[s], segl[s]);
        if (dec[s - 1] == NULL) {
            r = admin_refused(c, 400, "MDM05002", "bad percent-encoding");
            goto done;
        }
    }
    if (segl[0] == 4 && memcmp(seg[0], "scep", 4) == 0) {
        const char *rest = seg[0] + 4;
        char ttl[24] = "";

        query_value(query, qlen, "ttl", ttl, sizeof(ttl));
        r = mdm_enroll_admin_http(c, is_post, rest, path + plen - rest,
                                  strtol(ttl, NULL, 10));
        if (r == NULL) {
            r = admin_refused(c, 404, "MDM05010", "no such admin endpoint");
        }
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
        a.nopush = query_flag(query, qlen, "nopush");
        for (tok = strtok_r(dec[0], ",", &save); tok && a.nids < 1024;
             tok = strtok_r(NULL, ",", &save)) {
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
        r = admin_refused(c, 404, "MDM05010", "no such admin endpoint");
        goto done;
    }
#undef SEG
    if (a.op != MDM_ADMIN_ENQUEUE && a.op != MDM_ADMIN_PUSH) {
        ids[0] = dec[0];
        a.nids = 1;
    }
    a.uuid = nseg == 3 ? dec[1] : NULL;
    r = mdm_req_new_admin(c, &a);
    goto done;

not_allowed : {
    char msg[96];

    snprintf(msg, sizeof(msg), "method not allowed here; use %s", want);
    r = admin_refused(c, 405, "MDM05011", msg);
}
done:
    free(dec[0]);
    free(dec[1]);
    free(dec[2]);
    return r;
}
