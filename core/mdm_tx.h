/*
 * The transaction layer: what every kind of request shares (internal to
 * libmdm).
 *
 * Every transaction (device check-in/command, admin, SCEP, profile, CRL,
 * and the ones to come) begins with a struct mdm_req_s, the base, and
 * implements one interface, mdm_tx_ops_t:
 *
 *     start(tx)           validate, do local work, plan (or answer)
 *     feed(tx, rep, n)    read the replies of the plan, plan again or answer
 *     free(tx)            free the type's own fields
 *
 * The glue only sees the base through mdm_req_*() (mdm_req.c, the one
 * dispatcher). A transaction answers and logs through the helpers below,
 * which it calls downward; nothing here calls a transaction by name.
 *
 *     mdm_req.c                         public API, routing
 *       mdm_device.c mdm_admin.c        transaction types
 *       mdm_enroll.c mdm_scep*.c ...
 *         mdm_tx.c                      this layer
 *           mdm_plan.c mdm_keys.c mdm_script.c mdm_util.c ...
 */
#ifndef MDM_TX_H
#define MDM_TX_H

#include "mdm_internal.h"

struct json_t;

typedef struct mdm_req_s mdm_tx_t;

typedef struct {
    const char *name; /* "device", "admin", "scep"... (debugging) */
    mdm_step_t (*start)(mdm_tx_t *tx);
    mdm_step_t (*feed)(mdm_tx_t *tx, struct redisReply *const *rep, size_t n);
    void (*free)(mdm_tx_t *tx); /* the type's own fields; NULL: none */
} mdm_tx_ops_t;

/** Request input set by the glue, borrowed until the transaction ends. */
typedef struct {
    const char *ctype;
    size_t ctype_len;
    const unsigned char *body;
    size_t body_len;
    const unsigned char *tls;
    size_t tls_len;
    const char *sig;
    size_t sig_len;
    const char *hdr;
    size_t hdr_len;
    int verify_only;
} mdm_tx_in_t;

struct mdm_req_s {
    const mdm_tx_ops_t *ops;
    const mdm_conf_t *conf; /* NULL for a SCEP transaction of its own */
    mdm_log_fn log_fn;
    void *log_data;
    const char *what; /* log context ("SCEP PKCSReq"), NULL: none */
    int done;         /* the response is final */

    mdm_tx_in_t in;

    mdm_planb_t pb;
    const mdm_plan_t *plan;
    mdm_lua_t script;  /* the script of the current plan */
    size_t script_cmd; /* its command's index */
    int evalled;       /* NOSCRIPT fallback already used */

    mdm_response_t resp;
    mdm_buf_t out;
    const char *vars[MDM_VAR_COUNT];

    /* a refusal decided while routing, answered (and logged) at start */
    int pre_status;
    mdm_log_level_t pre_level;
    const char *pre_id;
    int pre_json; /* answer it as JSON (admin routes) */
    char pre_msg[160];
};

/** A zeroed transaction of size bytes (>= the base) with ops; NULL: OOM. */
mdm_tx_t *mdm_tx_new(size_t size, const mdm_tx_ops_t *ops, const mdm_conf_t *c);
/** Free the type's fields (ops->free), then the base and tx itself. */
void mdm_tx_free(mdm_tx_t *tx);

/** Answer a routing refusal, else run ops->start. */
mdm_step_t mdm_tx_start(mdm_tx_t *tx);
/** DONE once answered, else ops->feed. */
mdm_step_t mdm_tx_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n);

/** Record a refusal to answer at start (the logger is set by then). */
void mdm_tx_pre_refuse(mdm_tx_t *tx, int status, mdm_log_level_t level,
                       const char *id, int json, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

void mdm_tx_log(mdm_tx_t *tx, mdm_log_level_t level, const char *id,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void mdm_tx_vlog(mdm_tx_t *tx, mdm_log_level_t level, const char *id,
                 const char *fmt, va_list ap);

/** Answer status with no body and one log line (id: stable message id). */
mdm_step_t mdm_tx_refuse(mdm_tx_t *tx, int status, mdm_log_level_t level,
                         const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** Answer with the body taken over from buf (moved; NULL: no body). */
mdm_step_t mdm_tx_reply(mdm_tx_t *tx, int status, const char *ctype,
                        mdm_buf_t *buf);
/** Answer with a copy of the NUL-terminated s. */
mdm_step_t mdm_tx_reply_str(mdm_tx_t *tx, int status, const char *ctype,
                            const char *s);
/** 500, MDM09001. */
mdm_step_t mdm_tx_oom(mdm_tx_t *tx);
/** 503 + Retry-After after a storage failure (MDM04001, or MDM04002 with
 * the reply's error); rep may be NULL. */
mdm_step_t mdm_tx_storage_failed(mdm_tx_t *tx, const struct redisReply *rep);

/** Answer j (a json_t, reference taken over) as JSON. */
mdm_step_t mdm_tx_json(mdm_tx_t *tx, int status, struct json_t *j);
/** Answer {"error": msg, "id": id} and log it once. */
mdm_step_t mdm_tx_json_error(mdm_tx_t *tx, int status, const char *id,
                             const char *msg);

/** Append "EVALSHA sha" for a script; recorded for the NOSCRIPT fallback. */
void mdm_tx_evalsha(mdm_tx_t *tx, mdm_lua_t which);
/** If rep is a NOSCRIPT error (first time), replan that script alone with
 * EVAL and return 1; 0 otherwise. */
int mdm_tx_noscript(mdm_tx_t *tx, const struct redisReply *rep);
/** The plan built in tx->pb, with nreplies replies wanted: REDIS, or the
 * out-of-memory answer. */
mdm_step_t mdm_tx_plan(mdm_tx_t *tx, size_t nreplies);

#endif
