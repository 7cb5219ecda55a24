/*
 * ngx_mdm: a location's libmdm configuration, built from its merged
 * directives while the configuration is read, so that `nginx -t` shows
 * what libmdm refuses and names the directive at fault.
 */
#include "ngx_http_mdm.h"

/*
 * libmdm's messages start with the option they are about ("scep.ca_key:
 * ..."): name the directive instead, "mdm_scep_ca_key".
 */
static void
ngx_http_mdm_conf_error(ngx_conf_t *cf, const char *fallback, const char *err)
{
    u_char name[64], *p;
    size_t n;

    for (n = 0; err[n] && err[n] != ':' && err[n] != ' '; n++) {
        /* void */
    }
    if ((ngx_strncmp(err, "scep.", 5) == 0 ||
         ngx_strncmp(err, "profile.", 8) == 0 ||
         ngx_strncmp(err, "acme.", 5) == 0) &&
        n + 4 < sizeof(name) && err[n] == ':') {
        p = ngx_cpymem(name, "mdm_", 4);
        for (; *err != ':'; err++) {
            *p++ = *err == '.' ? '_' : *err;
        }
        *p = '\0';
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\"%s", name, err);
        return;
    }
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\": %s", fallback, err);
}

static void
ngx_http_mdm_cleanup_conf(void *data)
{
    mdm_conf_free(data);
}

static ngx_int_t
ngx_http_mdm_set(ngx_conf_t *cf, mdm_conf_t *m, const char *directive,
                 const char *option, ngx_str_t *v)
{
    char err[512];

    if (v->data == NULL) {
        return NGX_OK;
    }
    if (mdm_conf_set(m, option, (char *) v->data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\": %s", directive, err);
        return NGX_ERROR;
    }
    return NGX_OK;
}

ngx_int_t
ngx_http_mdm_conf_build(ngx_conf_t *cf, ngx_http_mdm_loc_conf_t *conf)
{
    ngx_pool_cleanup_t *cln;
    ngx_str_t *t, num;
    u_char buf[32];
    char err[512];
    ngx_uint_t i;
    mdm_conf_t *m;

    m = mdm_conf_new();
    if (m == NULL) {
        return NGX_ERROR;
    }
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        mdm_conf_free(m);
        return NGX_ERROR;
    }
    cln->handler = ngx_http_mdm_cleanup_conf;
    cln->data = m;
    conf->mdm = m;

#define SET(d, o, v)                                                           \
    if (v.len && ngx_http_mdm_set(cf, m, d, o, &v) != NGX_OK) {                \
        return NGX_ERROR;                                                      \
    }
    SET("mdm_prefix", "prefix", conf->prefix);
    if (conf->kind == NGX_HTTP_MDM_ADMIN || conf->kind == NGX_HTTP_MDM_SCEP ||
        conf->kind == NGX_HTTP_MDM_PROFILE || conf->kind == NGX_HTTP_MDM_ACME) {
        /* the admin API and enrollment do not identify enrolled devices */
        ngx_str_t none = ngx_string("none"), off = ngx_string("off");

        SET("mdm_identity", "identity", none);
        SET("mdm_binding", "binding", off);
    } else {
        SET("mdm_identity", "identity", conf->identity);
        SET("mdm_identity_ca", "ca_file", conf->identity_ca);
        SET("mdm_binding", "binding", conf->binding);
    }
    SET("mdm_user_authenticate", "user_auth", conf->user_auth);
    SET("mdm_admin_key", "admin_key", conf->admin_key);
    if (conf->topics) {
        t = conf->topics->elts;
        for (i = 0; i < conf->topics->nelts; i++) {
            SET("mdm_topic", "topic", t[i]);
        }
    }
    num.data = buf;
    num.len = ngx_sprintf(buf, "%T%Z", conf->results_ttl) - buf - 1;
    SET("mdm_results_ttl", "results_ttl", num);
    num.len = ngx_sprintf(buf, "%i%Z", conf->events_maxlen) - buf - 1;
    SET("mdm_events_maxlen", "events_maxlen", num);
#undef SET

    if (conf->opts) {
        ngx_keyval_t *kv = conf->opts->elts;

        for (i = 0; i < conf->opts->nelts; i++) {
            if (mdm_conf_set(m, (char *) kv[i].key.data,
                             (char *) kv[i].value.data, err,
                             sizeof(err)) != 0) {
                ngx_http_mdm_conf_error(cf, "mdm", err);
                return NGX_ERROR;
            }
        }
    }

    if (conf->kind <= NGX_HTTP_MDM_SERVER &&
        ngx_strstr(conf->identity.len ? (char *) conf->identity.data
                                      : "signature,tls",
                   "header") &&
        conf->identity_header.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_identity header\" needs "
                           "\"mdm_identity_header\" (the header name)");
        return NGX_ERROR;
    }
    if (mdm_conf_finish(m, err, sizeof(err)) != 0) {
        /* a SCEP or profile message names its option (handled there);
         * otherwise only the identity CA is loaded at finish */
        ngx_http_mdm_conf_error(
            cf,
            ngx_strncmp(err, "scep", 4) == 0                 ? "mdm_scep"
            : ngx_strncmp(err, "profile", 7) == 0            ? "mdm_profile"
            : ngx_strncmp(err, "acme", 4) == 0               ? "mdm_acme"
            : ngx_strstr(err, "CA") || ngx_strstr(err, "ca") ? "mdm_identity_ca"
                                                             : "mdm",
            err);
        return NGX_ERROR;
    }
    if (conf->kind == NGX_HTTP_MDM_SCEP && !mdm_conf_can(m, MDM_CAN_SCEP)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_scep\" needs a CA: \"mdm_scep_ca_cert\", "
                           "\"mdm_scep_ca_key\" and \"mdm_scep_challenge\"");
        return NGX_ERROR;
    }
    if (conf->kind == NGX_HTTP_MDM_ACME && !mdm_conf_can(m, MDM_CAN_ACME)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_acme\" needs \"mdm_acme_url\", "
                           "\"mdm_acme_attest_ca\" and a SCEP CA to sign "
                           "with (\"mdm_scep_ca_cert\", "
                           "\"mdm_scep_ca_key\", \"mdm_scep_challenge\")");
        return NGX_ERROR;
    }
    if (conf->kind == NGX_HTTP_MDM_PROFILE &&
        !mdm_conf_can(m, MDM_CAN_PROFILE)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mdm_profile\" needs "
                           "\"mdm_profile_server_url\", "
                           "\"mdm_profile_scep_url\" and a signing "
                           "certificate (or \"mdm_profile_unsigned on\")");
        return NGX_ERROR;
    }
    return NGX_OK;
}
