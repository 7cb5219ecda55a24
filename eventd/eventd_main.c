/*
 * mdm-eventd: the loop. Each endpoint reads a batch from its own consumer
 * group of the events stream, POSTs it, acknowledges it after a 2xx, and
 * reads the next; a failed delivery keeps its batch and is retried with
 * back-off. Endpoints that are caught up wait for the wake read, which
 * returns when a newer event is appended.
 *
 * This file is the top layer: start and stop, signals, the poll loop and
 * its timers. What happens to one endpoint is in eventd_endpoint.c.
 */
#include "eventd.h"
#include "eventd_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: mdm-eventd [-c FILE] [-t] [-v]\n"
    "  -c FILE  configuration (default /etc/mdm/eventd.conf)\n"
    "  -t       check the configuration and the secret files, then exit\n"
    "  -v       debug logging (every delivery)\n"
    "Signals: HUP reads the secret files again, TERM/INT drain and exit.\n";

static eventd_t D;
static eventd_metrics_t M;

static struct {
    const char *conf_file;
    int64_t drain_until;
    int64_t next_status;
    time_t started;
    int sigfd; /* the self-pipe's read end (mdm_daemon_signals()) */
} S;

static void
status_flush(void)
{
    char pid[24], started[24];
    const char *fv[] = {"pid",      pid,
                        "version",  EVENTD_VERSION,
                        "consumer", D.conf.consumer,
                        "started",  started,
                        "draining", D.draining ? "1" : "0"};

    snprintf(pid, sizeof(pid), "%d", (int) getpid());
    snprintf(started, sizeof(started), "%lld", (long long) S.started);
    eventd_redis_status(&D.redis, D.eps, D.neps, fv,
                        sizeof(fv) / sizeof(fv[0]));
}

static void
start_drain(void)
{
    D.draining = 1;
    S.drain_until = mdm_now_ms() + D.conf.drain_ms;
    mdm_daemon_log(
        EL_NOTICE, "MDM12107",
        "draining: %d delivery(ies) on the wire may finish within %ld "
        "ms; every other batch stays pending in its group for the "
        "next run",
        eventd_ep_busy(&D), D.conf.drain_ms);
    eventd_ep_park(&D);
    if (D.redis.wake) {
        redisFree(D.redis.wake);
        D.redis.wake = NULL;
        D.redis.waking = 0;
    }
}

static void
run(void)
{
    struct curl_waitfd fds[3 + MDM_LISTEN_CONN];
    int64_t now, due;
    unsigned nfds, mfirst;
    int running, left, wfd;
    size_t i;
    CURLMsg *m;

    for (;;) {
        now = mdm_now_ms();
        if (mdm_daemon_got_hup) {
            mdm_daemon_got_hup = 0;
            eventd_ep_reload_secrets(&D);
        }
        if (mdm_daemon_got_term && !D.draining) {
            start_drain();
        }
        if (mdm_daemon_got_term > 1) {
            mdm_daemon_log(EL_WARN, "MDM12108",
                           "second signal: exiting now; unacknowledged batches "
                           "are delivered again by the next run");
            break;
        }
        if (D.draining && (eventd_ep_busy(&D) == 0 || now >= S.drain_until)) {
            break;
        }
        if (D.redis.cmd == NULL || (!D.draining && D.redis.wake == NULL)) {
            if (D.redis.cmd && D.redis.wake == NULL) {
                eventd_redis_fail(&D.redis, "wake");
            }
            if (eventd_redis_ensure(&D.redis, D.eps, D.neps, now) != 0) {
                goto poll;
            }
            /* the wake read starts after the newest entry now: endpoints
             * that were caught up read once, for what came meanwhile */
            eventd_ep_wake_all(&D);
        }
        for (i = 0; i < D.neps; i++) {
            eventd_ep_step(&D, &D.eps[i], now);
        }
        if (D.redis.cmd && now >= S.next_status) {
            status_flush();
            S.next_status = now + D.conf.status_interval_ms;
        }
        /* only for endpoints that are caught up: the others read on their
         * own, and a wake read while none waits would step through a
         * backlog one entry at a time */
        if (D.redis.cmd && !D.draining && !D.redis.waking &&
            eventd_ep_idle(&D) > 0) {
            eventd_redis_wake_start(&D.redis);
        }
    poll:
        now = mdm_now_ms();
        due = now + 1000;
        if (D.redis.cmd == NULL && D.redis.retry_at_ms < due) {
            due = D.redis.retry_at_ms;
        }
        if (D.redis.cmd && S.next_status < due) {
            due = S.next_status;
        }
        due = eventd_ep_next_due(&D, now, due);
        due = mdm_listen_due(&M.listen, due);
        nfds = 0;
        fds[nfds].fd = S.sigfd;
        fds[nfds].events = CURL_WAIT_POLLIN;
        fds[nfds++].revents = 0;
        wfd = eventd_redis_wake_fd(&D.redis);
        if (wfd >= 0) {
            fds[nfds].fd = wfd;
            fds[nfds].events = CURL_WAIT_POLLIN;
            fds[nfds++].revents = 0;
        }
        mfirst = nfds;
        nfds += (unsigned) eventd_metrics_pollfds(
            &M, fds + nfds, sizeof(fds) / sizeof(fds[0]) - nfds);
        curl_multi_poll(D.multi, fds, nfds, (int) (due > now ? due - now : 0),
                        NULL);
        eventd_metrics_io(&M, fds + mfirst, nfds - mfirst, mdm_now_ms());
        if (fds[0].revents) {
            mdm_daemon_signals_drain();
        }
        if (wfd >= 0 && fds[1].revents && eventd_redis_wake_ready(&D.redis)) {
            eventd_ep_wake_all(&D);
        }
        curl_multi_perform(D.multi, &running);
        while ((m = curl_multi_info_read(D.multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                eventd_ep_done(&D, m->easy_handle, m->data.result);
            }
        }
    }
    if (D.redis.cmd) {
        status_flush();
    }
    mdm_daemon_log(
        EL_NOTICE, "MDM12109",
        "stopped: %d delivery(ies) cut short, delivered again by the "
        "next run",
        eventd_ep_busy(&D));
}

int
main(int argc, char **argv)
{
    char err[1024];
    int rc, check = 0, verbose = 0;
    size_t i;

    mdm_daemon_name = "mdm-eventd";
    S.conf_file = "/etc/mdm/eventd.conf";
    rc = mdm_daemon_options(argc, argv, usage, &S.conf_file, &check, &verbose);
    if (rc >= 0) {
        return rc;
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (eventd_conf_load(S.conf_file, &D.conf, err, sizeof(err)) != 0) {
        mdm_daemon_log(EL_ERR, "MDM12100", "configuration: %s", err);
        eventd_conf_free(&D.conf);
        return 1;
    }
    if (verbose || D.conf.verbose) {
        mdm_daemon_log_level = EL_DEBUG;
    }
    if (check) {
        fprintf(stderr, "mdm-eventd: %s: configuration ok (%zu endpoint(s))\n",
                S.conf_file, D.conf.neps);
        eventd_conf_free(&D.conf);
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        eventd_redis_init(&D.redis, &D.conf) != 0 || eventd_ep_init(&D) != 0 ||
        (D.multi = curl_multi_init()) == NULL) {
        mdm_daemon_log(EL_ERR, "MDM12100", "out of memory");
        return 1;
    }
    S.started = time(NULL);
    eventd_metrics_init(&M, &D, S.started);
    if (D.conf.metrics_listen &&
        mdm_listen_open(&M.listen, "metrics_listen", D.conf.metrics_listen, err,
                        sizeof(err)) != 0) {
        mdm_daemon_log(EL_ERR, "MDM12100", "%s", err);
        return 1;
    }
    srandom((unsigned) (S.started ^ getpid()));
    S.sigfd = mdm_daemon_signals();
    if (S.sigfd < 0) {
        mdm_daemon_log(EL_ERR, "MDM12100", "pipe: %s", strerror(errno));
        return 1;
    }

    for (i = 0; i < D.neps; i++) {
        const eventd_ep_conf_t *c = D.eps[i].conf;
        if (c->insecure) {
            mdm_daemon_log(EL_WARN, "MDM12104",
                           "endpoint %s: tls_verify off: the receiver's "
                           "certificate is not checked",
                           c->name);
        } else if (strncmp(c->url, "http://", 7) == 0) {
            mdm_daemon_log(
                EL_WARN, "MDM12104",
                "endpoint %s: plain http://: events travel "
                "unencrypted (the signature only proves their origin)",
                c->name);
        }
    }
    mdm_daemon_log(EL_NOTICE, "MDM12101",
                   "mdm-eventd %s started: %zu endpoint(s), redis %s, stream "
                   "%s, consumer %s%s%s",
                   EVENTD_VERSION, D.neps, D.conf.redis.desc, D.redis.stream,
                   D.conf.consumer,
                   D.conf.metrics_listen ? ", metrics on " : "",
                   D.conf.metrics_listen ? D.conf.metrics_listen : "");

    run();

    mdm_listen_close(&M.listen);
    eventd_ep_free(&D);
    curl_multi_cleanup(D.multi);
    eventd_redis_free(&D.redis);
    eventd_conf_free(&D.conf);
    curl_global_cleanup();
    mdm_daemon_signals_close();
    return 0;
}
