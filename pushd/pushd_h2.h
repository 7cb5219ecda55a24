/*
 * The HTTP/2 client of mdm-pushd (pushd_h2.c): TLS connections with the
 * push certificate of a topic (OpenSSL, non-blocking, ALPN h2) carrying an
 * nghttp2 session each, driven from the daemon's poll loop. Requests are
 * POSTs with a small body; answers come back through one callback.
 */
#ifndef PUSHD_H2_H
#define PUSHD_H2_H

#include <poll.h>

#include "pushd.h"

typedef struct pushd_h2_s pushd_h2_t;

/* how a request ended */
enum {
    PUSHD_H2_ANSWERED = 0, /* a complete answer: status, apns-id, body */
    PUSHD_H2_FAILED,       /* no answer: connection or TLS error, reset,
                              timeout; the server may have processed it */
    PUSHD_H2_REFUSED       /* not processed by the server (GOAWAY with a
                              lower last stream id, REFUSED_STREAM) */
};

/* what pushd_h2_submit() returns besides 0 */
enum { PUSHD_H2_BUSY = 1, PUSHD_H2_NOMEM = -1 };

typedef struct {
    int kind;
    int h2;          /* 0: the server did not select HTTP/2 (ALPN) */
    long status;     /* :status, 0 without an answer */
    const char *why; /* FAILED, REFUSED: what happened */
    const char *apns_id;
    const char *body; /* the answer body, NUL-terminated, cut at 511 */
} pushd_h2_result_t;

typedef void (*pushd_h2_done_fn)(void *data, void *user,
                                 const pushd_h2_result_t *r);

typedef struct {
    const char *name, *value;
} pushd_h2_header_t;

/**
 * A client for conf->url (https://host[:port][/prefix]): at most
 * conf->connections usable connections per certificate, conf->streams
 * streams each (fewer if the server says so), conf->timeout_ms per
 * request. done is called once per submitted request, from
 * pushd_h2_flush() or pushd_h2_io(). NULL with a message in err.
 */
pushd_h2_t *pushd_h2_new(const pushd_conf_t *conf, pushd_h2_done_fn done,
                         void *data, char *err, size_t errlen);
/** Close everything; requests on the wire are dropped without a call. */
void pushd_h2_free(pushd_h2_t *h);

/**
 * POST prefix+path with the headers and body, authenticated with cert
 * (its current load; a reload only affects later connections). 0: on its
 * way, done will be called with user; PUSHD_H2_BUSY: every connection of
 * cert is full, try again after a request ended; PUSHD_H2_NOMEM.
 */
int pushd_h2_submit(pushd_h2_t *h, const pushd_cert_t *cert, const char *path,
                    const pushd_h2_header_t *hdrs, size_t nhdrs,
                    const char *body, size_t blen, void *user);

/**
 * Before the poll: start due connections, time out requests, write what
 * the sessions have to send. Returns the number of requests that ended
 * (their done was called), so the loop does not sleep on them.
 */
size_t pushd_h2_flush(pushd_h2_t *h, int64_t now);
/** The sockets to poll, at most max; their events are set. */
size_t pushd_h2_pollfds(pushd_h2_t *h, struct pollfd *fds, size_t max);
/** The next time pushd_h2_flush() has something to do (monotonic ms). */
int64_t pushd_h2_due(const pushd_h2_t *h, int64_t now);
/** Connections with a running HTTP/2 session. */
size_t pushd_h2_connections(const pushd_h2_t *h);
/** After the poll: the same fds (and n) pushd_h2_pollfds() filled. */
void pushd_h2_io(pushd_h2_t *h, const struct pollfd *fds, size_t n,
                 int64_t now);

#endif
