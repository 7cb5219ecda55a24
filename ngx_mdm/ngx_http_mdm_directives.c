/*
 * ngx_mdm: the directives, the records they fill (create, merge) and the
 * command table. Every value is checked where the directive is read, so
 * that `nginx -t` names the directive at fault; a location that answers
 * MDM gets its libmdm configuration (ngx_http_mdm_conf.c) when merged.
 */
#include "ngx_http_mdm.h"

static char *ngx_http_mdm_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mdm_redis_topology(ngx_conf_t *cf, ngx_command_t *cmd,
                                         void *conf);
static char *ngx_http_mdm_redis_password_file(ngx_conf_t *cf,
                                              ngx_command_t *cmd, void *conf);
static char *ngx_http_mdm_redis_wait(ngx_conf_t *cf, ngx_command_t *cmd,
                                     void *conf);
static char *ngx_http_mdm_handler_set(ngx_conf_t *cf, ngx_command_t *cmd,
                                      void *conf);
static char *ngx_http_mdm_checked_str(ngx_conf_t *cf, ngx_command_t *cmd,
                                      void *conf);
static char *ngx_http_mdm_identity(ngx_conf_t *cf, ngx_command_t *cmd,
                                   void *conf);
static char *ngx_http_mdm_topic(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mdm_opt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_mdm_opt_multi(ngx_conf_t *cf, ngx_command_t *cmd,
                                    void *conf);

/* libmdm option checked by ngx_http_mdm_checked_str, per directive */
typedef struct {
    const char *option;
} ngx_http_mdm_option_t;

static ngx_http_mdm_option_t ngx_http_mdm_opt_prefix = {"prefix"};
static ngx_http_mdm_option_t ngx_http_mdm_opt_binding = {"binding"};
static ngx_http_mdm_option_t ngx_http_mdm_opt_user_auth = {"user_auth"};
static ngx_http_mdm_option_t ngx_http_mdm_opt_admin_key = {"admin_key"};

ngx_command_t ngx_http_mdm_commands[] = {

    {ngx_string("mdm_redis"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_http_mdm_redis, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL},

    {ngx_string("mdm_redis_sentinel"), NGX_HTTP_MAIN_CONF | NGX_CONF_2MORE,
     ngx_http_mdm_redis_topology, NGX_HTTP_MAIN_CONF_OFFSET,
     NGX_HTTP_MDM_REDIS_SENTINEL, NULL},

    {ngx_string("mdm_redis_cluster"), NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE,
     ngx_http_mdm_redis_topology, NGX_HTTP_MAIN_CONF_OFFSET,
     NGX_HTTP_MDM_REDIS_CLUSTER, NULL},

    {ngx_string("mdm_redis_user"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_str_slot, NGX_HTTP_MAIN_CONF_OFFSET,
     offsetof(ngx_http_mdm_main_conf_t, redis_user), NULL},

    {ngx_string("mdm_redis_password_file"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_http_mdm_redis_password_file, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL},

    {ngx_string("mdm_redis_wait"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE2,
     ngx_http_mdm_redis_wait, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL},

    {ngx_string("mdm_redis_connect_timeout"),
     NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, ngx_conf_set_msec_slot,
     NGX_HTTP_MAIN_CONF_OFFSET,
     offsetof(ngx_http_mdm_main_conf_t, connect_timeout), NULL},

    {ngx_string("mdm_redis_timeout"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
     offsetof(ngx_http_mdm_main_conf_t, timeout), NULL},

    {ngx_string("mdm_checkin"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_CHECKIN,
     NULL},

    {ngx_string("mdm_command"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_COMMAND,
     NULL},

    {ngx_string("mdm_server"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_SERVER,
     NULL},

    {ngx_string("mdm_admin"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_ADMIN,
     NULL},

    {ngx_string("mdm_metrics_zone"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE12,
     ngx_http_mdm_metrics_zone, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL},

    {ngx_string("mdm_metrics"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_METRICS,
     NULL},

    {ngx_string("mdm_verify"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, (ngx_uint_t) -1, NULL},

    {ngx_string("mdm_prefix"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_checked_str, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, prefix), &ngx_http_mdm_opt_prefix},

    {ngx_string("mdm_identity"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_1MORE,
     ngx_http_mdm_identity, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, identity), NULL},

    {ngx_string("mdm_identity_ca"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_conf_set_str_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, identity_ca), NULL},

    {ngx_string("mdm_identity_header"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_conf_set_str_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, identity_header), NULL},

    {ngx_string("mdm_topic"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_1MORE,
     ngx_http_mdm_topic, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},

    {ngx_string("mdm_binding"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_checked_str, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, binding), &ngx_http_mdm_opt_binding},

    {ngx_string("mdm_results_ttl"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_conf_set_sec_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, results_ttl), NULL},

    {ngx_string("mdm_events_maxlen"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_conf_set_num_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, events_maxlen), NULL},

    {ngx_string("mdm_user_authenticate"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_checked_str, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, user_auth), &ngx_http_mdm_opt_user_auth},

    {ngx_string("mdm_scep"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_SCEP,
     NULL},

    {ngx_string("mdm_profile"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_PROFILE,
     NULL},

    {ngx_string("mdm_acme"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_mdm_handler_set, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MDM_ACME,
     NULL},

    /* ACME: "mdm_acme_X" is libmdm's "acme.X" */
    {ngx_string("mdm_acme_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "acme.url"},
    {ngx_string("mdm_acme_attest_ca"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "acme.attest_ca"},
    {ngx_string("mdm_acme_order_ttl"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "acme.order_ttl"},
    {ngx_string("mdm_acme_cert_ttl"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "acme.cert_ttl"},

    /* SCEP CA and enrollment profile: "mdm_scep_X" is libmdm's "scep.X",
     * "mdm_profile_X" its "profile.X" (post: the option name) */
    {ngx_string("mdm_scep_ca_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.ca_cert"},
    {ngx_string("mdm_scep_ca_key"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.ca_key"},
    {ngx_string("mdm_scep_ca_key_pass_file"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.ca_key_pass_file"},
    {ngx_string("mdm_scep_chain"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt_multi, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.chain"},
    {ngx_string("mdm_scep_ra_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.ra_cert"},
    {ngx_string("mdm_scep_ra_key"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.ra_key"},
    {ngx_string("mdm_scep_ra_key_pass_file"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.ra_key_pass_file"},
    {ngx_string("mdm_scep_validity_days"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.validity_days"},
    {ngx_string("mdm_scep_approval"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.approval"},
    {ngx_string("mdm_scep_pending_ttl"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.pending_ttl"},
    {ngx_string("mdm_scep_next_ca_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.next_ca_cert"},
    {ngx_string("mdm_store_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "store_der"},
    {ngx_string("mdm_scep_min_key_bits"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.min_key_bits"},
    {ngx_string("mdm_scep_challenge"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.challenge"},
    {ngx_string("mdm_scep_challenge_file"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.challenge_file"},
    {ngx_string("mdm_scep_challenge_ttl"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.challenge_ttl"},
    {ngx_string("mdm_scep_renewal"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.renewal"},

    {ngx_string("mdm_scep_legacy_des"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.legacy_des"},

    {ngx_string("mdm_scep_crl_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.crl_url"},

    {ngx_string("mdm_scep_crl_days"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "scep.crl_days"},

    {ngx_string("mdm_renew_days"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "renew_days"},
    {ngx_string("mdm_profile_server_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.server_url"},
    {ngx_string("mdm_profile_checkin_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.checkin_url"},
    {ngx_string("mdm_profile_topic"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.topic"},
    {ngx_string("mdm_profile_push_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.push_cert"},
    {ngx_string("mdm_profile_scep_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_url"},
    {ngx_string("mdm_profile_acme_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.acme_url"},
    {ngx_string("mdm_profile_acme_client_identifier"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0,
     "profile.acme_client_identifier"},
    {ngx_string("mdm_profile_acme_key_type"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.acme_key_type"},
    {ngx_string("mdm_profile_acme_key_size"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.acme_key_size"},
    {ngx_string("mdm_profile_acme_hardware_bound"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0,
     "profile.acme_hardware_bound"},
    {ngx_string("mdm_profile_acme_attest"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.acme_attest"},
    {ngx_string("mdm_profile_scep_name"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_name"},
    {ngx_string("mdm_profile_scep_subject"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_subject"},
    {ngx_string("mdm_profile_scep_ca"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_ca"},
    {ngx_string("mdm_profile_scep_fingerprint"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_fingerprint"},
    {ngx_string("mdm_profile_scep_challenge"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_challenge"},
    {ngx_string("mdm_profile_scep_key_size"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_key_size"},
    {ngx_string("mdm_profile_scep_key_usage"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_key_usage"},
    {ngx_string("mdm_profile_scep_retries"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_retries"},
    {ngx_string("mdm_profile_scep_retry_delay"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.scep_retry_delay"},
    {ngx_string("mdm_profile_trust_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt_multi, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.trust_cert"},
    {ngx_string("mdm_profile_organization"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.organization"},
    {ngx_string("mdm_profile_display_name"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.display_name"},
    {ngx_string("mdm_profile_description"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.description"},
    {ngx_string("mdm_profile_identifier"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.identifier"},
    {ngx_string("mdm_profile_access_rights"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.access_rights"},
    {ngx_string("mdm_profile_sign_message"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.sign_message"},
    {ngx_string("mdm_profile_check_out_when_removed"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0,
     "profile.check_out_when_removed"},
    {ngx_string("mdm_profile_use_development_apns"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0,
     "profile.use_development_apns"},
    {ngx_string("mdm_profile_server_capabilities"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0,
     "profile.server_capabilities"},
    {ngx_string("mdm_profile_sign_cert"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.sign_cert"},
    {ngx_string("mdm_profile_sign_key"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.sign_key"},
    {ngx_string("mdm_profile_sign_chain"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.sign_chain"},
    {ngx_string("mdm_profile_unsigned"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_opt, NGX_HTTP_LOC_CONF_OFFSET, 0, "profile.unsigned"},

    {ngx_string("mdm_admin_key"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_mdm_checked_str, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_mdm_loc_conf_t, admin_key), &ngx_http_mdm_opt_admin_key},

    ngx_null_command};

/* ---------------------------------------------------------------- */

void *
ngx_http_mdm_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_mdm_main_conf_t *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }
    mcf->connect_timeout = NGX_CONF_UNSET_MSEC;
    mcf->timeout = NGX_CONF_UNSET_MSEC;
    mcf->used = 0;
    return mcf;
}

char *
ngx_http_mdm_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_mdm_main_conf_t *mcf = conf;

    ngx_conf_init_msec_value(mcf->connect_timeout, 1000);
    ngx_conf_init_msec_value(mcf->timeout, 2000);
    if (mcf->redis_user.data && mcf->redis_password.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_redis_user\" needs "
                           "\"mdm_redis_password_file\"");
        return NGX_CONF_ERROR;
    }
    if (mcf->redis_wait && mcf->redis_mode == NGX_HTTP_MDM_REDIS_NONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_redis_wait\" needs \"mdm_redis\", "
                           "\"mdm_redis_sentinel\" or \"mdm_redis_cluster\"");
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

/* One Redis topology per http block: the directive that sets it. */
static char *
ngx_http_mdm_redis_mode(ngx_conf_t *cf, ngx_http_mdm_main_conf_t *mcf,
                        ngx_uint_t mode, const char *directive)
{
    if (mcf->redis_mode == mode) {
        return "is duplicate";
    }
    if (mcf->redis_mode != NGX_HTTP_MDM_REDIS_NONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" and \"%s\" are mutually exclusive: one "
                           "Redis topology per http block",
                           directive, mcf->redis_directive);
        return NGX_CONF_ERROR;
    }
    mcf->redis_mode = mode;
    mcf->redis_directive = directive;
    return NGX_CONF_OK;
}

/* ADDR: IP:PORT, [IPv6]:PORT or unix:PATH (a worker never resolves). */
static char *
ngx_http_mdm_redis_addr(ngx_conf_t *cf, const char *directive, ngx_str_t *v,
                        ngx_http_mdm_redis_addr_t *a)
{
    u_char *colon, *p;
    ngx_int_t port;
    struct in_addr a4;
    struct in6_addr a6;

    a->text.len = v->len;
    a->text.data = ngx_pnalloc(cf->pool, v->len + 1);
    if (a->text.data == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_cpystrn(a->text.data, v->data, v->len + 1);
    if (v->len > 5 && ngx_strncmp(v->data, "unix:", 5) == 0) {
        if (v->len - 5 >= 108) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": unix socket path too long in \"%V\"",
                               directive, v);
            return NGX_CONF_ERROR;
        }
        a->port = 0;
        a->host.len = v->len - 5;
        a->host.data = a->text.data + 5;
        return NGX_CONF_OK;
    }
    colon = NULL;
    for (p = v->data; p < v->data + v->len; p++) {
        if (*p == ':') {
            colon = p;
        }
    }
    if (colon == NULL || colon == v->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": expected IP:PORT or unix:PATH, "
                           "got \"%V\"",
                           directive, v);
        return NGX_CONF_ERROR;
    }
    port = ngx_atoi(colon + 1, v->data + v->len - colon - 1);
    if (port < 1 || port > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": invalid port in \"%V\"", directive, v);
        return NGX_CONF_ERROR;
    }
    a->port = port;
    p = v->data;
    if (*p == '[' && colon[-1] == ']') {
        p++;
        colon--;
    }
    a->host.len = colon - p;
    a->host.data = ngx_pnalloc(cf->pool, a->host.len + 1);
    if (a->host.data == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_cpystrn(a->host.data, p, a->host.len + 1);
    /* hiredis resolves names with a blocking getaddrinfo(): IPs only */
    if (inet_pton(AF_INET, (char *) a->host.data, &a4) != 1 &&
        inet_pton(AF_INET6, (char *) a->host.data, &a6) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": \"%V\" is not an IP address; use "
                           "an IP or unix:PATH (a worker never resolves "
                           "names)",
                           directive, &a->host);
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

static char *
ngx_http_mdm_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_main_conf_t *mcf = conf;
    ngx_str_t *value = cf->args->elts;
    char *rv;

    rv = ngx_http_mdm_redis_mode(cf, mcf, NGX_HTTP_MDM_REDIS_SINGLE,
                                 "mdm_redis");
    if (rv != NGX_CONF_OK) {
        return rv;
    }
    rv = ngx_http_mdm_redis_addr(cf, "mdm_redis", &value[1], &mcf->server);
    if (rv != NGX_CONF_OK) {
        return rv;
    }
    mcf->redis = mcf->server.text;
    (void) cmd;
    return NGX_CONF_OK;
}

/* mdm_redis_sentinel MASTER ADDR...; mdm_redis_cluster ADDR... */
static char *
ngx_http_mdm_redis_topology(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_main_conf_t *mcf = conf;
    ngx_str_t *value = cf->args->elts;
    ngx_http_mdm_redis_addr_t *a;
    const char *name = (const char *) cmd->name.data;
    ngx_uint_t i, first;
    char *rv;

    rv = ngx_http_mdm_redis_mode(cf, mcf, cmd->offset, name);
    if (rv != NGX_CONF_OK) {
        return rv;
    }
    first = 1;
    if (cmd->offset == NGX_HTTP_MDM_REDIS_SENTINEL) {
        for (i = 0; i < value[1].len; i++) {
            if (value[1].data[i] <= ' ' || value[1].data[i] == 0x7f) {
                break;
            }
        }
        if (value[1].len == 0 || i < value[1].len ||
            ngx_strlchr(value[1].data, value[1].data + value[1].len, ':')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": the first argument is the master's "
                               "name (as in sentinel.conf), got \"%V\"",
                               name, &value[1]);
            return NGX_CONF_ERROR;
        }
        mcf->sentinel_master = value[1];
        first = 2;
    }
    if (cf->args->nelts - first > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\": at most 64 addresses",
                           name);
        return NGX_CONF_ERROR;
    }
    mcf->redis_addrs = ngx_array_create(cf->pool, cf->args->nelts - first,
                                        sizeof(ngx_http_mdm_redis_addr_t));
    if (mcf->redis_addrs == NULL) {
        return NGX_CONF_ERROR;
    }
    for (i = first; i < cf->args->nelts; i++) {
        a = ngx_array_push(mcf->redis_addrs);
        if (a == NULL) {
            return NGX_CONF_ERROR;
        }
        rv = ngx_http_mdm_redis_addr(cf, name, &value[i], a);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }
    if (cmd->offset == NGX_HTTP_MDM_REDIS_SENTINEL) {
        mcf->redis.len = sizeof("master \"\" of the sentinels") - 1 +
                         mcf->sentinel_master.len;
        mcf->redis.data = ngx_pnalloc(cf->pool, mcf->redis.len);
        if (mcf->redis.data == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_sprintf(mcf->redis.data, "master \"%V\" of the sentinels",
                    &mcf->sentinel_master);
    } else {
        ngx_str_set(&mcf->redis, "the cluster");
    }
    return NGX_CONF_OK;
}

/*
 * The password: the file's first line without its line end, read now
 * (nginx -t shows what is wrong); a file others may read is a warning.
 */
static char *
ngx_http_mdm_redis_password_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_main_conf_t *mcf = conf;
    ngx_str_t *value = cf->args->elts;
    ngx_str_t path = value[1];
    char buf[1024], err[512];
    int loose;
    size_t len;

    if (mcf->redis_password_file.data) {
        return "is duplicate";
    }
    if (path.len == 0) {
        return "needs a file name";
    }
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
    mcf->redis_password_file = path;
    if (mdm_redis_read_password_file((char *) path.data, buf, sizeof(buf),
                                     &loose, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_redis_password_file\": %s", err);
        return NGX_CONF_ERROR;
    }
    if (loose) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           MDM_ID_REDIS_PWFILE_MODE
                           " \"mdm_redis_password_file\": \"%V\" can be "
                           "read by group or others (chmod 600 it)",
                           &path);
    }
    len = ngx_strlen(buf);
    mcf->redis_password.len = len;
    mcf->redis_password.data = ngx_pnalloc(cf->pool, len + 1);
    if (mcf->redis_password.data == NULL) {
        ngx_explicit_memzero(buf, sizeof(buf));
        return NGX_CONF_ERROR;
    }
    ngx_cpystrn(mcf->redis_password.data, (u_char *) buf, len + 1);
    ngx_explicit_memzero(buf, sizeof(buf));
    (void) cmd;
    return NGX_CONF_OK;
}

/* mdm_redis_wait N MS: after a plan that writes, WAIT for N replicas. */
static char *
ngx_http_mdm_redis_wait(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_main_conf_t *mcf = conf;
    ngx_str_t *value = cf->args->elts;
    ngx_int_t n, ms;

    if (mcf->redis_wait) {
        return "is duplicate";
    }
    n = ngx_atoi(value[1].data, value[1].len);
    ms = ngx_atoi(value[2].data, value[2].len);
    if (n < 1 || n > 100 || ms < 1 || ms > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_redis_wait\": expected N (replicas, 1 to "
                           "100) and MS (milliseconds, 1 to 60000), got "
                           "\"%V %V\"",
                           &value[1], &value[2]);
        return NGX_CONF_ERROR;
    }
    mcf->redis_wait = n;
    mcf->redis_wait_timeout = (ngx_msec_t) ms;
    (void) cmd;
    return NGX_CONF_OK;
}

static char *
ngx_http_mdm_handler_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *lcf = conf;
    ngx_http_core_loc_conf_t *clcf;

    if (cmd->offset == (ngx_uint_t) -1) {
        if (lcf->verify != NGX_CONF_UNSET) {
            return "is duplicate";
        }
        lcf->verify = 1;
        return NGX_CONF_OK;
    }
    if (lcf->kind != NGX_CONF_UNSET_UINT) {
        return "is duplicate: a location has one MDM handler";
    }
    lcf->kind = cmd->offset;
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    switch (lcf->kind) {
    case NGX_HTTP_MDM_ADMIN:
        clcf->handler = ngx_http_mdm_admin_handler;
        break;
    case NGX_HTTP_MDM_SCEP:
        clcf->handler = ngx_http_mdm_scep_handler;
        break;
    case NGX_HTTP_MDM_PROFILE:
        clcf->handler = ngx_http_mdm_profile_handler;
        break;
    case NGX_HTTP_MDM_METRICS:
        clcf->handler = ngx_http_mdm_metrics_handler;
        break;
    case NGX_HTTP_MDM_ACME:
        clcf->handler = ngx_http_mdm_acme_handler;
        break;
    default:
        clcf->handler = ngx_http_mdm_device_handler;
    }
    return NGX_CONF_OK;
}

/* A string whose value libmdm checks now, for a precise nginx -t error. */
static char *
ngx_http_mdm_checked_str(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_option_t *opt = cmd->post;
    ngx_str_t *value = cf->args->elts;
    ngx_str_t *field = (ngx_str_t *) ((u_char *) conf + cmd->offset);
    mdm_conf_t *tmp;
    char err[256];
    int rc;

    if (field->data) {
        return "is duplicate";
    }
    tmp = mdm_conf_new();
    if (tmp == NULL) {
        return NGX_CONF_ERROR;
    }
    rc = mdm_conf_set(tmp, opt->option, (char *) value[1].data, err,
                      sizeof(err));
    mdm_conf_free(tmp);
    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name, err);
        return NGX_CONF_ERROR;
    }
    *field = value[1];
    return NGX_CONF_OK;
}

static char *
ngx_http_mdm_identity(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *lcf = conf;
    ngx_str_t *value = cf->args->elts;
    ngx_uint_t i;
    size_t len = 0;
    u_char *p;
    mdm_conf_t *tmp;
    char err[256];
    int rc;

    if (lcf->identity.data) {
        return "is duplicate";
    }
    for (i = 1; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }
    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }
    lcf->identity.data = p;
    for (i = 1; i < cf->args->nelts; i++) {
        p = ngx_cpymem(p, value[i].data, value[i].len);
        *p++ = (i + 1 < cf->args->nelts) ? ',' : '\0';
    }
    lcf->identity.len = len - 1;
    tmp = mdm_conf_new();
    if (tmp == NULL) {
        return NGX_CONF_ERROR;
    }
    rc = mdm_conf_set(tmp, "identity", (char *) lcf->identity.data, err,
                      sizeof(err));
    mdm_conf_free(tmp);
    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name, err);
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

static char *
ngx_http_mdm_topic(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *lcf = conf;
    ngx_str_t *value = cf->args->elts, *t;
    ngx_uint_t i;
    mdm_conf_t *tmp;
    char err[256];

    if (lcf->topics == NGX_CONF_UNSET_PTR) {
        lcf->topics = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (lcf->topics == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    tmp = mdm_conf_new();
    if (tmp == NULL) {
        return NGX_CONF_ERROR;
    }
    for (i = 1; i < cf->args->nelts; i++) {
        if (mdm_conf_set(tmp, "topic", (char *) value[i].data, err,
                         sizeof(err)) != 0) {
            mdm_conf_free(tmp);
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name,
                               err);
            return NGX_CONF_ERROR;
        }
        t = ngx_array_push(lcf->topics);
        if (t == NULL) {
            mdm_conf_free(tmp);
            return NGX_CONF_ERROR;
        }
        *t = value[i];
    }
    mdm_conf_free(tmp);
    return NGX_CONF_OK;
}

/*
 * scep.* and profile.* options: kept as written, in order, and handed to
 * libmdm when the location is merged (some depend on others: a key's
 * passphrase file, a certificate's key). A location inherits each option
 * it does not set itself, so the CA set once in a server block serves the
 * SCEP, profile and admin locations below it.
 */
static char *
ngx_http_mdm_opt_add(ngx_conf_t *cf, ngx_command_t *cmd, void *conf,
                     ngx_uint_t multi)
{
    ngx_http_mdm_loc_conf_t *lcf = conf;
    ngx_str_t *value = cf->args->elts;
    ngx_keyval_t *kv;
    ngx_uint_t i;
    char *name = cmd->post;

    if (lcf->opts == NGX_CONF_UNSET_PTR) {
        lcf->opts = ngx_array_create(cf->pool, 8, sizeof(ngx_keyval_t));
        if (lcf->opts == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    kv = lcf->opts->elts;
    for (i = 0; !multi && i < lcf->opts->nelts; i++) {
        if (kv[i].key.len == ngx_strlen(name) &&
            ngx_strncmp(kv[i].key.data, name, kv[i].key.len) == 0) {
            return "is duplicate";
        }
    }
    if (value[1].len == 0) {
        return "needs a value";
    }
    kv = ngx_array_push(lcf->opts);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }
    kv->key.data = (u_char *) name;
    kv->key.len = ngx_strlen(name);
    kv->value = value[1];
    return NGX_CONF_OK;
}

static char *
ngx_http_mdm_opt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_mdm_opt_add(cf, cmd, conf, 0);
}

static char *
ngx_http_mdm_opt_multi(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_mdm_opt_add(cf, cmd, conf, 1);
}

static ngx_uint_t
ngx_http_mdm_opt_has(ngx_array_t *opts, ngx_str_t *name)
{
    ngx_keyval_t *kv;
    ngx_uint_t i;

    if (opts == NULL || opts == NGX_CONF_UNSET_PTR) {
        return 0;
    }
    kv = opts->elts;
    for (i = 0; i < opts->nelts; i++) {
        if (kv[i].key.len == name->len &&
            ngx_strncmp(kv[i].key.data, name->data, name->len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The parent's options this location does not set, then its own. */
static ngx_int_t
ngx_http_mdm_opts_merge(ngx_conf_t *cf, ngx_http_mdm_loc_conf_t *conf,
                        ngx_http_mdm_loc_conf_t *prev)
{
    ngx_array_t *merged;
    ngx_keyval_t *kv, *pkv;
    ngx_uint_t i;

    if (prev->opts == NGX_CONF_UNSET_PTR || prev->opts == NULL) {
        if (conf->opts == NGX_CONF_UNSET_PTR) {
            conf->opts = NULL;
        }
        return NGX_OK;
    }
    if (conf->opts == NGX_CONF_UNSET_PTR || conf->opts == NULL) {
        conf->opts = prev->opts;
        return NGX_OK;
    }
    merged = ngx_array_create(cf->pool, prev->opts->nelts + conf->opts->nelts,
                              sizeof(ngx_keyval_t));
    if (merged == NULL) {
        return NGX_ERROR;
    }
    pkv = prev->opts->elts;
    for (i = 0; i < prev->opts->nelts; i++) {
        if (!ngx_http_mdm_opt_has(conf->opts, &pkv[i].key)) {
            kv = ngx_array_push(merged);
            if (kv == NULL) {
                return NGX_ERROR;
            }
            *kv = pkv[i];
        }
    }
    pkv = conf->opts->elts;
    for (i = 0; i < conf->opts->nelts; i++) {
        kv = ngx_array_push(merged);
        if (kv == NULL) {
            return NGX_ERROR;
        }
        *kv = pkv[i];
    }
    conf->opts = merged;
    return NGX_OK;
}

/* ---------------------------------------------------------------- */

void *
ngx_http_mdm_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mdm_loc_conf_t *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }
    /* ngx_pcalloc leaves the ngx_str_t fields empty: unset */
    lcf->kind = NGX_CONF_UNSET_UINT;
    lcf->verify = NGX_CONF_UNSET;
    lcf->topics = NGX_CONF_UNSET_PTR;
    lcf->opts = NGX_CONF_UNSET_PTR;
    lcf->results_ttl = NGX_CONF_UNSET;
    lcf->events_maxlen = NGX_CONF_UNSET;
    return lcf;
}

char *
ngx_http_mdm_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mdm_loc_conf_t *prev = parent, *conf = child;
    ngx_http_mdm_main_conf_t *mcf;

    /* handlers belong to their own location: not inherited */
    if (conf->kind == NGX_CONF_UNSET_UINT) {
        conf->kind = NGX_HTTP_MDM_OFF;
    }
    if (conf->verify == NGX_CONF_UNSET) {
        conf->verify = 0;
    }
    ngx_conf_merge_str_value(conf->prefix, prev->prefix, "");
    ngx_conf_merge_str_value(conf->identity, prev->identity, "");
    ngx_conf_merge_str_value(conf->identity_ca, prev->identity_ca, "");
    ngx_conf_merge_str_value(conf->identity_header, prev->identity_header, "");
    ngx_conf_merge_ptr_value(conf->topics, prev->topics, NULL);
    ngx_conf_merge_str_value(conf->binding, prev->binding, "");
    ngx_conf_merge_sec_value(conf->results_ttl, prev->results_ttl, 7 * 86400);
    ngx_conf_merge_value(conf->events_maxlen, prev->events_maxlen, 100000);
    ngx_conf_merge_str_value(conf->user_auth, prev->user_auth, "");
    ngx_conf_merge_str_value(conf->admin_key, prev->admin_key, "");
    if (ngx_http_mdm_opts_merge(cf, conf, prev) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);
    if (conf->kind == NGX_HTTP_MDM_METRICS && mcf->metrics_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_metrics\" needs \"mdm_metrics_zone\" in "
                           "the http block");
        return NGX_CONF_ERROR;
    }
    if ((conf->kind == NGX_HTTP_MDM_OFF ||
         conf->kind == NGX_HTTP_MDM_METRICS) &&
        !conf->verify) {
        return NGX_CONF_OK;
    }

    /* This location answers MDM: build its libmdm configuration now, so
     * that file errors show at nginx -t. */
    if (ngx_http_mdm_conf_build(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
    if (conf->kind != NGX_HTTP_MDM_OFF && conf->kind != NGX_HTTP_MDM_METRICS) {
        if (mcf->redis_mode == NGX_HTTP_MDM_REDIS_NONE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "MDM handlers need \"mdm_redis\" (or "
                               "\"mdm_redis_sentinel\", "
                               "\"mdm_redis_cluster\") in the http block");
            return NGX_CONF_ERROR;
        }
        mcf->used = 1;
    }
    return NGX_CONF_OK;
}
