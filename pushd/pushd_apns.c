/*
 * One APNs request per push, sent with the HTTP/2 client (pushd_h2.c),
 * and what its answer means (PROTOCOL.md §7, Apple's "Handling notification
 * responses").
 */
#include "pushd_apns.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

static int
valid_token(const char *t)
{
    size_t n = strlen(t), i;

    if (n < 2 || n > 400 || n % 2) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!isxdigit((unsigned char) t[i])) {
            return 0;
        }
    }
    return 1;
}

/* The body goes out as {"mdm":"<magic>"} without escaping, so only
 * characters that need none are accepted (PushMagic is a UUID). */
static int
valid_magic(const char *m)
{
    size_t n = strlen(m), i;

    if (n == 0 || n > 255) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) m[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            return 0;
        }
    }
    return 1;
}

int
pushd_apns_start(pushd_h2_t *h2, const pushd_conf_t *conf, pushd_job_t *j)
{
    long long exp =
        conf->expiration ? (long long) time(NULL) + conf->expiration : 0;
    char path[420], body[300], prio[8], expv[24], len[8];
    pushd_h2_header_t h[] = {
        {"apns-topic", j->cert->topic},
        {"apns-push-type", "mdm"},
        {"apns-priority", prio},
        {"apns-expiration", expv},
        {"content-type", "application/json"},
        {"content-length", len},
    };
    int n, rc;

    if (!valid_token(j->token)) {
        return PUSHD_BAD_TOKEN;
    }
    if (!valid_magic(j->magic)) {
        return PUSHD_BAD_MAGIC;
    }
    snprintf(path, sizeof(path), "/3/device/%s", j->token);
    n = snprintf(body, sizeof(body), "{\"mdm\":\"%s\"}", j->magic);
    snprintf(prio, sizeof(prio), "%d", conf->priority);
    snprintf(expv, sizeof(expv), "%lld", exp);
    snprintf(len, sizeof(len), "%d", n);
    j->apns_id[0] = '\0';
    j->http = 0;
    rc = pushd_h2_submit(h2, j->cert, path, h, sizeof(h) / sizeof(h[0]), body,
                         (size_t) n, j);
    if (rc == PUSHD_H2_BUSY) {
        return PUSHD_BUSY;
    }
    return rc == 0 ? PUSHD_STARTED : PUSHD_NOMEM;
}

static void
reason_from_body(pushd_job_t *j, const char *body, const char *dflt)
{
    json_t *root = body[0] ? json_loads(body, 0, NULL) : NULL, *r;

    r = root ? json_object_get(root, "reason") : NULL;
    snprintf(j->reason, sizeof(j->reason), "%s",
             json_is_string(r) ? json_string_value(r) : dflt);
    json_decref(root);
}

pushd_class_t
pushd_apns_finish(pushd_job_t *j, const pushd_h2_result_t *r)
{
    const char *body = r->body;

    j->mark_dead = 0;
    j->http = r->status;
    snprintf(j->apns_id, sizeof(j->apns_id), "%s", r->apns_id);
    if (r->kind != PUSHD_H2_ANSWERED) {
        /* connection refused or reset, TLS failure, GOAWAY, timeout */
        j->http = 0;
        snprintf(j->reason, sizeof(j->reason), "%s", r->why);
        snprintf(j->result, sizeof(j->result), "retry");
        return PUSHD_RETRY;
    }
    if (j->http == 200) {
        snprintf(j->result, sizeof(j->result), "ok");
        j->reason[0] = '\0';
        return PUSHD_OK;
    }
    switch (j->http) {
    case 410:
        reason_from_body(j, body, "Unregistered");
        snprintf(j->result, sizeof(j->result), "dead");
        j->mark_dead = 1;
        return PUSHD_DEAD;
    case 400:
        reason_from_body(j, body, "BadRequest");
        if (strcmp(j->reason, "BadDeviceToken") == 0) {
            snprintf(j->result, sizeof(j->result), "dead");
            j->mark_dead = 1;
            return PUSHD_DEAD;
        }
        snprintf(j->result, sizeof(j->result), "failed");
        return PUSHD_FAILED;
    case 403:
        reason_from_body(j, body, "Forbidden");
        snprintf(j->result, sizeof(j->result), "failed");
        return PUSHD_CERT;
    case 429:
        reason_from_body(j, body, "TooManyRequests");
        snprintf(j->result, sizeof(j->result), "retry");
        return PUSHD_RETRY;
    default:
        if (j->http >= 500) {
            reason_from_body(j, body, "ServerError");
            snprintf(j->result, sizeof(j->result), "retry");
            return PUSHD_RETRY;
        }
        {
            char d[24];
            snprintf(d, sizeof(d), "http-%ld", j->http);
            reason_from_body(j, body, d);
        }
        snprintf(j->result, sizeof(j->result), "failed");
        return PUSHD_FAILED;
    }
}
