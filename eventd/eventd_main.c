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
#include <fcntl.h>
#include <signal.h>
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
    S.drain_until = eventd_now_ms() + D.conf.drain_ms;
    eventd_log(EL_NOTICE, "MDM12107",
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
    char buf[64];

    for (;;) {
        now = eventd_now_ms();
        if (got_hup) {
            got_hup = 0;
            eventd_ep_reload_secrets(&D);
        }
        if (got_term && !D.draining) {
            start_drain();
        }
        if (got_term > 1) {
            eventd_log(EL_WARN, "MDM12108",
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
        now = eventd_now_ms();
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
        fds[nfds].fd = S.sigpipe[0];
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
        eventd_metrics_io(&M, fds + mfirst, nfds - mfirst, eventd_now_ms());
        if (fds[0].revents) {
            while (read(S.sigpipe[0], buf, sizeof(buf)) > 0) {
            }
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
    eventd_log(EL_NOTICE, "MDM12109",
               "stopped: %d delivery(ies) cut short, delivered again by the "
               "next run",
               eventd_ep_busy(&D));
}

int
main(int argc, char **argv)
{
    struct sigaction sa;
    char err[1024];
    int opt, check = 0, verbose = 0;
    size_t i;

    S.conf_file = "/etc/mdm/eventd.conf";
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
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (eventd_conf_load(S.conf_file, &D.conf, err, sizeof(err)) != 0) {
        eventd_log(EL_ERR, "MDM12100", "configuration: %s", err);
        eventd_conf_free(&D.conf);
        return 1;
    }
    if (verbose || D.conf.verbose) {
        eventd_log_level = EL_DEBUG;
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
        eventd_log(EL_ERR, "MDM12100", "out of memory");
        return 1;
    }
    S.started = time(NULL);
    eventd_metrics_init(&M, &D, S.started);
    if (D.conf.metrics_listen &&
        mdm_listen_open(&M.listen, "metrics_listen", D.conf.metrics_listen, err,
                        sizeof(err)) != 0) {
        eventd_log(EL_ERR, "MDM12100", "%s", err);
        return 1;
    }
    srandom((unsigned) (S.started ^ getpid()));
    if (pipe(S.sigpipe) != 0 || fcntl(S.sigpipe[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(S.sigpipe[1], F_SETFL, O_NONBLOCK) != 0) {
        eventd_log(EL_ERR, "MDM12100", "pipe: %s", strerror(errno));
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

    for (i = 0; i < D.neps; i++) {
        const eventd_ep_conf_t *c = D.eps[i].conf;
        if (c->insecure) {
            eventd_log(EL_WARN, "MDM12104",
                       "endpoint %s: tls_verify off: the receiver's "
                       "certificate is not checked",
                       c->name);
        } else if (strncmp(c->url, "http://", 7) == 0) {
            eventd_log(EL_WARN, "MDM12104",
                       "endpoint %s: plain http://: events travel "
                       "unencrypted (the signature only proves their origin)",
                       c->name);
        }
    }
    eventd_log(EL_NOTICE, "MDM12101",
               "mdm-eventd %s started: %zu endpoint(s), redis %s, stream "
               "%s, consumer %s%s%s",
               EVENTD_VERSION, D.neps, D.conf.redis, D.redis.stream,
               D.conf.consumer, D.conf.metrics_listen ? ", metrics on " : "",
               D.conf.metrics_listen ? D.conf.metrics_listen : "");

    run();

    mdm_listen_close(&M.listen);
    eventd_ep_free(&D);
    curl_multi_cleanup(D.multi);
    eventd_redis_free(&D.redis);
    eventd_conf_free(&D.conf);
    curl_global_cleanup();
    close(S.sigpipe[0]);
    close(S.sigpipe[1]);
    return 0;
}
