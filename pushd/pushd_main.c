/*
 * mdm-pushd: the loop. Push requests come from the stream, become jobs
 * (one per enrollment: requests that arrive together share one push), get
 * their record read, go to APNs, and end with one outcome written to the
 * record and the events stream and acknowledged in the stream. Until then
 * the stream entries stay pending in the group, so a daemon that dies
 * loses nothing: its restart (same consumer name) or another daemon
 * (XAUTOCLAIM) picks them up.
 *
 * This file is the top layer: start and stop, signals, the poll loop and
 * its timers. What happens to one push is in pushd_push.c.
 */
#include "pushd_push.h"

#include <errno.h>
#include <poll.h>
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

static pushd_t D;

/* the loop's own: timers, drain deadline, signals */
static struct {
    const char *conf_file;
    int recovered;
    int64_t drain_until;
    int64_t next_status, next_claim, next_touch;
    time_t started;
    int sigfd; /* the self-pipe's read end (mdm_daemon_signals()) */
} S;

/* ------------------------------------------------------------------ */
/* periodic                                                           */

static void
status_flush(void)
{
    char pid[24], started[24], jobs[24], infl[24], wait[24];
    const char *fv[] = {"pid",         pid,        "version",
                        PUSHD_VERSION, "group",    D.conf.group,
                        "url",         D.conf.url, "started",
                        started,       "jobs",     jobs,
                        "inflight",    infl,       "retries_pending",
                        wait,          "draining", D.draining ? "1" : "0"};
    size_t i;

    snprintf(pid, sizeof(pid), "%d", (int) getpid());
    snprintf(started, sizeof(started), "%lld", (long long) S.started);
    snprintf(jobs, sizeof(jobs), "%zu", D.jobs.n);
    snprintf(infl, sizeof(infl), "%zu", D.jobs.ninflight);
    snprintf(wait, sizeof(wait), "%zu", D.jobs.nwaiting);
    for (i = 0; i < D.topics.n; i++) {
        pushd_cert_check_expiry(D.topics.v[i], time(NULL));
    }
    if (pushd_redis_status(&D.redis, D.topics.v, D.topics.n, &D.counters, fv,
                           sizeof(fv) / sizeof(fv[0])) == 0 &&
        D.metrics.listen.lfd >= 0 && D.redis.cmd &&
        pushd_metrics_queue(&D.metrics, D.redis.cmd, D.redis.stream,
                            D.conf.group) != 0) {
        pushd_redis_fail(&D.redis, "metrics");
    }
}

/* Keep the entries we hold (waiting for a retry) from looking idle to the
 * other daemons' XAUTOCLAIM. */
static void
touch_held(void)
{
    char(**lists)[48];
    size_t *ns, n = 0;
    pushd_job_t *j;

    if (D.jobs.n == 0) {
        return;
    }
    lists = malloc(D.jobs.n * 2 * sizeof(*lists));
    ns = malloc(D.jobs.n * 2 * sizeof(*ns));
    if (lists && ns) {
        for (j = D.jobs.head; j; j = j->next) {
            lists[n] = j->cur.v;
            ns[n++] = j->cur.n;
            lists[n] = j->more.v;
            ns[n++] = j->more.n;
        }
        pushd_redis_touch(&D.redis, (char(*const *)[48]) lists, ns, n);
    }
    free(lists);
    free(ns);
}

static void
periodic(int64_t now)
{
    if (!S.recovered) {
        if (pushd_redis_recover(&D.redis, pushd_push_entry, &D) != 0) {
            return;
        }
        S.recovered = 1;
    }
    if (!D.draining && now >= S.next_claim) {
        pushd_redis_autoclaim(&D.redis, pushd_push_entry, &D);
        S.next_claim = now + D.conf.claim_idle_ms / 2;
    }
    if (D.redis.cmd && now >= S.next_touch) {
        touch_held();
        S.next_touch = now + D.conf.claim_idle_ms / 3;
    }
    if (D.redis.cmd && now >= S.next_status) {
        status_flush();
        S.next_status = now + D.conf.status_interval_ms;
    }
    pushd_push_retry_due(&D, now);
}

static int64_t
next_due(int64_t now)
{
    int64_t t = now + 1000;
    pushd_job_t *j;

    if (D.redis.cmd == NULL) {
        return D.redis.retry_at_ms < t ? D.redis.retry_at_ms : t;
    }
    if (D.jobs.nnew > 0 || D.jobs.nfinal > 0 || !S.recovered) {
        return now;
    }
    if (S.next_status < t) {
        t = S.next_status;
    }
    if (!D.draining && S.next_claim < t) {
        t = S.next_claim;
    }
    if (D.jobs.nwaiting > 0) {
        for (j = D.jobs.head; j; j = j->next) {
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
    D.draining = 1;
    S.drain_until = mdm_now_ms() + D.conf.drain_ms;
    mdm_daemon_log(
        PL_NOTICE, "MDM09107",
        "draining: %zu push(es) on the wire may finish within %ld ms; "
        "%zu waiting or new stay pending in the stream for the next "
        "run",
        D.jobs.ninflight, D.conf.drain_ms,
        D.jobs.nwaiting + D.jobs.nnew + D.jobs.nready);
    pushd_push_park(&D);
    /* no more reads; an entry the outstanding read still delivers waits
     * in our pending list */
    if (D.redis.reader) {
        redisFree(D.redis.reader);
        D.redis.reader = NULL;
        D.redis.reading = 0;
    }
}

/* sigpipe, Redis reader, the metrics listener and its clients, then the
 * APNs connections */
#define POLL_MAX (2 + 1 + MDM_LISTEN_CONN + 64 * 64)

static int
run(void)
{
    static struct pollfd fds[POLL_MAX];
    int64_t now, due, h2due;
    size_t nfds, h2first, mfirst, ended;
    int rfd, ri;

    for (;;) {
        now = mdm_now_ms();
        if (mdm_daemon_got_hup) {
            mdm_daemon_got_hup = 0;
            pushd_topics_reload(&D.topics, S.conf_file);
        }
        if (mdm_daemon_got_term && !D.draining) {
            start_drain();
        }
        if (mdm_daemon_got_term > 1) {
            mdm_daemon_log(PL_WARN, "MDM09108",
                           "second signal: exiting now, %zu push(es) stay "
                           "pending in the stream",
                           D.jobs.n);
            break;
        }
        if (D.draining && ((D.jobs.ninflight == 0 && D.jobs.nfinal == 0) ||
                           now >= S.drain_until)) {
            break;
        }
        if (D.redis.cmd == NULL || (!D.draining && D.redis.reader == NULL)) {
            if (D.redis.cmd == NULL && pushd_redis_ensure(&D.redis, now) != 0) {
                goto poll;
            }
            if (!D.draining && D.redis.reader == NULL) {
                /* cmd alive without reader: reconnect both */
                pushd_redis_fail(&D.redis, "reader");
                goto poll;
            }
        }
        /* the topic guard, before the first push with a certificate
         * loaded at start or by SIGHUP */
        if (pushd_topics_guard(&D.topics, &D.redis) != 0) {
            if (D.redis.cmd) {
                pushd_redis_fail(&D.redis, "topic guard");
            }
            goto poll;
        }
        periodic(now);
        if (D.redis.cmd && !D.draining) {
            pushd_push_lookup(&D);
        }
        if (D.redis.cmd) {
            pushd_push_write_finals(&D);
        }
        if (D.redis.cmd && !D.draining && !D.redis.reading &&
            D.jobs.n < (size_t) D.conf.max_jobs) {
            long room = D.conf.max_jobs - (long) D.jobs.n;
            pushd_redis_read_start(&D.redis,
                                   room < D.conf.batch ? room : D.conf.batch);
        }
    poll:
        now = mdm_now_ms();
        /* send what the sessions hold, time out requests; requests that
         * ended here are handled at once */
        ended = pushd_h2_flush(D.h2, now);
        due = next_due(now);
        h2due = pushd_h2_due(D.h2, now);
        if (h2due < due) {
            due = h2due;
        }
        if (ended > 0) {
            due = now;
        }
        due = mdm_listen_due(&D.metrics.listen, due);
        nfds = 0;
        fds[nfds].fd = S.sigfd;
        fds[nfds].events = POLLIN;
        fds[nfds++].revents = 0;
        rfd = pushd_redis_reader_fd(&D.redis);
        ri = -1;
        if (rfd >= 0) {
            ri = (int) nfds;
            fds[nfds].fd = rfd;
            fds[nfds].events = POLLIN;
            fds[nfds++].revents = 0;
        }
        mfirst = nfds;
        nfds +=
            mdm_listen_pollfds(&D.metrics.listen, fds + nfds, POLL_MAX - nfds);
        h2first = nfds;
        nfds += pushd_h2_pollfds(D.h2, fds + nfds, POLL_MAX - nfds);
        if (poll(fds, nfds, (int) (due > now ? due - now : 0)) < 0 &&
            errno != EINTR) {
            mdm_daemon_log(PL_ERR, "MDM09100", "poll: %s", strerror(errno));
            break;
        }
        if (fds[0].revents) {
            mdm_daemon_signals_drain();
        }
        if (ri >= 0 && fds[ri].revents) {
            pushd_redis_read_ready(&D.redis, pushd_push_entry, &D);
        }
        pushd_h2_io(D.h2, fds + h2first, nfds - h2first, mdm_now_ms());
        mdm_listen_io(&D.metrics.listen, fds + mfirst, h2first - mfirst,
                      mdm_now_ms());
        if (!D.draining) {
            pushd_push_start_ready(&D);
        }
    }
    if (D.redis.cmd) {
        status_flush();
    }
    mdm_daemon_log(PL_NOTICE, "MDM09109",
                   "stopped: %zu push(es) left pending in the stream",
                   D.jobs.n);
    return 0;
}

int
main(int argc, char **argv)
{
    char err[1024];
    int rc, check = 0, verbose = 0;

    mdm_daemon_name = "mdm-pushd";
    S.conf_file = "/etc/mdm/pushd.conf";
    rc = mdm_daemon_options(argc, argv, usage, &S.conf_file, &check, &verbose);
    if (rc >= 0) {
        return rc;
    }
    if (pushd_conf_load(S.conf_file, &D.conf, err, sizeof(err)) != 0) {
        mdm_daemon_log(PL_ERR, "MDM09100", "configuration: %s", err);
        return 1;
    }
    if (verbose || D.conf.verbose) {
        mdm_daemon_log_level = PL_DEBUG;
    }
    if (pushd_redis_init(&D.redis, &D.conf) != 0) {
        mdm_daemon_log(PL_ERR, "MDM09100", "out of memory");
        return 1;
    }
    if (pushd_topics_load(&D.topics, &D.conf, D.redis.daemon_key, err,
                          sizeof(err)) != 0) {
        mdm_daemon_log(PL_ERR, "MDM09100", "certificate: %s", err);
        return 1;
    }
    if (check) {
        fprintf(stderr, "mdm-pushd: %s: configuration ok\n", S.conf_file);
        return 0;
    }
    S.started = time(NULL);
    pushd_metrics_init(&D.metrics);
    D.metrics.started = S.started;
    D.metrics.jobs = &D.jobs;
    D.metrics.topics = &D.topics;
    D.metrics.redis = &D.redis;
    if (D.conf.metrics_listen &&
        mdm_listen_open(&D.metrics.listen, "metrics_listen",
                        D.conf.metrics_listen, err, sizeof(err)) != 0) {
        mdm_daemon_log(PL_ERR, "MDM09100", "%s", err);
        return 1;
    }
    srandom((unsigned) (S.started ^ getpid()));
    S.sigfd = mdm_daemon_signals();
    if (S.sigfd < 0) {
        mdm_daemon_log(PL_ERR, "MDM09100", "pipe: %s", strerror(errno));
        return 1;
    }

    D.h2 = pushd_h2_new(&D.conf, pushd_push_done, &D, err, sizeof(err));
    if (D.h2 == NULL) {
        mdm_daemon_log(PL_ERR, "MDM09100", "endpoint: %s", err);
        return 1;
    }
    D.metrics.h2 = D.h2;
    mdm_daemon_log(
        PL_NOTICE, "MDM09101",
        "mdm-pushd %s started: %zu topic(s), endpoint %s, redis %s%s%s",
        PUSHD_VERSION, D.topics.n, D.conf.url, D.conf.redis.desc,
        D.conf.metrics_listen ? ", metrics on " : "",
        D.conf.metrics_listen ? D.conf.metrics_listen : "");

    run();

    mdm_listen_close(&D.metrics.listen);
    pushd_h2_free(D.h2); /* requests on the wire stay pending */
    while (D.jobs.head) {
        pushd_jobs_remove(&D.jobs, D.jobs.head);
    }
    pushd_topics_free(&D.topics);
    pushd_counters_free(&D.counters);
    pushd_redis_free(&D.redis);
    pushd_conf_free(&D.conf);
    return 0;
}
