/*
 * The metrics of mdm-eventd: per endpoint, the counters it keeps since
 * start (eventd_ep_t), the failed deliveries by reason (counted here for
 * eventd_endpoint.c), the group's backlog as last read with the status;
 * and their text, which the listener of metrics_listen
 * (common/mdm_listen.c, among curl_multi_poll's extra fds) answers GET
 * /metrics with (Prometheus text exposition format 0.0.4).
 */
#include "eventd_metrics.h"

#include <stdio.h>
#include <string.h>

static void render(void *data, mdm_listen_buf_t *b);

void
eventd_metrics_init(eventd_metrics_t *m, const eventd_t *d, time_t started)
{
    memset(m, 0, sizeof(*m));
    m->d = d;
    m->started = started;
    mdm_listen_init(&m->listen, "/metrics", "text/plain; version=0.0.4", render,
                    m);
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

/* One sample per endpoint of a family. */
static void
per_ep(mdm_listen_buf_t *b, const eventd_t *d, const char *name,
       const char *type, const char *help, int which)
{
    char e[160];
    long long v;
    size_t i;

    mdm_listen_family(b, name, type, help);
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
        mdm_listen_printf(b, "%s{endpoint=\"%s\"} %lld\n", name,
                          mdm_listen_esc(ep->conf->name, e, sizeof(e)), v);
    }
}

static void
render(void *data, mdm_listen_buf_t *b)
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
    const eventd_metrics_t *m = data;
    const eventd_t *d = m->d;
    char e[160];
    size_t i, k;

    for (k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
        per_ep(b, d, fam[k].name, fam[k].type, fam[k].help, (int) k);
        if (k == 1) {
            mdm_listen_family(
                b, "mdm_eventd_batches_failed_total", "counter",
                "Failed deliveries, by reason (http, connect, timeout, "
                "tls, connection-lost, start, other) and HTTP status "
                "(0: no answer)");
            for (i = 0; i < d->neps; i++) {
                const eventd_ep_t *ep = &d->eps[i];
                size_t j;

                mdm_listen_esc(ep->conf->name, e, sizeof(e));
                for (j = 0; j < ep->fails.n; j++) {
                    mdm_listen_printf(
                        b,
                        "mdm_eventd_batches_failed_total{endpoint=\"%s\","
                        "reason=\"%s\",status=\"%ld\"} %lld\n",
                        e, ep->fails.v[j].reason, ep->fails.v[j].status,
                        ep->fails.v[j].n);
                }
            }
        }
    }
    mdm_listen_family(b, "mdm_eventd_redis_up", "gauge",
                      "1 while Redis is connected");
    mdm_listen_printf(b, "mdm_eventd_redis_up %d\n", d->redis.cmd != NULL);
    mdm_listen_family(b, "mdm_eventd_start_time_seconds", "gauge",
                      "When the daemon started");
    mdm_listen_printf(b, "mdm_eventd_start_time_seconds %lld\n",
                      (long long) m->started);
}

/* ------------------------------------------------------------------ */
/* the poll set: curl_multi_poll's extra fds                          */

size_t
eventd_metrics_pollfds(eventd_metrics_t *m, struct curl_waitfd *fds, size_t max)
{
    struct pollfd p[1 + MDM_LISTEN_CONN];
    size_t i, n;

    n = mdm_listen_pollfds(
        &m->listen, p, max < 1 + MDM_LISTEN_CONN ? max : 1 + MDM_LISTEN_CONN);
    for (i = 0; i < n; i++) {
        fds[i].fd = p[i].fd;
        fds[i].events =
            (p[i].events & POLLOUT) ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN;
        fds[i].revents = 0;
    }
    return n;
}

void
eventd_metrics_io(eventd_metrics_t *m, const struct curl_waitfd *fds, size_t n,
                  int64_t now)
{
    struct pollfd p[1 + MDM_LISTEN_CONN];
    size_t i;

    for (i = 0; i < n && i < 1 + MDM_LISTEN_CONN; i++) {
        p[i].fd = fds[i].fd;
        p[i].events = 0;
        /* mdm_listen_io only asks whether a socket is ready */
        p[i].revents = fds[i].revents ? POLLIN : 0;
    }
    mdm_listen_io(&m->listen, p, i, now);
}
