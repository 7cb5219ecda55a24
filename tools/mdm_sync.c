/* The blocking plan runner (mdm_sync.h). */
#include "mdm_sync.h"
#include "mdm_redislink.h"

#include <string.h>

#include <stdlib.h>

#include <hiredis.h>

#define MDM_SYNC_MAX_REPLIES 64

mdm_step_t
mdm_exec_sync(redisContext *c, mdm_req_t *tx)
{
    const mdm_plan_t *p;
    redisReply *stack[MDM_SYNC_MAX_REPLIES], **rep;
    void *x;
    size_t i, got;
    mdm_step_t step = MDM_STEP_REDIS;
    int broken;

    while (step == MDM_STEP_REDIS) {
        p = mdm_req_plan(tx);
        if (p == NULL) {
            step = mdm_req_feed(tx, NULL, 0); /* no plan: a storage failure */
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
        step = mdm_req_feed(tx, broken ? NULL : rep, broken ? 0 : got);
        for (i = 0; i < got; i++) {
            freeReplyObject(rep[i]);
        }
        if (rep != stack) {
            free(rep);
        }
    }
    return step;
}

mdm_step_t
mdm_redislink_exec(mdm_redislink_t *l, mdm_req_t *tx)
{
    const mdm_plan_t *p;
    redisReply *stack[MDM_SYNC_MAX_REPLIES], **rep;
    mdm_step_t step = MDM_STEP_REDIS;
    size_t i, n;
    int ok;

    while (step == MDM_STEP_REDIS) {
        p = mdm_req_plan(tx);
        if (p == NULL) {
            step = mdm_req_feed(tx, NULL, 0); /* no plan: a storage failure */
            continue;
        }
        rep = p->ncmds <= MDM_SYNC_MAX_REPLIES ? stack
                                               : calloc(p->ncmds, sizeof(*rep));
        if (rep == NULL) {
            step = mdm_req_feed(tx, NULL, 0);
            continue;
        }
        n = p->ncmds; /* p is gone once fed */
        memset(rep, 0, n * sizeof(*rep));
        ok = mdm_redislink_run(l, p, rep) == 0;
        step = mdm_req_feed(tx, ok ? rep : NULL, ok ? p->nreplies : 0);
        for (i = 0; i < n; i++) {
            if (rep[i]) {
                freeReplyObject(rep[i]);
            }
        }
        if (rep != stack) {
            free(rep);
        }
    }
    return step;
}
