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
    mdm_daemon_log(PL_NOTICE, "MDM09112",
                   "%s push certificate %s: topic %s, expires %s (%ld days)",
                   how, c->cert_file, c->topic, when,
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
    free(c->guard_topic);
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

    mdm_daemon_log(PL_NOTICE, "MDM09102",
                   "SIGHUP: reloading certificates from %s", conf_file);
    if (pushd_conf_load(conf_file, &nc, err, sizeof(err)) != 0) {
        mdm_daemon_log(PL_ERR, "MDM09103",
                       "reload refused, keeping the current certificates: %s",
                       err);
        pushd_conf_free(&nc);
        return;
    }
    for (i = 0; i < nc.ncerts; i++) {
        pushd_cert_conf_t *cc = &nc.certs[i];
        pushd_cert_t tmp, *old = NULL, *c, **n;
        const char *want;

        for (k = 0; k < t->n; k++) {
            if (strcmp(t->v[k]->cert_file, cc->cert_file) == 0) {
                old = t->v[k];
            }
        }
        memset(&tmp, 0, sizeof(tmp));
        if (pushd_cert_load(cc->cert_file, cc->key_file, cc->pass_file, &tmp,
                            err, sizeof(err)) != 0) {
            mdm_daemon_log(PL_ERR, "MDM09103",
                           "reload: %s refused, keeping what was loaded: %s",
                           cc->cert_file, err);
            continue;
        }
        c = pushd_topics_find(t, tmp.topic);
        /* a file the guard refused stands for the topic recorded for it */
        want = old == NULL                          ? NULL
               : old->guard < 0 && old->guard_topic ? old->guard_topic
                                                    : old->topic;
        if (old != NULL && strcmp(want, tmp.topic) != 0) {
            mdm_daemon_log(
                PL_ERR, "MDM09104",
                "reload: REFUSED replacement certificate %s: its "
                "topic %s differs from %s, the topic enrolled devices "
                "use. A new certificate strands every device (each "
                "must re-enroll); renew the existing one instead (same "
                "Apple ID, Renew in the portal) so the topic stays. "
                "Still pushing with the previous certificate.",
                cc->cert_file, tmp.topic, want);
            pushd_cert_clear_loaded(&tmp);
            continue;
        }
        if (old == NULL && c != NULL) {
            mdm_daemon_log(
                PL_ERR, "MDM09104",
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
                mdm_daemon_log(
                    PL_NOTICE, "MDM09105",
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
            memcpy(old->spki, tmp.spki, sizeof(old->spki));
            /* checked (and recorded) again on the next loop turn */
            old->guard = 0;
            t->guarded = 0;
            cert_loaded_log(old, "reloaded");
            pushd_cert_check_expiry(old, time(NULL));
            continue;
        }
        pushd_cert_clear_loaded(&tmp);
        c = cert_new(t, cc, err, sizeof(err));
        n = c ? realloc(t->v, (t->n + 1) * sizeof(*n)) : NULL;
        if (n == NULL) {
            mdm_daemon_log(PL_ERR, "MDM09103", "reload: %s: %s", cc->cert_file,
                           c ? "out of memory" : err);
            if (c) {
                cert_free(c);
            }
            continue;
        }
        t->v = n;
        t->v[t->n++] = c;
        t->guarded = 0;
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
            mdm_daemon_log(PL_WARN, "MDM09106",
                           "reload: %s (topic %s) is no longer configured but "
                           "stays in use until a restart",
                           t->v[k]->cert_file, t->v[k]->topic);
        }
    }
    pushd_conf_free(&nc);
}

/*
 * The topic guard. The certificate a file carries is what the devices
 * that enrolled with its topic are pushed with; a file swapped for a
 * certificate of another topic (a new certificate instead of a renewal,
 * or the wrong file) strands them. In memory the SIGHUP reload compares
 * with the certificate it replaces; across a restart that memory is gone,
 * so each accepted file is recorded in Redis (<prefix>pushd-topics: cert
 * file -> topic) and a file recorded for another topic is refused here,
 * before the first push: its certificate is kept but not used (state
 * refused), the recorded topic gets no certificate (its pushes fail
 * no-cert-for-topic, and say so) until the right certificate is put back
 * and reloaded, or the record is removed on purpose.
 */
int
pushd_topics_guard(pushd_topics_t *t, pushd_redis_t *r)
{
    pushd_cert_t **check = NULL, **ok = NULL;
    const char **files = NULL;
    char **rec = NULL;
    size_t i, n = 0, nok = 0;
    int rc = -1;

    if (t->guarded) {
        return 0;
    }
    check = calloc(t->n + 1, sizeof(*check));
    ok = calloc(t->n + 1, sizeof(*ok));
    files = calloc(t->n + 1, sizeof(*files));
    rec = calloc(t->n + 1, sizeof(*rec));
    if (check == NULL || ok == NULL || files == NULL || rec == NULL) {
        goto done;
    }
    for (i = 0; i < t->n; i++) {
        if (t->v[i]->guard == 0) {
            files[n] = t->v[i]->cert_file;
            check[n++] = t->v[i];
        }
    }
    if (n > 0 && pushd_redis_guard_read(r, files, n, rec) != 0) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        pushd_cert_t *c = check[i];

        if (rec[i] != NULL && strcmp(rec[i], c->topic) != 0) {
            c->guard = -1;
            free(c->guard_topic);
            c->guard_topic = rec[i];
            rec[i] = NULL;
            c->refused = 1;
            snprintf(c->refused_why, sizeof(c->refused_why),
                     "topic guard: the file served %s", c->guard_topic);
            mdm_daemon_log(
                PL_ERR, "MDM09114",
                "REFUSED push certificate %s: its topic %s is not %s, "
                "the topic Redis records for this file (the devices "
                "enrolled with %s are pushed through it). A new "
                "certificate strands every device; put back a "
                "certificate of %s (renew it: same Apple ID, Renew in "
                "the portal) and send SIGHUP. To change the topic on "
                "purpose: HDEL %s %s, then SIGHUP. Not pushing with "
                "it; pushes of %s fail no-cert-for-topic.",
                c->cert_file, c->topic, c->guard_topic, c->guard_topic,
                c->guard_topic, r->guard_key, c->cert_file, c->guard_topic);
            continue;
        }
        if (rec[i] == NULL) {
            mdm_daemon_log(PL_NOTICE, "MDM09113",
                           "topic guard: %s recorded as serving topic %s",
                           c->cert_file, c->topic);
        }
        ok[nok++] = c;
    }
    if (pushd_redis_guard_write(r, ok, nok) != 0) {
        goto done;
    }
    for (i = 0; i < nok; i++) {
        ok[i]->guard = 1;
        free(ok[i]->guard_topic);
        ok[i]->guard_topic = NULL;
    }
    t->guarded = 1;
    rc = 0;
done:
    for (i = 0; rec && i < n; i++) {
        free(rec[i]);
    }
    free(rec);
    free(files);
    free(ok);
    free(check);
    return rc;
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
