/*
 * mdm_msg: device message parsing and enrollment id resolution.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plist/plist.h>

#include "mdm_msg.h"

/*
 * libplist 2.2 parses both formats recursively, and frees and copies trees
 * recursively, without any depth limit: a few hundred kilobytes of nested
 * <array> overflow the stack. Real messages nest 5 or 6 levels at most.
 */
#define MDM_MSG_MAX_DEPTH 64

/*
 * The binary parser also re-parses an object each time it is referenced,
 * so a small DAG of shared arrays expands exponentially.
 */
#define MDM_MSG_MAX_NODES (1u << 21)

#define MDM_SHARED_IPAD_USER_ID "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

typedef enum { K_STR, K_DATA, K_BOOL, K_DATA_OR_STR, K_ERROR_CHAIN } key_kind_t;

typedef struct {
    const char *name;
    key_kind_t kind;
    size_t off;
    const char *why_type;
} key_def_t;

#define KEY(name, kind, field, expected)                                       \
    {                                                                          \
        name, kind, offsetof(mdm_msg_t, field),                                \
            "key " name ": expected " expected                                 \
    }
#define KSTR(name, field)  KEY(name, K_STR, field, "string")
#define KDATA(name, field) KEY(name, K_DATA, field, "data")
#define KBOOL(name, field) KEY(name, K_BOOL, field, "bool")

static const key_def_t keys[] = {
    KSTR("MessageType", message_type),
    KSTR("Status", status_str),
    KSTR("UDID", udid),
    KSTR("UserID", user_id),
    KSTR("UserShortName", user_short_name),
    KSTR("UserLongName", user_long_name),
    KSTR("EnrollmentID", enrollment_id),
    KSTR("EnrollmentUserID", enrollment_user_id),
    KSTR("Topic", topic),
    KSTR("PushMagic", push_magic),
    KSTR("SerialNumber", serial_number),
    KSTR("Model", model),
    KSTR("ModelName", model_name),
    KSTR("ProductName", product_name),
    KSTR("DeviceName", device_name),
    KSTR("OSVersion", os_version),
    KSTR("BuildVersion", build_version),
    KSTR("IMEI", imei),
    KSTR("MEID", meid),
    KSTR("Endpoint", endpoint),
    KSTR("TokenServiceType", token_service_type),
    KSTR("CommandUUID", command_uuid),
    KSTR("RequestType", request_type),
    KDATA("Token", token),
    KDATA("UnlockToken", unlock_token),
    KDATA("BootstrapToken", bootstrap_token),
    KDATA("Data", ddm_data),
    KEY("DigestResponse", K_DATA_OR_STR, digest_response, "data or string"),
    KBOOL("AwaitingConfiguration", awaiting_configuration),
    KBOOL("NotOnConsole", not_on_console),
    KEY("ErrorChain", K_ERROR_CHAIN, error_chain_len, "array of dicts"),
};

static const struct {
    const char *name;
    mdm_msg_type_t type;
} msg_types[] = {
    {"Authenticate", MDM_MSG_AUTHENTICATE},
    {"TokenUpdate", MDM_MSG_TOKEN_UPDATE},
    {"CheckOut", MDM_MSG_CHECK_OUT},
    {"UserAuthenticate", MDM_MSG_USER_AUTHENTICATE},
    {"SetBootstrapToken", MDM_MSG_SET_BOOTSTRAP_TOKEN},
    {"GetBootstrapToken", MDM_MSG_GET_BOOTSTRAP_TOKEN},
    {"DeclarativeManagement", MDM_MSG_DECLARATIVE_MANAGEMENT},
    {"GetToken", MDM_MSG_GET_TOKEN},
    {"ReturnToService", MDM_MSG_RETURN_TO_SERVICE},
};

static const struct {
    const char *name;
    mdm_status_t status;
} statuses[] = {
    {"Idle", MDM_STATUS_IDLE},
    {"Acknowledged", MDM_STATUS_ACKNOWLEDGED},
    {"Error", MDM_STATUS_ERROR},
    {"CommandFormatError", MDM_STATUS_COMMAND_FORMAT_ERROR},
    {"NotNow", MDM_STATUS_NOT_NOW},
};

/* A zero-length <data> still has to read as present. */
static const unsigned char empty_bytes[1];

/* ------------------------------------------------------------------ */
/* Nesting pre-scan                                                    */

static int
ci_prefix(const unsigned char *p, const unsigned char *end, const char *s)
{
    size_t n = strlen(s);

    return (size_t) (end - p) >= n && strncasecmp((const char *) p, s, n) == 0;
}

static const unsigned char *
find_seq(const unsigned char *p, const unsigned char *end, const char *s)
{
    size_t n = strlen(s);

    for (; (size_t) (end - p) >= n; p++) {
        if (memcmp(p, s, n) == 0) {
            return p + n;
        }
    }
    return NULL;
}

static int
is_container_name(const unsigned char *p, const unsigned char *end)
{
    return ci_prefix(p, end, "array") || ci_prefix(p, end, "dict") ||
           ci_prefix(p, end, "plist");
}

/*
 * Bound the nesting libplist will see. The estimate must never be lower
 * than libplist's view, so every doubt counts as an opening: openings are
 * counted even inside comments and other markup we skip, only the exact
 * empty forms <array/> and <dict/> are not openings, and closings are
 * ignored inside skipped markup.
 */
static int
xml_depth_ok(const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len, *q, *stop;
    size_t depth = 0;

    for (; p < end; p++) {
        if (*p != '<') {
            continue;
        }
        q = p + 1;
        if (q == end) {
            break;
        }
        if (ci_prefix(q, end, "!--") || ci_prefix(q, end, "![CDATA[") ||
            ci_prefix(q, end, "!") || ci_prefix(q, end, "?")) {
            if (ci_prefix(q, end, "!--")) {
                stop = find_seq(q + 3, end, "-->");
            } else if (ci_prefix(q, end, "![CDATA[")) {
                stop = find_seq(q + 8, end, "]]>");
            } else if (*q == '?') {
                stop = find_seq(q + 1, end, "?>");
            } else {
                stop = find_seq(q + 1, end, ">");
            }
            if (stop == NULL) {
                return 0;
            }
            for (; q < stop; q++) {
                if (*q == '<' && is_container_name(q + 1, end) &&
                    ++depth > MDM_MSG_MAX_DEPTH) {
                    return 0;
                }
            }
            p = stop - 1;
            continue;
        }
        if (*q == '/') {
            if (is_container_name(q + 1, end) && depth > 0) {
                depth--;
            }
            continue;
        }
        if (is_container_name(q, end) && !ci_prefix(q, end, "array/>") &&
            !ci_prefix(q, end, "dict/>") && ++depth > MDM_MSG_MAX_DEPTH) {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    const unsigned char *buf;
    size_t len;
    uint64_t nobj;
    const unsigned char *offsets;
    unsigned offset_size;
    unsigned ref_size;
    size_t data_end; /* objects live in [8, data_end) */
} bplist_t;

static uint64_t
be_uint(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;

    while (n--) {
        v = (v << 8) | *p++;
    }
    return v;
}

/*
 * The children of object idx if it is a container: *refs points at
 * *nrefs object references. Returns 0 on a malformed object.
 */
static int
bplist_children(const bplist_t *b, uint64_t idx, const unsigned char **refs,
                uint64_t *nrefs)
{
    uint64_t off, count;
    const unsigned char *p, *end = b->buf + b->data_end;
    unsigned type, info, n;

    *nrefs = 0;
    off = be_uint(b->offsets + idx * b->offset_size, b->offset_size);
    if (off < 8 || off >= b->data_end) {
        return 0;
    }
    p = b->buf + off;
    type = *p >> 4;
    info = *p & 0x0f;
    p++;
    if (type != 0xa && type != 0xc && type != 0xd) {
        return 1;
    }
    count = info;
    if (info == 0x0f) {
        if (p >= end || (*p >> 4) != 0x1) {
            return 0;
        }
        n = 1u << (*p & 0x0f);
        p++;
        if (n > 8 || (size_t) (end - p) < n) {
            return 0;
        }
        count = be_uint(p, n);
        p += n;
    }
    if (type == 0xd) {
        if (count > UINT64_MAX / 2) {
            return 0;
        }
        count *= 2;
    }
    if (count > (uint64_t) (end - p) / b->ref_size) {
        return 0;
    }
    *refs = p;
    *nrefs = count;
    return 1;
}

/*
 * Walk the object graph from the top object, without recursion, and
 * reject cycles, nesting deeper than MDM_MSG_MAX_DEPTH and trees that
 * would expand to more than MDM_MSG_MAX_NODES nodes.
 */
static int
bplist_shape_ok(const unsigned char *buf, size_t len)
{
    bplist_t b;
    const unsigned char *t, *refs;
    uint64_t top, table, nrefs, child, idx;
    unsigned char *state = NULL;
    uint32_t *nodes = NULL;
    struct {
        uint64_t idx;
        uint64_t next;
        uint64_t sum;
    } stack[MDM_MSG_MAX_DEPTH + 1];
    size_t sp = 0;
    int ok = 0;

    if (len < 8 + 32) {
        return 0;
    }
    t = buf + len - 32;
    b.buf = buf;
    b.len = len;
    b.offset_size = t[6];
    b.ref_size = t[7];
    b.nobj = be_uint(t + 8, 8);
    top = be_uint(t + 16, 8);
    table = be_uint(t + 24, 8);
    if (b.offset_size < 1 || b.offset_size > 8 || b.ref_size < 1 ||
        b.ref_size > 8 || b.nobj == 0 || top >= b.nobj || table < 8 ||
        table > len - 32 || b.nobj > (len - 32 - table) / b.offset_size) {
        return 0;
    }
    b.offsets = buf + table;
    b.data_end = (size_t) table;

    state = calloc((size_t) b.nobj, 1);
    nodes = calloc((size_t) b.nobj, sizeof(*nodes));
    if (state == NULL || nodes == NULL) {
        goto done;
    }

    /* state: 0 unseen, 1 on the current path, 2 done (nodes[] valid) */
    stack[0].idx = top;
    stack[0].next = 0;
    stack[0].sum = 1;
    state[top] = 1;
    sp = 1;
    while (sp > 0) {
        idx = stack[sp - 1].idx;
        if (!bplist_children(&b, idx, &refs, &nrefs)) {
            goto done;
        }
        if (stack[sp - 1].next < nrefs) {
            t = refs + stack[sp - 1].next * b.ref_size;
            stack[sp - 1].next++;
            child = be_uint(t, b.ref_size);
            if (child >= b.nobj || state[child] == 1) {
                goto done;
            }
            if (state[child] == 2) {
                stack[sp - 1].sum += nodes[child];
            } else {
                if (sp > MDM_MSG_MAX_DEPTH) {
                    goto done;
                }
                state[child] = 1;
                stack[sp].idx = child;
                stack[sp].next = 0;
                stack[sp].sum = 1;
                sp++;
            }
            if (stack[sp - 1].sum > MDM_MSG_MAX_NODES) {
                goto done;
            }
            continue;
        }
        state[idx] = 2;
        nodes[idx] = (uint32_t) stack[sp - 1].sum;
        sp--;
        if (sp > 0) {
            stack[sp - 1].sum += nodes[idx];
            if (stack[sp - 1].sum > MDM_MSG_MAX_NODES) {
                goto done;
            }
        }
    }
    ok = 1;

done:
    free(state);
    free(nodes);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Ids                                                                 */

int
mdm_id_valid(const char *id, size_t len)
{
    size_t i;

    if (id == NULL || len == 0 || len > 255) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) id[i];

        if (c < 0x21 || c > 0x7e || c == '{' || c == '}') {
            return 0;
        }
    }
    return 1;
}

static int
str_valid(const char *s)
{
    return s != NULL && mdm_id_valid(s, strlen(s));
}

static char *
join_id(const char *a, const char *b)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *s = malloc(la + 1 + lb + 1);

    if (s == NULL) {
        return NULL;
    }
    memcpy(s, a, la);
    if (b != NULL) {
        s[la] = ':';
        memcpy(s + la + 1, b, lb);
        s[la + 1 + lb] = '\0';
    } else {
        s[la] = '\0';
    }
    return s;
}

/* PROTOCOL.md section 2, NanoMDM normalization, rows in order. */
static mdm_msg_rc_t
resolve_id(mdm_msg_t *m, const char **why)
{
    const char *dev, *sub = NULL;

    if (m->udid != NULL) {
        dev = m->udid;
        if (m->user_id == NULL) {
            m->enr_type = MDM_ENR_DEVICE;
        } else if (strcmp(m->user_id, MDM_SHARED_IPAD_USER_ID) == 0) {
            m->enr_type = MDM_ENR_SHARED_IPAD;
            sub = m->user_short_name;
            if (sub == NULL) {
                *why = "Shared iPad user channel without UserShortName";
                return MDM_MSG_ERR_ID;
            }
        } else {
            m->enr_type = MDM_ENR_USER;
            sub = m->user_id;
        }
    } else if (m->enrollment_id != NULL) {
        dev = m->enrollment_id;
        if (m->enrollment_user_id == NULL) {
            m->enr_type = MDM_ENR_USER_ENROLLMENT_DEVICE;
        } else {
            m->enr_type = MDM_ENR_USER_ENROLLMENT;
            sub = m->enrollment_user_id;
        }
    } else {
        *why = "no UDID or EnrollmentID";
        return MDM_MSG_ERR_ID;
    }

    if (!str_valid(dev) || (sub != NULL && !str_valid(sub))) {
        *why = "enrollment id: bad characters or length";
        return MDM_MSG_ERR_ID;
    }
    /* ':' separates the channel part: in a device id it would make
     * "A:B" both device "A:B" and user B of device A */
    if (strchr(dev, ':') != NULL) {
        *why = "enrollment id: ':' in UDID or EnrollmentID";
        return MDM_MSG_ERR_ID;
    }
    m->device_id = join_id(dev, NULL);
    m->id = join_id(dev, sub);
    if (m->device_id == NULL || m->id == NULL) {
        *why = "out of memory";
        return MDM_MSG_ERR_NOMEM;
    }
    if (!mdm_id_valid(m->id, strlen(m->id))) {
        *why = "enrollment id: too long";
        return MDM_MSG_ERR_ID;
    }
    return MDM_MSG_OK;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */

static int
get_bytes(plist_t node, mdm_bytes_t *b)
{
    uint64_t len = 0;
    const char *p;

    if (plist_get_node_type(node) == PLIST_DATA) {
        p = plist_get_data_ptr(node, &len);
    } else if (plist_get_node_type(node) == PLIST_STRING) {
        p = plist_get_string_ptr(node, &len);
    } else {
        return 0;
    }
    b->ptr = (p != NULL && len > 0) ? (const unsigned char *) p : empty_bytes;
    b->len = (p != NULL) ? (size_t) len : 0;
    return 1;
}

static int
get_error_chain(plist_t node, mdm_msg_t *m, const char **why)
{
    uint32_t i, n;
    plist_t item, v;
    uint64_t code = 0;

    if (plist_get_node_type(node) != PLIST_ARRAY) {
        return 0;
    }
    n = plist_array_get_size(node);
    for (i = 0; i < n; i++) {
        if (plist_get_node_type(plist_array_get_item(node, i)) != PLIST_DICT) {
            return 0;
        }
    }
    m->error_chain_len = n;
    if (n == 0) {
        return 1;
    }
    item = plist_array_get_item(node, 0);
    v = plist_dict_get_item(item, "ErrorCode");
    if (v != NULL) {
        if (plist_get_node_type(v) != PLIST_UINT) {
            *why = "key ErrorChain: ErrorCode: expected integer";
            return -1;
        }
        plist_get_uint_val(v, &code);
        m->first_error_code = (int64_t) code;
    }
    v = plist_dict_get_item(item, "ErrorDomain");
    if (v != NULL) {
        if (plist_get_node_type(v) != PLIST_STRING) {
            *why = "key ErrorChain: ErrorDomain: expected string";
            return -1;
        }
        m->first_error_domain = plist_get_string_ptr(v, &code);
    }
    return 1;
}

static mdm_msg_rc_t
read_keys(mdm_msg_t *m, const char **why)
{
    size_t i;
    plist_t node;
    char *field;
    uint8_t bval;
    const char *s;
    uint64_t slen;
    int rc;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        node = plist_dict_get_item(m->root, keys[i].name);
        if (node == NULL) {
            continue;
        }
        field = (char *) m + keys[i].off;
        switch (keys[i].kind) {
        case K_STR:
            if (plist_get_node_type(node) != PLIST_STRING) {
                goto bad_type;
            }
            s = plist_get_string_ptr(node, &slen);
            if (s == NULL) {
                goto bad_type;
            }
            memcpy(field, &s, sizeof(s));
            break;
        case K_DATA:
            if (plist_get_node_type(node) != PLIST_DATA) {
                goto bad_type;
            }
            get_bytes(node, (mdm_bytes_t *) field);
            break;
        case K_DATA_OR_STR:
            if (!get_bytes(node, (mdm_bytes_t *) field)) {
                goto bad_type;
            }
            m->has_digest_response = 1;
            break;
        case K_BOOL:
            if (plist_get_node_type(node) != PLIST_BOOLEAN) {
                goto bad_type;
            }
            bval = 0;
            plist_get_bool_val(node, &bval);
            *(int *) field = bval ? 1 : 0;
            break;
        case K_ERROR_CHAIN:
            rc = get_error_chain(node, m, why);
            if (rc < 0) {
                return MDM_MSG_ERR_TYPE;
            }
            if (rc == 0) {
                goto bad_type;
            }
            break;
        }
        continue;

    bad_type:
        *why = keys[i].why_type;
        return MDM_MSG_ERR_TYPE;
    }
    return MDM_MSG_OK;
}

static mdm_msg_rc_t
check_required(const mdm_msg_t *m, const char **why)
{
#define REQUIRE(field, name)                                                   \
    if (m->field == NULL) {                                                    \
        *why = "key " name ": missing";                                        \
        return MDM_MSG_ERR_MISSING;                                            \
    }

    switch (m->type) {
    case MDM_MSG_AUTHENTICATE:
    case MDM_MSG_CHECK_OUT:
        REQUIRE(topic, "Topic");
        break;
    case MDM_MSG_TOKEN_UPDATE:
        REQUIRE(topic, "Topic");
        REQUIRE(token.ptr, "Token");
        REQUIRE(push_magic, "PushMagic");
        break;
    case MDM_MSG_USER_AUTHENTICATE:
        REQUIRE(user_id, "UserID");
        break;
    case MDM_MSG_DECLARATIVE_MANAGEMENT:
        REQUIRE(endpoint, "Endpoint");
        break;
    case MDM_MSG_GET_TOKEN:
        REQUIRE(token_service_type, "TokenServiceType");
        break;
    case MDM_MSG_REPORT:
        if (m->status != MDM_STATUS_IDLE) {
            REQUIRE(command_uuid, "CommandUUID");
        }
        break;
    default:
        break;
    }
    return MDM_MSG_OK;
#undef REQUIRE
}

static mdm_msg_rc_t
dispatch(mdm_msg_t *m, mdm_expect_t expect, const char **why)
{
    size_t i;
    int use_type;

    if (expect == MDM_EXPECT_CHECKIN) {
        use_type = 1;
    } else if (expect == MDM_EXPECT_REPORT) {
        use_type = 0;
    } else {
        use_type = m->message_type != NULL || m->status_str == NULL;
    }

    if (use_type) {
        m->status_str = NULL;
        if (m->message_type == NULL) {
            *why = "key MessageType: missing";
            return MDM_MSG_ERR_MISSING;
        }
        for (i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++) {
            if (strcmp(m->message_type, msg_types[i].name) == 0) {
                m->type = msg_types[i].type;
                return MDM_MSG_OK;
            }
        }
        *why = "unknown MessageType";
        return MDM_MSG_ERR_UNKNOWN_TYPE;
    }

    m->message_type = NULL;
    if (m->status_str == NULL) {
        *why = "key Status: missing";
        return MDM_MSG_ERR_MISSING;
    }
    m->type = MDM_MSG_REPORT;
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (strcmp(m->status_str, statuses[i].name) == 0) {
            m->status = statuses[i].status;
            return MDM_MSG_OK;
        }
    }
    *why = "unknown Status";
    return MDM_MSG_ERR_UNKNOWN_STATUS;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */

mdm_msg_rc_t
mdm_msg_parse(const unsigned char *body, size_t len, mdm_expect_t expect,
              mdm_msg_t *out, const char **why)
{
    const char *dummy;
    plist_t root = NULL;
    mdm_msg_rc_t rc;
    int binary;

    if (why == NULL) {
        why = &dummy;
    }
    memset(out, 0, sizeof(*out));

    if (body == NULL || len == 0) {
        *why = "empty body";
        return MDM_MSG_ERR_PLIST;
    }
    if (len > UINT32_MAX) {
        *why = "body too large";
        return MDM_MSG_ERR_PLIST;
    }

    /*
     * Pick the parser ourselves rather than through plist_from_memory so
     * that the shape check and the parser always agree on the format.
     */
    binary = len >= 6 && memcmp(body, "bplist", 6) == 0;
    if (binary ? !bplist_shape_ok(body, len) : !xml_depth_ok(body, len)) {
        *why = "not a plist, or nested too deeply";
        return MDM_MSG_ERR_PLIST;
    }
    if (binary) {
        plist_from_bin((const char *) body, (uint32_t) len, &root);
    } else {
        /*
         * libplist is built without sanitizers, so an over-read past len
         * in its XML tokenizer would go unseen by the fuzzer: give it a
         * NUL-terminated copy so any such scan stops at our bytes.
         */
        char *copy = malloc(len + 1);

        if (copy == NULL) {
            *why = "out of memory";
            return MDM_MSG_ERR_NOMEM;
        }
        memcpy(copy, body, len);
        copy[len] = '\0';
        plist_from_xml(copy, (uint32_t) len, &root);
        free(copy);
    }
    if (root == NULL) {
        *why = "not a plist";
        return MDM_MSG_ERR_PLIST;
    }
    if (plist_get_node_type(root) != PLIST_DICT) {
        plist_free(root);
        *why = "top level is not a dict";
        return MDM_MSG_ERR_PLIST;
    }
    out->root = root;
    out->awaiting_configuration = -1;
    out->not_on_console = -1;

    rc = read_keys(out, why);
    if (rc == MDM_MSG_OK) {
        rc = dispatch(out, expect, why);
    }
    if (rc == MDM_MSG_OK) {
        rc = check_required(out, why);
    }
    if (rc == MDM_MSG_OK) {
        rc = resolve_id(out, why);
    }
    if (rc != MDM_MSG_OK) {
        mdm_msg_clear(out);
    }
    return rc;
}

void
mdm_msg_clear(mdm_msg_t *m)
{
    if (m == NULL) {
        return;
    }
    if (m->root != NULL) {
        plist_free((plist_t) m->root);
    }
    free(m->id);
    free(m->device_id);
    memset(m, 0, sizeof(*m));
}

const char *
mdm_msg_type_name(mdm_msg_type_t t)
{
    size_t i;

    if (t == MDM_MSG_REPORT) {
        return "Report";
    }
    for (i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++) {
        if (msg_types[i].type == t) {
            return msg_types[i].name;
        }
    }
    return "";
}

const char *
mdm_status_name(mdm_status_t s)
{
    size_t i;

    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (statuses[i].status == s) {
            return statuses[i].name;
        }
    }
    return "";
}

const char *
mdm_enr_type_name(mdm_enr_type_t t)
{
    switch (t) {
    case MDM_ENR_DEVICE:
        return "Device";
    case MDM_ENR_USER:
        return "User";
    case MDM_ENR_SHARED_IPAD:
        return "SharediPad";
    case MDM_ENR_USER_ENROLLMENT_DEVICE:
        return "UserEnrollmentDevice";
    case MDM_ENR_USER_ENROLLMENT:
        return "UserEnrollment";
    default:
        return "";
    }
}
