/*
 * Stream entry ids of mdm-eventd: parse, compare. This file calls no
 * other file of eventd/: it is the bottom layer.
 */
#include "eventd.h"

#include <errno.h>
#include <stdlib.h>

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
