/*
 * The configuration file: one "name value..." per line, # comments, and
 * one "endpoint NAME URL secret FILE [option value]..." line per webhook
 * receiver. Every value is checked here, so a typo stops the daemon at
 * start with the file, the line and the option in the message. The secret
 * files are read here too: a secret never appears in argv or in the
 * configuration file itself.
 */
#include "eventd.h"
#include "mdm_conffile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 4096

static int
defaults(eventd_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->batch = 100;
    c->timeout_ms = 10000;
    c->retry_base_ms = 1000;
    c->retry_max_ms = 300000;
    c->status_interval_ms = 1000;
    c->drain_ms = 10000;
    if (mdm_redis_conf_init(&c->redis) ||
        mdm_conf_set_str(&c->prefix, "mdm:") ||
        mdm_conf_set_str(&c->group_prefix, "mdm-eventd:") ||
        mdm_conf_set_str(&c->consumer, "mdm-eventd")) {
        return -1;
    }
    c->redis.cluster_ok = 1; /* eventd_redis.c routes the status by slot */
    return 0;
}

int
eventd_secret_read(const char *path, unsigned char **out, size_t *len,
                   char *err, size_t errlen)
{
    unsigned char buf[SECRET_MAX + 1];
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    /* the ssh rule: a key others can read is not a secret any more */
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s is readable or writable by group or others (mode "
                 "%03o): chmod 600",
                 path, (unsigned) (st.st_mode & 0777));
        close(fd);
        return -1;
    }
    while (got < sizeof(buf) &&
           (n = read(fd, buf + got, sizeof(buf) - got)) > 0) {
        got += (size_t) n;
    }
    close(fd);
    if (got > SECRET_MAX) {
        snprintf(err, errlen, "%s: longer than %d bytes", path, SECRET_MAX);
        return -1;
    }
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' ||
                       buf[got - 1] == ' ' || buf[got - 1] == '\t')) {
        got--;
    }
    if (got < 16) {
        snprintf(err, errlen, "%s: a secret of at least 16 bytes is needed",
                 path);
        return -1;
    }
    *out = malloc(got);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(*out, buf, got);
    *len = got;
    return 0;
}

static int
valid_name(const char *v)
{
    size_t i, n = strlen(v);

    if (n == 0 || n > EVENTD_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char ch = v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
              ch == '.')) {
            return 0;
        }
    }
    return 1;
}

static int
set_kinds(eventd_ep_conf_t *e, const char *v)
{
    char *copy, *p, *save = NULL;

    copy = strdup(v);
    if (copy == NULL) {
        return -1;
    }
    for (p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char **n = realloc(e->kinds, (e->nkinds + 1) * sizeof(*n));
        if (n == NULL) {
            free(copy);
            return -1;
        }
        e->kinds = n;
        if ((e->kinds[e->nkinds] = strdup(p)) == NULL) {
            free(copy);
            return -1;
        }
        e->nkinds++;
    }
    free(copy);
    return e->nkinds > 0 ? 0 : -1;
}

static int
ep_option(eventd_ep_conf_t *e, const char *k, const char *v, char *err,
          size_t errlen)
{
    if (strcmp(k, "secret") == 0) {
        return mdm_conf_set_str(&e->secret_file, v);
    }
    if (strcmp(k, "ca_file") == 0) {
        if (access(v, R_OK) != 0) {
            snprintf(err, errlen, "ca_file: cannot read %s: %s", v,
                     strerror(errno));
            return -1;
        }
        return mdm_conf_set_str(&e->ca_file, v);
    }
    if (strcmp(k, "kinds") == 0) {
        if (set_kinds(e, v) != 0) {
            snprintf(err, errlen, "kinds: a comma-separated list of kinds");
            return -1;
        }
        return 0;
    }
    if (strcmp(k, "tls_verify") == 0) {
        if (strcmp(v, "on") == 0) {
            e->insecure = 0;
        } else if (strcmp(v, "off") == 0) {
            e->insecure = 1;
        } else {
            snprintf(err, errlen, "tls_verify: on or off");
            return -1;
        }
        return 0;
    }
    if (strcmp(k, "batch") == 0) {
        if (mdm_conf_num(v, 1, 10000, &e->batch) != 0) {
            snprintf(err, errlen, "batch: expected a number in 1..10000");
            return -1;
        }
        return 0;
    }
    if (strcmp(k, "timeout_ms") == 0) {
        if (mdm_conf_num(v, 100, 3600000, &e->timeout_ms) != 0) {
            snprintf(err, errlen,
                     "timeout_ms: expected a number in 100..3600000");
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown endpoint option \"%s\"", k);
    return -1;
}

static int
add_endpoint(eventd_conf_t *c, char **tok, int ntok, char *err, size_t errlen)
{
    eventd_ep_conf_t *n, *e;
    char msg[400];
    size_t i;
    int t;

    if (ntok < 3 || (ntok - 3) % 2 != 0) {
        snprintf(err, errlen,
                 "endpoint: expected \"endpoint NAME URL secret FILE "
                 "[option value]...\"");
        return -1;
    }
    if (!valid_name(tok[1])) {
        snprintf(err, errlen,
                 "endpoint: name \"%s\": 1-%d characters of A-Z a-z 0-9 _ "
                 "- .",
                 tok[1], EVENTD_NAME_MAX);
        return -1;
    }
    for (i = 0; i < c->neps; i++) {
        if (strcmp(c->eps[i].name, tok[1]) == 0) {
            snprintf(err, errlen, "endpoint: name \"%s\" used twice", tok[1]);
            return -1;
        }
    }
    if (!((strncmp(tok[2], "https://", 8) == 0 && strlen(tok[2]) > 8) ||
          (strncmp(tok[2], "http://", 7) == 0 && strlen(tok[2]) > 7)) ||
        strpbrk(tok[2], " \t\r\n") != NULL) {
        snprintf(err, errlen, "endpoint %s: URL: an http:// or https:// URL",
                 tok[1]);
        return -1;
    }
    n = realloc(c->eps, (c->neps + 1) * sizeof(*n));
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->eps = n;
    e = &c->eps[c->neps++];
    memset(e, 0, sizeof(*e));
    if (mdm_conf_set_str(&e->name, tok[1]) ||
        mdm_conf_set_str(&e->url, tok[2])) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (t = 3; t + 1 < ntok; t += 2) {
        if (ep_option(e, tok[t], tok[t + 1], msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "endpoint %s: %s", e->name, msg);
            return -1;
        }
    }
    if (e->secret_file == NULL) {
        snprintf(err, errlen,
                 "endpoint %s: secret: required (\"secret FILE\"): every "
                 "delivery is signed",
                 e->name);
        return -1;
    }
    if (eventd_secret_read(e->secret_file, &e->secret, &e->secret_len, msg,
                           sizeof(msg)) != 0) {
        snprintf(err, errlen, "endpoint %s: secret: %s", e->name, msg);
        return -1;
    }
    return 0;
}

/* the numeric options and their ranges */
static const mdm_conf_num_t eventd_nums[] = {
#define N(f, lo, hi) MDM_CONF_NUM(eventd_conf_t, f, lo, hi)
    N(batch, 1, 10000),           N(timeout_ms, 100, 3600000),
    N(retry_base_ms, 1, 3600000), N(retry_max_ms, 1, 86400000),
    N(max_attempts, 0, INT_MAX),  N(status_interval_ms, 50, 3600000),
    N(drain_ms, 0, 3600000),
#undef N
};
static const mdm_conf_common_t eventd_common = MDM_CONF_COMMON(
    eventd_conf_t, "endpoint", 1, eventd_nums, "127.0.0.1:9102");

static int
one(void *conf, char **tok, int ntok, char *err, size_t errlen)
{
    eventd_conf_t *c = conf;
    const char *k = tok[0], *v = tok[1];
    int rc;

    /* the several-word option, or "k v" (mdm_conf_common_opt) */
    if (strcmp(k, "endpoint") == 0) {
        return add_endpoint(c, tok, ntok, err, errlen);
    }
    rc = mdm_redis_conf_opt(&c->redis, tok, ntok, err, errlen);
    if (rc <= 0) {
        return rc;
    }
    if (strcmp(k, "prefix") == 0) {
        return mdm_conf_set_str(&c->prefix, v);
    } else if (strcmp(k, "group_prefix") == 0) {
        return mdm_conf_set_str(&c->group_prefix, v);
    } else if (strcmp(k, "consumer") == 0) {
        if (!valid_name(v)) {
            snprintf(err, errlen,
                     "consumer: 1-%d characters of A-Z a-z 0-9 _ - .",
                     EVENTD_NAME_MAX);
            return -1;
        }
        return mdm_conf_set_str(&c->consumer, v);
    } else if (strcmp(k, "start") == 0) {
        if (strcmp(v, "new") == 0) {
            c->start_all = 0;
        } else if (strcmp(v, "all") == 0) {
            c->start_all = 1;
        } else {
            snprintf(err, errlen, "start: new or all");
            return -1;
        }
    } else {
        return mdm_conf_unknown(k, err, errlen);
    }
    return 0;
}

int
eventd_conf_load(const char *path, eventd_conf_t *c, char *err, size_t errlen)
{
    if (defaults(c) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mdm_conf_read(path, &eventd_common, one, c, err, errlen) != 0) {
        return -1;
    }
    if (c->neps == 0) {
        snprintf(err, errlen,
                 "%s: endpoint: no \"endpoint\" line: nothing to deliver to",
                 path);
        return -1;
    }
    if (c->retry_max_ms < c->retry_base_ms) {
        c->retry_max_ms = c->retry_base_ms;
    }
    return 0;
}

void
eventd_conf_free(eventd_conf_t *c)
{
    size_t i, k;

    mdm_redis_conf_free(&c->redis);
    free(c->prefix);
    free(c->group_prefix);
    free(c->consumer);
    free(c->metrics_listen);
    for (i = 0; i < c->neps; i++) {
        eventd_ep_conf_t *e = &c->eps[i];
        free(e->name);
        free(e->url);
        free(e->secret_file);
        free(e->ca_file);
        for (k = 0; k < e->nkinds; k++) {
            free(e->kinds[k]);
        }
        free(e->kinds);
        if (e->secret) {
            memset(e->secret, 0, e->secret_len);
            free(e->secret);
        }
    }
    free(c->eps);
    memset(c, 0, sizeof(*c));
}
