/*
 * Redis side of mdm-eventd: the events stream through one consumer group
 * per endpoint, the acknowledgements, the wake read and the status hashes.
 *
 * Two blocking hiredis connections. "wake" carries nothing but
 * XREAD COUNT 1 BLOCK after the newest entry id known: it is written
 * without waiting and its socket is polled next to curl's, so a new event
 * is noticed at once and the loop never sleeps in Redis. "cmd" carries the
 * group reads (without BLOCK: an endpoint reads only when it can deliver),
 * the acknowledgements and the status, bounded by a socket timeout.
 *
 * An endpoint's position is its group's: entries it read and has not
 * acknowledged are pending in the group under our consumer name, and a
 * restarted daemon reads those first (XREADGROUP ... 0). That is the only
 * source of duplicates: a batch that was on the wire when the daemon died.
 */
#include "eventd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define WAKE_BLOCK_MS "5000"

static redisReply *
call(redisContext *c, int argc, const char **argv)
{
    /* READONLY and the like: a failure, the master is found again */
    return mdm_redis_checked(c, redisCommandArgv(c, argc, argv, NULL));
}

int
eventd_redis_init(eventd_redis_t *r, const eventd_conf_t *conf)
{
    memset(r, 0, sizeof(*r));
    r->conf = conf;
    r->backoff_ms = 100;
    /* its connections as common/mdm_redisconn.c handles them */
    r->conn = (mdm_redisconn_t){
        &r->cmd,         &r->wake,       &r->waking,
        &r->retry_at_ms, &r->backoff_ms, "MDM12120",
        "MDM12121",      &conf->redis.t, (const char *const *) &r->stream};
    if (asprintf(&r->stream, "%sevents", conf->prefix) < 0 ||
        asprintf(&r->status_index, "%seventd", conf->prefix) < 0) {
        return -1;
    }
    return 0;
}

void
eventd_redis_free(eventd_redis_t *r)
{
    mdm_redislink_free(r->link);
    if (r->cmd) {
        redisFree(r->cmd);
    }
    if (r->wake) {
        redisFree(r->wake);
    }
    free(r->stream);
    free(r->status_index);
    memset(r, 0, sizeof(*r));
}

void
eventd_redis_fail(eventd_redis_t *r, const char *what)
{
    mdm_redis_fail(&r->conn, what);
}

int
eventd_redis_saw(eventd_redis_t *r, const char *sid)
{
    eventd_sid_t id;

    if (eventd_sid_parse(sid, &id) != 0 || eventd_sid_cmp(&id, &r->seen) <= 0) {
        return 0;
    }
    r->seen = id;
    return 1;
}

/* A group this run already had and finds gone (a FLUSHALL, a stream
 * deleted, XGROUP DESTROY) is created again at the stream's start: the
 * events appended since then are the ones it must not miss. */
static int
create_group(eventd_redis_t *r, eventd_ep_t *ep)
{
    const char *from = r->conf->start_all || ep->had_group ? "0" : "$";
    const char *grp[] = {"XGROUP",  "CREATE", r->stream,
                         ep->group, from,     "MKSTREAM"};
    redisReply *x;
    int created;

    x = call(r->cmd, 6, grp);
    if (x == NULL) {
        return -1;
    }
    if (x->type == REDIS_REPLY_ERROR && strncmp(x->str, "BUSYGROUP", 9) != 0) {
        mdm_daemon_log(EL_ERR, "MDM12122", "XGROUP CREATE %s %s: %s", r->stream,
                       ep->group, x->str);
        freeReplyObject(x);
        return -1;
    }
    created = x->type != REDIS_REPLY_ERROR;
    freeReplyObject(x);
    if (created || !ep->had_group) {
        mdm_daemon_log(EL_INFO, "MDM12123",
                       "endpoint %s: group %s on %s %s, consumer %s",
                       ep->conf->name, ep->group, r->stream,
                       !created         ? "resumes where it stopped"
                       : from[0] == '0' ? "created at the stream's start"
                                        : "created at the stream's end",
                       r->conf->consumer);
    }
    if (created && ep->had_group) {
        /* our pending entries went with the old group */
        ep->recovered = 1;
    }
    ep->had_group = 1;
    return 0;
}

int
eventd_redis_ensure(eventd_redis_t *r, eventd_ep_t *eps, size_t neps,
                    int64_t now_ms)
{
    const char *last[] = {"XREVRANGE", r->stream, "+", "-", "COUNT", "1"};
    redisReply *x;
    size_t i;

    if (r->cmd && r->wake) {
        return 0;
    }
    if (now_ms < r->retry_at_ms) {
        return -1;
    }
    if (mdm_redis_connect(&r->conn) != 0) {
        return -1;
    }
    if (r->conf->redis.t.mode == MDM_REDIS_CLUSTER && r->link == NULL &&
        (r->link = mdm_redisconn_link(&r->conn)) == NULL) {
        eventd_redis_fail(r, "out of memory");
        return -1;
    }
    for (i = 0; i < neps; i++) {
        if (create_group(r, &eps[i]) != 0) {
            eventd_redis_fail(r, "XGROUP CREATE");
            return -1;
        }
    }
    /* the wake read starts after the newest entry: everything up to it is
     * found by the endpoints' own group reads (and a stream created again
     * after a FLUSHALL starts from its own newest entry) */
    r->seen.ms = r->seen.seq = 0;
    x = call(r->cmd, 6, last);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x) {
            freeReplyObject(x);
        }
        eventd_redis_fail(r, "XREVRANGE");
        return -1;
    }
    if (x->elements > 0 && x->element[0]->type == REDIS_REPLY_ARRAY &&
        x->element[0]->elements > 0 &&
        x->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        eventd_redis_saw(r, x->element[0]->element[0]->str);
    }
    freeReplyObject(x);
    r->backoff_ms = 100;
    mdm_daemon_log(EL_INFO, "MDM12123", "Redis %s: %zu endpoint(s) on %s",
                   r->conf->redis.desc, neps, r->stream);
    return 0;
}

/* XREADGROUP's reply: [[stream, entries]] or nil. Entries: [id, fields]
 * (fields nil when the entry was trimmed while pending). */
static long
deliver(const redisReply *x, eventd_entry_fn fn, void *data)
{
    const redisReply *en;
    size_t i;
    long n = 0;

    if (x->type != REDIS_REPLY_ARRAY || x->elements < 1 ||
        x->element[0]->type != REDIS_REPLY_ARRAY ||
        x->element[0]->elements < 2 ||
        x->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        return 0;
    }
    en = x->element[0]->element[1];
    for (i = 0; i < en->elements; i++) {
        const redisReply *e = en->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= EVENTD_SID_LEN) {
            continue;
        }
        fn(data, e->element[0]->str,
           e->element[1]->type == REDIS_REPLY_ARRAY ? e->element[1] : NULL);
        n++;
    }
    return n;
}

long
eventd_redis_read(eventd_redis_t *r, eventd_ep_t *ep, long count,
                  eventd_entry_fn fn, void *data)
{
    char cnt[24];
    const char *argv[] = {"XREADGROUP",      "GROUP",   ep->group,
                          r->conf->consumer, "COUNT",   cnt,
                          "STREAMS",         r->stream, "0"};
    redisReply *x;
    long n;

    snprintf(cnt, sizeof(cnt), "%ld", count);
    for (;;) {
        argv[8] = ep->recovered ? ">" : "0";
        x = call(r->cmd, 9, argv);
        if (x == NULL) {
            eventd_redis_fail(r, "XREADGROUP");
            return -1;
        }
        if (x->type == REDIS_REPLY_ERROR) {
            /* NOGROUP after a FLUSHALL or a deleted stream: reconnecting
             * creates the groups again */
            mdm_daemon_log(EL_ERR, "MDM12126", "endpoint %s: XREADGROUP %s: %s",
                           ep->conf->name, ep->group, x->str);
            freeReplyObject(x);
            eventd_redis_fail(r, "XREADGROUP");
            return -1;
        }
        n = deliver(x, fn, data);
        freeReplyObject(x);
        if (n > 0 || ep->recovered) {
            return n;
        }
        /* no own pending entries (left): new ones from now on */
        ep->recovered = 1;
    }
}

int
eventd_redis_ack(eventd_redis_t *r, const eventd_ep_t *ep,
                 char (*ids)[EVENTD_SID_LEN], size_t n)
{
    const char **argv;
    redisReply *x;
    size_t i;
    int rc = 0;

    if (n == 0) {
        return 0;
    }
    argv = malloc((n + 3) * sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    argv[0] = "XACK";
    argv[1] = r->stream;
    argv[2] = ep->group;
    for (i = 0; i < n; i++) {
        argv[3 + i] = ids[i];
    }
    x = call(r->cmd, (int) (n + 3), argv);
    free(argv);
    if (x == NULL || x->type == REDIS_REPLY_ERROR) {
        mdm_daemon_log(
            EL_ERR, "MDM12127",
            "endpoint %s: XACK of %zu entries failed (%s): delivered, "
            "acknowledged again once Redis answers",
            ep->conf->name, n, x ? x->str : r->cmd->errstr);
        rc = -1;
    }
    if (x) {
        freeReplyObject(x);
    }
    if (x == NULL) {
        eventd_redis_fail(r, "XACK");
    }
    return rc;
}

int
eventd_redis_wake_fd(const eventd_redis_t *r)
{
    return r->wake && r->waking ? r->wake->fd : -1;
}

int
eventd_redis_wake_start(eventd_redis_t *r)
{
    char after[48];
    const char *argv[] = {"XREAD",       "COUNT",   "1",       "BLOCK",
                          WAKE_BLOCK_MS, "STREAMS", r->stream, after};

    if (r->wake == NULL || r->waking) {
        return r->waking ? 0 : -1;
    }
    snprintf(after, sizeof(after), "%llu-%llu", (unsigned long long) r->seen.ms,
             (unsigned long long) r->seen.seq);
    return mdm_redis_send(&r->conn, 8, argv, "XREAD") == 0 ? 0 : -1;
}

int
eventd_redis_wake_ready(eventd_redis_t *r)
{
    redisReply *x, *en;
    int newer = 0;

    if (r->wake == NULL || !r->waking) {
        return 0;
    }
    if (mdm_redis_reply(&r->conn, &x, "XREAD") <= 0) {
        return 0; /* failed, or a partial reply */
    }
    if (x->type == REDIS_REPLY_ERROR) {
        mdm_daemon_log(EL_ERR, "MDM12126", "XREAD %s: %s", r->stream, x->str);
        freeReplyObject(x);
        eventd_redis_fail(r, "XREAD");
        return 0;
    }
    if (x->type == REDIS_REPLY_ARRAY && x->elements > 0 &&
        x->element[0]->type == REDIS_REPLY_ARRAY &&
        x->element[0]->elements > 1 &&
        x->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        en = x->element[0]->element[1];
        if (en->elements > 0 && en->element[0]->type == REDIS_REPLY_ARRAY &&
            en->element[0]->elements > 0 &&
            en->element[0]->element[0]->type == REDIS_REPLY_STRING) {
            eventd_redis_saw(r, en->element[0]->element[0]->str);
            newer = 1;
        }
    }
    freeReplyObject(x);
    return newer;
}

/* ------------------------------------------------------------------ */
/* status                                                             */

static void
num_str(const redisReply *v, char *out, size_t outlen)
{
    if (v == NULL || v->type == REDIS_REPLY_NIL) {
        snprintf(out, outlen, "%s", "");
    } else if (v->type == REDIS_REPLY_INTEGER) {
        snprintf(out, outlen, "%lld", v->integer);
    } else if (v->type == REDIS_REPLY_STRING) {
        snprintf(out, outlen, "%s", v->str);
    } else {
        snprintf(out, outlen, "%s", "");
    }
}

/* Entries after an endpoint's position that were trimmed from the stream
 * (MAXLEN while the endpoint was down) can never reach it: say so. They
 * were, when every entry left is after the position (first entry newer)
 * and the group's lag (entries added after its position, Redis 7) exceeds
 * the entries left. */
static void
check_trimmed(eventd_ep_t *ep, const char *last_delivered, const char *lag,
              const redisReply *xs)
{
    const redisReply *first = mdm_redis_kv(xs, "first-entry"),
                     *len = mdm_redis_kv(xs, "length");
    eventd_sid_t ld, f;
    long long behind;
    int lost;

    if (lag[0] == '\0' || first == NULL || first->type != REDIS_REPLY_ARRAY ||
        first->elements < 1 || first->element[0]->type != REDIS_REPLY_STRING ||
        len == NULL || len->type != REDIS_REPLY_INTEGER ||
        eventd_sid_parse(last_delivered, &ld) != 0 ||
        eventd_sid_parse(first->element[0]->str, &f) != 0) {
        return;
    }
    behind = strtoll(lag, NULL, 10);
    lost = eventd_sid_cmp(&f, &ld) > 0 && behind > len->integer;
    if (lost && !ep->trimmed) {
        mdm_daemon_log(
            EL_WARN, "MDM12130",
            "endpoint %s: %lld event(s) after %s were trimmed from "
            "the stream before delivery: they are lost for this "
            "endpoint; raise the web servers' events_maxlen to cover "
            "longer outages",
            ep->conf->name, behind - len->integer, last_delivered);
    }
    ep->trimmed = lost;
}

/* Cluster: one endpoint's HSET (argv, a words) and its SADD to the index,
 * each to its slot's master */
static int
status_routed(eventd_redis_t *r, const char **argv, size_t a, const char *name)
{
    const char *sadd[3] = {"SADD", r->status_index, name};
    size_t l0[64], l1[3], i;
    mdm_cmd_t c[2];
    mdm_plan_t p = {c, 2, 2};
    redisReply *rep[2] = {NULL, NULL};
    int rc;

    for (i = 0; i < a; i++) {
        l0[i] = strlen(argv[i]);
    }
    for (i = 0; i < 3; i++) {
        l1[i] = strlen(sadd[i]);
    }
    c[0] = (mdm_cmd_t){(int) a, argv, l0};
    c[1] = (mdm_cmd_t){3, sadd, l1};
    rc = mdm_redislink_run(r->link, &p, rep);
    for (i = 0; i < 2; i++) {
        if (rep[i]) {
            freeReplyObject(rep[i]);
        }
    }
    if (rc != 0) {
        eventd_redis_fail(r, "status");
    }
    return rc;
}

int
eventd_redis_status(eventd_redis_t *r, eventd_ep_t *eps, size_t neps,
                    const char *const *fields, size_t nfields)
{
    static const char *states[] = {"reading", "idle",    "sending",
                                   "sending", "backoff", "acknowledging",
                                   "draining"};
    const char *groups[] = {"XINFO", "GROUPS", r->stream};
    const char *stream[] = {"XINFO", "STREAM", r->stream};
    redisReply *xg = NULL, *xs = NULL, *x;
    size_t i, g, k, nsent = 0;
    int rc = 0;

    redisAppendCommandArgv(r->cmd, 3, groups, NULL);
    redisAppendCommandArgv(r->cmd, 3, stream, NULL);
    if (redisGetReply(r->cmd, (void **) &xg) != REDIS_OK ||
        redisGetReply(r->cmd, (void **) &xs) != REDIS_OK) {
        if (xg) {
            freeReplyObject(xg);
        }
        eventd_redis_fail(r, "XINFO");
        return -1;
    }
    for (i = 0; i < neps; i++) {
        eventd_ep_t *ep = &eps[i];
        char pending[24] = "", lag[24] = "", last[48] = "", n[8][24];
        const char *argv[64];
        size_t a = 0;

        for (g = 0; xg && xg->type == REDIS_REPLY_ARRAY && g < xg->elements;
             g++) {
            const redisReply *name = mdm_redis_kv(xg->element[g], "name");
            if (name && name->type == REDIS_REPLY_STRING &&
                strcmp(name->str, ep->group) == 0) {
                num_str(mdm_redis_kv(xg->element[g], "pending"), pending,
                        sizeof(pending));
                num_str(mdm_redis_kv(xg->element[g], "lag"), lag, sizeof(lag));
                num_str(mdm_redis_kv(xg->element[g], "last-delivered-id"), last,
                        sizeof(last));
            }
        }
        if (last[0]) {
            check_trimmed(ep, last, lag, xs);
        }
        ep->pending_known = pending[0] != '\0';
        ep->group_pending = strtoll(pending, NULL, 10);
        ep->lag_known = lag[0] != '\0';
        ep->group_lag = strtoll(lag, NULL, 10);
        snprintf(n[0], sizeof(n[0]), "%lld", ep->delivered);
        snprintf(n[1], sizeof(n[1]), "%lld", ep->posts);
        snprintf(n[2], sizeof(n[2]), "%lld", ep->failures);
        snprintf(n[3], sizeof(n[3]), "%lld", ep->dropped);
        snprintf(n[4], sizeof(n[4]), "%d", ep->attempts);
        snprintf(n[5], sizeof(n[5]), "%lld", (long long) ep->last_ok);
        snprintf(n[6], sizeof(n[6]), "%lld", (long long) ep->last_fail);
        snprintf(n[7], sizeof(n[7]), "%lld", (long long) time(NULL));
        argv[a++] = "HSET";
        argv[a++] = ep->status_key;
        for (k = 0; k + 1 < nfields && a + 2 < 30; k += 2) {
            argv[a++] = fields[k];
            argv[a++] = fields[k + 1];
        }
        argv[a++] = "url";
        argv[a++] = ep->conf->url;
        argv[a++] = "group";
        argv[a++] = ep->group;
        argv[a++] = "state";
        argv[a++] = states[ep->state];
        argv[a++] = "delivered";
        argv[a++] = n[0];
        argv[a++] = "posts";
        argv[a++] = n[1];
        argv[a++] = "failures";
        argv[a++] = n[2];
        argv[a++] = "dropped";
        argv[a++] = n[3];
        argv[a++] = "attempts";
        argv[a++] = n[4];
        argv[a++] = "last_ok";
        argv[a++] = n[5];
        argv[a++] = "last_fail";
        argv[a++] = n[6];
        argv[a++] = "last_error";
        argv[a++] = ep->last_error;
        argv[a++] = "updated";
        argv[a++] = n[7];
        argv[a++] = "pending";
        argv[a++] = pending;
        argv[a++] = "lag";
        argv[a++] = lag;
        argv[a++] = "last_delivered_id";
        argv[a++] = last;
        argv[a++] = "trimmed";
        argv[a++] = ep->trimmed ? "1" : "0";
        if (r->link) {
            /* Cluster: the status hash and the index in their slots */
            if (status_routed(r, argv, a, ep->conf->name) != 0) {
                rc = -1;
                break;
            }
            continue;
        }
        redisAppendCommandArgv(r->cmd, (int) a, argv, NULL);
        nsent++;
        argv[0] = "SADD";
        argv[1] = r->status_index;
        argv[2] = ep->conf->name;
        redisAppendCommandArgv(r->cmd, 3, argv, NULL);
        nsent++;
    }
    if (xg) {
        freeReplyObject(xg);
    }
    if (xs) {
        freeReplyObject(xs);
    }
    for (i = 0; i < nsent; i++) {
        x = NULL;
        if (redisGetReply(r->cmd, (void **) &x) != REDIS_OK) {
            eventd_redis_fail(r, "status");
            return -1;
        }
        freeReplyObject(x);
    }
    return rc;
}
