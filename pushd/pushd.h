/*
 * mdm-pushd: the APNs sidecar. Reads push requests from the Redis push
 * stream through a consumer group and sends MDM pushes over HTTP/2.
 *
 * One thread, one poll loop (pushd_main.c): the HTTP/2 client (pushd_h2.c,
 * nghttp2 over non-blocking OpenSSL) carries the APNs requests; Redis is
 * used through two blocking hiredis connections whose calls are short and
 * pipelined (pushd_redis.c), except the stream read, which is sent without
 * waiting and whose socket joins the poll.
 *
 * The files form layers: a file calls only files of lower layers, never
 * up (t/check-call-cycles.py -v pushd prints them):
 *
 *   4  pushd_main.c    start and stop, signals, the poll loop, its timers
 *   3  pushd_push.c    one push from request to outcome (pushd_push.h)
 *   2  pushd_topics.c  the certificates in use, one per topic; reload;
 *                      the topic guard in Redis
 *      pushd_metrics.c counters since start, their text for the GET
 *                      /metrics listener (pushd_metrics.h)
 *      pushd_apns.c    one APNs request, what its answer means
 *   1  pushd_redis.c   stream, records, outcomes, status hashes, guard
 *      pushd_h2.c      HTTP/2 client: TLS connections, nghttp2 sessions
 *                      (pushd_h2.h)
 *   0  pushd_cert.c    load one certificate; its expiry
 *      pushd_conf.c    the configuration file
 *      pushd_util.c    counters
 *      pushd_jobs.c    the jobs in memory: list, hash, counts per state
 *      pushd_tls.c     TLS of the APNs connections: endpoint, contexts per
 *                      certificate load, connect, handshake (pushd_tls.h)
 *
 * Below them all, shared with mdm-eventd: common/mdm_listen.c, the
 * metrics_listen listener (IP:port, accept, one request, the answer);
 * common/mdm_daemon.c, options, logging, clock, back-off, signals;
 * common/mdm_redisconn.c, the Redis connections, their back-off, the
 * blocking read sent without waiting.
 */
#ifndef PUSHD_H
#define PUSHD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis.h>

#include "mdm_daemon.h"
#include "mdm_redisconn.h"

#define PUSHD_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* logging: mdm_daemon_log() (common/mdm_daemon.c), one line on stderr: */
/* "mdm-pushd[pid]: LEVEL MDM091nn text"; clock and retry back-off:     */
/* mdm_now_ms(), mdm_backoff_ms()                                       */

enum { PL_ERR = 3, PL_WARN = 4, PL_NOTICE = 5, PL_INFO = 6, PL_DEBUG = 7 };

/* ------------------------------------------------------------------ */
/* counters: name -> delta since the last status flush (pushd_util.c) */

typedef struct {
    char name[64];
    long long delta;
} pushd_count_t;

typedef struct {
    pushd_count_t *v;
    size_t n, cap;
} pushd_counters_t;

void pushd_count(pushd_counters_t *c, const char *name, long long by);
void pushd_counters_free(pushd_counters_t *c);

/* ------------------------------------------------------------------ */
/* push certificates (pushd_cert.c)                                   */

typedef struct pushd_cert_s {
    /* from the configuration */
    char *cert_file;
    char *key_file;  /* NULL: the key is in cert_file */
    char *pass_file; /* PKCS#12 (or encrypted PEM key) passphrase */

    /* from the loaded certificate */
    char *topic;
    char *subject;
    time_t not_before, not_after;
    char *pem_cert, *pem_key; /* unencrypted PEM, read by pushd_h2.c */
    size_t pem_cert_len, pem_key_len;
    unsigned gen;  /* unique per load: connections made with it keep it */
    char spki[65]; /* SHA-256 of the public key (hex): which certificate */

    /* the topic guard in Redis (pushd_topics_guard()): 0 not checked yet,
     * 1 this file is recorded as serving this topic, -1 refused: the file
     * is recorded as serving guard_topic, and refused is set */
    int guard;
    char *guard_topic;

    int refused; /* APNs answered 403: not used until a reload */
    char refused_why[96];
    int warned_days; /* smallest expiry threshold already logged */

    unsigned inflight;                           /* transfers on the wire */
    struct pushd_job_s *ready_head, *ready_tail; /* JOB_READY, FIFO */
    unsigned waiting; /* pushes waiting for a retry */
    pushd_counters_t counters;
    char *status_key;
} pushd_cert_t;

/**
 * Load cert_file (PEM certificate + key, key_file, or PKCS#12) into a new
 * pushd_cert_t-shaped result: fills topic, subject, validity and the PEM
 * blobs of out. Returns -1 and a message in err on failure; out is then
 * unchanged. The topic must start with com.apple.mgmt.
 */
int pushd_cert_load(const char *cert_file, const char *key_file,
                    const char *pass_file, pushd_cert_t *out, char *err,
                    size_t errlen);
/** Free what pushd_cert_load() filled in (not the file names). */
void pushd_cert_clear_loaded(pushd_cert_t *c);

/** Whole days until expiry (negative once expired). */
long pushd_cert_days_left(const pushd_cert_t *c, time_t now);

/** Log the 30/14/7/1-day warnings once each, and expiry. */
void pushd_cert_check_expiry(pushd_cert_t *c, time_t now);

/** "ok", "expiring", "expired", "refused", "not-yet-valid" */
const char *pushd_cert_state(const pushd_cert_t *c, time_t now);

/* ------------------------------------------------------------------ */
/* configuration (pushd_conf.c)                                       */

typedef struct {
    char *cert_file, *key_file, *pass_file;
} pushd_cert_conf_t;

typedef struct {
    mdm_redis_conf_t redis; /* redis, redis_sentinel, redis_user... */
    char *prefix;           /* mdm: */
    char *group;            /* consumer group */
    char *consumer;   /* stable name: a restarted daemon takes its pending */
    char *url;        /* https://api.push.apple.com */
    char *ca_file;    /* NULL: system store */
    int priority;     /* 10 or 5 */
    long expiration;  /* seconds from now; 0: try once */
    long connections; /* per topic */
    long streams;     /* per connection */
    long max_jobs;    /* pushes held in memory */
    long batch;       /* entries per stream read */
    long retry_base_ms, retry_max_ms, retry_attempts;
    long timeout_ms;    /* one APNs request */
    long claim_idle_ms; /* pending entries of another consumer idle this long
                           are taken over */
    long events_maxlen;
    long status_interval_ms;
    long drain_ms;        /* SIGTERM: how long in-flight pushes may finish */
    char *metrics_listen; /* IP:port of GET /metrics; NULL: off */
    int verbose;
    pushd_cert_conf_t *certs;
    size_t ncerts;
} pushd_conf_t;

/** Parse the configuration file. -1 with a message (file:line) in err. */
int pushd_conf_load(const char *path, pushd_conf_t *c, char *err,
                    size_t errlen);
void pushd_conf_free(pushd_conf_t *c);

/* ------------------------------------------------------------------ */
/* pushes                                                             */

typedef enum {
    JOB_NEW = 0, /* entries attached; record not read yet */
    JOB_READY,   /* record read; waiting for a free stream of its topic */
    JOB_INFLIGHT,
    JOB_WAIT,  /* back-off before a retry */
    JOB_FINAL, /* outcome known; being written to Redis */
    JOB_PARKED /* draining: left pending in the stream for a restart */
} pushd_job_state_t;

typedef struct {
    char (*v)[48];
    size_t n, cap;
} pushd_ids_t;

typedef struct pushd_job_s {
    struct pushd_job_s *next, *prev;   /* all jobs */
    struct pushd_job_s *hnext;         /* hash chain by enrollment id */
    struct pushd_job_s *rnext;         /* ready queue of its certificate */
    struct pushd_job_s *fnext, *fprev; /* JOB_FINAL jobs */
    char *id;                          /* enrollment id */
    char *rec_key;
    pushd_job_state_t state;
    pushd_ids_t cur;  /* stream entries this push answers */
    pushd_ids_t more; /* arrived while in flight: need a push of their own */
    int attempts;
    int64_t due_ms; /* JOB_WAIT: retry time (monotonic) */
    int64_t sent_ms;

    /* from the record */
    char *token, *magic, *topic;
    pushd_cert_t *cert;

    /* answer */
    char apns_id[64];

    /* outcome */
    char result[32]; /* ok, dead, retry, failed, skipped-..., gave-up */
    char reason[64];
    long http;
    int mark_dead;
} pushd_job_t;

/* ------------------------------------------------------------------ */
/* the jobs in memory (pushd_jobs.c)                                  */

#define PUSHD_JOBS_HASH 16384

typedef struct {
    pushd_job_t *head;  /* all jobs, newest first */
    pushd_job_t *fhead; /* the JOB_FINAL ones */
    pushd_job_t *hash[PUSHD_JOBS_HASH];
    size_t n;                                         /* jobs */
    size_t ninflight, nwaiting, nnew, nfinal, nready; /* jobs per state */
} pushd_jobs_t;

/** The job of an enrollment id, NULL if none. */
pushd_job_t *pushd_jobs_find(const pushd_jobs_t *t, const char *id);
/** A new JOB_NEW job answering stream entry entry; NULL: out of memory. */
pushd_job_t *pushd_jobs_add(pushd_jobs_t *t, const char *id, const char *entry);
/** Change the state of j, keeping the counts (and its cert's waiting). */
void pushd_jobs_set(pushd_jobs_t *t, pushd_job_t *j, pushd_job_state_t s);
/** Unlink and free j (not on the wire any more). */
void pushd_jobs_remove(pushd_jobs_t *t, pushd_job_t *j);

/** Add a stream entry id unless present. -1: out of memory. */
int pushd_ids_add(pushd_ids_t *l, const char *entry);
int pushd_ids_has(const pushd_ids_t *l, const char *entry);

/* ------------------------------------------------------------------ */
/* the certificates in use, one per topic (pushd_topics.c)            */

typedef struct {
    pushd_cert_t **v;
    size_t n;
    const char *status_prefix; /* status hash of a topic: this ":" topic */
    int guarded; /* every certificate checked against the topic guard */
} pushd_topics_t;

/**
 * Load the certificates of conf; two of one topic are refused. -1 with a
 * message in err (what was loaded stays in t: pushd_topics_free()).
 */
int pushd_topics_load(pushd_topics_t *t, const pushd_conf_t *conf,
                      const char *status_prefix, char *err, size_t errlen);
/** SIGHUP: take the cert lines of conf_file again (logs what it does). */
void pushd_topics_reload(pushd_topics_t *t, const char *conf_file);
/** The certificate of a topic; with topic NULL the only one, if one. */
pushd_cert_t *pushd_topics_find(const pushd_topics_t *t, const char *topic);
void pushd_topics_free(pushd_topics_t *t);

/* ------------------------------------------------------------------ */
/* Redis side (pushd_redis.c)                                         */

typedef struct {
    const pushd_conf_t *conf;
    redisContext *cmd;    /* short, pipelined calls */
    redisContext *reader; /* the outstanding XREADGROUP ... BLOCK */
    int reading;          /* a read is outstanding on reader */
    int64_t retry_at_ms;  /* reconnect back-off */
    int64_t backoff_ms;
    mdm_redisconn_t conn; /* the fields above, for mdm_redisconn.c */
    char *stream, *events, *status_index;
    char *daemon_key, *topics_key;
    char *guard_key; /* <prefix>pushd-topics: cert file -> topic */
    char outcome_sha[41];
    int group_ok;
    /* Cluster (redis_cluster): reader and cmd go to the stream's master;
     * every other call is collected here and sent through the link, each
     * command to its slot's master */
    mdm_redislink_t *link;
    mdm_cmd_t *pend;
    size_t npend, cap_pend;
} pushd_redis_t;

/** An entry read from the stream. */
typedef struct {
    char entry[48];
    char *id; /* enrollment id, NULL when the entry has none */
} pushd_entry_t;

typedef void (*pushd_entry_fn)(void *data, const pushd_entry_t *e);

int pushd_redis_init(pushd_redis_t *r, const pushd_conf_t *conf);
void pushd_redis_free(pushd_redis_t *r);
/** Connect both connections when due; create the group. 0 when usable. */
int pushd_redis_ensure(pushd_redis_t *r, int64_t now_ms);
/** The command connection failed: drop both, back off. */
void pushd_redis_fail(pushd_redis_t *r, const char *what);

/**
 * The topic guard: the topic recorded for each of files[0..n) (HMGET of
 * guard_key) into topics[i] (malloc'd; NULL when none). -1 on Redis
 * failure (nothing to free then).
 */
int pushd_redis_guard_read(pushd_redis_t *r, const char *const *files, size_t n,
                           char **topics);
/**
 * Record certs[0..n) in the guard: cert file -> topic in guard_key, and
 * <prefix>pushd-topic:<topic> (cert_file, spki_sha256, subject, not_after,
 * consumer, updated). -1 on Redis failure.
 */
int pushd_redis_guard_write(pushd_redis_t *r, pushd_cert_t *const *certs,
                            size_t n);
/**
 * Check the certificates not checked yet against the topic guard in
 * Redis (pushd_topics.c): a file recorded as serving another topic is
 * refused (MDM09114), one recorded for its own topic or not recorded is
 * accepted and recorded (MDM09113 the first time). -1 on Redis failure
 * (checked again after the reconnect).
 */
int pushd_topics_guard(pushd_topics_t *t, pushd_redis_t *r);

/** Own pending entries (after a restart), sync; -1 on Redis failure. */
int pushd_redis_recover(pushd_redis_t *r, pushd_entry_fn fn, void *data);
/** Take over pending entries idle longer than claim_idle_ms. */
int pushd_redis_autoclaim(pushd_redis_t *r, pushd_entry_fn fn, void *data);
/** Reset the idle time of entries we hold (so no one claims them). */
int pushd_redis_touch(pushd_redis_t *r, char (*const *ids)[48], const size_t *n,
                      size_t nlists);

/** Send XREADGROUP ... BLOCK without waiting. */
int pushd_redis_read_start(pushd_redis_t *r, long count);
/** The reader socket is readable: deliver entries. -1: reader failed. */
int pushd_redis_read_ready(pushd_redis_t *r, pushd_entry_fn fn, void *data);
/** fd of the reader connection, -1 if none. */
int pushd_redis_reader_fd(const pushd_redis_t *r);

/** Read the records of jobs (token, magic, topic, push_dead, enabled). */
int pushd_redis_lookup(pushd_redis_t *r, pushd_job_t **jobs, size_t n);
/** Write the outcomes of FINAL jobs: record, event, XACK (pipelined). */
int pushd_redis_outcomes(pushd_redis_t *r, pushd_job_t **jobs, size_t n);

/** The status hashes: daemon totals and one per topic. */
int pushd_redis_status(pushd_redis_t *r, pushd_cert_t **certs, size_t ncerts,
                       pushd_counters_t *daemon, const char *const *fields,
                       size_t nfields);

/** Record key of an enrollment id (KEYS.md), malloc'd; NULL if invalid. */
char *pushd_rec_key(const char *prefix, const char *id);

#endif
