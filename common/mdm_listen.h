/*
 * The small HTTP/1.1 listener the sidecar daemons (mdm-pushd, mdm-eventd)
 * serve their metrics_listen with (mdm_listen.c): a non-blocking server
 * in the daemon's own poll loop that reads one bounded request per
 * connection, answers GET or HEAD of one path with the text a callback
 * renders, or 400, 404, 405, 431, and closes. Nothing here blocks: a
 * client that does not send its request within a few seconds is dropped.
 *
 * Why common/ and not tools/: tools/ holds mdmctl and what the web server
 * modules share with it (tools/mdm_sync.c, tools/mdm_metrics.c), all
 * linked with libmdm; the daemons link neither libmdm nor anything of
 * tools/. common/ is what the two daemons share, nothing else: it calls
 * only libc, knows neither daemon, and each daemon keeps its metric text
 * in its own file (pushd_metrics.c, eventd_metrics.c), handed over as the
 * render callback.
 *
 * The poll set: mdm_listen_pollfds() fills struct pollfd entries for the
 * listener and its connections, mdm_listen_io() takes them back after the
 * poll (a loop on another poll, such as curl_multi_poll, converts),
 * mdm_listen_due() lowers the poll timeout to the next client deadline.
 */
#ifndef MDM_LISTEN_H
#define MDM_LISTEN_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MDM_LISTEN_CONN 8 /* requests served at once */

/* A growing text buffer; oom set once an allocation failed. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} mdm_listen_buf_t;

/* Append the body of an answer 200 to b. */
typedef void (*mdm_listen_render_pt)(void *data, mdm_listen_buf_t *b);

typedef struct {
    int fd; /* -1: free */
    int64_t deadline;
    size_t inlen;
    char in[2048];
    char *out;
    size_t outlen, outoff;
} mdm_listen_conn_t;

typedef struct {
    const char *path;         /* the one path served, e.g. "/metrics" */
    const char *content_type; /* of the answer 200 */
    mdm_listen_render_pt render;
    void *data;
    int lfd; /* -1: not listening */
    mdm_listen_conn_t conn[MDM_LISTEN_CONN];
} mdm_listen_t;

/** No socket yet; path, content_type and data must outlive l. */
void mdm_listen_init(mdm_listen_t *l, const char *path,
                     const char *content_type, mdm_listen_render_pt render,
                     void *data);
/**
 * "IPv4:port" or "[IPv6]:port" (numeric only, no host names) into ss.
 * -1 if it is neither.
 */
int mdm_listen_parse_addr(const char *v, struct sockaddr_storage *ss,
                          socklen_t *len);
/**
 * Listen on addr (IP:port, [IPv6]:port). -1 with a message in err that
 * starts with name (the configuration directive).
 */
int mdm_listen_open(mdm_listen_t *l, const char *name, const char *addr,
                    char *err, size_t errlen);
/** The sockets to poll (listener, connections), at most max. */
size_t mdm_listen_pollfds(const mdm_listen_t *l, struct pollfd *fds,
                          size_t max);
/** After the poll: accept, read, answer, close; time out slow clients. */
void mdm_listen_io(mdm_listen_t *l, const struct pollfd *fds, size_t n,
                   int64_t now);
/** The next client deadline, or limit. */
int64_t mdm_listen_due(const mdm_listen_t *l, int64_t limit);
/** Close the connections and the listener. */
void mdm_listen_close(mdm_listen_t *l);

/** printf to the end of b (sets b->oom on failure). */
void mdm_listen_printf(mdm_listen_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/**
 * A Prometheus label value into o: backslash, double quote and newline
 * escaped, cut to fit olen. Returns o.
 */
const char *mdm_listen_esc(const char *s, char *o, size_t olen);
/** The # HELP and # TYPE lines of a metric family. */
void mdm_listen_family(mdm_listen_buf_t *b, const char *name, const char *type,
                       const char *help);

#endif
