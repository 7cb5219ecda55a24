/*
 * Declarative management, the admin side's read-only answers
 * (mdm_ddm_int.h): a declaration, the lists, a set, an enrollment's
 * assignments and effective declarations, its status report.
 */
#include "mdm_ddm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

static json_t *
hash_obj(const redisReply *x)
{
    json_t *o = json_object();
    size_t i;

    for (i = 0; x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements; i += 2) {
        json_object_set_new(o, x->element[i]->str,
                            json_string(x->element[i + 1]->str));
    }
    return o;
}

static json_t *
json_or_string(const redisReply *x)
{
    json_error_t je;
    json_t *j;

    if (x == NULL || x->type != REDIS_REPLY_STRING) {
        return json_null();
    }
    j = json_loadb(x->str, x->len, JSON_DECODE_ANY, &je);
    return j ? j : json_stringn(x->str, x->len);
}

static mdm_step_t
read_show(ddm_admin_t *r, struct redisReply *const *rep)
{
    const redisReply *eff = rep[2], *st = rep[3];
    json_t *items = json_array();
    const char *v, *sp;
    size_t i;

    if (rep[4]->integer == 0 && eff->elements == 0) {
        json_decref(items);
        return ddm_bad(r, 404, "MDM05007", "unknown enrollment");
    }
    for (i = 0; i + 1 < eff->elements; i += 2) {
        v = eff->element[i + 1]->str;
        sp = strchr(v, ' ');
        json_array_append_new(items,
                              json_pack("{s:s,s:s%,s:s}", "identifier",
                                        eff->element[i]->str, "category", v,
                                        (size_t) (sp ? sp - v : 0),
                                        "server_token", sp ? sp + 1 : ""));
    }
    return mdm_tx_json(
        &r->base, 200,
        json_pack(
            "{s:s,s:o,s:o,s:o,s:s,s:s?}", "id", r->ids[0], "sets",
            ddm_strings(rep[0]), "declarations", ddm_strings(rep[1]),
            "effective", items, "token",
            st->element[0]->type == REDIS_REPLY_STRING ? st->element[0]->str
                                                       : mdm_ddm_empty_token(),
            "timestamp",
            st->element[1]->type == REDIS_REPLY_STRING ? st->element[1]->str
                                                       : NULL));
}

static mdm_step_t
read_status(ddm_admin_t *r, struct redisReply *const *rep)
{
    const redisReply *si = rep[0], *st = rep[1];
    const char **names, **values;
    size_t *nl, *vl, i, n = si->elements / 2;
    json_t *items;

    if (st->element[0]->type != REDIS_REPLY_STRING) {
        return ddm_bad(r, 404, "MDM05037",
                       "no status report from this enrollment");
    }
    names = calloc(n + 1, sizeof(char *));
    values = calloc(n + 1, sizeof(char *));
    nl = calloc(n + 1, sizeof(size_t));
    vl = calloc(n + 1, sizeof(size_t));
    for (i = 0; names && values && nl && vl && i < n; i++) {
        names[i] = si->element[2 * i]->str;
        nl[i] = si->element[2 * i]->len;
        values[i] = si->element[2 * i + 1]->str;
        vl[i] = si->element[2 * i + 1]->len;
    }
    items = names && values && nl && vl
                ? mdm_ddm_status_nest(names, nl, values, vl, n)
                : NULL;
    free(names);
    free(values);
    free(nl);
    free(vl);
    if (items == NULL) {
        return mdm_tx_oom(&r->base);
    }
    return mdm_tx_json(
        &r->base, 200,
        json_pack("{s:s,s:I,s:o,s:o,s:o}", "id", r->ids[0], "time",
                  (json_int_t) strtoll(st->element[0]->str, NULL, 10),
                  "StatusItems", items, "Errors",
                  json_or_string(st->element[1]), "last_report",
                  json_or_string(st->element[2])));
}

mdm_step_t
ddm_read_answer(ddm_admin_t *r, struct redisReply *const *rep)
{
    json_t *h, *d;

    switch (r->a.op) {
    case MDM_DDM_GET_DECL:
        if (rep[0]->elements == 0) {
            return ddm_bad(r, 404, "MDM05033", "unknown declaration \"%s\"",
                           r->name);
        }
        h = hash_obj(rep[0]);
        d = json_loads(json_string_value(json_object_get(h, "json")), 0, NULL);
        json_object_del(h, "json");
        json_object_set_new(h, "declaration", d ? d : json_null());
        json_object_set_new(h, "identifier", json_string(r->name));
        json_object_set_new(h, "sets", ddm_strings(rep[1]));
        json_object_set_new(h, "enrollments", ddm_strings(rep[2]));
        return mdm_tx_json(&r->base, 200, h);
    case MDM_DDM_LIST_DECLS:
        return mdm_tx_json(
            &r->base, 200,
            json_pack("{s:o}", "declarations", ddm_strings(rep[0])));
    case MDM_DDM_LIST_SETS:
        return mdm_tx_json(&r->base, 200,
                           json_pack("{s:o}", "sets", ddm_strings(rep[0])));
    case MDM_DDM_GET_SET:
        if (rep[0]->integer == 0) {
            return ddm_bad(r, 404, "MDM05034", "unknown set \"%s\"", r->name);
        }
        return mdm_tx_json(&r->base, 200,
                           json_pack("{s:s,s:o,s:o}", "set", r->name,
                                     "declarations", ddm_strings(rep[1]),
                                     "enrollments", ddm_strings(rep[2])));
    case MDM_DDM_SHOW:
        return read_show(r, rep);
    default:
        return read_status(r, rep);
    }
}
