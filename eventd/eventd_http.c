/*
 * One delivery: a POST of a batch on libcurl's multi interface, signed
 * afresh on every attempt (the timestamp is the attempt's), and what its
 * answer means. Any 2xx is a delivery; anything else (other statuses,
 * redirects, connection, TLS and timeout errors) is a failure the
 * endpoint retries.
 */
#include "eventd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
on_body(char *buf, size_t size, size_t n, void *data)
{
    eventd_ep_t *ep = data;
    size_t len = size * n, room = sizeof(ep->resp) - 1 - ep->resp_len;

    /* only the start of an answer is kept, for the log */
    if (len > room) {
        len = room;
    }
    memcpy(ep->resp + ep->resp_len, buf, len);
    ep->resp_len += len;
    ep->resp[ep->resp_len] = '\0';
    return size * n;
}

static int
add_header(struct curl_slist **l, const char *fmt, const char *v)
{
    char line[512];
    struct curl_slist *n;

    snprintf(line, sizeof(line), fmt, v);
    n = curl_slist_append(*l, line);
    if (n == NULL) {
        return -1;
    }
    *l = n;
    return 0;
}

int
eventd_http_start(CURLM *multi, eventd_ep_t *ep, const char *consumer)
{
    const eventd_ep_conf_t *c = ep->conf;
    char ts[24], sig[80], count[24], attempt[24], ua[64];
    CURL *e;

    snprintf(ts, sizeof(ts), "%lld", (long long) time(NULL));
    if (eventd_sign(c->secret, c->secret_len, ts, ep->body, ep->body_len, sig,
                    sizeof(sig)) != 0) {
        return -1;
    }
    snprintf(count, sizeof(count), "%zu", ep->nevents);
    snprintf(attempt, sizeof(attempt), "%d", ep->attempts + 1);
    snprintf(ua, sizeof(ua), "mdm-eventd/%s", EVENTD_VERSION);
    curl_slist_free_all(ep->headers);
    ep->headers = NULL;
    if (add_header(&ep->headers, "Content-Type: %s", "application/json") ||
        add_header(&ep->headers, "User-Agent: %s", ua) ||
        add_header(&ep->headers, "X-MDM-Event-Id: %s", ep->ids[0]) ||
        add_header(&ep->headers, "X-MDM-Event-Count: %s", count) ||
        add_header(&ep->headers, "X-MDM-Attempt: %s", attempt) ||
        add_header(&ep->headers, "X-MDM-Consumer: %s", consumer) ||
        add_header(&ep->headers, "X-MDM-Timestamp: %s", ts) ||
        add_header(&ep->headers, "X-MDM-Signature: %s", sig) ||
        add_header(&ep->headers, "%s", "Expect:")) {
        return -1;
    }
    /* one handle per endpoint, kept: its connection stays open between
     * deliveries */
    if (ep->easy == NULL) {
        ep->easy = curl_easy_init();
        if (ep->easy == NULL) {
            return -1;
        }
        e = ep->easy;
        curl_easy_setopt(e, CURLOPT_URL, c->url);
        curl_easy_setopt(e, CURLOPT_PRIVATE, ep);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         c->timeout_ms < 10000 ? c->timeout_ms : 10000L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                         (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, ep);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ep->error);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
        if (c->ca_file) {
            curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
        }
    }
    e = ep->easy;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, ep->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) ep->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, ep->headers);
    ep->error[0] = '\0';
    ep->resp[0] = '\0';
    ep->resp_len = 0;
    ep->http = 0;
    ep->retry_after = 0;
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        return -1;
    }
    return 0;
}

int
eventd_http_done(CURLM *multi, eventd_ep_t *ep, CURLcode rc, char *why,
                 size_t whylen)
{
    curl_off_t ra = 0;
    size_t i;

    curl_multi_remove_handle(multi, ep->easy);
    curl_easy_getinfo(ep->easy, CURLINFO_RESPONSE_CODE, &ep->http);
    if (curl_easy_getinfo(ep->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
        ra > 0) {
        ep->retry_after = (long) (ra > 86400 ? 86400 : ra);
    }
    if (rc != CURLE_OK) {
        /* TLS verification failures land here too (CURLE_PEER_FAILED_...) */
        snprintf(why, whylen, "%s: %s", curl_easy_strerror(rc),
                 ep->error[0] ? ep->error : "-");
        return 0;
    }
    if (ep->http >= 200 && ep->http < 300) {
        return 1;
    }
    for (i = 0; i < ep->resp_len; i++) {
        if (!isprint((unsigned char) ep->resp[i])) {
            ep->resp[i] = ' ';
        }
    }
    snprintf(why, whylen, "HTTP %ld%s%.120s", ep->http,
             ep->resp_len ? ": " : "", ep->resp);
    return 0;
}

void
eventd_http_cleanup(CURLM *multi, eventd_ep_t *ep)
{
    if (ep->easy) {
        curl_multi_remove_handle(multi, ep->easy);
        curl_easy_cleanup(ep->easy);
        ep->easy = NULL;
    }
    curl_slist_free_all(ep->headers);
    ep->headers = NULL;
}
