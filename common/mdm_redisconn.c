/*
 * The two Redis connections of a sidecar daemon: connect, fail and back
 * off, the blocking read written without waiting, a field of a reply
 * (mdm_redisconn.h).
 */
#include "mdm_redisconn.h"
#include "mdm_daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ------------------------------------------------------------------ */
/* configuration                                                       */

int
mdm_redis_conf_init(mdm_redis_conf_t *rc)
{
    char err[64];

    memset(rc, 0, sizeof(*rc));
    rc->desc = strdup("127.0.0.1:6379");
    return rc->desc == NULL ||
                   mdm_redis_target_single(&rc->t, "redis", "127.0.0.1:6379",
                                           err, sizeof(err)) != 0
               ? -1
               : 0;
}

void
mdm_redis_conf_free(mdm_redis_conf_t *rc)
{
    free(rc->desc);
    memset(rc, 0, sizeof(*rc));
}

static int
set_desc(mdm_redis_conf_t *rc, char **tok, int ntok)
{
    size_t len = 0;
    char *d;
    int i;

    for (i = 0; i < ntok; i++) {
        len += strlen(tok[i]) + 1;
    }
    d = malloc(len + 1);
    if (d == NULL) {
        return -1;
    }
    d[0] = '\0';
    for (i = 0; i < ntok; i++) {
        strcat(d, tok[i]);
        if (i + 1 < ntok) {
            strcat(d, " ");
        }
    }
    free(rc->desc);
    rc->desc = d;
    return 0;
}

int
mdm_redis_conf_opt(mdm_redis_conf_t *rc, char **tok, int ntok, char *err,
                   size_t errlen)
{
    const char *k = tok[0];
    char addr[600];
    int r, loose = 0, topo;

    topo = strcmp(k, "redis") == 0 || strcmp(k, "redis_sentinel") == 0 ||
           strcmp(k, "redis_cluster") == 0;
    if (topo) {
        if (rc->kind && strcmp(rc->kind, k) != 0) {
            snprintf(err, errlen, "%s: cannot be used with %s", k, rc->kind);
            return -1;
        }
        if (rc->kind) {
            snprintf(err, errlen, "%s: given twice", k);
            return -1;
        }
    } else if (strcmp(k, "redis_user") != 0 &&
               strcmp(k, "redis_password_file") != 0 &&
               strcmp(k, "redis_sentinel_password_file") != 0) {
        return 1;
    }
    if (strcmp(k, "redis") == 0 || !topo) {
        if (ntok != 2) {
            snprintf(err, errlen, "%s: expected one value", k);
            return -1;
        }
    }
    if (strcmp(k, "redis") == 0) {
        /* a bare socket path, as before */
        snprintf(addr, sizeof(addr), "%s%s", tok[1][0] == '/' ? "unix:" : "",
                 tok[1]);
        r = mdm_redis_target_single(&rc->t, k, addr, err, errlen);
    } else if (strcmp(k, "redis_sentinel") == 0) {
        r = ntok < 3 ? (snprintf(err, errlen,
                                 "%s: expected MASTER ADDR [ADDR...]", k),
                        -1)
                     : mdm_redis_target_sentinel(&rc->t, k, tok[1],
                                                 (const char *const *) tok + 2,
                                                 ntok - 2, err, errlen);
    } else if (strcmp(k, "redis_cluster") == 0 && !rc->cluster_ok) {
        snprintf(err, errlen,
                 "%s: not supported by this daemon yet (it does not route "
                 "by slot); use redis or redis_sentinel",
                 k);
        r = -1;
    } else if (strcmp(k, "redis_cluster") == 0) {
        r = mdm_redis_target_cluster(&rc->t, k, (const char *const *) tok + 1,
                                     ntok - 1, err, errlen);
    } else if (strcmp(k, "redis_user") == 0) {
        if (strlen(tok[1]) >= sizeof(rc->t.user)) {
            snprintf(err, errlen, "%s: too long", k);
            return -1;
        }
        snprintf(rc->t.user, sizeof(rc->t.user), "%s", tok[1]);
        return 0;
    } else {
        int sentinel = strcmp(k, "redis_sentinel_password_file") == 0;

        r = mdm_redis_target_password(
            sentinel ? rc->t.sentinel_password : rc->t.password,
            sentinel ? sizeof(rc->t.sentinel_password) : sizeof(rc->t.password),
            k, tok[1], &loose, err, errlen);
        if (r == 0 && loose) {
            mdm_daemon_log(MDM_LOG_WARN, MDM_ID_REDIS_PWFILE_MODE,
                           "%s: \"%s\" is readable by group or others", k,
                           tok[1]);
        }
        return r;
    }
    if (r != 0) {
        return -1;
    }
    rc->kind = topo ? (strcmp(k, "redis") == 0            ? "redis"
                       : strcmp(k, "redis_sentinel") == 0 ? "redis_sentinel"
                                                          : "redis_cluster")
                    : rc->kind;
    if (set_desc(rc, tok + 1, ntok - 1) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

/* the link's messages start with their log id */
static void
log_link(void *data, int level, const char *msg)
{
    static const int levels[] = {MDM_LOG_ERR, MDM_LOG_WARN, MDM_LOG_NOTICE,
                                 MDM_LOG_INFO};
    const mdm_redisconn_t *c = data;
    const char *sp = strchr(msg, ' ');
    char id[16];

    if (sp && sp - msg < (long) sizeof(id)) {
        snprintf(id, sizeof(id), "%.*s", (int) (sp - msg), msg);
        /* the link's "cannot connect" is the daemon's own id */
        mdm_daemon_log(levels[level < 0 || level > 3 ? 0 : level],
                       strcmp(id, "MDM04003") == 0 ? c->id_connect : id, "%s",
                       sp + 1);
    } else {
        mdm_daemon_log(MDM_LOG_ERR, c->id_fail, "%s", msg);
    }
}

int
mdm_redis_connect(const mdm_redisconn_t *c)
{
    const char *key = c->key ? *c->key : NULL;

    *c->cmd = mdm_redis_open(c->target, key, 2000, log_link, (void *) c);
    *c->blk = *c->cmd
                  ? mdm_redis_open(c->target, key, 10000, log_link, (void *) c)
                  : NULL;
    if (*c->cmd == NULL || *c->blk == NULL) {
        mdm_redis_fail(c, "connect");
        return -1;
    }
    return 0;
}

mdm_redislink_t *
mdm_redisconn_link(const mdm_redisconn_t *c)
{
    return mdm_redislink_new(c->target, log_link, (void *) c);
}

redisReply *
mdm_redis_checked(redisContext *ctx, redisReply *x)
{
    if (!mdm_redis_reply_failover(x)) {
        return x;
    }
    mdm_daemon_log(MDM_LOG_WARN, MDM_ID_REDIS_FAILOVER,
                   "Redis answered \"%.*s\": reconnecting to the master",
                   (int) (x->len > 80 ? 80 : x->len), x->str);
    ctx->err = REDIS_ERR_OTHER;
    snprintf(ctx->errstr, sizeof(ctx->errstr), "%.*s",
             (int) (x->len > 100 ? 100 : x->len), x->str);
    freeReplyObject(x);
    return NULL;
}

void
mdm_redis_fail(const mdm_redisconn_t *c, const char *what)
{
    const char *why = "closed";

    if (*c->cmd && (*c->cmd)->err) {
        why = (*c->cmd)->errstr;
    } else if (*c->blk && (*c->blk)->err) {
        why = (*c->blk)->errstr;
    }
    mdm_daemon_log(MDM_LOG_ERR, c->id_fail,
                   "Redis failed (%s: %s); reconnecting in %lld ms", what, why,
                   (long long) *c->backoff_ms);
    if (*c->cmd) {
        redisFree(*c->cmd);
    }
    if (*c->blk) {
        redisFree(*c->blk);
    }
    *c->cmd = *c->blk = NULL;
    *c->pending = 0;
    *c->retry_at_ms = mdm_now_ms() + *c->backoff_ms;
    *c->backoff_ms = *c->backoff_ms * 2 > 5000 ? 5000 : *c->backoff_ms * 2;
}

int
mdm_redis_send(const mdm_redisconn_t *c, int argc, const char **argv,
               const char *what)
{
    int done = 0;

    if (redisAppendCommandArgv(*c->blk, argc, argv, NULL) != REDIS_OK) {
        return -1;
    }
    while (!done) {
        if (redisBufferWrite(*c->blk, &done) != REDIS_OK) {
            mdm_redis_fail(c, what);
            return -2;
        }
    }
    *c->pending = 1;
    return 0;
}

int
mdm_redis_reply(const mdm_redisconn_t *c, redisReply **out, const char *what)
{
    void *reply = NULL;

    *out = NULL;
    if (redisBufferRead(*c->blk) != REDIS_OK ||
        redisGetReplyFromReader(*c->blk, &reply) != REDIS_OK) {
        mdm_redis_fail(c, what);
        return -1;
    }
    if (reply == NULL) {
        return 0; /* partial reply: more to come */
    }
    *c->pending = 0;
    *out = reply;
    return 1;
}

const redisReply *
mdm_redis_kv(const redisReply *a, const char *name)
{
    size_t i;

    if (a == NULL || a->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }
    for (i = 0; i + 1 < a->elements; i += 2) {
        if (a->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(a->element[i]->str, name) == 0) {
            return a->element[i + 1];
        }
    }
    return NULL;
}
