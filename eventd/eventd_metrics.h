/*
 * The metrics of mdm-eventd (eventd_metrics.c): a small HTTP/1.1 listener
 * in the daemon's loop that answers GET /metrics in the Prometheus text
 * exposition format (version 0.0.4) from the endpoints' counters.
 */
#ifndef EVENTD_METRICS_H
#define EVENTD_METRICS_H

#include "eventd.h"

#define EVENTD_METRICS_CONN 8 /* scrapes served at once */

typedef struct {
    int fd; /* -1: free */
    int64_t deadline;
    size_t inlen;
    char in[2048];
    char *out;
    size_t outlen, outoff;
} eventd_mconn_t;

typedef struct {
    const eventd_t *d; /* read at a scrape */
    time_t started;
    int lfd; /* -1: metrics_listen off */
    eventd_mconn_t conn[EVENTD_METRICS_CONN];
} eventd_metrics_t;

void eventd_metrics_init(eventd_metrics_t *m, const eventd_t *d,
                         time_t started);
/** Listen on addr (IP:port, [IPv6]:port). -1 with a message in err. */
int eventd_metrics_listen(eventd_metrics_t *m, const char *addr, char *err,
                          size_t errlen);
/** The sockets to poll (listener, scrapes), at most max. */
size_t eventd_metrics_pollfds(eventd_metrics_t *m, struct curl_waitfd *fds,
                              size_t max);
/** After the poll: accept, read, answer, close; time out slow clients. */
void eventd_metrics_io(eventd_metrics_t *m, const struct curl_waitfd *fds,
                       size_t n, int64_t now);
/** The next scrape deadline, or limit. */
int64_t eventd_metrics_due(const eventd_metrics_t *m, int64_t limit);
void eventd_metrics_close(eventd_metrics_t *m);

#endif
