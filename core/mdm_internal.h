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
    int store_cert; /* keep the bound certificate's DER (P{D}:der) */
    char *rts_wifi_file;
    char *rts_mdm_file;
    mdm_buf_t rts_wifi;
    mdm_buf_t rts_mdm;
    char *admin_key;
    struct mdm_scep_ca_s *scep;         /* scep.* options (mdm_enroll.c) */
    struct mdm_profile_conf_s *profile; /* profile.* options */
    struct mdm_acme_conf_s *acme;       /* acme.* options (mdm_acme.h) */
    int scep_dynamic;                   /* scep.challenge dynamic */
    long crl_days;                      /* scep.crl_days: nextUpdate */
    long renew_days; /* renew_days: renewal offers this close to expiry */

    /* derived by mdm_conf_finish() */
    int finished;
    mdm_verifier_t *verifier;
    char *events_key;
    char *push_key;
    char *expiry_key; /* enrollments by their certificate's notAfter */
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
    MDM_LUA_SCEP_ISSUE,   /* mdm_scep.c */
    MDM_LUA_SCEP_REVOKE,  /* mdm_scep.c */
    MDM_LUA_SCEP_PENDING, /* mdm_scep_admin.c: list, reject */
    MDM_LUA_DDM,          /* mdm_ddm.c: DeclarativeManagement check-ins */
    MDM_LUA_DDM_SYNC,     /* mdm_ddm_admin.c: materialize, queue command */
    MDM_LUA_RENEW_OFFER,  /* mdm_renew.c: the renewal sweep */
    MDM_LUA_ACME,         /* mdm_acme.c: every ACME POST */
    MDM_LUA_COUNT
} mdm_lua_t;

typedef struct {
    const char *name;
    const char *src;
    char sha1[41];
} mdm_script_t;

/** The script table with SHA-1s filled in (computed once, thread-safe;
 * mdm_script.c). */
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
/** A new "XADD key MAXLEN ~ maxlen *" command; its fields follow. */
void mdm_planb_xadd(mdm_planb_t *b, const char *key, const char *maxlen);
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
/** The same with a key count of 6 + extra: the caller pushes the extra
 * keys right after. */
void mdm_keys_push_more(mdm_planb_t *b, const mdm_keys_t *k, int copy,
                        int extra);

/* ---- transaction types: constructors for mdm_req.c (mdm_tx.h) ---- */

/** A device request (mdm_device.c). */
mdm_req_t *mdm_device_new(const mdm_conf_t *c, mdm_endpoint_t ep);
/** The verified certificate of a device request, or NULL (borrowed). */
X509 *mdm_device_cert(const mdm_req_t *r);
/** An admin operation (mdm_admin.c); args copied, body borrowed. */
mdm_req_t *mdm_admin_new(const mdm_conf_t *c, const mdm_admin_args_t *a);
/**
 * An admin request body as a plist dictionary (plist_t, plist_free()): an
 * XML or binary plist dictionary, or a JSON object (a plist <data> value
 * is {"$data": "<base64>"}). NULL with *why (static text) when it is not
 * one (mdm_admin.c).
 */
void *mdm_admin_body_dict(const unsigned char *body, size_t len,
                          const char **why);
/** POST /profiles/encrypted/ID: a profile encrypted to the enrollment's
 * identity certificate, queued as InstallProfile (mdm_encprofile.c); body
 * borrowed. */
mdm_req_t *mdm_encprofile_new(const mdm_conf_t *c, const char *id,
                              const unsigned char *body, size_t blen,
                              int nopush, int unsigned_on);
/** Enrollment transactions (mdm_enroll.c). */
mdm_req_t *mdm_enroll_profile_new(const mdm_conf_t *c);
mdm_req_t *mdm_enroll_crl_new(const mdm_conf_t *c);
/** Revoke serial (hex) at the CA, then its bound device; c->scep set. */
mdm_req_t *mdm_enroll_revoke_new(const mdm_conf_t *c, const char *serial);

/* enrollment options "scep.*" and "profile.*" (mdm_enroll_conf.c) */
int mdm_enroll_conf_set(mdm_conf_t *c, const char *name, const char *value,
                        char *err, size_t errlen);
int mdm_enroll_conf_finish(mdm_conf_t *c, char *err, size_t errlen);
void mdm_enroll_conf_free(mdm_conf_t *c);
/** What the CRL needs of the SCEP CA (borrowed; mdm_scep_ca.c). */
int mdm_scep_ca_crl(const struct mdm_scep_ca_s *ca, X509 **cert, EVP_PKEY **key,
                    const char **k_cert, const char **k_revoked);
/** One-time challenges of the CA (borrowed key prefix, default lifetime);
 * -1 unless the CA is finished with challenge dynamic (mdm_scep_ca.c). */
int mdm_scep_ca_challenges(const struct mdm_scep_ca_s *ca, const char **k_chal,
                           long *ttl);
/** A signed DER CRL of serials (hex) revoked at times (mdm_crl.c). */
int mdm_crl_build(X509 *issuer, EVP_PKEY *key, char *const *serials,
                  const time_t *times, size_t n, time_t now, long days,
                  mdm_buf_t *out);

/* ---- query strings (mdm_query.c) ---- */

/**
 * Find parameter name in the raw query string q: 1 with *v, *vl its raw
 * value (NULL, 0 for a bare "name"), 0 when absent.
 */
int mdm_query_find(const char *q, size_t qlen, const char *name, const char **v,
                   size_t *vl);
/** 1 for "name", "name=1", "name=true", "name=yes"; else 0. */
int mdm_query_flag(const char *q, size_t qlen, const char *name);
/** 1 when parameter name has exactly the raw value want. */
int mdm_query_is(const char *q, size_t qlen, const char *name,
                 const char *want);

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

/* ---- identity renewal (mdm_renew_cert.c, mdm_renew.c) ---- */

/** The subject CN prefix of a renewal certificate. */
#define MDM_RENEW_CN_PREFIX "mdm-renew-"
/** cert's notAfter (0 if unreadable) and, when its CN is a renewal name,
 * the SHA-256 hex of that CN (else cn_hash is ""). */
void mdm_renew_cert_facts(X509 *cert, long long *not_after, char cn_hash[65]);
/** A fresh renewal CN into cn (room for 64) and its SHA-256 hex; -1 when
 * there is no randomness. */
int mdm_renew_new_cn(char cn[64], char cn_hash[65]);
/** GET /renewals (run 0) and POST /renewals/run (run 1); days < 0: the
 * renew_days option (30 if unset). */
mdm_req_t *mdm_renew_new(const mdm_conf_t *c, int run, long days);

#endif
