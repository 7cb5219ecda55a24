/*
 * The metrics of mdm-pushd: counters since start (kept here, counted by
 * pushd_push.c), gauges read at the scrape from the daemon's state, and
 * their text, which the listener of metrics_listen (common/mdm_listen.c,
 * in the daemon's poll loop) answers GET /metrics with (Prometheus text
 * exposition format 0.0.4).
 */
#include "pushd_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void render(void *data, mdm_listen_buf_t *b);

void
pushd_metrics_init(pushd_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    mdm_listen_init(&m->listen, "/metrics", "text/plain; version=0.0.4", render,
                    m);
}

void
pushd_metrics_add(pushd_mtable_t *t, const char *result, const char *reason,
                  long status)
{
    char r[sizeof(t->v[0].reason)];
    size_t i;
    int pass;

    /* an answer without a status (connection, TLS, timeout): its kind,
     * not the text of the error */
    snprintf(r, sizeof(r), "%s", reason && reason[0] ? reason : "-");
    if (status == 0) {
        r[strcspn(r, ":")] = '\0';
    }
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < t->n; i++) {
            if (t->v[i].status == status && strcmp(t->v[i].reason, r) == 0 &&
                strcmp(t->v[i].result, result) == 0) {
                t->v[i].n++;
                return;
            }
        }
        if (t->n < PUSHD_MTABLE_MAX - 1) {
            break;
        }
        /* reasons come from the server: the last set takes the rest */
        result = "other";
        snprintf(r, sizeof(r), "other");
        status = 0;
    }
    if (t->n == PUSHD_MTABLE_MAX) {
        return;
    }
    snprintf(t->v[t->n].result, sizeof(t->v[0].result), "%s", result);
    snprintf(t->v[t->n].reason, sizeof(t->v[0].reason), "%s", r);
    t->v[t->n].status = status;
    t->v[t->n++].n = 1;
}

/* ------------------------------------------------------------------ */
/* the queue                                                          */

int
pushd_metrics_queue(pushd_metrics_t *m, redisContext *c, const char *stream,
                    const char *group)
{
    const char *xi[] = {"XINFO", "GROUPS", stream};
    const char *xp[] = {"XPENDING", stream, group};
    redisReply *g = NULL, *p = NULL;
    const redisReply *v;
    struct timeval tv;
    size_t i;

    redisAppendCommandArgv(c, 3, xi, NULL);
    redisAppendCommandArgv(c, 3, xp, NULL);
    if (redisGetReply(c, (void **) &g) != REDIS_OK ||
        redisGetReply(c, (void **) &p) != REDIS_OK) {
        if (g) {
            freeReplyObject(g);
        }
        return -1;
    }
    m->queue_known = 0;
    m->lag_known = 0;
    for (i = 0; g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
        v = mdm_redis_kv(g->element[i], "name");
        if (v == NULL || v->type != REDIS_REPLY_STRING ||
            strcmp(v->str, group) != 0) {
            continue;
        }
        /* lag: Redis 7; nil when Redis cannot tell */
        v = mdm_redis_kv(g->element[i], "lag");
        if (v && v->type == REDIS_REPLY_INTEGER) {
            m->lag = v->integer;
            m->lag_known = 1;
        }
    }
    /* XPENDING summary: count, smallest id, greatest id, consumers */
    if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2 &&
        p->element[0]->type == REDIS_REPLY_INTEGER) {
        m->queue_known = 1;
        m->pending = p->element[0]->integer;
        m->oldest_age_ms = 0;
        if (p->element[1]->type == REDIS_REPLY_STRING) {
            long long ms = strtoll(p->element[1]->str, NULL, 10);
            long long now;

            gettimeofday(&tv, NULL);
            now = (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
            m->oldest_age_ms = now > ms ? now - ms : 0;
        }
    }
    freeReplyObject(g);
    freeReplyObject(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the exposition                                                     */

static void
gauge(mdm_listen_buf_t *b, const char *name, const char *help, long long v)
{
    mdm_listen_family(b, name, "gauge", help);
    mdm_listen_printf(b, "%s %lld\n", name, v);
}

static void
counter(mdm_listen_buf_t *b, const char *name, const char *help, long long v)
{
    mdm_listen_family(b, name, "counter", help);
    mdm_listen_printf(b, "%s %lld\n", name, v);
}

static void
table(mdm_listen_buf_t *b, const char *name, const char *help,
      const pushd_mtable_t *t, int with_result)
{
    char e1[64], e2[128];
    size_t i;

    mdm_listen_family(b, name, "counter", help);
    for (i = 0; i < t->n; i++) {
        const pushd_mcount_t *c = &t->v[i];
        if (with_result) {
            mdm_listen_printf(
                b, "%s{result=\"%s\",reason=\"%s\",status=\"%ld\"} %lld\n",
                name, mdm_listen_esc(c->result, e1, sizeof(e1)),
                mdm_listen_esc(c->reason, e2, sizeof(e2)), c->status, c->n);
        } else {
            mdm_listen_printf(b, "%s{reason=\"%s\",status=\"%ld\"} %lld\n",
                              name, mdm_listen_esc(c->reason, e2, sizeof(e2)),
                              c->status, c->n);
        }
    }
}

static void
render(void *data, mdm_listen_buf_t *b)
{
    pushd_metrics_t *m = data;
    time_t now = time(NULL);
    char e[512];
    size_t i;

    counter(b, "mdm_pushd_requests_total",
            "Push requests read from the stream that started a push",
            m->requests);
    counter(b, "mdm_pushd_coalesced_total",
            "Push requests joined to a push of the same enrollment",
            m->coalesced);
    counter(b, "mdm_pushd_pushes_sent_total",
            "APNs requests sent (every attempt)", m->sent);
    counter(b, "mdm_pushd_pushes_succeeded_total", "Pushes APNs accepted (200)",
            m->succeeded);
    table(b, "mdm_pushd_pushes_failed_total",
          "Pushes that ended without success, by result (dead, failed, "
          "gave-up), APNs reason and HTTP status (0: no answer)",
          &m->failed, 1);
    table(b, "mdm_pushd_pushes_skipped_total",
          "Push requests answered without an APNs request, by reason",
          &m->skipped, 0);
    table(b, "mdm_pushd_retries_total",
          "APNs requests to be retried, by reason and HTTP status (0: no "
          "answer)",
          &m->retries, 0);
    if (m->queue_known) {
        if (m->lag_known) {
            gauge(b, "mdm_pushd_queue_lag",
                  "Stream entries not yet read by the consumer group", m->lag);
        }
        gauge(b, "mdm_pushd_queue_pending",
              "Stream entries read by the group and not acknowledged yet",
              m->pending);
        mdm_listen_family(b, "mdm_pushd_queue_oldest_pending_age_seconds",
                          "gauge", "Age of the oldest pending stream entry");
        mdm_listen_printf(b,
                          "mdm_pushd_queue_oldest_pending_age_seconds %.3f\n",
                          (double) m->oldest_age_ms / 1000.0);
    }
    gauge(b, "mdm_pushd_jobs", "Pushes in memory", (long long) m->jobs->n);
    gauge(b, "mdm_pushd_inflight_streams",
          "APNs requests on the wire (HTTP/2 streams)",
          (long long) m->jobs->ninflight);
    gauge(b, "mdm_pushd_retries_waiting", "Pushes waiting for a retry",
          (long long) m->jobs->nwaiting);
    gauge(b, "mdm_pushd_connections", "HTTP/2 connections to APNs, open",
          (long long) pushd_h2_connections(m->h2));
    gauge(b, "mdm_pushd_redis_up", "1 while Redis is connected",
          m->redis->cmd != NULL);
    mdm_listen_family(
        b, "mdm_pushd_cert_days_left", "gauge",
        "Whole days until the push certificate of a topic expires");
    for (i = 0; i < m->topics->n; i++) {
        const pushd_cert_t *c = m->topics->v[i];
        mdm_listen_printf(b, "mdm_pushd_cert_days_left{topic=\"%s\"} %ld\n",
                          mdm_listen_esc(c->topic, e, sizeof(e)),
                          pushd_cert_days_left(c, now));
    }
    mdm_listen_family(
        b, "mdm_pushd_cert_expiry_timestamp_seconds", "gauge",
        "When the push certificate of a topic expires (UNIX time)");
    for (i = 0; i < m->topics->n; i++) {
        const pushd_cert_t *c = m->topics->v[i];
        mdm_listen_printf(
            b, "mdm_pushd_cert_expiry_timestamp_seconds{topic=\"%s\"} %lld\n",
            mdm_listen_esc(c->topic, e, sizeof(e)), (long long) c->not_after);
    }
    mdm_listen_family(b, "mdm_pushd_cert_refused", "gauge",
                      "1 when APNs refused the certificate of a topic (403)");
    for (i = 0; i < m->topics->n; i++) {
        const pushd_cert_t *c = m->topics->v[i];
        mdm_listen_printf(b, "mdm_pushd_cert_refused{topic=\"%s\"} %d\n",
                          mdm_listen_esc(c->topic, e, sizeof(e)),
                          c->refused ? 1 : 0);
    }
    gauge(b, "mdm_pushd_start_time_seconds", "When the daemon started",
          (long long) m->started);
}
