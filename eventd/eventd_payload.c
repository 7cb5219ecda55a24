/*
 * The body of a delivery and its signature.
 *
 *   {"endpoint":"audit","events":[
 *     {"stream_id":"1733050000123-0","time":"2024-12-01T10:46:40.123Z",
 *      "fields":{"kind":"checkin","id":"UDID","type":"Idle",...}}, ...]}
 *
 * Every field of the stream entry is carried as it is (the set differs by
 * kind and grows with the server); the stream id is the event's identity
 * (a receiver deduplicates on it) and its order; the time is the stream
 * id's milliseconds. The signature is HMAC-SHA256 over the timestamp
 * header's value, ".", and the body's exact bytes.
 */
#include "eventd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/params.h>

void *
eventd_payload_new(void)
{
    return json_array();
}

void
eventd_payload_drop(void *events)
{
    json_decref(events);
}

/* A value that is not UTF-8 (the stream is binary-safe) goes out with
 * its bytes >= 0x80 replaced by '?': JSON strings are UTF-8. */
static json_t *
string_value(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    char *copy;
    size_t i;

    if (v != NULL) {
        return v;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (i = 0; i < len; i++) {
        copy[i] = (unsigned char) s[i] >= 0x80 ? '?' : s[i];
    }
    v = json_stringn(copy, len);
    free(copy);
    return v;
}

static int
iso_time(const char *sid, char *out, size_t outlen)
{
    eventd_sid_t id;
    struct tm tm;
    time_t t;

    if (eventd_sid_parse(sid, &id) != 0) {
        return -1;
    }
    t = (time_t) (id.ms / 1000);
    if (gmtime_r(&t, &tm) == NULL) {
        return -1;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (unsigned) (id.ms % 1000));
    return 0;
}

int
eventd_payload_add(void *events, const char *sid, const redisReply *fields)
{
    json_t *ev, *f;
    char when[80];
    size_t i;

    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY ||
        iso_time(sid, when, sizeof(when)) != 0) {
        return -1;
    }
    f = json_object();
    ev = json_pack("{s:s, s:s}", "stream_id", sid, "time", when);
    if (f == NULL || ev == NULL) {
        json_decref(f);
        json_decref(ev);
        return -1;
    }
    for (i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        json_t *jv;
        char name[256];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            k->len >= sizeof(name)) {
            continue;
        }
        /* a field name with a NUL or not UTF-8 cannot be a JSON key */
        memcpy(name, k->str, k->len);
        name[k->len] = '\0';
        if (strlen(name) != k->len ||
            (jv = string_value(v->str, v->len)) == NULL) {
            continue;
        }
        if (json_object_set_new(f, name, jv) != 0) {
            continue;
        }
    }
    if (json_object_set_new(ev, "fields", f) != 0 ||
        json_array_append_new(events, ev) != 0) {
        json_decref(ev);
        return -1;
    }
    return 0;
}

char *
eventd_payload_finish(void *events, const char *endpoint)
{
    json_t *top;
    char *s;

    top = json_pack("{s:s, s:o}", "endpoint", endpoint, "events", events);
    if (top == NULL) {
        return NULL;
    }
    /* compact, keys in insertion order: the receiver verifies the exact
     * bytes, never a re-encoding */
    s = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(top);
    return s;
}

int
eventd_sign(const unsigned char *secret, size_t secret_len, const char *ts,
            const char *body, size_t body_len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0, i;
    EVP_MAC *m;
    EVP_MAC_CTX *ctx;
    OSSL_PARAM params[2];
    size_t n = 0;
    int ok;

    if (outlen < 7 + 64 + 1) {
        return -1;
    }
    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_MAC_init(ctx, secret, secret_len, params) == 1 &&
         EVP_MAC_update(ctx, (const unsigned char *) ts, strlen(ts)) == 1 &&
         EVP_MAC_update(ctx, (const unsigned char *) ".", 1) == 1 &&
         EVP_MAC_update(ctx, (const unsigned char *) body, body_len) == 1 &&
         EVP_MAC_final(ctx, mac, &n, sizeof(mac)) == 1 && n == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    if (!ok) {
        return -1;
    }
    maclen = (unsigned int) n;
    memcpy(out, "sha256=", 7);
    for (i = 0; i < maclen; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 2 * maclen] = '\0';
    return 0;
}
