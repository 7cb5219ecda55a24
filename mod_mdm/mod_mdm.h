/*
 * mod_mdm: Apple MDM in Apache httpd. The protocol is libmdm's (core/);
 * this glue reads bodies, runs libmdm's Redis plans on pooled blocking
 * connections and sends the answers.
 *
 * The files form layers, each calling only files below it, as
 * t/check-call-cycles.py -v mod_mdm prints them:
 *   layer 0: mod_mdm_directives.c mod_mdm_metrics.c
 *   layer 1: mod_mdm_conf.c mod_mdm_redis.c
 *   layer 2: mod_mdm_handler.c
 *   layer 3: mod_mdm.c
 */
#ifndef MOD_MDM_H
#define MOD_MDM_H

#include "httpd.h"
#include "http_config.h"

#include "mdm.h"
#include "mdm_redislink.h"

typedef struct {
    const char *redis;      /* as written (for logs) */
    const char *redis_kind; /* the directive: MDMRedis, MDMRedisSentinel... */
    mdm_redis_target_t *target;    /* where and how, without the credentials */
    const char *redis_user;        /* MDMRedisUser */
    const char *redis_password;    /* read from MDMRedisPasswordFile */
    const char *sentinel_password; /* MDMRedisSentinelPasswordFile */
    int wait_replicas, wait_ms;    /* MDMRedisWait; -1 unset */
    int connect_timeout;           /* ms */
    int timeout;                   /* ms */
    int metrics;                   /* MDMMetrics (main server): -1 unset (on) */
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

/* mod_mdm_directives.c */
extern const command_rec mdm_cmds[];
void *mdm_create_srv_conf(apr_pool_t *p, server_rec *s);
void *mdm_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);
void *mdm_create_dir_conf(apr_pool_t *p, char *dir);
void *mdm_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
/** "scep.ca_key: ..." -> "MDMSCEPCAKey: ...": name the directive. */
const char *mdm_opt_error(apr_pool_t *p, const char *err);

/* mod_mdm_conf.c */
/** check_config: every section's settings make a working configuration. */
int mdm_check_config(apr_pool_t *p, apr_pool_t *plog, apr_pool_t *ptemp,
                     server_rec *s);
/** The per-process cache of libmdm configurations (child_init). */
void mdm_confs_init(apr_pool_t *p);
/** The libmdm configuration for these settings (built once per process). */
const mdm_conf_t *mdm_dir_mdm_conf(request_rec *r, const mdm_dir_conf_t *d,
                                   mdm_kind_t kind);

/* mod_mdm_redis.c */
void mdm_redis_child_init(apr_pool_t *p, server_rec *s);
/** Run a started transaction to the end on a pooled connection. */
void mdm_redis_run(request_rec *r, mdm_req_t *req);

/* mod_mdm_metrics.c */
/** post_config: the shared counters (made once, kept across restarts). */
int mdm_metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s);
void mdm_metrics_child_init(apr_pool_t *p);
/** A request's wait for Redis (all its round trips), when it got replies. */
void mdm_metrics_redis(apr_interval_time_t waited);
/** A Redis failure of kind mdm_metrics_err_t (tools/mdm_metrics.h). */
void mdm_metrics_redis_error(int kind);
/** Publish what conf's identity caches counted since the last call. */
void mdm_metrics_identity(const mdm_conf_t *conf);
/** log_transaction hook: count requests at MDM locations. */
int mdm_metrics_log(request_rec *r);
/** SetHandler mdm-metrics: the Prometheus text exposition. */
int mdm_metrics_handler(request_rec *r);

/* mod_mdm_handler.c */
int mdm_handler(request_rec *r);
int mdm_verify_fixup(request_rec *r);
void mdm_register_filters(void);

#endif
