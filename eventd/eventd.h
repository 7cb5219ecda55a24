/*
 * mdm-eventd: the webhook sidecar. Reads the events stream (<prefix>events:
 * check-ins, command results, push outcomes, whatever else is appended)
 * through one consumer group per configured endpoint and POSTs the events
 * as signed JSON to that endpoint, at least once, in stream order.
 *
 * One thread, one loop (eventd_main.c): libcurl's multi interface carries
 * the deliveries (one in flight per endpoint); Redis is used through two
 * blocking hiredis connections: "cmd" for short calls (group reads without
 * BLOCK, XACK, status) and "wake", whose XREAD ... BLOCK is sent without
 * waiting and whose socket joins curl's poll, so a new event wakes the
 * endpoints that are caught up.
 *
 * The files form layers: a file calls only files of lower layers, never
 * up (t/check-call-cycles.py -v eventd prints them):
 *
 *   4  eventd_main.c      start and stop, signals, the poll loop, timers
 *   3  eventd_endpoint.c  one endpoint: read a batch, deliver, ack, retry
 *   2  eventd_http.c      one delivery on curl multi; its outcome
 *   1  eventd_redis.c     the stream, the groups, acks, status hashes
 *      eventd_payload.c   the JSON body, the signature
 *   0  eventd_metrics.c   failures by reason; the text of GET /metrics
 *                         (eventd_metrics.h)
 *      eventd_conf.c      the configuration file, the secret files
 *      eventd_util.c      stream ids
 *
 * Below them all, shared with mdm-pushd: common/mdm_listen.c, the
 * metrics_listen listener (IP:port, accept, one request, the answer);
 * common/mdm_daemon.c, options, logging, clock, back-off, signals;
 * common/mdm_redisconn.c, the Redis connections, their back-off, the
 * blocking read sent without waiting.
 */
#ifndef EVENTD_H
#define EVENTD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <hiredis.h>

#include "mdm_daemon.h"
#include "mdm_redisconn.h"

#define EVENTD_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* logging: mdm_daemon_log() (common/mdm_daemon.c), one line on stderr: */
/* "mdm-eventd[pid]: LEVEL MDM12nnn text"; clock and retry back-off:    */
/* mdm_now_ms(), mdm_backoff_ms(); stream ids (eventd_util.c)           */

enum { EL_ERR = 3, EL_WARN = 4, EL_NOTICE = 5, EL_INFO = 6, EL_DEBUG = 7 };

/** A stream entry id "ms-seq". */
typedef struct {
    uint64_t ms, seq;
} eventd_sid_t;

/** Parse "ms-seq" (or "ms"). -1 if malformed. */
int eventd_sid_parse(const char *s, eventd_sid_t *out);
/** <0, 0, >0 as a is before, equal to, after b. */
int eventd_sid_cmp(const eventd_sid_t *a, const eventd_sid_t *b);

/* ------------------------------------------------------------------ */
/* configuration (eventd_conf.c)                                      */

#define EVENTD_NAME_MAX 64

typedef struct {
    char *name;        /* [A-Za-z0-9_.-], unique: the group's suffix */
    char *url;         /* http:// or https:// */
    char *secret_file; /* 0600, read at start and on SIGHUP */
    char *ca_file;     /* NULL: the system store */
    char **kinds;      /* NULL: every kind; else only these */
    size_t nkinds;
    int insecure; /* tls_verify off */
    long batch;   /* 0: the global one */
    long timeout_ms;

    unsigned char *secret; /* loaded */
    size_t secret_len;
} eventd_ep_conf_t;

typedef struct {
    mdm_redis_conf_t redis; /* redis, redis_sentinel, redis_user... */
    char *prefix;           /* mdm: */
    char *group_prefix;     /* group of an endpoint: this + its name */
    char *consumer;
    int start_all; /* a new group starts at 0 (everything still in the
                      stream), else at $ (what comes next) */
    long batch;    /* events per POST */
    long timeout_ms;
    long retry_base_ms, retry_max_ms;
    long max_attempts; /* 0: retry forever */
    long status_interval_ms;
    long drain_ms;
    char *metrics_listen; /* IP:port of GET /metrics; NULL: off */
    int verbose;
    eventd_ep_conf_t *eps;
    size_t neps;
} eventd_conf_t;

/**
 * Parse the configuration file and read the secret files. -1 with a
 * message (file:line: option: why) in err.
 */
int eventd_conf_load(const char *path, eventd_conf_t *c, char *err,
                     size_t errlen);
void eventd_conf_free(eventd_conf_t *c);

/**
 * Read a secret file: not readable by group or others, not empty; trailing
 * white space dropped. The result is malloc'd. -1 with a message in err.
 */
int eventd_secret_read(const char *path, unsigned char **out, size_t *len,
                       char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* payload and signature (eventd_payload.c)                           */

/**
 * Append one stream entry (id and its field/value reply array) to the
 * JSON array events. -1 on failure (out of memory, malformed).
 */
int eventd_payload_add(void *events, const char *sid, const redisReply *fields);
/** A new, empty events array (a json_t *). */
void *eventd_payload_new(void);
/** The body of a delivery (malloc'd) from the array; frees the array. */
char *eventd_payload_finish(void *events, const char *endpoint);
void eventd_payload_drop(void *events);

/**
 * "sha256=" + lowercase hex HMAC-SHA256(secret, ts "." body) into out
 * (at least 72 bytes). -1 on failure.
 */
int eventd_sign(const unsigned char *secret, size_t secret_len, const char *ts,
                const char *body, size_t body_len, char *out, size_t outlen);

/* ------------------------------------------------------------------ */
/* endpoints                                                          */

typedef enum {
    EP_READ = 0, /* needs a batch: read the group */
    EP_IDLE,     /* caught up: waits for a new event (the wake read) */
    EP_SEND,     /* batch ready: start the delivery */
    EP_INFLIGHT,
    EP_BACKOFF, /* the delivery failed: retry at due_ms */
    EP_ACK,     /* delivered; the XACK failed: acknowledge again */
    EP_PARKED   /* draining: the batch stays pending for the next run */
} eventd_ep_state_t;

#define EVENTD_SID_LEN 48

/* failed deliveries of an endpoint by reason and HTTP status */
#define EVENTD_MTABLE_MAX 32

typedef struct {
    char reason[24];
    long status;
    long long n;
} eventd_mcount_t;

typedef struct {
    eventd_mcount_t v[EVENTD_MTABLE_MAX];
    size_t n;
} eventd_mtable_t;

typedef struct {
    const eventd_ep_conf_t *conf;
    char *group;
    char *status_key;
    eventd_ep_state_t state;
    int recovered; /* own pending entries (an earlier run's) done */
    int had_group; /* the group existed (or was created) in this run */
    int trimmed;   /* warned that events were trimmed before delivery */

    /* the batch */
    char (*ids)[EVENTD_SID_LEN]; /* entries read (acknowledged together) */
    size_t nids, cap;
    size_t nevents; /* of which delivered (kinds filter) */
    char *body;
    size_t body_len;
    int attempts;
    int64_t due_ms;

    /* the transfer */
    CURL *easy;
    struct curl_slist *headers;
    long http;
    char error[CURL_ERROR_SIZE];
    char resp[256]; /* the start of an error answer, for the log */
    size_t resp_len;
    long retry_after; /* seconds, from the answer */

    /* counters and gauges for the status hash and the metrics */
    long long delivered, posts, failures, dropped;
    long long batches;     /* deliveries answered 2xx */
    eventd_mtable_t fails; /* failures by reason and status */
    time_t last_ok, last_fail;
    char last_error[160];
    int lag_known, pending_known; /* the group, at the last status */
    long long group_lag, group_pending;
} eventd_ep_t;

/* ------------------------------------------------------------------ */
/* Redis side (eventd_redis.c)                                        */

typedef struct {
    const eventd_conf_t *conf;
    redisContext *cmd;  /* short calls */
    redisContext *wake; /* the outstanding XREAD ... BLOCK */
    int waking;         /* a wake read is outstanding */
    eventd_sid_t seen;  /* the newest entry id known */
    char *stream, *status_index;
    int64_t retry_at_ms; /* reconnect back-off */
    int64_t backoff_ms;
    mdm_redisconn_t conn; /* the fields above, for mdm_redisconn.c */
    /* Cluster (redis_cluster): cmd and wake go to the stream's master; the
     * status hashes, in other slots, through this link */
    mdm_redislink_t *link;
} eventd_redis_t;

typedef void (*eventd_entry_fn)(void *data, const char *sid,
                                const redisReply *fields);

int eventd_redis_init(eventd_redis_t *r, const eventd_conf_t *conf);
void eventd_redis_free(eventd_redis_t *r);
/** Connect when due, create the groups, learn the stream's end. 0: ok. */
int eventd_redis_ensure(eventd_redis_t *r, eventd_ep_t *eps, size_t neps,
                        int64_t now_ms);
/** A call failed: drop both connections, back off. */
void eventd_redis_fail(eventd_redis_t *r, const char *what);

/**
 * Read up to count entries of ep's group: its own pending entries first
 * (id 0) until none are left (ep->recovered), then new ones (>). Calls fn
 * per entry (fields NULL when the entry was trimmed meanwhile). Returns the
 * number of entries, -1 on Redis failure.
 */
long eventd_redis_read(eventd_redis_t *r, eventd_ep_t *ep, long count,
                       eventd_entry_fn fn, void *data);
/** XACK ids in ep's group. -1 on failure. */
int eventd_redis_ack(eventd_redis_t *r, const eventd_ep_t *ep,
                     char (*ids)[EVENTD_SID_LEN], size_t n);

/** Send XREAD BLOCK after the newest entry id known, without waiting. */
int eventd_redis_wake_start(eventd_redis_t *r);
/** The wake socket is readable. 1: newer entries exist; 0: not yet. */
int eventd_redis_wake_ready(eventd_redis_t *r);
/** fd of the outstanding wake read, -1 if none. */
int eventd_redis_wake_fd(const eventd_redis_t *r);
/** An entry id was seen: 1 if it is newer than every one seen before. */
int eventd_redis_saw(eventd_redis_t *r, const char *sid);

/**
 * The status hashes (one per endpoint), the groups' lag, and a warning
 * when events were trimmed from the stream before an endpoint got them.
 */
int eventd_redis_status(eventd_redis_t *r, eventd_ep_t *eps, size_t neps,
                        const char *const *fields, size_t nfields);

/* ------------------------------------------------------------------ */
/* one delivery (eventd_http.c)                                       */

/** Set up ep->easy for the batch in ep->body and add it to multi. */
int eventd_http_start(CURLM *multi, eventd_ep_t *ep, const char *consumer);
/**
 * The transfer ended: fill ep->http, ep->retry_after, and into why a
 * message when it was not a 2xx. Returns 1 for a 2xx.
 */
int eventd_http_done(CURLM *multi, eventd_ep_t *ep, CURLcode rc, char *why,
                     size_t whylen);
void eventd_http_cleanup(CURLM *multi, eventd_ep_t *ep);

/* ------------------------------------------------------------------ */
/* failures by reason (eventd_metrics.c)                              */

/** The reason label of a failed transfer: http (an answer), connect,
 * timeout, tls, connection-lost or other. */
const char *eventd_metrics_reason(CURLcode rc);
/** Count a failed delivery under reason and HTTP status (0: none). */
void eventd_metrics_failed(eventd_mtable_t *t, const char *reason, long status);

/* ------------------------------------------------------------------ */
/* the daemon                                                         */

typedef struct {
    eventd_conf_t conf;
    eventd_redis_t redis;
    CURLM *multi;
    eventd_ep_t *eps;
    size_t neps;
    int draining;
} eventd_t;

/* eventd_endpoint.c */
int eventd_ep_init(eventd_t *d);
void eventd_ep_free(eventd_t *d);
/** Advance ep as far as it can go now (read, ack, start a delivery). */
void eventd_ep_step(eventd_t *d, eventd_ep_t *ep, int64_t now);
/** A transfer of multi ended. */
void eventd_ep_done(eventd_t *d, CURL *easy, CURLcode rc);
/** New events exist: endpoints waiting for them read again. */
void eventd_ep_wake_all(eventd_t *d);
/** Draining: batches not on the wire stay pending for the next run. */
void eventd_ep_park(eventd_t *d);
/** SIGHUP: read the secret files again (an unreadable one keeps the old). */
void eventd_ep_reload_secrets(eventd_t *d);
/** Endpoints caught up, waiting for a new event. */
int eventd_ep_idle(const eventd_t *d);
/** Endpoints with a delivery on the wire or an acknowledgement to make. */
int eventd_ep_busy(const eventd_t *d);
/** Earliest time an endpoint needs the loop (now, a back-off), or limit. */
int64_t eventd_ep_next_due(const eventd_t *d, int64_t now, int64_t limit);

#endif
