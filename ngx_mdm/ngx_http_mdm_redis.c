/*
 * ngx_mdm: one hiredis async connection per worker, driven by nginx's
 * event loop.
 *
 * - Level-triggered events: hiredis reads at most 16 KiB per call and does
 *   not loop to EAGAIN, so edge-triggered epoll would stall large replies.
 * - hiredis calls every callback exactly once, possibly after the request
 *   is gone: a callback's state (a "batch") is malloc'd and only says
 *   who still waits (batch->done, NULL once nobody does).
 * - This file knows no request: the caller hands a completion callback
 *   (done, data) with each plan and gets the replies through it.
 * - hiredis 0.14 has no command timeout: each request has its own timer.
 * - The fd is hiredis's: our cleanup forgets it, redisFree() closes it.
 */
#include "ngx_http_mdm.h"

#include <async.h>

#define NGX_HTTP_MDM_BACKOFF_MIN 100
#define NGX_HTTP_MDM_BACKOFF_MAX 5000

struct ngx_http_mdm_batch_s {
    ngx_http_mdm_redis_done_pt done; /* NULL once nobody waits */
    void *data;
    size_t nreplies;
    size_t got;
    unsigned failed : 1;
    redisReply *replies[1];
};

typedef struct {
    redisAsyncContext *ac;
    ngx_event_t connect_timer;
    ngx_msec_t retry_at;
    ngx_msec_t backoff;
    ngx_msec_t last_reply;
    ngx_log_t *log;
    ngx_http_mdm_main_conf_t *mcf;
    unsigned connected : 1;
    unsigned exiting : 1;
    unsigned want_write : 1; /* hiredis has output to send */
} ngx_http_mdm_redis_t;

static ngx_http_mdm_redis_t ngx_http_mdm_rds;

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

    redisAsyncHandleWrite(ac);
    /* Still output pending (socket full, or still connecting): now wait
     * for epoll. ac may be gone if the write failed. */
    if (ngx_http_mdm_rds.ac == ac && ac->ev.data == c &&
        ngx_http_mdm_rds.want_write && !c->write->active) {
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

    ngx_http_mdm_rds.want_write = 1;
    if (c->write->active) {
        return;
    }
    if (ngx_http_mdm_rds.connected) {
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

    ngx_http_mdm_rds.want_write = 0;
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
/* connection                                                       */

static void
ngx_http_mdm_failed(ngx_http_mdm_redis_t *rds)
{
    rds->backoff = rds->backoff
                       ? ngx_min(rds->backoff * 2, NGX_HTTP_MDM_BACKOFF_MAX)
                       : NGX_HTTP_MDM_BACKOFF_MIN;
    rds->retry_at = ngx_current_msec + rds->backoff;
}

static void
ngx_http_mdm_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (rds->connect_timer.timer_set) {
        ngx_del_timer(&rds->connect_timer);
    }
    if (status != REDIS_OK) {
        /* hiredis frees ac after this; onDisconnect is not called */
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04003 cannot connect to Redis at %V: %s",
                      &rds->mcf->redis, ac->errstr);
        if (rds->ac == ac) {
            rds->ac = NULL;
        }
        rds->connected = 0;
        ngx_http_mdm_failed(rds);
        return;
    }
    rds->connected = 1;
    rds->backoff = 0;
    rds->last_reply = ngx_current_msec;
    ngx_log_error(NGX_LOG_INFO, rds->log, 0, "connected to Redis at %V",
                  &rds->mcf->redis);
}

static void
ngx_http_mdm_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (rds->ac == ac) {
        rds->ac = NULL;
    }
    rds->connected = 0;
    if (status != REDIS_OK && !rds->exiting) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04004 lost the Redis connection to %V: %s",
                      &rds->mcf->redis, ac->errstr);
    }
}

/* Drop the connection: pending callbacks run now with no reply. */
static void
ngx_http_mdm_drop(ngx_http_mdm_redis_t *rds)
{
    redisAsyncContext *ac = rds->ac;

    if (ac == NULL) {
        return;
    }
    rds->ac = NULL;
    rds->connected = 0;
    if (rds->connect_timer.timer_set) {
        ngx_del_timer(&rds->connect_timer);
    }
    redisAsyncFree(ac);
}

static void
ngx_http_mdm_connect_timeout(ngx_event_t *ev)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    (void) ev;
    ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                  "MDM04005 Redis at %V did not accept the connection "
                  "within %M ms",
                  &rds->mcf->redis, rds->mcf->connect_timeout);
    ngx_http_mdm_drop(rds);
    ngx_http_mdm_failed(rds);
}

static redisAsyncContext *
ngx_http_mdm_get(ngx_http_mdm_main_conf_t *mcf)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;
    redisAsyncContext *ac;

    if (rds->ac) {
        return rds->ac; /* commands queue while it connects */
    }
    if (rds->exiting ||
        (rds->backoff &&
         (ngx_msec_int_t) (rds->retry_at - ngx_current_msec) > 0)) {
        return NULL;
    }
    rds->mcf = mcf;
    if (mcf->port) {
        ac = redisAsyncConnect((char *) mcf->host.data, (int) mcf->port);
    } else {
        ac = redisAsyncConnectUnix((char *) mcf->unix_path.data);
    }
    if (ac == NULL) {
        ngx_http_mdm_failed(rds);
        return NULL;
    }
    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04003 cannot connect to Redis at %V: %s", &mcf->redis,
                      ac->errstr);
        redisAsyncFree(ac);
        ngx_http_mdm_failed(rds);
        return NULL;
    }
    /* attach before the connect callback: setting it asks for a write */
    if (ngx_http_mdm_attach(ac, rds->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_mdm_failed(rds);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, ngx_http_mdm_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_mdm_on_disconnect);
    rds->ac = ac;
    rds->connect_timer.handler = ngx_http_mdm_connect_timeout;
    rds->connect_timer.log = rds->log;
    /* nginx's timer code reads ev->data as a connection */
    rds->connect_timer.data = ac->ev.data;
    rds->connect_timer.cancelable = 1;
    ngx_add_timer(&rds->connect_timer, mcf->connect_timeout);
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

static void
ngx_http_mdm_callback(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_http_mdm_batch_t *b = privdata;

    (void) ac;
    if (reply == NULL) {
        b->failed = 1;
    } else {
        ngx_http_mdm_rds.last_reply = ngx_current_msec;
        if (b->done && !b->failed) {
            b->replies[b->got] = ngx_http_mdm_dup(reply);
            if (b->replies[b->got] == NULL) {
                b->failed = 1;
            }
        }
    }
    if (++b->got < b->nreplies) {
        return;
    }
    if (b->done && !ngx_http_mdm_rds.exiting) {
        b->done(b->data, b->failed ? NULL : b->replies,
                b->failed ? 0 : b->nreplies);
    }
    ngx_http_mdm_batch_free(b);
}

ngx_http_mdm_batch_t *
ngx_http_mdm_redis_send(ngx_http_mdm_main_conf_t *mcf, const mdm_plan_t *p,
                        ngx_http_mdm_redis_done_pt done, void *data)
{
    redisAsyncContext *ac;
    ngx_http_mdm_batch_t *b;
    size_t i;

    if (p == NULL || p->nreplies == 0) {
        return NULL;
    }
    ac = ngx_http_mdm_get(mcf);
    if (ac == NULL) {
        return NULL;
    }
    b = calloc(1, sizeof(*b) + p->nreplies * sizeof(redisReply *));
    if (b == NULL) {
        return NULL;
    }
    b->nreplies = p->nreplies;
    for (i = 0; i < p->ncmds; i++) {
        if (redisAsyncCommandArgv(
                ac, i < p->nreplies ? ngx_http_mdm_callback : NULL,
                i < p->nreplies ? b : NULL, p->cmds[i].argc, p->cmds[i].argv,
                p->cmds[i].argvlen) != REDIS_OK) {
            if (i == 0) {
                free(b);
                return NULL;
            }
            /* the callbacks already queued will free it */
            b->nreplies = ngx_min(i, p->nreplies);
            return NULL;
        }
    }
    b->done = done;
    b->data = data;
    return b;
}

void
ngx_http_mdm_redis_detach(ngx_http_mdm_batch_t *b)
{
    ngx_http_mdm_redis_t *rds = &ngx_http_mdm_rds;

    if (b == NULL) {
        return;
    }
    b->done = NULL;
    b->data = NULL;
    /* A request gave up waiting: if the connection has been silent for
     * a whole timeout, it is dead or hung; start afresh next time. */
    if (rds->ac && rds->mcf &&
        ngx_current_msec - rds->last_reply >= rds->mcf->timeout) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "MDM04006 Redis at %V did not answer within %M ms; "
                      "reconnecting",
                      &rds->mcf->redis, rds->mcf->timeout);
        ngx_http_mdm_drop(rds);
    }
}

ngx_int_t
ngx_http_mdm_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_memzero(&ngx_http_mdm_rds, sizeof(ngx_http_mdm_rds));
    ngx_http_mdm_rds.log = cycle->log;
    return NGX_OK;
}

void
ngx_http_mdm_redis_exit_process(ngx_cycle_t *cycle)
{
    (void) cycle;
    ngx_http_mdm_rds.exiting = 1;
    ngx_http_mdm_drop(&ngx_http_mdm_rds);
}
