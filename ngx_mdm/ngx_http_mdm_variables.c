/*
 * ngx_mdm: $mdm_* variables, for log_format and proxy_set_header. They read
 * the transaction, which lives until the request's pool is destroyed
 * (after the log phase).
 */
#include "ngx_http_mdm.h"

static ngx_int_t ngx_http_mdm_var(ngx_http_request_t *r,
                                  ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mdm_var_client_cert(ngx_http_request_t *r,
                                              ngx_http_variable_value_t *v,
                                              uintptr_t data);

static ngx_http_variable_t ngx_http_mdm_vars[] = {
    {ngx_string("mdm_enrollment_id"), NULL, ngx_http_mdm_var,
     MDM_VAR_ENROLLMENT_ID, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_enrollment_type"), NULL, ngx_http_mdm_var,
     MDM_VAR_ENROLLMENT_TYPE, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_udid"), NULL, ngx_http_mdm_var, MDM_VAR_UDID,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_message"), NULL, ngx_http_mdm_var, MDM_VAR_MESSAGE,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_command_uuid"), NULL, ngx_http_mdm_var,
     MDM_VAR_COMMAND_UUID, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_next_command_uuid"), NULL, ngx_http_mdm_var,
     MDM_VAR_NEXT_UUID, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_cert_sha256"), NULL, ngx_http_mdm_var, MDM_VAR_CERT_SHA256,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_cert_subject"), NULL, ngx_http_mdm_var,
     MDM_VAR_CERT_SUBJECT, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_identity"), NULL, ngx_http_mdm_var, MDM_VAR_IDENTITY,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_error"), NULL, ngx_http_mdm_var, MDM_VAR_ERROR_ID,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("mdm_client_cert"), NULL, ngx_http_mdm_var_client_cert, 0,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    ngx_http_null_variable};

ngx_int_t
ngx_http_mdm_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t *var, *v;

    for (v = ngx_http_mdm_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}

static ngx_int_t
ngx_http_mdm_var(ngx_http_request_t *r, ngx_http_variable_value_t *v,
                 uintptr_t data)
{
    ngx_http_mdm_ctx_t *ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    const char *s = ctx && ctx->req ? mdm_req_var(ctx->req, data) : NULL;

    if (s == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }
    v->data = (u_char *) s;
    v->len = ngx_strlen(s);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}

static ngx_int_t
ngx_http_mdm_var_client_cert(ngx_http_request_t *r,
                             ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_mdm_ctx_t *ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    char *s;
    size_t len;

    (void) data;
    s = ctx && ctx->req ? mdm_req_cert_rfc9440(ctx->req) : NULL;
    if (s == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }
    len = ngx_strlen(s);
    v->data = ngx_pnalloc(r->pool, len);
    if (v->data == NULL) {
        free(s);
        return NGX_ERROR;
    }
    ngx_memcpy(v->data, s, len);
    free(s);
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}
