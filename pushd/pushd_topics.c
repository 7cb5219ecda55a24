/*
 * The topics mdm-pushd serves: the push certificates in use, one per
 * topic, as the configuration names them. Loaded at start; on SIGHUP the
 * certificate files are read again and swapped in place, with the checks
 * that keep the topics of enrolled devices served.
 */
#include "pushd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pushd_cert_t *
pushd_topics_find(const pushd_topics_t *t, const char *topic)
{
    size_t i;

    if (topic == NULL) {
        /* a record without a topic: only unambiguous with one cert */
        return t->n == 1 ? t->v[0] : NULL;
    }
    for (i = 0; i < t->n; i++) {
        if (strcmp(t->v[i]->topic, topic) == 0) {
            return t->v[i];
        }
    }
    return NULL;
}

static void
cert_loaded_log(const pushd_cert_t *c, const char *how)
{
    char when[32];
    struct tm tm;

    gmtime_r(&c->not_after, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    pushd_log(PL_NOTICE, "MDM09112",
              "%s push certificate %s: topic %s, expires %s (%ld days)", how,
              c->cert_file, c->topic, when,
              pushd_cert_days_left(c, time(NULL)));
}

static pushd_cert_t *
cert_new(const pushd_topics_t *t, const pushd_cert_conf_t *cc, char *err,
         size_t errlen)
{
    pushd_cert_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cert_file = strdup(cc->cert_file);
    c->key_file = cc->key_file ? strdup(cc->key_file) : NULL;
    c->pass_file = cc->pass_file ? strdup(cc->pass_file) : NULL;
    if (pushd_cert_load(c->cert_file, c->key_file, c->pass_file, c, err,
                        errlen) != 0 ||
        asprintf(&c->status_key, "%s:%s", t->status_prefix, c->topic) < 0) {
        pushd_cert_clear_loaded(c);
        free(c->cert_file);
        free(c->key_file);
        free(c->pass_file);
        free(c);
        return NULL;
    }
    return c;
}

static void
cert_free(pushd_cert_t *c)
{
    pushd_cert_clear_loaded(c);
    free(c->cert_file);
    free(c->key_file);
    free(c->pass_file);
    free(c->status_key);
    pushd_counters_free(&c->counters);
    free(c);
}

int
pushd_topics_load(pushd_topics_t *t, const pushd_conf_t *conf,
                  const char *status_prefix, char *err, size_t errlen)
{
    size_t i, k;

    t->status_prefix = status_prefix;
    t->v = calloc(conf->ncerts, sizeof(*t->v));
    if (t->v == NULL) {
        return -1;
    }
    for (i = 0; i < conf->ncerts; i++) {
        pushd_cert_t *c = cert_new(t, &conf->certs[i], err, errlen);
        if (c == NULL) {
            return -1;
        }
        for (k = 0; k < t->n; k++) {
            if (strcmp(t->v[k]->topic, c->topic) == 0) {
                snprintf(err, errlen,
                         "%s and %s carry the same topic %s: one "
                         "certificate per topic",
                         t->v[k]->cert_file, c->cert_file, c->topic);
                cert_free(c);
                return -1;
            }
        }
        t->v[t->n++] = c;
        cert_loaded_log(c, "loaded");
        pushd_cert_check_expiry(c, time(NULL));
    }
    return 0;
}

/* SIGHUP: read the configuration again, but take only its certificates.
 * Connections already made keep the old certificate for the pushes they
 * carry; new pushes go on new connections with the new one. */
void
pushd_topics_reload(pushd_topics_t *t, const char *conf_file)
{
    pushd_conf_t nc;
    char err[512];
    size_t i, k;

    pushd_log(PL_NOTICE, "MDM09102", "SIGHUP: reloading certificates from %s",
              conf_file);
    if (pushd_conf_load(conf_file, &nc, err, sizeof(err)) != 0) {
        pushd_log(PL_ERR, "MDM09103",
                  "reload refused, keeping the current certificates: %s", err);
        pushd_conf_free(&nc);
        return;
    }
    for (i = 0; i < nc.ncerts; i++) {
        pushd_cert_conf_t *cc = &nc.certs[i];
        pushd_cert_t tmp, *old = NULL, *c, **n;

        for (k = 0; k < t->n; k++) {
            if (strcmp(t->v[k]->cert_file, cc->cert_file) == 0) {
                old = t->v[k];
            }
        }
        memset(&tmp, 0, sizeof(tmp));
        if (pushd_cert_load(cc->cert_file, cc->key_file, cc->pass_file, &tmp,
                            err, sizeof(err)) != 0) {
            pushd_log(PL_ERR, "MDM09103",
                      "reload: %s refused, keeping what was loaded: %s",
                      cc->cert_file, err);
            continue;
        }
        c = pushd_topics_find(t, tmp.topic);
        if (old != NULL && strcmp(old->topic, tmp.topic) != 0) {
            pushd_log(PL_ERR, "MDM09104",
                      "reload: REFUSED replacement certificate %s: its "
                      "topic %s differs from %s, the topic enrolled devices "
                      "use. A new certificate strands every device (each "
                      "must re-enroll); renew the existing one instead (same "
                      "Apple ID, Renew in the portal) so the topic stays. "
                      "Still pushing with the previous certificate.",
                      cc->cert_file, tmp.topic, old->topic);
            pushd_cert_clear_loaded(&tmp);
            continue;
        }
        if (old == NULL && c != NULL) {
            pushd_log(PL_ERR, "MDM09104",
                      "reload: REFUSED %s: topic %s is already served by %s "
                      "(one certificate per topic)",
                      cc->cert_file, tmp.topic, c->cert_file);
            pushd_cert_clear_loaded(&tmp);
            continue;
        }
        if (old != NULL) {
            if (old->not_after != tmp.not_after) {
                old->warned_days = 0;
            }
            if (old->refused) {
                pushd_log(PL_NOTICE, "MDM09105",
                          "reload: topic %s in use again (APNs had refused "
                          "the previous certificate: %s)",
                          old->topic, old->refused_why);
            }
            old->refused = 0;
            old->refused_why[0] = '\0';
            pushd_cert_clear_loaded(old);
            old->topic = tmp.topic;
            old->subject = tmp.subject;
            old->not_before = tmp.not_before;
            old->not_after = tmp.not_after;
            old->pem_cert = tmp.pem_cert;
            old->pem_cert_len = tmp.pem_cert_len;
            old->pem_key = tmp.pem_key;
            old->pem_key_len = tmp.pem_key_len;
            old->gen = tmp.gen;
            cert_loaded_log(old, "reloaded");
            pushd_cert_check_expiry(old, time(NULL));
            continue;
        }
        pushd_cert_clear_loaded(&tmp);
        c = cert_new(t, cc, err, sizeof(err));
        n = c ? realloc(t->v, (t->n + 1) * sizeof(*n)) : NULL;
        if (n == NULL) {
            pushd_log(PL_ERR, "MDM09103", "reload: %s: %s", cc->cert_file,
                      c ? "out of memory" : err);
            if (c) {
                cert_free(c);
            }
            continue;
        }
        t->v = n;
        t->v[t->n++] = c;
        cert_loaded_log(c, "added");
        pushd_cert_check_expiry(c, time(NULL));
    }
    for (k = 0; k < t->n; k++) {
        for (i = 0; i < nc.ncerts; i++) {
            if (strcmp(t->v[k]->cert_file, nc.certs[i].cert_file) == 0) {
                break;
            }
        }
        if (i == nc.ncerts) {
            pushd_log(PL_WARN, "MDM09106",
                      "reload: %s (topic %s) is no longer configured but "
                      "stays in use until a restart",
                      t->v[k]->cert_file, t->v[k]->topic);
        }
    }
    pushd_conf_free(&nc);
}

void
pushd_topics_free(pushd_topics_t *t)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        cert_free(t->v[i]);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}
