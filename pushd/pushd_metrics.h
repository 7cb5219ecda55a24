/*
 * The metrics of mdm-pushd (pushd_metrics.c): counters kept since start,
 * the stream's queue as last read, and a small HTTP/1.1 listener in the
 * daemon's poll loop that answers GET /metrics in the Prometheus text
 * exposition format (version 0.0.4).
 */
#ifndef PUSHD_METRICS_H
#define PUSHD_METRICS_H

#include <poll.h>

#include "pushd.h"
#include "pushd_h2.h"

#define PUSHD_MTABLE_MAX   64 /* label sets per labelled counter */
#define PUSHD_METRICS_CONN 8  /* scrapes served at once */

/* one labelled counter: result, reason, HTTP status */
typedef struct {
    char result[16];
    char reason[48];
    long status;
    long long n;
} pushd_mcount_t;

typedef struct {
    pushd_mcount_t v[PUSHD_MTABLE_MAX];
    size_t n;
} pushd_mtable_t;

typedef struct {
    int fd; /* -1: free */
    int64_t deadline;
    size_t inlen;
    char in[2048];
    char *out;
    size_t outlen, outoff;
} pushd_mconn_t;

typedef struct {
    /* counters since start */
    long long requests, sent, succeeded, coalesced;
    pushd_mtable_t failed, skipped, retries;

    /* the stream and the group, from the last status interval */
    int queue_known, lag_known;
    long long lag, pending, oldest_age_ms;

    /* where the gauges are read at a scrape */
    time_t started;
    const pushd_jobs_t *jobs;
    const pushd_topics_t *topics;
    const pushd_redis_t *redis;
    const pushd_h2_t *h2;

    /* the listener */
    int lfd; /* -1: metrics_listen off */
    pushd_mconn_t conn[PUSHD_METRICS_CONN];
} pushd_metrics_t;

/** Zero the counters, no listener. */
void pushd_metrics_init(pushd_metrics_t *m);
/** A final (or retried) push: count it under result, reason, status. */
void pushd_metrics_add(pushd_mtable_t *t, const char *result,
                       const char *reason, long status);

/** Listen on addr (IP:port, [IPv6]:port). -1 with a message in err. */
int pushd_metrics_listen(pushd_metrics_t *m, const char *addr, char *err,
                         size_t errlen);
/**
 * The group's lag, pending entries and the age of the oldest pending one,
 * on the command connection (one pipelined round trip). -1: the
 * connection failed.
 */
int pushd_metrics_queue(pushd_metrics_t *m, redisContext *c, const char *stream,
                        const char *group);
/** The sockets to poll (listener, scrapes), at most max. */
size_t pushd_metrics_pollfds(pushd_metrics_t *m, struct pollfd *fds,
                             size_t max);
/** After the poll: accept, read, answer, close; time out slow clients. */
void pushd_metrics_io(pushd_metrics_t *m, const struct pollfd *fds, size_t n,
                      int64_t now);
/** The next scrape deadline, or limit. */
int64_t pushd_metrics_due(const pushd_metrics_t *m, int64_t limit);
void pushd_metrics_close(pushd_metrics_t *m);

#endif
