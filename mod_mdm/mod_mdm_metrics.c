/*
 * mod_mdm: metrics. One block of counters (tools/mdm_metrics.h) in an
 * anonymous shared memory segment that the parent creates in post_config,
 * before it forks: every child inherits the same mapping and adds to it
 * with apr_atomic, and any child answers a scrape (SetHandler
 * mdm-metrics). The segment belongs to the process pool, so a graceful
 * restart keeps the counters. Requests are counted when logged, from the
 * notes the handlers left; Redis waits and failures where they happen.
 */
#include "mod_mdm.h"
#include "mdm_metrics.h"

#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

APLOG_USE_MODULE(mdm);

#define MDM_METRICS_SHM_KEY "mdm_metrics_shm"

/* the counters; NULL with MDMMetrics Off */
static volatile apr_uint64_t *mdm_metrics_m;

/* per child: identity counters of each libmdm configuration already
 * added to the block */
static apr_hash_t *mdm_metrics_published;
static apr_thread_mutex_t *mdm_metrics_lock;

static void
mdm_metrics_add(size_t i, apr_uint64_t n)
{
    apr_atomic_add64(&mdm_metrics_m[i], n);
}

int
mdm_metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                        server_rec *s)
{
    mdm_srv_conf_t *sc = ap_get_module_config(s->module_config, &mdm_module);
    apr_pool_t *pp = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    (void) pconf;
    (void) plog;
    (void) ptemp;
    mdm_metrics_m = NULL;
    if (sc->metrics == 0) {
        return OK;
    }
    apr_pool_userdata_get((void **) &shm, MDM_METRICS_SHM_KEY, pp);
    if (shm == NULL) {
        rv = apr_shm_create(&shm, sizeof(apr_uint64_t) * MDM_METRICS_N, NULL,
                            pp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "MDM07008 MDMMetrics: cannot create the shared "
                         "memory for the metrics");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        memset(apr_shm_baseaddr_get(shm), 0,
               sizeof(apr_uint64_t) * MDM_METRICS_N);
        apr_pool_userdata_set(shm, MDM_METRICS_SHM_KEY, apr_pool_cleanup_null,
                              pp);
    }
    mdm_metrics_m = apr_shm_baseaddr_get(shm);
    return OK;
}

void
mdm_metrics_child_init(apr_pool_t *p)
{
    mdm_metrics_published = apr_hash_make(p);
    apr_thread_mutex_create(&mdm_metrics_lock, APR_THREAD_MUTEX_DEFAULT, p);
}

/* ---------------------------------------------------------------- */
/* counting                                                         */

void
mdm_metrics_redis(apr_interval_time_t waited)
{
    apr_uint64_t usec = waited > 0 ? (apr_uint64_t) waited : 0;

    if (mdm_metrics_m == NULL) {
        return;
    }
    mdm_metrics_add(mdm_metrics_redis_bucket(usec), 1);
    mdm_metrics_add(MDM_METRICS_REDIS_SUM_US, usec);
    mdm_metrics_add(MDM_METRICS_REDIS_COUNT, 1);
}

void
mdm_metrics_redis_error(int kind)
{
    if (mdm_metrics_m) {
        mdm_metrics_add(MDM_METRICS_REDIS_ERRORS + (size_t) kind, 1);
    }
}

/*
 * The identity caches count per process and configuration (threads share
 * them): add what conf counted since any request of this child last
 * published it.
 */
void
mdm_metrics_identity(const mdm_conf_t *conf)
{
    mdm_identity_stats_t st, *pub;

    if (mdm_metrics_m == NULL || mdm_metrics_published == NULL) {
        return;
    }
    apr_thread_mutex_lock(mdm_metrics_lock);
    mdm_conf_identity_stats(conf, &st);
    pub = apr_hash_get(mdm_metrics_published, &conf, sizeof(conf));
    if (pub == NULL) {
        apr_pool_t *p = apr_hash_pool_get(mdm_metrics_published);
        const mdm_conf_t **key = apr_palloc(p, sizeof(*key));

        *key = conf;
        pub = apr_pcalloc(p, sizeof(*pub));
        apr_hash_set(mdm_metrics_published, key, sizeof(*key), pub);
    }
    if (st.cache_hits > pub->cache_hits) {
        mdm_metrics_add(MDM_METRICS_CACHE_HIT, st.cache_hits - pub->cache_hits);
    }
    if (st.cache_misses > pub->cache_misses) {
        mdm_metrics_add(MDM_METRICS_CACHE_MISS,
                        st.cache_misses - pub->cache_misses);
    }
    if (st.direct > pub->direct) {
        mdm_metrics_add(MDM_METRICS_DIRECT, st.direct - pub->direct);
    }
    *pub = st;
    apr_thread_mutex_unlock(mdm_metrics_lock);
}

/* log_transaction: one request at an MDM location, and its refusal */
int
mdm_metrics_log(request_rec *r)
{
    const mdm_dir_conf_t *d;
    const request_rec *last = r;
    const char *h = r->handler, *type, *id;

    if (mdm_metrics_m == NULL) {
        return DECLINED;
    }
    if (h == NULL || strncmp(h, "mdm-", 4) != 0) {
        /* a request refused while it was read may have no section */
        if (r->per_dir_config == NULL) {
            return DECLINED;
        }
        d = ap_get_module_config(r->per_dir_config, &mdm_module);
        if (d == NULL || d->verify != 1) {
            return DECLINED;
        }
        h = "mdm-server";
    }
    if (strcmp(h, "mdm-admin") == 0) {
        type = MDM_METRICS_TYPE_ADMIN;
    } else if (strcmp(h, "mdm-scep") == 0) {
        type = MDM_METRICS_TYPE_SCEP;
    } else if (strcmp(h, "mdm-profile") == 0) {
        type = MDM_METRICS_TYPE_PROFILE;
    } else if (strcmp(h, "mdm-checkin") == 0 || strcmp(h, "mdm-command") == 0 ||
               strcmp(h, "mdm-server") == 0) {
        type = apr_table_get(r->notes, "MDM_MESSAGE");
    } else {
        return DECLINED; /* mdm-metrics, or no handler of ours */
    }
    while (last->next) {
        last = last->next;
    }
    mdm_metrics_add(mdm_metrics_request(type, last->status), 1);
    id = apr_table_get(r->notes, "MDM_ERROR");
    if (id) {
        mdm_metrics_add(mdm_metrics_refusal(id), 1);
        if (strcmp(id, "MDM04002") == 0) {
            mdm_metrics_add(MDM_METRICS_REDIS_ERRORS + MDM_METRICS_ERR_REPLY,
                            1);
        }
    }
    return DECLINED;
}

/* ---------------------------------------------------------------- */
/* the exposition                                                   */

int
mdm_metrics_handler(request_rec *r)
{
    apr_uint64_t *copy;
    char *text;
    size_t i, len;
    int rc;

    if (r->handler == NULL || strcmp(r->handler, "mdm-metrics") != 0) {
        return DECLINED;
    }
    r->allowed = AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    rc = ap_discard_request_body(r);
    if (rc != OK) {
        return rc;
    }
    if (mdm_metrics_m == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "MDM07009 SetHandler mdm-metrics with MDMMetrics Off");
        return HTTP_NOT_FOUND;
    }
    copy = apr_palloc(r->pool, sizeof(apr_uint64_t) * MDM_METRICS_N);
    for (i = 0; i < MDM_METRICS_N; i++) {
        copy[i] = apr_atomic_read64(&mdm_metrics_m[i]);
    }
    len = mdm_metrics_render(copy, NULL, 0);
    text = apr_palloc(r->pool, len + 1);
    mdm_metrics_render(copy, text, len + 1);
    ap_set_content_type(r, "text/plain; version=0.0.4");
    ap_set_content_length(r, (apr_off_t) len);
    if (!r->header_only) {
        ap_rwrite(text, (int) len, r);
    }
    return OK;
}
