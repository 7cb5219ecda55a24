/*
 * The listener of metrics_listen, shared by mdm-pushd and mdm-eventd
 * (mdm_listen.h). The daemons' loops call in; nothing here calls out but
 * the render callback.
 */
#include "mdm_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_MS 5000

void
mdm_listen_init(mdm_listen_t *l, const char *path, const char *content_type,
                mdm_listen_render_pt render, void *data)
{
    size_t i;

    memset(l, 0, sizeof(*l));
    l->path = path;
    l->content_type = content_type;
    l->render = render;
    l->data = data;
    l->lfd = -1;
    for (i = 0; i < MDM_LISTEN_CONN; i++) {
        l->conn[i].fd = -1;
    }
}

/* ------------------------------------------------------------------ */
/* the text                                                           */

void
mdm_listen_printf(mdm_listen_buf_t *b, const char *fmt, ...)
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

const char *
mdm_listen_esc(const char *s, char *o, size_t olen)
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

void
mdm_listen_family(mdm_listen_buf_t *b, const char *name, const char *type,
                  const char *help)
{
    mdm_listen_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                      type);
}

/* ------------------------------------------------------------------ */
/* the socket                                                         */

int
mdm_listen_parse_addr(const char *v, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    const char *h = v, *p;
    char host[64], *end;
    size_t hl;
    long port;

    if (v[0] == '[') {
        h = v + 1;
        p = strchr(h, ']');
        if (p == NULL || p[1] != ':') {
            return -1;
        }
        hl = (size_t) (p - h);
        p += 2;
    } else {
        p = strrchr(v, ':');
        if (p == NULL) {
            return -1;
        }
        hl = (size_t) (p - h);
        p++;
    }
    if (hl == 0 || hl >= sizeof(host)) {
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    errno = 0;
    port = strtol(p, &end, 10);
    if (errno || end == p || *end || port < 1 || port > 65535) {
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    if (v[0] == '[') {
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
            return -1;
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);
        *len = sizeof(*in6);
    } else {
        if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) {
            return -1;
        }
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t) port);
        *len = sizeof(*in4);
    }
    return 0;
}

int
mdm_listen_open(mdm_listen_t *l, const char *name, const char *addr, char *err,
                size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, on = 1;

    if (mdm_listen_parse_addr(addr, &ss, &sl) != 0) {
        snprintf(err, errlen, "%s: %s: expected IP:PORT", name, addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", name, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (bind(fd, (struct sockaddr *) &ss, sl) != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "%s: %s: %s", name, addr, strerror(errno));
        close(fd);
        return -1;
    }
    l->lfd = fd;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the connections                                                    */

static void
conn_close(mdm_listen_conn_t *c)
{
    close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->inlen = c->outlen = c->outoff = 0;
}

static void
respond(mdm_listen_t *l, mdm_listen_conn_t *c, int status, const char *why,
        int head)
{
    mdm_listen_buf_t body, all;

    memset(&body, 0, sizeof(body));
    memset(&all, 0, sizeof(all));
    if (status == 200) {
        l->render(l->data, &body);
    } else {
        mdm_listen_printf(&body, "%s\n", why);
    }
    if (body.oom) {
        free(body.p);
        conn_close(c);
        return;
    }
    mdm_listen_printf(&all,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                      status, why,
                      status == 200 ? l->content_type : "text/plain", body.len,
                      status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head && body.len) {
        mdm_listen_printf(&all, "%.*s", (int) body.len, body.p);
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
request(mdm_listen_t *l, mdm_listen_conn_t *c)
{
    char *sp1, *sp2, *q;
    int head;

    c->in[c->inlen] = '\0';
    sp1 = strchr(c->in, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond(l, c, 400, "Bad Request", 0);
        return;
    }
    *sp1 = *sp2 = '\0';
    if ((q = strchr(sp1 + 1, '?')) != NULL) {
        *q = '\0';
    }
    head = strcmp(c->in, "HEAD") == 0;
    if (strcmp(sp1 + 1, l->path) != 0) {
        respond(l, c, 404, "Not Found", head);
    } else if (strcmp(c->in, "GET") != 0 && !head) {
        respond(l, c, 405, "Method Not Allowed", 0);
    } else {
        respond(l, c, 200, "OK", head);
    }
}

static void
conn_io(mdm_listen_t *l, mdm_listen_conn_t *c)
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
            request(l, c);
        } else if (c->inlen == sizeof(c->in) - 1) {
            respond(l, c, 431, "Request Header Fields Too Large", 0);
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
accept_all(mdm_listen_t *l, int64_t now)
{
    size_t i;
    int fd;

    for (;;) {
        fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        for (i = 0; i < MDM_LISTEN_CONN; i++) {
            if (l->conn[i].fd < 0) {
                break;
            }
        }
        if (i == MDM_LISTEN_CONN) {
            close(fd); /* busy: the scraper tries again */
            continue;
        }
        l->conn[i].fd = fd;
        l->conn[i].deadline = now + CLIENT_MS;
        conn_io(l, &l->conn[i]);
    }
}

/* ------------------------------------------------------------------ */
/* the poll set                                                       */

size_t
mdm_listen_pollfds(const mdm_listen_t *l, struct pollfd *fds, size_t max)
{
    size_t i, n = 0;

    if (l->lfd < 0 || max == 0) {
        return 0;
    }
    fds[n].fd = l->lfd;
    fds[n].events = POLLIN;
    fds[n++].revents = 0;
    for (i = 0; i < MDM_LISTEN_CONN && n < max; i++) {
        if (l->conn[i].fd >= 0) {
            fds[n].fd = l->conn[i].fd;
            fds[n].events = l->conn[i].out ? POLLOUT : POLLIN;
            fds[n++].revents = 0;
        }
    }
    return n;
}

void
mdm_listen_io(mdm_listen_t *l, const struct pollfd *fds, size_t n, int64_t now)
{
    size_t i, k;
    int listener = 0;

    if (l->lfd < 0) {
        return;
    }
    for (k = 0; k < n; k++) {
        if (fds[k].revents == 0) {
            continue;
        }
        if (fds[k].fd == l->lfd) {
            listener = 1;
            continue;
        }
        for (i = 0; i < MDM_LISTEN_CONN; i++) {
            if (l->conn[i].fd == fds[k].fd) {
                conn_io(l, &l->conn[i]);
                break;
            }
        }
    }
    for (i = 0; i < MDM_LISTEN_CONN; i++) {
        if (l->conn[i].fd >= 0 && now >= l->conn[i].deadline) {
            conn_close(&l->conn[i]);
        }
    }
    if (listener) {
        accept_all(l, now);
    }
}

int64_t
mdm_listen_due(const mdm_listen_t *l, int64_t limit)
{
    size_t i;

    for (i = 0; i < MDM_LISTEN_CONN; i++) {
        if (l->conn[i].fd >= 0 && l->conn[i].deadline < limit) {
            limit = l->conn[i].deadline;
        }
    }
    return limit;
}

void
mdm_listen_close(mdm_listen_t *l)
{
    size_t i;

    for (i = 0; i < MDM_LISTEN_CONN; i++) {
        if (l->conn[i].fd >= 0) {
            conn_close(&l->conn[i]);
        }
    }
    if (l->lfd >= 0) {
        close(l->lfd);
        l->lfd = -1;
    }
}
