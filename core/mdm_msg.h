/*
 * mdm_msg: parse a device message (check-in or command report) from its
 * plist body and resolve its enrollment id.
 *
 * Ownership: mdm_msg_t owns the parsed plist tree and the malloc'd id
 * strings; every other pointer in it is borrowed from that tree and lives
 * until mdm_msg_clear().
 */
#ifndef MDM_MSG_H
#define MDM_MSG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MDM_MSG_NONE = 0,
    MDM_MSG_AUTHENTICATE,
    MDM_MSG_TOKEN_UPDATE,
    MDM_MSG_CHECK_OUT,
    MDM_MSG_USER_AUTHENTICATE,
    MDM_MSG_SET_BOOTSTRAP_TOKEN,
    MDM_MSG_GET_BOOTSTRAP_TOKEN,
    MDM_MSG_DECLARATIVE_MANAGEMENT,
    MDM_MSG_GET_TOKEN,
    MDM_MSG_RETURN_TO_SERVICE,
    MDM_MSG_REPORT /* a command report: see status */
} mdm_msg_type_t;

typedef enum {
    MDM_STATUS_NONE = 0,
    MDM_STATUS_IDLE,
    MDM_STATUS_ACKNOWLEDGED,
    MDM_STATUS_ERROR,
    MDM_STATUS_COMMAND_FORMAT_ERROR,
    MDM_STATUS_NOT_NOW
} mdm_status_t;

typedef enum {
    MDM_ENR_NONE = 0,
    MDM_ENR_DEVICE,
    MDM_ENR_USER,
    MDM_ENR_SHARED_IPAD,
    MDM_ENR_USER_ENROLLMENT_DEVICE,
    MDM_ENR_USER_ENROLLMENT
} mdm_enr_type_t;

/* What the endpoint expects. */
typedef enum {
    MDM_EXPECT_CHECKIN = 1, /* MessageType required */
    MDM_EXPECT_REPORT = 2,  /* Status required */
    MDM_EXPECT_ANY = 3      /* either; MessageType wins if both */
} mdm_expect_t;

typedef enum {
    MDM_MSG_OK = 0,
    MDM_MSG_ERR_NOMEM,
    MDM_MSG_ERR_PLIST,        /* not a plist, or not a dict at the top */
    MDM_MSG_ERR_TYPE,         /* a known key has the wrong plist type */
    MDM_MSG_ERR_MISSING,      /* a required key is absent */
    MDM_MSG_ERR_UNKNOWN_TYPE, /* MessageType not known to us */
    MDM_MSG_ERR_UNKNOWN_STATUS,
    MDM_MSG_ERR_ID /* no usable enrollment id, or an id with bad chars */
} mdm_msg_rc_t;

/* Borrowed bytes (plist <data>); ptr is NULL when the key is absent. */
typedef struct {
    const unsigned char *ptr;
    size_t len;
} mdm_bytes_t;

typedef struct {
    void *root; /* plist_t, owned */

    mdm_msg_type_t type;
    const char *message_type; /* raw MessageType, NULL for reports */
    mdm_status_t status;
    const char *status_str; /* raw Status, NULL for check-ins */

    /* identifier keys */
    const char *udid;
    const char *user_id;
    const char *user_short_name;
    const char *user_long_name;
    const char *enrollment_id;
    const char *enrollment_user_id;

    /* check-in keys */
    const char *topic;
    const char *push_magic;
    mdm_bytes_t token;
    mdm_bytes_t unlock_token;
    mdm_bytes_t bootstrap_token; /* SetBootstrapToken; absent = delete */
    int awaiting_configuration;  /* -1 absent, 0, 1 */
    int not_on_console;          /* -1 absent, 0, 1 */
    const char *serial_number;
    const char *model;
    const char *model_name;
    const char *product_name;
    const char *device_name;
    const char *os_version;
    const char *build_version;
    const char *imei;
    const char *meid;
    mdm_bytes_t digest_response; /* UserAuthenticate second step */
    int has_digest_response;
    const char *endpoint; /* DeclarativeManagement */
    mdm_bytes_t ddm_data;
    const char *token_service_type; /* GetToken */

    /* report keys */
    const char *command_uuid;
    const char *request_type; /* echoed by some devices; informational */
    size_t error_chain_len;   /* items in ErrorChain */
    int64_t first_error_code; /* ErrorChain[0].ErrorCode, 0 if none */
    const char *first_error_domain;

    /* resolved enrollment (PROTOCOL.md section 2); malloc'd, owned */
    mdm_enr_type_t enr_type;
    char *id;        /* enrollment id */
    char *device_id; /* device-channel id: == id for device channels */
} mdm_msg_t;

/**
 * Parse body (XML or binary plist) into out (which is zeroed first).
 * On failure out is cleared and *why (if not NULL) points at a static
 * string naming the problem, e.g. "key Topic: expected string".
 */
mdm_msg_rc_t mdm_msg_parse(const unsigned char *body, size_t len,
                           mdm_expect_t expect, mdm_msg_t *out,
                           const char **why);

/** Free what out owns and zero it. Safe on a zeroed or cleared msg. */
void mdm_msg_clear(mdm_msg_t *m);

/** Static names: "Authenticate", "Idle", "Device", ... ("" for NONE). */
const char *mdm_msg_type_name(mdm_msg_type_t t);
const char *mdm_status_name(mdm_status_t s);
const char *mdm_enr_type_name(mdm_enr_type_t t);

/**
 * An enrollment id is usable as a Redis key part: 1..255 bytes, printable
 * ASCII, none of '{', '}', ' '. Returns 1 if valid. (The device part of an
 * id, UDID or EnrollmentID, must in addition contain no ':'.)
 */
int mdm_id_valid(const char *id, size_t len);

#endif
