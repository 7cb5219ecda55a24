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
 * ms". Calls only hiredis, libc and mdm_daemon.c.
 */
#ifndef MDM_REDISCONN_H
#define MDM_REDISCONN_H

#include <stdint.h>

#include <hiredis.h>

/* Both connections and when to try again. */
typedef struct {
    redisContext **cmd; /* short calls */
    redisContext **blk; /* the outstanding blocking read */
    int *pending;       /* a read is outstanding on blk */
    int64_t *retry_at_ms, *backoff_ms;
    const char *id_connect, *id_fail;
} mdm_redisconn_t;

/**
 * Connect cmd (2 s timeout) and then blk (10 s) to addr ("host:port",
 * "/socket" or "unix:/socket"). 0 when both are up; else -1, and
 * mdm_redis_fail(c, "connect") has dropped them and set the back-off.
 */
int mdm_redis_connect(const mdm_redisconn_t *c, const char *addr);

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
