/*
 * The blocking Redis link of the programs that block (Apache's request
 * threads, mdmctl, the daemons): one Redis server, a master found through
 * Sentinel, or a Cluster, behind AUTH (README "Running several nodes").
 * The sans-IO parts (addresses, slots, replies) are core/mdm_redis_topo.h;
 * this file does the I/O with blocking hiredis.
 *
 * A link is used by one thread at a time. It connects lazily, re-resolves
 * the master (Sentinel) or reloads the slot map (Cluster) after a failure,
 * and backs off between failed attempts (100 ms doubling to max_backoff).
 */
#ifndef MDM_REDISLINK_H
#define MDM_REDISLINK_H

#include <stdarg.h>

#include "mdm.h"
#include "mdm_redis_topo.h"

struct redisContext;
struct redisReply;

typedef enum {
    MDM_REDIS_SINGLE = 0, /* addr[0] */
    MDM_REDIS_SENTINEL,   /* the master named master, from the sentinels */
    MDM_REDIS_CLUSTER     /* addr[] are seed nodes */
} mdm_redis_mode_t;

#define MDM_REDIS_MAX_ADDRS 16

/* Where Redis is and how to log in: set once at configuration time. */
typedef struct {
    mdm_redis_mode_t mode;
    int naddr;
    mdm_redis_addr_t addr[MDM_REDIS_MAX_ADDRS];
    char master[128];            /* Sentinel: the master's name */
    char user[128];              /* ACL user; "" none */
    char password[512];          /* "" none */
    char sentinel_password[512]; /* "" none: sentinels without AUTH */
    int connect_timeout_ms;      /* 0: 1000 */
    int timeout_ms;              /* 0: 2000 */
    int max_backoff_ms;          /* 0: 5000 */
    int wait_replicas;           /* WAIT after writes; 0: off */
    int wait_ms;
} mdm_redis_target_t;

/*
 * Parse a directive's words into t. kind names the directive for messages
 * ("MDMRedisSentinel"). 0 ok; -1 with "KIND: why" in err.
 *   mdm_redis_target_single(t, "127.0.0.1:6379")
 *   mdm_redis_target_sentinel(t, "mymaster", addrs, n)
 *   mdm_redis_target_cluster(t, addrs, n)
 */
int mdm_redis_target_single(mdm_redis_target_t *t, const char *kind,
                            const char *addr, char *err, size_t errlen);
int mdm_redis_target_sentinel(mdm_redis_target_t *t, const char *kind,
                              const char *master, const char *const *addrs,
                              int n, char *err, size_t errlen);
int mdm_redis_target_cluster(mdm_redis_target_t *t, const char *kind,
                             const char *const *addrs, int n, char *err,
                             size_t errlen);
/**
 * Split "a,b,c" (mdmctl's comma lists) or "a b c" (conf files) into words
 * in buf; pointers in words (max n). Their count.
 */
int mdm_redis_split(char *buf, const char *const sep, const char **words,
                    int n);

/**
 * Read a password file into dst (the target's password or
 * sentinel_password). kind names the directive. A group- or
 * other-readable file is accepted and *loose set (the caller warns with
 * MDM_ID_REDIS_PWFILE_MODE). 0 ok; -1 with "KIND: why" in err.
 */
int mdm_redis_target_password(char *dst, size_t dstlen, const char *kind,
                              const char *path, int *loose, char *err,
                              size_t errlen);

/** A description for logs: "127.0.0.1:6379", "sentinel mymaster", ... */
const char *mdm_redis_target_name(const mdm_redis_target_t *t, char *buf,
                                  size_t len);

/* level: 0 error, 1 warning, 2 notice, 3 info. msg starts with the id. */
typedef void (*mdm_redislink_log_fn)(void *data, int level, const char *msg);

typedef enum {
    MDM_LINK_OK = 0,
    MDM_LINK_ERR_CONNECT, /* no connection (or in back-off) */
    MDM_LINK_ERR_TIMEOUT, /* no reply in time */
    MDM_LINK_ERR_IO,      /* the connection broke */
    MDM_LINK_ERR_REPLY    /* failover reply, redirect limit */
} mdm_link_err_t;

typedef struct mdm_redislink_s mdm_redislink_t;

mdm_redislink_t *mdm_redislink_new(const mdm_redis_target_t *t,
                                   mdm_redislink_log_fn log, void *logdata);
void mdm_redislink_free(mdm_redislink_t *l);

/**
 * Connect now when not connected (respecting the back-off). 0: ready;
 * -1: not (logged).
 */
int mdm_redislink_ready(mdm_redislink_t *l);

/** Drop the connections that Redis closed while idle (before a request). */
void mdm_redislink_check_idle(mdm_redislink_t *l);

/**
 * Send the commands of a plan and read all their replies into rep
 * (p->ncmds slots, NULL on entry), routed by slot (Cluster), MOVED/ASK
 * followed, WAIT sent after writes when configured. 0 ok; -1: failed
 * (replies already read stay in rep: the caller frees them), the link
 * drops what broke and finds the master/slot map again on the next call.
 * (mdm_sync.h's mdm_redislink_exec() runs a whole transaction.)
 */
int mdm_redislink_run(mdm_redislink_t *l, const mdm_plan_t *p,
                      struct redisReply **rep);

/**
 * One command, routed by its key (Cluster). The reply (freeReplyObject)
 * or NULL on failure (the connection is dropped, logged). lens NULL:
 * the words are NUL-terminated.
 */
struct redisReply *mdm_redislink_cmd(mdm_redislink_t *l, int argc,
                                     const char **argv, const size_t *lens);

/** The same with NUL-terminated words up to a NULL. */
struct redisReply *mdm_redislink_cmdl(mdm_redislink_t *l, const char *w, ...);

/** Why the last call failed (MDM_LINK_OK when it did not). */
mdm_link_err_t mdm_redislink_error(const mdm_redislink_t *l);

/**
 * A connected, authenticated context to one Redis server of the target,
 * for the daemons' own connections: single: addr[0]; Sentinel: the master
 * (resolved, ROLE checked); Cluster: the node owning the slot of key (key
 * may be NULL: any master). timeout_ms: its socket timeout. NULL on
 * failure (logged with the target's ids).
 */
struct redisContext *mdm_redis_open(const mdm_redis_target_t *t,
                                    const char *key, int timeout_ms,
                                    mdm_redislink_log_fn log, void *logdata);

#endif
