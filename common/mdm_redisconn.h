/*
 * The Redis connections of the sidecar daemons (mdm_redisconn.c). Each
 * daemon holds two blocking hiredis connections: "cmd" for short calls,
 * bounded by a socket timeout, and one that carries nothing but a
 * blocking stream read (pushd's reader, eventd's wake), written without
 * waiting and read when its socket polls readable. A failure drops both
 * and reconnects after a back-off doubling from 100 ms to 5 s.
 *
 * The daemon passes its log ids: id_connect for "cannot connect to Redis
 * at ADDR: why", id_fail for "Redis failed (what: why); reconnecting in N
 * ms". The connections go where the configuration's Redis options say
 * (mdm_redis_conf_opt: one server, or the master that Sentinel names,
 * behind AUTH; tools/mdm_redislink.h opens them). Calls only hiredis,
 * libc, mdm_daemon.c and mdm_redislink.c.
 */
#ifndef MDM_REDISCONN_H
#define MDM_REDISCONN_H

#include <stdint.h>

#include <hiredis.h>

#include "mdm_redislink.h"

/* A daemon's Redis options, as its configuration file sets them. */
typedef struct {
    mdm_redis_target_t t;
    const char *kind; /* the topology option seen: "redis"... (NULL: none) */
    char *desc;       /* as written, for logs (malloc'd) */
    int cluster_ok;   /* the daemon routes by slot: redis_cluster allowed */
} mdm_redis_conf_t;

/** The default: redis 127.0.0.1:6379. 0, or -1 out of memory. */
int mdm_redis_conf_init(mdm_redis_conf_t *rc);
void mdm_redis_conf_free(mdm_redis_conf_t *rc);

/**
 * A configuration line of the Redis options:
 *   redis ADDR                  IP:PORT, unix:/path (or /path)
 *   redis_sentinel MASTER ADDR [ADDR...]
 *   redis_cluster ADDR [ADDR...] (refused unless cluster_ok)
 *   redis_user NAME
 *   redis_password_file PATH    read now (a group/other-readable file is
 *                               accepted with a warning, MDM14002)
 *   redis_sentinel_password_file PATH
 * 0 set; -1 refused (why in err, naming the option); 1 not one of them.
 */
int mdm_redis_conf_opt(mdm_redis_conf_t *rc, char **tok, int ntok, char *err,
                       size_t errlen);

/* Both connections and when to try again. */
typedef struct {
    redisContext **cmd; /* short calls */
    redisContext **blk; /* the outstanding blocking read */
    int *pending;       /* a read is outstanding on blk */
    int64_t *retry_at_ms, *backoff_ms;
    const char *id_connect, *id_fail;
    const mdm_redis_target_t *target; /* where */
    const char *const *key; /* Cluster: both go to this key's master */
} mdm_redisconn_t;

/**
 * Connect cmd (2 s timeout) and then blk (10 s) to the target (one server,
 * the master Sentinel names, or in a Cluster the master of *key), AUTH
 * sent. 0 when both are up; else -1, and mdm_redis_fail(c, "connect") has
 * dropped them and set the back-off.
 */
int mdm_redis_connect(const mdm_redisconn_t *c);

/**
 * A Redis link (mdm_redislink.h) to the same target that logs like c's
 * connections: a Cluster daemon sends its commands on other keys through
 * it, each to its slot's master. NULL: out of memory.
 */
mdm_redislink_t *mdm_redisconn_link(const mdm_redisconn_t *c);

/**
 * x, or NULL when x is a reply error that means "not the master"
 * (READONLY, MASTERDOWN, LOADING...: mdm_redis_topo.h): then x is freed,
 * the line logged (MDM14006) and ctx marked failed, so that the caller's
 * failure path drops the connections and finds the master again.
 */
redisReply *mdm_redis_checked(redisContext *ctx, redisReply *x);

/** A call failed: log why, drop both connections, back off. */
void mdm_redis_fail(const mdm_redisconn_t *c, const char *what);

/**
 * Write a command on blk without waiting for its reply. 0: sent, pending
 * set; -1: not queued (out of memory); -2: the write failed, and
 * mdm_redis_fail(c, what) has run.
 */
int mdm_redis_send(const mdm_redisconn_t *c, int argc, const char **argv,
                   const char *what);

/**
 * blk polled readable: read what came. 1 with the reply in *out (pending
 * cleared); 0: the reply is not complete yet; -1: the read failed, and
 * mdm_redis_fail(c, what) has run.
 */
int mdm_redis_reply(const mdm_redisconn_t *c, redisReply **out,
                    const char *what);

/**
 * The value after name in a reply array of name, value, ... (XINFO,
 * HGETALL); NULL when a is not an array or has no such name.
 */
const redisReply *mdm_redis_kv(const redisReply *a, const char *name);

#endif
