/* The blocking Redis link: AUTH, Sentinel, Cluster (mdm_redislink.h). */
#include "mdm_redislink.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis.h>

#define ID_CONNECT        "MDM04003"
#define MAX_REPLIES_STACK 64

/* ------------------------------------------------------------------ */
/* configuration                                                       */

static int
add_addr(mdm_redis_target_t *t, const char *kind, const char *s, char *err,
         size_t errlen)
{
    char e[300];

    if (t->naddr >= MDM_REDIS_MAX_ADDRS) {
        snprintf(err, errlen, "%s: at most %d addresses", kind,
                 MDM_REDIS_MAX_ADDRS);
        return -1;
    }
    if (mdm_redis_addr_parse(s, strlen(s), &t->addr[t->naddr], e, sizeof(e)) !=
        0) {
        snprintf(err, errlen, "%s: %s", kind, e);
        return -1;
    }
    t->naddr++;
    return 0;
}

int
mdm_redis_target_single(mdm_redis_target_t *t, const char *kind,
                        const char *addr, char *err, size_t errlen)
{
    t->mode = MDM_REDIS_SINGLE;
    t->naddr = 0;
    return add_addr(t, kind, addr, err, errlen);
}

int
mdm_redis_target_sentinel(mdm_redis_target_t *t, const char *kind,
                          const char *master, const char *const *addrs, int n,
                          char *err, size_t errlen)
{
    int i;

    t->mode = MDM_REDIS_SENTINEL;
    t->naddr = 0;
    if (master == NULL || master[0] == '\0' ||
        strlen(master) >= sizeof(t->master) ||
        strcspn(master, " \t\r\n,") != strlen(master)) {
        snprintf(err, errlen, "%s: expected MASTER ADDR [ADDR...]", kind);
        return -1;
    }
    snprintf(t->master, sizeof(t->master), "%s", master);
    if (n < 1) {
        snprintf(err, errlen, "%s: no sentinel address after \"%s\"", kind,
                 master);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (add_addr(t, kind, addrs[i], err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

int
mdm_redis_target_cluster(mdm_redis_target_t *t, const char *kind,
                         const char *const *addrs, int n, char *err,
                         size_t errlen)
{
    int i;

    t->mode = MDM_REDIS_CLUSTER;
    t->naddr = 0;
    if (n < 1) {
        snprintf(err, errlen, "%s: expected ADDR [ADDR...]", kind);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (add_addr(t, kind, addrs[i], err, errlen) != 0) {
            return -1;
        }
        if (t->addr[t->naddr - 1].port == 0) {
            snprintf(err, errlen,
                     "%s: a Cluster node needs IP:PORT (its nodes announce "
                     "TCP addresses), got \"%s\"",
                     kind, addrs[i]);
            return -1;
        }
    }
    return 0;
}

int
mdm_redis_split(char *buf, const char *const sep, const char **words, int n)
{
    char *save = NULL, *w;
    int k = 0;

    for (w = strtok_r(buf, sep, &save); w != NULL && k < n;
         w = strtok_r(NULL, sep, &save)) {
        words[k++] = w;
    }
    return k;
}

int
mdm_redis_target_password(char *dst, size_t dstlen, const char *kind,
                          const char *path, int *loose, char *err,
                          size_t errlen)
{
    char e[400];

    if (mdm_redis_read_password_file(path, dst, dstlen, loose, e, sizeof(e)) !=
        0) {
        snprintf(err, errlen, "%s: %s", kind, e);
        return -1;
    }
    return 0;
}

const char *
mdm_redis_target_name(const mdm_redis_target_t *t, char *buf, size_t len)
{
    char a[300];

    if (t->naddr < 1) {
        snprintf(buf, len, "(none)");
    } else if (t->mode == MDM_REDIS_SENTINEL) {
        snprintf(buf, len, "sentinel master %s via %s%s", t->master,
                 mdm_redis_addr_format(&t->addr[0], a, sizeof(a)),
                 t->naddr > 1 ? ",..." : "");
    } else if (t->mode == MDM_REDIS_CLUSTER) {
        snprintf(buf, len, "cluster via %s%s",
                 mdm_redis_addr_format(&t->addr[0], a, sizeof(a)),
                 t->naddr > 1 ? ",..." : "");
    } else {
        mdm_redis_addr_format(&t->addr[0], buf, len);
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* logging, time                                                       */

static void logf_(mdm_redislink_log_fn log, void *data, int level,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
logf_(mdm_redislink_log_fn log, void *data, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log(data, level, msg);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval
tv_ms(int ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* the master last announced (one line per change, for the process) */
static pthread_mutex_t master_lock = PTHREAD_MUTEX_INITIALIZER;
static mdm_redis_addr_t master_seen;

/* ------------------------------------------------------------------ */
/* one connection: connect, AUTH                                       */

typedef struct {
    const mdm_redis_target_t *t;
    mdm_redislink_log_fn log;
    void *logdata;
    const char *id_connect;
} opener_t;

static redisContext *
connect_auth(const opener_t *o, const mdm_redis_addr_t *a, const char *user,
             const char *pass, int timeout_ms)
{
    const mdm_redis_target_t *t = o->t;
    int cto = t->connect_timeout_ms > 0 ? t->connect_timeout_ms : 1000;
    const char *argv[3];
    size_t lens[3];
    redisContext *c;
    redisReply *r;
    char name[300];
    int argc;

    c = a->port ? redisConnectWithTimeout(a->host, a->port, tv_ms(cto))
                : redisConnectUnixWithTimeout(a->host, tv_ms(cto));
    if (c == NULL || c->err) {
        logf_(o->log, o->logdata, 0, "%s cannot connect to Redis at %s: %s",
              o->id_connect, mdm_redis_addr_format(a, name, sizeof(name)),
              c ? c->errstr : "out of memory");
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    redisSetTimeout(c, tv_ms(timeout_ms));
    if (pass == NULL || pass[0] == '\0') {
        return c;
    }
    argc = mdm_redis_auth_argv(user, pass, argv, lens);
    r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        /* the reply names no secret: WRONGPASS, NOAUTH, ERR ... */
        logf_(o->log, o->logdata, 0, "%s Redis at %s refused AUTH%s%s: %s",
              MDM_ID_REDIS_AUTH, mdm_redis_addr_format(a, name, sizeof(name)),
              user && user[0] ? " as user " : "", user ? user : "",
              r ? r->str : c->errstr);
        if (r) {
            freeReplyObject(r);
        }
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

static int
sentinel_resolve(const opener_t *o, mdm_redis_addr_t *out)
{
    const mdm_redis_target_t *t = o->t;
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", t->master};
    size_t lens[3] = {8, 23, strlen(t->master)};
    int cto = t->connect_timeout_ms > 0 ? t->connect_timeout_ms : 1000;
    redisContext *c;
    redisReply *r;
    int i, ok;

    for (i = 0; i < t->naddr; i++) {
        c = connect_auth(o, &t->addr[i], NULL, t->sentinel_password, cto);
        if (c == NULL) {
            continue;
        }
        r = redisCommandArgv(c, 3, argv, lens);
        ok = mdm_redis_sentinel_addr(r, out) == 0;
        if (r) {
            freeReplyObject(r);
        }
        redisFree(c);
        if (ok) {
            return 0;
        }
    }
    logf_(o->log, o->logdata, 0,
          "%s no sentinel of %d gave the address of master \"%s\"",
          MDM_ID_SENTINEL_NONE, t->naddr, t->master);
    return -1;
}

static redisContext *
open_master(const opener_t *o, int timeout_ms)
{
    const mdm_redis_target_t *t = o->t;
    mdm_redis_addr_t m;
    redisContext *c;
    redisReply *r;
    char name[300];
    int master, changed;

    if (t->mode == MDM_REDIS_SINGLE) {
        return connect_auth(o, &t->addr[0], t->user, t->password, timeout_ms);
    }
    if (sentinel_resolve(o, &m) != 0) {
        return NULL;
    }
    c = connect_auth(o, &m, t->user, t->password, timeout_ms);
    if (c == NULL) {
        return NULL;
    }
    r = redisCommand(c, "ROLE");
    master = mdm_redis_role_is_master(r);
    if (r) {
        freeReplyObject(r);
    }
    mdm_redis_addr_format(&m, name, sizeof(name));
    if (!master) {
        logf_(o->log, o->logdata, 1,
              "%s %s, given by the sentinels for \"%s\", is not a master "
              "(yet): trying again",
              MDM_ID_SENTINEL_NOT_MASTER, name, t->master);
        redisFree(c);
        return NULL;
    }
    pthread_mutex_lock(&master_lock);
    changed = !mdm_redis_addr_eq(&master_seen, &m);
    master_seen = m;
    pthread_mutex_unlock(&master_lock);
    if (changed) {
        logf_(o->log, o->logdata, 2, "%s master \"%s\" is %s",
              MDM_ID_SENTINEL_MASTER, t->master, name);
    }
    return c;
}

static redisContext *open_cluster_node(const opener_t *o, const char *key,
                                       int timeout_ms);

redisContext *
mdm_redis_open(const mdm_redis_target_t *t, const char *key, int timeout_ms,
               mdm_redislink_log_fn log, void *logdata)
{
    opener_t o = {t, log, logdata, ID_CONNECT};

    if (t->mode == MDM_REDIS_CLUSTER) {
        return open_cluster_node(&o, key, timeout_ms);
    }
    return open_master(&o, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* the link                                                            */

struct mdm_redislink_s {
    mdm_redis_target_t t;
    opener_t o;
    redisContext *c;                         /* single, Sentinel */
    mdm_slotmap_t *map;                      /* Cluster */
    redisContext *node[MDM_REDIS_MAX_NODES]; /* by map index */
    int map_ok;
    int64_t refresh_at, loaded_at; /* after MOVED: read the map again */
    int64_t retry_at, backoff;
    mdm_link_err_t err;
};

mdm_redislink_t *
mdm_redislink_new(const mdm_redis_target_t *t, mdm_redislink_log_fn log,
                  void *logdata)
{
    mdm_redislink_t *l = calloc(1, sizeof(*l));

    if (l == NULL) {
        return NULL;
    }
    l->t = *t;
    l->o.t = &l->t;
    l->o.log = log;
    l->o.logdata = logdata;
    l->o.id_connect = ID_CONNECT;
    l->backoff = 100;
    if (t->mode == MDM_REDIS_CLUSTER) {
        l->map = malloc(sizeof(*l->map));
        if (l->map == NULL) {
            free(l);
            return NULL;
        }
        mdm_slotmap_init(l->map);
    }
    return l;
}

static void
drop_nodes(mdm_redislink_t *l)
{
    int i;

    for (i = 0; i < MDM_REDIS_MAX_NODES; i++) {
        if (l->node[i]) {
            redisFree(l->node[i]);
            l->node[i] = NULL;
        }
    }
}

void
mdm_redislink_free(mdm_redislink_t *l)
{
    if (l == NULL) {
        return;
    }
    if (l->c) {
        redisFree(l->c);
    }
    drop_nodes(l);
    free(l->map);
    free(l);
}

mdm_link_err_t
mdm_redislink_error(const mdm_redislink_t *l)
{
    return l->err;
}

static int
timeout_of(const mdm_redislink_t *l)
{
    return l->t.timeout_ms > 0 ? l->t.timeout_ms : 2000;
}

static void
failed_attempt(mdm_redislink_t *l)
{
    int max = l->t.max_backoff_ms > 0 ? l->t.max_backoff_ms : 5000;

    l->retry_at = now_ms() + l->backoff;
    l->backoff = l->backoff * 2 > max ? max : l->backoff * 2;
    l->err = MDM_LINK_ERR_CONNECT;
}

/* take the connection to a out of old[] (NULL: none) */
static redisContext *
take_conn(mdm_redislink_t *l, redisContext **old, const mdm_redis_addr_t *a)
{
    redisContext *c;
    int i;

    for (i = 0; i < MDM_REDIS_MAX_NODES; i++) {
        if (old[i] && mdm_redis_addr_eq(&l->map->node[i], a)) {
            c = old[i];
            old[i] = NULL;
            if (c->err == 0) {
                return c;
            }
            redisFree(c);
        }
    }
    return NULL;
}

/*
 * The slot map from the first known master or seed that answers. The
 * connections to masters that stay are kept (a refresh after MOVED costs
 * one round trip); the map is replaced only by a good one.
 */
static int
load_map(mdm_redislink_t *l)
{
    mdm_redis_addr_t seeds[MDM_REDIS_MAX_ADDRS + MDM_REDIS_MAX_NODES];
    redisContext *old[MDM_REDIS_MAX_NODES], *c, *keep[MDM_REDIS_MAX_NODES];
    mdm_slotmap_t *m = malloc(sizeof(*m));
    redisReply *r;
    int i, n = 0, ok, k;

    memcpy(old, l->node, sizeof(old));
    memset(l->node, 0, sizeof(l->node));
    /* known masters first (the seeds may be gone), then the seeds */
    for (i = 0; i < l->map->nnodes && n < MDM_REDIS_MAX_NODES; i++) {
        seeds[n++] = l->map->node[i];
    }
    for (i = 0; i < l->t.naddr; i++) {
        seeds[n++] = l->t.addr[i];
    }
    l->map_ok = 0;
    l->refresh_at = 0;
    l->loaded_at = now_ms();
    for (i = 0; m != NULL && i < n; i++) {
        c = take_conn(l, old, &seeds[i]);
        if (c == NULL) {
            c = connect_auth(&l->o, &seeds[i], l->t.user, l->t.password,
                             timeout_of(l));
        }
        if (c == NULL) {
            continue;
        }
        r = redisCommand(c, "CLUSTER SLOTS");
        ok = mdm_slotmap_load(m, r) == 0 && m->nnodes > 0;
        if (r) {
            freeReplyObject(r);
        }
        if (!ok) {
            redisFree(c);
            continue;
        }
        memset(keep, 0, sizeof(keep));
        for (k = 0; k < m->nnodes; k++) {
            if (m->node[k].host[0] == '\0') {
                /* announced without an IP: the one we asked */
                memcpy(m->node[k].host, seeds[i].host, sizeof(seeds[i].host));
            }
            if (c && mdm_redis_addr_eq(&m->node[k], &seeds[i])) {
                keep[k] = c;
                c = NULL;
            } else {
                keep[k] = take_conn(l, old, &m->node[k]);
            }
        }
        if (c) {
            redisFree(c);
        }
        memcpy(l->map, m, sizeof(*m));
        memcpy(l->node, keep, sizeof(keep));
        for (k = 0; k < MDM_REDIS_MAX_NODES; k++) {
            if (old[k]) {
                redisFree(old[k]);
            }
        }
        l->map_ok = 1;
        free(m);
        return 0;
    }
    for (k = 0; k < MDM_REDIS_MAX_NODES; k++) {
        if (old[k]) {
            redisFree(old[k]);
        }
    }
    free(m);
    logf_(l->o.log, l->o.logdata, 0,
          "%s no Cluster node of %d answered CLUSTER SLOTS", MDM_ID_CLUSTER_MAP,
          n);
    return -1;
}

static redisContext *
open_cluster_node(const opener_t *o, const char *key, int timeout_ms)
{
    mdm_redislink_t *l = mdm_redislink_new(o->t, o->log, o->logdata);
    redisContext *c = NULL;
    int idx;

    if (l == NULL) {
        return NULL;
    }
    l->t.timeout_ms = timeout_ms;
    if (load_map(l) == 0) {
        idx = key ? mdm_slotmap_owner(l->map, mdm_redis_slot(key, strlen(key)))
                  : 0;
        if (idx >= 0 && l->node[idx]) {
            c = l->node[idx];
            l->node[idx] = NULL;
        } else if (idx >= 0) {
            c = connect_auth(o, &l->map->node[idx], o->t->user, o->t->password,
                             timeout_ms);
        }
    }
    mdm_redislink_free(l);
    return c;
}

int
mdm_redislink_ready(mdm_redislink_t *l)
{
    int ok;

    l->err = MDM_LINK_OK;
    if (l->t.mode == MDM_REDIS_CLUSTER && l->map_ok && l->refresh_at &&
        now_ms() >= l->refresh_at) {
        /* a slot moved: the others may have too; a failure keeps going
           with what is known (MOVED still works) */
        (void) load_map(l);
    }
    if (l->t.mode == MDM_REDIS_CLUSTER ? l->map_ok : l->c != NULL) {
        return 0;
    }
    if (now_ms() < l->retry_at) {
        l->err = MDM_LINK_ERR_CONNECT;
        return -1;
    }
    if (l->t.mode == MDM_REDIS_CLUSTER) {
        ok = load_map(l) == 0;
    } else {
        l->c = open_master(&l->o, timeout_of(l));
        ok = l->c != NULL;
    }
    if (!ok) {
        failed_attempt(l);
        return -1;
    }
    l->backoff = 100;
    return 0;
}

static int
stale(redisContext *c)
{
    struct pollfd pfd;

    if (c->err) {
        return 1;
    }
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) != 0;
}

void
mdm_redislink_check_idle(mdm_redislink_t *l)
{
    int i;

    if (l->c && stale(l->c)) {
        redisFree(l->c);
        l->c = NULL;
    }
    for (i = 0; i < MDM_REDIS_MAX_NODES; i++) {
        if (l->node[i] && stale(l->node[i])) {
            redisFree(l->node[i]);
            l->node[i] = NULL;
        }
    }
}

static mdm_link_err_t
io_kind(const redisContext *c)
{
    if (c->err == REDIS_ERR_IO &&
        (strcmp(c->errstr, strerror(EAGAIN)) == 0 ||
         strcmp(c->errstr, strerror(ETIMEDOUT)) == 0)) {
        return MDM_LINK_ERR_TIMEOUT;
    }
    return MDM_LINK_ERR_IO;
}

/* a connection broke: drop it; Sentinel finds the master again */
static void
broke(mdm_redislink_t *l, redisContext **c)
{
    l->err = io_kind(*c);
    redisFree(*c);
    *c = NULL;
    if (l->t.mode == MDM_REDIS_CLUSTER) {
        l->map_ok = 0; /* the node may have failed over: ask again */
    }
}

static void
failover_reply(mdm_redislink_t *l, redisContext **c, const redisReply *r)
{
    logf_(l->o.log, l->o.logdata, 1,
          "%s Redis answered \"%.*s\": connection dropped, finding the "
          "master again",
          MDM_ID_REDIS_FAILOVER, (int) (r->len > 80 ? 80 : r->len), r->str);
    l->err = MDM_LINK_ERR_REPLY;
    if (c && *c) {
        redisFree(*c);
        *c = NULL;
    }
    if (l->t.mode == MDM_REDIS_CLUSTER) {
        l->map_ok = 0;
    }
}

/* ------------------------------------------------------------------ */
/* WAIT after writes                                                   */

static const char *const readonly_cmds[] = {
    "GET",       "HGET",          "HMGET",   "HGETALL", "SMEMBERS",
    "SISMEMBER", "EXISTS",        "LRANGE",  "LLEN",    "XRANGE",
    "XREVRANGE", "ZRANGEBYSCORE", "XINFO",   "SCARD",   "HLEN",
    "TTL",       "PING",          "SCRIPT",  "XREAD",   "XPENDING",
    "ZCARD",     "XLEN",          "HEXISTS", "MGET",    NULL};

static int
writes(const mdm_cmd_t *c)
{
    int k;

    if (c->argc < 1) {
        return 0;
    }
    for (k = 0; readonly_cmds[k] != NULL; k++) {
        if (c->argvlen[0] == strlen(readonly_cmds[k]) &&
            strncasecmp(c->argv[0], readonly_cmds[k], c->argvlen[0]) == 0) {
            return 0;
        }
    }
    return 1;
}

/* MDM14010 at most once a minute per process: without replicas every
   write would log it */
static int
wait_warn_due(void)
{
    static int64_t last;
    int64_t now = now_ms();
    int due;

    pthread_mutex_lock(&master_lock);
    due = last == 0 || now - last >= 60000;
    if (due) {
        last = now;
    }
    pthread_mutex_unlock(&master_lock);
    return due;
}

static void
wait_replicas(mdm_redislink_t *l, redisContext **c)
{
    redisReply *r;

    if (*c == NULL) {
        return;
    }
    r = redisCommand(*c, "WAIT %d %d", l->t.wait_replicas, l->t.wait_ms);
    if (r == NULL) {
        broke(l, c);
        return;
    }
    if ((r->type != REDIS_REPLY_INTEGER || r->integer < l->t.wait_replicas) &&
        wait_warn_due()) {
        logf_(l->o.log, l->o.logdata, 1,
              "%s WAIT %d %d: %lld replica(s) acknowledged the write (it is "
              "on the master; said at most once a minute)",
              MDM_ID_REDIS_WAIT, l->t.wait_replicas, l->t.wait_ms,
              r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL);
    }
    freeReplyObject(r);
}

/* ------------------------------------------------------------------ */
/* running a plan                                                      */

/* single server or Sentinel: one pipeline. 0 ok (rep filled), -1 */
static int
run_one(mdm_redislink_t *l, const mdm_plan_t *p, redisReply **rep)
{
    size_t i;
    void *x;
    int w = 0, bad = 0;

    for (i = 0; i < p->ncmds; i++) {
        if (l->t.wait_replicas > 0) {
            w |= writes(&p->cmds[i]); /* only WAIT needs to know */
        }
        if (redisAppendCommandArgv(l->c, p->cmds[i].argc, p->cmds[i].argv,
                                   p->cmds[i].argvlen) != REDIS_OK) {
            broke(l, &l->c);
            return -1;
        }
    }
    for (i = 0; i < p->ncmds; i++) {
        if (redisGetReply(l->c, &x) != REDIS_OK) {
            broke(l, &l->c);
            return -1;
        }
        rep[i] = x;
        if (mdm_redis_reply_failover(rep[i]) && !bad) {
            bad = 1;
            failover_reply(l, NULL, rep[i]);
        }
    }
    if (bad) {
        redisFree(l->c);
        l->c = NULL;
        return -1;
    }
    if (w && l->t.wait_replicas > 0) {
        wait_replicas(l, &l->c);
    }
    return 0;
}

static int
node_ctx(mdm_redislink_t *l, int idx)
{
    if (idx < 0 || idx >= l->map->nnodes) {
        l->err = MDM_LINK_ERR_REPLY;
        l->map_ok = 0;
        return -1;
    }
    if (l->node[idx] == NULL) {
        l->node[idx] = connect_auth(&l->o, &l->map->node[idx], l->t.user,
                                    l->t.password, timeout_of(l));
        if (l->node[idx] == NULL) {
            l->err = MDM_LINK_ERR_CONNECT;
            l->map_ok = 0;
            return -1;
        }
    }
    return 0;
}

/* the node for a command: its key's slot owner, or any connected node */
static int
node_for(mdm_redislink_t *l, const mdm_cmd_t *c)
{
    const char *k;
    size_t len;
    int i;

    k = mdm_cmd_route_key(c, &len);
    if (k != NULL) {
        return mdm_slotmap_owner(l->map, mdm_redis_slot(k, len));
    }
    for (i = 0; i < l->map->nnodes; i++) {
        if (l->node[i]) {
            return i;
        }
    }
    return l->map->nnodes > 0 ? 0 : -1;
}

/* follow MOVED/ASK for the command whose reply is *r */
static int
redirect(mdm_redislink_t *l, const mdm_cmd_t *c, redisReply **r)
{
    mdm_redis_addr_t to;
    unsigned slot;
    int ask, hops, idx;
    void *x;
    char name[300];

    for (hops = 0; (*r)->type == REDIS_REPLY_ERROR &&
                   mdm_redis_redirect((*r)->str, (*r)->len, &ask, &slot, &to);
         hops++) {
        if (hops >= MDM_REDIS_MAX_REDIRECT) {
            logf_(l->o.log, l->o.logdata, 0,
                  "%s more than %d redirects for slot %u (last: %.*s)",
                  MDM_ID_CLUSTER_REDIRECTS, MDM_REDIS_MAX_REDIRECT, slot,
                  (int) ((*r)->len > 80 ? 80 : (*r)->len), (*r)->str);
            l->err = MDM_LINK_ERR_REPLY;
            l->map_ok = 0;
            return -1;
        }
        idx = ask ? mdm_slotmap_node(l->map, &to)
                  : mdm_slotmap_set(l->map, slot, &to);
        if (!ask) {
            logf_(l->o.log, l->o.logdata, 3, "%s slot %u moved to %s",
                  MDM_ID_CLUSTER_MOVED, slot,
                  mdm_redis_addr_format(&to, name, sizeof(name)));
            /* the whole map again soon: at most once a second */
            if (l->refresh_at == 0) {
                l->refresh_at = l->loaded_at + 1000 > now_ms()
                                    ? l->loaded_at + 1000
                                    : now_ms();
            }
        }
        if (node_ctx(l, idx) != 0) {
            return -1;
        }
        freeReplyObject(*r);
        *r = NULL;
        if ((ask && redisAppendCommand(l->node[idx], "ASKING") != REDIS_OK) ||
            redisAppendCommandArgv(l->node[idx], c->argc, c->argv,
                                   c->argvlen) != REDIS_OK) {
            broke(l, &l->node[idx]);
            return -1;
        }
        if (ask) {
            if (redisGetReply(l->node[idx], &x) != REDIS_OK) {
                broke(l, &l->node[idx]);
                return -1;
            }
            freeReplyObject(x);
        }
        if (redisGetReply(l->node[idx], &x) != REDIS_OK) {
            broke(l, &l->node[idx]);
            return -1;
        }
        *r = x;
    }
    return 0;
}

/* Cluster: each command to its slot's master, replies in plan order */
static int
run_cluster(mdm_redislink_t *l, const mdm_plan_t *p, redisReply **rep)
{
    int stack[MAX_REPLIES_STACK], *to, used[MDM_REDIS_MAX_NODES] = {0};
    size_t i;
    void *x;
    int rc = -1, idx, w = 0;

    to = p->ncmds <= MAX_REPLIES_STACK ? stack : calloc(p->ncmds, sizeof(*to));
    if (to == NULL) {
        return -1;
    }
    for (i = 0; i < p->ncmds; i++) {
        to[i] = node_for(l, &p->cmds[i]);
        if (to[i] < 0) {
            l->map_ok = 0; /* a slot nobody serves: ask again */
            l->err = MDM_LINK_ERR_REPLY;
            goto out;
        }
    }
    for (i = 0; i < p->ncmds; i++) {
        idx = to[i];
        if (node_ctx(l, idx) != 0) {
            goto out;
        }
        if (redisAppendCommandArgv(l->node[idx], p->cmds[i].argc,
                                   p->cmds[i].argv,
                                   p->cmds[i].argvlen) != REDIS_OK) {
            broke(l, &l->node[idx]);
            goto out;
        }
        if (writes(&p->cmds[i])) {
            used[idx] = 1;
            w = 1;
        }
    }
    for (i = 0; i < p->ncmds; i++) {
        if (redisGetReply(l->node[to[i]], &x) != REDIS_OK) {
            broke(l, &l->node[to[i]]);
            goto out;
        }
        rep[i] = x;
    }
    for (i = 0; i < p->ncmds; i++) {
        if (redirect(l, &p->cmds[i], &rep[i]) != 0) {
            goto out;
        }
        if (mdm_redis_reply_failover(rep[i])) {
            failover_reply(l, &l->node[to[i]], rep[i]);
            goto out;
        }
    }
    if (w && l->t.wait_replicas > 0) {
        for (idx = 0; idx < l->map->nnodes; idx++) {
            if (used[idx]) {
                wait_replicas(l, &l->node[idx]);
            }
        }
    }
    rc = 0;
out:
    if (rc != 0) {
        /* replies may still be due on other nodes: start afresh */
        drop_nodes(l);
    }
    if (to != stack) {
        free(to);
    }
    return rc;
}

int
mdm_redislink_run(mdm_redislink_t *l, const mdm_plan_t *p, redisReply **rep)
{
    if (mdm_redislink_ready(l) != 0) {
        return -1;
    }
    return l->t.mode == MDM_REDIS_CLUSTER ? run_cluster(l, p, rep)
                                          : run_one(l, p, rep);
}

redisReply *
mdm_redislink_cmd(mdm_redislink_t *l, int argc, const char **argv,
                  const size_t *lens)
{
    size_t stack[64], *own = NULL;
    mdm_cmd_t c = {argc, argv, lens};
    mdm_plan_t p = {&c, 1, 1};
    redisReply *r = NULL;
    int i;

    if (lens == NULL) {
        /* NUL-terminated words */
        own = argc <= 64 ? stack : calloc((size_t) argc, sizeof(*own));
        if (own == NULL) {
            return NULL;
        }
        for (i = 0; i < argc; i++) {
            own[i] = strlen(argv[i]);
        }
        c.argvlen = own;
    }

    l->err = MDM_LINK_OK;
    if (mdm_redislink_run(l, &p, &r) != 0 && r) {
        freeReplyObject(r);
        r = NULL;
    }
    if (own != stack) {
        free(own);
    }
    return r;
}

redisReply *
mdm_redislink_cmdl(mdm_redislink_t *l, const char *w, ...)
{
    const char *argv[32];
    size_t lens[32];
    va_list ap;
    int n = 0;

    va_start(ap, w);
    for (; w != NULL && n < 32; w = va_arg(ap, const char *)) {
        argv[n] = w;
        lens[n++] = strlen(w);
    }
    va_end(ap);
    return mdm_redislink_cmd(l, n, argv, lens);
}
