/*
 * The metrics of mdm-pushd: counters since start (kept here, counted by
 * pushd_push.c), gauges read at the scrape from the daemon's state, and
 * the listener of metrics_listen: a non-blocking HTTP/1.1 server in the
 * daemon's poll loop that reads one bounded request per connection,
 * answers GET /metrics (Prometheus text exposition format 0.0.4) or an
 * error, and closes. Nothing here blocks: a client that does not send its
 * request within a few seconds is dropped.
 */
#include "pushd_metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CLIENT_MS 5000

void
pushd_metrics_init(pushd_metrics_t *m)
{
    size_t i;

    memset(m, 0, sizeof(*m));
    m->lfd = -1;
    for (i = 0; i < PUSHD_METRICS_CONN; i++) {
        m->conn[i].fd = -1;
    }
}

void
pushd_metrics_add(pushd_mtable_t *t, const char *result, const char *reason,
                  long status)
{
    char r[sizeof(t->v[0].reason)];
    size_t i;
    int pass;

    /* an answer without a status (connection, TLS, timeout): its kind,
     * not the text of the error */
    snprintf(r, sizeof(r), "%s", reason && reason[0] ? reason : "-");
    if (status == 0) {
        r[strcspn(r, ":")] = '\0';
    }
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < t->n; i++) {
            if (t->v[i].status == status && strcmp(t->v[i].reason, r) == 0 &&
                strcmp(t->v[i].result, result) == 0) {
                t->v[i].n++;
                return;
            }
        }
        if (t->n < PUSHD_MTABLE_MAX - 1) {
            break;
        }
        /* reasons come from the server: the last set takes the rest */
        result = "other";
        snprintf(r, sizeof(r), "other");
        status = 0;
    }
    if (t->n == PUSHD_MTABLE_MAX) {
        return;
    }
    snprintf(t->v[t->n].result, sizeof(t->v[0].result), "%s", result);
    snprintf(t->v[t->n].reason, sizeof(t->v[0].reason), "%s", r);
    t->v[t->n].status = status;
    t->v[t->n++].n = 1;
}

/* ------------------------------------------------------------------ */
/* the queue                                                          */

static const redisReply *
field(const redisReply *a, const char *name)
{
    size_t i;

    if (a == NULL || a->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }
    for (i = 0; i + 1 < a->elements; i += 2) {
        if (a->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(a->element[i]->str, name) == 0) {
            return a->element[i + 1];
        }
    }
    return NULL;
}

int
pushd_metrics_queue(pushd_metrics_t *m, redisContext *c, const char *stream,
                    const char *group)
{
    const char *xi[] = {"XINFO", "GROUPS", stream};
    const char *xp[] = {"XPENDING", stream, group};
    redisReply *g = NULL, *p = NULL;
    const redisReply *v;
    struct timeval tv;
    size_t i;

    redisAppendCommandArgv(c, 3, xi, NULL);
    redisAppendCommandArgv(c, 3, xp, NULL);
    if (redisGetReply(c, (void **) &g) != REDIS_OK ||
        redisGetReply(c, (void **) &p) != REDIS_OK) {
        if (g) {
            freeReplyObject(g);
        }
        return -1;
    }
    m->queue_known = 0;
    m->lag_known = 0;
    for (i = 0; g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
        v = field(g->element[i], "name");
        if (v == NULL || v->type != REDIS_REPLY_STRING ||
            strcmp(v->str, group) != 0) {
            continue;
        }
        /* lag: Redis 7; nil when Redis cannot tell */
        v = field(g->element[i], "lag");
        if (v && v->type == REDIS_REPLY_INTEGER) {
            m->lag = v->integer;
            m->lag_known = 1;
        }
    }
    /* XPENDING summary: count, smallest id, greatest id, consumers */
    if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2 &&
        p->element[0]->type == REDIS_REPLY_INTEGER) {
        m->queue_known = 1;
        m->pending = p->element[0]->integer;
        m->oldest_age_ms = 0;
        if (p->element[1]->type == REDIS_REPLY_STRING) {
            long long ms = strtoll(p->element[1]->str, NULL, 10);
            long long now;

            gettimeofday(&tv, NULL);
            now = (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
            m->oldest_age_ms = now > ms ? now - ms : 0;
        }
    }
    freeReplyObject(g);
    freeReplyObject(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the exposition                                                     */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf_t;

static void out(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *np;

    for (;;) {
        if (b->oom) {
            return;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                      fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t) n < b->cap) {
            b->len += (size_t) n;
            return;
        }
        np = realloc(b->p, b->cap * 2 + (size_t) n + 4096);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = b->cap * 2 + (size_t) n + 4096;
    }
}

/* A label value: backslash, double quote and newline escaped. */
static const char *
esc(const char *s, char *o, size_t olen)
{
    size_t k = 0;

    for (; *s && k + 3 < olen; s++) {
        if (*s == '\\' || *s == '"') {
            o[k++] = '\\';
            o[k++] = *s;
        } else if (*s == '\n') {
            o[k++] = '\\';
            o[k++] = 'n';
        } else {
            o[k++] = *s;
        }
    }
    o[k] = '\0';
    return o;
}

static void
family(buf_t *b, const char *name, const char *type, const char *help)
{
    out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
gauge(buf_t *b, const char *name, const char *help, long long v)
{
    family(b, name, "gauge", help);
    out(b, "%s %lld\n", name, v);
}

static void
counter(buf_t *b, const char *name, const char *help, long long v)
{
    family(b, name, "counter", help);
    out(b, "%s %lld\n", name, v);
}

static void
table(buf_t *b, const char *name, const char *help, const pushd_mtable_t *t,
      int with_result)
{
    char e1[64], e2[128];
    size_t i;

    family(b, name, "counter", help);
    for (i = 0; i < t->n; i++) {
        const pushd_mcount_t *c = &t->v[i];
        if (with_result) {
            out(b, "%s{result=\"%s\",reason=\"%s\",status=\"%ld\"} %lld\n",
                name, esc(c->result, e1, sizeof(e1)),
                esc(c->reason, e2, sizeof(e2)), c->status, c->n);
        } else {
            out(b, "%s{reason=\"%s\",status=\"%ld\"} %lld\n", name,
                esc(c->reason, e2, sizeof(e2)), c->status, c->n);
        }
    }
}

static void
render(pushd_metrics_t *m, buf_t *b)
{
    time_t now = time(NULL);
    char e[512];
    size_t i;

    counter(b, "mdm_pushd_requests_total",
            "Push requests read from the stream that started a push",
            m->requests);
    counter(b, "mdm_pushd_coalesced_total",
            "Push requests joined to a push of the same enrollment",
            m->coalesced);
    counter(b, "mdm_pushd_pushes_sent_total",
            "APNs requests sent (every attempt)", m->sent);
    counter(b, "mdm_pushd_pushes_succeeded_total", "Pushes APNs accepted (200)",
            m->succeeded);
    table(b, "mdm_pushd_pushes_failed_total",
          "Pushes that ended without success, by result (dead, failed, "
          "gave-up), APNs reason and HTTP status (0: no answer)",
          &m->failed, 1);
    table(b, "mdm_pushd_pushes_skipped_total",
          "Push requests answered without an APNs request, by reason",
          &m->skipped, 0);
    table(b, "mdm_pushd_retries_total",
          "APNs requests to be retried, by reason and HTTP status (0: no "
          "answer)",
          &m->retries, 0);
    if (m->queue_known) {
        if (m->lag_known) {
            gauge(b, "mdm_pushd_queue_lag",
                  "Stream entries not yet read by the consumer group", m->lag);
        }
        gauge(b, "mdm_pushd_queue_pending",
              "Stream entries read by the group and not acknowledged yet",
              m->pending);
        family(b, "mdm_pushd_queue_oldest_pending_age_seconds", "gauge",
               "Age of the oldest pending stream entry");
        out(b, "mdm_pushd_queue_oldest_pending_age_seconds %.3f\n",
            (double) m->oldest_age_ms / 1000.0);
    }
    gauge(b, "mdm_pushd_jobs", "Pushes in memory", (long long) m->jobs->n);
    gauge(b, "mdm_pushd_inflight_streams",
          "APNs requests on the wire (HTTP/2 streams)",
          (long long) m->jobs->ninflight);
    gauge(b, "mdm_pushd_retries_waiting", "Pushes waiting for a retry",
          (long long) m->jobs->nwaiting);
    gauge(b, "mdm_pushd_connections", "HTTP/2 connections to APNs, open",
          (long long) pushd_h2_connections(m->h2));
    gauge(b, "mdm_pushd_redis_up", "1 while Redis is connected",
          m->redis->cmd != NULL);
    family(b, "mdm_pushd_cert_days_left", "gauge",
           "Whole days until the push certificate of a topic expires");
    for (i = 0; i < m->topics->n; i++) {
        const pushd_cert_t *c = m->topics->v[i];
        out(b, "mdm_pushd_cert_days_left{topic=\"%s\"} %ld\n",
            esc(c->topic, e, sizeof(e)), pushd_cert_days_left(c, now));
    }
    family(b, "mdm_pushd_cert_expiry_timestamp_seconds", "gauge",
           "When the push certificate of a topic expires (UNIX time)");
    for (i = 0; i < m->topics->n; i++) {
        const pushd_cert_t *c = m->topics->v[i];
        out(b, "mdm_pushd_cert_expiry_timestamp_seconds{topic=\"%s\"} %lld\n",
            esc(c->topic, e, sizeof(e)), (long long) c->not_after);
    }
    family(b, "mdm_pushd_cert_refused", "gauge",
           "1 when APNs refused the certificate of a topic (403)");
    for (i = 0; i < m->topics->n; i++) {
        const pushd_cert_t *c = m->topics->v[i];
        out(b, "mdm_pushd_cert_refused{topic=\"%s\"} %d\n",
            esc(c->topic, e, sizeof(e)), c->refused ? 1 : 0);
    }
    gauge(b, "mdm_pushd_start_time_seconds", "When the daemon started",
          (long long) m->started);
}

/* ------------------------------------------------------------------ */
/* the listener                                                       */

int
pushd_metrics_listen(pushd_metrics_t *m, const char *addr, char *err,
                     size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, on = 1;

    if (pushd_parse_ipport(addr, &ss, &sl) != 0) {
        snprintf(err, errlen, "metrics_listen: %s: expected IP:PORT", addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "metrics_listen: socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (bind(fd, (struct sockaddr *) &ss, sl) != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "metrics_listen: %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    m->lfd = fd;
    return 0;
}

static void
conn_close(pushd_mconn_t *c)
{
    close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->inlen = c->outlen = c->outoff = 0;
}

static void
respond(pushd_metrics_t *m, pushd_mconn_t *c, int status, const char *why,
        int head)
{
    buf_t body, all;

    memset(&body, 0, sizeof(body));
    memset(&all, 0, sizeof(all));
    if (status == 200) {
        render(m, &body);
    } else {
        out(&body, "%s\n", why);
    }
    if (body.oom) {
        free(body.p);
        conn_close(c);
        return;
    }
    out(&all,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
        "%sConnection: close\r\n\r\n",
        status, why, status == 200 ? "text/plain; version=0.0.4" : "text/plain",
        body.len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head && body.len) {
        out(&all, "%.*s", (int) body.len, body.p);
    }
    free(body.p);
    if (all.oom) {
        free(all.p);
        conn_close(c);
        return;
    }
    c->out = all.p;
    c->outlen = all.len;
    c->outoff = 0;
}

/* A complete request head is in c->in: answer it. */
static void
request(pushd_metrics_t *m, pushd_mconn_t *c)
{
    char *sp1, *sp2, *q;
    int head;

    c->in[c->inlen] = '\0';
    sp1 = strchr(c->in, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond(m, c, 400, "Bad Request", 0);
        return;
    }
    *sp1 = *sp2 = '\0';
    if ((q = strchr(sp1 + 1, '?')) != NULL) {
        *q = '\0';
    }
    head = strcmp(c->in, "HEAD") == 0;
    if (strcmp(sp1 + 1, "/metrics") != 0) {
        respond(m, c, 404, "Not Found", head);
    } else if (strcmp(c->in, "GET") != 0 && !head) {
        respond(m, c, 405, "Method Not Allowed", 0);
    } else {
        respond(m, c, 200, "OK", head);
    }
}

static void
conn_io(pushd_metrics_t *m, pushd_mconn_t *c)
{
    ssize_t n;

    while (c->out == NULL) {
        n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        c->inlen += (size_t) n;
        c->in[c->inlen] = '\0';
        if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
            request(m, c);
        } else if (c->inlen == sizeof(c->in) - 1) {
            respond(m, c, 431, "Request Header Fields Too Large", 0);
        }
        if (c->fd < 0) {
            return;
        }
    }
    while (c->outoff < c->outlen) {
        n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                 MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_close(c);
            }
            return;
        }
        c->outoff += (size_t) n;
    }
    conn_close(c);
}

static void
accept_all(pushd_metrics_t *m, int64_t now)
{
    size_t i;
    int fd;

    for (;;) {
        fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        for (i = 0; i < PUSHD_METRICS_CONN; i++) {
            if (m->conn[i].fd < 0) {
                break;
            }
        }
        if (i == PUSHD_METRICS_CONN) {
            close(fd); /* busy: the scraper tries again */
            continue;
        }
        m->conn[i].fd = fd;
        m->conn[i].deadline = now + CLIENT_MS;
        conn_io(m, &m->conn[i]);
    }
}

size_t
pushd_metrics_pollfds(pushd_metrics_t *m, struct pollfd *fds, size_t max)
{
    size_t i, n = 0;

    if (m->lfd < 0 || max == 0) {
        return 0;
    }
    fds[n].fd = m->lfd;
    fds[n].events = POLLIN;
    fds[n++].revents = 0;
    for (i = 0; i < PUSHD_METRICS_CONN && n < max; i++) {
        if (m->conn[i].fd >= 0) {
            fds[n].fd = m->conn[i].fd;
            fds[n].events = m->conn[i].out ? POLLOUT : POLLIN;
            fds[n++].revents = 0;
        }
    }
    return n;
}

void
pushd_metrics_io(pushd_metrics_t *m, const struct pollfd *fds, size_t n,
                 int64_t now)
{
    size_t i, k;
    int listener = 0;

    if (m->lfd < 0) {
        return;
    }
    for (k = 0; k < n; k++) {
        if (fds[k].revents == 0) {
            continue;
        }
        if (fds[k].fd == m->lfd) {
            listener = 1;
            continue;
        }
        for (i = 0; i < PUSHD_METRICS_CONN; i++) {
            if (m->conn[i].fd == fds[k].fd) {
                conn_io(m, &m->conn[i]);
                break;
            }
        }
    }
    for (i = 0; i < PUSHD_METRICS_CONN; i++) {
        if (m->conn[i].fd >= 0 && now >= m->conn[i].deadline) {
            conn_close(&m->conn[i]);
        }
    }
    if (listener) {
        accept_all(m, now);
    }
}

int64_t
pushd_metrics_due(const pushd_metrics_t *m, int64_t limit)
{
    size_t i;

    for (i = 0; i < PUSHD_METRICS_CONN; i++) {
        if (m->conn[i].fd >= 0 && m->conn[i].deadline < limit) {
            limit = m->conn[i].deadline;
        }
    }
    return limit;
}

void
pushd_metrics_close(pushd_metrics_t *m)
{
    size_t i;

    for (i = 0; i < PUSHD_METRICS_CONN; i++) {
        if (m->conn[i].fd >= 0) {
            conn_close(&m->conn[i]);
        }
    }
    if (m->lfd >= 0) {
        close(m->lfd);
        m->lfd = -1;
    }
}
