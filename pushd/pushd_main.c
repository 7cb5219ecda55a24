/*
 * mdm-pushd: the loop. Push requests come from the stream, become jobs
 * (one per enrollment: requests that arrive together share one push), get
 * their record read, go to APNs, and end with one outcome written to the
 * record and the events stream and acknowledged in the stream. Until then
 * the stream entries stay pending in the group, so a daemon that dies
 * loses nothing: its restart (same consumer name) or another daemon
 * (XAUTOCLAIM) picks them up.
 */
#include "pushd.h"
#include "pushd_apns.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: mdm-pushd [-c FILE] [-t] [-v]\n"
    "  -c FILE  configuration (default /etc/mdm/pushd.conf)\n"
    "  -t       check the configuration and certificates, then exit\n"
    "  -v       debug logging (every push)\n"
    "Signals: HUP reloads the certificates, TERM/INT drain and exit.\n";

/* ------------------------------------------------------------------ */
/* state                                                              */

#define HASH_SIZE 16384

static struct {
    const char *conf_file;
    pushd_conf_t conf;
    pushd_cert_t **certs;
    size_t ncerts;
    pushd_redis_t redis;
    CURLM *multi;
    pushd_job_t *jobs; /* list head */
    pushd_job_t *hash[HASH_SIZE];
    size_t njobs, ninflight, nwaiting, nnew, nfinal, nready;
    pushd_counters_t counters;
    int recovered;
    int draining;
    int64_t drain_until;
    int64_t next_status, next_claim, next_touch;
    int warned_h1;
    time_t started;
    int sigpipe[2];
} S;

static volatile sig_atomic_t got_hup, got_term;

static void
on_signal(int sig)
{
    int saved = errno;
    ssize_t w;

    if (sig == SIGHUP) {
        got_hup = 1;
    } else {
        got_term++;
    }
    w = write(S.sigpipe[1], "x", 1);
    (void) w;
    errno = saved;
}

static unsigned
hash_id(const char *s)
{
    unsigned h = 2166136261u;

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 16777619u;
    }
    return h % HASH_SIZE;
}

static pushd_job_t *
job_find(const char *id)
{
    pushd_job_t *j;

    for (j = S.hash[hash_id(id)]; j; j = j->hnext) {
        if (strcmp(j->id, id) == 0) {
            return j;
        }
    }
    return NULL;
}

static void
state_count(pushd_job_state_t s, int by)
{
    switch (s) {
    case JOB_NEW:
        S.nnew += by;
        break;
    case JOB_INFLIGHT:
        S.ninflight += by;
        break;
    case JOB_WAIT:
        S.nwaiting += by;
        break;
    case JOB_FINAL:
        S.nfinal += by;
        break;
    case JOB_READY:
        S.nready += by;
        break;
    case JOB_PARKED:
        break;
    }
}

static void
job_set(pushd_job_t *j, pushd_job_state_t s)
{
    state_count(j->state, -1);
    if (j->state == JOB_WAIT && j->cert) {
        j->cert->waiting--;
    }
    j->state = s;
    state_count(s, 1);
    if (s == JOB_WAIT && j->cert) {
        j->cert->waiting++;
    }
}

static int
ids_add(pushd_ids_t *l, const char *entry)
{
    char(*n)[48];
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], entry) == 0) {
            return 0;
        }
    }
    if (l->n == l->cap) {
        n = realloc(l->v, (l->cap ? l->cap * 2 : 2) * sizeof(*n));
        if (n == NULL) {
            return -1;
        }
        l->v = n;
        l->cap = l->cap ? l->cap * 2 : 2;
    }
    snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", entry);
    return 0;
}

static int
ids_has(const pushd_ids_t *l, const char *entry)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], entry) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
job_free(pushd_job_t *j)
{
    pushd_job_t **p;

    for (p = &S.hash[hash_id(j->id)]; *p; p = &(*p)->hnext) {
        if (*p == j) {
            *p = j->hnext;
            break;
        }
    }
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        S.jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    state_count(j->state, -1);
    if (j->state == JOB_WAIT && j->cert) {
        j->cert->waiting--;
    }
    S.njobs--;
    curl_slist_free_all(j->headers);
    free(j->cur.v);
    free(j->more.v);
    free(j->id);
    free(j->rec_key);
    free(j->token);
    free(j->magic);
    free(j->topic);
    free(j->url);
    free(j->body);
    free(j);
}

/* A push request from the stream (new, our own pending, or claimed). */
static void
on_entry(void *data, const pushd_entry_t *e)
{
    pushd_job_t *j = job_find(e->id);

    (void) data;
    if (j != NULL) {
        if (ids_has(&j->cur, e->entry) || ids_has(&j->more, e->entry)) {
            return; /* claimed back what we already hold */
        }
        pushd_count(&S.counters, "coalesced", 1);
        /* a push already on its way may reach the device before the
         * command behind this request was queued: this one needs a push
         * of its own; a push not sent yet covers it */
        if (j->state == JOB_INFLIGHT || j->state == JOB_FINAL) {
            ids_add(&j->more, e->entry);
        } else {
            ids_add(&j->cur, e->entry);
        }
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->id = strdup(e->id)) == NULL ||
        ids_add(&j->cur, e->entry) != 0) {
        /* left pending: claimed again later */
        if (j) {
            free(j->id);
            free(j);
        }
        return;
    }
    j->rec_key = pushd_rec_key(S.conf.prefix, e->id);
    j->state = JOB_NEW;
    S.nnew++;
    j->next = S.jobs;
    if (S.jobs) {
        S.jobs->prev = j;
    }
    S.jobs = j;
    j->hnext = S.hash[hash_id(j->id)];
    S.hash[hash_id(j->id)] = j;
    S.njobs++;
    pushd_count(&S.counters, "requests", 1);
}

/* ------------------------------------------------------------------ */
/* certificates                                                       */

static pushd_cert_t *
cert_for(const char *topic)
{
    size_t i;

    if (topic == NULL) {
        /* a record without a topic: only unambiguous with one cert */
        return S.ncerts == 1 ? S.certs[0] : NULL;
    }
    for (i = 0; i < S.ncerts; i++) {
        if (strcmp(S.certs[i]->topic, topic) == 0) {
            return S.certs[i];
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
cert_new(const pushd_cert_conf_t *cc, char *err, size_t errlen)
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
        asprintf(&c->status_key, "%s:%s", S.redis.daemon_key, c->topic) < 0) {
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

static int
certs_load_initial(char *err, size_t errlen)
{
    size_t i, k;

    S.certs = calloc(S.conf.ncerts, sizeof(*S.certs));
    if (S.certs == NULL) {
        return -1;
    }
    for (i = 0; i < S.conf.ncerts; i++) {
        pushd_cert_t *c = cert_new(&S.conf.certs[i], err, errlen);
        if (c == NULL) {
            return -1;
        }
        for (k = 0; k < S.ncerts; k++) {
            if (strcmp(S.certs[k]->topic, c->topic) == 0) {
                snprintf(err, errlen,
                         "%s and %s carry the same topic %s: one "
                         "certificate per topic",
                         S.certs[k]->cert_file, c->cert_file, c->topic);
                cert_free(c);
                return -1;
            }
        }
        S.certs[S.ncerts++] = c;
        cert_loaded_log(c, "loaded");
        pushd_cert_check_expiry(c, time(NULL));
    }
    return 0;
}

/* SIGHUP: read the configuration again, but take only its certificates.
 * Transfers on the wire keep the copy curl made of the old certificate;
 * new ones use the new. */
static void
reload(void)
{
    pushd_conf_t nc;
    char err[512];
    size_t i, k;

    pushd_log(PL_NOTICE, "MDM09102", "SIGHUP: reloading certificates from %s",
              S.conf_file);
    if (pushd_conf_load(S.conf_file, &nc, err, sizeof(err)) != 0) {
        pushd_log(PL_ERR, "MDM09103",
                  "reload refused, keeping the current certificates: %s", err);
        pushd_conf_free(&nc);
        return;
    }
    for (i = 0; i < nc.ncerts; i++) {
        pushd_cert_conf_t *cc = &nc.certs[i];
        pushd_cert_t tmp, *old = NULL, *c, **n;

        for (k = 0; k < S.ncerts; k++) {
            if (strcmp(S.certs[k]->cert_file, cc->cert_file) == 0) {
                old = S.certs[k];
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
        c = cert_for(tmp.topic);
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
        c = cert_new(cc, err, sizeof(err));
        n = c ? realloc(S.certs, (S.ncerts + 1) * sizeof(*n)) : NULL;
        if (n == NULL) {
            pushd_log(PL_ERR, "MDM09103", "reload: %s: %s", cc->cert_file,
                      c ? "out of memory" : err);
            if (c) {
                cert_free(c);
            }
            continue;
        }
        S.certs = n;
        S.certs[S.ncerts++] = c;
        cert_loaded_log(c, "added");
        pushd_cert_check_expiry(c, time(NULL));
    }
    for (k = 0; k < S.ncerts; k++) {
        for (i = 0; i < nc.ncerts; i++) {
            if (strcmp(S.certs[k]->cert_file, nc.certs[i].cert_file) == 0) {
                break;
            }
        }
        if (i == nc.ncerts) {
            pushd_log(PL_WARN, "MDM09106",
                      "reload: %s (topic %s) is no longer configured but "
                      "stays in use until a restart",
                      S.certs[k]->cert_file, S.certs[k]->topic);
        }
    }
    pushd_conf_free(&nc);
}

/* ------------------------------------------------------------------ */
/* jobs                                                               */

static void
final(pushd_job_t *j, const char *result, const char *reason)
{
    if (result) {
        snprintf(j->result, sizeof(j->result), "%s", result);
    }
    if (reason) {
        snprintf(j->reason, sizeof(j->reason), "%s", reason);
    }
    job_set(j, JOB_FINAL);
}

static void
count_outcome(pushd_job_t *j)
{
    char name[128];
    pushd_counters_t *c[2] = {&S.counters, j->cert ? &j->cert->counters : NULL};
    size_t i;

    for (i = 0; i < 2; i++) {
        if (c[i] == NULL) {
            continue;
        }
        if (strcmp(j->result, "ok") == 0) {
            pushd_count(c[i], "succeeded", 1);
        } else {
            snprintf(name, sizeof(name), "%s:%s", j->result,
                     j->reason[0] ? j->reason : "-");
            pushd_count(c[i], name, 1);
            if (strcmp(j->result, "skipped") != 0) {
                pushd_count(c[i], "failed", 1);
            }
        }
    }
}

static void
start_job(pushd_job_t *j)
{
    time_t now = time(NULL);
    int rc;

    j->cert = cert_for(j->topic);
    if (j->cert == NULL) {
        pushd_log(PL_WARN, "MDM09130",
                  "push to %s: no certificate for its topic %s", j->id,
                  j->topic ? j->topic : "(none in the record)");
        final(j, "failed", "no-cert-for-topic");
        return;
    }
    if (j->cert->refused) {
        final(j, "failed", "cert-refused");
        return;
    }
    if (now >= j->cert->not_after) {
        final(j, "failed", "cert-expired");
        return;
    }
    if (now < j->cert->not_before) {
        final(j, "failed", "cert-not-yet-valid");
        return;
    }
    /* curl would queue the excess itself, but its pending transfers cost
     * memory (buffers per handle) and time (rescanned on every
     * completion); here they are a pointer in a queue */
    if (j->cert->inflight >= (unsigned) (S.conf.connections * S.conf.streams)) {
        j->rnext = NULL;
        if (j->cert->ready_tail) {
            j->cert->ready_tail->rnext = j;
        } else {
            j->cert->ready_head = j;
        }
        j->cert->ready_tail = j;
        job_set(j, JOB_READY);
        return;
    }
    rc = pushd_apns_start(S.multi, &S.conf, j);
    if (rc == PUSHD_BAD_TOKEN) {
        final(j, "failed", "bad-token-in-record");
    } else if (rc == PUSHD_BAD_MAGIC) {
        final(j, "failed", "bad-magic-in-record");
    } else if (rc != PUSHD_STARTED) {
        /* out of memory: try again a little later */
        j->due_ms = pushd_now_ms() + 1000;
        job_set(j, JOB_WAIT);
    } else {
        j->attempts++;
        j->sent_ms = pushd_now_ms();
        j->cert->inflight++;
        pushd_count(&S.counters, "sent", 1);
        pushd_count(&j->cert->counters, "sent", 1);
        job_set(j, JOB_INFLIGHT);
    }
}

/* Start queued pushes as streams free up. */
static void
start_ready(void)
{
    unsigned cap = (unsigned) (S.conf.connections * S.conf.streams);
    pushd_job_t *j;
    size_t i;

    if (S.nready == 0) {
        return;
    }
    for (i = 0; i < S.ncerts; i++) {
        pushd_cert_t *c = S.certs[i];

        while (c->ready_head && c->inflight < cap) {
            j = c->ready_head;
            c->ready_head = j->rnext;
            if (c->ready_head == NULL) {
                c->ready_tail = NULL;
            }
            j->rnext = NULL;
            if (j->state == JOB_READY) {
                start_job(j); /* checks the certificate again */
            }
        }
    }
}

static void
lookup_new(void)
{
    pushd_job_t *j, **batch;
    size_t n = 0, i;

    if (S.nnew == 0) {
        return;
    }
    batch = malloc(S.nnew * sizeof(*batch));
    if (batch == NULL) {
        return;
    }
    for (j = S.jobs; j && n < S.nnew; j = j->next) {
        if (j->state != JOB_NEW) {
            continue;
        }
        if (j->rec_key == NULL) {
            final(j, "skipped", "bad-enrollment-id");
            continue;
        }
        batch[n++] = j;
    }
    if (pushd_redis_lookup(&S.redis, batch, n) == 0) {
        for (i = 0; i < n; i++) {
            j = batch[i];
            if (j->result[0]) {
                final(j, NULL, NULL);
            } else {
                start_job(j);
            }
        }
    }
    free(batch);
}

static void
write_finals(void)
{
    pushd_job_t *j, *next, **batch;
    size_t n = 0, i;

    if (S.nfinal == 0) {
        return;
    }
    batch = malloc(S.nfinal * sizeof(*batch));
    if (batch == NULL) {
        return;
    }
    for (j = S.jobs; j; j = j->next) {
        if (j->state == JOB_FINAL) {
            batch[n++] = j;
        }
    }
    if (pushd_redis_outcomes(&S.redis, batch, n) != 0) {
        free(batch);
        return; /* kept FINAL: written once Redis is back */
    }
    for (i = 0; i < n; i++) {
        j = batch[i];
        count_outcome(j);
        if (strcmp(j->result, "ok") != 0) {
            pushd_log(strcmp(j->result, "skipped") == 0 ? PL_INFO : PL_NOTICE,
                      "MDM09131", "push to %s: %s%s%s (HTTP %ld, %d attempt%s)",
                      j->id, j->result, j->reason[0] ? " " : "", j->reason,
                      j->http, j->attempts, j->attempts == 1 ? "" : "s");
        } else {
            pushd_log(PL_DEBUG, "MDM09132", "push to %s: ok apns-id %s", j->id,
                      j->apns_id);
        }
        if (j->more.n > 0 && !S.draining) {
            /* requests that came in while it was on the wire */
            free(j->cur.v);
            j->cur = j->more;
            memset(&j->more, 0, sizeof(j->more));
            j->attempts = 0;
            j->result[0] = j->reason[0] = '\0';
            j->apns_id[0] = '\0';
            j->http = 0;
            j->cert = NULL;
            job_set(j, JOB_NEW);
        } else {
            job_free(j);
        }
    }
    free(batch);
    (void) next;
}

static void
transfer_done(CURL *e, CURLcode code)
{
    pushd_job_t *j = NULL;
    pushd_class_t cl;
    int h2 = 1;

    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &j);
    if (j == NULL) {
        return;
    }
    cl = pushd_apns_finish(S.multi, j, code, &h2);
    j->cert->inflight--;
    if (!h2 && !S.warned_h1) {
        pushd_log(PL_WARN, "MDM09133",
                  "%s answered over HTTP/1.x: APNs requires HTTP/2 (is "
                  "libcurl built with nghttp2?)",
                  S.conf.url);
        S.warned_h1 = 1;
    }
    switch (cl) {
    case PUSHD_OK:
    case PUSHD_DEAD:
    case PUSHD_FAILED:
        job_set(j, JOB_FINAL);
        break;
    case PUSHD_CERT:
        if (!j->cert->refused) {
            j->cert->refused = 1;
            snprintf(j->cert->refused_why, sizeof(j->cert->refused_why),
                     "HTTP 403 %s", j->reason);
            pushd_log(PL_ERR, "MDM09134",
                      "APNS REFUSED THE PUSH CERTIFICATE for topic %s (%s): "
                      "HTTP 403 %s. No more pushes with it: every push for "
                      "this topic fails until a valid certificate is loaded "
                      "(replace the file with the renewed certificate, then "
                      "SIGHUP)",
                      j->cert->topic, j->cert->cert_file, j->reason);
        }
        job_set(j, JOB_FINAL);
        break;
    case PUSHD_RETRY:
        pushd_count(&S.counters, "retries", 1);
        pushd_count(&j->cert->counters, "retries", 1);
        if (S.draining) {
            /* left pending in the stream: the next run sends it */
            job_set(j, JOB_PARKED);
        } else if (j->attempts >= S.conf.retry_attempts) {
            pushd_log(PL_WARN, "MDM09135",
                      "push to %s: giving up after %d attempts (last: %s)",
                      j->id, j->attempts, j->reason);
            snprintf(j->result, sizeof(j->result), "gave-up");
            job_set(j, JOB_FINAL);
        } else {
            j->due_ms = pushd_now_ms() + pushd_backoff_ms(S.conf.retry_base_ms,
                                                          S.conf.retry_max_ms,
                                                          j->attempts);
            pushd_log(PL_DEBUG, "MDM09136",
                      "push to %s: %s (HTTP %ld), retry %d in %lld ms", j->id,
                      j->reason, j->http, j->attempts,
                      (long long) (j->due_ms - pushd_now_ms()));
            /* requests that arrived meanwhile ride on the retry */
            {
                size_t i;
                for (i = 0; i < j->more.n; i++) {
                    ids_add(&j->cur, j->more.v[i]);
                }
                j->more.n = 0;
            }
            job_set(j, JOB_WAIT);
        }
        break;
    }
}

/* ------------------------------------------------------------------ */
/* periodic                                                           */

static void
status_flush(void)
{
    char pid[24], started[24], jobs[24], infl[24], wait[24];
    const char *fv[] = {"pid",         pid,        "version",
                        PUSHD_VERSION, "group",    S.conf.group,
                        "url",         S.conf.url, "started",
                        started,       "jobs",     jobs,
                        "inflight",    infl,       "retries_pending",
                        wait,          "draining", S.draining ? "1" : "0"};
    size_t i;

    snprintf(pid, sizeof(pid), "%d", (int) getpid());
    snprintf(started, sizeof(started), "%lld", (long long) S.started);
    snprintf(jobs, sizeof(jobs), "%zu", S.njobs);
    snprintf(infl, sizeof(infl), "%zu", S.ninflight);
    snprintf(wait, sizeof(wait), "%zu", S.nwaiting);
    for (i = 0; i < S.ncerts; i++) {
        pushd_cert_check_expiry(S.certs[i], time(NULL));
    }
    pushd_redis_status(&S.redis, S.certs, S.ncerts, &S.counters, fv,
                       sizeof(fv) / sizeof(fv[0]));
}

/* Keep the entries we hold (waiting for a retry) from looking idle to the
 * other daemons' XAUTOCLAIM. */
static void
touch_held(void)
{
    char(**lists)[48];
    size_t *ns, n = 0;
    pushd_job_t *j;

    if (S.njobs == 0) {
        return;
    }
    lists = malloc(S.njobs * 2 * sizeof(*lists));
    ns = malloc(S.njobs * 2 * sizeof(*ns));
    if (lists && ns) {
        for (j = S.jobs; j; j = j->next) {
            lists[n] = j->cur.v;
            ns[n++] = j->cur.n;
            lists[n] = j->more.v;
            ns[n++] = j->more.n;
        }
        pushd_redis_touch(&S.redis, (char(*const *)[48]) lists, ns, n);
    }
    free(lists);
    free(ns);
}

static void
periodic(int64_t now)
{
    pushd_job_t *j;

    if (!S.recovered) {
        if (pushd_redis_recover(&S.redis, on_entry, NULL) != 0) {
            return;
        }
        S.recovered = 1;
    }
    if (!S.draining && now >= S.next_claim) {
        pushd_redis_autoclaim(&S.redis, on_entry, NULL);
        S.next_claim = now + S.conf.claim_idle_ms / 2;
    }
    if (S.redis.cmd && now >= S.next_touch) {
        touch_held();
        S.next_touch = now + S.conf.claim_idle_ms / 3;
    }
    if (S.redis.cmd && now >= S.next_status) {
        status_flush();
        S.next_status = now + S.conf.status_interval_ms;
    }
    if (S.nwaiting > 0) {
        for (j = S.jobs; j; j = j->next) {
            if (j->state == JOB_WAIT && now >= j->due_ms) {
                j->result[0] = j->reason[0] = '\0';
                job_set(j, JOB_NEW); /* read the record again: a
                                        TokenUpdate may have come */
            }
        }
    }
}

static int64_t
next_due(int64_t now)
{
    int64_t t = now + 1000;
    pushd_job_t *j;

    if (S.redis.cmd == NULL) {
        return S.redis.retry_at_ms < t ? S.redis.retry_at_ms : t;
    }
    if (S.nnew > 0 || S.nfinal > 0 || !S.recovered) {
        return now;
    }
    if (S.next_status < t) {
        t = S.next_status;
    }
    if (!S.draining && S.next_claim < t) {
        t = S.next_claim;
    }
    if (S.nwaiting > 0) {
        for (j = S.jobs; j; j = j->next) {
            if (j->state == JOB_WAIT && j->due_ms < t) {
                t = j->due_ms;
            }
        }
    }
    return t;
}

static void
start_drain(void)
{
    pushd_job_t *j;
    size_t i;

    S.draining = 1;
    S.drain_until = pushd_now_ms() + S.conf.drain_ms;
    pushd_log(PL_NOTICE, "MDM09107",
              "draining: %zu push(es) on the wire may finish within %ld ms; "
              "%zu waiting or new stay pending in the stream for the next "
              "run",
              S.ninflight, S.conf.drain_ms, S.nwaiting + S.nnew + S.nready);
    for (j = S.jobs; j; j = j->next) {
        if (j->state == JOB_WAIT || j->state == JOB_NEW ||
            j->state == JOB_READY) {
            job_set(j, JOB_PARKED);
        }
    }
    for (i = 0; i < S.ncerts; i++) {
        S.certs[i]->ready_head = S.certs[i]->ready_tail = NULL;
    }
    /* no more reads; an entry the outstanding read still delivers waits
     * in our pending list */
    if (S.redis.reader) {
        redisFree(S.redis.reader);
        S.redis.reader = NULL;
        S.redis.reading = 0;
    }
}

static int
run(void)
{
    struct curl_waitfd fds[2];
    int64_t now, due;
    unsigned nfds;
    int running, left, rfd;
    CURLMsg *m;
    char buf[64];

    for (;;) {
        now = pushd_now_ms();
        if (got_hup) {
            got_hup = 0;
            reload();
        }
        if (got_term && !S.draining) {
            start_drain();
        }
        if (got_term > 1) {
            pushd_log(PL_WARN, "MDM09108",
                      "second signal: exiting now, %zu push(es) stay "
                      "pending in the stream",
                      S.njobs);
            break;
        }
        if (S.draining &&
            ((S.ninflight == 0 && S.nfinal == 0) || now >= S.drain_until)) {
            break;
        }
        if (S.redis.cmd == NULL || (!S.draining && S.redis.reader == NULL)) {
            if (S.redis.cmd == NULL && pushd_redis_ensure(&S.redis, now) != 0) {
                goto poll;
            }
            if (!S.draining && S.redis.reader == NULL) {
                /* cmd alive without reader: reconnect both */
                pushd_redis_fail(&S.redis, "reader");
                goto poll;
            }
        }
        periodic(now);
        if (S.redis.cmd && !S.draining) {
            lookup_new();
        }
        if (S.redis.cmd) {
            write_finals();
        }
        if (S.redis.cmd && !S.draining && !S.redis.reading &&
            S.njobs < (size_t) S.conf.max_jobs) {
            long room = S.conf.max_jobs - (long) S.njobs;
            pushd_redis_read_start(&S.redis,
                                   room < S.conf.batch ? room : S.conf.batch);
        }
    poll:
        now = pushd_now_ms();
        due = next_due(now);
        nfds = 0;
        fds[nfds].fd = S.sigpipe[0];
        fds[nfds].events = CURL_WAIT_POLLIN;
        fds[nfds++].revents = 0;
        rfd = pushd_redis_reader_fd(&S.redis);
        if (rfd >= 0) {
            fds[nfds].fd = rfd;
            fds[nfds].events = CURL_WAIT_POLLIN;
            fds[nfds++].revents = 0;
        }
        curl_multi_poll(S.multi, fds, nfds, (int) (due > now ? due - now : 0),
                        NULL);
        if (fds[0].revents) {
            while (read(S.sigpipe[0], buf, sizeof(buf)) > 0) {
            }
        }
        if (rfd >= 0 && fds[1].revents) {
            pushd_redis_read_ready(&S.redis, on_entry, NULL);
        }
        curl_multi_perform(S.multi, &running);
        while ((m = curl_multi_info_read(S.multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                transfer_done(m->easy_handle, m->data.result);
            }
        }
        if (!S.draining) {
            start_ready();
        }
    }
    if (S.redis.cmd) {
        status_flush();
    }
    pushd_log(PL_NOTICE, "MDM09109",
              "stopped: %zu push(es) left pending in the stream", S.njobs);
    return 0;
}

int
main(int argc, char **argv)
{
    struct sigaction sa;
    char err[1024];
    int opt, check = 0, verbose = 0;
    size_t i;

    S.conf_file = "/etc/mdm/pushd.conf";
    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            S.conf_file = optarg;
            break;
        case 't':
            check = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            fputs(usage, opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (pushd_conf_load(S.conf_file, &S.conf, err, sizeof(err)) != 0) {
        pushd_log(PL_ERR, "MDM09100", "configuration: %s", err);
        return 1;
    }
    if (verbose || S.conf.verbose) {
        pushd_log_level = PL_DEBUG;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        pushd_redis_init(&S.redis, &S.conf) != 0) {
        pushd_log(PL_ERR, "MDM09100", "out of memory");
        return 1;
    }
    if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)) {
        pushd_log(PL_ERR, "MDM09100",
                  "this libcurl has no HTTP/2 support (nghttp2): APNs "
                  "requires HTTP/2");
        return 1;
    }
    if (certs_load_initial(err, sizeof(err)) != 0) {
        pushd_log(PL_ERR, "MDM09100", "certificate: %s", err);
        return 1;
    }
    if (check) {
        fprintf(stderr, "mdm-pushd: %s: configuration ok\n", S.conf_file);
        return 0;
    }
    S.started = time(NULL);
    srandom((unsigned) (S.started ^ getpid()));
    if (pipe(S.sigpipe) != 0 || fcntl(S.sigpipe[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(S.sigpipe[1], F_SETFL, O_NONBLOCK) != 0) {
        pushd_log(PL_ERR, "MDM09100", "pipe: %s", strerror(errno));
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    S.multi = curl_multi_init();
    if (S.multi == NULL) {
        pushd_log(PL_ERR, "MDM09100", "out of memory");
        return 1;
    }
    curl_multi_setopt(S.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    /* each topic has its own client certificate, hence its own
     * connections to the same host */
    curl_multi_setopt(S.multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      S.conf.connections * (long) (S.ncerts + 1));
    curl_multi_setopt(S.multi, CURLMOPT_MAX_CONCURRENT_STREAMS, S.conf.streams);
    curl_multi_setopt(S.multi, CURLMOPT_MAXCONNECTS,
                      S.conf.connections * (long) (S.ncerts + 1) * 2);
    pushd_log(PL_NOTICE, "MDM09101",
              "mdm-pushd %s started: %zu topic(s), endpoint %s, redis %s",
              PUSHD_VERSION, S.ncerts, S.conf.url, S.conf.redis);

    run();

    while (S.jobs) {
        if (S.jobs->easy) {
            curl_multi_remove_handle(S.multi, S.jobs->easy);
            curl_easy_cleanup(S.jobs->easy);
            S.jobs->easy = NULL;
        }
        job_free(S.jobs);
    }
    curl_multi_cleanup(S.multi);
    pushd_apns_cleanup();
    for (i = 0; i < S.ncerts; i++) {
        cert_free(S.certs[i]);
    }
    free(S.certs);
    pushd_counters_free(&S.counters);
    pushd_redis_free(&S.redis);
    pushd_conf_free(&S.conf);
    curl_global_cleanup();
    return 0;
}
