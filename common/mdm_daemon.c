/*
 * The options, the log line, the clock, the back-off and the signals of
 * the sidecar daemons (mdm_daemon.h).
 */
#include "mdm_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *mdm_daemon_name = "mdm-daemon";
int mdm_daemon_log_level = MDM_LOG_INFO;

volatile sig_atomic_t mdm_daemon_got_hup, mdm_daemon_got_term;

static int sigpipe[2] = {-1, -1};

void
mdm_daemon_log(int level, const char *id, const char *fmt, ...)
{
    static const char *names[] = {"",     "",       "",     "error",
                                  "warn", "notice", "info", "debug"};
    char buf[1024];
    va_list ap;

    if (level > mdm_daemon_log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s[%d]: %s %s %s\n", mdm_daemon_name, (int) getpid(),
            names[level], id, buf);
}

int64_t
mdm_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mdm_backoff_ms(long base_ms, long max_ms, int attempt)
{
    int64_t d = base_ms;
    int i;

    for (i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    /* equal jitter: at least half the delay, so retries that failed
     * together (a 503 burst, several daemons or endpoints) spread out
     * without collapsing to zero */
    return d / 2 + (int64_t) (random() % (d / 2 + 1));
}

int
mdm_daemon_options(int argc, char **argv, const char *usage,
                   const char **conf_file, int *check, int *verbose)
{
    int opt;

    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            *conf_file = optarg;
            break;
        case 't':
            *check = 1;
            break;
        case 'v':
            *verbose = 1;
            break;
        default:
            fputs(usage, opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    return -1;
}

static void
on_signal(int sig)
{
    int saved = errno;
    ssize_t w;

    if (sig == SIGHUP) {
        mdm_daemon_got_hup = 1;
    } else {
        mdm_daemon_got_term++;
    }
    w = write(sigpipe[1], "x", 1);
    (void) w;
    errno = saved;
}

int
mdm_daemon_signals(void)
{
    struct sigaction sa;

    if (pipe(sigpipe) != 0 || fcntl(sigpipe[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(sigpipe[1], F_SETFL, O_NONBLOCK) != 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return sigpipe[0];
}

void
mdm_daemon_signals_drain(void)
{
    char buf[64];

    while (read(sigpipe[0], buf, sizeof(buf)) > 0) {
    }
}

void
mdm_daemon_signals_close(void)
{
    if (sigpipe[0] >= 0) {
        close(sigpipe[0]);
        close(sigpipe[1]);
        sigpipe[0] = sigpipe[1] = -1;
    }
}
