/* Internal to libmdm: shared by the files in core/ only. */
#ifndef MDM_INTERNAL_H
#define MDM_INTERNAL_H

#include "mdm.h"
#include "mdm_identity.h"
#include "mdm_msg.h"

#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>

#define MDM_ID_SIGNATURE 0x1u
#define MDM_ID_TLS       0x2u
#define MDM_ID_HEADER    0x4u

enum { MDM_BIND_STRICT = 0, MDM_BIND_RETRO, MDM_BIND_OFF };
enum { MDM_UA_GONE = 0, MDM_UA_ZERO_LENGTH };

typedef struct {
    unsigned char *ptr; /* malloc'd */
    size_t len;
} mdm_buf_t;

struct mdm_conf_s {
    char *prefix;
    unsigned identity;
    char *ca_file;
    char **topics;
    size_t ntopics;
    int binding;
    long results_ttl;
    long events_maxlen;
    long push_maxlen;
    size_t cache_size;
    unsigned cache_ttl;
    size_t cert_cache_size;
    int user_auth;
    char *get_token_type;
    char *get_token_file;
    mdm_buf_t get_token;
    int rts;
    char *rts_wifi_file;
    char *rts_mdm_file;
    mdm_buf_t rts_wifi;
    mdm_buf_t rts_mdm;
    char *admin_key;
    struct mdm_scep_ca_s *scep;         /* scep.* options (mdm_enroll.c) */
    struct mdm_profile_conf_s *profile; /* profile.* options */
    int scep_dynamic;                   /* scep.challenge dynamic */
    long crl_days;                      /* scep.crl_days: nextUpdate */

    /* derived by mdm_conf_finish() */
    int finished;
    mdm_verifier_t *verifier;
    char *events_key;
    char *push_key;
    char events_maxlen_s[24];
    char push_maxlen_s[24];
    char results_ttl_s[24];
};

/* ---- scripts (mdm_lua.c, generated from core/lua/) ---- */

typedef enum {
    MDM_LUA_AUTHENTICATE = 0,
    MDM_LUA_TOKENUPDATE,
    MDM_LUA_CHECKOUT,
    MDM_LUA_BOOTSTRAP,
    MDM_LUA_TOUCH,
    MDM_LUA_REPORT,
    MDM_LUA_ENQUEUE,
    MDM_LUA_DEQUEUE,
    MDM_LUA_REVOKE,
    MDM_LUA_SCEP_ISSUE,  /* mdm_scep.c */
    MDM_LUA_SCEP_REVOKE, /* mdm_scep.c */
    MDM_LUA_COUNT
} mdm_lua_t;

typedef struct {
    const char *name;
    const char *src;
    char sha1[41];
} mdm_script_t;

/** The script table with SHA-1s filled in (computed once, thread-safe). */
const mdm_script_t *mdm_script(mdm_lua_t which);

/* ---- plan builder (mdm_plan.c) ---- */

typedef struct {
    mdm_cmd_t *cmds;
    size_t ncmds, cap_cmds;
    size_t *first; /* index of each command's first argument */
    const char **argv;
    size_t *argvlen;
    size_t nargs, cap_args;
    char **owned; /* strings freed at reset */
    size_t nowned, cap_owned;
    mdm_plan_t plan;
    int failed; /* allocation failure somewhere: plan unusable */
} mdm_planb_t;

void mdm_planb_reset(mdm_planb_t *b);
void mdm_planb_free(mdm_planb_t *b);
void mdm_planb_cmd(mdm_planb_t *b);
/** Borrowed argument: must live until the next reset. */
void mdm_planb_arg(mdm_planb_t *b, const void *p, size_t len);
void mdm_planb_str(mdm_planb_t *b, const char *s);
/** Owned argument, formatted. Returns the string (or NULL). */
const char *mdm_planb_fmt(mdm_planb_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Pointers fixed up; NULL if an allocation failed. */
const mdm_plan_t *mdm_planb_finish(mdm_planb_t *b, size_t nreplies);
/** Replace cmds[i] EVALSHA <sha> by EVAL <source> (NOSCRIPT fallback). */
void mdm_planb_to_eval(mdm_planb_t *b, size_t i, const mdm_script_t *s);

/* ---- keys (mdm_keys.c) ---- */

typedef struct {
    char *devrec;  /* <P>{D}:rec */
    char *rec;     /* <P>{D}<rest>:rec */
    char *q;       /* ...:q */
    char *cmd;     /* ...:cmd */
    char *nn;      /* ...:nn */
    char *users;   /* <P>{D}:users */
    char *base;    /* <P>{D}<rest> */
    char *devbase; /* <P>{D} */
    char *res;     /* <P>{D}<rest>:res: */
} mdm_keys_t;

/** Fill k for enrollment id (device id = the part before the first ':'
 * when dev_id is NULL). Returns -1 on allocation failure. */
int mdm_keys_init(mdm_keys_t *k, const char *prefix, const char *id,
                  const char *dev_id);
void mdm_keys_clear(mdm_keys_t *k);

/** Push the six standard KEYS of a device script into the plan; copy
 * when k does not outlive the plan. */
void mdm_keys_push(mdm_planb_t *b, const mdm_keys_t *k, int copy);

/* ---- transactions (mdm_req.c, mdm_admin.c) ---- */

struct mdm_req_s {
    const mdm_conf_t *conf;
    int admin;
    mdm_endpoint_t ep;
    mdm_log_fn log_fn;
    void *log_data;

    /* device input, borrowed */
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

    /* identity */
    X509 *cert;
    char cert_hash[65];
    char *subject;

    mdm_msg_t msg;
    mdm_keys_t keys;
    int state;
    mdm_lua_t script;
    size_t script_cmd; /* index of the EVALSHA in the current plan */
    int evalled;       /* NOSCRIPT fallback already used */

    mdm_planb_t pb;
    const mdm_plan_t *plan;
    mdm_response_t resp;
    mdm_buf_t out;
    const char *vars[MDM_VAR_COUNT];
    char next_uuid[256];
    char event_id[64]; /* id of the event this request appended */

    /* admin */
    mdm_admin_args_t a;
    char **ids;
    char *uuid;
    char *request_type;
    mdm_buf_t cmd;
    int *id_state;
    int pre_status; /* admin HTTP routing refused the request */
    const char *pre_id;
    char pre_msg[160];

    /* enrollment (mdm_enroll.c) */
    int enroll; /* nonzero: a SCEP, profile or SCEP admin transaction */
    struct mdm_scep_req_s *scep;
    char *enroll_serial;
    char enroll_sha[65];
    char *enroll_device;
    char **crl_serials; /* the CRL's entries, while their times are read */
    size_t crl_n;
};

/** Refuse with status and one log line (id = stable message id). */
mdm_step_t mdm_req_refuse(mdm_req_t *r, int status, mdm_log_level_t level,
                          const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void mdm_req_log(mdm_req_t *r, mdm_log_level_t level, const char *id,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** 200 with a body taken over from buf (moved). */
mdm_step_t mdm_req_reply(mdm_req_t *r, int status, const char *ctype,
                         mdm_buf_t *buf);
/** 503 + Retry-After after a storage failure; reply may be NULL. */
mdm_step_t mdm_req_storage_failed(mdm_req_t *r, const struct redisReply *rep);
/** Append "EVALSHA sha" for a script; records it for NOSCRIPT fallback. */
void mdm_req_evalsha(mdm_req_t *r, mdm_lua_t which);
/** If rep is a NOSCRIPT error, switch the plan to EVAL: returns 1. */
int mdm_req_noscript(mdm_req_t *r, const struct redisReply *rep);

/* enrollment (mdm_enroll.c): options "scep.*" and "profile.*" */
int mdm_enroll_conf_set(mdm_conf_t *c, const char *name, const char *value,
                        char *err, size_t errlen);
int mdm_enroll_conf_finish(mdm_conf_t *c, char *err, size_t errlen);
void mdm_enroll_conf_free(mdm_conf_t *c);
/** The admin API's /scep/... routes (path after "/scep"); NULL: none. */
mdm_req_t *mdm_enroll_admin_http(const mdm_conf_t *c, int is_post,
                                 const char *path, size_t plen, long ttl);
mdm_step_t mdm_enroll_start(mdm_req_t *r);
/** What the CRL needs of the SCEP CA (borrowed; mdm_scep.c). */
int mdm_scep_ca_crl(const struct mdm_scep_ca_s *ca, X509 **cert, EVP_PKEY **key,
                    const char **k_cert, const char **k_revoked);
/** A signed DER CRL of serials (hex) revoked at times (mdm_crl.c). */
int mdm_crl_build(X509 *issuer, EVP_PKEY *key, char *const *serials,
                  const time_t *times, size_t n, time_t now, long days,
                  mdm_buf_t *out);
mdm_step_t mdm_enroll_feed(mdm_req_t *r, struct redisReply *const *rep,
                           size_t n);
void mdm_enroll_free(mdm_req_t *r);

mdm_step_t mdm_admin_start(mdm_req_t *r);
struct json_t;
/** Answer with j (a json_t, reference taken over) as JSON. */
mdm_step_t mdm_admin_reply_json(mdm_req_t *r, int status, struct json_t *j);
/** Answer {"error": msg, "id": id} with status, and log it once. */
mdm_step_t mdm_admin_error(mdm_req_t *r, int status, const char *id,
                           const char *msg);
mdm_step_t mdm_admin_feed(mdm_req_t *r, struct redisReply *const *rep,
                          size_t n);
void mdm_admin_free(mdm_req_t *r);

/* ---- blocking executor (mdm_sync.c), for every transaction type ---- */

typedef const mdm_plan_t *(*mdm_sync_plan_fn)(void *tx);
typedef mdm_step_t (*mdm_sync_feed_fn)(void *tx, struct redisReply *const *rep,
                                       size_t n);
/** Run tx's plans on c until a step is DONE (see mdm_exec_sync()). */
mdm_step_t mdm_sync_run(struct redisContext *c, void *tx, mdm_sync_plan_fn plan,
                        mdm_sync_feed_fn feed);

/* ---- utilities (mdm_util.c) ---- */

int mdm_buf_set(mdm_buf_t *b, const void *p, size_t len);
void mdm_buf_free(mdm_buf_t *b);
int mdm_read_file(const char *path, mdm_buf_t *out, size_t max, char *err,
                  size_t errlen);
char *mdm_strdup(const char *s);
/** Replace *dst (malloc'd or NULL) with a copy of v; -1 out of memory. */
int mdm_set_str(char **dst, const char *v);
/** A whole decimal number in [min, max] into *out; -1 otherwise. */
int mdm_parse_long(const char *v, long min, long max, long *out);
char *mdm_strndup(const char *s, size_t n);
void mdm_hex(const unsigned char *in, size_t len, char *out);
/** Base64 without line breaks, malloc'd, NUL-terminated. */
char *mdm_b64(const unsigned char *in, size_t len);
/** A random RFC 4122 v4 UUID in upper case; out has room for 37. */
int mdm_uuid(char out[37]);
int mdm_ctype_prefix(const char *v, size_t len, const char *prefix);

/** An XML plist serialized from node (plist_t), malloc'd. */
int mdm_plist_xml(void *node, mdm_buf_t *out);

#endif
