/* Building Redis command plans without hiredis: argv arrays only. */
#include "mdm_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t n;
    void *np;

    if (need <= *cap) {
        return 0;
    }
    n = *cap ? *cap * 2 : 16;
    while (n < need) {
        n *= 2;
    }
    np = realloc(*p, n * size);
    if (np == NULL) {
        return -1;
    }
    *p = np;
    *cap = n;
    return 0;
}

void
mdm_planb_reset(mdm_planb_t *b)
{
    size_t i;

    for (i = 0; i < b->nowned; i++) {
        free(b->owned[i]);
    }
    b->nowned = 0;
    b->ncmds = 0;
    b->nargs = 0;
    b->failed = 0;
    memset(&b->plan, 0, sizeof(b->plan));
}

void
mdm_planb_free(mdm_planb_t *b)
{
    mdm_planb_reset(b);
    free(b->cmds);
    free(b->first);
    free(b->argv);
    free(b->argvlen);
    free(b->owned);
    memset(b, 0, sizeof(*b));
}

void
mdm_planb_cmd(mdm_planb_t *b)
{
    size_t cap = b->cap_cmds;

    if (grow((void **) &b->cmds, &b->cap_cmds, b->ncmds + 1,
             sizeof(mdm_cmd_t)) != 0 ||
        grow((void **) &b->first, &cap, b->ncmds + 1, sizeof(size_t)) != 0) {
        b->failed = 1;
        return;
    }
    b->first[b->ncmds] = b->nargs;
    b->cmds[b->ncmds].argc = 0;
    b->ncmds++;
}

void
mdm_planb_arg(mdm_planb_t *b, const void *p, size_t len)
{
    size_t cap = b->cap_args;

    if (b->ncmds == 0 ||
        grow((void **) &b->argv, &b->cap_args, b->nargs + 1, sizeof(char *)) !=
            0 ||
        grow((void **) &b->argvlen, &cap, b->nargs + 1, sizeof(size_t)) != 0) {
        b->failed = 1;
        return;
    }
    b->argv[b->nargs] = p ? (const char *) p : "";
    b->argvlen[b->nargs] = len;
    b->nargs++;
    b->cmds[b->ncmds - 1].argc++;
}

void
mdm_planb_str(mdm_planb_t *b, const char *s)
{
    mdm_planb_arg(b, s, strlen(s));
}

const char *
mdm_planb_fmt(mdm_planb_t *b, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0 || grow((void **) &b->owned, &b->cap_owned, b->nowned + 1,
                      sizeof(char *)) != 0) {
        if (n >= 0) {
            free(s);
        }
        b->failed = 1;
        return NULL;
    }
    b->owned[b->nowned++] = s;
    mdm_planb_arg(b, s, (size_t) n);
    return s;
}

const mdm_plan_t *
mdm_planb_finish(mdm_planb_t *b, size_t nreplies)
{
    size_t i;

    if (b->failed) {
        return NULL;
    }
    for (i = 0; i < b->ncmds; i++) {
        b->cmds[i].argv = b->argv + b->first[i];
        b->cmds[i].argvlen = b->argvlen + b->first[i];
    }
    b->plan.cmds = b->cmds;
    b->plan.ncmds = b->ncmds;
    b->plan.nreplies = nreplies;
    return &b->plan;
}

void
mdm_planb_to_eval(mdm_planb_t *b, size_t i, const mdm_script_t *s)
{
    size_t f = b->first[i];

    b->argv[f] = "EVAL";
    b->argvlen[f] = 4;
    b->argv[f + 1] = s->src;
    b->argvlen[f + 1] = strlen(s->src);
}

void
mdm_planb_xadd(mdm_planb_t *b, const char *key, const char *maxlen)
{
    mdm_planb_cmd(b);
    mdm_planb_str(b, "XADD");
    mdm_planb_str(b, key);
    mdm_planb_str(b, "MAXLEN");
    mdm_planb_str(b, "~");
    mdm_planb_str(b, maxlen);
    mdm_planb_str(b, "*");
}
