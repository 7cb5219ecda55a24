/*
 * mem_bench: Redis memory per idle enrollment. Creates N enrollments
 * through the core's own scripts (Authenticate + TokenUpdate with
 * realistic macOS values, pipelined in batches), adds what certificate
 * binding stores (the record's cert field and the global claim key), and
 * reports INFO memory before and after. The shared events stream is off
 * here: it is capped and not per enrollment.
 *
 *   mem_bench HOST:PORT N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "mdm.h"
#include "mdm_sync.h"
#include "sim.h"

#define BATCH 500

static long long
used_memory(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO memory");
    const char *p = r && r->str ? strstr(r->str, "used_memory:") : NULL;
    long long v = p ? atoll(p + 12) : -1;

    freeReplyObject(r);
    return v;
}

static int
run_batch(redisContext *c, mdm_req_t **reqs, size_t n)
{
    size_t i, j;
    void *rep;

    for (i = 0; i < n; i++) {
        const mdm_plan_t *p = mdm_req_plan(reqs[i]);

        for (j = 0; j < p->ncmds; j++) {
            redisAppendCommandArgv(c, p->cmds[j].argc, p->cmds[j].argv,
                                   p->cmds[j].argvlen);
        }
    }
    for (i = 0; i < n; i++) {
        const mdm_plan_t *p = mdm_req_plan(reqs[i]);
        redisReply *keep = NULL;

        for (j = 0; j < p->ncmds; j++) {
            if (redisGetReply(c, &rep) != REDIS_OK) {
                return -1;
            }
            if (j == 0) {
                keep = rep;
            } else {
                freeReplyObject(rep);
            }
        }
        if (mdm_req_feed(reqs[i], &keep, 1) != MDM_STEP_DONE ||
            mdm_req_response(reqs[i])->status != 200) {
            /* NOSCRIPT on the very first batch: run it again, blocking */
            if (mdm_req_response(reqs[i])->status == 0) {
                mdm_exec_sync(c, reqs[i]);
            }
        }
        freeReplyObject(keep);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    char host[256], err[256], udid[64], magic[64], hash[65], token[33];
    char der[900];
    const char *colon;
    long n, i, k;
    long long before, after;
    mdm_conf_t *conf;
    redisContext *c;
    mdm_req_t *reqs[BATCH];
    char *bodies[BATCH];
    size_t len, nb;
    int pass, with_der = argc == 4 && strcmp(argv[3], "der") == 0;

    if ((argc != 3 && !with_der) || (colon = strrchr(argv[1], ':')) == NULL) {
        fprintf(stderr, "usage: mem_bench HOST:PORT N [der]\n");
        return 2;
    }
    n = atol(argv[2]);
    snprintf(host, sizeof(host), "%.*s", (int) (colon - argv[1]), argv[1]);
    c = redisConnect(host, atoi(colon + 1));
    if (c == NULL || c->err) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 2;
    }
    conf = mdm_conf_new();
    if (mdm_conf_set(conf, "identity", "none", err, sizeof(err)) ||
        mdm_conf_set(conf, "binding", "off", err, sizeof(err)) ||
        mdm_conf_set(conf, "events_maxlen", "0", err, sizeof(err)) ||
        mdm_conf_finish(conf, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    before = used_memory(c);

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i += BATCH) {
            nb = (size_t) (n - i < BATCH ? n - i : BATCH);
            for (k = 0; k < (long) nb; k++) {
                snprintf(udid, sizeof(udid), "%08lX-0000-4000-8000-%012lX",
                         i + k, (i + k) * 7);
                snprintf(magic, sizeof(magic), "%08lX-1111-4111-8111-%012lX",
                         i + k, (i + k) * 3);
                snprintf(token, sizeof(token), "%032lx", (i + k) * 977);
                if (pass == 0) {
                    bodies[k] = sim_plist(
                        &len, "MessageType", "Authenticate", "UDID", udid,
                        "Topic", "com.apple.mgmt.External.5f3c2e18-3e67-4b",
                        "SerialNumber", "C02XL0GHJGH5", "Model", "Mac14,2",
                        "ModelName", "MacBook Air", "DeviceName",
                        "Alice's MacBook Air", "OSVersion", "14.5",
                        "BuildVersion", "23F79", "ProductName", "Mac14,2",
                        NULL);
                } else {
                    bodies[k] = sim_plist(
                        &len, "MessageType", "TokenUpdate", "UDID", udid,
                        "Topic", "com.apple.mgmt.External.5f3c2e18-3e67-4b",
                        "Token", token, "PushMagic", magic, NULL);
                }
                reqs[k] = mdm_req_new(conf, MDM_EP_CHECKIN);
                mdm_req_set_body(reqs[k], (unsigned char *) bodies[k], len);
                mdm_req_start(reqs[k]);
                if (pass == 1) {
                    /* what strict binding adds: cert field + claim key */
                    snprintf(hash, sizeof(hash), "%064lx",
                             (unsigned long) (i + k) * 2654435761ul);
                    /* with "der" (store_cert on): the bound certificate's
                     * DER beside the record (encrypted profiles); a
                     * SCEP-issued RSA-2048 certificate is ~900 bytes */
                    memset(der, 'a' + (int) ((i + k) % 26), sizeof(der));
                    redisAppendCommand(c, "HSET mdm:{%s}:rec cert %s", udid,
                                       hash);
                    if (with_der) {
                        redisAppendCommand(c, "SET mdm:{%s}:der %b", udid, der,
                                           sizeof(der));
                    } else {
                        redisAppendCommand(c, "PING");
                    }
                    redisAppendCommand(c, "SET mdm:cert:%s %s", hash, udid);
                }
            }
            if (pass == 1) {
                void *r;

                for (k = 0; k < 3 * (long) nb; k++) {
                    redisGetReply(c, &r);
                    freeReplyObject(r);
                }
            }
            if (run_batch(c, reqs, nb) != 0) {
                fprintf(stderr, "redis connection failed\n");
                return 1;
            }
            for (k = 0; k < (long) nb; k++) {
                mdm_req_free(reqs[k]);
                free(bodies[k]);
            }
        }
    }
    after = used_memory(c);
    {
        redisReply *r = redisCommand(c, "DBSIZE");

        printf("enrollments: %ld, keys: %lld\n", n, r->integer);
        freeReplyObject(r);
    }
    printf("used_memory before: %lld, after: %lld\n", before, after);
    printf("bytes per idle enrollment: %.0f (target < 1024)\n",
           (double) (after - before) / n);
    redisFree(c);
    mdm_conf_free(conf);
    return 0;
}
