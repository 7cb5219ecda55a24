/*
 * The metrics of mdm-pushd (pushd_metrics.c): counters kept since start,
 * the stream's queue as last read, and the listener (common/mdm_listen.h)
 * in the daemon's poll loop that answers GET /metrics with them in the
 * Prometheus text exposition format (version 0.0.4): pushd_main.c opens
 * it and hands it the poll set through mdm_listen_*().
 */
#ifndef PUSHD_METRICS_H
#define PUSHD_METRICS_H

#include <poll.h>

#include "mdm_listen.h"
#include "pushd.h"
#include "pushd_h2.h"

#define PUSHD_MTABLE_MAX 64 /* label sets per labelled counter */

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

    /* metrics_listen (lfd -1: off); its render callback is here */
    mdm_listen_t listen;
} pushd_metrics_t;

/** Zero the counters; the listener set up, not listening. */
void pushd_metrics_init(pushd_metrics_t *m);
/** A final (or retried) push: count it under result, reason, status. */
void pushd_metrics_add(pushd_mtable_t *t, const char *result,
                       const char *reason, long status);

/**
 * The group's lag, pending entries and the age of the oldest pending one,
 * on the command connection (one pipelined round trip). -1: the
 * connection failed.
 */
int pushd_metrics_queue(pushd_metrics_t *m, redisContext *c, const char *stream,
                        const char *group);

#endif
