/*
 * One push from request to outcome. A request from the stream joins the
 * job of its enrollment or makes a new one (pushd_jobs.c); the job gets
 * its record read (pushd_redis.c), waits for a free stream of its topic,
 * goes to APNs (pushd_apns.c), and ends with one outcome written back, or
 * a retry after a back-off. The loop (pushd_main.c) calls these steps.
 */
#include "pushd_push.h"
#include "pushd_apns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A push request from the stream (new, our own pending, or claimed). */
void
pushd_push_entry(void *data, const pushd_entry_t *e)
{
    pushd_t *d = data;
    pushd_job_t *j = pushd_jobs_find(&d->jobs, e->id);

    if (j != NULL) {
        if (pushd_ids_has(&j->cur, e->entry) ||
            pushd_ids_has(&j->more, e->entry)) {
            return; /* claimed back what we already hold */
        }
        pushd_count(&d->counters, "coalesced", 1);
        d->metrics.coalesced++;
        /* a push already on its way may reach the device before the
         * command behind this request was queued: this one needs a push
         * of its own; a push not sent yet covers it */
        if (j->state == JOB_INFLIGHT || j->state == JOB_FINAL) {
            pushd_ids_add(&j->more, e->entry);
        } else {
            pushd_ids_add(&j->cur, e->entry);
        }
        return;
    }
    j = pushd_jobs_add(&d->jobs, e->id, e->entry);
    if (j == NULL) {
        return; /* left pending: claimed again later */
    }
    j->rec_key = pushd_rec_key(d->conf.prefix, e->id);
    pushd_count(&d->counters, "requests", 1);
    d->metrics.requests++;
}

static void
final(pushd_t *d, pushd_job_t *j, const char *result, const char *reason)
{
    if (result) {
        snprintf(j->result, sizeof(j->result), "%s", result);
    }
    if (reason) {
        snprintf(j->reason, sizeof(j->reason), "%s", reason);
    }
    pushd_jobs_set(&d->jobs, j, JOB_FINAL);
}

static void
count_outcome(pushd_t *d, pushd_job_t *j)
{
    char name[128];
    pushd_counters_t *c[2] = {&d->counters,
                              j->cert ? &j->cert->counters : NULL};
    size_t i;

    if (strcmp(j->result, "ok") == 0) {
        d->metrics.succeeded++;
    } else if (strcmp(j->result, "skipped") == 0) {
        pushd_metrics_add(&d->metrics.skipped, "", j->reason, 0);
    } else {
        pushd_metrics_add(&d->metrics.failed, j->result, j->reason, j->http);
    }
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
queue_ready(pushd_t *d, pushd_job_t *j)
{
    j->rnext = NULL;
    if (j->cert->ready_tail) {
        j->cert->ready_tail->rnext = j;
    } else {
        j->cert->ready_head = j;
    }
    j->cert->ready_tail = j;
    pushd_jobs_set(&d->jobs, j, JOB_READY);
}

/* 1 when j had to wait in the queue of its topic */
static int
start_job(pushd_t *d, pushd_job_t *j)
{
    time_t now = time(NULL);
    int rc;

    j->cert = pushd_topics_find(&d->topics, j->topic);
    if (j->cert == NULL) {
        mdm_daemon_log(PL_WARN, "MDM09130",
                       "push to %s: no certificate for its topic %s", j->id,
                       j->topic ? j->topic : "(none in the record)");
        final(d, j, "failed", "no-cert-for-topic");
        return 0;
    }
    if (j->cert->refused) {
        final(d, j, "failed", "cert-refused");
        return 0;
    }
    if (now >= j->cert->not_after) {
        final(d, j, "failed", "cert-expired");
        return 0;
    }
    if (now < j->cert->not_before) {
        final(d, j, "failed", "cert-not-yet-valid");
        return 0;
    }
    /* the pushes beyond the streams of the topic wait here, a pointer
     * in a queue each */
    if (j->cert->inflight >=
        (unsigned) (d->conf.connections * d->conf.streams)) {
        queue_ready(d, j);
        return 1;
    }
    rc = pushd_apns_start(d->h2, &d->conf, j);
    if (rc == PUSHD_BUSY) {
        /* fewer streams than configured (the server's limit, a
         * connection going away) */
        queue_ready(d, j);
        return 1;
    }
    if (rc == PUSHD_BAD_TOKEN) {
        final(d, j, "failed", "bad-token-in-record");
    } else if (rc == PUSHD_BAD_MAGIC) {
        final(d, j, "failed", "bad-magic-in-record");
    } else if (rc != PUSHD_STARTED) {
        /* out of memory: try again a little later */
        j->due_ms = mdm_now_ms() + 1000;
        pushd_jobs_set(&d->jobs, j, JOB_WAIT);
    } else {
        j->attempts++;
        j->sent_ms = mdm_now_ms();
        j->cert->inflight++;
        pushd_count(&d->counters, "sent", 1);
        d->metrics.sent++;
        pushd_count(&j->cert->counters, "sent", 1);
        pushd_jobs_set(&d->jobs, j, JOB_INFLIGHT);
    }
    return 0;
}

/* Start queued pushes as streams free up. */
void
pushd_push_start_ready(pushd_t *d)
{
    unsigned cap = (unsigned) (d->conf.connections * d->conf.streams);
    pushd_job_t *j;
    size_t i;

    if (d->jobs.nready == 0) {
        return;
    }
    for (i = 0; i < d->topics.n; i++) {
        pushd_cert_t *c = d->topics.v[i];

        while (c->ready_head && c->inflight < cap) {
            j = c->ready_head;
            c->ready_head = j->rnext;
            if (c->ready_head == NULL) {
                c->ready_tail = NULL;
            }
            j->rnext = NULL;
            /* checks the certificate again; back in the queue: no
             * stream free now */
            if (j->state == JOB_READY && start_job(d, j)) {
                break;
            }
        }
    }
}

void
pushd_push_lookup(pushd_t *d)
{
    pushd_job_t *j, **batch;
    size_t n = 0, i;

    if (d->jobs.nnew == 0) {
        return;
    }
    batch = malloc(d->jobs.nnew * sizeof(*batch));
    if (batch == NULL) {
        return;
    }
    for (j = d->jobs.head; j && n < d->jobs.nnew; j = j->next) {
        if (j->state != JOB_NEW) {
            continue;
        }
        if (j->rec_key == NULL) {
            final(d, j, "skipped", "bad-enrollment-id");
            continue;
        }
        batch[n++] = j;
    }
    if (pushd_redis_lookup(&d->redis, batch, n) == 0) {
        for (i = 0; i < n; i++) {
            j = batch[i];
            if (j->result[0]) {
                final(d, j, NULL, NULL);
            } else {
                start_job(d, j);
            }
        }
    }
    free(batch);
}

void
pushd_push_write_finals(pushd_t *d)
{
    pushd_job_t *j, **batch;
    size_t n = 0, i;

    if (d->jobs.nfinal == 0) {
        return;
    }
    batch = malloc(d->jobs.nfinal * sizeof(*batch));
    if (batch == NULL) {
        return;
    }
    for (j = d->jobs.fhead; j && n < d->jobs.nfinal; j = j->fnext) {
        batch[n++] = j;
    }
    if (pushd_redis_outcomes(&d->redis, batch, n) != 0) {
        free(batch);
        return; /* kept FINAL: written once Redis is back */
    }
    for (i = 0; i < n; i++) {
        j = batch[i];
        count_outcome(d, j);
        if (strcmp(j->result, "ok") != 0) {
            mdm_daemon_log(
                strcmp(j->result, "skipped") == 0 ? PL_INFO : PL_NOTICE,
                "MDM09131", "push to %s: %s%s%s (HTTP %ld, %d attempt%s)",
                j->id, j->result, j->reason[0] ? " " : "", j->reason, j->http,
                j->attempts, j->attempts == 1 ? "" : "s");
        } else {
            mdm_daemon_log(PL_DEBUG, "MDM09132", "push to %s: ok apns-id %s",
                           j->id, j->apns_id);
        }
        if (j->more.n > 0 && !d->draining) {
            /* requests that came in while it was on the wire */
            free(j->cur.v);
            j->cur = j->more;
            memset(&j->more, 0, sizeof(j->more));
            j->attempts = 0;
            j->result[0] = j->reason[0] = '\0';
            j->apns_id[0] = '\0';
            j->http = 0;
            j->cert = NULL;
            pushd_jobs_set(&d->jobs, j, JOB_NEW);
        } else {
            pushd_jobs_remove(&d->jobs, j);
        }
    }
    free(batch);
}

void
pushd_push_done(void *data, void *user, const pushd_h2_result_t *r)
{
    pushd_t *d = data;
    pushd_job_t *j = user;
    pushd_class_t cl;

    cl = pushd_apns_finish(j, r);
    j->cert->inflight--;
    if (!r->h2 && !d->warned_h1) {
        mdm_daemon_log(
            PL_WARN, "MDM09133",
            "%s does not speak HTTP/2 (no h2 in the TLS ALPN answer): "
            "APNs requires HTTP/2",
            d->conf.url);
        d->warned_h1 = 1;
    }
    switch (cl) {
    case PUSHD_OK:
    case PUSHD_DEAD:
    case PUSHD_FAILED:
        pushd_jobs_set(&d->jobs, j, JOB_FINAL);
        break;
    case PUSHD_CERT:
        if (!j->cert->refused) {
            j->cert->refused = 1;
            snprintf(j->cert->refused_why, sizeof(j->cert->refused_why),
                     "HTTP 403 %s", j->reason);
            mdm_daemon_log(
                PL_ERR, "MDM09134",
                "APNS REFUSED THE PUSH CERTIFICATE for topic %s (%s): "
                "HTTP 403 %s. No more pushes with it: every push for "
                "this topic fails until a valid certificate is loaded "
                "(replace the file with the renewed certificate, then "
                "SIGHUP)",
                j->cert->topic, j->cert->cert_file, j->reason);
        }
        pushd_jobs_set(&d->jobs, j, JOB_FINAL);
        break;
    case PUSHD_RETRY:
        pushd_count(&d->counters, "retries", 1);
        pushd_count(&j->cert->counters, "retries", 1);
        pushd_metrics_add(&d->metrics.retries, "", j->reason, j->http);
        if (d->draining) {
            /* left pending in the stream: the next run sends it */
            pushd_jobs_set(&d->jobs, j, JOB_PARKED);
        } else if (j->attempts >= d->conf.retry_attempts) {
            mdm_daemon_log(PL_WARN, "MDM09135",
                           "push to %s: giving up after %d attempts (last: %s)",
                           j->id, j->attempts, j->reason);
            snprintf(j->result, sizeof(j->result), "gave-up");
            pushd_jobs_set(&d->jobs, j, JOB_FINAL);
        } else {
            j->due_ms = mdm_now_ms() + mdm_backoff_ms(d->conf.retry_base_ms,
                                                      d->conf.retry_max_ms,
                                                      j->attempts);
            mdm_daemon_log(PL_DEBUG, "MDM09136",
                           "push to %s: %s (HTTP %ld), retry %d in %lld ms",
                           j->id, j->reason, j->http, j->attempts,
                           (long long) (j->due_ms - mdm_now_ms()));
            /* requests that arrived meanwhile ride on the retry */
            {
                size_t i;
                for (i = 0; i < j->more.n; i++) {
                    pushd_ids_add(&j->cur, j->more.v[i]);
                }
                j->more.n = 0;
            }
            pushd_jobs_set(&d->jobs, j, JOB_WAIT);
        }
        break;
    }
}

void
pushd_push_retry_due(pushd_t *d, int64_t now)
{
    pushd_job_t *j;

    if (d->jobs.nwaiting == 0) {
        return;
    }
    for (j = d->jobs.head; j; j = j->next) {
        if (j->state == JOB_WAIT && now >= j->due_ms) {
            j->result[0] = j->reason[0] = '\0';
            /* read the record again: a TokenUpdate may have come */
            pushd_jobs_set(&d->jobs, j, JOB_NEW);
        }
    }
}

void
pushd_push_park(pushd_t *d)
{
    pushd_job_t *j;
    size_t i;

    for (j = d->jobs.head; j; j = j->next) {
        if (j->state == JOB_WAIT || j->state == JOB_NEW ||
            j->state == JOB_READY) {
            pushd_jobs_set(&d->jobs, j, JOB_PARKED);
        }
    }
    for (i = 0; i < d->topics.n; i++) {
        d->topics.v[i]->ready_head = d->topics.v[i]->ready_tail = NULL;
    }
}
