/*
 * What the two sidecar daemons (mdm-pushd, mdm-eventd) do alike around
 * their loops (mdm_daemon.c): the options -c FILE, -t, -v; the log line
 * on stderr; the monotonic clock and the retry back-off; HUP, TERM and
 * INT through a self-pipe whose read end joins the daemon's poll. Calls
 * only libc; the daemon names itself in mdm_daemon_name before it logs.
 */
#ifndef MDM_DAEMON_H
#define MDM_DAEMON_H

#include <signal.h>
#include <stdint.h>

#include "mdm.h" /* the levels: MDM_LOG_ERR (3) .. MDM_LOG_DEBUG (7) */

/* the "mdm-pushd" of "mdm-pushd[pid]: LEVEL MDMnnnnn text" */
extern const char *mdm_daemon_name;
/* lines above this level (3 error .. 7 debug) are not written */
extern int mdm_daemon_log_level;

/** One line on stderr: "NAME[pid]: LEVEL ID text". */
void mdm_daemon_log(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Milliseconds on the monotonic clock. */
int64_t mdm_now_ms(void);

/**
 * Delay before retry number attempt (1, 2, ...): base_ms doubling up to
 * max_ms, with equal jitter (half fixed, half random()), so that retries
 * that failed together spread out without collapsing to zero.
 */
int64_t mdm_backoff_ms(long base_ms, long max_ms, int attempt);

/**
 * The options -c FILE (into *conf_file), -t (*check = 1), -v (*verbose =
 * 1) and -h. Returns -1 to go on, else the exit status after usage was
 * written (0 for -h, on stdout; 2 otherwise, on stderr). optind is left
 * after the options.
 */
int mdm_daemon_options(int argc, char **argv, const char *usage,
                       const char **conf_file, int *check, int *verbose);

/* set by the handler: HUP once; TERM or INT counted */
extern volatile sig_atomic_t mdm_daemon_got_hup, mdm_daemon_got_term;

/**
 * The self-pipe (both ends non-blocking), the handler for HUP, TERM and
 * INT, SIGPIPE ignored. Returns the read end to poll, -1 with errno when
 * the pipe could not be made.
 */
int mdm_daemon_signals(void);
/** The read end polled readable: empty it. */
void mdm_daemon_signals_drain(void);
void mdm_daemon_signals_close(void);

#endif
