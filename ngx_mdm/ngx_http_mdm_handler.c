/*
 * ngx_mdm: request handlers. Read the body once, hand it to libmdm, run
 * its Redis plan on the event loop, send what libmdm answers.
 */
#include "ngx_http_mdm.h"

#include "mdm_metrics.h"

static void ngx_http_mdm_device_body(ngx_http_request_t *r);
static void ngx_http_mdm_admin_body(ngx_http_request_t *r);
static void ngx_http_mdm_verify_body(ngx_http_request_t *r);
static void ngx_http_mdm_scep_body(ngx_http_request_t *r);
static void ngx_http_mdm_acme_body(ngx_http_request_t *r);
static void ngx_http_mdm_step(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
                              mdm_step_t step);

static ngx_str_t ngx_http_mdm_signature = ngx_string("Mdm-Signature");
static ngx_str_t ngx_http_mdm_api_key = ngx_string("X-API-Key");

/* ---------------------------------------------------------------- */

static void
ngx_http_mdm_log(void *data, mdm_log_level_t level, const char *id,
                 const char *msg)
{
    ngx_http_request_t *r = data;
    ngx_uint_t lvl;

    switch (level) {
    case MDM_LOG_ERR:
        lvl = NGX_LOG_ERR;
        break;
    case MDM_LOG_WARN:
        lvl = NGX_LOG_WARN;
        break;
    case MDM_LOG_NOTICE:
        lvl = NGX_LOG_NOTICE;
        break;
    case MDM_LOG_INFO:
        lvl = NGX_LOG_INFO;
        break;
    default:
        lvl = NGX_LOG_DEBUG;
        break;
    }
    ngx_log_error(lvl, r->connection->log, 0, "%s %s", id, msg);
}

static void
ngx_http_mdm_cleanup(void *data)
{
    ngx_http_mdm_ctx_t *ctx = data;

    ngx_http_mdm_redis_detach(ctx->batch);
    ctx->batch = NULL;
    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }
    mdm_req_free(ctx->req);
    ctx->req = NULL;
}

static ngx_http_mdm_ctx_t *
ngx_http_mdm_ctx(ngx_http_request_t *r)
{
    ngx_http_mdm_ctx_t *ctx;
    ngx_pool_cleanup_t *cln;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ctx) {
        return ctx;
    }
    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (ctx == NULL || cln == NULL) {
        return NULL;
    }
    cln->handler = ngx_http_mdm_cleanup;
    cln->data = ctx;
    ctx->r = r;
    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);
    return ctx;
}

static ngx_table_elt_t *
ngx_http_mdm_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_list_part_t *part = &r->headers_in.headers.part;
    ngx_table_elt_t *h = part->elts;
    ngx_uint_t i;

    for (i = 0;; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }
        if (h[i].key.len == name->len &&
            ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0) {
            return &h[i];
        }
    }
}

/* The body in one buffer, read from memory or from its temp file. */
static ngx_int_t
ngx_http_mdm_flatten(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx)
{
    ngx_chain_t *cl;
    size_t len = 0;
    u_char *p;
    ssize_t n;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ctx->body = (u_char *) "";
        ctx->body_len = 0;
        return NGX_OK;
    }
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }
    if (len == 0) {
        ctx->body = (u_char *) "";
        ctx->body_len = 0;
        return NGX_OK;
    }
    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }
    ctx->body = p;
    ctx->body_len = len;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            n = ngx_read_file(cl->buf->file, p,
                              cl->buf->file_last - cl->buf->file_pos,
                              cl->buf->file_pos);
            if (n != cl->buf->file_last - cl->buf->file_pos) {
                return NGX_ERROR;
            }
            p += n;
        } else if (cl->buf->last > cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }
    *p = '\0';
    return NGX_OK;
}

/* Hand the request's identity sources to libmdm. */
static void
ngx_http_mdm_identity_input(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
                            ngx_http_mdm_loc_conf_t *lcf)
{
    ngx_table_elt_t *h;

    h = ngx_http_mdm_header(r, &ngx_http_mdm_signature);
    if (h) {
        mdm_req_set_signature(ctx->req, (char *) h->value.data, h->value.len);
    }
    if (lcf->identity_header.len) {
        h = ngx_http_mdm_header(r, &lcf->identity_header);
        if (h) {
            mdm_req_set_cert_header(ctx->req, (char *) h->value.data,
                                    h->value.len);
        }
    }
#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_t pem = ngx_null_string;

        if (ngx_ssl_get_raw_certificate(r->connection, r->pool, &pem) ==
                NGX_OK &&
            pem.len) {
            mdm_req_set_tls_cert(ctx->req, pem.data, pem.len);
        }
    }
#endif
    if (r->headers_in.content_type) {
        mdm_req_set_content_type(
            ctx->req, (char *) r->headers_in.content_type->value.data,
            r->headers_in.content_type->value.len);
    }
    mdm_req_set_body(ctx->req, ctx->body, ctx->body_len);
    mdm_req_set_logger(ctx->req, ngx_http_mdm_log, r);
}

/* ---------------------------------------------------------------- */
/* answering                                                        */

static ngx_int_t
ngx_http_mdm_send(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx)
{
    const mdm_response_t *resp = mdm_req_response(ctx->req);
    ngx_table_elt_t *h;
    size_t i;
    ngx_buf_t *b;
    ngx_chain_t out;
    ngx_int_t rc;

    ctx->done = 1;
    r->headers_out.status = resp->status;
    r->headers_out.content_length_n = resp->body_len;
    if (resp->content_type) {
        r->headers_out.content_type.data = (u_char *) resp->content_type;
        r->headers_out.content_type.len = ngx_strlen(resp->content_type);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }
    if (resp->retry_after) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }
        h->value.len =
            ngx_sprintf(h->value.data, "%ui", (ngx_uint_t) resp->retry_after) -
            h->value.data;
    }
    if (resp->no_store) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Cache-Control");
        ngx_str_set(&h->value, "no-store");
    }
    for (i = 0; i < resp->nhdrs; i++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->hash = 1;
        h->key.data = (u_char *) resp->hdr_names[i];
        h->key.len = ngx_strlen(resp->hdr_names[i]);
        h->value.data = (u_char *) resp->hdr_values[i];
        h->value.len = ngx_strlen(resp->hdr_values[i]);
    }
    if (resp->body_len == 0) {
        r->header_only = 1;
    }
    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }
    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }
    /* the body belongs to ctx->req, which lives until the pool goes */
    b->pos = (u_char *) resp->body;
    b->last = b->pos + resp->body_len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    out.buf = b;
    out.next = NULL;
    return ngx_http_output_filter(r, &out);
}

/* Continue after the plan's replies (NULL replies: storage failed). */
static void
ngx_http_mdm_replies(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
                     redisReply **replies, size_t n)
{
    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }
    ngx_http_mdm_step(r, ctx, mdm_req_feed(ctx->req, replies, n));
}

/* The Redis adapter's completion callback: the plan's replies arrived. */
static void
ngx_http_mdm_redis_done(void *data, redisReply **replies, size_t n)
{
    ngx_http_mdm_ctx_t *ctx = data;
    ngx_http_request_t *r = ctx->r;
    ngx_connection_t *c = r->connection;

    ctx->batch = NULL;
    if (replies) {
        if (ctx->redis_sent) {
            ctx->redis_usec += ngx_http_mdm_metrics_clock(r) - ctx->redis_sent;
            ctx->redis_ok = 1;
        }
    } else {
        ngx_http_mdm_metrics_redis_error(r, MDM_METRICS_ERR_IO);
    }
    ngx_http_mdm_replies(r, ctx, replies, n);
    ngx_http_run_posted_requests(c);
}

static void
ngx_http_mdm_timeout(ngx_event_t *ev)
{
    ngx_http_mdm_ctx_t *ctx =
        (ngx_http_mdm_ctx_t *) ((u_char *) ev -
                                offsetof(ngx_http_mdm_ctx_t, timer));
    ngx_http_request_t *r = ctx->r;
    ngx_connection_t *c = r->connection;

    ngx_http_mdm_redis_detach(ctx->batch);
    ctx->batch = NULL;
    ngx_http_mdm_metrics_redis_error(r, MDM_METRICS_ERR_TIMEOUT);
    ngx_http_mdm_replies(r, ctx, NULL, 0);
    ngx_http_run_posted_requests(c);
}

static void
ngx_http_mdm_step(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
                  mdm_step_t step)
{
    ngx_http_mdm_main_conf_t *mcf;

    if (step == MDM_STEP_REDIS) {
        mcf = ngx_http_get_module_main_conf(r, ngx_http_mdm_module);
        ctx->batch = ngx_http_mdm_redis_send(mcf, mdm_req_plan(ctx->req),
                                             ngx_http_mdm_redis_done, ctx);
        if (ctx->batch) {
            ctx->redis_sent = ngx_http_mdm_metrics_clock(r);
            ctx->timer.handler = ngx_http_mdm_timeout;
            ctx->timer.data = r->connection;
            ctx->timer.log = r->connection->log;
            ngx_add_timer(&ctx->timer, mcf->timeout);
            return;
        }
        ngx_http_mdm_metrics_redis_error(r, MDM_METRICS_ERR_CONNECT);
        step = mdm_req_feed(ctx->req, NULL, 0); /* 503 */
    }
    if (ctx->verify) {
        ctx->verify_status = mdm_req_response(ctx->req)->status == 200
                                 ? NGX_DECLINED
                                 : NGX_HTTP_BAD_REQUEST;
        ctx->done = 1;
        r->preserve_body = 1;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;
    }
    ngx_http_finalize_request(r, ngx_http_mdm_send(r, ctx));
}

/* Read the whole body, then go on in handler (the request's context
 * made first, so that the body handler finds it). */
static ngx_int_t
ngx_http_mdm_read_body(ngx_http_request_t *r,
                       ngx_http_client_body_handler_pt handler)
{
    ngx_int_t rc;

    if (ngx_http_mdm_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = ngx_http_read_client_request_body(r, handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }
    return NGX_DONE;
}

/*
 * Read the body of a request whose method is in allowed, then go on in
 * handler; any other method: 405 and one log line ("ID method M not
 * allowed on WHERE").
 */
static ngx_int_t
ngx_http_mdm_method_body(ngx_http_request_t *r, ngx_uint_t allowed,
                         const char *id, const char *where,
                         ngx_http_client_body_handler_pt handler)
{
    if (!(r->method & allowed)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "%s method %V not allowed on %s", id, &r->method_name,
                      where);
        ngx_http_mdm_metrics_refusal(r, id);
        return NGX_HTTP_NOT_ALLOWED;
    }
    return ngx_http_mdm_read_body(r, handler);
}

/* ---------------------------------------------------------------- */
/* device endpoints                                                 */

ngx_int_t
ngx_http_mdm_device_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_method_body(r, NGX_HTTP_PUT, "MDM06001",
                                    "an MDM endpoint (devices use PUT)",
                                    ngx_http_mdm_device_body);
}

static void
ngx_http_mdm_device_body(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_mdm_ctx_t *ctx;
    mdm_endpoint_t ep;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ngx_http_mdm_flatten(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ep = lcf->kind == NGX_HTTP_MDM_CHECKIN   ? MDM_EP_CHECKIN
         : lcf->kind == NGX_HTTP_MDM_COMMAND ? MDM_EP_COMMAND
                                             : MDM_EP_ANY;
    ctx->req = mdm_req_new(lcf->mdm, ep);
    if (ctx->req == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ngx_http_mdm_identity_input(r, ctx, lcf);
    ngx_http_mdm_step(r, ctx, mdm_req_start(ctx->req));
}

/* ---------------------------------------------------------------- */
/* admin API                                                        */

ngx_int_t
ngx_http_mdm_admin_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_method_body(
        r, NGX_HTTP_GET | NGX_HTTP_POST | NGX_HTTP_DELETE, "MDM05011",
        "the admin API", ngx_http_mdm_admin_body);
}

static void
ngx_http_mdm_admin_body(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_core_loc_conf_t *clcf;
    ngx_http_mdm_ctx_t *ctx;
    ngx_table_elt_t *key;
    u_char *path, *end, *q;
    size_t plen;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ngx_http_mdm_flatten(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    key = ngx_http_mdm_header(r, &ngx_http_mdm_api_key);
    if (!mdm_conf_admin_key_ok(lcf->mdm, key ? (char *) key->value.data : NULL,
                               key ? key->value.len : 0)) {
        static const char msg[] = "{\"error\":\"missing or wrong X-API-Key\","
                                  "\"id\":\"MDM05012\"}";
        ngx_buf_t *b;
        ngx_chain_t out;
        ngx_int_t rc;

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "MDM05012 admin API call with a %s X-API-Key",
                      key ? "wrong" : "missing");
        ngx_http_mdm_metrics_refusal(r, "MDM05012");
        r->headers_out.status = NGX_HTTP_FORBIDDEN;
        r->headers_out.content_length_n = sizeof(msg) - 1;
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        rc = ngx_http_send_header(r);
        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            ngx_http_finalize_request(r, rc);
            return;
        }
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
        b->pos = (u_char *) msg;
        b->last = b->pos + sizeof(msg) - 1;
        b->memory = 1;
        b->last_buf = 1;
        out.buf = b;
        out.next = NULL;
        ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
        return;
    }

    /* the path after the location prefix, as the client encoded it */
    path = r->unparsed_uri.data;
    end = path + r->unparsed_uri.len;
    for (q = path; q < end && *q != '?'; q++) {
        /* void */
    }
    plen = q - path;
    if (plen >= clcf->name.len &&
        ngx_strncmp(path, clcf->name.data, clcf->name.len) == 0) {
        path += clcf->name.len;
        plen -= clcf->name.len;
    } else if (r->uri.len >= clcf->name.len) {
        path = r->uri.data + clcf->name.len;
        plen = r->uri.len - clcf->name.len;
    }
    ctx->req = mdm_req_new_admin_http(lcf->mdm, (char *) r->method_name.data,
                                      r->method_name.len, (char *) path, plen,
                                      (char *) r->args.data, r->args.len,
                                      ctx->body, ctx->body_len);
    if (ctx->req == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    mdm_req_set_logger(ctx->req, ngx_http_mdm_log, r);
    ngx_http_mdm_step(r, ctx, mdm_req_start(ctx->req));
}

/* ---------------------------------------------------------------- */
/* enrollment: SCEP and the profile                                 */

ngx_int_t
ngx_http_mdm_scep_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_method_body(r, NGX_HTTP_GET | NGX_HTTP_POST, "MDM06002",
                                    "a SCEP endpoint (GET or POST)",
                                    ngx_http_mdm_scep_body);
}

static void
ngx_http_mdm_scep_body(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_mdm_ctx_t *ctx;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ngx_http_mdm_flatten(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ctx->req = mdm_req_new_scep_http(lcf->mdm, (char *) r->method_name.data,
                                     r->method_name.len, (char *) r->args.data,
                                     r->args.len, ctx->body, ctx->body_len);
    if (ctx->req == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    mdm_req_set_logger(ctx->req, ngx_http_mdm_log, r);
    ngx_http_mdm_step(r, ctx, mdm_req_start(ctx->req));
}

ngx_int_t
ngx_http_mdm_profile_handler(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_mdm_ctx_t *ctx;
    ngx_int_t rc;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "MDM06003 method %V not allowed on the enrollment "
                      "profile (GET)",
                      &r->method_name);
        ngx_http_mdm_metrics_refusal(r, "MDM06003");
        return NGX_HTTP_NOT_ALLOWED;
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ctx = ngx_http_mdm_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ctx->req = mdm_req_new_profile(lcf->mdm);
    if (ctx->req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    mdm_req_set_logger(ctx->req, ngx_http_mdm_log, r);
    /* the request lives on until ngx_http_mdm_step() finalizes it */
    r->main->count++;
    ngx_http_mdm_step(r, ctx, mdm_req_start(ctx->req));
    return NGX_DONE;
}

/* ---------------------------------------------------------------- */
/* ACME (RFC 8555, device-attest-01)                                */

ngx_int_t
ngx_http_mdm_acme_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_method_body(
        r, NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_POST, "MDM15001",
        "an ACME endpoint", ngx_http_mdm_acme_body);
}

static void
ngx_http_mdm_acme_body(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_core_loc_conf_t *clcf;
    ngx_http_mdm_ctx_t *ctx;
    u_char *path;
    size_t plen;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ngx_http_mdm_flatten(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    /* the (decoded) path after the location prefix */
    path = r->uri.data;
    plen = r->uri.len;
    if (plen >= clcf->name.len &&
        ngx_strncmp(path, clcf->name.data, clcf->name.len) == 0) {
        path += clcf->name.len;
        plen -= clcf->name.len;
    }
    ctx->req = mdm_req_new_acme_http(lcf->mdm, (char *) r->method_name.data,
                                     r->method_name.len, (char *) path, plen,
                                     ctx->body, ctx->body_len);
    if (ctx->req == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (r->headers_in.content_type) {
        mdm_req_set_content_type(
            ctx->req, (char *) r->headers_in.content_type->value.data,
            r->headers_in.content_type->value.len);
    }
    mdm_req_set_logger(ctx->req, ngx_http_mdm_log, r);
    ngx_http_mdm_step(r, ctx, mdm_req_start(ctx->req));
}

/* ---------------------------------------------------------------- */
/* verifying proxy: access phase                                    */

ngx_int_t
ngx_http_mdm_access_handler(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_mdm_ctx_t *ctx;
    ngx_int_t rc;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    if (!lcf->verify || r != r->main) {
        return NGX_DECLINED;
    }
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ctx) {
        return ctx->done ? ctx->verify_status : NGX_AGAIN;
    }
    ctx = ngx_http_mdm_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ctx->verify = 1;
    rc = ngx_http_read_client_request_body(r, ngx_http_mdm_verify_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }
    /* the body reader holds a reference until its handler runs */
    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}

static void
ngx_http_mdm_verify_body(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_mdm_ctx_t *ctx;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    if (ngx_http_mdm_flatten(r, ctx) != NGX_OK) {
        ctx->done = 1;
        ctx->verify_status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;
    }
    ctx->req = mdm_req_new(lcf->mdm, MDM_EP_ANY);
    if (ctx->req == NULL) {
        ctx->done = 1;
        ctx->verify_status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;
    }
    mdm_req_set_verify_only(ctx->req);
    ngx_http_mdm_identity_input(r, ctx, lcf);
    ngx_http_mdm_step(r, ctx, mdm_req_start(ctx->req));
}
