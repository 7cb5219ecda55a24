/*
 * The TLS side of mdm-pushd's APNs connections (pushd_tls.c): the
 * endpoint, one OpenSSL context per certificate load, non-blocking
 * connect and handshake with ALPN h2. The HTTP/2 client (pushd_h2.c) runs
 * its sessions over what this makes.
 */
#ifndef PUSHD_TLS_H
#define PUSHD_TLS_H

#include <openssl/ssl.h>

#include "pushd.h"

typedef struct {
    const pushd_cert_t *cert;
    unsigned gen;
    SSL_CTX *ctx;
} pushd_tls_ctx_t;

typedef struct {
    char *host;      /* name or address, no brackets */
    char *authority; /* host[:port] as in the URL */
    char *prefix;    /* path after the authority, "" if none */
    char port[8];
    int host_is_ip;
    const char *ca_file; /* NULL: the system store */
    unsigned rr;         /* address rotation */
    pushd_tls_ctx_t *ctx;
    size_t nctx;
} pushd_tls_t;

/** Parse url (https://host[:port][/prefix]). -1 with a message in err. */
int pushd_tls_init(pushd_tls_t *t, const char *url, const char *ca_file,
                   char *err, size_t errlen);
void pushd_tls_free(pushd_tls_t *t);

/**
 * Resolve the host and start a non-blocking TCP connection (a different
 * address of the name each time) with a TLS object for the current load
 * of cert on it. -1 with a message in why (*fd may be set: close it).
 */
int pushd_tls_connect(pushd_tls_t *t, const pushd_cert_t *cert, int *fd,
                      SSL **ssl, char *why, size_t len);

/**
 * One handshake step: 1 done and h2 selected; 0 in progress, *events to
 * poll for; -1 failed with a message in why, "no-h2" when the server did
 * not select HTTP/2.
 */
int pushd_tls_handshake(SSL *ssl, short *events, char *why, size_t len);

/** The message of a failed SSL_read/SSL_write/SSL_do_handshake. */
void pushd_tls_error(char *buf, size_t len, const char *what, int rc, int err);

#endif
