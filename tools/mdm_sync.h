/*
 * The blocking plan runner: runs a libmdm transaction to completion on a
 * blocking hiredis context. It lives beside the programs that block
 * (mdmctl, the Apache module, tests, benchmarks), not in libmdm, whose
 * core never does I/O; nginx runs plans on its event loop instead.
 */
#ifndef MDM_SYNC_H
#define MDM_SYNC_H

#include "mdm.h"
#include "mdm_scep.h"

struct redisContext;

/**
 * Run a started transaction (mdm_req_start() returned REDIS, or any later
 * step) to completion on c. Returns the final step (always DONE). A
 * broken connection yields 503; the caller should then discard the
 * context (c->err is set).
 */
mdm_step_t mdm_exec_sync(struct redisContext *c, mdm_req_t *r);

/** The same for a SCEP transaction of its own (mdm_scep.h). */
static inline mdm_step_t
mdm_scep_exec_sync(struct redisContext *c, mdm_scep_req_t *r)
{
    return mdm_exec_sync(c, mdm_scep_req_tx(r));
}

struct mdm_redislink_s;

/**
 * The same over a link (mdm_redislink.h): single server, Sentinel or
 * Cluster, each plan routed. A failure feeds NULL (503 + Retry-After).
 */
mdm_step_t mdm_redislink_exec(struct mdm_redislink_s *l, mdm_req_t *r);

#endif
