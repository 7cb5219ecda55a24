/*
 * mod_mdm: Redis connections. A per-process apr_reslist of blocking
 * hiredis contexts, created in child_init (the mod_dbd pattern): each
 * request thread takes one, runs its plan, and gives it back, or throws it
 * away when it broke.
 */
#include "mod_mdm.h"
#include "mdm_metrics.h"
#include "mdm_sync.h"

#include "http_log.h"
#include "ap_mpm.h"
#include "apr_reslist.h"

#include <errno.h>
#include <hiredis.h>
#include <poll.h>
#include <string.h>

APLOG_USE_MODULE(mdm);

typedef struct {
    apr_reslist_t *pool;
    mdm_srv_conf_t *conf;
    server_rec *s;
} mdm_redis_pool_t;

static mdm_redis_pool_t *mdm_pool;

static apr_status_t
mdm_redis_construct(void **res, void *params, apr_pool_t *p)
{
    mdm_redis_pool_t *mp = params;
    mdm_srv_conf_t *c = mp->conf;
    struct timeval ct, t;
    redisContext *rc;

    (void) p;
    ct.tv_sec = c->connect_timeout / 1000;
    ct.tv_usec = (c->connect_timeout % 1000) * 1000;
    t.tv_sec = c->timeout / 1000;
    t.tv_usec = (c->timeout % 1000) * 1000;
    rc = c->port ? redisConnectWithTimeout(c->host, c->port, ct)
                 : redisConnectUnixWithTimeout(c->unix_path, ct);
    if (rc == NULL || rc->err) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, mp->s,
                     "MDM04003 cannot connect to Redis at %s: %s", c->redis,
                     rc ? rc->errstr : "out of memory");
        if (rc) {
            redisFree(rc);
        }
        return APR_EGENERAL;
    }
    if (redisSetTimeout(rc, t) != REDIS_OK) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, mp->s,
                     "MDM07004 cannot set the Redis timeout on %s: %s",
                     c->redis, rc->errstr);
        redisFree(rc);
        return APR_EGENERAL;
    }
    *res = rc;
    return APR_SUCCESS;
}

static apr_status_t
mdm_redis_destruct(void *res, void *params, apr_pool_t *p)
{
    (void) params;
    (void) p;
    redisFree(res);
    return APR_SUCCESS;
}

void
mdm_redis_child_init(apr_pool_t *p, server_rec *s)
{
    mdm_srv_conf_t *c = ap_get_module_config(s->module_config, &mdm_module);
    int threads = 1;
    apr_status_t rv;

    if (c->redis == NULL) {
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

/*
 * An idle connection has nothing to read. If it has, Redis closed it (or
 * sent something nobody asked for): it must not serve this request.
 */
static int
mdm_redis_stale(redisContext *rc)
{
    struct pollfd pfd;

    if (rc->err) {
        return 1;
    }
    pfd.fd = rc->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) != 0;
}

/*
 * A blocking hiredis 0.14 context that timed out reports an I/O error
 * with the text of EAGAIN (its errno is gone by now).
 */
static int
mdm_redis_timed_out(const redisContext *rc)
{
    return rc->err == REDIS_ERR_IO &&
           (strcmp(rc->errstr, strerror(EAGAIN)) == 0 ||
            strcmp(rc->errstr, strerror(ETIMEDOUT)) == 0);
}

void
mdm_redis_run(request_rec *r, mdm_req_t *req)
{
    redisContext *rc;
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
    for (;;) {
        rv = apr_reslist_acquire(mdm_pool->pool, &res);
        if (rv != APR_SUCCESS) {
            mdm_metrics_redis_error(MDM_METRICS_ERR_CONNECT);
            mdm_req_feed(req, NULL, 0); /* 503 + Retry-After, logged */
            return;
        }
        rc = res;
        if (!mdm_redis_stale(rc)) {
            break;
        }
        /* closed while idle (Redis restarted): take another one */
        apr_reslist_invalidate(mdm_pool->pool, rc);
    }
    t0 = apr_time_now();
    mdm_exec_sync(rc, req);
    if (rc->err) {
        mdm_metrics_redis_error(mdm_redis_timed_out(rc)
                                    ? MDM_METRICS_ERR_TIMEOUT
                                    : MDM_METRICS_ERR_IO);
        /* broken or timed out: never hand it to another request */
        apr_reslist_invalidate(mdm_pool->pool, rc);
    } else {
        mdm_metrics_redis(apr_time_now() - t0);
        apr_reslist_release(mdm_pool->pool, rc);
    }
}
