/*
 * Redis key names. All keys of a device and its user channels share the
 * hash tag {<device id>}; see core/lua/KEYS.md.
 */
#include "mdm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
cat(const char *a, const char *b)
{
    char *s;

    if (asprintf(&s, "%s%s", a, b) < 0) {
        return NULL;
    }
    return s;
}

int
mdm_keys_init(mdm_keys_t *k, const char *prefix, const char *id,
              const char *dev_id)
{
    size_t dlen = dev_id ? strlen(dev_id) : strcspn(id, ":");

    memset(k, 0, sizeof(*k));
    if (strncmp(id, dev_id ? dev_id : id, dlen) != 0) {
        return -1;
    }
    if (asprintf(&k->devbase, "%s{%.*s}", prefix, (int) dlen, id) < 0) {
        k->devbase = NULL;
        return -1;
    }
    k->base = cat(k->devbase, id + dlen);
    if (k->base == NULL) {
        goto fail;
    }
    k->devrec = cat(k->devbase, ":rec");
    k->rec = cat(k->base, ":rec");
    k->q = cat(k->base, ":q");
    k->cmd = cat(k->base, ":cmd");
    k->nn = cat(k->base, ":nn");
    k->users = cat(k->devbase, ":users");
    k->res = cat(k->base, ":res:");
    if (k->devrec && k->rec && k->q && k->cmd && k->nn && k->users && k->res) {
        return 0;
    }
fail:
    mdm_keys_clear(k);
    return -1;
}

void
mdm_keys_clear(mdm_keys_t *k)
{
    free(k->devrec);
    free(k->rec);
    free(k->q);
    free(k->cmd);
    free(k->nn);
    free(k->users);
    free(k->base);
    free(k->devbase);
    free(k->res);
    memset(k, 0, sizeof(*k));
}

void
mdm_keys_push(mdm_planb_t *b, const mdm_keys_t *k, int copy)
{
    const char *keys[] = {k->devrec, k->rec, k->q, k->cmd, k->nn, k->users};
    size_t i;

    mdm_planb_str(b, "6");
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (copy) {
            mdm_planb_fmt(b, "%s", keys[i]);
        } else {
            mdm_planb_str(b, keys[i]);
        }
    }
}
