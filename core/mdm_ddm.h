/*
 * Declarative device management (internal to libmdm).
 *
 *   mdm_ddm_json.c   pure JSON work: declaration validation, the
 *                    DeclarationsToken, status reports flattened into
 *                    status items and rebuilt (no Redis, no transaction)
 *   mdm_ddm.c        the device side: the DeclarativeManagement check-in's
 *                    endpoints, planned and answered for mdm_device.c
 *   mdm_ddm_admin.c  the admin type: declarations, sets, assignments,
 *                    recomputing enrollments, status reports
 *
 * Keys: core/lua/KEYS.md "Declarative management".
 */
#ifndef MDM_DDM_H
#define MDM_DDM_H

#include "mdm_tx.h"

#include <jansson.h>

/* ---- pure JSON work (mdm_ddm_json.c) ---- */

/** "activation", "asset", "configuration", "management" for a declaration
 * Type (com.apple.<category>.*), else NULL. */
const char *mdm_ddm_category(const char *type);
/** 1 when s names a category (the URL's <type>). */
int mdm_ddm_category_valid(const char *s, size_t len);
/** Identifiers and set names: 1-255 printable ASCII characters without
 * spaces, braces, '/' or ','. */
int mdm_ddm_name_valid(const char *s, size_t len);

/**
 * A declaration as the admin gives it: a JSON object with Type (string,
 * com.apple.{activation,asset,configuration,management}.*), Identifier
 * (a valid name), ServerToken (non-empty string) and Payload (object).
 * Returns the parsed object (new reference) or NULL with *why.
 */
json_t *mdm_ddm_decl_parse(const unsigned char *body, size_t len,
                           const char **why);

/** One declaration of an enrollment's effective set. */
typedef struct {
    const char *id;
    const char *category;
    const char *token; /* ServerToken */
} mdm_ddm_item_t;

/** Sort items by identifier and hash them into the DeclarationsToken
 * (64 hex digits + NUL): it changes exactly when an identifier, category
 * or ServerToken is added, removed or changed. -1 on failure. */
int mdm_ddm_token(mdm_ddm_item_t *items, size_t n, char out[65]);
/** The token of no declarations at all. */
const char *mdm_ddm_empty_token(void);
/** "YYYY-MM-DDThh:mm:ssZ" (UTC) into out[21]. */
void mdm_ddm_timestamp(time_t t, char out[21]);

/** A status report flattened: one field per status item leaf. */
typedef struct {
    char **names;  /* "device.operating-system.version" */
    char **values; /* JSON of the value */
    size_t n, cap;
    char *errors;   /* JSON array of the report's Errors ("[]" if none) */
    json_t *report; /* the parsed report */
    const unsigned char *raw; /* the report as sent (borrowed) */
    size_t raw_len;
} mdm_ddm_status_t;

/**
 * Parse a status report (the Data of Endpoint "status"): a JSON object;
 * StatusItems, when present, an object whose nested objects are flattened
 * into dotted names (a name component may not contain '.'); Errors, when
 * present, an array. 0, or -1 with *why (out cleared).
 */
int mdm_ddm_status_parse(const unsigned char *data, size_t len,
                         mdm_ddm_status_t *out, const char **why);
void mdm_ddm_status_clear(mdm_ddm_status_t *s);
/** Nest flattened items (names[i] -> JSON values[i]) back into an object;
 * unparsable values are kept as strings. */
json_t *mdm_ddm_status_nest(const char *const *names, const size_t *nlens,
                            const char *const *values, const size_t *vlens,
                            size_t n);

/* ---- the device side (mdm_ddm.c) ---- */

typedef enum {
    MDM_DDM_NONE = 0,
    MDM_DDM_TOKENS,
    MDM_DDM_ITEMS,
    MDM_DDM_DECL,
    MDM_DDM_STATUS
} mdm_ddm_ep_t;

typedef struct {
    mdm_ddm_ep_t ep;
    char category[16];
    const char *identifier; /* into the message's Endpoint */
    mdm_ddm_status_t status;
    mdm_buf_t decl; /* the declaration's JSON, read with the script */
    int have_decl;
    const char *decl_token; /* ServerToken the enrollment has */
} mdm_ddm_dev_t;

/** Classify Endpoint; -1 when it is none we serve. */
int mdm_ddm_endpoint(const char *endpoint, mdm_ddm_dev_t *d);
/** After script_head(MDM_LUA_DDM): the extra keys are already pushed;
 * this pushes the endpoint's arguments. */
void mdm_ddm_plan_args(mdm_tx_t *tx, mdm_ddm_dev_t *d);
/** The keys of the DDM device script after the standard six. */
void mdm_ddm_push_keys(mdm_tx_t *tx, const mdm_keys_t *k);
/** For MDM_DDM_DECL: the catalog read pipelined after the script. */
void mdm_ddm_plan_decl_read(mdm_tx_t *tx, const mdm_ddm_dev_t *d);
/** Keep the catalog read's reply (before a NOSCRIPT replan). */
int mdm_ddm_keep_decl(mdm_ddm_dev_t *d, const struct redisReply *rep);
/** The event fields of a status report (after "kind"). */
void mdm_ddm_plan_event(mdm_tx_t *tx, const mdm_ddm_dev_t *d);
/** Answer the device from the script's {OK, ...} reply; 1 when the
 * declaration is not the enrollment's (the caller refuses with 404). */
mdm_step_t mdm_ddm_respond(mdm_tx_t *tx, mdm_ddm_dev_t *d,
                           const struct redisReply *rep, int *not_found);
void mdm_ddm_dev_clear(mdm_ddm_dev_t *d);

/* ---- the admin type (mdm_ddm_admin.c), routed by mdm_req.c ---- */

typedef enum {
    MDM_DDM_PUT_DECL = 1, /* body: the declaration */
    MDM_DDM_GET_DECL,     /* name */
    MDM_DDM_DEL_DECL,     /* name */
    MDM_DDM_LIST_DECLS,
    MDM_DDM_PUT_SET,    /* name, body {"declarations": [...]} */
    MDM_DDM_ADD_MEMBER, /* name (set), member (declaration) */
    MDM_DDM_DEL_MEMBER, /* name (set), member (declaration) */
    MDM_DDM_GET_SET,    /* name */
    MDM_DDM_DEL_SET,    /* name */
    MDM_DDM_LIST_SETS,
    MDM_DDM_ASSIGN,     /* ids, body {"sets": [...], "declarations": [...]} */
    MDM_DDM_UNASSIGN,   /* same */
    MDM_DDM_SHOW,       /* ids (one): assignments, effective set, token */
    MDM_DDM_STATUS_GET, /* ids (one): the stored status report */
    MDM_DDM_SYNC        /* ids: recompute, queue the command if changed */
} mdm_ddm_op_t;

typedef struct {
    mdm_ddm_op_t op;
    const char *name;          /* declaration or set */
    const char *member;        /* declaration of a set */
    const char *ids;           /* enrollment ids, comma-separated */
    const unsigned char *body; /* borrowed */
    size_t body_len;
    int nopush;
} mdm_ddm_admin_args_t;

/** A DDM admin transaction; args copied but the body (borrowed). */
mdm_req_t *mdm_ddm_admin_new(const mdm_conf_t *c,
                             const mdm_ddm_admin_args_t *a);

#endif
