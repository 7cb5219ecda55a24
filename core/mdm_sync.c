/* Blocking executor: runs a transaction's plans on a hiredis context. */
#include "mdm_internal.h"

#include <stdlib.h>

#include <hiredis.h>

#define MDM_SYNC_MAX_REPLIES 64

mdm_step_t
mdm_sync_run(redisContext *c, void *tx, mdm_sync_plan_fn plan,
             mdm_sync_feed_fn feed)
{
    const mdm_plan_t *p;
    redisReply *stack[MDM_SYNC_MAX_REPLIES], **rep;
    void *x;
    size_t i, got;
    mdm_step_t step = MDM_STEP_REDIS;
    int broken;

    while (step == MDM_STEP_REDIS) {
        p = plan(tx);
        if (p == NULL) {
            step = feed(tx, NULL, 0); /* no plan: a storage failure */
            continue;
        }
        rep = p->nreplies <= MDM_SYNC_MAX_REPLIES
                  ? stack
                  : calloc(p->nreplies, sizeof(*rep));
        broken = c->err != 0 || rep == NULL;
        for (i = 0; !broken && i < p->ncmds; i++) {
            if (redisAppendCommandArgv(c, p->cmds[i].argc, p->cmds[i].argv,
                                       p->cmds[i].argvlen) != REDIS_OK) {
                broken = 1;
            }
        }
        got = 0;
        for (i = 0; !broken && i < p->ncmds; i++) {
            if (redisGetReply(c, &x) != REDIS_OK) {
                broken = 1;
                break;
            }
            if (i < p->nreplies) {
                rep[got++] = x;
            } else {
                freeReplyObject(x);
            }
        }
        step = feed(tx, broken ? NULL : rep, broken ? 0 : got);
        for (i = 0; i < got; i++) {
            freeReplyObject(rep[i]);
        }
        if (rep != stack) {
            free(rep);
        }
    }
    return step;
}

static const mdm_plan_t *
req_plan(void *tx)
{
    return mdm_req_plan(tx);
}

static mdm_step_t
req_feed(void *tx, redisReply *const *rep, size_t n)
{
    return mdm_req_feed(tx, rep, n);
}

mdm_step_t
mdm_exec_sync(redisContext *c, mdm_req_t *r)
{
    return mdm_sync_run(c, r, req_plan, req_feed);
}
