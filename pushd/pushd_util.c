/*
 * Helpers every file of mdm-pushd uses: the log line, the counters, the
 * monotonic clock, the retry back-off. This file calls no other file of
 * pushd/: it is the bottom layer.
 */
#include "pushd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pushd_log_level = PL_INFO;

void
pushd_log(int level, const char *id, const char *fmt, ...)
{
    static const char *names[] = {"",     "",       "",     "error",
                                  "warn", "notice", "info", "debug"};
    char buf[1024];
    va_list ap;

    if (level > pushd_log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mdm-pushd[%d]: %s %s %s\n", (int) getpid(), names[level],
            id, buf);
}

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

int64_t
pushd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
pushd_backoff_ms(long base_ms, long max_ms, int attempt)
{
    int64_t d = base_ms;
    int i;

    for (i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    /* equal jitter: at least half the delay, so retries of many pushes
     * that failed together (a 503 burst) spread out without collapsing
     * to zero */
    return d / 2 + (int64_t) (random() % (d / 2 + 1));
}
