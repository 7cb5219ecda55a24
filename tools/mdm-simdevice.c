/*
 * mdm-simdevice: a scripted device that talks to the core directly (no
 * web server) against a real Redis. Used by the demo and by benchmarks.
 *
 *   mdm-simdevice --redis HOST:PORT --pki DIR --udid U [--topic T] STEP
 *   STEP: enroll | poll | checkout
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

#include "mdm.h"
#include "sim.h"

static void
log_stderr(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    fprintf(stderr, "  core: %s %s\n", id, msg);
}

/* body and *len come from sim_plist(): pass len by pointer, so that it is
 * read after the body was built (argument order is unspecified in C). */
static int
step(redisContext *rc, const mdm_conf_t *conf, mdm_endpoint_t ep,
     const sim_device_t *d, const char *what, char *body, const size_t *len,
     sim_resp_t *out)
{
    int st = sim_send(rc, conf, ep, d, body, *len, out);

    printf("device -> %-28s <- HTTP %d%s%s%s%s\n", what, st,
           out->body_len ? ", command " : "",
           out->body_len ? out->next_uuid : "",
           out->error_id[0] ? ", refused: " : "", out->error_id);
    free(body);
    return st;
}

int
main(int argc, char **argv)
{
    const char *redis = "127.0.0.1:6379", *pki = NULL, *udid = NULL;
    const char *topic = "com.apple.mgmt.External.demo", *prefix = "mdm:";
    const char *what = NULL;
    char cert[512], key[512], ca[512], err[512], *colon, host[256];
    struct timeval tv = {5, 0};
    mdm_conf_t *conf;
    sim_device_t dev;
    sim_resp_t r;
    redisContext *rc;
    size_t len;
    int i, rv = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            redis = argv[++i];
        } else if (strcmp(argv[i], "--pki") == 0 && i + 1 < argc) {
            pki = argv[++i];
        } else if (strcmp(argv[i], "--udid") == 0 && i + 1 < argc) {
            udid = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            topic = argv[++i];
        } else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (argv[i][0] != '-' && what == NULL) {
            what = argv[i];
        } else {
            what = NULL;
            break;
        }
    }
    if (what == NULL || pki == NULL || udid == NULL) {
        fprintf(stderr, "usage: mdm-simdevice --redis HOST:PORT --pki DIR "
                        "--udid UDID [--topic T] [--prefix P] "
                        "enroll|poll|checkout\n");
        return 2;
    }
    snprintf(cert, sizeof(cert), "%s/dev1.pem", pki);
    snprintf(key, sizeof(key), "%s/dev1.key", pki);
    snprintf(ca, sizeof(ca), "%s/cafile.pem", pki);
    if (sim_device_load(&dev, cert, key) != 0) {
        fprintf(stderr, "mdm-simdevice: cannot load %s / %s\n", cert, key);
        return 2;
    }
    conf = mdm_conf_new();
    if (mdm_conf_set(conf, "ca_file", ca, err, sizeof(err)) != 0 ||
        mdm_conf_set(conf, "prefix", prefix, err, sizeof(err)) != 0 ||
        mdm_conf_set(conf, "topic", topic, err, sizeof(err)) != 0 ||
        mdm_conf_finish(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "mdm-simdevice: %s\n", err);
        return 2;
    }
    colon = strrchr(redis, ':');
    if (colon == NULL) {
        fprintf(stderr, "mdm-simdevice: --redis HOST:PORT\n");
        return 2;
    }
    snprintf(host, sizeof(host), "%.*s", (int) (colon - redis), redis);
    rc = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (rc == NULL || rc->err) {
        fprintf(stderr, "mdm-simdevice: cannot connect to %s\n", redis);
        return 2;
    }
    redisSetTimeout(rc, tv);
    (void) log_stderr;

    if (strcmp(what, "enroll") == 0) {
        if (step(rc, conf, MDM_EP_CHECKIN, &dev, "Authenticate",
                 sim_plist(&len, "MessageType", "Authenticate", "UDID", udid,
                           "Topic", topic, "SerialNumber", "C02DEMO0001",
                           "Model", "Mac14,2", "OSVersion", "14.5", NULL),
                 &len, &r) != 200) {
            rv = 1;
        }
        sim_resp_free(&r);
        if (step(rc, conf, MDM_EP_CHECKIN, &dev, "TokenUpdate",
                 sim_plist(&len, "MessageType", "TokenUpdate", "UDID", udid,
                           "Topic", topic, "Token", "demo-push-token",
                           "PushMagic", "5F1A6B3C-DEMO", NULL),
                 &len, &r) != 200) {
            rv = 1;
        }
        sim_resp_free(&r);
    } else if (strcmp(what, "poll") == 0) {
        char uuid[64];

        if (step(rc, conf, MDM_EP_COMMAND, &dev, "Idle",
                 sim_plist(&len, "UDID", udid, "Status", "Idle", NULL), &len,
                 &r) != 200) {
            rv = 1;
        }
        while (rv == 0 && r.body_len > 0) {
            char label[128];

            snprintf(uuid, sizeof(uuid), "%s", r.next_uuid);
            sim_resp_free(&r);
            snprintf(label, sizeof(label), "Acknowledged %.13s", uuid);
            if (step(rc, conf, MDM_EP_COMMAND, &dev, label,
                     sim_plist(&len, "UDID", udid, "Status", "Acknowledged",
                               "CommandUUID", uuid, "RequestType", "demo",
                               NULL),
                     &len, &r) != 200) {
                rv = 1;
            }
        }
        sim_resp_free(&r);
    } else if (strcmp(what, "checkout") == 0) {
        if (step(rc, conf, MDM_EP_CHECKIN, &dev, "CheckOut",
                 sim_plist(&len, "MessageType", "CheckOut", "UDID", udid,
                           "Topic", topic, NULL),
                 &len, &r) != 200) {
            rv = 1;
        }
        sim_resp_free(&r);
    } else {
        fprintf(stderr, "mdm-simdevice: unknown step %s\n", what);
        rv = 2;
    }
    redisFree(rc);
    mdm_conf_free(conf);
    sim_device_free(&dev);
    return rv;
}
