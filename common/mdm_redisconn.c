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

static redisContext *
connect_to(const mdm_redisconn_t *rc, const char *addr, long timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char host[256];
    const char *colon;
    redisContext *c;

    if (addr[0] == '/' || strncmp(addr, "unix:", 5) == 0) {
        c = redisConnectUnixWithTimeout(addr[0] == '/' ? addr : addr + 5, tv);
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (size_t) (colon - addr) >= sizeof(host)) {
            return NULL;
        }
        snprintf(host, sizeof(host), "%.*s", (int) (colon - addr), addr);
        c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    }
    if (c == NULL) {
        return NULL;
    }
    if (c->err) {
        mdm_daemon_log(MDM_LOG_ERR, rc->id_connect,
                       "cannot connect to Redis at %s: %s", addr, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

int
mdm_redis_connect(const mdm_redisconn_t *c, const char *addr)
{
    *c->cmd = connect_to(c, addr, 2000);
    *c->blk = *c->cmd ? connect_to(c, addr, 10000) : NULL;
    if (*c->cmd == NULL || *c->blk == NULL) {
        mdm_redis_fail(c, "connect");
        return -1;
    }
    return 0;
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
