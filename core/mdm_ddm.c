/*
 * Declarative management, the device side (mdm_ddm.h): the endpoints of
 * the DeclarativeManagement check-in, planned as one script on the
 * device's slot (core/lua/ddm.lua) and answered as JSON. mdm_device.c
 * owns the request; this file fills in its DDM part.
 */
#include "mdm_ddm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

static const char ct_json[] = "application/json";

int
mdm_ddm_endpoint(const char *ep, mdm_ddm_dev_t *d)
{
    const char *cat, *slash;

    if (strcmp(ep, "tokens") == 0) {
        d->ep = MDM_DDM_TOKENS;
    } else if (strcmp(ep, "declaration-items") == 0) {
        d->ep = MDM_DDM_ITEMS;
    } else if (strcmp(ep, "status") == 0) {
        d->ep = MDM_DDM_STATUS;
    } else if (strncmp(ep, "declaration/", 12) == 0) {
        cat = ep + 12;
        slash = strchr(cat, '/');
        if (slash == NULL || !mdm_ddm_category_valid(cat, slash - cat) ||
            !mdm_ddm_name_valid(slash + 1, strlen(slash + 1))) {
            return -1;
        }
        memcpy(d->category, cat, slash - cat);
        d->category[slash - cat] = '\0';
        d->identifier = slash + 1;
        d->ep = MDM_DDM_DECL;
    } else {
        return -1;
    }
    return 0;
}

void
mdm_ddm_dev_clear(mdm_ddm_dev_t *d)
{
    mdm_ddm_status_clear(&d->status);
    mdm_buf_free(&d->decl);
}

void
mdm_ddm_push_keys(mdm_tx_t *tx, const mdm_keys_t *k)
{
    mdm_planb_fmt(&tx->pb, "%s:ddm:eff", k->base);
    mdm_planb_fmt(&tx->pb, "%s:ddm:state", k->base);
    mdm_planb_fmt(&tx->pb, "%s:ddm:si", k->base);
    mdm_planb_fmt(&tx->pb, "%s:ddm:st", k->base);
}

void
mdm_ddm_plan_args(mdm_tx_t *tx, mdm_ddm_dev_t *d)
{
    mdm_planb_t *pb = &tx->pb;
    size_t i;

    switch (d->ep) {
    case MDM_DDM_TOKENS:
        mdm_planb_str(pb, "tokens");
        break;
    case MDM_DDM_ITEMS:
        mdm_planb_str(pb, "items");
        break;
    case MDM_DDM_DECL:
        mdm_planb_str(pb, "decl");
        mdm_planb_str(pb, d->category);
        mdm_planb_str(pb, d->identifier);
        break;
    default:
        mdm_planb_str(pb, "status");
        mdm_planb_str(pb, d->status.errors);
        mdm_planb_arg(pb, d->status.raw, d->status.raw_len);
        for (i = 0; i < d->status.n; i++) {
            mdm_planb_str(pb, d->status.names[i]);
            mdm_planb_str(pb, d->status.values[i]);
        }
        break;
    }
}

void
mdm_ddm_plan_decl_read(mdm_tx_t *tx, const mdm_ddm_dev_t *d)
{
    mdm_planb_cmd(&tx->pb);
    mdm_planb_str(&tx->pb, "HGET");
    mdm_planb_fmt(&tx->pb, "%sddm:decl:%s", tx->conf->prefix, d->identifier);
    mdm_planb_str(&tx->pb, "json");
}

int
mdm_ddm_keep_decl(mdm_ddm_dev_t *d, const redisReply *rep)
{
    if (d->have_decl || rep == NULL || rep->type != REDIS_REPLY_STRING) {
        return 0;
    }
    if (mdm_buf_set(&d->decl, rep->str, rep->len) != 0) {
        return -1;
    }
    d->have_decl = 1;
    return 0;
}

void
mdm_ddm_plan_event(mdm_tx_t *tx, const mdm_ddm_dev_t *d)
{
    mdm_planb_str(&tx->pb, "errors");
    mdm_planb_str(&tx->pb, d->status.errors);
    mdm_planb_str(&tx->pb, "report");
    mdm_planb_arg(&tx->pb, d->status.raw, d->status.raw_len);
}

/* ---------------------------------------------------------------- */
/* answers                                                          */

static const char *
str_at(const redisReply *rep, size_t i)
{
    const redisReply *e = i < rep->elements ? rep->element[i] : NULL;

    return e && e->type == REDIS_REPLY_STRING && e->len ? e->str : NULL;
}

typedef struct {
    const char *id;
    const char *v; /* "category ServerToken" */
} pair_t;

static int
pair_cmp(const void *a, const void *b)
{
    return strcmp(((const pair_t *) a)->id, ((const pair_t *) b)->id);
}

/* {"Declarations": {category lists}, "DeclarationsToken": token} */
static json_t *
items_json(const redisReply *rep, const char *token)
{
    static const char *const names[] = {"Activations", "Assets",
                                        "Configurations", "Management"};
    static const char *const cats[] = {"activation", "asset", "configuration",
                                       "management"};
    json_t *lists[4], *decls = json_object();
    pair_t *p;
    size_t n = 0, i, c;
    const char *sp;

    p = calloc(rep->elements / 2 + 1, sizeof(*p));
    if (p == NULL || decls == NULL) {
        free(p);
        json_decref(decls);
        return NULL;
    }
    for (c = 0; c < 4; c++) {
        lists[c] = json_array();
        json_object_set_new(decls, names[c], lists[c]);
    }
    for (i = 3; i + 1 < rep->elements; i += 2) {
        if (rep->element[i]->type == REDIS_REPLY_STRING &&
            rep->element[i + 1]->type == REDIS_REPLY_STRING) {
            p[n].id = rep->element[i]->str;
            p[n++].v = rep->element[i + 1]->str;
        }
    }
    qsort(p, n, sizeof(*p), pair_cmp);
    for (i = 0; i < n; i++) {
        sp = strchr(p[i].v, ' ');
        for (c = 0; sp && c < 4; c++) {
            if (strlen(cats[c]) == (size_t) (sp - p[i].v) &&
                memcmp(p[i].v, cats[c], sp - p[i].v) == 0) {
                json_array_append_new(
                    lists[c], json_pack("{s:s,s:s}", "Identifier", p[i].id,
                                        "ServerToken", sp + 1));
            }
        }
    }
    free(p);
    return json_pack("{s:o,s:s}", "Declarations", decls, "DeclarationsToken",
                     token);
}

mdm_step_t
mdm_ddm_respond(mdm_tx_t *tx, mdm_ddm_dev_t *d, const redisReply *rep,
                int *not_found)
{
    const char *token, *ts;
    json_t *j;

    *not_found = 0;
    switch (d->ep) {
    case MDM_DDM_STATUS:
        return mdm_tx_reply(tx, 200, NULL, NULL);
    case MDM_DDM_DECL:
        if (str_at(rep, 1) == NULL || !d->have_decl) {
            *not_found = 1;
            return MDM_STEP_DONE;
        }
        return mdm_tx_reply(tx, 200, ct_json, &d->decl);
    default:
        break;
    }
    token = str_at(rep, 1);
    ts = str_at(rep, 2);
    if (token == NULL) {
        token = mdm_ddm_empty_token();
    }
    if (d->ep == MDM_DDM_TOKENS) {
        j = json_pack("{s:{s:s,s:s}}", "SyncTokens", "DeclarationsToken", token,
                      "Timestamp", ts ? ts : "1970-01-01T00:00:00Z");
    } else {
        j = items_json(rep, token);
    }
    if (j == NULL) {
        return mdm_tx_oom(tx);
    }
    /* mdm_tx_json answers with application/json */
    return mdm_tx_json(tx, 200, j);
}
