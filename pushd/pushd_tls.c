/*
 * The TLS side of the APNs connections: the endpoint of the configuration,
 * an OpenSSL client context per load of a push certificate (its
 * certificate, intermediates and key from the PEM blobs of pushd_cert.c;
 * ALPN h2; the server verified against ca_file or the system store, by
 * name or IP address), a non-blocking TCP connection and the handshake.
 */
#include "pushd_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

void
pushd_tls_error(char *buf, size_t len, const char *what, int rc, int err)
{
    unsigned long e = ERR_get_error();

    if (e) {
        snprintf(buf, len, "%s: %s", what, ERR_reason_error_string(e));
    } else if (err == SSL_ERROR_SYSCALL && rc < 0 && errno) {
        snprintf(buf, len, "%s: %s", what, strerror(errno));
    } else {
        snprintf(buf, len, "%s: connection closed by the server", what);
    }
    ERR_clear_error();
}

static int
pem_into_ctx(SSL_CTX *ctx, const pushd_cert_t *cert)
{
    BIO *b = BIO_new_mem_buf(cert->pem_cert, (int) cert->pem_cert_len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = NULL;
    int ok = 0;

    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
        goto done;
    }
    X509_free(x);
    /* the rest of the file: intermediates */
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add_extra_chain_cert(ctx, x) != 1) {
            goto done;
        }
    }
    ERR_clear_error();
    BIO_free(b);
    b = BIO_new_mem_buf(cert->pem_key, (int) cert->pem_key_len);
    k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
done:
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b);
    return ok ? 0 : -1;
}

/* The context of the current load of cert, made once per load. */
static SSL_CTX *
ctx_get(pushd_tls_t *t, const pushd_cert_t *cert)
{
    pushd_tls_ctx_t *e = NULL, *n;
    SSL_CTX *ctx;
    size_t i;

    for (i = 0; i < t->nctx; i++) {
        if (t->ctx[i].cert == cert) {
            e = &t->ctx[i];
            if (e->gen == cert->gen) {
                return e->ctx;
            }
        }
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *) "\x02h2", 3) !=
            0 ||
        pem_into_ctx(ctx, cert) != 0 ||
        (t->ca_file ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
                    : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (e == NULL) {
        n = realloc(t->ctx, (t->nctx + 1) * sizeof(*n));
        if (n == NULL) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        t->ctx = n;
        e = &t->ctx[t->nctx++];
    } else {
        SSL_CTX_free(e->ctx); /* connections keep their own reference */
    }
    e->cert = cert;
    e->gen = cert->gen;
    e->ctx = ctx;
    return ctx;
}

int
pushd_tls_connect(pushd_tls_t *t, const pushd_cert_t *cert, int *fd, SSL **ssl,
                  char *why, size_t len)
{
    struct addrinfo hints, *res = NULL, *ai;
    SSL_CTX *ctx;
    int rc, n = 0, one = 1;

    *fd = -1;
    *ssl = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(why, len, "resolve %s: %s", t->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        n++;
    }
    /* a different address of the name each time */
    for (ai = res, n = (int) (t->rr++ % (unsigned) n); n > 0; n--) {
        ai = ai->ai_next;
    }
    *fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (*fd < 0) {
        freeaddrinfo(res);
        snprintf(why, len, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    rc = connect(*fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        snprintf(why, len, "connect: %s", strerror(errno));
        return -1;
    }
    ctx = ctx_get(t, cert);
    *ssl = ctx ? SSL_new(ctx) : NULL;
    if (*ssl == NULL || SSL_set_fd(*ssl, *fd) != 1) {
        pushd_tls_error(why, len, "tls setup", 0, 0);
        return -1;
    }
    if (t->host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(*ssl), t->host);
    } else {
        SSL_set_tlsext_host_name(*ssl, t->host);
        SSL_set1_host(*ssl, t->host);
    }
    SSL_set_connect_state(*ssl);
    return 0;
}

int
pushd_tls_handshake(SSL *ssl, short *events, char *why, size_t len)
{
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    long v;
    int rc, e;

    ERR_clear_error();
    rc = SSL_do_handshake(ssl);
    if (rc != 1) {
        e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            *events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            return 0;
        }
        v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
            snprintf(why, len, "tls: server certificate: %s",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            pushd_tls_error(why, len, "tls", rc, e);
        }
        return -1;
    }
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        snprintf(why, len, "no-h2");
        return -1;
    }
    return 1;
}

int
pushd_tls_init(pushd_tls_t *t, const char *url, const char *ca_file, char *err,
               size_t errlen)
{
    const char *p, *hs, *he, *ps, *slash;
    struct in6_addr a6;

    memset(t, 0, sizeof(*t));
    t->ca_file = ca_file;
    if (strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "%s: not an https:// URL", url);
        return -1;
    }
    p = url + 8;
    slash = strchr(p, '/');
    t->authority = slash ? strndup(p, (size_t) (slash - p)) : strdup(p);
    t->prefix = strdup(slash ? slash : "");
    if (t->authority == NULL || t->prefix == NULL) {
        goto nomem;
    }
    p = t->authority;
    if (*p == '[') { /* [v6]:port */
        hs = p + 1;
        he = strchr(hs, ']');
        if (he == NULL) {
            snprintf(err, errlen, "%s: bad IPv6 address", url);
            return -1;
        }
        ps = he[1] == ':' ? he + 2 : NULL;
    } else {
        hs = p;
        he = strchr(p, ':');
        ps = he ? he + 1 : NULL;
        he = he ? he : p + strlen(p);
    }
    t->host = strndup(hs, (size_t) (he - hs));
    if (t->host == NULL) {
        goto nomem;
    }
    snprintf(t->port, sizeof(t->port), "%s", ps && *ps ? ps : "443");
    t->host_is_ip = inet_pton(AF_INET, t->host, &a6) == 1 ||
                    inet_pton(AF_INET6, t->host, &a6) == 1;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

void
pushd_tls_free(pushd_tls_t *t)
{
    size_t i;

    for (i = 0; i < t->nctx; i++) {
        SSL_CTX_free(t->ctx[i].ctx);
    }
    free(t->ctx);
    free(t->host);
    free(t->authority);
    free(t->prefix);
    memset(t, 0, sizeof(*t));
}
