/*
 * The counters of mdm-pushd (name -> delta since the last status flush).
 * This file calls no other file of pushd/: it is the bottom layer.
 */
#include "pushd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pushd_count(pushd_counters_t *c, const char *name, long long by)
{
    pushd_count_t *n;
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].name, name) == 0) {
            c->v[i].delta += by;
            return;
        }
    }
    /* reasons come from APNs: bound the set so a misbehaving endpoint
     * cannot grow it without limit */
    if (c->n >= 64) {
        name = "other";
        for (i = 0; i < c->n; i++) {
            if (strcmp(c->v[i].name, name) == 0) {
                c->v[i].delta += by;
                return;
            }
        }
    }
    if (c->n == c->cap) {
        n = realloc(c->v, (c->cap ? c->cap * 2 : 16) * sizeof(*n));
        if (n == NULL) {
            return;
        }
        c->v = n;
        c->cap = c->cap ? c->cap * 2 : 16;
    }
    snprintf(c->v[c->n].name, sizeof(c->v[c->n].name), "%s", name);
    c->v[c->n++].delta = by;
}

void
pushd_counters_free(pushd_counters_t *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}
