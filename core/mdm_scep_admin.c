/*
 * The SCEP admin transaction (JSON answers, same plan/feed loop):
 *
 *   CHALLENGE  a one-time challenge (given, or 32 random hex characters)
 *              stored as its SHA-256 with a lifetime, dynamic mode only
 *   REVOKE     an issued certificate marked revoked (scep_revoke.lua)
 *
 * and their HTTP routes (POST /challenge, POST /revoke/SERIAL), so that
 * both web server modules expose one API.
 */
#include "mdm_scep_int.h"
#include "mdm_text.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>

static mdm_step_t admin_error(mdm_scep_req_t *r, int status, const char *id,
                              const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mdm_step_t
admin_error(mdm_scep_req_t *r, int status, const char *id, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return mdm_tx_json_error(&r->base, status, id, buf);
}

/* "01:AB:cd" -> "1abcd"; -1 unless 1-40 hex digits. */
static int
norm_serial(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *p;

    for (p = in; *p; p++) {
        if (*p == ':' || *p == ' ') {
            continue;
        }
        if (mdm_hexval((unsigned char) *p) < 0 || o + 1 >= cap || o >= 40) {
            return -1;
        }
        if (o == 0 && *p == '0') {
            continue;
        }
        out[o++] = (char) tolower((unsigned char) *p);
    }
    if (o == 0) {
        /* all zeros (or empty) is no serial this CA issues */
        return -1;
    }
    out[o] = '\0';
    return 0;
}

static mdm_step_t
admin_start(mdm_scep_req_t *r)
{
    const mdm_scep_ca_t *ca = r->ca;
    unsigned char rnd[16], md[32];
    unsigned int mdlen;
    char hex[65];
    const char *p;
    long ttl;

    mdm_planb_reset(&r->base.pb);
    r->base.script = 0;
    if (r->admin_op == MDM_SCEP_ADMIN_CHALLENGE) {
        if (ca->challenge_mode != CH_DYNAMIC) {
            return admin_error(
                r, 400, "MDM08050",
                "one-time challenges need challenge \"dynamic\"");
        }
        if (r->admin_arg == NULL) {
            if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
                (r->admin_arg = malloc(33)) == NULL) {
                return mdm_tx_oom(&r->base);
            }
            mdm_hex(rnd, sizeof(rnd), r->admin_arg);
        }
        for (p = r->admin_arg; *p; p++) {
            if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e) {
                break;
            }
        }
        if (*p != '\0' || p == r->admin_arg ||
            strlen(r->admin_arg) > MDM_SCEP_MAX_CHAL) {
            return admin_error(r, 400, "MDM08050",
                               "a challenge is 1-%d printable ASCII characters "
                               "without spaces",
                               MDM_SCEP_MAX_CHAL);
        }
        ttl = r->admin_ttl > 0 ? r->admin_ttl : ca->challenge_ttl;
        if (ttl > INT_MAX || EVP_Digest(r->admin_arg, strlen(r->admin_arg), md,
                                        &mdlen, EVP_sha256(), NULL) != 1) {
            return admin_error(r, 400, "MDM08050", "bad challenge lifetime");
        }
        r->admin_ttl = ttl;
        mdm_hex(md, 32, hex);
        mdm_planb_cmd(&r->base.pb);
        mdm_planb_str(&r->base.pb, "SET");
        mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_chal, hex);
        mdm_planb_fmt(&r->base.pb, "%lld", (long long) r->now);
        mdm_planb_str(&r->base.pb, "NX");
        mdm_planb_str(&r->base.pb, "EX");
        mdm_planb_fmt(&r->base.pb, "%ld", ttl);
        return mdm_scep_plan_done(r, SST_ADMIN);
    }
    if (r->admin_op == MDM_SCEP_ADMIN_REVOKE) {
        if (r->admin_arg == NULL ||
            norm_serial(r->admin_arg, r->serial, sizeof(r->serial)) != 0) {
            return admin_error(r, 400, "MDM08050",
                               "a serial number is 1-40 hex digits");
        }
        r->vars[MDM_SCEP_VAR_SERIAL] = r->serial;
        mdm_tx_evalsha(&r->base, MDM_LUA_SCEP_REVOKE);
        mdm_planb_str(&r->base.pb, "2");
        mdm_planb_fmt(&r->base.pb, "%s%s", ca->k_cert, r->serial);
        mdm_planb_str(&r->base.pb, ca->k_revoked);
        mdm_planb_str(&r->base.pb, r->serial);
        return mdm_scep_plan_done(r, SST_ADMIN);
    }
    return admin_error(r, 400, "MDM08050", "unknown SCEP admin operation");
}

static mdm_step_t
admin_feed(mdm_scep_req_t *r, const redisReply *rep)
{
    if (r->admin_op == MDM_SCEP_ADMIN_CHALLENGE) {
        if (rep->type == REDIS_REPLY_NIL) {
            return admin_error(r, 409, "MDM08052",
                               "this challenge exists already");
        }
        if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "OK") != 0) {
            return mdm_scep_storage_failed(r, rep);
        }
        mdm_tx_log(&r->base, MDM_LOG_INFO, "MDM08031",
                   "SCEP one-time challenge created (valid %ld s)",
                   r->admin_ttl);
        return mdm_tx_json(&r->base, 201,
                           json_pack("{s:s,s:I}", "challenge", r->admin_arg,
                                     "ttl", (json_int_t) r->admin_ttl));
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        return mdm_scep_storage_failed(r, rep);
    }
    if (strcmp(rep->element[0]->str, "UNKNOWN") == 0) {
        return admin_error(r, 404, "MDM08051",
                           "no certificate with serial %s was issued here",
                           r->serial);
    }
    if (strcmp(rep->element[0]->str, "OK") != 0) {
        return mdm_scep_storage_failed(r, rep);
    }
    mdm_tx_log(&r->base, MDM_LOG_NOTICE, "MDM08032",
               "SCEP certificate %s revoked", r->serial);
    return mdm_tx_json(
        &r->base, 200,
        json_pack("{s:s,s:b}", "serial", r->serial, "revoked", 1));
}

/* ---------------------------------------------------------------- */
/* the transaction type                                             */

static mdm_step_t
admin_tx_start(mdm_tx_t *tx)
{
    return mdm_scep_tx_start(tx, admin_start);
}

static mdm_step_t
admin_tx_feed(mdm_tx_t *tx, struct redisReply *const *replies, size_t n)
{
    return mdm_scep_tx_feed(tx, replies, n, admin_feed);
}

static const mdm_tx_ops_t admin_ops = {"scep admin", admin_tx_start,
                                       admin_tx_feed, mdm_scep_tx_free};

mdm_scep_req_t *
mdm_scep_req_new_admin(const mdm_scep_ca_t *ca, mdm_scep_admin_op_t op,
                       const char *arg, long ttl)
{
    mdm_scep_req_t *r = mdm_scep_req_alloc(ca, &admin_ops);

    if (r == NULL) {
        return NULL;
    }
    r->admin_op = op;
    r->admin_ttl = ttl;
    if (arg && (r->admin_arg = mdm_strdup(arg)) == NULL) {
        mdm_scep_req_free(r);
        return NULL;
    }
    return r;
}

/* An admin refusal decided while routing: JSON like the others. */
static mdm_scep_req_t *
admin_refused(mdm_scep_req_t *r, int status, const char *id, const char *msg)
{
    if (r == NULL) {
        return NULL;
    }
    mdm_tx_pre_refuse(&r->base, status, MDM_LOG_NOTICE, id, 1, "%s", msg);
    return r;
}

mdm_scep_req_t *
mdm_scep_req_new_admin_http(const mdm_scep_ca_t *ca, const char *method,
                            size_t mlen, const char *path, size_t plen,
                            const unsigned char *body, size_t blen)
{
    mdm_scep_req_t *r;
    json_t *j = NULL, *v;
    json_error_t je;
    const char *chal = NULL;
    unsigned char serial[64];
    size_t slen;
    long ttl = 0;

    while (plen > 0 && path[0] == '/') {
        path++;
        plen--;
    }
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    if (plen == 9 && memcmp(path, "challenge", 9) == 0) {
        if (!mdm_scep_method_is(method, mlen, "POST")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use POST");
        }
        if (blen > 0) {
            j = json_loadb((const char *) body, blen, 0, &je);
            v = j ? json_object_get(j, "ttl") : NULL;
            if (j == NULL || !json_is_object(j) ||
                (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                       json_integer_value(v) > INT_MAX)) ||
                ((chal = json_string_value(json_object_get(j, "challenge"))) ==
                     NULL &&
                 json_object_get(j, "challenge") != NULL)) {
                json_decref(j);
                return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0),
                                     400, "MDM08050",
                                     "body: {\"challenge\": string, \"ttl\": "
                                     "seconds}, both optional");
            }
            ttl = v ? (long) json_integer_value(v) : 0;
        }
        r = mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_CHALLENGE, chal, ttl);
        json_decref(j);
        return r;
    }
    if (plen > 7 && memcmp(path, "revoke/", 7) == 0) {
        if (!mdm_scep_method_is(method, mlen, "POST")) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 405,
                                 "MDM08054", "use POST");
        }
        if (plen - 7 >= sizeof(serial) ||
            mdm_pct_decode(path + 7, plen - 7, serial, &slen, 0) != 0) {
            return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 400,
                                 "MDM08050", "bad serial number");
        }
        return mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_REVOKE,
                                      (const char *) serial, 0);
    }
    return admin_refused(mdm_scep_req_new_admin(ca, 0, NULL, 0), 404,
                         "MDM08053", "no such SCEP admin endpoint");
}
