/*
 * mod_mdm: libmdm configurations from the directives' records. All are
 * checked once at startup (check_config, so that apachectl -t fails), and
 * each is built once per process, the first time a request needs it.
 */
#include "mod_mdm.h"

#include "http_core.h"
#include "http_log.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

APLOG_USE_MODULE(mdm);

/* Apply d's scep.* and profile.* options to c; -1 with err on failure. */
static int
mdm_apply_opts(mdm_conf_t *c, const mdm_dir_conf_t *d, char *err, size_t errlen)
{
    int i;

    for (i = 0; d->opts && i < d->opts->nelts; i++) {
        mdm_opt_t *o = &APR_ARRAY_IDX(d->opts, i, mdm_opt_t);

        if (mdm_conf_set(c, o->name, o->value, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* the startup check                                                */

/*
 * Incomplete configurations fail apachectl -t here (check_config runs
 * before the syntax test ends), as they fail nginx -t: a section with an
 * MDM handler or MDMVerify needs an identity CA (unless identity is
 * "none"), a header name for header identity, and MDMRedis for handlers.
 * Sections are not merged with their parents until a request comes, so
 * the check merges main server -> virtual host -> section itself.
 */
/*
 * SetHandler is an expression in httpd 2.4 that cannot be read here, so a
 * scope counts as an MDM endpoint by its MDM settings: device identity
 * settings need a CA (and a header name for header identity); any MDM
 * setting outside a pure MDMVerify scope needs MDMRedis.
 */
static const char *
mdm_check_section(const mdm_dir_conf_t *d, int redis, const char *where,
                  apr_pool_t *p)
{
    int device = d->identity || d->topics || d->binding || d->identity_header ||
                 d->verify == 1;
    int any = device || d->admin_key || d->prefix || d->results_ttl ||
              d->events_maxlen || d->user_auth || d->opts;

    if (any && d->verify != 1 && !redis) {
        return apr_psprintf(p, "%s: MDM settings without MDMRedis", where);
    }
    if (d->opts) {
        /* the SCEP CA and profile files load now, as they will in a child */
        mdm_conf_t *c = mdm_conf_new();
        char err[512];
        int bad;

        if (c == NULL) {
            return "out of memory";
        }
        bad = mdm_conf_set(c, "identity", "none", err, sizeof(err)) != 0 ||
              mdm_conf_set(c, "binding", "off", err, sizeof(err)) != 0 ||
              mdm_apply_opts(c, d, err, sizeof(err)) != 0 ||
              mdm_conf_finish(c, err, sizeof(err)) != 0;
        mdm_conf_free(c);
        if (bad) {
            return apr_psprintf(p, "%s: %s", where, mdm_opt_error(p, err));
        }
    }
    if (!device || (d->identity && strcmp(d->identity, "none") == 0)) {
        return NULL;
    }
    if (d->identity_ca == NULL) {
        return apr_psprintf(p, "%s: MDM endpoints need MDMIdentityCA", where);
    }
    if (d->identity && strstr(d->identity, "header") &&
        d->identity_header == NULL) {
        return apr_psprintf(p,
                            "%s: \"MDMIdentity header\" needs "
                            "MDMIdentityHeader (the header name)",
                            where);
    }
    return NULL;
}

/* where a virtual host was defined: "FILE:LINE" (the main server has none) */
static const char *
mdm_vhost_where(const server_rec *vs, apr_pool_t *p)
{
    if (vs->defn_name == NULL) {
        return "main server";
    }
    return apr_psprintf(p, "%s:%d", vs->defn_name, vs->defn_line_number);
}

static const char *
mdm_check_sections(server_rec *vs, apr_array_header_t *secs,
                   mdm_dir_conf_t *vdef, int redis, apr_pool_t *p)
{
    ap_conf_vector_t **sec = (ap_conf_vector_t **) secs->elts;
    const char *err;
    int i;

    for (i = 0; i < secs->nelts; i++) {
        core_dir_config *cd = ap_get_core_module_config(sec[i]);
        mdm_dir_conf_t *own = ap_get_module_config(sec[i], &mdm_module);
        /* no MDM directive in the section: httpd made no record for us */
        mdm_dir_conf_t *d = own ? mdm_merge_dir_conf(p, vdef, own) : vdef;

        err = mdm_check_section(d, redis,
                                apr_psprintf(p, "%s: section %s",
                                             mdm_vhost_where(vs, p),
                                             cd->d ? cd->d : "?"),
                                p);
        if (err) {
            return err;
        }
    }
    return NULL;
}

int
mdm_check_config(apr_pool_t *p, apr_pool_t *plog, apr_pool_t *ptemp,
                 server_rec *s)
{
    mdm_srv_conf_t *main_sc =
        ap_get_module_config(s->module_config, &mdm_module);
    mdm_dir_conf_t *base =
        ap_get_module_config(s->lookup_defaults, &mdm_module);
    server_rec *vs;
    core_server_config *cs;
    mdm_dir_conf_t *vdef;
    const char *err = NULL;
    int redis;

    (void) p;
    (void) plog;
    for (vs = s; vs && err == NULL; vs = vs->next) {
        mdm_srv_conf_t *sc =
            ap_get_module_config(vs->module_config, &mdm_module);

        redis = sc->redis != NULL || main_sc->redis != NULL;
        vdef = ap_get_module_config(vs->lookup_defaults, &mdm_module);
        vdef = vs == s || vdef == NULL ? base
                                       : mdm_merge_dir_conf(ptemp, base, vdef);
        err = mdm_check_section(
            vdef, redis,
            apr_psprintf(ptemp, "%s: server %s", mdm_vhost_where(vs, ptemp),
                         vs->server_hostname ? vs->server_hostname : ""),
            ptemp);
        cs = ap_get_core_module_config(vs->module_config);
        if (err == NULL) {
            err = mdm_check_sections(vs, cs->sec_url, vdef, redis, ptemp);
        }
        if (err == NULL) {
            err = mdm_check_sections(vs, cs->sec_dir, vdef, redis, ptemp);
        }
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "MDM07006 %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* ---------------------------------------------------------------- */
/* one libmdm configuration per set of settings, per process        */

static apr_hash_t *mdm_confs;
static apr_thread_mutex_t *mdm_confs_lock;
static apr_pool_t *mdm_confs_pool;

void
mdm_confs_init(apr_pool_t *p)
{
    if (mdm_confs == NULL) {
        mdm_confs_pool = p;
        mdm_confs = apr_hash_make(p);
        apr_thread_mutex_create(&mdm_confs_lock, APR_THREAD_MUTEX_DEFAULT, p);
    }
}

static apr_status_t
mdm_conf_cleanup(void *data)
{
    mdm_conf_free(data);
    return APR_SUCCESS;
}

/*
 * <Location> sections are merged per request, so the CA file and the
 * caches cannot live in the merged record: they are built the first time
 * a set of settings is seen in this process, and kept. Values were all
 * checked when the configuration was read.
 */
const mdm_conf_t *
mdm_dir_mdm_conf(request_rec *r, const mdm_dir_conf_t *d, mdm_kind_t kind)
{
    const char *key, *topics = "", *opts = "";
    int admin = kind != MDM_KIND_DEVICE;
    mdm_conf_t *c;
    char err[512];
    int i, bad = 0;

    if (d->topics) {
        topics = apr_array_pstrcat(r->pool, d->topics, ' ');
    }
    for (i = 0; d->opts && i < d->opts->nelts; i++) {
        mdm_opt_t *o = &APR_ARRAY_IDX(d->opts, i, mdm_opt_t);

        opts = apr_pstrcat(r->pool, opts, "|", o->name, "=", o->value, NULL);
    }
    key = apr_pstrcat(
        r->pool, opts, "|", admin ? "A" : "D", "|", d->prefix ? d->prefix : "",
        "|", d->identity ? d->identity : "", "|",
        d->identity_ca ? d->identity_ca : "", "|", topics, "|",
        d->binding ? d->binding : "", "|", d->results_ttl ? d->results_ttl : "",
        "|", d->events_maxlen ? d->events_maxlen : "", "|",
        d->user_auth ? d->user_auth : "", "|", d->admin_key ? d->admin_key : "",
        NULL);
    if (mdm_confs == NULL) {
        return NULL;
    }
    apr_thread_mutex_lock(mdm_confs_lock);
    c = apr_hash_get(mdm_confs, key, APR_HASH_KEY_STRING);
    if (c == NULL) {
        c = mdm_conf_new();
#define SET(o, v)                                                              \
    if (!bad && (v) && mdm_conf_set(c, o, v, err, sizeof(err)) != 0) {         \
        bad = 1;                                                               \
    }
        SET("prefix", d->prefix);
        if (admin) {
            SET("identity", "none");
            SET("binding", "off");
        } else {
            SET("identity", d->identity);
            SET("ca_file", d->identity_ca);
            SET("binding", d->binding);
        }
        for (i = 0; d->topics && i < d->topics->nelts; i++) {
            SET("topic", APR_ARRAY_IDX(d->topics, i, const char *));
        }
        SET("results_ttl", d->results_ttl);
        SET("events_maxlen", d->events_maxlen);
        SET("user_auth", d->user_auth);
        SET("admin_key", d->admin_key);
#undef SET
        if (!bad && mdm_apply_opts(c, d, err, sizeof(err)) != 0) {
            bad = 1;
        }
        if (bad || mdm_conf_finish(c, err, sizeof(err)) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "MDM07003 MDM configuration of %s: %s",
                          d->location ? d->location : "?",
                          mdm_opt_error(r->pool, err));
            mdm_conf_free(c);
            apr_thread_mutex_unlock(mdm_confs_lock);
            return NULL;
        }
        apr_hash_set(mdm_confs, apr_pstrdup(mdm_confs_pool, key),
                     APR_HASH_KEY_STRING, c);
        apr_pool_cleanup_register(mdm_confs_pool, c, mdm_conf_cleanup,
                                  apr_pool_cleanup_null);
    }
    apr_thread_mutex_unlock(mdm_confs_lock);
    return c;
}
