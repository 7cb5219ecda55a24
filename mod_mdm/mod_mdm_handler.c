/*
 * mod_mdm: handlers. Read the body once, hand it to libmdm, run its Redis
 * plan on a pooled connection, send what libmdm answers.
 */
#include "mod_mdm.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_filter.h"
#include "apr_strings.h"

APLOG_USE_MODULE(mdm);

#define MDM_REPLAY_FILTER "MDM_REPLAY"

/* ---------------------------------------------------------------- */

static void
mdm_log(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    request_rec *r = data;
    int lvl;

    switch (level) {
    case MDM_LOG_ERR:
        lvl = APLOG_ERR;
        break;
    case MDM_LOG_WARN:
        lvl = APLOG_WARNING;
        break;
    case MDM_LOG_NOTICE:
        lvl = APLOG_NOTICE;
        break;
    case MDM_LOG_INFO:
        lvl = APLOG_INFO;
        break;
    default:
        lvl = APLOG_DEBUG;
        break;
    }
    ap_log_rerror(APLOG_MARK, lvl, 0, r, "%s %s", id, msg);
}

/* A refusal of the module's own: its id for the log and the metrics. */
static void
mdm_refused(request_rec *r, const char *id)
{
    apr_table_setn(r->notes, "MDM_ERROR", id);
    apr_table_setn(r->subprocess_env, "MDM_ERROR", id);
}

static apr_status_t
mdm_req_cleanup(void *data)
{
    mdm_req_free(data);
    return APR_SUCCESS;
}

/* The body, read once, as a brigade (kept for a proxy) and flat bytes. */
static int
mdm_read_body(request_rec *r, apr_bucket_brigade **keep, char **buf,
              apr_size_t *len)
{
    apr_bucket_brigade *bb, *kb;
    apr_bucket *b;
    apr_status_t rv;
    apr_off_t total, got, limit;
    int seen_eos = 0, rc;

    rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc != OK) {
        return rc;
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    kb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    limit = ap_get_limit_req_body(r);
    total = 0;
    do {
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        /* the HTTP input filter leaves the limit to us on proxied
         * requests, and chunked bodies announce no length: count */
        apr_brigade_length(bb, 1, &got);
        total += got;
        if (limit > 0 && total > limit) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "MDM07005 request body larger than "
                          "LimitRequestBody (%" APR_OFF_T_FMT " bytes)",
                          limit);
            mdm_refused(r, "MDM07005");
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
        while (!APR_BRIGADE_EMPTY(bb)) {
            b = APR_BRIGADE_FIRST(bb);
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
            }
            if (apr_bucket_setaside(b, r->pool) != APR_SUCCESS) {
                const char *data;
                apr_size_t n;

                /* buckets that cannot be set aside are read first */
                apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
                apr_bucket_setaside(b, r->pool);
            }
            APR_BUCKET_REMOVE(b);
            APR_BRIGADE_INSERT_TAIL(kb, b);
        }
    } while (!seen_eos);
    apr_brigade_length(kb, 1, &total);
    *len = (apr_size_t) total;
    if (apr_brigade_pflatten(kb, buf, len, r->pool) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (keep) {
        *keep = kb;
    }
    return OK;
}

static void
mdm_identity_input(request_rec *r, const mdm_dir_conf_t *d, mdm_req_t *req)
{
    const char *v;

    v = apr_table_get(r->headers_in, "Mdm-Signature");
    if (v) {
        mdm_req_set_signature(req, v, strlen(v));
    }
    if (d->identity_header) {
        v = apr_table_get(r->headers_in, d->identity_header);
        if (v) {
            mdm_req_set_cert_header(req, v, strlen(v));
        }
    }
    v = ap_ssl_var_lookup(r->pool, r->server, r->connection, r,
                          "SSL_CLIENT_CERT");
    if (v && *v) {
        mdm_req_set_tls_cert(req, (const unsigned char *) v, strlen(v));
    }
    v = apr_table_get(r->headers_in, "Content-Type");
    if (v) {
        mdm_req_set_content_type(req, v, strlen(v));
    }
    mdm_req_set_logger(req, mdm_log, r);
}

/* $mdm_* of nginx: request notes and environment, same values. */
static void
mdm_export(request_rec *r, mdm_req_t *req)
{
    static const struct {
        mdm_var_t var;
        const char *name;
    } vars[] = {
        {MDM_VAR_ENROLLMENT_ID, "MDM_ENROLLMENT_ID"},
        {MDM_VAR_ENROLLMENT_TYPE, "MDM_ENROLLMENT_TYPE"},
        {MDM_VAR_UDID, "MDM_UDID"},
        {MDM_VAR_MESSAGE, "MDM_MESSAGE"},
        {MDM_VAR_COMMAND_UUID, "MDM_COMMAND_UUID"},
        {MDM_VAR_NEXT_UUID, "MDM_NEXT_COMMAND_UUID"},
        {MDM_VAR_CERT_SHA256, "MDM_CERT_SHA256"},
        {MDM_VAR_CERT_SUBJECT, "MDM_CERT_SUBJECT"},
        {MDM_VAR_IDENTITY, "MDM_IDENTITY"},
        {MDM_VAR_ERROR_ID, "MDM_ERROR"},
    };
    const char *v;
    char *cert;
    size_t i;

    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        v = mdm_req_var(req, vars[i].var);
        if (v) {
            v = apr_pstrdup(r->pool, v);
            apr_table_setn(r->notes, vars[i].name, v);
            apr_table_setn(r->subprocess_env, vars[i].name, v);
        }
    }
    cert = mdm_req_cert_rfc9440(req);
    if (cert) {
        v = apr_pstrdup(r->pool, cert);
        free(cert);
        apr_table_setn(r->notes, "MDM_CLIENT_CERT", v);
        apr_table_setn(r->subprocess_env, "MDM_CLIENT_CERT", v);
    }
}

static int
mdm_respond(request_rec *r, mdm_req_t *req)
{
    const mdm_response_t *resp = mdm_req_response(req);
    size_t i;

    mdm_export(r, req);
    r->status = resp->status;
    if (resp->retry_after) {
        apr_table_setn(r->headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%u", resp->retry_after));
    }
    if (resp->no_store) {
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    }
    for (i = 0; i < resp->nhdrs; i++) {
        apr_table_add(r->headers_out, resp->hdr_names[i], resp->hdr_values[i]);
    }
    if (resp->content_type) {
        ap_set_content_type(r, apr_pstrdup(r->pool, resp->content_type));
    }
    ap_set_content_length(r, (apr_off_t) resp->body_len);
    if (resp->body_len && !r->header_only) {
        ap_rwrite(resp->body, (int) resp->body_len, r);
    }
    return OK;
}

/* ---------------------------------------------------------------- */
/* handlers                                                         */

/* SetHandler mdm-scep (GET, POST) and mdm-profile (GET) */
static int
mdm_enroll_handler(request_rec *r, int scep)
{
    mdm_dir_conf_t *d;
    const mdm_conf_t *conf;
    mdm_req_t *req;
    char *body = NULL;
    apr_size_t len = 0;
    int rc;

    if (scep) {
        r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
        if (r->method_number != M_GET && r->method_number != M_POST) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "MDM06002 method %s not allowed on a SCEP "
                          "endpoint (GET or POST)",
                          r->method);
            mdm_refused(r, "MDM06002");
            return HTTP_METHOD_NOT_ALLOWED;
        }
    } else {
        r->allowed = AP_METHOD_BIT << M_GET;
        if (r->method_number != M_GET) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "MDM06003 method %s not allowed on the enrollment "
                          "profile (GET)",
                          r->method);
            mdm_refused(r, "MDM06003");
            return HTTP_METHOD_NOT_ALLOWED;
        }
    }
    d = ap_get_module_config(r->per_dir_config, &mdm_module);
    conf = mdm_dir_mdm_conf(r, d, MDM_KIND_ENROLL);
    if (conf == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!mdm_conf_can(conf, scep ? MDM_CAN_SCEP : MDM_CAN_PROFILE)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "MDM07007 %s: SetHandler %s without %s", d->location,
                      r->handler,
                      scep ? "MDMSCEPCACert, MDMSCEPCAKey and "
                             "MDMSCEPChallenge"
                           : "MDMProfileServerURL, MDMProfileSCEPURL and "
                             "a signing certificate (or MDMProfileUnsigned "
                             "on)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (scep) {
        rc = mdm_read_body(r, NULL, &body, &len);
        if (rc != OK) {
            return rc;
        }
        req = mdm_req_new_scep_http(conf, r->method, strlen(r->method), r->args,
                                    r->args ? strlen(r->args) : 0,
                                    (const unsigned char *) body, len);
    } else {
        rc = ap_discard_request_body(r);
        if (rc != OK) {
            return rc;
        }
        req = mdm_req_new_profile(conf);
    }
    if (req == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(r->pool, req, mdm_req_cleanup,
                              apr_pool_cleanup_null);
    mdm_req_set_logger(req, mdm_log, r);
    if (mdm_req_start(req) == MDM_STEP_REDIS) {
        mdm_redis_run(r, req);
    }
    return mdm_respond(r, req);
}

/* SetHandler mdm-acme: RFC 8555 with device-attest-01 */
static int
mdm_acme_handler(request_rec *r)
{
    mdm_dir_conf_t *d;
    const mdm_conf_t *conf;
    mdm_req_t *req;
    const char *path, *ct;
    char *body = NULL;
    apr_size_t len = 0;
    int rc;

    r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
    if (r->method_number != M_GET && r->method_number != M_POST) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "MDM15001 method %s not allowed on an ACME endpoint",
                      r->method);
        mdm_refused(r, "MDM15001");
        return HTTP_METHOD_NOT_ALLOWED;
    }
    d = ap_get_module_config(r->per_dir_config, &mdm_module);
    conf = mdm_dir_mdm_conf(r, d, MDM_KIND_ENROLL);
    if (conf == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!mdm_conf_can(conf, MDM_CAN_ACME)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "MDM07007 %s: SetHandler mdm-acme without MDMACMEURL, "
                      "MDMACMEAttestCA and a SCEP CA (MDMSCEPCACert, "
                      "MDMSCEPCAKey, MDMSCEPChallenge)",
                      d->location);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = mdm_read_body(r, NULL, &body, &len);
    if (rc != OK) {
        return rc;
    }
    /* the path after the <Location> prefix */
    path = r->uri;
    if (d->location && strncmp(path, d->location, strlen(d->location)) == 0) {
        path += strlen(d->location);
    }
    req =
        mdm_req_new_acme_http(conf, r->method, strlen(r->method), path,
                              strlen(path), (const unsigned char *) body, len);
    if (req == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(r->pool, req, mdm_req_cleanup,
                              apr_pool_cleanup_null);
    ct = apr_table_get(r->headers_in, "Content-Type");
    if (ct) {
        mdm_req_set_content_type(req, ct, strlen(ct));
    }
    mdm_req_set_logger(req, mdm_log, r);
    if (mdm_req_start(req) == MDM_STEP_REDIS) {
        mdm_redis_run(r, req);
    }
    return mdm_respond(r, req);
}

int
mdm_handler(request_rec *r)
{
    mdm_dir_conf_t *d;
    const mdm_conf_t *conf;
    mdm_req_t *req;
    mdm_endpoint_t ep = MDM_EP_ANY;
    const char *key, *path;
    char *body;
    apr_size_t len;
    int admin, rc;

    if (r->handler == NULL || strncmp(r->handler, "mdm-", 4) != 0) {
        return DECLINED;
    }
    if (strcmp(r->handler, "mdm-scep") == 0 ||
        strcmp(r->handler, "mdm-profile") == 0) {
        return mdm_enroll_handler(r, r->handler[4] == 's');
    }
    if (strcmp(r->handler, "mdm-acme") == 0) {
        return mdm_acme_handler(r);
    }
    admin = strcmp(r->handler, "mdm-admin") == 0;
    if (strcmp(r->handler, "mdm-checkin") == 0) {
        ep = MDM_EP_CHECKIN;
    } else if (strcmp(r->handler, "mdm-command") == 0) {
        ep = MDM_EP_COMMAND;
    } else if (!admin && strcmp(r->handler, "mdm-server") != 0) {
        return DECLINED;
    }
    if (admin) {
        r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST) |
                     (AP_METHOD_BIT << M_DELETE);
        if (r->method_number != M_GET && r->method_number != M_POST &&
            r->method_number != M_DELETE) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "MDM05011 method %s not allowed on the admin API",
                          r->method);
            mdm_refused(r, "MDM05011");
            return HTTP_METHOD_NOT_ALLOWED;
        }
    } else {
        r->allowed = AP_METHOD_BIT << M_PUT;
        if (r->method_number != M_PUT) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "MDM06001 method %s not allowed on an MDM endpoint "
                          "(devices use PUT)",
                          r->method);
            mdm_refused(r, "MDM06001");
            return HTTP_METHOD_NOT_ALLOWED;
        }
    }
    d = ap_get_module_config(r->per_dir_config, &mdm_module);
    conf = mdm_dir_mdm_conf(r, d, admin ? MDM_KIND_ADMIN : MDM_KIND_DEVICE);
    if (conf == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = mdm_read_body(r, NULL, &body, &len);
    if (rc != OK) {
        return rc;
    }

    if (admin) {
        key = apr_table_get(r->headers_in, "X-API-Key");
        if (!mdm_conf_admin_key_ok(conf, key, key ? strlen(key) : 0)) {
            static const char msg[] = "{\"error\":\"missing or wrong "
                                      "X-API-Key\",\"id\":\"MDM05012\"}";

            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "MDM05012 admin API call with a %s X-API-Key",
                          key ? "wrong" : "missing");
            mdm_refused(r, "MDM05012");
            r->status = HTTP_FORBIDDEN;
            ap_set_content_type(r, "application/json");
            ap_set_content_length(r, sizeof(msg) - 1);
            ap_rwrite(msg, sizeof(msg) - 1, r);
            return OK;
        }
        /* the path after the <Location> prefix */
        path = r->uri;
        if (d->location &&
            strncmp(path, d->location, strlen(d->location)) == 0) {
            path += strlen(d->location);
        }
        req = mdm_req_new_admin_http(
            conf, r->method, strlen(r->method), path, strlen(path), r->args,
            r->args ? strlen(r->args) : 0, (const unsigned char *) body, len);
        if (req == NULL) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        mdm_req_set_logger(req, mdm_log, r);
    } else {
        req = mdm_req_new(conf, ep);
        if (req == NULL) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        mdm_req_set_body(req, (const unsigned char *) body, len);
        mdm_identity_input(r, d, req);
    }
    apr_pool_cleanup_register(r->pool, req, mdm_req_cleanup,
                              apr_pool_cleanup_null);
    if (mdm_req_start(req) == MDM_STEP_REDIS) {
        mdm_redis_run(r, req);
    }
    if (!admin) {
        mdm_metrics_identity(conf);
    }
    return mdm_respond(r, req);
}

/* ---------------------------------------------------------------- */
/* verifying proxy                                                  */

/* Gives the body read by the fixup to whoever reads it next (mod_proxy). */
static apr_status_t
mdm_replay_filter(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                  apr_read_type_e block, apr_off_t readbytes)
{
    apr_bucket_brigade *kept = f->ctx;
    apr_status_t rv;

    if (mode != AP_MODE_READBYTES && mode != AP_MODE_SPECULATIVE &&
        mode != AP_MODE_EXHAUSTIVE) {
        return APR_ENOTIMPL;
    }
    if (kept == NULL || APR_BRIGADE_EMPTY(kept)) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
        return APR_SUCCESS;
    }
    if (mode == AP_MODE_EXHAUSTIVE || readbytes <= 0) {
        APR_BRIGADE_CONCAT(bb, kept);
        return APR_SUCCESS;
    }
    {
        apr_bucket *split;

        rv = apr_brigade_partition(kept, readbytes, &split);
        if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
            return rv;
        }
        while (!APR_BRIGADE_EMPTY(kept) && APR_BRIGADE_FIRST(kept) != split) {
            apr_bucket *b = APR_BRIGADE_FIRST(kept);

            APR_BUCKET_REMOVE(b);
            APR_BRIGADE_INSERT_TAIL(bb, b);
        }
        if (split && split != APR_BRIGADE_SENTINEL(kept) &&
            APR_BUCKET_IS_EOS(split)) {
            APR_BUCKET_REMOVE(split);
            APR_BRIGADE_INSERT_TAIL(bb, split);
        }
    }
    (void) block;
    return APR_SUCCESS;
}

void
mdm_register_filters(void)
{
    ap_register_input_filter(MDM_REPLAY_FILTER, mdm_replay_filter, NULL,
                             AP_FTYPE_RESOURCE);
}

int
mdm_verify_fixup(request_rec *r)
{
    mdm_dir_conf_t *d;
    const mdm_conf_t *conf;
    apr_bucket_brigade *kept;
    mdm_req_t *req;
    char *body;
    apr_size_t len;
    int rc;

    if (!ap_is_initial_req(r)) {
        return DECLINED;
    }
    d = ap_get_module_config(r->per_dir_config, &mdm_module);
    if (d->verify != 1) {
        return DECLINED;
    }
    conf = mdm_dir_mdm_conf(r, d, MDM_KIND_DEVICE);
    if (conf == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = mdm_read_body(r, &kept, &body, &len);
    if (rc != OK) {
        return rc;
    }
    ap_add_input_filter(MDM_REPLAY_FILTER, kept, r, r->connection);
    req = mdm_req_new(conf, MDM_EP_ANY);
    if (req == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(r->pool, req, mdm_req_cleanup,
                              apr_pool_cleanup_null);
    mdm_req_set_verify_only(req);
    mdm_req_set_body(req, (const unsigned char *) body, len);
    mdm_identity_input(r, d, req);
    mdm_req_start(req);
    mdm_metrics_identity(conf);
    mdm_export(r, req);
    return mdm_req_response(req)->status == 200 ? DECLINED : HTTP_BAD_REQUEST;
}
