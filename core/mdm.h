/*
 * libmdm: the Apple MDM protocol core shared by ngx_mdm and mod_mdm.
 *
 * The core is sans-IO: it never touches a socket. A transaction (a device
 * request or an admin operation) turns its input into a *plan* of Redis
 * commands, the glue runs the plan (nginx: hiredis async on the event loop;
 * Apache and tools: blocking hiredis, tools/mdm_sync.h) and feeds the
 * replies back; when the
 * transaction is done it holds the HTTP response.
 *
 *     r = mdm_req_new(conf, MDM_EP_ANY);
 *     mdm_req_set_body(r, body, len); mdm_req_set_signature(r, hdr, hlen);
 *     for (step = mdm_req_start(r); step == MDM_STEP_REDIS;
 *          step = mdm_req_feed(r, replies, n)) { run mdm_req_plan(r) }
 *     resp = mdm_req_response(r);
 *
 * Ownership: strings passed to mdm_req_set_*() are borrowed and must stay
 * valid until mdm_req_free(); everything returned by mdm_req_*() is owned
 * by the transaction.
 */
#ifndef MDM_H
#define MDM_H

#include <stdarg.h>
#include <stddef.h>

#define MDM_VERSION "0.1.0"

struct redisReply;

/* ------------------------------------------------------------------ */
/* Logging                                                            */

typedef enum {
    MDM_LOG_ERR = 3,
    MDM_LOG_WARN = 4,
    MDM_LOG_NOTICE = 5,
    MDM_LOG_INFO = 6,
    MDM_LOG_DEBUG = 7
} mdm_log_level_t;

/**
 * The glue's log sink. id is a stable message id ("MDM01001"), msg the
 * formatted text without the id and without a trailing newline.
 */
typedef void (*mdm_log_fn)(void *data, mdm_log_level_t level, const char *id,
                           const char *msg);

/* ------------------------------------------------------------------ */
/* Configuration                                                      */

typedef struct mdm_conf_s mdm_conf_t;

/** A new configuration with defaults. Free with mdm_conf_free(). */
mdm_conf_t *mdm_conf_new(void);
void mdm_conf_free(mdm_conf_t *c);

/**
 * Set one option by name; the glue maps its directives onto these names.
 * On error returns -1 and writes a message naming the problem to err.
 *
 *   prefix          key prefix (default "mdm:")
 *   identity        comma list of accepted sources: signature, tls, header
 *                   (default "signature,tls"); "none" disables identity
 *   ca_file         PEM file of identity CA roots and intermediates
 *   topic           add an accepted push topic (repeatable; none = any)
 *   binding         strict | retro | off (default strict)
 *   results_ttl     seconds a command result is kept (default 604800)
 *   events_maxlen   approximate cap of the events stream (default 100000)
 *   push_maxlen     approximate cap of the push stream (default 100000)
 *   cache_size      identity cache entries (default 10000)
 *   cache_ttl       identity cache seconds (default 3600)
 *   cert_cache_size decoded certificates kept per process (default 1000)
 *   user_auth       gone (410, default) | zero-length
 *   get_token       "<TokenServiceType> <file>": answer GetToken from file
 *   rts             off (default) | on: ReturnToService Enabled
 *   store_der       off (default) | on: keep the bound certificate's DER
 *                   beside the record (~1 KB per enrollment), which
 *                   per-device encrypted profiles need
 *   rts_wifi_profile / rts_mdm_profile   files sent with ReturnToService
 *   admin_key       API key the admin API requires (X-API-Key)
 *   scep.NAME       an option of the SCEP CA (mdm_scep.h: ca_cert, ca_key,
 *                   challenge, ...), for SCEP, profile and admin locations
 *   profile.NAME    an option of the enrollment profile (mdm_profile.h:
 *                   server_url, scep_url, sign_cert, ...)
 */
int mdm_conf_set(mdm_conf_t *c, const char *name, const char *value, char *err,
                 size_t errlen);

/**
 * Load files named by the options (CA file, token files, profiles) and
 * make the configuration usable. Call once, after the last mdm_conf_set().
 * Returns -1 with a message in err on failure.
 */
int mdm_conf_finish(mdm_conf_t *c, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Plans                                                              */

typedef struct {
    int argc;
    const char **argv;
    const size_t *argvlen;
} mdm_cmd_t;

/**
 * Commands to send in one pipelined write. The core needs the replies of
 * cmds[0 .. nreplies); the rest are fire-and-forget appends (their replies
 * may be discarded, e.g. sent with a NULL hiredis callback).
 */
typedef struct {
    const mdm_cmd_t *cmds;
    size_t ncmds;
    size_t nreplies;
} mdm_plan_t;

/* ------------------------------------------------------------------ */
/* Transactions                                                       */

typedef struct mdm_req_s mdm_req_t;

typedef enum {
    MDM_EP_CHECKIN = 1, /* CheckInURL */
    MDM_EP_COMMAND = 2, /* ServerURL */
    MDM_EP_ANY = 3      /* one URL for both: told apart by Content-Type */
} mdm_endpoint_t;

typedef enum { MDM_STEP_DONE = 0, MDM_STEP_REDIS = 1 } mdm_step_t;

typedef struct {
    int status;               /* HTTP status */
    const char *content_type; /* NULL: none */
    const unsigned char *body;
    size_t body_len;
    unsigned retry_after; /* seconds; 0: no Retry-After header */
    int no_store;         /* 1: send Cache-Control: no-store (a profile
                             carries a one-time challenge) */
    /* more header fields to send (ACME: Replay-Nonce, Location, Link):
       hdr_names[i]: hdr_values[i], owned by the transaction */
    const char *const *hdr_names;
    const char *const *hdr_values;
    size_t nhdrs;
} mdm_response_t;

/** A device request to a check-in and/or command endpoint. */
mdm_req_t *mdm_req_new(const mdm_conf_t *c, mdm_endpoint_t ep);
void mdm_req_free(mdm_req_t *r);

void mdm_req_set_logger(mdm_req_t *r, mdm_log_fn fn, void *data);
void mdm_req_set_content_type(mdm_req_t *r, const char *v, size_t len);
/** Raw request body, read once by the glue, verified over these bytes. */
void mdm_req_set_body(mdm_req_t *r, const unsigned char *body, size_t len);
/** TLS client certificate, PEM or DER (no chain check done by the glue). */
void mdm_req_set_tls_cert(mdm_req_t *r, const unsigned char *v, size_t len);
/** The Mdm-Signature header value. */
void mdm_req_set_signature(mdm_req_t *r, const char *v, size_t len);
/** The trusted proxy's certificate header (RFC 9440 or escaped PEM). */
void mdm_req_set_cert_header(mdm_req_t *r, const char *v, size_t len);

/**
 * Only check the identity (verifying-proxy mode): no plist parsing beyond
 * the enrollment id, no Redis. mdm_req_start() then always returns DONE,
 * with status 200 when the identity is good.
 */
void mdm_req_set_verify_only(mdm_req_t *r);

/** Validate and plan. DONE: the response is ready (a refusal, or no I/O). */
mdm_step_t mdm_req_start(mdm_req_t *r);

/** The current plan; valid until the next mdm_req_feed()/free. */
const mdm_plan_t *mdm_req_plan(const mdm_req_t *r);

/**
 * Feed the replies of plan->cmds[0 .. plan->nreplies). replies may be NULL,
 * or contain NULLs: that means the storage failed (I/O error, timeout) and
 * the response becomes 503 with Retry-After. The replies are only read
 * during the call.
 */
mdm_step_t mdm_req_feed(mdm_req_t *r, struct redisReply *const *replies,
                        size_t n);

/** The response; valid once a step returned DONE. */
const mdm_response_t *mdm_req_response(const mdm_req_t *r);

/** Values for $mdm_* variables / request notes. */
typedef enum {
    MDM_VAR_ENROLLMENT_ID = 0,
    MDM_VAR_ENROLLMENT_TYPE,
    MDM_VAR_UDID,
    MDM_VAR_MESSAGE, /* MessageType or report Status */
    MDM_VAR_COMMAND_UUID,
    MDM_VAR_CERT_SHA256,
    MDM_VAR_CERT_SUBJECT,
    MDM_VAR_IDENTITY,  /* verdict: ok, none, bad-signature, untrusted... */
    MDM_VAR_ERROR_ID,  /* the MDM0nnnn id of the refusal, if any */
    MDM_VAR_NEXT_UUID, /* CommandUUID of the command sent back */
    MDM_VAR_COUNT
} mdm_var_t;

/** NULL when unset. Owned by the transaction. */
const char *mdm_req_var(const mdm_req_t *r, mdm_var_t v);

/** The verified certificate as RFC 9440 ":base64:" (malloc'd), or NULL. */
char *mdm_req_cert_rfc9440(const mdm_req_t *r);

/* ------------------------------------------------------------------ */
/* Admin operations (same plan/feed/response loop, JSON responses)    */

typedef enum {
    MDM_ADMIN_ENQUEUE = 1, /* body: command plist or JSON; ids: targets */
    MDM_ADMIN_PUSH,        /* ids: enrollments to push */
    MDM_ADMIN_ENROLLMENT,  /* ids[0]: show its record */
    MDM_ADMIN_QUEUE,       /* ids[0]: list its queue */
    MDM_ADMIN_DELETE,      /* ids[0], uuid: remove one queued command */
    MDM_ADMIN_CLEAR,       /* ids[0]: clear its queue */
    MDM_ADMIN_RESULT,      /* ids[0], uuid: read a result */
    MDM_ADMIN_REVOKE       /* ids[0]: revoke its identity certificate; uuid:
                              that certificate's SHA-256 (hex), NULL for the
                              one bound now */
} mdm_admin_op_t;

typedef struct {
    mdm_admin_op_t op;
    const char *const *ids;
    size_t nids;
    const char *uuid;
    const unsigned char *body; /* borrowed */
    size_t body_len;
    int nopush; /* enqueue: do not append push requests */
} mdm_admin_args_t;

/** An admin transaction. args is copied; body stays borrowed. */
mdm_req_t *mdm_req_new_admin(const mdm_conf_t *c, const mdm_admin_args_t *a);

/**
 * An admin API request over HTTP, routed here so that every module
 * exposes the same API. path is the part after the admin location
 * ("/queue/ID/UUID", still percent-encoded), query the raw query string
 * (NULL or ""), body borrowed. Unknown paths answer 404, wrong methods
 * 405, both as JSON.
 *
 *   POST   /enqueue/ID[,ID...][?nopush=1]  body: command (plist or JSON)
 *   POST   /push/ID[,ID...]
 *   GET    /enrollments/ID
 *   GET    /queue/ID        DELETE /queue/ID        DELETE /queue/ID/UUID
 *   GET    /results/ID/UUID
 *   POST   /revoke/ID[/SHA256]  refuse the certificate from now on
 */
mdm_req_t *mdm_req_new_admin_http(const mdm_conf_t *c, const char *method,
                                  size_t mlen, const char *path, size_t plen,
                                  const char *query, size_t qlen,
                                  const unsigned char *body, size_t blen);

/**
 * 1 when key matches the configured admin_key (constant time), or when no
 * key is configured; 0 otherwise.
 */
int mdm_conf_admin_key_ok(const mdm_conf_t *c, const char *key, size_t len);

/** Identity checks of one configuration in this process (for metrics). */
typedef struct {
    unsigned long cache_hits;   /* chain checks answered by the cache */
    unsigned long cache_misses; /* chain checks done in full */
    unsigned long direct;       /* Mdm-Signatures verified directly */
} mdm_identity_stats_t;

/**
 * The counters since the configuration was finished; they only grow.
 * All zero for a configuration without identity checks. Thread-safe.
 */
void mdm_conf_identity_stats(const mdm_conf_t *c, mdm_identity_stats_t *st);

/* ------------------------------------------------------------------ */
/* Enrollment: the SCEP CA and the enrollment profile                 */

/** What a finished configuration can serve (for config-time checks). */
typedef enum {
    MDM_CAN_SCEP = 1,    /* scep.* options: a SCEP CA */
    MDM_CAN_PROFILE = 2, /* profile.* options: an enrollment profile */
    MDM_CAN_ACME = 4     /* acme.* options and a SCEP CA to sign with */
} mdm_can_t;

/** 1 when the finished configuration has what `what` needs, else 0. */
int mdm_conf_can(const mdm_conf_t *c, mdm_can_t what);

/**
 * A SCEP request (RFC 8894) at a location whose configuration has a SCEP
 * CA: GET operation=GetCACaps | GetCACert | PKIOperation&message=...,
 * POST operation=PKIOperation with the DER pkiMessage as body. query is
 * the raw query string (still URL-encoded), body the raw body; both
 * borrowed until mdm_req_free(). Same start/plan/feed/response loop.
 */
mdm_req_t *mdm_req_new_scep_http(const mdm_conf_t *c, const char *method,
                                 size_t mlen, const char *query, size_t qlen,
                                 const unsigned char *body, size_t blen);

/**
 * A download of the enrollment profile (GET): one Redis round trip for a
 * fresh one-time SCEP challenge when scep.challenge is "dynamic", none
 * otherwise. The response is the signed .mobileconfig.
 */
mdm_req_t *mdm_req_new_profile(const mdm_conf_t *c);

/**
 * An ACME request (RFC 8555, device-attest-01) at a location whose
 * configuration can MDM_CAN_ACME. path is the part after the ACME
 * location ("/directory", "/new-order", "/order/ID"...); the
 * Content-Type is given with mdm_req_set_content_type(). method, path and
 * body are borrowed until mdm_req_free(). Answers are JSON, RFC 7807
 * problem documents (application/problem+json) or the PEM chain; a
 * Replay-Nonce, Location and Link come as extra header fields.
 */
mdm_req_t *mdm_req_new_acme_http(const mdm_conf_t *c, const char *method,
                                 size_t mlen, const char *path, size_t plen,
                                 const unsigned char *body, size_t blen);

#endif
