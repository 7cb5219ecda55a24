/*
 * A test-only HTTP/1.0 server around the SCEP core, so that a real SCEP
 * client (Debian's scepclient, t/test-scep-client.sh) can talk to it
 * before the nginx and Apache handlers exist. One connection at a time,
 * loopback only, blocking hiredis: nothing here is for production.
 *
 *   scep_httpd PORTFILE REDIS_PORT NAME=VALUE...
 *
 * NAME=VALUE are mdm_scep_ca_set() options. It listens on a free
 * 127.0.0.1 port, writes the port to PORTFILE, logs to stderr and runs
 * until killed. /scep is the SCEP URL; /admin/... is the SCEP admin API
 * (POST /admin/challenge, POST /admin/revoke/SERIAL).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis.h>

#include "mdm_scep.h"
#include "mdm_sync.h"

#define MAX_REQ (256 * 1024)

static void
log_stderr(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    fprintf(stderr, "scep_httpd: [%d] %s %s\n", (int) level, id, msg);
}

static int
write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    ssize_t w;

    while (n > 0) {
        w = write(fd, c, n);
        if (w <= 0) {
            return -1;
        }
        c += w;
        n -= (size_t) w;
    }
    return 0;
}

static void
respond(int fd, const mdm_response_t *resp)
{
    char head[256];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.0 %d X\r\nContent-Length: %zu\r\n%s%s%s"
                 "Connection: close\r\n\r\n",
                 resp->status, resp->body_len,
                 resp->content_type ? "Content-Type: " : "",
                 resp->content_type ? resp->content_type : "",
                 resp->content_type ? "\r\n" : "");
    if (write_all(fd, head, (size_t) n) == 0 && resp->body_len) {
        write_all(fd, resp->body, resp->body_len);
    }
}

/* Read one request; returns the body offset or -1. */
static long
read_request(int fd, char *buf, size_t cap, size_t *len)
{
    char *end, *cl;
    size_t have = 0, want;
    ssize_t r;
    long body;

    for (;;) {
        if (have == cap - 1) {
            return -1;
        }
        r = read(fd, buf + have, cap - 1 - have);
        if (r <= 0) {
            return -1;
        }
        have += (size_t) r;
        buf[have] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            break;
        }
    }
    body = end + 4 - buf;
    *end = '\0';
    cl = strcasestr(buf, "\r\nContent-Length:");
    want = cl ? strtoul(cl + 17, NULL, 10) : 0;
    if (want > cap - 1 - (size_t) body) {
        return -1;
    }
    while (have - (size_t) body < want) {
        r = read(fd, buf + have, (size_t) body + want - have);
        if (r <= 0) {
            return -1;
        }
        have += (size_t) r;
    }
    *len = want;
    return body;
}

static void
serve(int fd, const mdm_scep_ca_t *ca, redisContext *rc)
{
    static char buf[MAX_REQ];
    static const mdm_response_t not_found = {.status = 404};
    char *method, *target, *sp, *query;
    size_t blen = 0;
    long body = read_request(fd, buf, sizeof(buf), &blen);
    mdm_scep_req_t *r = NULL;

    if (body < 0) {
        return;
    }
    method = buf;
    if ((sp = strchr(method, ' ')) == NULL) {
        return;
    }
    *sp = '\0';
    target = sp + 1;
    if ((sp = strchr(target, ' ')) != NULL) {
        *sp = '\0';
    }
    query = strchr(target, '?');
    if (query) {
        *query++ = '\0';
    }
    if (strcmp(target, "/scep") == 0 ||
        strcmp(target, "/scep/pkiclient.exe") == 0) {
        r = mdm_scep_req_new_http(ca, method, strlen(method), query,
                                  query ? strlen(query) : 0,
                                  (unsigned char *) buf + body, blen);
    } else if (strncmp(target, "/admin/", 7) == 0) {
        r = mdm_scep_req_new_admin_http(ca, method, strlen(method), target + 6,
                                        strlen(target + 6),
                                        (unsigned char *) buf + body, blen);
    }
    if (r == NULL) {
        respond(fd, &not_found);
        return;
    }
    mdm_scep_req_set_logger(r, log_stderr, NULL);
    if (mdm_scep_req_start(r) == MDM_STEP_REDIS) {
        mdm_scep_exec_sync(rc, r);
    }
    respond(fd, mdm_scep_req_response(r));
    mdm_scep_req_free(r);
}

int
main(int argc, char **argv)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    mdm_scep_ca_t *ca;
    redisContext *rc;
    char err[512], *eq;
    FILE *f;
    int s, c, i, one = 1;

    if (argc < 3) {
        fprintf(stderr,
                "usage: scep_httpd PORTFILE REDIS_PORT NAME=VALUE...\n");
        return 2;
    }
    ca = mdm_scep_ca_new();
    for (i = 3; i < argc; i++) {
        if ((eq = strchr(argv[i], '=')) == NULL) {
            fprintf(stderr, "scep_httpd: %s: expected NAME=VALUE\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        if (mdm_scep_ca_set(ca, argv[i], eq + 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "scep_httpd: %s\n", err);
            return 1;
        }
    }
    if (mdm_scep_ca_finish(ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "scep_httpd: %s\n", err);
        return 1;
    }
    rc = redisConnect("127.0.0.1", atoi(argv[2]));
    if (rc == NULL || rc->err) {
        fprintf(stderr, "scep_httpd: cannot connect to redis\n");
        return 1;
    }
    s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof(a)) != 0 ||
        listen(s, 16) != 0 ||
        getsockname(s, (struct sockaddr *) &a, &alen) != 0) {
        perror("scep_httpd: listen");
        return 1;
    }
    if ((f = fopen(argv[1], "w")) == NULL) {
        perror("scep_httpd: port file");
        return 1;
    }
    fprintf(f, "%d\n", ntohs(a.sin_port));
    fclose(f);
    for (;;) {
        c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }
        serve(c, ca, rc);
        close(c);
    }
}
