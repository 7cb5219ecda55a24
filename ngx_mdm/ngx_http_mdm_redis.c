/*
 * ngx_mdm: hiredis async connections per worker, driven by nginx's event
 * loop: one to a single server (mdm_redis), one to the master that the
 * sentinels name (mdm_redis_sentinel), or one per Cluster master
 * (mdm_redis_cluster), each opened lazily.
 *
 * - Level-triggered events: hiredis reads at most 16 KiB per call and does
 *   not loop to EAGAIN, so edge-triggered epoll would stall large replies.
 * - hiredis calls every callback exactly once, possibly after the request
 *   is gone: a callback's state (a "batch") is malloc'd and only says
 *   who still waits (batch->done, NULL once nobody does).
 * - This file knows no request: the caller hands a completion callback
 *   (done, data) with each plan and gets the replies through it, in plan
 *   order, whichever connections they came from.
 * - hiredis 0.14 has no command timeout: each request has its own timer.
 * - The fd is hiredis's: our cleanup forgets it, redisFree() closes it.
 * - Every new connection starts with AUTH (when configured) pipelined
 *   before anything else, and, to a master named by the sentinels, ROLE.
 *   A refused AUTH or a master that is not one drops the connection (the
 *   commands queued behind get no reply: 503) and backs off.
 * - Nothing here blocks: Sentinel discovery and the Cluster slot map
 *   (ngx_http_mdm_redis_topo.c) are asked on the event loop; requests
 *   meanwhile get 503 + Retry-After.
 */
#include "ngx_http_mdm_redis_int.h"

ngx_http_mdm_redis_t ngx_http_mdm_rds;

/* ---------------------------------------------------------------- */
/* hiredis event hooks                                              */

static void
ngx_http_mdm_ev_read(ngx_event_t *ev)
{
    ngx_connection_t *c = ev->data;

    redisAsyncHandleRead(c->data);
}

static void
ngx_http_mdm_ev_write(ngx_event_t *ev)
{
    ngx_connection_t *c = ev->data;
    redisAsyncContext *ac = c->data;
    ngx_http_mdm_node_t *node = ac->data;

    redisAsyncHandleWrite(ac);
    /* Still output pending (socket full, or still connecting): now wait
     * for epoll. ac may be gone if the write failed. */
    if (node->ac == ac && ac->ev.data == c && node->want_write &&
        !c->write->active) {
        ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}

static void
ngx_http_mdm_add_read(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (!c->read->active) {
        ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}

static void
ngx_http_mdm_del_read(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}

/*
 * hiredis asks for a write event after every command and drops it once
 * the buffer is flushed: two epoll_ctl() per request. Once connected, the
 * write is posted instead, so all commands of one loop iteration leave in
 * one write() and epoll is used only when the socket is full.
 */
static void
ngx_http_mdm_add_write(void *privdata)
{
    ngx_connection_t *c = privdata;
    redisAsyncContext *ac = c->data;
    ngx_http_mdm_node_t *node = ac->data;

    node->want_write = 1;
    if (c->write->active) {
        return;
    }
    if (node->connected) {
        if (!c->write->posted) {
            ngx_post_event(c->write, &ngx_posted_events);
        }
        return;
    }
    ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
}

static void
ngx_http_mdm_del_write(void *privdata)
{
    ngx_connection_t *c = privdata;
    redisAsyncContext *ac = c->data;
    ngx_http_mdm_node_t *node = ac->data;

    node->want_write = 0;
    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}

static void
ngx_http_mdm_ev_cleanup(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (c == NULL) {
        return;
    }
    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }
    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }
    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }
    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }
    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}

static ngx_int_t
ngx_http_mdm_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    ngx_connection_t *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }
    c->data = ac;
    c->read->handler = ngx_http_mdm_ev_read;
    c->write->handler = ngx_http_mdm_ev_write;
    c->read->log = log;
    c->write->log = log;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_mdm_add_read;
    ac->ev.delRead = ngx_http_mdm_del_read;
    ac->ev.addWrite = ngx_http_mdm_add_write;
    ac->ev.delWrite = ngx_http_mdm_del_write;
    ac->ev.cleanup = ngx_http_mdm_ev_cleanup;
    return NGX_OK;
}

/* ---------------------------------------------------------------- */
/* one connection                                                   */

void
ngx_http_mdm_node_failed(ngx_http_mdm_node_t *node)
{
    node->backoff = node->backoff
                        ? ngx_min(node->backoff * 2, NGX_HTTP_MDM_BACKOFF_MAX)
                        : NGX_HTTP_MDM_BACKOFF_MIN;
    node->retry_at = ngx_current_msec + node->backoff;
}

void
ngx_http_mdm_node_set(ngx_http_mdm_node_t *node, const mdm_redis_addr_t *a,
                      ngx_uint_t kind)
{
    node->addr = *a;
    node->kind = kind;
    mdm_redis_addr_format(a, node->name, sizeof(node->name));
}

static void
ngx_http_mdm_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_mdm_node_t *node = ac->data;

    if (node->timer.timer_set && node->kind != NGX_HTTP_MDM_NODE_SENTINEL) {
        ngx_del_timer(&node->timer);
    }
    if (status != REDIS_OK) {
        /* hiredis frees ac after this; onDisconnect is not called; the
         * queued callbacks run with no reply */
        ngx_log_error(NGX_LOG_ERR, ngx_http_mdm_rds.log, 0,
                      "MDM04003 cannot connect to Redis at %s: %s", node->name,
                      ac->errstr);
        if (node->timer.timer_set) {
            ngx_del_timer(&node->timer);
        }
        if (node->ac == ac) {
            node->ac = NULL;
        }
        node->connected = 0;
        ngx_http_mdm_node_failed(node);
        ngx_http_mdm_rds.topo.lost_master(node);
        return;
    }
    node->connected = 1;
    node->last_reply = ngx_current_msec;
    if (ngx_http_mdm_rds.mcf->redis_password.data == NULL &&
        !node->check_role) {
        node->backoff = 0;
    }
    ngx_log_error(NGX_LOG_INFO, ngx_http_mdm_rds.log, 0,
                  "connected to Redis at %s", node->name);
}

static void
ngx_http_mdm_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_mdm_node_t *node = ac->data;

    if (node->ac == ac) {
        node->ac = NULL;
        node->connected = 0;
        if (node->timer.timer_set) {
            ngx_del_timer(&node->timer);
        }
    }
    if (status != REDIS_OK && !ngx_http_mdm_rds.exiting) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_mdm_rds.log, 0,
                      "MDM04004 lost the Redis connection to %s: %s",
                      node->name, ac->errstr);
        ngx_http_mdm_rds.topo.lost_master(node);
    }
}

/* Drop the connection: pending callbacks run (now, or once the current
 * callback returns) with no reply. */
void
ngx_http_mdm_node_drop(ngx_http_mdm_node_t *node)
{
    redisAsyncContext *ac = node->ac;

    if (ac == NULL) {
        return;
    }
    node->ac = NULL;
    node->connected = 0;
    if (node->timer.timer_set) {
        ngx_del_timer(&node->timer);
    }
    redisAsyncFree(ac);
}

static void
ngx_http_mdm_node_timeout(ngx_event_t *ev)
{
    ngx_http_mdm_node_t *node =
        (ngx_http_mdm_node_t *) ((u_char *) ev -
                                 offsetof(ngx_http_mdm_node_t, timer));

    ngx_log_error(NGX_LOG_ERR, ngx_http_mdm_rds.log, 0,
                  "MDM04005 Redis at %s did not %s within %M ms", node->name,
                  node->connected ? "answer" : "accept the connection",
                  ngx_http_mdm_rds.mcf->connect_timeout);
    ngx_http_mdm_node_drop(node);
    ngx_http_mdm_node_failed(node);
    ngx_http_mdm_rds.topo.lost_master(node);
}

/* AUTH's answer: a refusal is a connection failure (logged once). */
static void
ngx_http_mdm_auth_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_http_mdm_node_t *node = privdata;
    redisReply *r = reply;

    if (r == NULL || node->ac != ac) {
        return;
    }
    if (r->type != REDIS_REPLY_ERROR) {
        node->auth_logged = 0;
        if (!node->check_role) {
            node->backoff = 0;
        }
        return;
    }
    if (!node->auth_logged) {
        node->auth_logged = 1;
        ngx_log_error(NGX_LOG_ERR, ngx_http_mdm_rds.log, 0,
                      MDM_ID_REDIS_AUTH
                      " Redis at %s refused AUTH "
                      "(mdm_redis_user, mdm_redis_password_file): %*s",
                      node->name, (size_t) ngx_min(r->len, 200), r->str);
    }
    ngx_http_mdm_node_drop(node);
    ngx_http_mdm_node_failed(node);
}

/* ROLE's answer on a master named by the sentinels. */
static void
ngx_http_mdm_role_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_http_mdm_node_t *node = privdata;
    redisReply *r = reply;

    if (r == NULL || node->ac != ac) {
        return;
    }
    if (mdm_redis_role_is_master(r)) {
        node->backoff = 0;
        return;
    }
    ngx_log_error(NGX_LOG_WARN, ngx_http_mdm_rds.log, 0,
                  MDM_ID_SENTINEL_NOT_MASTER
                  " Redis at %s is not the "
                  "master (ROLE says %*s); asking the sentinels again",
                  node->name,
                  (size_t) (r->type == REDIS_REPLY_ARRAY && r->elements &&
                                    r->element[0]->str
                                ? ngx_min(r->element[0]->len, 64)
                                : (r->str ? ngx_min(r->len, 64) : 0)),
                  r->type == REDIS_REPLY_ARRAY && r->elements &&
                          r->element[0]->str
                      ? r->element[0]->str
                      : (r->str ? r->str : ""));
    ngx_http_mdm_node_drop(node);
    ngx_http_mdm_node_failed(node);
    ngx_http_mdm_rds.topo.lost_master(node);
}

redisAsyncContext *
ngx_http_mdm_node_get(ngx_http_mdm_node_t *node)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_main_conf_t *mcf = rds->mcf;
    redisAsyncContext *ac;
    const char *argv[3];
    size_t argvlen[3];
    struct in6_addr a6;
    int argc;

    if (node->ac) {
        return node->ac;
    }
    if (rds->exiting ||
        (node->backoff &&
         (ngx_msec_int_t) (node->retry_at - ngx_current_msec) > 0)) {
        return NULL;
    }
    if (node->addr.port && inet_pton(AF_INET, node->addr.host, &a6) != 1 &&
        inet_pton(AF_INET6, node->addr.host, &a6) != 1) {
        /* a name (e.g. a Cluster announcing host names): hiredis would
         * resolve it with a blocking call */
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04003 cannot connect to Redis at %s: not an IP "
                      "address (a worker never resolves names)",
                      node->name);
        ngx_http_mdm_node_failed(node);
        return NULL;
    }
    if (node->addr.port) {
        ac = redisAsyncConnect(node->addr.host, node->addr.port);
    } else {
        ac = redisAsyncConnectUnix(node->addr.host);
    }
    if (ac == NULL) {
        ngx_http_mdm_node_failed(node);
        return NULL;
    }
    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04003 cannot connect to Redis at %s: %s", node->name,
                      ac->errstr);
        redisAsyncFree(ac);
        ngx_http_mdm_node_failed(node);
        rds->topo.lost_master(node);
        return NULL;
    }
    ac->data = node;
    node->connected = 0;
    node->want_write = 0;
    /* attach before the connect callback: setting it asks for a write */
    if (ngx_http_mdm_attach(ac, rds->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_mdm_node_failed(node);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, ngx_http_mdm_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_mdm_on_disconnect);
    node->ac = ac;
    node->last_reply = ngx_current_msec;
    node->timer.handler = ngx_http_mdm_node_timeout;
    node->timer.log = rds->log;
    /* nginx's timer code reads ev->data as a connection */
    node->timer.data = &rds->dummy;
    node->timer.cancelable = 1;
    ngx_add_timer(&node->timer, mcf->connect_timeout);
    if (node->kind == NGX_HTTP_MDM_NODE_DATA && mcf->redis_password.data) {
        argc = mdm_redis_auth_argv((char *) mcf->redis_user.data,
                                   (char *) mcf->redis_password.data, argv,
                                   argvlen);
        redisAsyncCommandArgv(ac, ngx_http_mdm_auth_done, node, argc, argv,
                              argvlen);
    }
    if (node->check_role) {
        redisAsyncCommand(ac, ngx_http_mdm_role_done, node, "ROLE");
    }
    return ac;
}

/* ---------------------------------------------------------------- */
/* replies                                                          */

/* A copy that outlives the callback; freeReplyObject() frees it. */
static redisReply *
ngx_http_mdm_dup(const redisReply *r)
{
    redisReply *d = calloc(1, sizeof(*d));
    size_t i;

    if (d == NULL) {
        return NULL;
    }
    d->type = r->type;
    d->integer = r->integer;
    if (r->str) {
        d->str = malloc(r->len + 1);
        if (d->str == NULL) {
            free(d);
            return NULL;
        }
        memcpy(d->str, r->str, r->len);
        d->str[r->len] = '\0';
        d->len = r->len;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        d->element = calloc(r->elements, sizeof(redisReply *));
        if (d->element == NULL) {
            freeReplyObject(d);
            return NULL;
        }
        d->elements = r->elements;
        for (i = 0; i < r->elements; i++) {
            d->element[i] = ngx_http_mdm_dup(r->element[i]);
            if (d->element[i] == NULL) {
                freeReplyObject(d);
                return NULL;
            }
        }
    }
    return d;
}

static void
ngx_http_mdm_batch_free(ngx_http_mdm_batch_t *b)
{
    size_t i;

    for (i = 0; i < b->nreplies; i++) {
        if (b->replies[i]) {
            freeReplyObject(b->replies[i]);
        }
    }
    free(b);
}

/* Hand the replies (or the failure) to whoever waits, once. */
static void
ngx_http_mdm_batch_finish(ngx_http_mdm_batch_t *b)
{
    ngx_http_mdm_redis_done_pt done = b->done;

    if (done == NULL || ngx_http_mdm_rds.exiting) {
        return;
    }
    if (!b->failed && b->missing) {
        return;
    }
    b->done = NULL;
    done(b->data, b->failed ? NULL : b->replies, b->failed ? 0 : b->nreplies);
}

static void ngx_http_mdm_callback(redisAsyncContext *ac, void *reply,
                                  void *privdata);

ngx_int_t
ngx_http_mdm_send_one(ngx_http_mdm_batch_t *b, ngx_http_mdm_ref_t *ref,
                      const mdm_cmd_t *c, ngx_http_mdm_node_t *node, int ask)
{
    redisAsyncContext *ac;
    int with_cb = ref != NULL;

    ac = ngx_http_mdm_node_get(node);
    if (ac == NULL) {
        return NGX_ERROR;
    }
    if (ask && redisAsyncCommand(ac, NULL, NULL, "ASKING") != REDIS_OK) {
        return NGX_ERROR;
    }
    if (redisAsyncCommandArgv(ac, with_cb ? ngx_http_mdm_callback : NULL,
                              with_cb ? ref : NULL, c->argc, c->argv,
                              c->argvlen) != REDIS_OK) {
        return NGX_ERROR;
    }
    if (ref) {
        ref->node = node;
    }
    (void) b;
    return NGX_OK;
}

/*
 * WAIT's answer. Fewer replicas than asked is logged, not an error; and
 * as WAIT then blocks the connection for its whole timeout, it is left
 * out for NGX_HTTP_MDM_WAIT_PAUSE ms on that connection before it is
 * tried again.
 */
#define NGX_HTTP_MDM_WAIT_PAUSE 5000

static void
ngx_http_mdm_wait_reply(ngx_http_mdm_node_t *node, const redisReply *r)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (r->type == REDIS_REPLY_INTEGER &&
        r->integer >= (long long) rds->mcf->redis_wait) {
        if (node->wait_short) {
            node->wait_short = 0;
            ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                          "Redis at %s: %L replicas acknowledge writes "
                          "again",
                          node->name, r->integer);
        }
        return;
    }
    if (!node->wait_short) {
        ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                      MDM_ID_REDIS_WAIT
                      " Redis at %s: %L of %i replicas "
                      "acknowledged a write within %M ms (the write is on "
                      "the master); WAIT paused for %d ms at a time until "
                      "they do",
                      node->name,
                      r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL,
                      rds->mcf->redis_wait, rds->mcf->redis_wait_timeout,
                      NGX_HTTP_MDM_WAIT_PAUSE);
    }
    node->wait_short = 1;
    node->wait_retry = ngx_current_msec + NGX_HTTP_MDM_WAIT_PAUSE;
}

static void
ngx_http_mdm_callback(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_ref_t *ref = privdata;
    ngx_http_mdm_batch_t *b = ref->b;
    ngx_http_mdm_node_t *node = ac->data;
    redisReply *r = reply;
    ngx_int_t rc;

    ref->node = NULL;
    if (r == NULL) {
        b->failed = 1;
    } else if (ref->wait) {
        node->last_reply = ngx_current_msec;
        if (!rds->exiting) {
            ngx_http_mdm_wait_reply(node, r);
        }
    } else {
        node->last_reply = ngx_current_msec;
        if (r->type == REDIS_REPLY_ERROR &&
            rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER &&
            !rds->exiting) {
            rc = rds->topo.redirect(ref, r);
            if (rc == NGX_OK) {
                return; /* sent again: outstanding unchanged */
            }
            if (rc == NGX_ERROR) {
                b->failed = 1;
            }
        }
        if (!b->failed && mdm_redis_reply_failover(r)) {
            /* not (or no longer) the master: 503, find it again */
            if (!node->failover_logged) {
                node->failover_logged = 1;
                ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                              MDM_ID_REDIS_FAILOVER " Redis at %s answered "
                                                    "%*s; %s",
                              node->name, (size_t) ngx_min(r->len, 100), r->str,
                              rds->mcf->redis_mode ==
                                      NGX_HTTP_MDM_REDIS_SENTINEL
                                  ? "asking the sentinels again"
                                  : "answering 503");
            }
            b->failed = 1;
            if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_SENTINEL &&
                node->ac == ac) {
                rds->topo.lost_master(node);
                ngx_http_mdm_node_drop(node);
                ngx_http_mdm_node_failed(node);
            } else if (rds->mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER) {
                rds->topo.stale();
            }
        } else if (!b->failed) {
            node->failover_logged = 0;
        }
        if (ref->idx < b->nreplies && b->done && !b->failed) {
            b->replies[ref->idx] = ngx_http_mdm_dup(r);
            if (b->replies[ref->idx] == NULL) {
                b->failed = 1;
            }
        }
    }
    if (ref->idx < b->nreplies || ref->wait) {
        b->missing--;
    }
    b->outstanding--;
    ngx_http_mdm_batch_finish(b);
    if (b->outstanding == 0) {
        ngx_http_mdm_batch_free(b);
    }
}

/* Commands that change data (WAIT follows a plan that has one). */
static ngx_uint_t
ngx_http_mdm_cmd_writes(const mdm_cmd_t *c)
{
    static const char *reads[] = {
        "GET",       "HGET",   "HMGET",   "HGETALL",       "SMEMBERS",
        "SISMEMBER", "LRANGE", "LLEN",    "XRANGE",        "XREVRANGE",
        "XLEN",      "EXISTS", "ZRANGE",  "ZRANGEBYSCORE", "SCARD",
        "HLEN",      "TTL",    "PTTL",    "PING",          "EVALSHA_RO",
        "EVAL_RO",   "MGET",   "HEXISTS", "SCRIPT",        NULL};
    ngx_uint_t i;
    size_t n;

    if (c->argc < 1) {
        return 0;
    }
    n = c->argvlen[0];
    for (i = 0; reads[i]; i++) {
        if (ngx_strlen(reads[i]) == n &&
            ngx_strncasecmp((u_char *) c->argv[0], (u_char *) reads[i], n) ==
                0) {
            return 0;
        }
    }
    return 1;
}

/* Cluster: copies of the commands (a redirect sends one again after the
 * caller's plan is gone). */
static size_t
ngx_http_mdm_cmds_size(const mdm_plan_t *p)
{
    size_t i, n = p->ncmds * sizeof(mdm_cmd_t);
    int k;

    for (i = 0; i < p->ncmds; i++) {
        /* + alignment of the next command's arrays */
        n += p->cmds[i].argc * (sizeof(char *) + sizeof(size_t)) +
             sizeof(void *);
        for (k = 0; k < p->cmds[i].argc; k++) {
            n += p->cmds[i].argvlen[k] + 1;
        }
    }
    return n;
}

static void
ngx_http_mdm_cmds_copy(const mdm_plan_t *p, u_char *mem, mdm_cmd_t *out)
{
    const char **argv;
    size_t *argvlen, i;
    int k;

    mem += p->ncmds * sizeof(mdm_cmd_t);
    for (i = 0; i < p->ncmds; i++) {
        mem = ngx_align_ptr(mem, sizeof(void *));
        argv = (const char **) mem;
        mem += p->cmds[i].argc * sizeof(char *);
        argvlen = (size_t *) mem;
        mem += p->cmds[i].argc * sizeof(size_t);
        for (k = 0; k < p->cmds[i].argc; k++) {
            argvlen[k] = p->cmds[i].argvlen[k];
            ngx_memcpy(mem, p->cmds[i].argv[k], argvlen[k]);
            mem[argvlen[k]] = '\0';
            argv[k] = (const char *) mem;
            mem += argvlen[k] + 1;
        }
        out[i].argc = p->cmds[i].argc;
        out[i].argv = argv;
        out[i].argvlen = argvlen;
    }
}

/*
 * Cluster needs a reply handler per command (redirects), the others only
 * for the replies the caller reads; with mdm_redis_wait, a plan that
 * writes is followed by WAIT on each connection it wrote to, and its
 * answer waits for WAIT's.
 */
ngx_http_mdm_batch_t *
ngx_http_mdm_redis_send(ngx_http_mdm_main_conf_t *mcf, const mdm_plan_t *p,
                        ngx_http_mdm_redis_done_pt done, void *data)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_node_t *one[64], **route, *node;
    ngx_http_mdm_batch_t *b;
    ngx_http_mdm_ref_t *ref;
    ngx_uint_t cluster, writes;
    size_t i, j, k, nref, nwait, size, refoff, sent;

    if (p == NULL || p->nreplies == 0 || rds->exiting) {
        return NULL;
    }
    rds->mcf = mcf;
    cluster = mcf->redis_mode == NGX_HTTP_MDM_REDIS_CLUSTER;

    /* where each command goes; unavailable now: NULL (503) */
    if (rds->topo.ready() != NGX_OK) {
        return NULL;
    }
    route = p->ncmds <= 64 ? one : malloc(p->ncmds * sizeof(*route));
    if (route == NULL) {
        return NULL;
    }
    writes = 0;
    for (i = 0; i < p->ncmds; i++) {
        node = cluster ? rds->topo.route(&p->cmds[i]) : &rds->main;
        if (node == NULL || ngx_http_mdm_node_get(node) == NULL) {
            if (cluster && node == NULL) {
                rds->topo.stale();
            }
            goto fail;
        }
        route[i] = node;
        if (mcf->redis_wait && ngx_http_mdm_cmd_writes(&p->cmds[i])) {
            writes = 1;
        }
    }

    nref = cluster ? p->ncmds : p->nreplies;
    nwait = writes ? p->ncmds : 0; /* at most one per command */
    size = sizeof(*b) + p->nreplies * sizeof(redisReply *);
    size = ngx_align(size, sizeof(void *));
    refoff = size;
    size += (nref + nwait) * sizeof(ngx_http_mdm_ref_t);
    if (cluster) {
        size += ngx_http_mdm_cmds_size(p);
    }
    b = calloc(1, size);
    if (b == NULL) {
        goto fail;
    }
    b->refs = (ngx_http_mdm_ref_t *) ((u_char *) b + refoff);
    b->nreplies = p->nreplies;
    if (cluster) {
        b->cmds = (mdm_cmd_t *) (b->refs + nref + nwait);
        ngx_http_mdm_cmds_copy(p, (u_char *) b->cmds, b->cmds);
    }
    for (i = 0; i < nref + nwait; i++) {
        b->refs[i].b = b;
        b->refs[i].idx = (unsigned) i;
        b->refs[i].wait = i >= nref;
    }

    sent = 0;
    for (i = 0; i < p->ncmds; i++) {
        ref = i < nref ? &b->refs[i] : NULL;
        if (ngx_http_mdm_send_one(b, ref, cluster ? &b->cmds[i] : &p->cmds[i],
                                  route[i], 0) != NGX_OK) {
            break;
        }
        if (ref) {
            sent++;
        }
    }
    /* WAIT once per connection written to, after its commands */
    for (j = 0; i == p->ncmds && j < nwait; j++) {
        for (k = 0; k < j && route[k] != route[j]; k++) {
            /* void */
        }
        if (k < j || !ngx_http_mdm_cmd_writes(&p->cmds[j]) ||
            (route[j]->wait_short &&
             (ngx_msec_int_t) (route[j]->wait_retry - ngx_current_msec) > 0)) {
            continue;
        }
        if (route[j]->wait_short) {
            /* one WAIT tries again; the others skip it meanwhile */
            route[j]->wait_retry = ngx_current_msec + NGX_HTTP_MDM_WAIT_PAUSE;
        }
        ref = &b->refs[nref + j];
        if (route[j]->ac == NULL ||
            redisAsyncCommand(route[j]->ac, ngx_http_mdm_callback, ref,
                              "WAIT %d %d", (int) mcf->redis_wait,
                              (int) mcf->redis_wait_timeout) != REDIS_OK) {
            i = 0; /* failed */
            break;
        }
        ref->node = route[j];
        b->missing++;
        sent++;
    }
    if (route != one) {
        free(route);
    }
    if (i < p->ncmds || sent < nref) {
        /* a connection refused a command: those sent free b once
         * answered; the caller answers 503 now */
        if (sent == 0) {
            free(b);
            return NULL;
        }
        b->outstanding = sent;
        b->missing = sent;
        b->failed = 1;
        return NULL;
    }
    b->nref = nref + nwait;
    b->missing += p->nreplies;
    b->outstanding = sent;
    b->done = done;
    b->data = data;
    return b;

fail:
    if (route != one) {
        free(route);
    }
    return NULL;
}

void
ngx_http_mdm_redis_detach(ngx_http_mdm_batch_t *b)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    ngx_http_mdm_node_t *dead[8];
    ngx_uint_t ndead, j;
    size_t i, nref;

    if (b == NULL) {
        return;
    }
    b->done = NULL;
    b->data = NULL;
    /* A request gave up waiting: a connection that has been silent for a
     * whole timeout is dead or hung; start afresh next time. (Collected
     * first: dropping runs this batch's callbacks, which may free it.) */
    ndead = 0;
    nref = b->nref;
    for (i = 0; i < nref && ndead < 8; i++) {
        ngx_http_mdm_node_t *n = b->refs[i].node;

        if (n == NULL || n->ac == NULL || rds->mcf == NULL ||
            ngx_current_msec - n->last_reply < rds->mcf->timeout) {
            continue;
        }
        for (j = 0; j < ndead && dead[j] != n; j++) {
            /* void */
        }
        if (j == ndead) {
            dead[ndead++] = n;
        }
    }
    for (j = 0; j < ndead; j++) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04006 Redis at %s did not answer within %M ms; "
                      "reconnecting",
                      dead[j]->name, rds->mcf->timeout);
        rds->topo.lost_master(dead[j]);
        ngx_http_mdm_node_drop(dead[j]);
    }
}
