/*
 * Redis topology, sans-IO (README "Running several nodes"): the pieces
 * every glue shares to reach Redis behind AUTH, Sentinel or Cluster. No
 * I/O here: the glue connects, sends and reads; these functions parse
 * addresses, configuration files and replies, and route commands.
 *
 *  - addresses: "IP:PORT", "[IPv6]:PORT" or "unix:/path" (IPs only: a
 *    host name would need a blocking resolver);
 *  - the password file: first line, read once at configuration time;
 *  - Sentinel: the reply of SENTINEL get-master-addr-by-name, ROLE, and
 *    the errors that mean "this is no longer the master";
 *  - Cluster: the hash slot of a key, the routing key of a plan command,
 *    MOVED/ASK redirects and the slot map from CLUSTER SLOTS.
 */
#ifndef MDM_REDIS_TOPO_H
#define MDM_REDIS_TOPO_H

#include <stddef.h>

#include "mdm.h"

struct redisReply;

/*
 * Log ids shared by every glue (nginx, Apache, daemons, mdmctl), listed in
 * README "Running several nodes". A request that fails meanwhile is still
 * answered 503 + Retry-After with the core's MDM04001/MDM04002.
 */
#define MDM_ID_REDIS_AUTH          "MDM14001" /* error: AUTH refused */
#define MDM_ID_REDIS_PWFILE_MODE   "MDM14002" /* warn: group/other-readable */
#define MDM_ID_SENTINEL_NONE       "MDM14003" /* error: no sentinel answered */
#define MDM_ID_SENTINEL_NOT_MASTER "MDM14004" /* warn: ROLE is not master */
#define MDM_ID_SENTINEL_MASTER     "MDM14005" /* notice: master is ADDR */
#define MDM_ID_REDIS_FAILOVER      "MDM14006" /* warn: READONLY... dropped */
#define MDM_ID_CLUSTER_MAP         "MDM14007" /* error: no CLUSTER SLOTS */
#define MDM_ID_CLUSTER_REDIRECTS   "MDM14008" /* error: redirect limit: 503 */
#define MDM_ID_CLUSTER_MOVED       "MDM14009" /* info: MOVED, map refreshed */
#define MDM_ID_REDIS_WAIT          "MDM14010" /* warn: WAIT fell short */

#define MDM_REDIS_SLOTS        16384
#define MDM_REDIS_MAX_NODES    64
#define MDM_REDIS_NO_NODE      255
#define MDM_REDIS_MAX_REDIRECT 5

typedef struct {
    char host[256]; /* IP text (no brackets), or the unix socket path */
    int port;       /* 0: host is a unix socket path */
} mdm_redis_addr_t;

/**
 * Parse "IP:PORT", "[IPv6]:PORT" or "unix:/path" (len bytes of s). 0 ok;
 * -1 with a message in err (without the directive's name: the caller
 * prefixes it).
 */
int mdm_redis_addr_parse(const char *s, size_t len, mdm_redis_addr_t *a,
                         char *err, size_t errlen);

/** "127.0.0.1:6379", "[::1]:6379" or "unix:/path" into buf; buf. */
const char *mdm_redis_addr_format(const mdm_redis_addr_t *a, char *buf,
                                  size_t buflen);

/** 1 when both name the same node. */
int mdm_redis_addr_eq(const mdm_redis_addr_t *a, const mdm_redis_addr_t *b);

/**
 * The Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of the
 * text between the first '{' and the next '}' when that is not empty,
 * modulo 16384.
 */
unsigned mdm_redis_slot(const char *key, size_t len);

/**
 * The routing key of one plan command (its argument that decides the
 * slot), or NULL when the command has no key (SCRIPT LOAD, PING, INFO:
 * any node serves it). *len gets its length.
 *
 *   EVAL, EVALSHA, FCALL      the first KEY when numkeys > 0, else NULL
 *   XREAD, XREADGROUP         the first stream after STREAMS
 *   XINFO, XGROUP             argv[2] (XINFO STREAM key, XGROUP CREATE key)
 *   OBJECT, MEMORY            argv[2]
 *   SCRIPT, PING, INFO, AUTH, ROLE, CLUSTER, SENTINEL, WAIT, ASKING,
 *   READONLY, SELECT, CLIENT, COMMAND, CONFIG, TIME, DBSIZE, FLUSHALL,
 *   FLUSHDB, MULTI, EXEC, DISCARD, HELLO, ECHO, QUIT, PUBLISH, SCAN,
 *   KEYS, RANDOMKEY    no key (NULL)
 *   anything else             argv[1] (GET SET DEL EXISTS EXPIRE HSET HGET
 *                             HMGET HGETALL HDEL HINCRBY SADD SREM SMEMBERS
 *                             SISMEMBER ZADD ZRANGEBYSCORE LRANGE LLEN RPUSH
 *                             XADD XACK XDEL XCLAIM XAUTOCLAIM XPENDING
 *                             XRANGE XREVRANGE XLEN ...)
 */
const char *mdm_cmd_route_key(const mdm_cmd_t *c, size_t *len);

/**
 * A reply error "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381":
 * 1 with *ask (0: MOVED, 1: ASK), *slot and *to filled; 0 when err is not
 * a (well-formed) redirect.
 */
int mdm_redis_redirect(const char *err, size_t len, int *ask, unsigned *slot,
                       mdm_redis_addr_t *to);

/**
 * 1 when a reply error says the node cannot serve writes now and the
 * connection should be dropped and the master found again: READONLY,
 * MASTERDOWN, LOADING, CLUSTERDOWN. 0 otherwise (TRYAGAIN, a multi-key
 * call during a slot migration, is an error reply like any other: the
 * core answers 503 + Retry-After, MDM04002).
 */
int mdm_redis_error_failover(const char *err, size_t len);

/** 1 when r (a reply, maybe NULL) is an error for which the above is 1. */
int mdm_redis_reply_failover(const struct redisReply *r);

/**
 * The reply of SENTINEL get-master-addr-by-name: ["IP", "PORT"]. 0 with *a
 * filled; -1 when the sentinel does not know the master (nil), or the reply
 * is anything else.
 */
int mdm_redis_sentinel_addr(const struct redisReply *r, mdm_redis_addr_t *a);

/** 1 when a ROLE reply says "master"; 0 otherwise (replica, error...). */
int mdm_redis_role_is_master(const struct redisReply *r);

typedef struct {
    int nnodes;
    mdm_redis_addr_t node[MDM_REDIS_MAX_NODES];
    unsigned char owner[MDM_REDIS_SLOTS]; /* index into node; 255: unknown */
} mdm_slotmap_t;

/** An empty map: no node, every slot unknown. */
void mdm_slotmap_init(mdm_slotmap_t *m);

/**
 * Load the masters of a CLUSTER SLOTS reply into m (replaced whole). A
 * node given with an empty or "?" IP keeps host "" (the glue substitutes
 * the address it asked). 0 ok; -1 when the reply is not a slot list, or
 * names more than MDM_REDIS_MAX_NODES masters (m is then empty).
 */
int mdm_slotmap_load(mdm_slotmap_t *m, const struct redisReply *r);

/** The index of node a in m, adding it; -1 when m is full. */
int mdm_slotmap_node(mdm_slotmap_t *m, const mdm_redis_addr_t *a);

/** After MOVED: slot belongs to a from now on. Its index, or -1 (full). */
int mdm_slotmap_set(mdm_slotmap_t *m, unsigned slot, const mdm_redis_addr_t *a);

/** The node index for a slot, or -1 when unknown. */
int mdm_slotmap_owner(const mdm_slotmap_t *m, unsigned slot);

/**
 * Read a password file: its first line, a trailing "\n" (and "\r")
 * stripped, into buf (NUL-terminated). *loose_mode is set to 1 when the
 * file is readable by group or others (the caller warns), else 0. 0 ok;
 * -1 with a message in err (missing, unreadable, empty, too long for
 * buflen).
 */
int mdm_redis_read_password_file(const char *path, char *buf, size_t buflen,
                                 int *loose_mode, char *err, size_t errlen);

/**
 * The AUTH command for user (may be NULL: "AUTH pass") and pass into
 * argv/argvlen (3 slots). Its argc.
 */
int mdm_redis_auth_argv(const char *user, const char *pass, const char *argv[3],
                        size_t argvlen[3]);

#endif
