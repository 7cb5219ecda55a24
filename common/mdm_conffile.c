/*
 * The configuration file reader of the sidecar daemons: lines, words,
 * numbers with ranges, and the options both have (mdm_conffile.h).
 */
#include "mdm_conffile.h"
#include "mdm_listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
mdm_conf_read(const char *path, const mdm_conf_common_t *common,
              mdm_conf_line_pt line_cb, void *conf, char *err, size_t errlen)
{
    char line[8192], msg[600], *tok[MDM_CONF_WORDS], *p, *save;
    FILE *f;
    int lineno = 0, ntok, rc;

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
        for (p = strtok_r(line, " \t\r\n", &save); p;
             p = strtok_r(NULL, " \t\r\n", &save)) {
            if (ntok == MDM_CONF_WORDS) {
                snprintf(err, errlen, "%s:%d: too many words", path, lineno);
                fclose(f);
                return -1;
            }
            tok[ntok++] = p;
        }
        if (ntok == 0) {
            continue;
        }
        snprintf(msg, sizeof(msg), "out of memory");
        rc = mdm_conf_common_opt(conf, common, tok, ntok, msg, sizeof(msg));
        if (rc > 0) {
            rc = line_cb(conf, tok, ntok, msg, sizeof(msg));
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

int
mdm_conf_set_str(char **dst, const char *v)
{
    char *n = strdup(v);

    if (n == NULL) {
        return -1;
    }
    free(*dst);
    *dst = n;
    return 0;
}

int
mdm_conf_num(const char *v, long min, long max, long *out)
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

int
mdm_conf_set_num(void *conf, const mdm_conf_num_t *nums, size_t n,
                 const char *k, const char *v, char *err, size_t errlen)
{
    size_t i;
    long x;

    for (i = 0; i < n; i++) {
        if (strcmp(k, nums[i].name) != 0) {
            continue;
        }
        if (mdm_conf_num(v, nums[i].min, nums[i].max, &x) != 0) {
            snprintf(err, errlen, "%s: expected a number in %ld..%ld", k,
                     nums[i].min, nums[i].max);
            return -1;
        }
        *(long *) ((char *) conf + nums[i].off) = x;
        return 0;
    }
    return 1;
}

int
mdm_conf_metrics_listen(char **dst, const char *v, const char *example,
                        char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;

    if (strcmp(v, "off") == 0) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (mdm_listen_parse_addr(v, &ss, &sl) != 0) {
        snprintf(err, errlen,
                 "metrics_listen: \"%s\" is not IP:PORT (an IPv4 "
                 "address or [IPv6] address, no host name; port "
                 "1-65535), e.g. %s",
                 v, example);
        return -1;
    }
    return mdm_conf_set_str(dst, v);
}

int
mdm_conf_log(int *verbose, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "info") == 0) {
        *verbose = 0;
    } else if (strcmp(v, "debug") == 0) {
        *verbose = 1;
    } else {
        snprintf(err, errlen, "log: info or debug");
        return -1;
    }
    return 0;
}

int
mdm_conf_common_opt(void *conf, const mdm_conf_common_t *d, char **tok,
                    int ntok, char *err, size_t errlen)
{
    const char *k = tok[0], *v = ntok > 1 ? tok[1] : NULL;
    size_t i;

    if (strcmp(k, d->multi) == 0 && ntok >= d->multi_min) {
        return 1;
    }
    /* the Redis options (mdm_redis_conf_opt): some take several words */
    if (strncmp(k, "redis", 5) == 0) {
        return 1;
    }
    if (ntok != 2) {
        snprintf(err, errlen, "%s: expected one value", k);
        return -1;
    }
    for (i = 0; i < d->nnums && strcmp(k, d->nums[i].name) != 0; i++) {
        /* void */
    }
    if (i < d->nnums) {
        return mdm_conf_set_num(conf, &d->nums[i], 1, k, v, err, errlen);
    }
    if (strcmp(k, "metrics_listen") == 0) {
        return mdm_conf_metrics_listen(
            (char **) (void *) ((char *) conf + d->metrics_off), v,
            d->metrics_example, err, errlen);
    }
    if (strcmp(k, "log") != 0) {
        return 1;
    }
    return mdm_conf_log((int *) (void *) ((char *) conf + d->verbose_off), v,
                        err, errlen);
}

int
mdm_conf_unknown(const char *k, char *err, size_t errlen)
{
    snprintf(err, errlen, "unknown option \"%s\"", k);
    return -1;
}
