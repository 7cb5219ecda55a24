/*
 * The metrics of mdm-eventd: per endpoint, the counters it keeps since
 * start (eventd_ep_t), the failed deliveries by reason (counted here for
 * eventd_endpoint.c), the group's backlog as last read with the status;
 * and the listener of metrics_listen: a non-blocking HTTP/1.1 server in
 * the daemon's poll loop (curl_multi_poll's extra fds) that reads one
 * bounded request per connection, answers GET /metrics (Prometheus text
 * exposition format 0.0.4) or an error, and closes. Nothing here blocks:
 * a client that does not send its request within a few seconds is
 * dropped.
 */
#include "eventd_metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENT_MS 5000

void
eventd_metrics_init(eventd_metrics_t *m, const eventd_t *d, time_t started)
{
    size_t i;

    memset(m, 0, sizeof(*m));
    m->d = d;
    m->started = started;
    m->lfd = -1;
    for (i = 0; i < EVENTD_METRICS_CONN; i++) {
        m->conn[i].fd = -1;
    }
}

const char *
eventd_metrics_reason(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return "http";
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return "connection-lost";
    default:
        return "other";
    }
}

void
eventd_metrics_failed(eventd_mtable_t *t, const char *reason, long status)
{
    size_t i;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < t->n; i++) {
            if (t->v[i].status == status &&
                strcmp(t->v[i].reason, reason) == 0) {
                t->v[i].n++;
                return;
            }
        }
        if (t->n < EVENTD_MTABLE_MAX - 1) {
            break;
        }
        /* statuses come from the receiver: the last set takes the rest */
        reason = "other";
        status = 0;
    }
    if (t->n == EVENTD_MTABLE_MAX) {
        return;
    }
    snprintf(t->v[t->n].reason, sizeof(t->v[0].reason), "%s", reason);
    t->v[t->n].status = status;
    t->v[t->n++].n = 1;
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

/* One sample per endpoint of a family. */
static void
per_ep(buf_t *b, const eventd_t *d, const char *name, const char *type,
       const char *help, int which)
{
    char e[160];
    long long v;
    size_t i;

    family(b, name, type, help);
    for (i = 0; i < d->neps; i++) {
        const eventd_ep_t *ep = &d->eps[i];
        switch (which) {
        case 0:
            v = ep->delivered;
            break;
        case 1:
            v = ep->batches;
            break;
        case 2:
            v = ep->dropped;
            break;
        case 3:
            if (!ep->lag_known) {
                continue;
            }
            v = ep->group_lag;
            break;
        case 4:
            if (!ep->pending_known) {
                continue;
            }
            v = ep->group_pending;
            break;
        case 5:
            v = ep->attempts;
            break;
        case 6:
            v = (long long) ep->last_ok;
            break;
        case 7:
            v = (long long) ep->last_fail;
            break;
        default:
            v = ep->trimmed;
            break;
        }
        out(b, "%s{endpoint=\"%s\"} %lld\n", name,
            esc(ep->conf->name, e, sizeof(e)), v);
    }
}

static void
render(eventd_metrics_t *m, buf_t *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"mdm_eventd_events_delivered_total", "counter",
         "Events delivered (acknowledged by a 2xx answer)"},
        {"mdm_eventd_batches_delivered_total", "counter",
         "Deliveries (POSTs) answered 2xx"},
        {"mdm_eventd_events_dropped_total", "counter",
         "Events dropped after max_attempts failed deliveries"},
        {"mdm_eventd_backlog", "gauge",
         "Events in the stream not yet read by the endpoint's group (lag)"},
        {"mdm_eventd_pending", "gauge",
         "Events read by the endpoint's group, not acknowledged yet"},
        {"mdm_eventd_consecutive_failures", "gauge",
         "Failed attempts of the batch now being delivered"},
        {"mdm_eventd_last_success_timestamp_seconds", "gauge",
         "Last 2xx delivery (UNIX time, 0: none since start)"},
        {"mdm_eventd_last_failure_timestamp_seconds", "gauge",
         "Last failed delivery (UNIX time, 0: none since start)"},
        {"mdm_eventd_trimmed", "gauge",
         "1 when events were trimmed from the stream before this endpoint "
         "got them"},
    };
    const eventd_t *d = m->d;
    char e[160];
    size_t i, k;

    for (k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
        per_ep(b, d, fam[k].name, fam[k].type, fam[k].help, (int) k);
        if (k == 1) {
            family(b, "mdm_eventd_batches_failed_total", "counter",
                   "Failed deliveries, by reason (http, connect, timeout, "
                   "tls, connection-lost, start, other) and HTTP status "
                   "(0: no answer)");
            for (i = 0; i < d->neps; i++) {
                const eventd_ep_t *ep = &d->eps[i];
                size_t j;

                esc(ep->conf->name, e, sizeof(e));
                for (j = 0; j < ep->fails.n; j++) {
                    out(b,
                        "mdm_eventd_batches_failed_total{endpoint=\"%s\","
                        "reason=\"%s\",status=\"%ld\"} %lld\n",
                        e, ep->fails.v[j].reason, ep->fails.v[j].status,
                        ep->fails.v[j].n);
                }
            }
        }
    }
    family(b, "mdm_eventd_redis_up", "gauge", "1 while Redis is connected");
    out(b, "mdm_eventd_redis_up %d\n", d->redis.cmd != NULL);
    family(b, "mdm_eventd_start_time_seconds", "gauge",
           "When the daemon started");
    out(b, "mdm_eventd_start_time_seconds %lld\n", (long long) m->started);
}

/* ------------------------------------------------------------------ */
/* the listener                                                       */

int
eventd_metrics_listen(eventd_metrics_t *m, const char *addr, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, on = 1;

    if (eventd_parse_ipport(addr, &ss, &sl) != 0) {
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
conn_close(eventd_mconn_t *c)
{
    close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->inlen = c->outlen = c->outoff = 0;
}

static void
respond(eventd_metrics_t *m, eventd_mconn_t *c, int status, const char *why,
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
request(eventd_metrics_t *m, eventd_mconn_t *c)
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
conn_io(eventd_metrics_t *m, eventd_mconn_t *c)
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
accept_all(eventd_metrics_t *m, int64_t now)
{
    size_t i;
    int fd;

    for (;;) {
        fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        for (i = 0; i < EVENTD_METRICS_CONN; i++) {
            if (m->conn[i].fd < 0) {
                break;
            }
        }
        if (i == EVENTD_METRICS_CONN) {
            close(fd); /* busy: the scraper tries again */
            continue;
        }
        m->conn[i].fd = fd;
        m->conn[i].deadline = now + CLIENT_MS;
        conn_io(m, &m->conn[i]);
    }
}

size_t
eventd_metrics_pollfds(eventd_metrics_t *m, struct curl_waitfd *fds, size_t max)
{
    size_t i, n = 0;

    if (m->lfd < 0 || max == 0) {
        return 0;
    }
    fds[n].fd = m->lfd;
    fds[n].events = CURL_WAIT_POLLIN;
    fds[n++].revents = 0;
    for (i = 0; i < EVENTD_METRICS_CONN && n < max; i++) {
        if (m->conn[i].fd >= 0) {
            fds[n].fd = m->conn[i].fd;
            fds[n].events =
                m->conn[i].out ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN;
            fds[n++].revents = 0;
        }
    }
    return n;
}

void
eventd_metrics_io(eventd_metrics_t *m, const struct curl_waitfd *fds, size_t n,
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
        for (i = 0; i < EVENTD_METRICS_CONN; i++) {
            if (m->conn[i].fd == fds[k].fd) {
                conn_io(m, &m->conn[i]);
                break;
            }
        }
    }
    for (i = 0; i < EVENTD_METRICS_CONN; i++) {
        if (m->conn[i].fd >= 0 && now >= m->conn[i].deadline) {
            conn_close(&m->conn[i]);
        }
    }
    if (listener) {
        accept_all(m, now);
    }
}

int64_t
eventd_metrics_due(const eventd_metrics_t *m, int64_t limit)
{
    size_t i;

    for (i = 0; i < EVENTD_METRICS_CONN; i++) {
        if (m->conn[i].fd >= 0 && m->conn[i].deadline < limit) {
            limit = m->conn[i].deadline;
        }
    }
    return limit;
}

void
eventd_metrics_close(eventd_metrics_t *m)
{
    size_t i;

    for (i = 0; i < EVENTD_METRICS_CONN; i++) {
        if (m->conn[i].fd >= 0) {
            conn_close(&m->conn[i]);
        }
    }
    if (m->lfd >= 0) {
        close(m->lfd);
        m->lfd = -1;
    }
}
