/*
 * The configuration file: one "name value..." per line, # comments.
 * Every value is checked here so that a typo stops the daemon at start
 * (or is refused on SIGHUP) with the file and line in the message.
 */
#include "mdm_conffile.h"
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
    (void) mdm_conf_set_str(dst, v);
}

static void
defaults(pushd_conf_t *c)
{
    char host[256];

    memset(c, 0, sizeof(*c));
    (void) mdm_redis_conf_init(&c->redis);
    c->redis.cluster_ok = 1; /* pushd_redis.c routes by slot */
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

/* the numeric options and their ranges */
static const mdm_conf_num_t pushd_nums[] = {
#define N(f, lo, hi) MDM_CONF_NUM(pushd_conf_t, f, lo, hi)
    N(expiration, 0, 31536000),    N(connections, 1, 64),
    N(streams, 1, 10000),          N(max_jobs, 1, 10000000),
    N(batch, 1, 100000),           N(retry_base_ms, 1, 3600000),
    N(retry_max_ms, 1, 86400000),  N(retry_attempts, 1, 1000),
    N(timeout_ms, 100, 3600000),   N(claim_idle_ms, 100, 86400000),
    N(events_maxlen, 0, LONG_MAX), N(status_interval_ms, 50, 3600000),
    N(drain_ms, 0, 3600000),
#undef N
};
static const mdm_conf_common_t pushd_common =
    MDM_CONF_COMMON(pushd_conf_t, "cert", 2, pushd_nums, "127.0.0.1:9101");

static int
one(void *conf, char **tok, int ntok, char *err, size_t errlen)
{
    pushd_conf_t *c = conf;
    const char *k = tok[0], *v = tok[1];
    int rc;

    /* the several-word option, or "k v" (mdm_conf_common_opt) */
    if (strcmp(k, "cert") == 0) {
        return add_cert(c, tok, ntok, err, errlen);
    }
    rc = mdm_redis_conf_opt(&c->redis, tok, ntok, err, errlen);
    if (rc <= 0) {
        return rc;
    }
    if (strcmp(k, "prefix") == 0) {
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
    } else {
        return mdm_conf_unknown(k, err, errlen);
    }
    return 0;
}

int
pushd_conf_load(const char *path, pushd_conf_t *c, char *err, size_t errlen)
{
    defaults(c);
    if (mdm_conf_read(path, &pushd_common, one, c, err, errlen) != 0) {
        return -1;
    }
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

    mdm_redis_conf_free(&c->redis);
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
