/*
 * The metrics of mdm-eventd (eventd_metrics.c): the listener
 * (common/mdm_listen.h) in the daemon's loop that answers GET /metrics in
 * the Prometheus text exposition format (version 0.0.4) from the
 * endpoints' counters. eventd_main.c opens and closes it with
 * mdm_listen_*(); the two calls below carry its sockets through
 * curl_multi_poll's extra fds.
 */
#ifndef EVENTD_METRICS_H
#define EVENTD_METRICS_H

#include "eventd.h"
#include "mdm_listen.h"

typedef struct {
    const eventd_t *d; /* read at a scrape */
    time_t started;
    mdm_listen_t listen; /* metrics_listen (lfd -1: off) */
} eventd_metrics_t;

void eventd_metrics_init(eventd_metrics_t *m, const eventd_t *d,
                         time_t started);
/** The sockets to poll (listener, scrapes), at most max. */
size_t eventd_metrics_pollfds(eventd_metrics_t *m, struct curl_waitfd *fds,
                              size_t max);
/** After the poll: accept, read, answer, close; time out slow clients. */
void eventd_metrics_io(eventd_metrics_t *m, const struct curl_waitfd *fds,
                       size_t n, int64_t now);

#endif
