/*
 * The HTTP/2 client of mdm-pushd: one TLS connection (OpenSSL, client
 * certificate of a topic, ALPN h2, server verified against ca_file or the
 * system store) per nghttp2 client session, non-blocking, polled by the
 * daemon's loop. A connection serves one load of one certificate: after a
 * reload (new gen) it takes no new requests, finishes what it carries and
 * closes; new requests open connections with the new certificate.
 *
 * Per-request state lives in a fixed array of slots per connection
 * (conf->streams of them, allocated when the connection is made): the body
 * is copied in, the answer (status, apns-id, the first 511 bytes of the
 * body) is collected there. nghttp2 gets a slot as stream user data and
 * every callback checks that the slot still belongs to that stream id, so
 * a slot freed early (timeout, connection gone) is never written through a
 * late callback.
 *
 * A new connection carries one request until the server's SETTINGS have
 * come; then up to min(conf->streams, SETTINGS_MAX_CONCURRENT_STREAMS).
 *
 * Failures: a connection that cannot be made (connect, TLS, no h2) fails
 * the requests waiting on it and the next one waits for a back-off
 * (100 ms doubling to 5 s, reset by a working connection). GOAWAY: no new
 * streams on that connection; streams above its last stream id end as
 * REFUSED; the connection closes once empty. A connection closed under
 * its streams fails them.
 */
#include "pushd_h2.h"
#include "pushd_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#define CONNECT_TIMEOUT_MS 10000
#define BACKOFF_BASE_MS    100
#define BACKOFF_MAX_MS     5000
#define SWEEP_MS           250
#define BODY_MAX           320
#define RESP_MAX           512
#define NHDRS_MAX          12
/* stream ids run out at 2^31; move to a new connection well before */
#define LAST_STREAM_ID 0x7f000000

typedef enum {
    C_WAIT = 0, /* back-off before connecting */
    C_CONNECT,  /* TCP connect in progress */
    C_TLS,      /* TLS handshake */
    C_H2,       /* the session runs */
    C_DEAD      /* closed; freed by reap() */
} conn_state_t;

typedef struct slot_s {
    struct slot_s *next_free;
    void *user; /* NULL: free */
    int32_t id;
    int ended; /* END_STREAM of the answer seen */
    int64_t deadline;
    long status;
    size_t body_len, body_off, resp_len;
    char apns_id[64];
    char body[BODY_MAX];
    char resp[RESP_MAX];
} slot_t;

typedef struct conn_s {
    struct conn_s *next;
    pushd_h2_t *h;
    const pushd_cert_t *cert;
    unsigned gen;
    conn_state_t state;
    int fd;
    SSL *ssl;
    nghttp2_session *s;
    int64_t connect_at, deadline;
    short events;
    int goaway;    /* no new streams */
    int pfd;       /* index in the last pollfds, -1 if not polled */
    unsigned nact; /* slots in use */
    unsigned limit;
    slot_t *slots, *free;
    const uint8_t *pend; /* nghttp2 output not copied yet */
    size_t pend_len;
    size_t ooff, olen;
    uint8_t obuf[16384];
} conn_t;

struct pushd_h2_s {
    const pushd_conf_t *conf;
    pushd_tls_t tls;
    conn_t *conns;
    nghttp2_session_callbacks *cbs;
    pushd_h2_done_fn done;
    void *data;
    int fails;
    int64_t next_connect, next_sweep;
    size_t ended; /* requests ended since the last pushd_h2_flush() */
    uint8_t rbuf[16384];
};

/* ------------------------------------------------------------------ */
/* slots                                                              */

static void
slot_end(conn_t *c, slot_t *sl, int kind, const char *why)
{
    pushd_h2_result_t r;
    void *user = sl->user;

    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.h2 = 1;
    r.status = kind == PUSHD_H2_ANSWERED ? sl->status : 0;
    r.why = why ? why : "";
    r.apns_id = sl->apns_id;
    sl->resp[sl->resp_len] = '\0';
    r.body = sl->resp;
    if (why && strcmp(why, "no-h2") == 0) {
        r.h2 = 0;
        r.why = "the server did not select HTTP/2 (ALPN)";
    }
    sl->user = NULL;
    sl->id = -1;
    sl->next_free = c->free;
    c->free = sl;
    c->nact--;
    c->h->ended++;
    c->h->done(c->h->data, user, &r);
}

/* The slot of stream id, NULL when it has been ended already. */
static slot_t *
slot_of(nghttp2_session *s, int32_t id)
{
    slot_t *sl = nghttp2_session_get_stream_user_data(s, id);

    if (sl == NULL || sl->user == NULL || sl->id != id) {
        return NULL;
    }
    return sl;
}

/* ------------------------------------------------------------------ */
/* connections                                                        */

static void
conn_fail(conn_t *c, const char *why)
{
    unsigned i, n = c->h->conf->streams;
    char buf[160];

    if (c->state == C_DEAD) {
        return;
    }
    if (c->state != C_H2 && c->state != C_WAIT) {
        /* could not connect: the next attempt waits */
        c->h->fails++;
        c->h->next_connect =
            mdm_now_ms() +
            mdm_backoff_ms(BACKOFF_BASE_MS, BACKOFF_MAX_MS, c->h->fails);
    }
    snprintf(buf, sizeof(buf), "%s", why);
    c->state = C_DEAD;
    for (i = 0; i < n; i++) {
        if (c->slots[i].user) {
            slot_end(c, &c->slots[i], PUSHD_H2_FAILED, buf);
        }
    }
}

/* An empty connection that takes no more streams goes. */
static void
conn_close_if_done(conn_t *c)
{
    if (c->state == C_DEAD || c->nact > 0) {
        return;
    }
    if (c->goaway || c->gen != c->cert->gen) {
        c->state = C_DEAD;
    }
}

static void
conn_free(conn_t *c)
{
    if (c->s) {
        nghttp2_session_del(c->s);
    }
    if (c->ssl) {
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->slots);
    free(c);
}

static void
reap(pushd_h2_t *h)
{
    conn_t **p = &h->conns, *c;

    while ((c = *p) != NULL) {
        if (c->state == C_DEAD && c->nact == 0) {
            *p = c->next;
            conn_free(c);
        } else {
            p = &c->next;
        }
    }
}

static void
conn_flush(conn_t *c)
{
    char why[160];
    size_t k;
    ssize_t n;
    int rc, e;

    if (c->state != C_H2) {
        return;
    }
    c->events = POLLIN;
    for (;;) {
        if (c->ooff == c->olen) {
            c->ooff = c->olen = 0;
            while (c->olen < sizeof(c->obuf)) {
                if (c->pend_len == 0) {
                    n = nghttp2_session_mem_send(c->s, &c->pend);
                    if (n < 0) {
                        snprintf(why, sizeof(why), "h2: %s",
                                 nghttp2_strerror((int) n));
                        conn_fail(c, why);
                        return;
                    }
                    if (n == 0) {
                        break;
                    }
                    c->pend_len = (size_t) n;
                }
                k = sizeof(c->obuf) - c->olen;
                k = k < c->pend_len ? k : c->pend_len;
                memcpy(c->obuf + c->olen, c->pend, k);
                c->olen += k;
                c->pend += k;
                c->pend_len -= k;
            }
            if (c->olen == 0) {
                break;
            }
        }
        ERR_clear_error();
        rc = SSL_write(c->ssl, c->obuf + c->ooff, (int) (c->olen - c->ooff));
        if (rc > 0) {
            c->ooff += (size_t) rc;
            continue;
        }
        e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_WRITE) {
            c->events |= POLLOUT;
            return;
        }
        if (e == SSL_ERROR_WANT_READ) {
            return;
        }
        pushd_tls_error(why, sizeof(why), "write", rc, e);
        conn_fail(c, why);
        return;
    }
    if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) {
        conn_fail(c, "h2: session ended");
    }
}

static void
conn_read(conn_t *c)
{
    pushd_h2_t *h = c->h;
    char why[160];
    ssize_t n;
    int rc, e;

    while (c->state == C_H2) {
        ERR_clear_error();
        rc = SSL_read(c->ssl, h->rbuf, sizeof(h->rbuf));
        if (rc > 0) {
            n = nghttp2_session_mem_recv(c->s, h->rbuf, (size_t) rc);
            if (n < 0) {
                snprintf(why, sizeof(why), "h2: %s", nghttp2_strerror((int) n));
                conn_fail(c, why);
            }
            continue;
        }
        e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            c->events |= POLLOUT;
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_fail(c, "connection closed by the server");
        } else {
            pushd_tls_error(why, sizeof(why), "read", rc, e);
            conn_fail(c, why);
        }
    }
}

/* ------------------------------------------------------------------ */
/* nghttp2 callbacks                                                  */

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
          void *data)
{
    slot_t *sl;

    (void) flags;
    (void) data;
    if (f->hd.type != NGHTTP2_HEADERS ||
        (sl = slot_of(s, f->hd.stream_id)) == NULL) {
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        long v = 0;
        size_t i;
        for (i = 0; i < valuelen && i < 3; i++) {
            if (value[i] < '0' || value[i] > '9') {
                break;
            }
            v = v * 10 + (value[i] - '0');
        }
        sl->status = v;
    } else if (namelen == 7 && memcmp(name, "apns-id", 7) == 0 &&
               valuelen < sizeof(sl->apns_id)) {
        memcpy(sl->apns_id, value, valuelen);
        sl->apns_id[valuelen] = '\0';
    }
    return 0;
}

static int
on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d,
        size_t len, void *data)
{
    slot_t *sl = slot_of(s, id);
    size_t room;

    (void) flags;
    (void) data;
    if (sl == NULL) {
        return 0;
    }
    /* an error body is a small JSON object; the rest is not needed */
    room = sizeof(sl->resp) - 1 - sl->resp_len;
    len = len < room ? len : room;
    memcpy(sl->resp + sl->resp_len, d, len);
    sl->resp_len += len;
    return 0;
}

static int
on_frame(nghttp2_session *s, const nghttp2_frame *f, void *data)
{
    conn_t *c = data;
    slot_t *sl;
    uint32_t max;

    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) {
            max = nghttp2_session_get_remote_settings(
                s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
            c->limit = (unsigned) c->h->conf->streams;
            if (max < c->limit) {
                c->limit = max;
            }
            c->h->fails = 0; /* a working connection */
        }
        break;
    case NGHTTP2_GOAWAY:
        c->goaway = 1;
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            (sl = slot_of(s, f->hd.stream_id)) != NULL) {
            sl->ended = 1;
        }
        break;
    }
    return 0;
}

static int
on_close(nghttp2_session *s, int32_t id, uint32_t code, void *data)
{
    conn_t *c = data;
    slot_t *sl = slot_of(s, id);
    char why[96];

    if (sl == NULL) {
        return 0;
    }
    if (sl->ended && sl->status >= 200) {
        /* a complete answer, even if the server reset the upload after */
        slot_end(c, sl, PUSHD_H2_ANSWERED, NULL);
    } else if (code == NGHTTP2_REFUSED_STREAM) {
        slot_end(c, sl, PUSHD_H2_REFUSED, "stream refused (GOAWAY)");
    } else {
        snprintf(why, sizeof(why), "stream reset: %s",
                 nghttp2_http2_strerror(code));
        slot_end(c, sl, PUSHD_H2_FAILED, why);
    }
    return 0;
}

/* A request nghttp2 could not send (GOAWAY came first, ids ran out): it
 * never reached the server. */
static int
on_not_sent(nghttp2_session *s, const nghttp2_frame *f, int lib_error,
            void *data)
{
    conn_t *c = data;
    unsigned i, n = c->h->conf->streams;
    char why[96];

    (void) s;
    if (f->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (c->slots[i].user && c->slots[i].id == f->hd.stream_id) {
            snprintf(why, sizeof(why), "not sent: %s",
                     nghttp2_strerror(lib_error));
            c->goaway = 1;
            slot_end(c, &c->slots[i], PUSHD_H2_REFUSED, why);
            break;
        }
    }
    return 0;
}

static ssize_t
body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
          uint32_t *flags, nghttp2_data_source *src, void *data)
{
    slot_t *sl = src->ptr;
    size_t n;

    (void) s;
    (void) data;
    if (sl->user == NULL || sl->id != id) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    n = sl->body_len - sl->body_off;
    n = n < len ? n : len;
    memcpy(buf, sl->body + sl->body_off, n);
    sl->body_off += n;
    if (sl->body_off == sl->body_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t) n;
}

/* ------------------------------------------------------------------ */
/* connecting                                                         */

static void
conn_connect(conn_t *c)
{
    char why[160];

    c->deadline = mdm_now_ms() + CONNECT_TIMEOUT_MS;
    c->state = C_CONNECT;
    if (pushd_tls_connect(&c->h->tls, c->cert, &c->fd, &c->ssl, why,
                          sizeof(why)) != 0) {
        conn_fail(c, why);
        return;
    }
    c->events = POLLOUT;
}

static void
conn_handshake(conn_t *c)
{
    char why[200];
    int rc = pushd_tls_handshake(c->ssl, &c->events, why, sizeof(why));

    if (rc < 0) {
        conn_fail(c, why);
    } else if (rc > 0) {
        c->state = C_H2;
        conn_flush(c);
    }
}

static void
conn_ready(conn_t *c, short revents)
{
    char why[160];
    socklen_t len;
    int err = 0;

    switch (c->state) {
    case C_CONNECT:
        len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            snprintf(why, sizeof(why), "connect: %s", strerror(err));
            conn_fail(c, why);
            return;
        }
        if (!(revents & (POLLOUT | POLLERR | POLLHUP))) {
            return;
        }
        c->state = C_TLS;
        conn_handshake(c);
        return;
    case C_TLS:
        conn_handshake(c);
        return;
    case C_H2:
        conn_read(c);
        conn_flush(c);
        return;
    default:
        return;
    }
}

static conn_t *
conn_new(pushd_h2_t *h, const pushd_cert_t *cert, int64_t now)
{
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    unsigned i, n = (unsigned) h->conf->streams;
    conn_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->slots = calloc(n, sizeof(*c->slots));
    if (c->slots == NULL || nghttp2_session_client_new(&c->s, h->cbs, c) != 0) {
        free(c->slots);
        free(c);
        return NULL;
    }
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1) != 0) {
        nghttp2_session_del(c->s);
        free(c->slots);
        free(c);
        return NULL;
    }
    for (i = n; i > 0; i--) {
        c->slots[i - 1].id = -1;
        c->slots[i - 1].next_free = c->free;
        c->free = &c->slots[i - 1];
    }
    c->h = h;
    c->cert = cert;
    c->gen = cert->gen;
    c->fd = -1;
    c->pfd = -1;
    /* one stream until the server's SETTINGS tell how many it takes */
    c->limit = 1;
    c->state = C_WAIT;
    c->connect_at = h->next_connect > now ? h->next_connect : now;
    c->next = h->conns;
    h->conns = c;
    return c;
}

/* ------------------------------------------------------------------ */
/* interface                                                          */

int
pushd_h2_submit(pushd_h2_t *h, const pushd_cert_t *cert, const char *path,
                const pushd_h2_header_t *hdrs, size_t nhdrs, const char *body,
                size_t blen, void *user)
{
    nghttp2_nv nv[NHDRS_MAX + 4];
    nghttp2_data_provider prd;
    char full[1024];
    conn_t *c, *best = NULL;
    unsigned usable = 0;
    slot_t *sl;
    int32_t id;
    size_t i, n = 0;

    if (blen > BODY_MAX || nhdrs > NHDRS_MAX) {
        return PUSHD_H2_NOMEM;
    }
    for (c = h->conns; c; c = c->next) {
        if (c->cert != cert || c->gen != cert->gen || c->goaway ||
            c->state == C_DEAD) {
            continue;
        }
        usable++;
        if (c->nact < c->limit && (best == NULL || c->nact < best->nact)) {
            best = c;
        }
    }
    if (best == NULL) {
        if (usable >= (unsigned) h->conf->connections) {
            return PUSHD_H2_BUSY;
        }
        best = conn_new(h, cert, mdm_now_ms());
        if (best == NULL) {
            return PUSHD_H2_NOMEM;
        }
    }
    c = best;
    snprintf(full, sizeof(full), "%s%s", h->tls.prefix, path);
#define NV(n_, v_)                                                             \
    do {                                                                       \
        nv[n].name = (uint8_t *) (n_);                                         \
        nv[n].namelen = strlen(n_);                                            \
        nv[n].value = (uint8_t *) (v_);                                        \
        nv[n].valuelen = strlen(v_);                                           \
        nv[n++].flags = NGHTTP2_NV_FLAG_NONE;                                  \
    } while (0)
    NV(":method", "POST");
    NV(":scheme", "https");
    NV(":authority", h->tls.authority);
    NV(":path", full);
    for (i = 0; i < nhdrs; i++) {
        NV(hdrs[i].name, hdrs[i].value);
    }
#undef NV
    sl = c->free;
    c->free = sl->next_free;
    memcpy(sl->body, body, blen);
    sl->body_len = blen;
    sl->body_off = 0;
    sl->resp_len = 0;
    sl->status = 0;
    sl->ended = 0;
    sl->apns_id[0] = '\0';
    sl->deadline = mdm_now_ms() + h->conf->timeout_ms;
    prd.source.ptr = sl;
    prd.read_callback = body_read;
    id = nghttp2_submit_request(c->s, NULL, nv, n, &prd, sl);
    if (id < 0) {
        sl->next_free = c->free;
        c->free = sl;
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
            c->goaway = 1;
            conn_close_if_done(c);
            return PUSHD_H2_BUSY;
        }
        return PUSHD_H2_NOMEM;
    }
    sl->id = id;
    sl->user = user;
    c->nact++;
    if (id >= LAST_STREAM_ID) {
        c->goaway = 1; /* the next request opens a new connection */
    }
    return 0;
}

static void
sweep(pushd_h2_t *h, int64_t now)
{
    unsigned i, n = (unsigned) h->conf->streams;
    conn_t *c;

    for (c = h->conns; c; c = c->next) {
        if ((c->state == C_CONNECT || c->state == C_TLS) &&
            now >= c->deadline) {
            conn_fail(c, "connect: timed out");
            continue;
        }
        if (c->nact == 0) {
            conn_close_if_done(c);
            continue;
        }
        for (i = 0; i < n; i++) {
            slot_t *sl = &c->slots[i];
            if (sl->user && now >= sl->deadline) {
                if (c->state == C_H2) {
                    nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, sl->id,
                                              NGHTTP2_CANCEL);
                }
                slot_end(c, sl, PUSHD_H2_FAILED, "timeout");
            }
        }
        conn_close_if_done(c);
    }
}

size_t
pushd_h2_flush(pushd_h2_t *h, int64_t now)
{
    size_t ended;
    conn_t *c;

    if (now >= h->next_sweep) {
        sweep(h, now);
        h->next_sweep = now + SWEEP_MS;
    }
    for (c = h->conns; c; c = c->next) {
        if (c->state == C_WAIT && now >= c->connect_at) {
            conn_connect(c);
        }
        if (c->state == C_H2) {
            conn_flush(c);
            conn_close_if_done(c);
        }
    }
    reap(h);
    ended = h->ended;
    h->ended = 0;
    return ended;
}

size_t
pushd_h2_pollfds(pushd_h2_t *h, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    conn_t *c;

    for (c = h->conns; c; c = c->next) {
        c->pfd = -1;
        if (c->fd < 0 || c->state == C_DEAD || c->state == C_WAIT || n == max) {
            continue;
        }
        c->pfd = (int) n;
        fds[n].fd = c->fd;
        fds[n].events = c->events;
        fds[n++].revents = 0;
    }
    return n;
}

int64_t
pushd_h2_due(const pushd_h2_t *h, int64_t now)
{
    int64_t t = now + 1000;
    conn_t *c;

    for (c = h->conns; c; c = c->next) {
        if (c->state == C_WAIT && c->connect_at < t) {
            t = c->connect_at;
        }
        if (c->nact > 0 || c->state == C_CONNECT || c->state == C_TLS) {
            if (h->next_sweep < t) {
                t = h->next_sweep;
            }
        }
    }
    return t;
}

size_t
pushd_h2_connections(const pushd_h2_t *h)
{
    const conn_t *c;
    size_t n = 0;

    for (c = h->conns; c; c = c->next) {
        if (c->state == C_H2) {
            n++;
        }
    }
    return n;
}

void
pushd_h2_io(pushd_h2_t *h, const struct pollfd *fds, size_t n, int64_t now)
{
    conn_t *c;

    (void) now;
    for (c = h->conns; c; c = c->next) {
        if (c->pfd >= 0 && (size_t) c->pfd < n && fds[c->pfd].revents) {
            conn_ready(c, fds[c->pfd].revents);
        }
    }
}

pushd_h2_t *
pushd_h2_new(const pushd_conf_t *conf, pushd_h2_done_fn done, void *data,
             char *err, size_t errlen)
{
    pushd_h2_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->conf = conf;
    h->done = done;
    h->data = data;
    if (pushd_tls_init(&h->tls, conf->url, conf->ca_file, err, errlen) != 0) {
        pushd_h2_free(h);
        return NULL;
    }
    if (nghttp2_session_callbacks_new(&h->cbs) != 0) {
        snprintf(err, errlen, "out of memory");
        pushd_h2_free(h);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_header_callback(h->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h->cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(h->cbs, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(h->cbs, on_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(h->cbs,
                                                             on_not_sent);
    return h;
}

void
pushd_h2_free(pushd_h2_t *h)
{
    conn_t *c;

    if (h == NULL) {
        return;
    }
    while ((c = h->conns) != NULL) {
        h->conns = c->next;
        conn_free(c);
    }
    pushd_tls_free(&h->tls);
    if (h->cbs) {
        nghttp2_session_callbacks_del(h->cbs);
    }
    free(h);
}
