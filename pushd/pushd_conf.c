/*
 * The configuration file: one "name value..." per line, # comments.
 * Every value is checked here so that a typo stops the daemon at start
 * (or is refused on SIGHUP) with the file and line in the message.
 */
#include "mdm_listen.h"
#include "pushd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
}

static int
num(const char *v, long min, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}

static void
defaults(pushd_conf_t *c)
{
    char host[256];

    memset(c, 0, sizeof(*c));
    c->redis = strdup("127.0.0.1:6379");
    c->prefix = strdup("mdm:");
    c->group = strdup("mdm-pushd");
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "mdm-pushd");
    }
    host[sizeof(host) - 1] = '\0';
    c->consumer = strdup(host);
    c->url = strdup("https://api.push.apple.com");
    c->priority = 10;
    c->expiration = 86400;
    c->connections = 2;
    c->streams = 100;
    c->max_jobs = 5000;
    c->batch = 500;
    c->retry_base_ms = 1000;
    c->retry_max_ms = 300000;
    c->retry_attempts = 10;
    c->timeout_ms = 30000;
    c->claim_idle_ms = 60000;
    c->events_maxlen = 100000;
    c->status_interval_ms = 1000;
    c->drain_ms = 10000;
}

static int
add_cert(pushd_conf_t *c, char **tok, int ntok, char *err, size_t errlen)
{
    pushd_cert_conf_t *n, *e;
    int i;

    n = realloc(c->certs, (c->ncerts + 1) * sizeof(*n));
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->certs = n;
    e = &c->certs[c->ncerts++];
    memset(e, 0, sizeof(*e));
    e->cert_file = strdup(tok[1]);
    for (i = 2; i + 1 < ntok; i += 2) {
        if (strcmp(tok[i], "key") == 0) {
            set_str(&e->key_file, tok[i + 1]);
        } else if (strcmp(tok[i], "passfile") == 0) {
            set_str(&e->pass_file, tok[i + 1]);
        } else {
            break;
        }
    }
    if (i != ntok) {
        snprintf(err, errlen,
                 "cert: expected \"cert FILE [key FILE] [passfile FILE]\"");
        return -1;
    }
    return 0;
}

static int
one(pushd_conf_t *c, char **tok, int ntok, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t off;
        long min, max;
    } nums[] = {
#define N(f, lo, hi) {#f, offsetof(pushd_conf_t, f), lo, hi}
        N(expiration, 0, 31536000),    N(connections, 1, 64),
        N(streams, 1, 10000),          N(max_jobs, 1, 10000000),
        N(batch, 1, 100000),           N(retry_base_ms, 1, 3600000),
        N(retry_max_ms, 1, 86400000),  N(retry_attempts, 1, 1000),
        N(timeout_ms, 100, 3600000),   N(claim_idle_ms, 100, 86400000),
        N(events_maxlen, 0, LONG_MAX), N(status_interval_ms, 50, 3600000),
        N(drain_ms, 0, 3600000),
#undef N
    };
    const char *k = tok[0], *v = ntok > 1 ? tok[1] : NULL;
    size_t i;
    long n;

    if (strcmp(k, "cert") == 0 && ntok >= 2) {
        return add_cert(c, tok, ntok, err, errlen);
    }
    if (ntok != 2) {
        snprintf(err, errlen, "%s: expected one value", k);
        return -1;
    }
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(k, nums[i].name) == 0) {
            if (num(v, nums[i].min, nums[i].max, &n) != 0) {
                snprintf(err, errlen, "%s: expected a number in %ld..%ld", k,
                         nums[i].min, nums[i].max);
                return -1;
            }
            *(long *) ((char *) c + nums[i].off) = n;
            return 0;
        }
    }
    if (strcmp(k, "redis") == 0) {
        set_str(&c->redis, v);
    } else if (strcmp(k, "prefix") == 0) {
        set_str(&c->prefix, v);
    } else if (strcmp(k, "group") == 0) {
        set_str(&c->group, v);
    } else if (strcmp(k, "consumer") == 0) {
        if (strpbrk(v, ":{}") != NULL) {
            snprintf(err, errlen, "consumer: no ':', '{' or '}' in a name");
            return -1;
        }
        set_str(&c->consumer, v);
    } else if (strcmp(k, "endpoint") == 0) {
        if (strcmp(v, "production") == 0) {
            set_str(&c->url, "https://api.push.apple.com");
        } else if (strcmp(v, "sandbox") == 0) {
            set_str(&c->url, "https://api.sandbox.push.apple.com");
        } else if (strncmp(v, "https://", 8) == 0 && strlen(v) > 8) {
            set_str(&c->url, v);
            /* a trailing slash would give "//3/device/..." */
            while (strlen(c->url) > 8 && c->url[strlen(c->url) - 1] == '/') {
                c->url[strlen(c->url) - 1] = '\0';
            }
        } else {
            snprintf(err, errlen,
                     "endpoint: production, sandbox or an https:// URL");
            return -1;
        }
    } else if (strcmp(k, "ca_file") == 0) {
        if (access(v, R_OK) != 0) {
            snprintf(err, errlen, "ca_file: cannot read %s: %s", v,
                     strerror(errno));
            return -1;
        }
        set_str(&c->ca_file, v);
    } else if (strcmp(k, "priority") == 0) {
        if (strcmp(v, "10") != 0 && strcmp(v, "5") != 0) {
            snprintf(err, errlen, "priority: 10 (immediate) or 5");
            return -1;
        }
        c->priority = atoi(v);
    } else if (strcmp(k, "metrics_listen") == 0) {
        struct sockaddr_storage ss;
        socklen_t sl;

        if (strcmp(v, "off") == 0) {
            free(c->metrics_listen);
            c->metrics_listen = NULL;
        } else if (mdm_listen_parse_addr(v, &ss, &sl) != 0) {
            snprintf(err, errlen,
                     "metrics_listen: \"%s\" is not IP:PORT (an IPv4 "
                     "address or [IPv6] address, no host name; port "
                     "1-65535), e.g. 127.0.0.1:9101",
                     v);
            return -1;
        } else {
            set_str(&c->metrics_listen, v);
        }
    } else if (strcmp(k, "log") == 0) {
        if (strcmp(v, "info") == 0) {
            c->verbose = 0;
        } else if (strcmp(v, "debug") == 0) {
            c->verbose = 1;
        } else {
            snprintf(err, errlen, "log: info or debug");
            return -1;
        }
    } else {
        snprintf(err, errlen, "unknown option \"%s\"", k);
        return -1;
    }
    return 0;
}

int
pushd_conf_load(const char *path, pushd_conf_t *c, char *err, size_t errlen)
{
    char line[4096], msg[512], *tok[16], *p, *save;
    FILE *f;
    int lineno = 0, ntok;

    defaults(c);
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if ((p = strchr(line, '#')) != NULL) {
            *p = '\0';
        }
        ntok = 0;
        save = NULL;
        for (p = strtok_r(line, " \t\r\n", &save); p && ntok < 16;
             p = strtok_r(NULL, " \t\r\n", &save)) {
            tok[ntok++] = p;
        }
        if (ntok == 0) {
            continue;
        }
        if (one(c, tok, ntok, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    if (c->ncerts == 0) {
        snprintf(err, errlen, "%s: no \"cert\" line: nothing to push with",
                 path);
        return -1;
    }
    if (c->retry_max_ms < c->retry_base_ms) {
        c->retry_max_ms = c->retry_base_ms;
    }
    return 0;
}

void
pushd_conf_free(pushd_conf_t *c)
{
    size_t i;

    free(c->redis);
    free(c->prefix);
    free(c->group);
    free(c->consumer);
    free(c->url);
    free(c->ca_file);
    free(c->metrics_listen);
    for (i = 0; i < c->ncerts; i++) {
        free(c->certs[i].cert_file);
        free(c->certs[i].key_file);
        free(c->certs[i].pass_file);
    }
    free(c->certs);
    memset(c, 0, sizeof(*c));
}
