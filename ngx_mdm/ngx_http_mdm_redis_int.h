/*
 * ngx_mdm: private to ngx_http_mdm_redis.c (connections, plans) and
 * ngx_http_mdm_redis_topo.c (Sentinel discovery, Cluster slot map).
 */
#ifndef NGX_HTTP_MDM_REDIS_INT_H
#define NGX_HTTP_MDM_REDIS_INT_H

#include "ngx_http_mdm.h"

#include <async.h>

#define NGX_HTTP_MDM_BACKOFF_MIN 100
#define NGX_HTTP_MDM_BACKOFF_MAX 5000

typedef struct ngx_http_mdm_node_s ngx_http_mdm_node_t;

typedef enum {
    NGX_HTTP_MDM_NODE_DATA = 0, /* plans go here */
    NGX_HTTP_MDM_NODE_SENTINEL  /* asked for the master's address */
} ngx_http_mdm_node_kind_e;

struct ngx_http_mdm_node_s {
    redisAsyncContext *ac;
    ngx_event_t timer; /* connect (sentinel: until it answers) */
    ngx_msec_t retry_at;
    ngx_msec_t backoff;
    ngx_msec_t last_reply;
    mdm_redis_addr_t addr;
    char name[300]; /* the address, for messages */
    ngx_uint_t kind;
    unsigned connected : 1;
    unsigned want_write : 1;  /* hiredis has output to send */
    unsigned auth_logged : 1; /* a refused AUTH was logged */
    unsigned check_role : 1;  /* ROLE must say master */
    unsigned failover_logged : 1;
    unsigned wait_short : 1; /* WAIT fell short: skipped until wait_retry */
    ngx_msec_t wait_retry;
};

/* One plan command's callback state. */
typedef struct {
    ngx_http_mdm_batch_t *b;
    ngx_http_mdm_node_t *node; /* where it waits; NULL once answered */
    unsigned idx;
    unsigned redirects;
    unsigned wait : 1; /* a WAIT after the writes */
} ngx_http_mdm_ref_t;

struct ngx_http_mdm_batch_s {
    ngx_http_mdm_redis_done_pt done; /* NULL once nobody waits */
    void *data;
    size_t nreplies;    /* the replies the caller needs: cmds[0..n) */
    size_t missing;     /* of those (and WAITs), not arrived yet */
    size_t outstanding; /* callbacks hiredis still owes */
    size_t nref;
    ngx_http_mdm_ref_t *refs;
    mdm_cmd_t *cmds; /* Cluster: copies, for redirects */
    unsigned failed : 1;
    redisReply *replies[1];
};

/*
 * What the connections and plans need from the topology
 * (ngx_http_mdm_redis_topo.c), set there at worker start. Pointers: that
 * file calls this one, never the reverse (t/check-call-cycles.sh).
 */
typedef struct {
    /* a plan may be sent now (Sentinel: master known; Cluster: slot map);
     * otherwise discovery is started and NGX_DECLINED returned */
    ngx_int_t (*ready)(void);
    /* Cluster: the node serving a command's slot (NULL: none known) */
    ngx_http_mdm_node_t *(*route)(const mdm_cmd_t *c);
    /* Cluster: MOVED/ASK; NGX_OK: sent again, NGX_DECLINED: no redirect */
    ngx_int_t (*redirect)(ngx_http_mdm_ref_t *ref, const redisReply *r);
    /* the node failed: Sentinel asks again, Cluster reloads the map */
    void (*lost_master)(ngx_http_mdm_node_t *node);
    /* Cluster: the slot map is stale, reload it soon */
    void (*stale)(void);
} ngx_http_mdm_topo_ops_t;

typedef struct {
    ngx_log_t *log;
    ngx_http_mdm_main_conf_t *mcf;
    ngx_connection_t dummy; /* ev->data of timers and posted events */
    ngx_event_t kick;       /* Sentinel/Cluster discovery, posted */
    unsigned exiting : 1;
    ngx_http_mdm_topo_ops_t topo;

    ngx_http_mdm_node_t main; /* mdm_redis, or the Sentinel master */

    /* Sentinel */
    ngx_http_mdm_node_t sentinel; /* the one being asked */
    ngx_uint_t sentinel_next;     /* index of the next one to ask */
    unsigned master_known : 1;
    unsigned resolving : 1;
    unsigned asking : 1; /* a sentinel's answer is awaited */

    /* Cluster */
    ngx_http_mdm_node_t *nodes; /* MDM_REDIS_MAX_NODES */
    ngx_uint_t nnodes;
    mdm_slotmap_t *map;
    mdm_slotmap_t *map_new; /* CLUSTER SLOTS is loaded here, then swapped */
    ngx_http_mdm_node_t *owner[MDM_REDIS_MAX_NODES]; /* map index -> node */
    ngx_uint_t map_next;  /* the next node to ask for CLUSTER SLOTS */
    ngx_uint_t map_tries; /* asked in this round */
    ngx_msec_t map_retry_at;
    ngx_msec_t map_backoff;
    unsigned map_ok : 1;
    unsigned map_loading : 1;
    unsigned map_stale : 1;
    unsigned map_logged : 1;
} ngx_http_mdm_redis_t;

/* one worker's Redis state */
extern ngx_http_mdm_redis_t ngx_http_mdm_rds;

/* ngx_http_mdm_redis.c */
/** A connection failed: back off (doubling, up to the maximum). */
void ngx_http_mdm_node_failed(ngx_http_mdm_node_t *node);
void ngx_http_mdm_node_set(ngx_http_mdm_node_t *node, const mdm_redis_addr_t *a,
                           ngx_uint_t kind);
/** Close the connection; queued commands get their callbacks (NULL). */
void ngx_http_mdm_node_drop(ngx_http_mdm_node_t *node);
/** The node's context (connecting, commands queue), or NULL: backing off. */
redisAsyncContext *ngx_http_mdm_node_get(ngx_http_mdm_node_t *node);
/** Send command ref->idx of the batch to node (ASK: after ASKING). */
ngx_int_t ngx_http_mdm_send_one(ngx_http_mdm_batch_t *b,
                                ngx_http_mdm_ref_t *ref, const mdm_cmd_t *c,
                                ngx_http_mdm_node_t *node, int ask);

#endif
