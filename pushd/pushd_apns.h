/* APNs requests of mdm-pushd (pushd_apns.c). */
#ifndef PUSHD_APNS_H
#define PUSHD_APNS_H

#include "pushd.h"
#include "pushd_h2.h"

enum {
    PUSHD_STARTED = 0,
    PUSHD_BAD_TOKEN,
    PUSHD_BAD_MAGIC,
    PUSHD_NOMEM,
    PUSHD_BUSY /* every connection of the topic is full: queue it */
};

typedef enum {
    PUSHD_OK = 0, /* 200 */
    PUSHD_DEAD,   /* 410, 400 BadDeviceToken: token gone */
    PUSHD_CERT,   /* 403: the certificate is refused */
    PUSHD_RETRY,  /* 429, 5xx, connection errors, GOAWAY */
    PUSHD_FAILED  /* anything else: final, not retried */
} pushd_class_t;

/** Start the request of j (token, magic, cert set) on the client h2. */
int pushd_apns_start(pushd_h2_t *h2, const pushd_conf_t *conf, pushd_job_t *j);

/**
 * The request of j ended with r: classify it, fill j->http, result,
 * reason, apns_id, mark_dead.
 */
pushd_class_t pushd_apns_finish(pushd_job_t *j, const pushd_h2_result_t *r);

#endif
