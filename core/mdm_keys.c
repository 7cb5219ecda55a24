/*
 * Redis key names. All keys of a device and its user channels share the
 * hash tag {<device id>}; see core/lua/KEYS.md.
 */
#include "mdm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* All key names of one enrollment in one allocation: a device request
 * builds them on its hot path. */
int
mdm_keys_init(mdm_keys_t *k, const char *prefix, const char *id,
              const char *dev_id)
{
    size_t dlen = dev_id ? strlen(dev_id) : strcspn(id, ":");
    size_t plen = strlen(prefix), rest = strlen(id) - dlen;
    size_t dev = plen + dlen + 2; /* <P>{D} */
    size_t base = dev + rest;
    size_t total;
    char *p;

    memset(k, 0, sizeof(*k));
    if (strncmp(id, dev_id ? dev_id : id, dlen) != 0) {
        return -1;
    }
    total = (dev + 1) + (base + 1) + (dev + 5) + (base + 5) + (base + 3) +
            (base + 5) + (base + 4) + (dev + 7) + (base + 6);
    p = malloc(total);
    if (p == NULL) {
        return -1;
    }
#define PUT(field, fmt, ...)                                                   \
    k->field = p;                                                              \
    p += sprintf(p, fmt, __VA_ARGS__) + 1;
    PUT(devbase, "%s{%.*s}", prefix, (int) dlen, id);
    PUT(base, "%s%s", k->devbase, id + dlen);
    PUT(devrec, "%s:rec", k->devbase);
    PUT(rec, "%s:rec", k->base);
    PUT(q, "%s:q", k->base);
    PUT(cmd, "%s:cmd", k->base);
    PUT(nn, "%s:nn", k->base);
    PUT(users, "%s:users", k->devbase);
    PUT(res, "%s:res:", k->base);
#undef PUT
    return 0;
}

void
mdm_keys_clear(mdm_keys_t *k)
{
    free(k->devbase); /* the block */
    memset(k, 0, sizeof(*k));
}

void
mdm_keys_push(mdm_planb_t *b, const mdm_keys_t *k, int copy)
{
    mdm_keys_push_more(b, k, copy, 0);
}

void
mdm_keys_push_more(mdm_planb_t *b, const mdm_keys_t *k, int copy, int extra)
{
    const char *keys[] = {k->devrec, k->rec, k->q, k->cmd, k->nn, k->users};
    size_t i;

    if (extra == 0) {
        mdm_planb_str(b, "6"); /* the hot path: no formatting */
    } else {
        mdm_planb_fmt(b, "%d", 6 + extra);
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (copy) {
            mdm_planb_fmt(b, "%s", keys[i]);
        } else {
            mdm_planb_str(b, keys[i]);
        }
    }
}
