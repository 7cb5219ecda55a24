/*
 * core_bench: the core's per-request CPU cost for an Idle report signed
 * with Mdm-Signature (verify + parse + plan + reply handling, chain check
 * cached), next to one bare RSA-2048 PKCS#1 SHA-256 verification measured
 * in the same run. No Redis: the reply is synthesized.
 *
 *   core_bench PKI_DIR [SECONDS]
 *   core_bench PKI_DIR -n COUNT [rsa]
 *
 * The second form runs exactly COUNT requests (or, with "rsa", COUNT bare
 * verifications) and prints nothing else: for instruction counts under
 * callgrind, which are repeatable on a noisy machine where times are not
 * (bench/core.sh runs two counts and takes the difference per request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <openssl/evp.h>

#include "mdm.h"
#include "sim.h"

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    char cert[512], key[512], ca[512], err[512];
    double secs = argc > 2 ? atof(argv[2]) : 3.0, t0, t, core_us, rsa_us;
    long count = -1;
    int rsa_only = 0;
    sim_device_t dev;
    mdm_conf_t *conf;
    size_t len, siglen;
    char *body, *sig;
    unsigned char rsig[512];
    size_t rsiglen = sizeof(rsig);
    long n, i;
    EVP_MD_CTX *md;
    redisReply ok = {0}, arr = {0}, *elems[1] = {&ok}, *reps[1] = {&arr};

    if (argc < 2) {
        fprintf(stderr,
                "usage: core_bench PKI_DIR [SECONDS | -n COUNT [rsa]]\n");
        return 2;
    }
    if (argc > 3 && strcmp(argv[2], "-n") == 0) {
        count = atol(argv[3]);
        rsa_only = argc > 4 && strcmp(argv[4], "rsa") == 0;
    }
    snprintf(cert, sizeof(cert), "%s/dev1.pem", argv[1]);
    snprintf(key, sizeof(key), "%s/dev1.key", argv[1]);
    snprintf(ca, sizeof(ca), "%s/cafile.pem", argv[1]);
    if (sim_device_load(&dev, cert, key) != 0) {
        fprintf(stderr, "cannot load %s\n", cert);
        return 2;
    }
    conf = mdm_conf_new();
    if (mdm_conf_set(conf, "ca_file", ca, err, sizeof(err)) != 0 ||
        mdm_conf_finish(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    body = sim_plist(&len, "UDID", "4F0CC1B6-5E5A-4C0B-9A1B-0EBC340D432A",
                     "Status", "Idle", NULL);
    sig = sim_sign(&dev, body, len);
    siglen = strlen(sig);
    ok.type = REDIS_REPLY_STRING;
    ok.str = "OK";
    ok.len = 2;
    arr.type = REDIS_REPLY_ARRAY;
    arr.elements = 1;
    arr.element = elems;

    /* the core: a full device request minus the network */
    n = 0;
    t0 = now();
    do {
        for (i = 0; i < (count >= 0 ? (rsa_only ? 0 : count) : 200); i++) {
            mdm_req_t *r = mdm_req_new(conf, MDM_EP_COMMAND);

            mdm_req_set_body(r, (unsigned char *) body, len);
            mdm_req_set_signature(r, sig, siglen);
            if (mdm_req_start(r) != MDM_STEP_REDIS ||
                mdm_req_feed(r, reps, 1) != MDM_STEP_DONE ||
                mdm_req_response(r)->status != 200) {
                fprintf(stderr, "unexpected result\n");
                return 1;
            }
            mdm_req_free(r);
        }
        n += 200;
        t = now() - t0;
    } while (count < 0 && t < secs);
    core_us = t / n * 1e6;

    /* one bare RSA-2048 verification of the same bytes */
    md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, dev.key);
    EVP_DigestSign(md, rsig, &rsiglen, (unsigned char *) body, len);
    EVP_MD_CTX_free(md);
    {
        EVP_PKEY *pub = X509_get0_pubkey(dev.cert);
        long m = 0;

        t0 = now();
        do {
            for (i = 0; i < (count >= 0 ? (rsa_only ? count : 0) : 200); i++) {
                md = EVP_MD_CTX_new();
                if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) !=
                        1 ||
                    EVP_DigestVerify(md, rsig, rsiglen, (unsigned char *) body,
                                     len) != 1) {
                    fprintf(stderr, "rsa verify failed\n");
                    return 1;
                }
                EVP_MD_CTX_free(md);
            }
            m += 200;
            t = now() - t0;
        } while (count < 0 && t < secs);
        rsa_us = t / m * 1e6;
    }
    if (count >= 0) {
        goto done;
    }
    printf("core Idle+Mdm-Signature: %8.1f us/request (%ld requests)\n",
           core_us, n);
    printf("bare RSA-2048 verify:    %8.1f us/verify\n", rsa_us);
    printf("ratio core/verify:       %8.2f (target <= 2.00)\n",
           core_us / rsa_us);
done:
    free(body);
    free(sig);
    sim_device_free(&dev);
    mdm_conf_free(conf);
    return 0;
}
