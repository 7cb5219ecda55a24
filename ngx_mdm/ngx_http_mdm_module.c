/*
 * ngx_mdm: the module definition and its hooks. The directives are in
 * ngx_http_mdm_directives.c, the libmdm configurations built from them in
 * ngx_http_mdm_conf.c, the handlers in ngx_http_mdm_handler.c.
 */
#include "ngx_http_mdm.h"

static ngx_int_t ngx_http_mdm_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_mdm_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_mdm_init_process(ngx_cycle_t *cycle);
static void ngx_http_mdm_exit_process(ngx_cycle_t *cycle);

static ngx_http_module_t ngx_http_mdm_module_ctx = {
    ngx_http_mdm_preconfiguration,  /* preconfiguration */
    ngx_http_mdm_postconfiguration, /* postconfiguration */
    ngx_http_mdm_create_main_conf,  /* create main configuration */
    ngx_http_mdm_init_main_conf,    /* init main configuration */
    NULL,                           /* create server configuration */
    NULL,                           /* merge server configuration */
    ngx_http_mdm_create_loc_conf,   /* create location configuration */
    ngx_http_mdm_merge_loc_conf     /* merge location configuration */
};

ngx_module_t ngx_http_mdm_module = {NGX_MODULE_V1,
                                    &ngx_http_mdm_module_ctx,
                                    ngx_http_mdm_commands,
                                    NGX_HTTP_MODULE,
                                    NULL,
                                    NULL,
                                    ngx_http_mdm_init_process,
                                    NULL,
                                    NULL,
                                    ngx_http_mdm_exit_process,
                                    NULL,
                                    NGX_MODULE_V1_PADDING};

/* ---------------------------------------------------------------- */

static ngx_int_t
ngx_http_mdm_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_mdm_add_variables(cf);
}

static ngx_int_t
ngx_http_mdm_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt *h;
    ngx_http_core_main_conf_t *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_mdm_access_handler;
    return ngx_http_mdm_metrics_init(cf);
}

static ngx_int_t
ngx_http_mdm_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_mdm_redis_init_process(cycle);
}

static void
ngx_http_mdm_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_mdm_redis_exit_process(cycle);
}
