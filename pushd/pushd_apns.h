/* APNs requests of mdm-pushd (pushd_apns.c). */
#ifndef PUSHD_APNS_H
#define PUSHD_APNS_H

#include "pushd.h"

enum { PUSHD_STARTED = 0, PUSHD_BAD_TOKEN, PUSHD_BAD_MAGIC, PUSHD_NOMEM };

typedef enum {
    PUSHD_OK = 0, /* 200 */
    PUSHD_DEAD,   /* 410, 400 BadDeviceToken: token gone */
    PUSHD_CERT,   /* 403: the certificate is refused */
    PUSHD_RETRY,  /* 429, 5xx, connection errors, GOAWAY */
    PUSHD_FAILED  /* anything else: final, not retried */
} pushd_class_t;

/** Start the request of j (token, magic, cert set) on multi. */
int pushd_apns_start(CURLM *multi, const pushd_conf_t *conf, pushd_job_t *j);

/**
 * The transfer of j is done: classify it, fill j->http, result, reason,
 * apns_id, mark_dead; the easy handle goes back to the pool. *h2 is 0 when
 * the answer came over HTTP/1.x.
 */
pushd_class_t pushd_apns_finish(CURLM *multi, pushd_job_t *j, CURLcode code,
                                int *h2);

void pushd_apns_cleanup(void);

#endif
