/*
 * ngx_mdm: Apple MDM in nginx. The protocol is libmdm's (core/); this
 * module reads bodies, runs libmdm's Redis plans on the event loop and
 * sends the answers.
 *
 * The files form layers, each calling only files below it (the Redis
 * adapter hands replies back through the caller's callback), as
 * t/check-call-cycles.py -v ngx_mdm prints them:
 *   layer 0: ngx_http_mdm_conf.c ngx_http_mdm_metrics.c
 *            ngx_http_mdm_redis.c ngx_http_mdm_variables.c
 *   layer 1: ngx_http_mdm_handler.c ngx_http_mdm_redis_topo.c (it reaches
 *            ngx_http_mdm_redis.c's plans through pointers, see
 *            ngx_http_mdm_redis_int.h)
 *   layer 2: ngx_http_mdm_directives.c
 *   layer 3: ngx_http_mdm_module.c
 */
#ifndef NGX_HTTP_MDM_H
#define NGX_HTTP_MDM_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis.h>

#include "mdm.h"
#include "mdm_redis_topo.h"

typedef enum {
    NGX_HTTP_MDM_OFF = 0,
    NGX_HTTP_MDM_CHECKIN,
    NGX_HTTP_MDM_COMMAND,
    NGX_HTTP_MDM_SERVER,
    NGX_HTTP_MDM_ADMIN,
    NGX_HTTP_MDM_SCEP,
    NGX_HTTP_MDM_PROFILE,
    NGX_HTTP_MDM_METRICS, /* the exposition, no libmdm configuration */
    NGX_HTTP_MDM_ACME
} ngx_http_mdm_kind_e;

/* Where Redis is: one server, a Sentinel-watched master, or a Cluster */
typedef enum {
    NGX_HTTP_MDM_REDIS_NONE = 0,
    NGX_HTTP_MDM_REDIS_SINGLE,   /* mdm_redis */
    NGX_HTTP_MDM_REDIS_SENTINEL, /* mdm_redis_sentinel */
    NGX_HTTP_MDM_REDIS_CLUSTER   /* mdm_redis_cluster */
} ngx_http_mdm_redis_mode_e;

typedef struct {
    ngx_str_t text; /* as written, NUL-terminated, for messages */
    ngx_str_t host; /* IP literal or unix socket path, NUL-terminated */
    ngx_int_t port; /* 0 for a unix socket */
} ngx_http_mdm_redis_addr_t;

typedef struct {
    ngx_str_t redis; /* what to name in messages */
    ngx_uint_t redis_mode;
    const char *redis_directive;      /* the directive that set the mode */
    ngx_http_mdm_redis_addr_t server; /* mdm_redis */
    ngx_array_t *redis_addrs; /* of ngx_http_mdm_redis_addr_t: sentinels or
                                 cluster seed nodes */
    ngx_str_t sentinel_master;
    ngx_str_t redis_user;          /* mdm_redis_user, NUL-terminated */
    ngx_str_t redis_password_file; /* mdm_redis_password_file */
    ngx_str_t redis_password;      /* its first line, NUL-terminated */
    ngx_int_t redis_wait;          /* mdm_redis_wait N (replicas) */
    ngx_msec_t redis_wait_timeout; /* mdm_redis_wait ... MS */
    ngx_msec_t connect_timeout;
    ngx_msec_t timeout;
    ngx_flag_t used;              /* some location needs Redis */
    ngx_shm_zone_t *metrics_zone; /* mdm_metrics_zone; NULL: no metrics */
} ngx_http_mdm_main_conf_t;

typedef struct {
    ngx_uint_t kind;
    ngx_flag_t verify;
    ngx_str_t prefix;
    ngx_str_t identity;
    ngx_str_t identity_ca;
    ngx_str_t identity_header;
    ngx_array_t *topics; /* of ngx_str_t */
    ngx_str_t binding;
    time_t results_ttl;
    ngx_int_t events_maxlen;
    ngx_str_t user_auth;
    ngx_str_t admin_key;
    ngx_array_t *opts; /* of ngx_keyval_t: scep.* and profile.* options */
    mdm_conf_t *mdm;   /* built when the location handles MDM */
    /* this worker's identity counters of mdm already in the metrics */
    mdm_identity_stats_t id_published;
} ngx_http_mdm_loc_conf_t;

typedef struct ngx_http_mdm_batch_s ngx_http_mdm_batch_t;

typedef struct {
    ngx_http_request_t *r;
    mdm_req_t *req;
    u_char *body;
    size_t body_len;
    ngx_http_mdm_batch_t *batch; /* Redis replies being awaited */
    ngx_event_t timer;
    ngx_int_t verify_status; /* mdm_verify: access phase result */
    uint64_t redis_sent;     /* metrics: when the plan went out (us) */
    uint64_t redis_usec;     /* metrics: time spent waiting for Redis */
    unsigned redis_ok : 1;   /* metrics: some replies arrived */
    unsigned done : 1;
    unsigned verify : 1;
} ngx_http_mdm_ctx_t;

extern ngx_module_t ngx_http_mdm_module;

/* ngx_http_mdm_directives.c */
extern ngx_command_t ngx_http_mdm_commands[];
void *ngx_http_mdm_create_main_conf(ngx_conf_t *cf);
char *ngx_http_mdm_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_mdm_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_mdm_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);

/* ngx_http_mdm_conf.c */
/**
 * Build the libmdm configuration of a merged location that answers MDM
 * (conf->mdm, freed with cf->pool). NGX_ERROR: the error is logged,
 * naming the directive.
 */
ngx_int_t ngx_http_mdm_conf_build(ngx_conf_t *cf,
                                  ngx_http_mdm_loc_conf_t *conf);

/* ngx_http_mdm_handler.c */
ngx_int_t ngx_http_mdm_device_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_admin_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_scep_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_profile_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_acme_handler(ngx_http_request_t *r);

/* ngx_http_mdm_redis.c */
/** A plan's replies arrived (NULL replies, n 0: storage failed). */
typedef void (*ngx_http_mdm_redis_done_pt)(void *data, redisReply **replies,
                                           size_t n);
/**
 * Send a plan. The batch: done(data, ...) will run once with its replies
 * (unless detached first); NULL: Redis is unavailable now.
 */
ngx_http_mdm_batch_t *ngx_http_mdm_redis_send(ngx_http_mdm_main_conf_t *mcf,
                                              const mdm_plan_t *plan,
                                              ngx_http_mdm_redis_done_pt done,
                                              void *data);
/** The caller is going away: done will not run for this batch (or NULL). */
void ngx_http_mdm_redis_detach(ngx_http_mdm_batch_t *b);
/* ngx_http_mdm_redis_topo.c */
/** Worker start: Sentinel/Cluster discovery begins at once. */
ngx_int_t ngx_http_mdm_redis_init_process(ngx_cycle_t *cycle);
void ngx_http_mdm_redis_exit_process(ngx_cycle_t *cycle);

/* ngx_http_mdm_metrics.c */
char *ngx_http_mdm_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_mdm_metrics_init(ngx_conf_t *cf);
ngx_int_t ngx_http_mdm_metrics_handler(ngx_http_request_t *r);
/** Monotonic microseconds; 0 when there is no metrics zone. */
uint64_t ngx_http_mdm_metrics_clock(ngx_http_request_t *r);
/** A Redis failure of kind mdm_metrics_err_t (tools/mdm_metrics.h). */
void ngx_http_mdm_metrics_redis_error(ngx_http_request_t *r, ngx_uint_t kind);
/** A refusal the module itself made (the core's are counted anyway). */
void ngx_http_mdm_metrics_refusal(ngx_http_request_t *r, const char *id);

/* ngx_http_mdm_variables.c */
ngx_int_t ngx_http_mdm_add_variables(ngx_conf_t *cf);

#endif
