/*
 * The encrypted profile admin type: POST /profiles/encrypted/ID. Reads the
 * enrollment and its bound certificate (the DER stored at Authenticate
 * in P{D}:der),
 * builds the profile encrypted to it (mdm_profile_enc.c), queues it as an
 * InstallProfile command (enqueue.lua) and requests a push. Three round
 * trips: read, enqueue, push. Nothing is stored before the profile is
 * built, so every refusal stores nothing.
 */
#include "mdm_profile_enc.h"
#include "mdm_tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

enum { EST_NONE = 0, EST_READ, EST_ENQUEUE, EST_PUSH };

typedef struct {
    mdm_tx_t base;
    int state;
    char *id;
    int nopush;
    int unsigned_on;
    int signed_on;
    mdm_keys_t keys;
    mdm_encprof_t prof;
    char cert_hash[65];
    char uuid[37];
    mdm_buf_t cmd;
} mdm_encprofile_t;

static mdm_step_t encprofile_start(mdm_tx_t *tx);
static mdm_step_t encprofile_feed(mdm_tx_t *tx, struct redisReply *const *rep,
                                  size_t n);
static void encprofile_free(mdm_tx_t *tx);

static const mdm_tx_ops_t encprofile_ops = {"encprofile", encprofile_start,
                                            encprofile_feed, encprofile_free};

mdm_req_t *
mdm_encprofile_new(const mdm_conf_t *c, const char *id,
                   const unsigned char *body, size_t blen, int nopush,
                   int unsigned_on)
{
    mdm_encprofile_t *r =
        (mdm_encprofile_t *) mdm_tx_new(sizeof(*r), &encprofile_ops, c);

    if (r == NULL) {
        return NULL;
    }
    r->id = mdm_strdup(id ? id : "");
    if (r->id == NULL) {
        mdm_tx_free(&r->base);
        return NULL;
    }
    r->base.in.body = body;
    r->base.in.body_len = blen;
    r->nopush = nopush;
    r->unsigned_on = unsigned_on;
    return &r->base;
}

static void
encprofile_free(mdm_tx_t *tx)
{
    mdm_encprofile_t *r = (mdm_encprofile_t *) tx;

    free(r->id);
    mdm_keys_clear(&r->keys);
    mdm_encprof_clear(&r->prof);
    mdm_buf_free(&r->cmd);
}

static mdm_step_t
encprofile_start(mdm_tx_t *tx)
{
    mdm_encprofile_t *r = (mdm_encprofile_t *) tx;
    const char *why = NULL;
    char reason[256], msg[400];
    plist_t body;
    int rc;

    if (!mdm_id_valid(r->id, strlen(r->id))) {
        snprintf(msg, sizeof(msg), "invalid enrollment id \"%.255s\"", r->id);
        return mdm_tx_json_error(&r->base, 400, "MDM05002", msg);
    }
    body = mdm_admin_body_dict(r->base.in.body, r->base.in.body_len, &why);
    if (body == NULL) {
        snprintf(msg, sizeof(msg), "encrypted profile for %.255s: %s", r->id,
                 why ? why : "out of memory");
        return mdm_tx_json_error(&r->base, 400, "MDM05060", msg);
    }
    rc = mdm_encprof_prepare(&r->prof, body, reason, sizeof(reason));
    plist_free(body);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "encrypted profile for %.60s: %s", r->id,
                 reason);
        return mdm_tx_json_error(&r->base, 400, "MDM05060", msg);
    }
    if (mdm_keys_init(&r->keys, r->base.conf->prefix, r->id, NULL) != 0) {
        return mdm_tx_oom(&r->base);
    }
    /* the enrollment, and the certificate bound to its device channel */
    mdm_planb_reset(&r->base.pb);
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "EXISTS");
    mdm_planb_str(&r->base.pb, r->keys.rec);
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "HGET");
    mdm_planb_str(&r->base.pb, r->keys.devrec);
    mdm_planb_str(&r->base.pb, "cert");
    mdm_planb_cmd(&r->base.pb);
    mdm_planb_str(&r->base.pb, "GET");
    mdm_planb_fmt(&r->base.pb, "%s:der", r->keys.devbase);
    r->state = EST_READ;
    return mdm_tx_plan(&r->base, 3);
}

/* The bound certificate from the replies (h: its hash in the record, d:
 * its DER), or NULL after answering. */
static X509 *
bound_cert(mdm_encprofile_t *r, const redisReply *h, const redisReply *d,
           mdm_step_t *step)
{
    const unsigned char *p;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    X509 *x = NULL;

    if (h->type == REDIS_REPLY_ERROR || d->type == REDIS_REPLY_ERROR) {
        *step = mdm_tx_storage_failed(&r->base,
                                      h->type == REDIS_REPLY_ERROR ? h : d);
        return NULL;
    }
    if (h->type == REDIS_REPLY_STRING && d->type == REDIS_REPLY_STRING &&
        d->len > 0) {
        p = (const unsigned char *) d->str;
        x = d2i_X509(NULL, &p, (long) d->len);
        if (x == NULL) {
            ERR_clear_error(); /* a stored value that is no certificate */
        }
        if (x && p == (const unsigned char *) d->str + d->len &&
            EVP_Digest(d->str, d->len, md, &mdlen, EVP_sha256(), NULL) &&
            mdlen == 32) {
            mdm_hex(md, mdlen, r->cert_hash);
        }
        if (r->cert_hash[0] == '\0' || h->len != 64 ||
            memcmp(h->str, r->cert_hash, 64) != 0) {
            /* a certificate bound since, without its DER (retro binding,
             * an older server): not the one the device has now */
            X509_free(x);
            x = NULL;
        }
    }
    if (x == NULL) {
        *step = mdm_tx_json_error(
            &r->base, 409, "MDM05062",
            "no identity certificate known for this enrollment: the device "
            "must Authenticate (with binding on) before a profile can be "
            "encrypted to it");
    }
    return x;
}

/* The InstallProfile command with the profile as its Payload. */
static int
make_command(mdm_encprofile_t *r, const unsigned char *prof, size_t len)
{
    plist_t env = plist_new_dict(), cmd = plist_new_dict();
    int rc;

    if (env == NULL || cmd == NULL || mdm_uuid(r->uuid) != 0) {
        plist_free(env);
        plist_free(cmd);
        return -1;
    }
    plist_dict_set_item(cmd, "RequestType", plist_new_string("InstallProfile"));
    plist_dict_set_item(cmd, "Payload",
                        plist_new_data((const char *) prof, len));
    plist_dict_set_item(env, "Command", cmd);
    plist_dict_set_item(env, "CommandUUID", plist_new_string(r->uuid));
    rc = mdm_plist_xml(env, &r->cmd);
    plist_free(env);
    return rc;
}

static mdm_step_t
plan_enqueue(mdm_encprofile_t *r)
{
    mdm_planb_reset(&r->base.pb);
    mdm_tx_evalsha(&r->base, MDM_LUA_ENQUEUE);
    mdm_keys_push(&r->base.pb, &r->keys, 0);
    mdm_planb_str(&r->base.pb, "off");
    mdm_planb_str(&r->base.pb, "");
    mdm_planb_str(&r->base.pb, "0");
    mdm_planb_str(&r->base.pb, r->uuid);
    mdm_planb_arg(&r->base.pb, r->cmd.ptr, r->cmd.len);
    mdm_planb_str(&r->base.pb, r->keys.res);
    r->state = EST_ENQUEUE;
    return mdm_tx_plan(&r->base, 1);
}

static mdm_step_t
feed_read(mdm_encprofile_t *r, struct redisReply *const *rep, size_t n)
{
    const mdm_profile_conf_t *signer = NULL;
    unsigned char *prof = NULL;
    size_t plen = 0;
    mdm_step_t step = MDM_STEP_DONE;
    char why[256], msg[400];
    X509 *x;
    int rc;

    if (n < 3 || rep[0] == NULL || rep[1] == NULL || rep[2] == NULL ||
        rep[0]->type != REDIS_REPLY_INTEGER) {
        return mdm_tx_storage_failed(&r->base, n > 0 ? rep[0] : NULL);
    }
    if (rep[0]->integer == 0) {
        return mdm_tx_json_error(&r->base, 404, "MDM05061",
                                 "unknown enrollment");
    }
    x = bound_cert(r, rep[1], rep[2], &step);
    if (x == NULL) {
        return step;
    }
    if (!r->unsigned_on && mdm_encprof_can_sign(r->base.conf->profile)) {
        signer = r->base.conf->profile;
    }
    rc = mdm_encprof_build(&r->prof, x, signer, &prof, &plen, why, sizeof(why));
    X509_free(x);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "encrypted profile for %.60s: %s", r->id,
                 why);
        return strncmp(why, "the device", 10) == 0
                   ? mdm_tx_json_error(&r->base, 409, "MDM05063", msg)
                   : mdm_tx_json_error(&r->base, 500, "MDM05064", msg);
    }
    r->signed_on = signer != NULL;
    rc = make_command(r, prof, plen);
    free(prof);
    if (rc != 0) {
        return mdm_tx_oom(&r->base);
    }
    return plan_enqueue(r);
}

static mdm_step_t
answer(mdm_encprofile_t *r)
{
    int pushed = r->state == EST_PUSH;

    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM05065",
               "encrypted profile %s queued for %s as InstallProfile %s "
               "(to certificate sha256 %s, %s)",
               r->prof.identifier, r->id, r->uuid, r->cert_hash,
               r->signed_on ? "signed" : "unsigned");
    return mdm_tx_json(&r->base, 200,
                       json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b}", "id",
                                 r->id, "command_uuid", r->uuid, "request_type",
                                 "InstallProfile", "profile_identifier",
                                 r->prof.identifier, "profile_uuid",
                                 r->prof.uuid, "encrypted_to", r->cert_hash,
                                 "signed", r->signed_on, "pushed", pushed));
}

static mdm_step_t
encprofile_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    mdm_encprofile_t *r = (mdm_encprofile_t *) tx;
    const redisReply *x = n > 0 ? rep[0] : NULL;

    if (r->state == EST_READ) {
        return feed_read(r, rep, n);
    }
    if (x == NULL) {
        return mdm_tx_storage_failed(&r->base, NULL);
    }
    if (r->state == EST_PUSH) {
        if (x->type == REDIS_REPLY_ERROR) {
            return mdm_tx_storage_failed(&r->base, x);
        }
        return answer(r);
    }
    /* EST_ENQUEUE */
    if (mdm_tx_noscript(&r->base, x)) {
        return MDM_STEP_REDIS;
    }
    if (x->type != REDIS_REPLY_ARRAY || x->elements < 1 ||
        x->element[0]->type != REDIS_REPLY_STRING) {
        return mdm_tx_storage_failed(&r->base, x);
    }
    if (strcmp(x->element[0]->str, "UNKNOWN") == 0) {
        return mdm_tx_json_error(&r->base, 404, "MDM05061",
                                 "unknown enrollment");
    }
    if (strcmp(x->element[0]->str, "OK") != 0) {
        return mdm_tx_storage_failed(&r->base, x);
    }
    if (r->nopush) {
        return answer(r);
    }
    mdm_planb_reset(&r->base.pb);
    mdm_planb_xadd(&r->base.pb, r->base.conf->push_key,
                   r->base.conf->push_maxlen_s);
    mdm_planb_str(&r->base.pb, "id");
    mdm_planb_str(&r->base.pb, r->id);
    r->state = EST_PUSH;
    return mdm_tx_plan(&r->base, 1);
}
