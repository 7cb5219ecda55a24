/*
 * One APNs request per push on libcurl's multi interface, and what its
 * answer means (PROTOCOL.md §7, Apple's "Handling notification responses").
 */
#include "pushd_apns.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

/* Easy handles are reused without curl_easy_reset(): setting a handle up
 * from scratch (the certificate and key blobs are copied into it) costs
 * more than the push itself at high rates. Each handle remembers the
 * certificate load it was set up for; a reload (new gen) sets it again. */
#define POOL_MAX 1024
static struct {
    CURL *e;
    const pushd_cert_t *cert;
    unsigned gen;
} pool[POOL_MAX];
static size_t npool;

static size_t
on_header(char *buf, size_t size, size_t n, void *data)
{
    pushd_job_t *j = data;
    size_t len = size * n, v;

    if (len > 8 && strncasecmp(buf, "apns-id:", 8) == 0) {
        for (v = 8; v < len && buf[v] == ' '; v++) {
        }
        while (len > v && isspace((unsigned char) buf[len - 1])) {
            len--;
        }
        if (len - v < sizeof(j->apns_id)) {
            memcpy(j->apns_id, buf + v, len - v);
            j->apns_id[len - v] = '\0';
        }
    }
    return size * n;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *data)
{
    pushd_job_t *j = data;
    size_t len = size * n, room = sizeof(j->resp) - 1 - j->resp_len;

    /* an error body is a small JSON object; the rest is not needed */
    if (len > room) {
        len = room;
    }
    memcpy(j->resp + j->resp_len, buf, len);
    j->resp_len += len;
    j->resp[j->resp_len] = '\0';
    return size * n;
}

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
pushd_apns_start(CURLM *multi, const pushd_conf_t *conf, pushd_job_t *j)
{
    long long exp =
        conf->expiration ? (long long) time(NULL) + conf->expiration : 0;
    CURL *e;
    int same = 0;

    if (!valid_token(j->token)) {
        return PUSHD_BAD_TOKEN;
    }
    if (!valid_magic(j->magic)) {
        return PUSHD_BAD_MAGIC;
    }
    free(j->url);
    free(j->body);
    j->url = j->body = NULL;
    if (asprintf(&j->url, "%s/3/device/%s", conf->url, j->token) < 0 ||
        asprintf(&j->body, "{\"mdm\":\"%s\"}", j->magic) < 0) {
        j->url = j->body = NULL;
        return PUSHD_NOMEM;
    }
    curl_slist_free_all(j->headers);
    j->headers = NULL;
    {
        char h[3][300];
        const char *fixed[] = {"apns-push-type: mdm",
                               "content-type: application/json", "accept:"};
        struct curl_slist *n;
        size_t i;

        snprintf(h[0], sizeof(h[0]), "apns-topic: %s", j->cert->topic);
        snprintf(h[1], sizeof(h[1]), "apns-priority: %d", conf->priority);
        snprintf(h[2], sizeof(h[2]), "apns-expiration: %lld", exp);
        for (i = 0; i < 6; i++) {
            n = curl_slist_append(j->headers, i < 3 ? h[i] : fixed[i - 3]);
            if (n == NULL) {
                return PUSHD_NOMEM;
            }
            j->headers = n;
        }
    }
    if (npool > 0) {
        npool--;
        e = pool[npool].e;
        same = pool[npool].cert == j->cert && pool[npool].gen == j->cert->gen;
    } else {
        e = curl_easy_init();
    }
    if (e == NULL) {
        return PUSHD_NOMEM;
    }
    j->apns_id[0] = '\0';
    j->resp_len = 0;
    j->resp[0] = '\0';
    j->http = 0;
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(j->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    j->easy = e;
    j->easy_gen = j->cert->gen;
    if (same) {
        goto add;
    }
    /* wait for a connection that can multiplex instead of opening one
     * per stream: a few long-lived connections, as APNs asks */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    {
        struct curl_blob cert = {j->cert->pem_cert, j->cert->pem_cert_len,
                                 CURL_BLOB_COPY};
        struct curl_blob key = {j->cert->pem_key, j->cert->pem_key_len,
                                CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (conf->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, conf->ca_file);
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, conf->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 3600L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    if (getenv("MDM_PUSHD_CURL_VERBOSE")) {
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
add:
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        j->easy = NULL;
        return PUSHD_NOMEM;
    }
    return PUSHD_STARTED;
}

static void
reason_from_body(pushd_job_t *j, const char *dflt)
{
    json_t *root = json_loads(j->resp, 0, NULL), *r;

    r = root ? json_object_get(root, "reason") : NULL;
    snprintf(j->reason, sizeof(j->reason), "%s",
             json_is_string(r) ? json_string_value(r) : dflt);
    json_decref(root);
}

pushd_class_t
pushd_apns_finish(CURLM *multi, pushd_job_t *j, CURLcode code, int *h2)
{
    CURL *e = j->easy;
    long ver = 0;

    curl_multi_remove_handle(multi, e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &j->http);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver);
    *h2 = ver == CURL_HTTP_VERSION_2_0 || j->http == 0;
    if (npool < POOL_MAX) {
        pool[npool].e = e;
        pool[npool].cert = j->cert;
        pool[npool].gen = j->easy_gen;
        npool++;
    } else {
        curl_easy_cleanup(e);
    }
    j->easy = NULL;
    j->mark_dead = 0;

    if (code != CURLE_OK) {
        /* connection refused or reset, TLS failure, GOAWAY, timeout */
        j->http = 0;
        snprintf(j->reason, sizeof(j->reason), "curl: %s",
                 curl_easy_strerror(code));
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
        reason_from_body(j, "Unregistered");
        snprintf(j->result, sizeof(j->result), "dead");
        j->mark_dead = 1;
        return PUSHD_DEAD;
    case 400:
        reason_from_body(j, "BadRequest");
        if (strcmp(j->reason, "BadDeviceToken") == 0) {
            snprintf(j->result, sizeof(j->result), "dead");
            j->mark_dead = 1;
            return PUSHD_DEAD;
        }
        snprintf(j->result, sizeof(j->result), "failed");
        return PUSHD_FAILED;
    case 403:
        reason_from_body(j, "Forbidden");
        snprintf(j->result, sizeof(j->result), "failed");
        return PUSHD_CERT;
    case 429:
        reason_from_body(j, "TooManyRequests");
        snprintf(j->result, sizeof(j->result), "retry");
        return PUSHD_RETRY;
    default:
        if (j->http >= 500) {
            reason_from_body(j, "ServerError");
            snprintf(j->result, sizeof(j->result), "retry");
            return PUSHD_RETRY;
        }
        {
            char d[24];
            snprintf(d, sizeof(d), "http-%ld", j->http);
            reason_from_body(j, d);
        }
        snprintf(j->result, sizeof(j->result), "failed");
        return PUSHD_FAILED;
    }
}

void
pushd_apns_cleanup(void)
{
    while (npool > 0) {
        curl_easy_cleanup(pool[--npool].e);
    }
}
