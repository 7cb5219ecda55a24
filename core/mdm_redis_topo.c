/* Redis topology, sans-IO (mdm_redis_topo.h). */
#include "mdm_redis_topo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis.h>

/* ------------------------------------------------------------------ */
/* addresses                                                           */

static int
parse_port(const char *s, size_t len, int *port)
{
    size_t i;
    long v = 0;

    if (len == 0 || len > 5) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) {
        return -1;
    }
    *port = (int) v;
    return 0;
}

int
mdm_redis_addr_parse(const char *s, size_t len, mdm_redis_addr_t *a, char *err,
                     size_t errlen)
{
    const char *colon, *host;
    size_t hlen, i;
    unsigned char bin[16];
    char ip[64];

    memset(a, 0, sizeof(*a));
    if (len > 5 && memcmp(s, "unix:", 5) == 0) {
        if (s[5] != '/' || len - 5 >= sizeof(a->host)) {
            snprintf(err, errlen,
                     "\"%.*s\": a unix socket needs an absolute path "
                     "shorter than %zu bytes",
                     (int) len, s, sizeof(a->host));
            return -1;
        }
        for (i = 5; i < len; i++) {
            if (s[i] == '\0') {
                snprintf(err, errlen, "NUL byte in the socket path");
                return -1;
            }
        }
        memcpy(a->host, s + 5, len - 5);
        a->port = 0;
        return 0;
    }
    colon = NULL;
    for (i = len; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL) {
        snprintf(err, errlen, "expected IP:PORT or unix:PATH, got \"%.*s\"",
                 (int) len, s);
        return -1;
    }
    if (parse_port(colon + 1, (size_t) (s + len - colon - 1), &a->port) != 0) {
        snprintf(err, errlen, "invalid port in \"%.*s\"", (int) len, s);
        return -1;
    }
    host = s;
    hlen = (size_t) (colon - s);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(ip)) {
        snprintf(err, errlen, "\"%.*s\" is not an IP address", (int) len, s);
        return -1;
    }
    memcpy(ip, host, hlen);
    ip[hlen] = '\0';
    if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1) {
        snprintf(err, errlen,
                 "\"%s\" is not an IP address (host names are not resolved: "
                 "use an IP or unix:PATH)",
                 ip);
        return -1;
    }
    memcpy(a->host, ip, hlen + 1);
    return 0;
}

const char *
mdm_redis_addr_format(const mdm_redis_addr_t *a, char *buf, size_t buflen)
{
    if (a->port == 0) {
        snprintf(buf, buflen, "unix:%s", a->host);
    } else if (strchr(a->host, ':') != NULL) {
        snprintf(buf, buflen, "[%s]:%d", a->host, a->port);
    } else {
        snprintf(buf, buflen, "%s:%d", a->host, a->port);
    }
    return buf;
}

int
mdm_redis_addr_eq(const mdm_redis_addr_t *a, const mdm_redis_addr_t *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* ------------------------------------------------------------------ */
/* slots                                                               */

static unsigned
crc16(const unsigned char *p, size_t len)
{
    unsigned crc = 0;
    size_t i;
    int b;

    for (i = 0; i < len; i++) {
        crc ^= (unsigned) p[i] << 8;
        for (b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
            crc &= 0xffff;
        }
    }
    return crc;
}

unsigned
mdm_redis_slot(const char *key, size_t len)
{
    size_t s, e;

    for (s = 0; s < len; s++) {
        if (key[s] == '{') {
            break;
        }
    }
    if (s < len) {
        for (e = s + 1; e < len; e++) {
            if (key[e] == '}') {
                break;
            }
        }
        if (e < len && e != s + 1) {
            return crc16((const unsigned char *) key + s + 1, e - s - 1) &
                   (MDM_REDIS_SLOTS - 1);
        }
    }
    return crc16((const unsigned char *) key, len) & (MDM_REDIS_SLOTS - 1);
}

/* ------------------------------------------------------------------ */
/* routing keys                                                        */

static int
arg_is(const mdm_cmd_t *c, int i, const char *name)
{
    size_t n = strlen(name);

    return i < c->argc && c->argvlen[i] == n &&
           strncasecmp(c->argv[i], name, n) == 0;
}

static const char *const keyless[] = {
    "SCRIPT",   "PING",   "INFO",    "AUTH",      "ROLE",     "CLUSTER",
    "SENTINEL", "WAIT",   "ASKING",  "READONLY",  "SELECT",   "CLIENT",
    "COMMAND",  "CONFIG", "TIME",    "DBSIZE",    "FLUSHALL", "FLUSHDB",
    "MULTI",    "EXEC",   "DISCARD", "HELLO",     "ECHO",     "QUIT",
    "PUBLISH",  "SCAN",   "KEYS",    "RANDOMKEY", NULL};

static int
parse_count(const char *s, size_t len, long *v)
{
    size_t i;

    *v = 0;
    if (len == 0 || len > 9) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

const char *
mdm_cmd_route_key(const mdm_cmd_t *c, size_t *len)
{
    long numkeys;
    int i, k;

    *len = 0;
    if (c == NULL || c->argc < 1) {
        return NULL;
    }
    if (arg_is(c, 0, "EVAL") || arg_is(c, 0, "EVALSHA") ||
        arg_is(c, 0, "EVAL_RO") || arg_is(c, 0, "EVALSHA_RO") ||
        arg_is(c, 0, "FCALL")) {
        if (c->argc < 4 ||
            parse_count(c->argv[2], c->argvlen[2], &numkeys) != 0 ||
            numkeys < 1) {
            return NULL;
        }
        *len = c->argvlen[3];
        return c->argv[3];
    }
    if (arg_is(c, 0, "XREAD") || arg_is(c, 0, "XREADGROUP")) {
        for (i = 1; i + 1 < c->argc; i++) {
            if (arg_is(c, i, "STREAMS")) {
                *len = c->argvlen[i + 1];
                return c->argv[i + 1];
            }
        }
        return NULL;
    }
    if (arg_is(c, 0, "XINFO") || arg_is(c, 0, "XGROUP") ||
        arg_is(c, 0, "OBJECT") || arg_is(c, 0, "MEMORY")) {
        if (c->argc < 3 || arg_is(c, 1, "HELP")) {
            return NULL;
        }
        *len = c->argvlen[2];
        return c->argv[2];
    }
    for (k = 0; keyless[k] != NULL; k++) {
        if (arg_is(c, 0, keyless[k])) {
            return NULL;
        }
    }
    if (c->argc < 2) {
        return NULL;
    }
    *len = c->argvlen[1];
    return c->argv[1];
}

/* ------------------------------------------------------------------ */
/* reply errors                                                        */

static int
starts(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len >= n && memcmp(s, word, n) == 0 && (len == n || s[n] == ' ');
}

int
mdm_redis_redirect(const char *err, size_t len, int *ask, unsigned *slot,
                   mdm_redis_addr_t *to)
{
    const char *p, *end = err + len, *sp;
    unsigned long v = 0;
    char e[8];

    if (err == NULL) {
        return 0;
    }
    if (starts(err, len, "MOVED")) {
        *ask = 0;
        p = err + 6;
    } else if (starts(err, len, "ASK")) {
        *ask = 1;
        p = err + 4;
    } else {
        return 0;
    }
    if (p >= end || *p < '0' || *p > '9') {
        return 0;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long) (*p - '0');
        if (v >= MDM_REDIS_SLOTS) {
            return 0;
        }
        p++;
    }
    if (p >= end || *p != ' ') {
        return 0;
    }
    p++;
    sp = p;
    while (sp < end && *sp != ' ' && *sp != '\r' && *sp != '\n') {
        sp++;
    }
    if (mdm_redis_addr_parse(p, (size_t) (sp - p), to, e, sizeof(e)) != 0 ||
        to->port == 0) {
        return 0;
    }
    *slot = (unsigned) v;
    return 1;
}

int
mdm_redis_error_failover(const char *err, size_t len)
{
    /* not TRYAGAIN: a multi-key call during a slot migration, answered
       503 by the core (an error reply) without dropping anything */
    static const char *const words[] = {"READONLY", "MASTERDOWN", "LOADING",
                                        "CLUSTERDOWN", NULL};
    int i;

    if (err == NULL) {
        return 0;
    }
    for (i = 0; words[i] != NULL; i++) {
        if (starts(err, len, words[i])) {
            return 1;
        }
    }
    return 0;
}

int
mdm_redis_reply_failover(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR &&
           mdm_redis_error_failover(r->str, r->len);
}

/* ------------------------------------------------------------------ */
/* Sentinel                                                            */

int
mdm_redis_sentinel_addr(const redisReply *r, mdm_redis_addr_t *a)
{
    char buf[300], e[8];
    int n;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%s%s%s:%s",
                 strchr(r->element[0]->str, ':') ? "[" : "", r->element[0]->str,
                 strchr(r->element[0]->str, ':') ? "]" : "",
                 r->element[1]->str);
    if (n < 0 || (size_t) n >= sizeof(buf)) {
        return -1;
    }
    return mdm_redis_addr_parse(buf, (size_t) n, a, e, sizeof(e)) == 0 &&
                   a->port != 0
               ? 0
               : -1;
}

int
mdm_redis_role_is_master(const redisReply *r)
{
    const redisReply *e;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        return 0;
    }
    e = r->element[0];
    return (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) &&
           e->len == 6 && memcmp(e->str, "master", 6) == 0;
}

/* ------------------------------------------------------------------ */
/* Cluster slot map                                                    */

void
mdm_slotmap_init(mdm_slotmap_t *m)
{
    m->nnodes = 0;
    memset(m->owner, MDM_REDIS_NO_NODE, sizeof(m->owner));
}

int
mdm_slotmap_node(mdm_slotmap_t *m, const mdm_redis_addr_t *a)
{
    int i;

    for (i = 0; i < m->nnodes; i++) {
        if (mdm_redis_addr_eq(&m->node[i], a)) {
            return i;
        }
    }
    if (m->nnodes >= MDM_REDIS_MAX_NODES) {
        return -1;
    }
    m->node[m->nnodes] = *a;
    return m->nnodes++;
}

int
mdm_slotmap_set(mdm_slotmap_t *m, unsigned slot, const mdm_redis_addr_t *a)
{
    int i;

    if (slot >= MDM_REDIS_SLOTS) {
        return -1;
    }
    i = mdm_slotmap_node(m, a);
    if (i >= 0) {
        m->owner[slot] = (unsigned char) i;
    }
    return i;
}

int
mdm_slotmap_owner(const mdm_slotmap_t *m, unsigned slot)
{
    if (slot >= MDM_REDIS_SLOTS || m->owner[slot] == MDM_REDIS_NO_NODE) {
        return -1;
    }
    return m->owner[slot];
}

static int
reply_int(const redisReply *r, long long *v)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
        return 0;
    }
    return -1;
}

int
mdm_slotmap_load(mdm_slotmap_t *m, const redisReply *r)
{
    const redisReply *range, *master;
    mdm_redis_addr_t a;
    long long lo, hi, port, s;
    size_t i;
    int idx;

    mdm_slotmap_init(m);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        return -1;
    }
    for (i = 0; i < r->elements; i++) {
        range = r->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            reply_int(range->element[0], &lo) != 0 ||
            reply_int(range->element[1], &hi) != 0 || lo < 0 || hi < lo ||
            hi >= MDM_REDIS_SLOTS) {
            goto bad;
        }
        master = range->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            master->element[0]->type != REDIS_REPLY_STRING ||
            reply_int(master->element[1], &port) != 0 || port < 1 ||
            port > 65535 || master->element[0]->len >= sizeof(a.host)) {
            goto bad;
        }
        memset(&a, 0, sizeof(a));
        if (strcmp(master->element[0]->str, "?") != 0) {
            memcpy(a.host, master->element[0]->str, master->element[0]->len);
        }
        a.port = (int) port;
        idx = mdm_slotmap_node(m, &a);
        if (idx < 0) {
            goto bad;
        }
        for (s = lo; s <= hi; s++) {
            m->owner[s] = (unsigned char) idx;
        }
    }
    return 0;
bad:
    mdm_slotmap_init(m);
    return -1;
}

/* ------------------------------------------------------------------ */
/* AUTH                                                                */

int
mdm_redis_read_password_file(const char *path, char *buf, size_t buflen,
                             int *loose_mode, char *err, size_t errlen)
{
    struct stat st;
    size_t n = 0;
    ssize_t got;
    char c;
    int fd;

    *loose_mode = 0;
    if (buflen > 0) {
        buf[0] = '\0';
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "\"%s\" is not a regular file", path);
        close(fd);
        return -1;
    }
    *loose_mode = (st.st_mode & 077) != 0;
    for (;;) {
        got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf(err, errlen, "cannot read \"%s\": %s", path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (got == 0 || c == '\n') {
            break;
        }
        if (n + 1 >= buflen) {
            snprintf(err, errlen, "the first line of \"%s\" is too long", path);
            close(fd);
            memset(buf, 0, buflen);
            return -1;
        }
        buf[n++] = c;
    }
    close(fd);
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen,
                 "\"%s\" is empty (the password is its first "
                 "line)",
                 path);
        return -1;
    }
    return 0;
}

int
mdm_redis_auth_argv(const char *user, const char *pass, const char *argv[3],
                    size_t argvlen[3])
{
    int n = 0;

    argv[n] = "AUTH";
    argvlen[n++] = 4;
    if (user != NULL && user[0] != '\0') {
        argv[n] = user;
        argvlen[n++] = strlen(user);
    }
    argv[n] = pass;
    argvlen[n++] = strlen(pass);
    return n;
}
