/*
 * Redis side of mdm-pushd: the push stream through a consumer group, the
 * enrollment records, outcomes, events and the status hashes.
 *
 * Two blocking hiredis connections. "reader" carries nothing but the
 * stream read: XREADGROUP ... BLOCK is written without waiting and its
 * socket is polled next to the APNs connections, so a new push is picked up at
 * once and the loop never sleeps in Redis. "cmd" carries everything else as
 * short pipelined calls (one write, one read per batch of pushes), bounded by a
 * socket timeout. A blocking read would otherwise hold every later command
 * queued behind it on the same connection.
 */
#include "pushd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define READ_BLOCK_MS "5000"

/* Record the outcome of a push on the enrollment, never creating a record,
 * and mark the token dead only if it is still the token the push went to:
 * a TokenUpdate that landed meanwhile brought a live one. */
static const char outcome_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local f = {}\n"
    "for i = 4, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "if ARGV[2] == '1' and redis.call('HGET', KEYS[1], 'token') == ARGV[1] "
    "then\n"
    "  f[#f + 1] = 'push_dead'; f[#f + 1] = ARGV[3]\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(f))\n"
    "return 1\n";

char *
pushd_rec_key(const char *prefix, const char *id)
{
    size_t n = strlen(id), d = strcspn(id, ":"), i;
    char *k;

    /* the id rules of core/lua/KEYS.md */
    if (n == 0 || n > 255 || d == 0) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) id[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '{' || ch == '}') {
            return NULL;
        }
    }
    if (asprintf(&k, "%s{%.*s}%s:rec", prefix, (int) d, id, id + d) < 0) {
        return NULL;
    }
    return k;
}

int
pushd_redis_init(pushd_redis_t *r, const pushd_conf_t *conf)
{
    memset(r, 0, sizeof(*r));
    r->conf = conf;
    r->backoff_ms = 100;
    /* its connections as common/mdm_redisconn.c handles them */
    r->conn = (mdm_redisconn_t){
        &r->cmd,         &r->reader,     &r->reading,
        &r->retry_at_ms, &r->backoff_ms, "MDM09120",
        "MDM09121",      &conf->redis.t, (const char *const *) &r->stream};
    if (asprintf(&r->stream, "%spush", conf->prefix) < 0 ||
        asprintf(&r->events, "%sevents", conf->prefix) < 0 ||
        asprintf(&r->status_index, "%spushd", conf->prefix) < 0 ||
        asprintf(&r->daemon_key, "%spushd:%s", conf->prefix, conf->consumer) <
            0 ||
        asprintf(&r->topics_key, "%s:topics", r->daemon_key) < 0 ||
        asprintf(&r->guard_key, "%spushd-topics", conf->prefix) < 0) {
        return -1;
    }
    return 0;
}

static void
pend_clear(pushd_redis_t *r)
{
    size_t i;
    int k;

    for (i = 0; i < r->npend; i++) {
        for (k = 0; k < r->pend[i].argc; k++) {
            free((char *) r->pend[i].argv[k]);
        }
        free((void *) r->pend[i].argv);
        free((void *) r->pend[i].argvlen);
    }
    r->npend = 0;
}

void
pushd_redis_free(pushd_redis_t *r)
{
    pend_clear(r);
    free(r->pend);
    mdm_redislink_free(r->link);
    if (r->cmd) {
        redisFree(r->cmd);
    }
    if (r->reader) {
        redisFree(r->reader);
    }
    free(r->stream);
    free(r->events);
    free(r->status_index);
    free(r->daemon_key);
    free(r->topics_key);
    free(r->guard_key);
    memset(r, 0, sizeof(*r));
}

void
pushd_redis_fail(pushd_redis_t *r, const char *what)
{
    pend_clear(r);
    mdm_redis_fail(&r->conn, what);
}

static int
clustered(const pushd_redis_t *r)
{
    return r->conf->redis.t.mode == MDM_REDIS_CLUSTER;
}

/* Cluster: keep a copy of the command for the next replies() */
static int
pend_add(pushd_redis_t *r, int argc, const char **argv)
{
    mdm_cmd_t *n, *c;
    const char **v;
    size_t *l;
    int i;

    if (r->npend == r->cap_pend) {
        n = realloc(r->pend, (r->cap_pend ? r->cap_pend * 2 : 64) * sizeof(*n));
        if (n == NULL) {
            return REDIS_ERR;
        }
        r->pend = n;
        r->cap_pend = r->cap_pend ? r->cap_pend * 2 : 64;
    }
    v = calloc((size_t) argc, sizeof(*v));
    l = calloc((size_t) argc, sizeof(*l));
    if (v == NULL || l == NULL) {
        free(v);
        free(l);
        return REDIS_ERR;
    }
    c = &r->pend[r->npend++];
    c->argc = argc;
    c->argv = v;
    c->argvlen = l;
    for (i = 0; i < argc; i++) {
        v[i] = strdup(argv[i]);
        l[i] = v[i] ? strlen(v[i]) : 0;
        if (v[i] == NULL) {
            c->argc = i;
            return REDIS_ERR;
        }
    }
    return REDIS_OK;
}

/* Append one command in the Redis protocol. hiredis's own
 * redisAppendCommandArgv formats every argument with its printf-like
 * sdscatfmt: with APNs over nghttp2 that became the largest cost of the
 * daemon (four commands per push); this writes the same bytes directly. */
static char *
put_count(char *p, char kind, size_t n)
{
    char d[24];
    size_t k = 0;

    *p++ = kind;
    do {
        d[k++] = (char) ('0' + n % 10);
        n /= 10;
    } while (n > 0);
    while (k > 0) {
        *p++ = d[--k];
    }
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static int
append(pushd_redis_t *r, int argc, const char **argv)
{
    char stack[2048], *buf = stack, *p;
    size_t len = 16, l;
    int i, rc;

    if (clustered(r)) {
        return pend_add(r, argc, argv);
    }
    for (i = 0; i < argc; i++) {
        len += strlen(argv[i]) + 16 + 4;
    }
    if (len > sizeof(stack) && (buf = malloc(len)) == NULL) {
        return REDIS_ERR;
    }
    p = buf;
    p = put_count(p, '*', (size_t) argc);
    for (i = 0; i < argc; i++) {
        l = strlen(argv[i]);
        p = put_count(p, '$', l);
        memcpy(p, argv[i], l);
        p += l;
        *p++ = '\r';
        *p++ = '\n';
    }
    rc = redisAppendFormattedCommand(r->cmd, buf, (size_t) (p - buf));
    if (buf != stack) {
        free(buf);
    }
    return rc;
}

static redisReply *
call(pushd_redis_t *r, int argc, const char **argv)
{
    if (clustered(r)) {
        return r->link ? mdm_redislink_cmd(r->link, argc, argv, NULL) : NULL;
    }
    /* READONLY and the like: a failure, the master is found again */
    return mdm_redis_checked(r->cmd,
                             redisCommandArgv(r->cmd, argc, argv, NULL));
}

int
pushd_redis_ensure(pushd_redis_t *r, int64_t now_ms)
{
    const char *grp[] = {"XGROUP",       "CREATE", r->stream,
                         r->conf->group, "0",      "MKSTREAM"};
    const char *load[] = {"SCRIPT", "LOAD", outcome_lua};
    redisReply *x;

    if (r->cmd && r->reader) {
        return 0;
    }
    if (now_ms < r->retry_at_ms) {
        return -1;
    }
    if (mdm_redis_connect(&r->conn) != 0) {
        return -1;
    }
    if (clustered(r) && r->link == NULL &&
        (r->link = mdm_redisconn_link(&r->conn)) == NULL) {
        pushd_redis_fail(r, "out of memory");
        return -1;
    }
    /* "0": pushes requested before the group existed are sent too (a
     * fresh install whose admins queued commands first) */
    x = call(r, 6, grp);
    if (x == NULL || (x->type == REDIS_REPLY_ERROR &&
                      strncmp(x->str, "BUSYGROUP", 9) != 0)) {
        if (x) {
            mdm_daemon_log(PL_ERR, "MDM09122", "XGROUP CREATE %s %s: %s",
                           r->stream, r->conf->group, x->str);
            freeReplyObject(x);
        }
        pushd_redis_fail(r, "XGROUP CREATE");
        return -1;
    }
    freeReplyObject(x);
    x = call(r, 3, load);
    if (x == NULL || x->type != REDIS_REPLY_STRING || x->len != 40) {
        if (x) {
            freeReplyObject(x);
        }
        pushd_redis_fail(r, "SCRIPT LOAD");
        return -1;
    }
    memcpy(r->outcome_sha, x->str, 40);
    r->outcome_sha[40] = '\0';
    freeReplyObject(x);
    r->backoff_ms = 100;
    mdm_daemon_log(
        PL_INFO, "MDM09123", "Redis %s: reading %s as %s in group %s",
        r->conf->redis.desc, r->stream, r->conf->consumer, r->conf->group);
    return 0;
}

int
pushd_redis_reader_fd(const pushd_redis_t *r)
{
    return r->reader && r->reading ? r->reader->fd : -1;
}

static const redisReply *
field(const redisReply *fields, const char *name)
{
    size_t i;

    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }
    for (i = 0; i + 1 < fields->elements; i += 2) {
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING) {
            return fields->element[i + 1];
        }
    }
    return NULL;
}

/* Entries: an array of [id, [field, value...]] (fields nil when the
 * entry was trimmed from the stream meanwhile). Returns how many. Entries
 * without an enrollment id are acknowledged right away: nothing can be
 * done for them and they would sit in the pending list forever. */
static size_t
deliver(pushd_redis_t *r, const redisReply *entries, pushd_entry_fn fn,
        void *data)
{
    const char *ack[3 + 64];
    char junk[64][48];
    size_t i, n = 0, nj = 0;
    pushd_entry_t e;
    redisReply *x;

    if (entries == NULL || entries->type != REDIS_REPLY_ARRAY) {
        return 0;
    }
    for (i = 0; i < entries->elements; i++) {
        const redisReply *en = entries->element[i], *id;

        if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
            en->element[0]->type != REDIS_REPLY_STRING ||
            en->element[0]->len >= sizeof(e.entry)) {
            continue;
        }
        memcpy(e.entry, en->element[0]->str, en->element[0]->len + 1);
        id = field(en->element[1], "id");
        if (id == NULL) {
            if (nj < 64) {
                memcpy(junk[nj++], e.entry, sizeof(e.entry));
            }
            continue;
        }
        e.id = id->str;
        fn(data, &e);
        n++;
    }
    if (nj > 0 && r->cmd) {
        ack[0] = "XACK";
        ack[1] = r->stream;
        ack[2] = r->conf->group;
        for (i = 0; i < nj; i++) {
            ack[3 + i] = junk[i];
        }
        x = call(r, (int) (3 + nj), ack);
        if (x) {
            freeReplyObject(x);
        }
        mdm_daemon_log(
            PL_NOTICE, "MDM09124",
            "acknowledged %zu push request(s) without an id (trimmed "
            "or malformed)",
            nj);
    }
    return n;
}

/* XREADGROUP's reply: [[stream, entries]] or nil on timeout. */
static size_t
deliver_read(pushd_redis_t *r, const redisReply *x, pushd_entry_fn fn,
             void *data)
{
    if (x->type != REDIS_REPLY_ARRAY || x->elements < 1 ||
        x->element[0]->type != REDIS_REPLY_ARRAY ||
        x->element[0]->elements < 2) {
        return 0;
    }
    return deliver(r, x->element[0]->element[1], fn, data);
}

int
pushd_redis_recover(pushd_redis_t *r, pushd_entry_fn fn, void *data)
{
    char last[48] = "0", count[24];
    const char *argv[] = {"XREADGROUP",      "GROUP",   r->conf->group,
                          r->conf->consumer, "COUNT",   count,
                          "STREAMS",         r->stream, last};
    const redisReply *en;
    redisReply *x;
    size_t total = 0, n;

    snprintf(count, sizeof(count), "%ld", r->conf->batch);
    for (;;) {
        x = call(r, 9, argv);
        if (x == NULL || x->type == REDIS_REPLY_ERROR) {
            if (x) {
                freeReplyObject(x);
            }
            pushd_redis_fail(r, "XREADGROUP (pending)");
            return -1;
        }
        n = deliver_read(r, x, fn, data);
        total += n;
        en = x->type == REDIS_REPLY_ARRAY && x->elements > 0 &&
                     x->element[0]->elements > 1
                 ? x->element[0]->element[1]
                 : NULL;
        if (en == NULL || en->elements == 0) {
            freeReplyObject(x);
            break;
        }
        /* continue after the last entry of this page */
        snprintf(last, sizeof(last), "%s",
                 en->element[en->elements - 1]->element[0]->str);
        freeReplyObject(x);
    }
    if (total > 0) {
        mdm_daemon_log(
            PL_NOTICE, "MDM09125",
            "resuming %zu push request(s) left pending by an earlier "
            "run of %s",
            total, r->conf->consumer);
    }
    return 0;
}

int
pushd_redis_autoclaim(pushd_redis_t *r, pushd_entry_fn fn, void *data)
{
    char idle[24], count[24], start[48] = "0-0";
    const char *argv[] = {"XAUTOCLAIM",      r->stream, r->conf->group,
                          r->conf->consumer, idle,      start,
                          "COUNT",           count};
    redisReply *x;
    size_t total = 0;
    int rounds;

    snprintf(idle, sizeof(idle), "%ld", r->conf->claim_idle_ms);
    snprintf(count, sizeof(count), "%ld", r->conf->batch);
    /* a few pages per tick: the rest waits for the next one */
    for (rounds = 0; rounds < 4; rounds++) {
        x = call(r, 8, argv);
        if (x == NULL) {
            pushd_redis_fail(r, "XAUTOCLAIM");
            return -1;
        }
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 2 ||
            x->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(x);
            return -1;
        }
        total += deliver(r, x->element[1], fn, data);
        snprintf(start, sizeof(start), "%s", x->element[0]->str);
        freeReplyObject(x);
        if (strcmp(start, "0-0") == 0) {
            break;
        }
    }
    if (total > 0) {
        mdm_daemon_log(
            PL_NOTICE, "MDM09126",
            "took over %zu push request(s) pending for more than %ld "
            "ms at another consumer of group %s",
            total, r->conf->claim_idle_ms, r->conf->group);
    }
    return 0;
}

int
pushd_redis_touch(pushd_redis_t *r, char (*const *ids)[48], const size_t *n,
                  size_t nlists)
{
    const char **argv;
    size_t i, j, k = 0, total = 0;
    redisReply *x;

    for (i = 0; i < nlists; i++) {
        total += n[i];
    }
    if (total == 0) {
        return 0;
    }
    argv = malloc((total + 6) * sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    argv[k++] = "XCLAIM";
    argv[k++] = r->stream;
    argv[k++] = r->conf->group;
    argv[k++] = r->conf->consumer;
    argv[k++] = "0";
    for (i = 0; i < nlists; i++) {
        for (j = 0; j < n[i]; j++) {
            argv[k++] = ids[i][j];
        }
    }
    argv[k++] = "JUSTID";
    x = call(r, (int) k, argv);
    free(argv);
    if (x == NULL) {
        pushd_redis_fail(r, "XCLAIM");
        return -1;
    }
    freeReplyObject(x);
    return 0;
}

int
pushd_redis_read_start(pushd_redis_t *r, long count)
{
    char cnt[24];
    const char *argv[] = {
        "XREADGROUP", "GROUP", r->conf->group, r->conf->consumer, "COUNT",
        cnt,          "BLOCK", READ_BLOCK_MS,  "STREAMS",         r->stream,
        ">"};

    if (r->reader == NULL || r->reading) {
        return r->reading ? 0 : -1;
    }
    snprintf(cnt, sizeof(cnt), "%ld", count);
    return mdm_redis_send(&r->conn, 11, argv, "XREADGROUP") == 0 ? 0 : -1;
}

int
pushd_redis_read_ready(pushd_redis_t *r, pushd_entry_fn fn, void *data)
{
    redisReply *x;
    int rc;

    if (r->reader == NULL || !r->reading) {
        return 0;
    }
    rc = mdm_redis_reply(&r->conn, &x, "XREADGROUP");
    if (rc <= 0) {
        return rc; /* -1: failed; 0: partial reply, more to come */
    }
    if (x->type == REDIS_REPLY_ERROR) {
        mdm_daemon_log(PL_ERR, "MDM09127", "XREADGROUP %s: %s", r->stream,
                       x->str);
        freeReplyObject(x);
        /* NOGROUP after a FLUSHALL or a deleted stream: create it again */
        pushd_redis_fail(r, "XREADGROUP");
        return -1;
    }
    deliver_read(r, x, fn, data);
    freeReplyObject(x);
    return 0;
}

/* Cluster: send what was appended through the link, replies in order */
static int
cluster_replies(pushd_redis_t *r, redisReply **out, size_t n, const char *what)
{
    mdm_plan_t p = {r->pend, r->npend, r->npend};
    size_t i;

    memset(out, 0, n * sizeof(*out));
    if (r->npend != n || r->link == NULL ||
        mdm_redislink_run(r->link, &p, out) != 0) {
        for (i = 0; i < n; i++) {
            if (out[i]) {
                freeReplyObject(out[i]);
            }
        }
        pushd_redis_fail(r, what);
        return -1;
    }
    pend_clear(r);
    return 0;
}

/* Read n pipelined replies; -1 (and the connection dropped) on I/O error. */
static int
replies(pushd_redis_t *r, redisReply **out, size_t n, const char *what)
{
    size_t i;
    void *x;

    if (clustered(r)) {
        return cluster_replies(r, out, n, what);
    }
    for (i = 0; i < n; i++) {
        if (redisGetReply(r->cmd, &x) != REDIS_OK) {
            while (i > 0) {
                freeReplyObject(out[--i]);
            }
            pushd_redis_fail(r, what);
            return -1;
        }
        out[i] = x;
    }
    return 0;
}

static char *
dup_reply(const redisReply *x)
{
    return x && x->type == REDIS_REPLY_STRING ? strndup(x->str, x->len) : NULL;
}

int
pushd_redis_lookup(pushd_redis_t *r, pushd_job_t **jobs, size_t n)
{
    const char *argv[7] = {"HMGET", NULL,        "token",  "magic",
                           "topic", "push_dead", "enabled"};
    redisReply **rep;
    size_t i;

    if (n == 0) {
        return 0;
    }
    rep = calloc(n, sizeof(*rep));
    if (rep == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        argv[1] = jobs[i]->rec_key;
        append(r, 7, argv);
    }
    if (replies(r, rep, n, "HMGET") != 0) {
        free(rep);
        return -1;
    }
    for (i = 0; i < n; i++) {
        pushd_job_t *j = jobs[i];
        const redisReply *x = rep[i];

        free(j->token);
        free(j->magic);
        free(j->topic);
        j->token = j->magic = j->topic = NULL;
        j->result[0] = '\0';
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 5) {
            /* WRONGTYPE and the like: retrying would not change it */
            snprintf(j->result, sizeof(j->result), "failed");
            snprintf(j->reason, sizeof(j->reason), "record-unreadable");
            freeReplyObject(rep[i]);
            continue;
        }
        j->token = dup_reply(x->element[0]);
        j->magic = dup_reply(x->element[1]);
        j->topic = dup_reply(x->element[2]);
        if (x->element[0]->type != REDIS_REPLY_STRING &&
            x->element[1]->type != REDIS_REPLY_STRING &&
            x->element[2]->type != REDIS_REPLY_STRING &&
            x->element[4]->type != REDIS_REPLY_STRING) {
            snprintf(j->result, sizeof(j->result), "skipped");
            snprintf(j->reason, sizeof(j->reason), "unknown-enrollment");
        } else if (x->element[3]->type == REDIS_REPLY_STRING) {
            snprintf(j->result, sizeof(j->result), "skipped");
            snprintf(j->reason, sizeof(j->reason), "dead-token");
        } else if (x->element[4]->type == REDIS_REPLY_STRING &&
                   strcmp(x->element[4]->str, "0") == 0) {
            snprintf(j->result, sizeof(j->result), "skipped");
            snprintf(j->reason, sizeof(j->reason), "disabled");
        } else if (j->token == NULL || j->magic == NULL) {
            snprintf(j->result, sizeof(j->result), "skipped");
            snprintf(j->reason, sizeof(j->reason), "no-token");
        }
        freeReplyObject(rep[i]);
    }
    free(rep);
    return 0;
}

static void
append_outcome(pushd_redis_t *r, const pushd_job_t *j, int eval)
{
    char now[24], http[24], attempts[24], nreq[24];
    const char *argv[32];
    size_t i;
    int k = 0;

    snprintf(now, sizeof(now), "%lld", (long long) time(NULL));
    snprintf(http, sizeof(http), "%ld", j->http);
    if (j->rec_key != NULL) {
        argv[k++] = eval ? "EVAL" : "EVALSHA";
        argv[k++] = eval ? outcome_lua : r->outcome_sha;
        argv[k++] = "1";
        argv[k++] = j->rec_key;
        argv[k++] = j->token ? j->token : "";
        argv[k++] = j->mark_dead ? "1" : "0";
        argv[k++] = now;
        argv[k++] = "push_last";
        argv[k++] = now;
        argv[k++] = "push_result";
        argv[k++] = j->result;
        argv[k++] = "push_status";
        argv[k++] = http;
        argv[k++] = "push_reason";
        argv[k++] = j->reason;
        if (j->apns_id[0]) {
            argv[k++] = "push_apns_id";
            argv[k++] = j->apns_id;
        }
        append(r, k, argv);
    }
    if (eval) {
        return;
    }
    if (r->conf->events_maxlen > 0) {
        char maxlen[24];

        snprintf(maxlen, sizeof(maxlen), "%ld", r->conf->events_maxlen);
        snprintf(attempts, sizeof(attempts), "%d", j->attempts);
        snprintf(nreq, sizeof(nreq), "%zu", j->cur.n);
        k = 0;
        argv[k++] = "XADD";
        argv[k++] = r->events;
        argv[k++] = "MAXLEN";
        argv[k++] = "~";
        argv[k++] = maxlen;
        argv[k++] = "*";
        argv[k++] = "kind";
        argv[k++] = "push";
        argv[k++] = "id";
        argv[k++] = j->id;
        argv[k++] = "result";
        argv[k++] = j->result;
        argv[k++] = "http";
        argv[k++] = http;
        argv[k++] = "reason";
        argv[k++] = j->reason;
        argv[k++] = "topic";
        argv[k++] = j->topic ? j->topic : "";
        argv[k++] = "attempts";
        argv[k++] = attempts;
        argv[k++] = "requests";
        argv[k++] = nreq;
        if (j->apns_id[0]) {
            argv[k++] = "apns_id";
            argv[k++] = j->apns_id;
        }
        append(r, k, argv);
    }
    {
        const char **ack = malloc((3 + j->cur.n) * sizeof(*ack));

        if (ack == NULL) {
            return; /* left pending: claimed and pushed again later */
        }
        ack[0] = "XACK";
        ack[1] = r->stream;
        ack[2] = r->conf->group;
        for (i = 0; i < j->cur.n; i++) {
            ack[3 + i] = j->cur.v[i];
        }
        append(r, (int) (3 + j->cur.n), ack);
        free(ack);
    }
}

int
pushd_redis_outcomes(pushd_redis_t *r, pushd_job_t **jobs, size_t n)
{
    size_t i, k, per, total = 0, at = 0;
    redisReply **rep;
    int noscript = 0, rc = 0;

    if (n == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        total += (jobs[i]->rec_key ? 1 : 0) +
                 (r->conf->events_maxlen > 0 ? 1 : 0) + 1;
    }
    rep = calloc(total, sizeof(*rep));
    if (rep == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        append_outcome(r, jobs[i], 0);
    }
    if (replies(r, rep, total, "outcomes") != 0) {
        free(rep);
        return -1;
    }
    for (i = 0; i < n; i++) {
        per = (jobs[i]->rec_key ? 1 : 0) +
              (r->conf->events_maxlen > 0 ? 1 : 0) + 1;
        for (k = 0; k < per; k++) {
            redisReply *x = rep[at + k];
            if (x->type == REDIS_REPLY_ERROR) {
                if (k == 0 && jobs[i]->rec_key &&
                    strncmp(x->str, "NOSCRIPT", 8) == 0) {
                    /* SCRIPT FLUSH or a failover: once more as EVAL */
                    append_outcome(r, jobs[i], 1);
                    noscript++;
                } else {
                    mdm_daemon_log(PL_ERR, "MDM09128",
                                   "writing the outcome of the push to %s: %s",
                                   jobs[i]->id, x->str);
                }
            }
            freeReplyObject(x);
        }
        at += per;
    }
    free(rep);
    if (noscript > 0) {
        rep = calloc((size_t) noscript, sizeof(*rep));
        if (rep == NULL || replies(r, rep, (size_t) noscript, "EVAL") != 0) {
            free(rep);
            return -1;
        }
        for (i = 0; i < (size_t) noscript; i++) {
            freeReplyObject(rep[i]);
        }
        free(rep);
    }
    return rc;
}

static void
append_hset(pushd_redis_t *r, const char *key, const char *const *fv, size_t n)
{
    const char *argv[64];
    size_t i, k = 0;

    argv[k++] = "HSET";
    argv[k++] = key;
    for (i = 0; i < n && k < 64; i++) {
        argv[k++] = fv[i];
    }
    append(r, (int) k, argv);
}

/* HINCRBY every counter that moved; returns commands appended. */
static size_t
append_counters(pushd_redis_t *r, const char *key, pushd_counters_t *c)
{
    char by[24];
    const char *argv[4];
    size_t i, n = 0;

    for (i = 0; i < c->n; i++) {
        if (c->v[i].delta == 0) {
            continue;
        }
        snprintf(by, sizeof(by), "%lld", c->v[i].delta);
        argv[0] = "HINCRBY";
        argv[1] = key;
        argv[2] = c->v[i].name;
        argv[3] = by;
        append(r, 4, argv);
        n++;
    }
    return n;
}

static void
counters_flushed(pushd_counters_t *c)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        c->v[i].delta = 0;
    }
}

int
pushd_redis_status(pushd_redis_t *r, pushd_cert_t **certs, size_t ncerts,
                   pushd_counters_t *daemon, const char *const *fields,
                   size_t nfields)
{
    char na[24], days[24], infl[24], wait[24], upd[24];
    const char *argv[3];
    time_t now = time(NULL);
    size_t i, n = 0;
    redisReply **rep;
    int rc;

    snprintf(upd, sizeof(upd), "%lld", (long long) now);
    argv[0] = "SADD";
    argv[1] = r->status_index;
    argv[2] = r->conf->consumer;
    append(r, 3, argv);
    n++;
    append_hset(r, r->daemon_key, fields, nfields);
    n++;
    n += append_counters(r, r->daemon_key, daemon);
    for (i = 0; i < ncerts; i++) {
        pushd_cert_t *c = certs[i];
        const char *fv[] = {
            "topic",
            c->topic,
            "cert_file",
            c->cert_file,
            "subject",
            c->subject,
            "not_after",
            na,
            "days_left",
            days,
            "state",
            pushd_cert_state(c, now),
            "refused",
            c->refused_why,
            "guard",
            c->guard > 0 ? "ok" : c->guard < 0 ? "refused" : "unchecked",
            "guard_topic",
            c->guard_topic ? c->guard_topic : "",
            "inflight",
            infl,
            "retries_pending",
            wait,
            "updated",
            upd};

        snprintf(na, sizeof(na), "%lld", (long long) c->not_after);
        snprintf(days, sizeof(days), "%ld", pushd_cert_days_left(c, now));
        snprintf(infl, sizeof(infl), "%u", c->inflight);
        snprintf(wait, sizeof(wait), "%u", c->waiting);
        argv[0] = "SADD";
        argv[1] = r->topics_key;
        argv[2] = c->topic;
        append(r, 3, argv);
        append_hset(r, c->status_key, fv, sizeof(fv) / sizeof(fv[0]));
        n += 2 + append_counters(r, c->status_key, &c->counters);
    }
    rep = calloc(n, sizeof(*rep));
    if (rep == NULL) {
        return -1;
    }
    rc = replies(r, rep, n, "status");
    if (rc == 0) {
        counters_flushed(daemon);
        for (i = 0; i < ncerts; i++) {
            counters_flushed(&certs[i]->counters);
        }
        for (i = 0; i < n; i++) {
            freeReplyObject(rep[i]);
        }
    }
    free(rep);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the topic guard                                                    */

int
pushd_redis_guard_read(pushd_redis_t *r, const char *const *files, size_t n,
                       char **topics)
{
    const char **argv;
    redisReply *x;
    size_t i;

    argv = calloc(n + 2, sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    argv[0] = "HMGET";
    argv[1] = r->guard_key;
    for (i = 0; i < n; i++) {
        argv[i + 2] = files[i];
    }
    x = call(r, (int) (n + 2), argv);
    free(argv);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements != n) {
        if (x) {
            mdm_daemon_log(PL_ERR, "MDM09127", "HMGET %s: %s", r->guard_key,
                           x->type == REDIS_REPLY_ERROR ? x->str : "bad reply");
            freeReplyObject(x);
        }
        return -1;
    }
    for (i = 0; i < n; i++) {
        topics[i] = x->element[i]->type == REDIS_REPLY_STRING
                        ? strdup(x->element[i]->str)
                        : NULL;
    }
    freeReplyObject(x);
    return 0;
}

int
pushd_redis_guard_write(pushd_redis_t *r, pushd_cert_t *const *certs, size_t n)
{
    char na[24], upd[24], *key;
    const char *argv[4];
    redisReply **rep;
    size_t i;
    int rc;

    if (n == 0) {
        return 0;
    }
    snprintf(upd, sizeof(upd), "%lld", (long long) time(NULL));
    for (i = 0; i < n; i++) {
        const pushd_cert_t *c = certs[i];
        const char *fv[] = {"cert_file",       c->cert_file, "spki_sha256",
                            c->spki,           "subject",    c->subject,
                            "not_after",       na,           "consumer",
                            r->conf->consumer, "updated",    upd};

        if (asprintf(&key, "%spushd-topic:%s", r->conf->prefix, c->topic) < 0) {
            /* what was appended is read below: the pipeline stays whole */
            n = i;
            break;
        }
        argv[0] = "HSET";
        argv[1] = r->guard_key;
        argv[2] = c->cert_file;
        argv[3] = c->topic;
        append(r, 4, argv);
        snprintf(na, sizeof(na), "%lld", (long long) c->not_after);
        append_hset(r, key, fv, sizeof(fv) / sizeof(fv[0]));
        free(key);
    }
    rep = calloc(2 * n + 1, sizeof(*rep));
    if (rep == NULL) {
        return -1;
    }
    rc = replies(r, rep, 2 * n, "topic guard");
    if (rc == 0) {
        for (i = 0; i < 2 * n; i++) {
            freeReplyObject(rep[i]);
        }
    }
    free(rep);
    return rc;
}
