/*
 * mod_mdm: Redis connections. A per-process apr_reslist of Redis links
 * (tools/mdm_redislink.h: one server, Sentinel or Cluster, behind AUTH),
 * created in child_init (the mod_dbd pattern): each request thread takes
 * one, runs its plan, and gives it back. A link drops a connection that
 * broke and connects again (after a short back-off) for a later request.
 */
#include "mod_mdm.h"
#include "mdm_metrics.h"
#include "mdm_sync.h"

#include "http_log.h"
#include "ap_mpm.h"
#include "apr_reslist.h"

#include <stdio.h>

APLOG_USE_MODULE(mdm);

typedef struct {
    apr_reslist_t *pool;
    mdm_srv_conf_t *conf;
    server_rec *s;
    mdm_redis_target_t target; /* with the credentials */
} mdm_redis_pool_t;

static mdm_redis_pool_t *mdm_pool;

/* the link's messages start with their log id */
static void
mdm_redis_log(void *data, int level, const char *msg)
{
    static const int levels[] = {APLOG_ERR, APLOG_WARNING, APLOG_NOTICE,
                                 APLOG_INFO};
    mdm_redis_pool_t *mp = data;

    ap_log_error(APLOG_MARK, levels[level < 0 || level > 3 ? 0 : level], 0,
                 mp->s, "%s", msg);
}

/* a link per request thread: it connects lazily and mends itself */
static apr_status_t
mdm_redis_construct(void **res, void *params, apr_pool_t *p)
{
    mdm_redis_pool_t *mp = params;

    (void) p;
    *res = mdm_redislink_new(&mp->target, mdm_redis_log, mp);
    return *res ? APR_SUCCESS : APR_ENOMEM;
}

static apr_status_t
mdm_redis_destruct(void *res, void *params, apr_pool_t *p)
{
    (void) params;
    (void) p;
    mdm_redislink_free(res);
    return APR_SUCCESS;
}

void
mdm_redis_child_init(apr_pool_t *p, server_rec *s)
{
    mdm_srv_conf_t *c = ap_get_module_config(s->module_config, &mdm_module);
    mdm_redis_target_t *t;
    int threads = 1;
    apr_status_t rv;

    if (c->redis == NULL || c->target == NULL) {
        return;
    }
    /* the main server's record is never merged: defaults here */
    if (c->connect_timeout < 0) {
        c->connect_timeout = 1000;
    }
    if (c->timeout < 0) {
        c->timeout = 2000;
    }
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    if (threads < 1) {
        threads = 1;
    }
    mdm_pool = apr_pcalloc(p, sizeof(*mdm_pool));
    mdm_pool->conf = c;
    mdm_pool->s = s;
    t = &mdm_pool->target;
    *t = *c->target;
    snprintf(t->user, sizeof(t->user), "%s",
             c->redis_user ? c->redis_user : "");
    snprintf(t->password, sizeof(t->password), "%s",
             c->redis_password ? c->redis_password : "");
    snprintf(t->sentinel_password, sizeof(t->sentinel_password), "%s",
             c->sentinel_password ? c->sentinel_password : "");
    t->connect_timeout_ms = c->connect_timeout;
    t->timeout_ms = c->timeout;
    /* a request waits for no back-off longer than this: it answers 503
       at once while the link waits, and a failover is seen soon */
    t->max_backoff_ms = 1000;
    t->wait_replicas = c->wait_replicas > 0 ? c->wait_replicas : 0;
    t->wait_ms = c->wait_ms;
    /* no minimum: connect lazily; at most one per request thread */
    rv = apr_reslist_create(&mdm_pool->pool, 0, threads, threads,
                            apr_time_from_sec(300), mdm_redis_construct,
                            mdm_redis_destruct, mdm_pool, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "MDM07001 cannot create the Redis connection pool");
        mdm_pool = NULL;
        return;
    }
    apr_reslist_timeout_set(mdm_pool->pool, apr_time_from_msec(c->timeout));
}

void
mdm_redis_run(request_rec *r, mdm_req_t *req)
{
    static const int kinds[] = {
        [MDM_LINK_ERR_CONNECT] = MDM_METRICS_ERR_CONNECT,
        [MDM_LINK_ERR_TIMEOUT] = MDM_METRICS_ERR_TIMEOUT,
        [MDM_LINK_ERR_IO] = MDM_METRICS_ERR_IO,
        [MDM_LINK_ERR_REPLY] = MDM_METRICS_ERR_REPLY};
    mdm_redislink_t *l;
    mdm_link_err_t e;
    void *res;
    apr_status_t rv;
    apr_time_t t0;

    if (mdm_pool == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "MDM07002 no Redis configured (MDMRedis)");
        mdm_metrics_redis_error(MDM_METRICS_ERR_CONNECT);
        mdm_req_feed(req, NULL, 0);
        return;
    }
    rv = apr_reslist_acquire(mdm_pool->pool, &res);
    if (rv != APR_SUCCESS) {
        mdm_metrics_redis_error(MDM_METRICS_ERR_CONNECT);
        mdm_req_feed(req, NULL, 0); /* 503 + Retry-After, logged */
        return;
    }
    l = res;
    /* closed while idle (Redis restarted, failed over): reconnect */
    mdm_redislink_check_idle(l);
    t0 = apr_time_now();
    mdm_redislink_exec(l, req);
    e = mdm_redislink_error(l);
    if (e != MDM_LINK_OK) {
        mdm_metrics_redis_error(kinds[e]);
    } else {
        mdm_metrics_redis(apr_time_now() - t0);
    }
    /* the link dropped what broke: it serves the next request anyway */
    apr_reslist_release(mdm_pool->pool, l);
}
