/* One push from request to outcome (pushd_push.c), and the state it
 * works on. */
#ifndef PUSHD_PUSH_H
#define PUSHD_PUSH_H

#include "pushd.h"
#include "pushd_h2.h"
#include "pushd_metrics.h"

/* The daemon: one, owned by the loop (pushd_main.c). */
typedef struct {
    pushd_conf_t conf;
    pushd_topics_t topics;
    pushd_redis_t redis;
    pushd_jobs_t jobs;
    pushd_h2_t *h2;            /* the APNs connections */
    pushd_counters_t counters; /* the daemon's totals */
    pushd_metrics_t metrics;   /* counters since start, GET /metrics */
    int draining;              /* SIGTERM: no new sends, no retries */
    int warned_h1;
} pushd_t;

/**
 * A push request from the stream (new, our own pending, or claimed): joins
 * the job of its enrollment or makes one. A pushd_entry_fn; data is the
 * pushd_t.
 */
void pushd_push_entry(void *data, const pushd_entry_t *e);

/** Read the records of the JOB_NEW jobs, then send or finish each. */
void pushd_push_lookup(pushd_t *d);
/** Send queued (JOB_READY) pushes as streams of their topic free up. */
void pushd_push_start_ready(pushd_t *d);
/** Write the outcomes of the JOB_FINAL jobs; free them, or push again for
 * requests that came in meanwhile. */
void pushd_push_write_finals(pushd_t *d);
/** The APNs request of job user ended with r: a pushd_h2_done_fn; data
 * is the pushd_t. */
void pushd_push_done(void *data, void *user, const pushd_h2_result_t *r);
/** JOB_WAIT jobs whose back-off is over at now go back to JOB_NEW. */
void pushd_push_retry_due(pushd_t *d, int64_t now);
/** Draining: jobs not on the wire (new, ready, waiting) become JOB_PARKED,
 * left pending in the stream for the next run. */
void pushd_push_park(pushd_t *d);

#endif
