/*
 * The device request: identity -> parse -> checks -> one planned Redis
 * round trip -> HTTP response. Message ids (MDM0nnnn) are stable: tests
 * and operators match on them. See README "Status codes and log ids".
 */
#include "mdm_ddm.h"
#include "mdm_tx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <plist/plist.h>

enum {
    ST_NONE = 0,
    ST_CLAIM,       /* Authenticate: claiming the certificate */
    ST_RETRO_CLAIM, /* retro binding: claiming an unseen certificate */
    ST_RENEW_CLAIM, /* claiming the renewal of the bound certificate */
    ST_SCRIPT,      /* the device script */
    ST_UNDO         /* refused after its event was appended: remove it */
};

typedef struct {
    mdm_tx_t base;
    mdm_endpoint_t ep;

    /* identity */
    X509 *cert;
    char cert_hash[65];
    char *subject;
    unsigned char *cert_der; /* Authenticate: stored with the binding */
    size_t cert_der_len;
    long long not_after; /* of cert, UNIX seconds; 0: unknown */
    char cn_hash[65];    /* SHA-256 of a renewal CN ("mdm-renew-..."), or "" */

    mdm_msg_t msg;
    mdm_keys_t keys;
    int state;
    char next_uuid[256];
    char event_id[64]; /* id of the event this request appended */
    size_t event_cmd;  /* index of its XADD in the plan, 0: none */
    size_t read_cmd;   /* DeclarativeManagement: the catalog read, 0: none */
    mdm_ddm_dev_t ddm;
} mdm_device_t;

static const char ct_xml[] = "application/xml; charset=UTF-8";

static mdm_step_t device_start(mdm_tx_t *tx);
static mdm_step_t device_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                              size_t n);
static mdm_step_t refuse_stored(mdm_device_t *r, mdm_step_t step);

static void
device_free(mdm_tx_t *tx)
{
    mdm_device_t *r = (mdm_device_t *) tx;

    X509_free(r->cert);
    free(r->subject);
    OPENSSL_free(r->cert_der);
    mdm_msg_clear(&r->msg);
    mdm_keys_clear(&r->keys);
    mdm_ddm_dev_clear(&r->ddm);
}

static const mdm_tx_ops_t device_ops = {"device", device_start, device_feed,
                                        device_free};

mdm_req_t *
mdm_device_new(const mdm_conf_t *c, mdm_endpoint_t ep)
{
    mdm_device_t *r = (mdm_device_t *) mdm_tx_new(sizeof(*r), &device_ops, c);

    if (r == NULL) {
        return NULL;
    }
    r->ep = ep;
    return &r->base;
}

X509 *
mdm_device_cert(const mdm_req_t *tx)
{
    const mdm_device_t *r = (const mdm_device_t *) tx;

    return tx->ops == &device_ops && tx->resp.status == 200 ? r->cert : NULL;
}

/* ---------------------------------------------------------------- */
/* identity                                                         */

static mdm_step_t
identify(mdm_device_t *r)
{
    const mdm_conf_t *c = r->base.conf;
    mdm_id_rc_t rc;
    const char *why = NULL, *src, *id;

    if (c->identity == 0) {
        r->base.vars[MDM_VAR_IDENTITY] = "off";
        return MDM_STEP_REDIS;
    }
    if ((c->identity & MDM_ID_SIGNATURE) && r->base.in.sig_len) {
        src = "Mdm-Signature";
        id = "MDM02002";
        rc = mdm_verifier_signature_ex(
            c->verifier, r->base.in.sig, r->base.in.sig_len, r->base.in.body,
            r->base.in.body_len, &r->cert, r->cert_hash, &r->subject, &why);
    } else if ((c->identity & MDM_ID_TLS) && r->base.in.tls_len) {
        src = "TLS client certificate";
        id = "MDM02003";
        rc = mdm_verifier_cert(c->verifier, r->base.in.tls, r->base.in.tls_len,
                               &r->cert, r->cert_hash, &why);
    } else if ((c->identity & MDM_ID_HEADER) && r->base.in.hdr_len) {
        src = "certificate header";
        id = "MDM02004";
        rc =
            mdm_verifier_header(c->verifier, r->base.in.hdr, r->base.in.hdr_len,
                                &r->cert, r->cert_hash, &why);
    } else {
        r->base.vars[MDM_VAR_IDENTITY] = "none";
        mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM02001",
                      "no device identity: no accepted Mdm-Signature, TLS "
                      "client certificate or certificate header");
        return MDM_STEP_DONE;
    }
    if (rc != MDM_ID_OK) {
        r->base.vars[MDM_VAR_IDENTITY] = mdm_id_rc_name(rc);
        mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, id, "bad %s: %s (%s)", src,
                      mdm_id_rc_name(rc), why ? why : "-");
        return MDM_STEP_DONE;
    }
    r->base.vars[MDM_VAR_CERT_SHA256] = r->cert_hash;
    if (r->subject == NULL) {
        r->subject = mdm_cert_subject(r->cert);
    }
    r->base.vars[MDM_VAR_CERT_SUBJECT] = r->subject;
    mdm_renew_cert_facts(r->cert, &r->not_after, r->cn_hash);

    rc = mdm_verifier_check(c->verifier, r->cert, r->cert_hash, time(NULL),
                            &why);
    r->base.vars[MDM_VAR_IDENTITY] = mdm_id_rc_name(rc);
    if (rc != MDM_ID_OK) {
        mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM02005",
                      "device certificate refused: %s (%s), subject \"%s\", "
                      "sha256 %s",
                      mdm_id_rc_name(rc), why ? why : "-",
                      r->subject ? r->subject : "?", r->cert_hash);
        return MDM_STEP_DONE;
    }
    return MDM_STEP_REDIS;
}

/* ---------------------------------------------------------------- */
/* planning                                                         */

static void
field(mdm_device_t *r, const char *name, const char *v)
{
    if (v != NULL) {
        mdm_planb_str(&r->base.pb, name);
        mdm_planb_str(&r->base.pb, v);
    }
}

/* store_cert on (with binding): the bound certificate's DER is kept
 * beside the record (P{D}:der), for what the admin side encrypts to the
 * device (encrypted profiles); off by default: ~1 KB of Redis per
 * enrollment. */
static int
der_wanted(const mdm_device_t *r)
{
    return r->cert != NULL && r->base.conf->store_cert &&
           r->base.conf->identity && r->base.conf->binding != MDM_BIND_OFF;
}

/* The DER as the script's next argument; 0, or -1 on failure. */
static int
der_arg(mdm_device_t *r)
{
    int n;

    if (r->cert_der == NULL) {
        n = i2d_X509(r->cert, &r->cert_der);
        if (n <= 0) {
            r->cert_der = NULL;
            r->base.pb.failed = 1;
            return -1;
        }
        r->cert_der_len = (size_t) n;
    }
    mdm_planb_arg(&r->base.pb, r->cert_der, r->cert_der_len);
    return 0;
}

static void
script_head(mdm_device_t *r, mdm_lua_t which, int claimed)
{
    static const char *const modes[] = {"strict", "retro", "off"};
    int mode = r->base.conf->identity ? r->base.conf->binding : MDM_BIND_OFF;

    mdm_tx_evalsha(&r->base, which);
    if (which == MDM_LUA_DDM) {
        mdm_keys_push_more(&r->base.pb, &r->keys, 0, 4);
        mdm_ddm_push_keys(&r->base, &r->keys);
    } else {
        mdm_keys_push(&r->base.pb, &r->keys, 0);
    }
    mdm_planb_str(&r->base.pb, modes[mode]);
    mdm_planb_str(&r->base.pb, r->cert_hash);
    if (claimed == 2 && der_wanted(r)) {
        /* the DER goes last (plan_script): stored if the renewal rebinds */
        if (r->not_after > 0) {
            mdm_planb_fmt(&r->base.pb, "%d:%lld:%s:d", claimed, r->not_after,
                          r->cn_hash);
        } else {
            mdm_planb_fmt(&r->base.pb, "%d::%s:d", claimed, r->cn_hash);
        }
    } else if (r->not_after > 0) {
        mdm_planb_fmt(&r->base.pb, "%d:%lld:%s", claimed, r->not_after,
                      r->cn_hash);
    } else {
        mdm_planb_fmt(&r->base.pb, "%d", claimed);
    }
}

/*
 * The expiry index (README "Identity renewal"): a shared key, written by
 * its own pipelined command when a certificate gets bound (Authenticate,
 * a retro or renewal claim), never from the device's slot.
 */
static void
plan_expiry(mdm_device_t *r)
{
    if (r->not_after <= 0 || r->cert_hash[0] == '\0' ||
        r->base.conf->binding == MDM_BIND_OFF) {
        return;
    }
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "ZADD");
    mdm_planb_str(&r->base.pb, r->base.conf->expiry_key);
    mdm_planb_fmt(&r->base.pb, "%lld", r->not_after);
    mdm_planb_str(&r->base.pb, r->msg.device_id);
}

static void
plan_event(mdm_device_t *r)
{
    const mdm_conf_t *c = r->base.conf;
    const mdm_msg_t *m = &r->msg;

    if (c->events_maxlen == 0) {
        return;
    }
    r->event_cmd = r->base.pb.ncmds;
    mdm_planb_xadd(&r->base.pb, c->events_key, c->events_maxlen_s);
    if (m->type == MDM_MSG_DECLARATIVE_MANAGEMENT &&
        r->ddm.ep == MDM_DDM_STATUS) {
        /* for webhooks: the status report itself */
        field(r, "kind", "ddm-status");
        field(r, "id", m->id);
        mdm_ddm_plan_event(&r->base, &r->ddm);
    } else if (m->type == MDM_MSG_REPORT) {
        field(r, "kind", "report");
        field(r, "id", m->id);
        field(r, "status", m->status_str);
        field(r, "uuid", m->command_uuid);
        field(r, "request_type", m->request_type);
    } else {
        field(r, "kind", "checkin");
        field(r, "id", m->id);
        field(r, "type", m->message_type);
        field(r, "endpoint", m->endpoint);
    }
    field(r, "cert", r->cert_hash[0] ? r->cert_hash : NULL);
}

static mdm_step_t
plan_claim(mdm_device_t *r, int state)
{
    mdm_planb_reset(&r->base.pb);
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "SET");
    mdm_planb_fmt(&r->base.pb, "%scert:%s", r->base.conf->prefix, r->cert_hash);
    mdm_planb_str(&r->base.pb, r->msg.device_id);
    mdm_planb_str(&r->base.pb, "NX");
    mdm_planb_str(&r->base.pb, "GET");
    r->base.plan = mdm_planb_finish(&r->base.pb, 1);
    if (r->base.plan == NULL) {
        return mdm_tx_oom(&r->base);
    }
    r->state = state;
    return MDM_STEP_REDIS;
}

static void
hex_field(mdm_device_t *r, const char *name, const mdm_bytes_t *b)
{
    char *h;

    if (b->ptr == NULL) {
        return;
    }
    h = malloc(2 * b->len + 1);
    if (h == NULL) {
        r->base.pb.failed = 1;
        return;
    }
    mdm_hex(b->ptr, b->len, h);
    mdm_planb_str(&r->base.pb, name);
    mdm_planb_fmt(&r->base.pb, "%s", h);
    free(h);
}

/* Authenticate: the DER stored by authenticate.lua with the binding, no
 * extra round trip (a renewal claim passes it through script_head's flag
 * and stores it in the prelude when the renewal rebinds). */
static void
der_field(mdm_device_t *r)
{
    if (!der_wanted(r)) {
        return;
    }
    mdm_planb_str(&r->base.pb, "cert_der");
    der_arg(r);
}

static mdm_step_t
plan_script(mdm_device_t *r, int claimed)
{
    const mdm_msg_t *m = &r->msg;

    mdm_planb_reset(&r->base.pb);
    r->base.evalled = 0;
    switch (m->type) {
    case MDM_MSG_AUTHENTICATE:
        script_head(r, MDM_LUA_AUTHENTICATE, claimed);
        mdm_planb_str(&r->base.pb, r->keys.devbase);
        field(r, "type", mdm_enr_type_name(m->enr_type));
        field(r, "topic", m->topic);
        field(r, "serial", m->serial_number);
        field(r, "model", m->model);
        field(r, "model_name", m->model_name);
        field(r, "product", m->product_name);
        field(r, "name", m->device_name);
        field(r, "os", m->os_version);
        field(r, "build", m->build_version);
        field(r, "imei", m->imei);
        field(r, "meid", m->meid);
        der_field(r);
        break;
    case MDM_MSG_TOKEN_UPDATE:
        script_head(r, MDM_LUA_TOKENUPDATE, claimed);
        mdm_planb_str(&r->base.pb, r->keys.base);
        field(r, "type", mdm_enr_type_name(m->enr_type));
        field(r, "topic", m->topic);
        hex_field(r, "token", &m->token);
        field(r, "magic", m->push_magic);
        if (m->unlock_token.ptr) {
            mdm_planb_str(&r->base.pb, "unlock");
            mdm_planb_arg(&r->base.pb, m->unlock_token.ptr,
                          m->unlock_token.len);
        }
        if (strcmp(m->id, m->device_id) != 0) {
            field(r, "parent", m->device_id);
            field(r, "user_id", m->user_id);
            field(r, "user_short_name", m->user_short_name);
            field(r, "user_long_name", m->user_long_name);
        }
        if (m->awaiting_configuration >= 0) {
            field(r, "awaiting", m->awaiting_configuration ? "1" : "0");
        }
        break;
    case MDM_MSG_CHECK_OUT:
        script_head(r, MDM_LUA_CHECKOUT, claimed);
        break;
    case MDM_MSG_SET_BOOTSTRAP_TOKEN:
        script_head(r, MDM_LUA_BOOTSTRAP, claimed);
        mdm_planb_str(&r->base.pb, "set");
        mdm_planb_arg(&r->base.pb, m->bootstrap_token.ptr,
                      m->bootstrap_token.ptr ? m->bootstrap_token.len : 0);
        break;
    case MDM_MSG_GET_BOOTSTRAP_TOKEN:
    case MDM_MSG_RETURN_TO_SERVICE:
        script_head(r, MDM_LUA_BOOTSTRAP, claimed);
        mdm_planb_str(&r->base.pb, "get");
        break;
    case MDM_MSG_REPORT:
        script_head(r, MDM_LUA_REPORT, claimed);
        mdm_planb_str(&r->base.pb, m->status_str);
        mdm_planb_str(&r->base.pb, m->command_uuid ? m->command_uuid : "");
        mdm_planb_arg(&r->base.pb, r->base.in.body, r->base.in.body_len);
        mdm_planb_str(&r->base.pb, r->keys.res);
        mdm_planb_str(&r->base.pb, r->base.conf->results_ttl_s);
        break;
    case MDM_MSG_DECLARATIVE_MANAGEMENT:
        script_head(r, MDM_LUA_DDM, claimed);
        mdm_ddm_plan_args(&r->base, &r->ddm);
        break;
    default:
        script_head(r, MDM_LUA_TOUCH, claimed);
        break;
    }
    /* a renewal claim with store_cert: the DER last (common.lua) */
    if (claimed == 2 && der_wanted(r)) {
        der_arg(r);
    }
    /* The event goes out with the first attempt only, pipelined after the
     * script; its id comes back so that a refusal can take it out. */
    if (!claimed) {
        plan_event(r);
    }
    if (claimed || m->type == MDM_MSG_AUTHENTICATE) {
        plan_expiry(r);
    }
    /* a declaration: read from the catalog in the same round trip, served
     * if the script finds it is this enrollment's */
    if (r->ddm.ep == MDM_DDM_DECL && !r->ddm.have_decl) {
        r->read_cmd = r->base.pb.ncmds;
        mdm_ddm_plan_decl_read(&r->base, &r->ddm);
    }
    r->base.plan = mdm_planb_finish(&r->base.pb, r->base.pb.ncmds);
    if (r->base.plan == NULL) {
        return mdm_tx_oom(&r->base);
    }
    r->state = ST_SCRIPT;
    return MDM_STEP_REDIS;
}

/* ---------------------------------------------------------------- */
/* start                                                            */

static mdm_step_t
parse_fail(mdm_device_t *r, mdm_msg_rc_t rc, const char *why)
{
    static const char *const ids[] = {
        "MDM01000", "MDM09001", "MDM01001", "MDM01002",
        "MDM01003", "MDM01004", "MDM01005", "MDM01006",
    };
    static const char *const what[] = {
        "",
        "out of memory",
        "body is not a plist dictionary",
        "wrong value type",
        "required key missing",
        "unknown MessageType",
        "unknown Status",
        "no usable enrollment id",
    };
    size_t i = (size_t) rc < sizeof(ids) / sizeof(ids[0]) ? (size_t) rc : 0;

    return mdm_tx_refuse(&r->base, rc == MDM_MSG_ERR_NOMEM ? 500 : 400,
                         MDM_LOG_WARN, ids[i], "bad device message: %s (%s)",
                         what[i], why ? why : "-");
}

static int
topic_ok(const mdm_conf_t *c, const char *topic)
{
    size_t i;

    if (c->ntopics == 0 || topic == NULL) {
        return 1;
    }
    for (i = 0; i < c->ntopics; i++) {
        if (strcmp(c->topics[i], topic) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Answers that come from configuration alone and refuse before storage. */
static mdm_step_t
check_local(mdm_device_t *r)
{
    const mdm_conf_t *c = r->base.conf;
    const mdm_msg_t *m = &r->msg;

    if (!topic_ok(c, m->topic)) {
        return mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM03001",
                             "topic \"%s\" of %s from %s is not a "
                             "configured push topic",
                             m->topic, m->message_type, m->id);
    }
    if (m->type == MDM_MSG_GET_TOKEN &&
        (c->get_token_type == NULL ||
         strcmp(c->get_token_type, m->token_service_type) != 0)) {
        return mdm_tx_refuse(&r->base, 400, MDM_LOG_NOTICE, "MDM01007",
                             "GetToken for \"%s\" from %s refused: no token "
                             "configured for this service type",
                             m->token_service_type, m->id);
    }
    if (m->type == MDM_MSG_DECLARATIVE_MANAGEMENT) {
        const char *why = NULL;

        if (mdm_ddm_endpoint(m->endpoint, &r->ddm) != 0) {
            return mdm_tx_refuse(&r->base, 404, MDM_LOG_NOTICE, "MDM01008",
                                 "DeclarativeManagement endpoint \"%.300s\" "
                                 "from %s is not served",
                                 m->endpoint, m->id);
        }
        if (r->ddm.ep == MDM_DDM_STATUS &&
            mdm_ddm_status_parse(m->ddm_data.ptr, m->ddm_data.len,
                                 &r->ddm.status, &why) != 0) {
            return mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM01009",
                                 "DeclarativeManagement status report from "
                                 "%s refused: %s",
                                 m->id, why);
        }
    }
    return MDM_STEP_REDIS;
}

static mdm_step_t
device_start(mdm_tx_t *tx)
{
    mdm_device_t *r = (mdm_device_t *) tx;
    mdm_expect_t expect;
    mdm_msg_rc_t rc;
    const char *why = NULL;

    if (identify(r) == MDM_STEP_DONE) {
        return MDM_STEP_DONE;
    }

    if (r->ep == MDM_EP_CHECKIN) {
        expect = MDM_EXPECT_CHECKIN;
    } else if (r->ep == MDM_EP_COMMAND) {
        expect = MDM_EXPECT_REPORT;
    } else if (mdm_ctype_prefix(r->base.in.ctype, r->base.in.ctype_len,
                                "application/x-apple-aspen-mdm-checkin")) {
        expect = MDM_EXPECT_CHECKIN;
    } else if (mdm_ctype_prefix(r->base.in.ctype, r->base.in.ctype_len,
                                "application/x-apple-aspen-mdm")) {
        expect = MDM_EXPECT_REPORT;
    } else {
        expect = MDM_EXPECT_ANY;
    }
    rc = mdm_msg_parse(r->base.in.body, r->base.in.body_len, expect, &r->msg,
                       &why);
    if (rc != MDM_MSG_OK) {
        if (r->base.in.verify_only) {
            /* the upstream judges the message; we vouch for the sender */
            return mdm_tx_reply(&r->base, 200, NULL, NULL);
        }
        return parse_fail(r, rc, why);
    }
    r->base.vars[MDM_VAR_ENROLLMENT_ID] = r->msg.id;
    r->base.vars[MDM_VAR_ENROLLMENT_TYPE] = mdm_enr_type_name(r->msg.enr_type);
    r->base.vars[MDM_VAR_UDID] = r->msg.udid;
    r->base.vars[MDM_VAR_MESSAGE] =
        r->msg.message_type ? r->msg.message_type : r->msg.status_str;
    r->base.vars[MDM_VAR_COMMAND_UUID] = r->msg.command_uuid;
    if (r->base.in.verify_only) {
        return mdm_tx_reply(&r->base, 200, NULL, NULL);
    }
    if (check_local(r) == MDM_STEP_DONE) {
        return MDM_STEP_DONE;
    }
    if (mdm_keys_init(&r->keys, r->base.conf->prefix, r->msg.id,
                      r->msg.device_id) != 0) {
        return mdm_tx_oom(&r->base);
    }
    if (r->msg.type == MDM_MSG_AUTHENTICATE && r->base.conf->identity &&
        r->base.conf->binding != MDM_BIND_OFF) {
        return plan_claim(r, ST_CLAIM);
    }
    return plan_script(r, 0);
}

/* ---------------------------------------------------------------- */
/* responses                                                        */

static mdm_step_t
reply_plist(mdm_device_t *r, plist_t dict)
{
    int rc = mdm_plist_xml(dict, &r->base.out);

    plist_free(dict);
    if (rc != 0) {
        return mdm_tx_oom(&r->base);
    }
    return mdm_tx_reply(&r->base, 200, ct_xml, &r->base.out);
}

static mdm_step_t
respond(mdm_device_t *r, const redisReply *rep)
{
    const mdm_conf_t *c = r->base.conf;
    const mdm_msg_t *m = &r->msg;
    const redisReply *tok = rep->elements > 1 ? rep->element[1] : NULL;
    plist_t d, rts;

    switch (m->type) {
    case MDM_MSG_REPORT:
        if (rep->elements >= 3 && rep->element[1]->type == REDIS_REPLY_STRING &&
            rep->element[2]->type == REDIS_REPLY_STRING) {
            snprintf(r->next_uuid, sizeof(r->next_uuid), "%.*s",
                     (int) rep->element[1]->len, rep->element[1]->str);
            r->base.vars[MDM_VAR_NEXT_UUID] = r->next_uuid;
            if (mdm_buf_set(&r->base.out, rep->element[2]->str,
                            rep->element[2]->len) != 0) {
                return mdm_tx_oom(&r->base);
            }
            return mdm_tx_reply(&r->base, 200, ct_xml, &r->base.out);
        }
        return mdm_tx_reply(&r->base, 200, NULL, NULL);

    case MDM_MSG_GET_BOOTSTRAP_TOKEN:
        if (tok == NULL || tok->type != REDIS_REPLY_STRING) {
            return mdm_tx_reply(&r->base, 200, NULL, NULL);
        }
        d = plist_new_dict();
        plist_dict_set_item(d, "BootstrapToken",
                            plist_new_data(tok->str, tok->len));
        return reply_plist(r, d);

    case MDM_MSG_RETURN_TO_SERVICE:
        d = plist_new_dict();
        rts = plist_new_dict();
        plist_dict_set_item(rts, "Enabled", plist_new_bool(c->rts));
        if (c->rts) {
            if (c->rts_wifi.ptr) {
                plist_dict_set_item(
                    rts, "WiFiProfileData",
                    plist_new_data((char *) c->rts_wifi.ptr, c->rts_wifi.len));
            }
            if (c->rts_mdm.ptr) {
                plist_dict_set_item(
                    rts, "MDMProfileData",
                    plist_new_data((char *) c->rts_mdm.ptr, c->rts_mdm.len));
            }
            if (tok && tok->type == REDIS_REPLY_STRING) {
                plist_dict_set_item(rts, "BootstrapToken",
                                    plist_new_data(tok->str, tok->len));
            }
        }
        plist_dict_set_item(d, "ReturnToService", rts);
        return reply_plist(r, d);

    case MDM_MSG_USER_AUTHENTICATE:
        if (c->user_auth == MDM_UA_GONE) {
            return mdm_tx_reply(&r->base, 410, NULL, NULL);
        }
        if (m->has_digest_response) {
            return mdm_tx_reply(&r->base, 200, NULL, NULL);
        }
        d = plist_new_dict();
        plist_dict_set_item(d, "DigestChallenge", plist_new_string(""));
        return reply_plist(r, d);

    case MDM_MSG_GET_TOKEN:
        d = plist_new_dict();
        plist_dict_set_item(
            d, "TokenData",
            plist_new_data((char *) c->get_token.ptr, c->get_token.len));
        return reply_plist(r, d);

    case MDM_MSG_DECLARATIVE_MANAGEMENT: {
        int not_found;
        mdm_step_t step = mdm_ddm_respond(&r->base, &r->ddm, rep, &not_found);

        if (!not_found) {
            return step;
        }
        return refuse_stored(
            r, mdm_tx_refuse(
                   &r->base, 404, MDM_LOG_NOTICE, "MDM01010",
                   "DeclarativeManagement %s from %s: %s", m->endpoint, m->id,
                   r->ddm.have_decl ? "not a declaration of this enrollment"
                                    : "no such declaration"));
    }

    default:
        return mdm_tx_reply(&r->base, 200, NULL, NULL);
    }
}

/*
 * A refusal decided in Redis (binding) after the request's event was
 * appended: log and answer as usual, then delete that event so that a
 * refused request leaves nothing behind. Costs a round trip on this rare
 * path only.
 */
static mdm_step_t
refuse_stored(mdm_device_t *r, mdm_step_t step)
{
    if (r->event_id[0] == '\0') {
        return step;
    }
    mdm_planb_reset(&r->base.pb);
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "XDEL");
    mdm_planb_str(&r->base.pb, r->base.conf->events_key);
    mdm_planb_str(&r->base.pb, r->event_id);
    r->base.plan = mdm_planb_finish(&r->base.pb, 1);
    if (r->base.plan == NULL) {
        return step;
    }
    r->state = ST_UNDO;
    r->base.done = 0; /* answered, with one more round trip to go */
    return MDM_STEP_REDIS;
}

static mdm_step_t
device_feed(mdm_tx_t *tx, struct redisReply *const *replies, size_t n)
{
    mdm_device_t *r = (mdm_device_t *) tx;
    const redisReply *rep = (replies && n > 0) ? replies[0] : NULL;
    const char *s;

    if (r->state == ST_NONE) {
        return MDM_STEP_DONE;
    }
    if (r->state == ST_UNDO) {
        /* the refusal is already the response, whatever XDEL said */
        r->base.done = 1;
        return MDM_STEP_DONE;
    }
    if (rep == NULL) {
        return mdm_tx_storage_failed(&r->base, NULL);
    }
    if (r->state == ST_SCRIPT && r->event_cmd && n > r->event_cmd &&
        replies[r->event_cmd] &&
        replies[r->event_cmd]->type == REDIS_REPLY_STRING &&
        r->event_id[0] == '\0' &&
        replies[r->event_cmd]->len < sizeof(r->event_id)) {
        memcpy(r->event_id, replies[r->event_cmd]->str,
               replies[r->event_cmd]->len);
        r->event_id[replies[r->event_cmd]->len] = '\0';
    }
    if (r->state == ST_SCRIPT && r->read_cmd && n > r->read_cmd &&
        mdm_ddm_keep_decl(&r->ddm, replies[r->read_cmd]) != 0) {
        return mdm_tx_oom(&r->base);
    }
    if (r->state == ST_CLAIM || r->state == ST_RETRO_CLAIM ||
        r->state == ST_RENEW_CLAIM) {
        if (rep->type == REDIS_REPLY_NIL ||
            (rep->type == REDIS_REPLY_STRING &&
             rep->len == strlen(r->msg.device_id) &&
             memcmp(rep->str, r->msg.device_id, rep->len) == 0)) {
            return plan_script(r, r->state == ST_RETRO_CLAIM   ? 1
                                  : r->state == ST_RENEW_CLAIM ? 2
                                                               : 0);
        }
        if (rep->type != REDIS_REPLY_STRING) {
            return mdm_tx_storage_failed(&r->base, rep);
        }
        return refuse_stored(
            r,
            mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM03002",
                          "%s from %s refused: certificate %s is bound "
                          "to enrollment %.*s",
                          r->msg.message_type ? r->msg.message_type
                                              : r->msg.status_str,
                          r->msg.id, r->cert_hash, (int) rep->len, rep->str));
    }

    /* ST_SCRIPT */
    if (mdm_tx_noscript(&r->base, rep)) {
        return MDM_STEP_REDIS;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return mdm_tx_storage_failed(&r->base, rep);
    }
    s = rep->element[0]->str;
    if (strcmp(s, "OK") == 0 || strcmp(s, "NODECL") == 0) {
        return respond(r, rep);
    }
    if (strcmp(s, "RETRO") == 0 && r->state == ST_SCRIPT) {
        return plan_claim(r, ST_RETRO_CLAIM);
    }
    if (strcmp(s, "RENEW") == 0 && r->state == ST_SCRIPT) {
        mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM03007",
                   "%s from %s: renewed certificate sha256 %s replaces the "
                   "bound one",
                   r->base.vars[MDM_VAR_MESSAGE], r->msg.id, r->cert_hash);
        return plan_claim(r, ST_RENEW_CLAIM);
    }
    if (strcmp(s, "RENEWED") == 0) {
        return refuse_stored(
            r, mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM03006",
                             "%s from %s refused: certificate sha256 %s was "
                             "replaced by a renewed one",
                             r->base.vars[MDM_VAR_MESSAGE], r->msg.id,
                             r->cert_hash));
    }
    if (strcmp(s, "UNBOUND") == 0) {
        return refuse_stored(
            r, mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM03003",
                             "%s from %s refused: no certificate is bound to "
                             "this enrollment (sha256 %s); it must "
                             "Authenticate first",
                             r->base.vars[MDM_VAR_MESSAGE], r->msg.id,
                             r->cert_hash));
    }
    if (strcmp(s, "REVOKED") == 0) {
        return refuse_stored(
            r, mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM03005",
                             "%s from %s refused: certificate sha256 %s was "
                             "revoked",
                             r->base.vars[MDM_VAR_MESSAGE], r->msg.id,
                             r->cert_hash));
    }
    if (strcmp(s, "MISMATCH") == 0) {
        return refuse_stored(
            r, mdm_tx_refuse(&r->base, 400, MDM_LOG_WARN, "MDM03004",
                             "%s from %s refused: certificate sha256 %s is "
                             "not the one bound to this enrollment",
                             r->base.vars[MDM_VAR_MESSAGE], r->msg.id,
                             r->cert_hash));
    }
    return mdm_tx_storage_failed(&r->base, rep);
}
