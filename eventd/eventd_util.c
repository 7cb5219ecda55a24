/*
 * Helpers every file of mdm-eventd uses: the log line, the monotonic
 * clock, the retry back-off, stream entry ids. This file calls no other
 * file of eventd/: it is the bottom layer.
 */
#include "eventd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int eventd_log_level = EL_INFO;

void
eventd_log(int level, const char *id, const char *fmt, ...)
{
    static const char *names[] = {"",     "",       "",     "error",
                                  "warn", "notice", "info", "debug"};
    char buf[1024];
    va_list ap;

    if (level > eventd_log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mdm-eventd[%d]: %s %s %s\n", (int) getpid(), names[level],
            id, buf);
}

int64_t
eventd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
eventd_backoff_ms(long base_ms, long max_ms, int attempt)
{
    int64_t d = base_ms;
    int i;

    for (i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    /* equal jitter: several daemons (or endpoints) that failed together
     * spread out, and none retries at once */
    return d / 2 + (int64_t) (random() % (d / 2 + 1));
}

int
eventd_sid_parse(const char *s, eventd_sid_t *out)
{
    unsigned long long ms, seq = 0;
    char *end;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    ms = strtoull(s, &end, 10);
    if (errno) {
        return -1;
    }
    if (*end == '-') {
        s = end + 1;
        if (*s < '0' || *s > '9') {
            return -1;
        }
        seq = strtoull(s, &end, 10);
        if (errno) {
            return -1;
        }
    }
    if (*end != '\0') {
        return -1;
    }
    out->ms = ms;
    out->seq = seq;
    return 0;
}

int
eventd_sid_cmp(const eventd_sid_t *a, const eventd_sid_t *b)
{
    if (a->ms != b->ms) {
        return a->ms < b->ms ? -1 : 1;
    }
    if (a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }
    return 0;
}
