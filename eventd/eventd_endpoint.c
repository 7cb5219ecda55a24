/*
 * One endpoint: read a batch from its group, deliver it, acknowledge it,
 * read the next. At most one batch per endpoint is in memory and on the
 * wire, so deliveries to one endpoint follow the stream's order (and so
 * every enrollment's events arrive in the order they happened), and an
 * endpoint that is down for hours costs one batch of memory: the rest
 * waits in the stream, behind the group's position.
 *
 *   READ -> (nothing new) IDLE -> (wake) READ
 *   READ -> SEND -> INFLIGHT -> (2xx) XACK -> READ
 *                            -> (else) BACKOFF -> SEND ...
 *   a failed XACK: ACK (acknowledged again, not delivered again)
 */
#include "eventd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    eventd_t *d;
    eventd_ep_t *ep;
    void *events;
    size_t trimmed, malformed;
    int newer;
    int oom;
} reading_t;

int
eventd_ep_init(eventd_t *d)
{
    size_t i;

    d->neps = d->conf.neps;
    d->eps = calloc(d->neps, sizeof(*d->eps));
    if (d->eps == NULL) {
        return -1;
    }
    for (i = 0; i < d->neps; i++) {
        eventd_ep_t *ep = &d->eps[i];
        ep->conf = &d->conf.eps[i];
        ep->state = EP_READ;
        if (asprintf(&ep->group, "%s%s", d->conf.group_prefix, ep->conf->name) <
            0) {
            ep->group = NULL;
            return -1;
        }
        if (asprintf(&ep->status_key, "%seventd:%s", d->conf.prefix,
                     ep->conf->name) < 0) {
            ep->status_key = NULL;
            return -1;
        }
    }
    return 0;
}

static void
batch_clear(eventd_ep_t *ep)
{
    free(ep->body);
    ep->body = NULL;
    ep->body_len = 0;
    ep->nids = 0;
    ep->nevents = 0;
    ep->attempts = 0;
}

void
eventd_ep_free(eventd_t *d)
{
    size_t i;

    for (i = 0; i < d->neps; i++) {
        eventd_ep_t *ep = &d->eps[i];
        eventd_http_cleanup(d->multi, ep);
        batch_clear(ep);
        free(ep->ids);
        free(ep->group);
        free(ep->status_key);
    }
    free(d->eps);
    d->eps = NULL;
    d->neps = 0;
}

static int
wanted(const eventd_ep_conf_t *c, const redisReply *fields)
{
    size_t i, k;

    if (c->nkinds == 0) {
        return 1;
    }
    for (i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *n = fields->element[i], *v = fields->element[i + 1];
        if (n->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(n->str, "kind") == 0) {
            for (k = 0; k < c->nkinds; k++) {
                if (strcmp(c->kinds[k], v->str) == 0) {
                    return 1;
                }
            }
            return 0;
        }
    }
    return 0;
}

static void
on_entry(void *data, const char *sid, const redisReply *fields)
{
    reading_t *rd = data;
    eventd_ep_t *ep = rd->ep;

    if (ep->nids == ep->cap) {
        size_t cap = ep->cap ? ep->cap * 2 : 64;
        char(*n)[EVENTD_SID_LEN] = realloc(ep->ids, cap * sizeof(*n));
        if (n == NULL) {
            rd->oom = 1;
            return;
        }
        ep->ids = n;
        ep->cap = cap;
    }
    snprintf(ep->ids[ep->nids++], EVENTD_SID_LEN, "%s", sid);
    if (eventd_redis_saw(&rd->d->redis, sid)) {
        rd->newer = 1;
    }
    if (fields == NULL) {
        rd->trimmed++;
        return;
    }
    if (!wanted(ep->conf, fields)) {
        return;
    }
    if (eventd_payload_add(rd->events, sid, fields) != 0) {
        rd->malformed++;
        return;
    }
    ep->nevents++;
}

static void
delivered(eventd_t *d, eventd_ep_t *ep)
{
    if (d->redis.cmd &&
        eventd_redis_ack(&d->redis, ep, ep->ids, ep->nids) == 0) {
        batch_clear(ep);
        ep->state = d->draining ? EP_PARKED : EP_READ;
    } else {
        ep->state = EP_ACK;
    }
}

static void
read_batch(eventd_t *d, eventd_ep_t *ep)
{
    reading_t rd;
    long n, want = ep->conf->batch ? ep->conf->batch : d->conf.batch;

    memset(&rd, 0, sizeof(rd));
    rd.d = d;
    rd.ep = ep;
    rd.events = eventd_payload_new();
    if (rd.events == NULL) {
        return;
    }
    batch_clear(ep);
    n = eventd_redis_read(&d->redis, ep, want, on_entry, &rd);
    if (n <= 0 || rd.oom) {
        eventd_payload_drop(rd.events);
        batch_clear(ep);
        if (n == 0) {
            ep->state = EP_IDLE;
        }
        return;
    }
    if (!ep->recovered) {
        /* entries this consumer had read and not acknowledged: the batch
         * that was on the wire when an earlier run stopped */
        mdm_daemon_log(
            EL_NOTICE, "MDM12125",
            "endpoint %s: delivering again %zu event(s) from %s left "
            "unacknowledged by an earlier run (at-least-once)",
            ep->conf->name, ep->nids, ep->ids[0]);
    }
    if (rd.trimmed || rd.malformed) {
        mdm_daemon_log(EL_NOTICE, "MDM12124",
                       "endpoint %s: %zu pending entr(ies) trimmed from the "
                       "stream, %zu malformed: acknowledged without delivery",
                       ep->conf->name, rd.trimmed, rd.malformed);
    }
    if (rd.newer) {
        eventd_ep_wake_all(d);
    }
    if (ep->nevents == 0) {
        /* nothing for this endpoint (kinds filter, trimmed) */
        eventd_payload_drop(rd.events);
        delivered(d, ep);
        return;
    }
    ep->body = eventd_payload_finish(rd.events, ep->conf->name);
    if (ep->body == NULL) {
        batch_clear(ep);
        return;
    }
    ep->body_len = strlen(ep->body);
    ep->state = EP_SEND;
}

static void
retry_later(eventd_t *d, eventd_ep_t *ep, const char *why)
{
    int64_t delay;

    ep->attempts++;
    ep->failures++;
    ep->last_fail = time(NULL);
    snprintf(ep->last_error, sizeof(ep->last_error), "%s", why);
    if (d->conf.max_attempts > 0 && ep->attempts >= d->conf.max_attempts) {
        mdm_daemon_log(EL_ERR, "MDM12143",
                       "endpoint %s: giving up after %d attempts (%s): %zu "
                       "event(s) %s..%s dropped",
                       ep->conf->name, ep->attempts, why, ep->nevents,
                       ep->ids[0], ep->ids[ep->nids - 1]);
        ep->dropped += (long long) ep->nevents;
        delivered(d, ep);
        return;
    }
    delay = mdm_backoff_ms(d->conf.retry_base_ms, d->conf.retry_max_ms,
                           ep->attempts);
    if (ep->retry_after > 0 && ep->retry_after * 1000 > delay) {
        delay = ep->retry_after * 1000;
        if (delay > d->conf.retry_max_ms) {
            delay = d->conf.retry_max_ms;
        }
    }
    ep->due_ms = mdm_now_ms() + delay;
    ep->state = d->draining ? EP_PARKED : EP_BACKOFF;
    mdm_daemon_log(EL_WARN, "MDM12141",
                   "endpoint %s: delivery of %zu event(s) from %s failed "
                   "(attempt %d): %s; retrying in %lld ms",
                   ep->conf->name, ep->nevents, ep->ids[0], ep->attempts, why,
                   (long long) delay);
}

void
eventd_ep_step(eventd_t *d, eventd_ep_t *ep, int64_t now)
{
    int rounds;

    for (rounds = 0; rounds < 4; rounds++) {
        switch (ep->state) {
        case EP_READ:
            if (d->redis.cmd == NULL || d->draining) {
                return;
            }
            read_batch(d, ep);
            if (ep->state == EP_READ && d->redis.cmd == NULL) {
                return;
            }
            break;
        case EP_BACKOFF:
            if (now < ep->due_ms) {
                return;
            }
            ep->state = EP_SEND;
            /* fall through */
        case EP_SEND:
            if (d->draining) {
                ep->state = EP_PARKED;
                return;
            }
            if (eventd_http_start(d->multi, ep, d->conf.consumer) != 0) {
                eventd_metrics_failed(&ep->fails, "start", 0);
                retry_later(d, ep, "cannot start the request");
                return;
            }
            ep->state = EP_INFLIGHT;
            return;
        case EP_ACK:
            if (d->redis.cmd == NULL) {
                return;
            }
            delivered(d, ep);
            if (ep->state == EP_ACK) {
                return;
            }
            break;
        default:
            return;
        }
    }
}

void
eventd_ep_done(eventd_t *d, CURL *easy, CURLcode rc)
{
    eventd_ep_t *ep = NULL;
    char why[300];
    int ok;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &ep);
    if (ep == NULL || ep->state != EP_INFLIGHT) {
        return;
    }
    ok = eventd_http_done(d->multi, ep, rc, why, sizeof(why));
    ep->posts++;
    if (!ok) {
        eventd_metrics_failed(&ep->fails, eventd_metrics_reason(rc), ep->http);
        retry_later(d, ep, why);
        return;
    }
    ep->batches++;
    ep->delivered += (long long) ep->nevents;
    ep->last_ok = time(NULL);
    if (ep->attempts > 0) {
        mdm_daemon_log(EL_NOTICE, "MDM12142",
                       "endpoint %s: delivered %zu event(s) from %s after %d "
                       "failed attempt(s) (HTTP %ld)",
                       ep->conf->name, ep->nevents, ep->ids[0], ep->attempts,
                       ep->http);
    } else {
        mdm_daemon_log(EL_DEBUG, "MDM12140",
                       "endpoint %s: delivered %zu event(s) %s..%s (HTTP %ld)",
                       ep->conf->name, ep->nevents, ep->ids[0],
                       ep->ids[ep->nids - 1], ep->http);
    }
    ep->last_error[0] = '\0';
    delivered(d, ep);
}

void
eventd_ep_wake_all(eventd_t *d)
{
    size_t i;

    if (d->draining) {
        return;
    }
    for (i = 0; i < d->neps; i++) {
        if (d->eps[i].state == EP_IDLE) {
            d->eps[i].state = EP_READ;
        }
    }
}

void
eventd_ep_park(eventd_t *d)
{
    size_t i;

    for (i = 0; i < d->neps; i++) {
        eventd_ep_t *ep = &d->eps[i];
        if (ep->state != EP_INFLIGHT && ep->state != EP_ACK) {
            ep->state = EP_PARKED;
        }
    }
}

int
eventd_ep_idle(const eventd_t *d)
{
    size_t i, n = 0;

    for (i = 0; i < d->neps; i++) {
        if (d->eps[i].state == EP_IDLE) {
            n++;
        }
    }
    return (int) n;
}

int
eventd_ep_busy(const eventd_t *d)
{
    size_t i, n = 0;

    for (i = 0; i < d->neps; i++) {
        if (d->eps[i].state == EP_INFLIGHT || d->eps[i].state == EP_ACK) {
            n++;
        }
    }
    return (int) n;
}

void
eventd_ep_reload_secrets(eventd_t *d)
{
    char err[512];
    unsigned char *s;
    size_t i, len, ok = 0;

    for (i = 0; i < d->neps; i++) {
        eventd_ep_conf_t *c = &d->conf.eps[i];
        if (eventd_secret_read(c->secret_file, &s, &len, err, sizeof(err)) !=
            0) {
            mdm_daemon_log(
                EL_ERR, "MDM12103",
                "reload: endpoint %s: secret: %s; the old secret stays "
                "in use",
                c->name, err);
            continue;
        }
        memset(c->secret, 0, c->secret_len);
        free(c->secret);
        c->secret = s;
        c->secret_len = len;
        ok++;
    }
    mdm_daemon_log(
        EL_NOTICE, "MDM12102",
        "SIGHUP: %zu of %zu secret(s) read again; they sign the next "
        "attempts",
        ok, d->neps);
}

int64_t
eventd_ep_next_due(const eventd_t *d, int64_t now, int64_t limit)
{
    int64_t t = limit;
    size_t i;

    for (i = 0; i < d->neps; i++) {
        const eventd_ep_t *ep = &d->eps[i];
        switch (ep->state) {
        case EP_READ:
        case EP_SEND:
        case EP_ACK:
            if (d->redis.cmd || ep->state == EP_SEND) {
                return now;
            }
            break;
        case EP_BACKOFF:
            if (ep->due_ms < t) {
                t = ep->due_ms;
            }
            break;
        default:
            break;
        }
    }
    return t;
}
