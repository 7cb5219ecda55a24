/*
 * ngx_mdm: where plans go. Sentinel: the sentinels are asked in order
 * for the master (SENTINEL get-master-addr-by-name), and again when it
 * fails. Cluster: the slot map (CLUSTER SLOTS) from the seeds or the
 * nodes we know, one connection per master, MOVED/ASK redirects. Both
 * run on the event loop, posted outside hiredis's callbacks ("kick").
 *
 * This file calls ngx_http_mdm_redis.c (connections, plans), never the
 * reverse: that file reaches this one through rds->topo, set at worker
 * start.
 */
#include "ngx_http_mdm_redis_int.h"

static void ngx_http_mdm_kick_post(void);
static void ngx_http_mdm_kick_later(ngx_msec_t delay);

/* ---------------------------------------------------------------- */
/* Sentinel: SENTINEL get-master-addr-by-name, asked in order        */

static void
ngx_http_mdm_sentinel_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_node_t *s = privdata;
    mdm_redis_addr_t a;

    if (s->ac == ac && s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }
    rds->asking = 0;
    if (!rds->resolving || rds->exiting) {
        return;
    }
    if (reply == NULL || mdm_redis_sentinel_addr(reply, &a) != 0) {
        if (reply) {
            ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                          "sentinel %s does not know master \"%V\"", s->name,
                          &rds->mcf->sentinel_master);
        }
        if (s->ac == ac) {
            ngx_http_mdm_node_drop(s);
        }
        ngx_http_mdm_kick_post(); /* the next sentinel */
        return;
    }
    if (!mdm_redis_addr_eq(&a, &rds->main.addr) || rds->main.name[0] == 0) {
        /* still resolving: requests failed by this drop get 503 */
        ngx_http_mdm_node_drop(&rds->main);
        ngx_http_mdm_node_set(&rds->main, &a, NGX_HTTP_MDM_NODE_DATA);
        ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                      MDM_ID_SENTINEL_MASTER " sentinel %s: master \"%V\" "
                                             "is %s",
                      s->name, &rds->mcf->sentinel_master, rds->main.name);
    }
    rds->resolving = 0;
    rds->master_known = 1;
    rds->main.check_role = 1;
    if (s->ac == ac) {
        ngx_http_mdm_node_drop(s);
    }
    /* connect now: the next requests find it ready */
    (void) ngx_http_mdm_node_get(&rds->main);
}

static void
ngx_http_mdm_sentinel_step(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_redis_addr_t *sa = rds->mcf->redis_addrs->elts;
    ngx_http_mdm_node_t *s = &rds->sentinel;
    mdm_redis_addr_t a;
    redisAsyncContext *ac;

    while (rds->resolving && !rds->exiting) {
        if (rds->sentinel_next >= rds->mcf->redis_addrs->nelts) {
            ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                          MDM_ID_SENTINEL_NONE " no sentinel named master "
                                               "\"%V\"; trying again later",
                          &rds->mcf->sentinel_master);
            rds->resolving = 0;
            ngx_http_mdm_node_failed(&rds->main);
            ngx_http_mdm_kick_later(rds->main.backoff);
            return;
        }
        ngx_memzero(&a, sizeof(a));
        ngx_cpystrn((u_char *) a.host, sa[rds->sentinel_next].host.data,
                    sizeof(a.host));
        a.port = (int) sa[rds->sentinel_next].port;
        rds->sentinel_next++;
        ngx_http_mdm_node_drop(s);
        ngx_http_mdm_node_set(s, &a, NGX_HTTP_MDM_NODE_SENTINEL);
        s->backoff = 0;
        ac = ngx_http_mdm_node_get(s);
        if (ac == NULL) {
            continue;
        }
        if (redisAsyncCommand(ac, ngx_http_mdm_sentinel_done, s,
                              "SENTINEL get-master-addr-by-name %b",
                              rds->mcf->sentinel_master.data,
                              rds->mcf->sentinel_master.len) == REDIS_OK) {
            rds->asking = 1;
            return;
        }
    }
}

/* Start asking the sentinels (unless asking already, or backing off). */
static void
ngx_http_mdm_sentinel_resolve(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (rds->resolving || rds->exiting) {
        return;
    }
    if (rds->main.backoff &&
        (ngx_msec_int_t) (rds->main.retry_at - ngx_current_msec) > 0) {
        ngx_http_mdm_kick_later(rds->main.retry_at - ngx_current_msec);
        return;
    }
    rds->resolving = 1;
    rds->sentinel_next = 0;
    ngx_http_mdm_sentinel_step();
}

/* ---------------------------------------------------------------- */
/* Cluster: the slot map, one connection per master                 */

static ngx_http_mdm_node_t *
ngx_http_mdm_cluster_node(const mdm_redis_addr_t *a)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_node_t *node;
    ngx_uint_t i;

    for (i = 0; i < rds->nnodes; i++) {
        if (mdm_redis_addr_eq(&rds->nodes[i].addr, a)) {
            return &rds->nodes[i];
        }
    }
    if (rds->nnodes == MDM_REDIS_MAX_NODES) {
        return NULL;
    }
    node = &rds->nodes[rds->nnodes++];
    ngx_http_mdm_node_set(node, a, NGX_HTTP_MDM_NODE_DATA);
    return node;
}

/* map index -> our connection, after the map changed */
static void
ngx_http_mdm_cluster_owners(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    int i;

    for (i = 0; i < rds->map->nnodes; i++) {
        rds->owner[i] = ngx_http_mdm_cluster_node(&rds->map->node[i]);
    }
}

static void ngx_http_mdm_cluster_load(void);

static void
ngx_http_mdm_cluster_slots_done(redisAsyncContext *ac, void *reply,
                                void *privdata)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_node_t *node = privdata;
    mdm_slotmap_t *m = rds->map_new;
    int i;

    (void) ac;
    if (rds->exiting || !rds->map_loading) {
        return;
    }
    rds->map_loading = 0;
    if (reply != NULL && mdm_slotmap_load(m, reply) == 0 && m->nnodes > 0) {
        for (i = 0; i < m->nnodes; i++) {
            if (m->node[i].host[0] == '\0') {
                /* "?" or "": the node we asked */
                ngx_cpystrn((u_char *) m->node[i].host,
                            (u_char *) node->addr.host,
                            sizeof(m->node[i].host));
            }
        }
        rds->map_new = rds->map;
        rds->map = m;
        ngx_http_mdm_cluster_owners();
        rds->map_ok = 1;
        rds->map_stale = 0;
        rds->map_backoff = 0;
        rds->map_logged = 0;
        rds->map_tries = 0;
        ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                      "Redis Cluster slot map from %s: %d masters", node->name,
                      rds->map->nnodes);
        return;
    }
    if (reply != NULL) {
        ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                      "Redis at %s gave no usable CLUSTER SLOTS reply",
                      node->name);
    }
    rds->map_next++;
    ngx_http_mdm_kick_post(); /* the next node */
}

/* Ask one node after the other for CLUSTER SLOTS (the seeds, then the
 * nodes we know), until one answers; then back off. */
static void
ngx_http_mdm_cluster_load(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_redis_addr_t *seeds = rds->mcf->redis_addrs->elts;
    ngx_uint_t nseeds = rds->mcf->redis_addrs->nelts;
    ngx_http_mdm_node_t *node;
    redisAsyncContext *ac;
    mdm_redis_addr_t a;
    ngx_uint_t k;

    while (!rds->map_loading && !rds->exiting) {
        if (rds->map_tries >= nseeds + rds->nnodes) {
            if (!rds->map_logged) {
                rds->map_logged = 1;
                ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                              MDM_ID_CLUSTER_MAP
                              " no Redis Cluster node "
                              "answered CLUSTER SLOTS; trying again later");
            }
            rds->map_tries = 0;
            rds->map_backoff =
                rds->map_backoff
                    ? ngx_min(rds->map_backoff * 2, NGX_HTTP_MDM_BACKOFF_MAX)
                    : NGX_HTTP_MDM_BACKOFF_MIN;
            rds->map_retry_at = ngx_current_msec + rds->map_backoff;
            return;
        }
        rds->map_tries++;
        k = rds->map_next % (nseeds + rds->nnodes);
        if (k < nseeds) {
            ngx_memzero(&a, sizeof(a));
            ngx_cpystrn((u_char *) a.host, seeds[k].host.data, sizeof(a.host));
            a.port = (int) seeds[k].port;
            node = ngx_http_mdm_cluster_node(&a);
        } else {
            node = &rds->nodes[k - nseeds];
        }
        ac = node ? ngx_http_mdm_node_get(node) : NULL;
        if (ac == NULL ||
            redisAsyncCommand(ac, ngx_http_mdm_cluster_slots_done, node,
                              "CLUSTER SLOTS") != REDIS_OK) {
            rds->map_next++;
            continue;
        }
        rds->map_loading = 1;
    }
}

/* (Re)load the map unless loading already or backing off. */
static void
ngx_http_mdm_cluster_refresh(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (rds->map_loading || rds->exiting ||
        (rds->map_backoff &&
         (ngx_msec_int_t) (rds->map_retry_at - ngx_current_msec) > 0)) {
        return;
    }
    rds->map_tries = 0;
    ngx_http_mdm_cluster_load();
}

/* The node serving the slot of a plan command (NULL: none known). */
static ngx_http_mdm_node_t *
ngx_http_mdm_cluster_route(const mdm_cmd_t *c)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    const char *key;
    size_t len;
    int i;

    key = mdm_cmd_route_key(c, &len);
    if (key == NULL) {
        /* no key: any master */
        for (i = 0; i < rds->map->nnodes; i++) {
            if (rds->owner[i]) {
                return rds->owner[i];
            }
        }
        return NULL;
    }
    i = mdm_slotmap_owner(rds->map, mdm_redis_slot(key, len));
    return i < 0 ? NULL : rds->owner[i];
}

/* MOVED/ASK (Cluster): send the command where the reply says, a few
 * times at most. NGX_OK: sent again, the callback runs again later. */
static ngx_int_t
ngx_http_mdm_redirect(ngx_http_mdm_ref_t *ref, const redisReply *r)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_batch_t *b = ref->b;
    ngx_http_mdm_node_t *node;
    mdm_redis_addr_t to;
    unsigned slot;
    int ask, i;
    char name[300];

    if (mdm_redis_redirect(r->str, r->len, &ask, &slot, &to) != 1) {
        return NGX_DECLINED;
    }
    if (++ref->redirects > MDM_REDIS_MAX_REDIRECT) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      MDM_ID_CLUSTER_REDIRECTS
                      " Redis Cluster redirected a "
                      "command %d times (last: %*s); answering 503",
                      MDM_REDIS_MAX_REDIRECT, (size_t) ngx_min(r->len, 100),
                      r->str);
        rds->map_stale = 1;
        ngx_http_mdm_kick_post();
        return NGX_ERROR;
    }
    if (!ask) {
        i = mdm_slotmap_set(rds->map, slot, &to);
        if (i >= 0) {
            ngx_http_mdm_cluster_owners();
        }
        if (!rds->map_stale) {
            ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                          MDM_ID_CLUSTER_MOVED " slot %ui moved to %s; "
                                               "refreshing the slot map",
                          (ngx_uint_t) slot,
                          mdm_redis_addr_format(&to, name, sizeof(name)));
        }
        rds->map_stale = 1;
        ngx_http_mdm_kick_post();
    }
    node = ngx_http_mdm_cluster_node(&to);
    if (node == NULL || b->cmds == NULL) {
        return NGX_ERROR;
    }
    return ngx_http_mdm_send_one(b, ref, &b->cmds[ref->idx], node, ask);
}

/* Cluster: reload the slot map soon. */
static void
ngx_http_mdm_cluster_stale(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    rds->map_stale = 1;
    ngx_http_mdm_kick_post();
}

/* The master is no longer known: ask the sentinels again (Sentinel). */
static void
ngx_http_mdm_lost_master(ngx_http_mdm_node_t *node)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (node == &rds->main &&
        rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_SENTINEL) {
        rds->master_known = 0;
        ngx_http_mdm_kick_later(node->backoff ? node->backoff : 1);
    } else if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER &&
               node->kind == NGX_HTTP_MDM_NODE_DATA) {
        rds->map_stale = 1;
    }
}

/* A plan may be sent now, or discovery starts (requests get 503). */
static ngx_int_t
ngx_http_mdm_topo_ready(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER) {
        if (!rds->map_ok || rds->map_stale) {
            ngx_http_mdm_cluster_refresh();
            if (!rds->map_ok) {
                return NGX_DECLINED;
            }
        }
    } else if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_SENTINEL &&
               !rds->master_known) {
        ngx_http_mdm_sentinel_resolve();
        if (!rds->master_known) {
            return NGX_DECLINED;
        }
    }
    return NGX_OK;
}

/* ---------------------------------------------------------------- */
/* discovery, posted to run outside hiredis's callbacks             */

static void
ngx_http_mdm_kick_handler(ngx_event_t *ev)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    (void) ev;
    if (rds->exiting) {
        return;
    }
    if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_SENTINEL) {
        if (rds->resolving) {
            if (!rds->asking) {
                ngx_http_mdm_sentinel_step();
            }
        } else if (!rds->master_known) {
            ngx_http_mdm_sentinel_resolve();
        }
    } else if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER) {
        if (rds->map_loading) {
            return;
        }
        if (!rds->map_ok || rds->map_stale || rds->map_tries) {
            if (rds->map_tries) {
                ngx_http_mdm_cluster_load(); /* go on with this round */
            } else {
                ngx_http_mdm_cluster_refresh();
            }
        }
    }
}

/* Discovery again after delay, without waiting for a request: idle
 * workers find the new master too. */
static void
ngx_http_mdm_kick_later(ngx_msec_t delay)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (!rds->exiting && !rds->kick.timer_set) {
        ngx_add_timer(&rds->kick, delay);
    }
}

static void
ngx_http_mdm_kick_post(void)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (!rds->exiting && !rds->kick.posted) {
        ngx_post_event(&rds->kick, &ngx_posted_events);
    }
}

ngx_int_t
ngx_http_mdm_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_main_conf_t *mcf;
    mdm_redis_addr_t a;

    ngx_memzero(rds, sizeof(*rds));
    rds->log = cycle->log;
    rds->dummy.fd = (ngx_socket_t) -1;
    rds->kick.handler = ngx_http_mdm_kick_handler;
    rds->kick.data = &rds->dummy;
    rds->kick.log = cycle->log;
    rds->kick.cancelable = 1;
    rds->topo.ready = ngx_http_mdm_topo_ready;
    rds->topo.route = ngx_http_mdm_cluster_route;
    rds->topo.redirect = ngx_http_mdm_redirect;
    rds->topo.lost_master = ngx_http_mdm_lost_master;
    rds->topo.stale = ngx_http_mdm_cluster_stale;
    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mdm_module);
    if (mcf == NULL || mcf->redis_mode == NGX_HTTP_MDM_REDIS_NONE) {
        return NGX_OK;
    }
    rds->mcf = mcf;
    if (mcf->redis_mode == NGX_HTTP_MDM_REDIS_SINGLE) {
        ngx_memzero(&a, sizeof(a));
        ngx_cpystrn((u_char *) a.host, mcf->server.host.data, sizeof(a.host));
        a.port = (int) mcf->server.port;
        ngx_http_mdm_node_set(&rds->main, &a, NGX_HTTP_MDM_NODE_DATA);
        return NGX_OK;
    }
    if (mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER) {
        rds->nodes = ngx_pcalloc(cycle->pool, MDM_REDIS_MAX_NODES *
                                                  sizeof(ngx_http_mdm_node_t));
        rds->map = ngx_palloc(cycle->pool, sizeof(mdm_slotmap_t));
        rds->map_new = ngx_palloc(cycle->pool, sizeof(mdm_slotmap_t));
        if (rds->nodes == NULL || rds->map == NULL || rds->map_new == NULL) {
            return NGX_ERROR;
        }
        mdm_slotmap_init(rds->map);
    }
    /* discovery starts now in workers (not in cache helpers) */
    if (ngx_process == NGX_PROCESS_WORKER && mcf->used) {
        ngx_post_event(&rds->kick, &ngx_posted_next_events);
    }
    return NGX_OK;
}

void
ngx_http_mdm_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_uint_t i;

    (void) cycle;
    rds->exiting = 1;
    if (rds->kick.posted) {
        ngx_delete_posted_event(&rds->kick);
    }
    if (rds->kick.timer_set) {
        ngx_del_timer(&rds->kick);
    }
    ngx_http_mdm_node_drop(&rds->main);
    ngx_http_mdm_node_drop(&rds->sentinel);
    for (i = 0; i < rds->nnodes; i++) {
        ngx_http_mdm_node_drop(&rds->nodes[i]);
    }
}
