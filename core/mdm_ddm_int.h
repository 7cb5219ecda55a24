/*
 * The DDM admin type's internals, shared by its files (internal to
 * libmdm): mdm_ddm_admin.c (the type: operations, their writes),
 * mdm_ddm_read.c (answers of the read-only operations), mdm_ddm_sync.c
 * (plan helpers and the recompute of affected enrollments).
 */
#ifndef MDM_DDM_INT_H
#define MDM_DDM_INT_H

#include "mdm_ddm.h"

struct redisReply;

#define MAX_IDS     1024  /* enrollments named in one request */
#define MAX_NAMES   10000 /* sets or declarations in one body */
#define BATCH       256   /* enrollments recomputed per round of plans */
#define MAX_CHANGED 1000  /* enrollment ids listed in an answer */

enum {
    S_NONE = 0,
    S_READ,    /* the operation's reads */
    S_WRITE,   /* its writes (and reads of the enrollments it affects) */
    S_SETENR,  /* enrollments of the sets a declaration belongs to */
    RC_ASSIGN, /* recompute: the batch's assigned sets and declarations */
    RC_SETS,   /* the members of those sets */
    RC_DECLS,  /* the category and ServerToken of every declaration */
    RC_SYNC,   /* ddm_sync.lua on each enrollment */
    RC_PUSH    /* push requests for the changed ones */
};

enum { E_PENDING = 0, E_CHANGED, E_SAME, E_UNKNOWN, E_NOSCRIPT };

typedef struct {
    mdm_tx_t base;
    mdm_ddm_admin_args_t a;
    int state;
    char *name, *member;
    char **ids;
    size_t nids;
    json_t *decl;     /* PUT_DECL: the declaration */
    json_t *sets;     /* names from the body or read */
    json_t *decls;    /* names from the body */
    json_t *next;     /* PUT_SET...: the new membership */
    json_t *affected; /* enrollment id -> null */
    json_t *result;   /* the answer, once the recompute is done */
    /* recompute */
    const char **elist;
    size_t nenr, pos, end;
    json_t *bassign; /* per batch enrollment: [sets, declarations] */
    json_t *bnames;  /* names read in the current plan */
    json_t *setmem;  /* set -> members */
    json_t *dinfo;   /* declaration -> [category, token] */
    int *estate;
    mdm_buf_t *cmds;
    char (*uuids)[37];
    size_t changed, same, unknown;
    json_t *changed_ids;
} ddm_admin_t;

#define ARG(r, ...) mdm_planb_fmt(&(r)->base.pb, __VA_ARGS__)

/* ---- plan helpers (mdm_ddm_sync.c) ---- */

/** A new command of the plan. */
void ddm_cmd(ddm_admin_t *r, const char *name);
/** A catalog key: <P>ddm:<kind>:<name>. */
void ddm_ckey(ddm_admin_t *r, const char *kind, const char *name);
/** An enrollment's key: <its base>:<what>. */
int ddm_ekey(ddm_admin_t *r, const char *id, const char *what);
/** Every string of a as an argument. */
void ddm_args(ddm_admin_t *r, json_t *a);
/** "name <P>ddm:kind:key a..." unless a is empty. */
void ddm_cmd_members(ddm_admin_t *r, const char *name, const char *kind,
                     const char *key, json_t *a);
/** The plan built, every reply wanted, in state. */
mdm_step_t ddm_plan(ddm_admin_t *r, int state);
/** A storage failure in one of the first want replies: answered, 1. */
int ddm_failed(ddm_admin_t *r, struct redisReply *const *rep, size_t n,
               size_t want);
/** The strings of an array reply, sorted (a new array). */
json_t *ddm_strings(const struct redisReply *x);
/** Each string of an array reply as a key of the object set. */
void ddm_add_all(json_t *set, const struct redisReply *x);
int ddm_str_eq(const struct redisReply *x, const char *s);
/** Answer {"error", "id"} with a formatted message. */
mdm_step_t ddm_bad(ddm_admin_t *r, int status, const char *id, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
void ddm_batch_free(ddm_admin_t *r);

/** Recompute every enrollment of r->affected, then answer r->result. */
mdm_step_t ddm_recompute(ddm_admin_t *r);
/** The replies of a recompute step (state >= RC_ASSIGN). */
mdm_step_t ddm_recompute_feed(ddm_admin_t *r, struct redisReply *const *rep,
                              size_t n);

/* ---- read-only answers (mdm_ddm_read.c) ---- */

/** GET_DECL, LIST_*, GET_SET, SHOW, STATUS_GET from their replies. */
mdm_step_t ddm_read_answer(ddm_admin_t *r, struct redisReply *const *rep);

#endif
