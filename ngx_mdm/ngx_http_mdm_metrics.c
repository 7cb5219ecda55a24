/*
 * ngx_mdm: metrics. One block of counters (tools/mdm_metrics.h) in a
 * shared memory zone (mdm_metrics_zone), so that every worker adds to the
 * same counters with atomic adds and any worker can answer a scrape
 * (mdm_metrics). Requests are counted in the log phase, from what the
 * transaction recorded; Redis waits and failures where they happen.
 */
#include "ngx_http_mdm.h"

#include "mdm_metrics.h"

#include <time.h>

#define NGX_HTTP_MDM_METRICS_MIN_SIZE (64 * 1024)

static ngx_int_t ngx_http_mdm_metrics_init_zone(ngx_shm_zone_t *shm_zone,
                                                void *data);
static ngx_int_t ngx_http_mdm_metrics_log(ngx_http_request_t *r);

static ngx_atomic_t *
ngx_http_mdm_metrics_block(ngx_http_request_t *r)
{
    ngx_http_mdm_main_conf_t *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_mdm_module);
    if (mcf == NULL || mcf->metrics_zone == NULL) {
        return NULL;
    }
    return mcf->metrics_zone->data;
}

static void
ngx_http_mdm_metrics_add(ngx_atomic_t *m, size_t i, ngx_atomic_int_t n)
{
    (void) ngx_atomic_fetch_add(&m[i], n);
}

/* ---------------------------------------------------------------- */
/* configuration                                                    */

/* mdm_metrics_zone NAME [SIZE] (http) */
char *
ngx_http_mdm_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_main_conf_t *mcf = conf;
    ngx_str_t *value = cf->args->elts;
    ssize_t size = NGX_HTTP_MDM_METRICS_MIN_SIZE;
    ngx_shm_zone_t *zone;

    if (mcf->metrics_zone) {
        return "is duplicate";
    }
    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the zone needs a name", &cmd->name);
        return NGX_CONF_ERROR;
    }
    if (cf->args->nelts == 3) {
        size = ngx_parse_size(&value[2]);
        if (size == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid size \"%V\"", &cmd->name,
                               &value[2]);
            return NGX_CONF_ERROR;
        }
        if (size < NGX_HTTP_MDM_METRICS_MIN_SIZE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": zone \"%V\" is too small (%V); it "
                               "needs at least 64k",
                               &cmd->name, &value[1], &value[2]);
            return NGX_CONF_ERROR;
        }
    }
    zone = ngx_shared_memory_add(cf, &value[1], size, &ngx_http_mdm_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }
    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": zone \"%V\" is already used", &cmd->name,
                           &value[1]);
        return NGX_CONF_ERROR;
    }
    zone->init = ngx_http_mdm_metrics_init_zone;
    zone->data = mcf; /* until init replaces it with the block */
    mcf->metrics_zone = zone;
    return NGX_CONF_OK;
}

/*
 * A reload with the same name and size keeps the zone (data: the old
 * block) and so the counters; a new zone starts at zero.
 */
static ngx_int_t
ngx_http_mdm_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t *shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ngx_atomic_t *m;

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }
    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }
    m = ngx_slab_calloc(shpool, sizeof(ngx_atomic_t) * MDM_METRICS_N);
    if (m == NULL) {
        return NGX_ERROR;
    }
    shpool->data = (void *) m;
    shm_zone->data = (void *) m;
    return NGX_OK;
}

/* Count requests in the log phase, when the zone exists. */
ngx_int_t
ngx_http_mdm_metrics_init(ngx_conf_t *cf)
{
    ngx_http_mdm_main_conf_t *mcf;
    ngx_http_core_main_conf_t *cmcf;
    ngx_http_handler_pt *h;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);
    if (mcf->metrics_zone == NULL) {
        return NGX_OK;
    }
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_mdm_metrics_log;
    return NGX_OK;
}

/* ---------------------------------------------------------------- */
/* counting                                                         */

uint64_t
ngx_http_mdm_metrics_clock(ngx_http_request_t *r)
{
    struct timespec ts;

    if (ngx_http_mdm_metrics_block(r) == NULL) {
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void
ngx_http_mdm_metrics_redis_error(ngx_http_request_t *r, ngx_uint_t kind)
{
    ngx_atomic_t *m = ngx_http_mdm_metrics_block(r);

    if (m) {
        ngx_http_mdm_metrics_add(m, MDM_METRICS_REDIS_ERRORS + kind, 1);
    }
}

void
ngx_http_mdm_metrics_refusal(ngx_http_request_t *r, const char *id)
{
    ngx_atomic_t *m = ngx_http_mdm_metrics_block(r);

    if (m) {
        ngx_http_mdm_metrics_add(m, mdm_metrics_refusal(id), 1);
    }
}

/*
 * The identity caches count per process and configuration: add what this
 * location's configuration counted since the last request here published
 * (a worker is single-threaded).
 */
static void
ngx_http_mdm_metrics_identity(ngx_atomic_t *m, ngx_http_mdm_loc_conf_t *lcf)
{
    mdm_identity_stats_t st;

    if (lcf->mdm == NULL) {
        return;
    }
    mdm_conf_identity_stats(lcf->mdm, &st);
    if (st.cache_hits > lcf->id_published.cache_hits) {
        ngx_http_mdm_metrics_add(m, MDM_METRICS_CACHE_HIT,
                                 st.cache_hits - lcf->id_published.cache_hits);
    }
    if (st.cache_misses > lcf->id_published.cache_misses) {
        ngx_http_mdm_metrics_add(m, MDM_METRICS_CACHE_MISS,
                                 st.cache_misses -
                                     lcf->id_published.cache_misses);
    }
    if (st.direct > lcf->id_published.direct) {
        ngx_http_mdm_metrics_add(m, MDM_METRICS_DIRECT,
                                 st.direct - lcf->id_published.direct);
    }
    lcf->id_published = st;
}

static ngx_int_t
ngx_http_mdm_metrics_log(ngx_http_request_t *r)
{
    ngx_http_mdm_loc_conf_t *lcf;
    ngx_http_mdm_ctx_t *ctx;
    ngx_atomic_t *m;
    const char *type, *id;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    if (lcf->kind == NGX_HTTP_MDM_METRICS ||
        (lcf->kind == NGX_HTTP_MDM_OFF && !lcf->verify)) {
        return NGX_OK;
    }
    m = ngx_http_mdm_metrics_block(r);
    if (m == NULL) {
        return NGX_OK;
    }
    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    switch (lcf->kind) {
    case NGX_HTTP_MDM_ADMIN:
        type = MDM_METRICS_TYPE_ADMIN;
        break;
    case NGX_HTTP_MDM_SCEP:
        type = MDM_METRICS_TYPE_SCEP;
        break;
    case NGX_HTTP_MDM_PROFILE:
        type = MDM_METRICS_TYPE_PROFILE;
        break;
    default:
        type = ctx && ctx->req ? mdm_req_var(ctx->req, MDM_VAR_MESSAGE) : NULL;
    }
    ngx_http_mdm_metrics_add(
        m, mdm_metrics_request(type, (int) r->headers_out.status), 1);

    id = ctx && ctx->req ? mdm_req_var(ctx->req, MDM_VAR_ERROR_ID) : NULL;
    if (id) {
        ngx_http_mdm_metrics_add(m, mdm_metrics_refusal(id), 1);
        if (ngx_strcmp(id, "MDM04002") == 0) {
            ngx_http_mdm_metrics_add(
                m, MDM_METRICS_REDIS_ERRORS + MDM_METRICS_ERR_REPLY, 1);
        }
    }
    if (ctx && ctx->redis_ok) {
        ngx_http_mdm_metrics_add(m, mdm_metrics_redis_bucket(ctx->redis_usec),
                                 1);
        ngx_http_mdm_metrics_add(m, MDM_METRICS_REDIS_SUM_US,
                                 (ngx_atomic_int_t) ctx->redis_usec);
        ngx_http_mdm_metrics_add(m, MDM_METRICS_REDIS_COUNT, 1);
    }
    ngx_http_mdm_metrics_identity(m, lcf);
    return NGX_OK;
}

/* ---------------------------------------------------------------- */
/* the exposition                                                   */

ngx_int_t
ngx_http_mdm_metrics_handler(ngx_http_request_t *r)
{
    ngx_atomic_t *m;
    uint64_t *copy;
    ngx_buf_t *b;
    ngx_chain_t out;
    ngx_int_t rc;
    size_t i, len;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    m = ngx_http_mdm_metrics_block(r);
    if (m == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }
    copy = ngx_palloc(r->pool, sizeof(uint64_t) * MDM_METRICS_N);
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < MDM_METRICS_N; i++) {
        copy[i] = m[i];
    }
    len = mdm_metrics_render(copy, NULL, 0);
    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    mdm_metrics_render(copy, (char *) b->pos, len + 1);
    b->last = b->pos + len;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }
    out.buf = b;
    out.next = NULL;
    return ngx_http_output_filter(r, &out);
}
