/*
 * The metrics both web server modules expose: a fixed block of 64-bit
 * counters (no allocation at request time, no server headers) and its
 * Prometheus text rendering. The modules keep the block in shared memory
 * (nginx: a shared zone; Apache: an anonymous apr_shm inherited by the
 * children), add to it with their own atomics, and render a copy of it.
 *
 * Metric families:
 *   mdm_requests_total{type,status}   requests at MDM locations
 *   mdm_refusals_total{id}            refusals by log message id
 *   mdm_redis_seconds (histogram)     time a request waited for Redis
 *   mdm_redis_errors_total{kind}      connect, timeout, io, reply
 *   mdm_identity_cache_total{result}  hit, miss (chain-check cache)
 *   mdm_identity_direct_total         Mdm-Signatures verified directly
 */
#ifndef MDM_METRICS_H
#define MDM_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* request types: the message types and statuses of the core, then the
 * other kinds of request */
#define MDM_METRICS_TYPES    19
#define MDM_METRICS_STATUSES 16
/* refusal ids MDMggnnn with gg < 16 and nnn < 128; others count as
 * id="other" */
#define MDM_METRICS_ID_GROUPS 16
#define MDM_METRICS_ID_NUMS   128
#define MDM_METRICS_BUCKETS   14 /* the last one is +Inf */

typedef enum {
    MDM_METRICS_ERR_CONNECT = 0, /* no connection to Redis */
    MDM_METRICS_ERR_TIMEOUT,     /* no reply within the timeout */
    MDM_METRICS_ERR_IO,          /* the connection failed while waiting */
    MDM_METRICS_ERR_REPLY,       /* Redis answered with an error */
    MDM_METRICS_ERRS
} mdm_metrics_err_t;

/* the layout of the block, in counters */
#define MDM_METRICS_REQUESTS 0
#define MDM_METRICS_REFUSALS                                                   \
    (MDM_METRICS_REQUESTS + MDM_METRICS_TYPES * MDM_METRICS_STATUSES)
#define MDM_METRICS_REFUSAL_OTHER                                              \
    (MDM_METRICS_REFUSALS + MDM_METRICS_ID_GROUPS * MDM_METRICS_ID_NUMS)
#define MDM_METRICS_REDIS_BUCKET (MDM_METRICS_REFUSAL_OTHER + 1)
#define MDM_METRICS_REDIS_SUM_US                                               \
    (MDM_METRICS_REDIS_BUCKET + MDM_METRICS_BUCKETS)
#define MDM_METRICS_REDIS_COUNT  (MDM_METRICS_REDIS_SUM_US + 1)
#define MDM_METRICS_REDIS_ERRORS (MDM_METRICS_REDIS_COUNT + 1)
#define MDM_METRICS_CACHE_HIT    (MDM_METRICS_REDIS_ERRORS + MDM_METRICS_ERRS)
#define MDM_METRICS_CACHE_MISS   (MDM_METRICS_CACHE_HIT + 1)
#define MDM_METRICS_DIRECT       (MDM_METRICS_CACHE_MISS + 1)
#define MDM_METRICS_N            (MDM_METRICS_DIRECT + 1)

/* request kinds that are not device messages (type label) */
#define MDM_METRICS_TYPE_ADMIN   "admin"
#define MDM_METRICS_TYPE_SCEP    "scep"
#define MDM_METRICS_TYPE_PROFILE "profile"

/**
 * The counter of a request: type is the MessageType or Status of a device
 * message ($mdm_message; NULL when none was read), or one of the kinds
 * above; status the HTTP status sent.
 */
size_t mdm_metrics_request(const char *type, int status);

/** The counter of a refusal with log id "MDM0nnnn" (other ids: "other"). */
size_t mdm_metrics_refusal(const char *id);

/**
 * The histogram bucket of a Redis wait of usec microseconds; also add
 * usec to MDM_METRICS_REDIS_SUM_US and 1 to MDM_METRICS_REDIS_COUNT.
 */
size_t mdm_metrics_redis_bucket(uint64_t usec);

/**
 * Write the Prometheus text exposition (format 0.0.4) of a copy of the
 * block (MDM_METRICS_N counters) to buf, at most len bytes, NUL-terminated
 * when len > 0. Returns the length of the whole text (without the NUL):
 * when it is len or more, the text was cut; call again with more room.
 */
size_t mdm_metrics_render(const uint64_t *m, char *buf, size_t len);

#endif
