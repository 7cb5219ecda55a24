/*
 * mod_mdm: Apple MDM in Apache httpd. The protocol is libmdm's (core/);
 * this glue reads bodies, runs libmdm's Redis plans on pooled blocking
 * connections and sends the answers.
 */
#ifndef MOD_MDM_H
#define MOD_MDM_H

#include "httpd.h"
#include "http_config.h"

#include "mdm.h"

typedef struct {
    const char *redis; /* as written */
    const char *host;  /* IP */
    int port;          /* 0: unix socket */
    const char *unix_path;
    int connect_timeout; /* ms */
    int timeout;         /* ms */
} mdm_srv_conf_t;

typedef struct {
    const char *location; /* the <Location> path, for the admin API */
    const char *prefix;
    const char *identity;
    const char *identity_ca;
    const char *identity_header;
    apr_array_header_t *topics; /* const char * */
    const char *binding;
    const char *results_ttl;
    const char *events_maxlen;
    const char *user_auth;
    const char *admin_key;
    apr_array_header_t *opts; /* mdm_opt_t: scep.* and profile.* options */
    int verify;               /* -1 unset */
} mdm_dir_conf_t;

/* a libmdm option as written (scep.ca_cert /etc/mdm/ca.pem) */
typedef struct {
    const char *name;
    const char *value;
} mdm_opt_t;

/* which libmdm configuration a handler needs */
typedef enum {
    MDM_KIND_DEVICE = 0, /* device endpoints, MDMVerify */
    MDM_KIND_ADMIN,      /* no device identity */
    MDM_KIND_ENROLL      /* SCEP and profile: no device identity either */
} mdm_kind_t;

extern module AP_MODULE_DECLARE_DATA mdm_module;

/* mod_mdm_redis.c */
void mdm_redis_child_init(apr_pool_t *p, server_rec *s);
/** Run a started transaction to the end on a pooled connection. */
void mdm_redis_run(request_rec *r, mdm_req_t *req);

/* mod_mdm_handler.c */
int mdm_handler(request_rec *r);
int mdm_verify_fixup(request_rec *r);
void mdm_register_filters(void);
/** The per-process cache of libmdm configurations (child_init). */
void mdm_confs_init(apr_pool_t *p);
/** The libmdm configuration for these settings (built once per process). */
const mdm_conf_t *mdm_dir_mdm_conf(request_rec *r, const mdm_dir_conf_t *d,
                                   mdm_kind_t kind);
/** Apply d's scep.* and profile.* options to c; -1 with err on failure. */
int mdm_apply_opts(mdm_conf_t *c, const mdm_dir_conf_t *d, char *err,
                   size_t errlen);
/** "scep.ca_key: ..." -> "MDMSCEPCAKey: ...": name the directive. */
const char *mdm_opt_error(apr_pool_t *p, const char *err);

#endif
