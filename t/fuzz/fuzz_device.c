/*
 * libFuzzer target for the device transaction (mdm_device.c) behind the
 * message parser: check-in and command dispatch, the declarative
 * management endpoints and status reports a device posts (mdm_ddm.c),
 * token and result handling, run to the answer with Redis replies the
 * input picks (fuzz_tx.h). Identity is off ("none"), so every body gets
 * past the identity check; fuzz_signature covers that part.
 *
 * Input: byte 0 the endpoint (mod 3: check-in, command, one URL for both)
 * and, /3 mod 3, the Content-Type (check-in, command, none); byte 1 the
 * seed of the Redis replies (fuzz_tx.h; 0: the storage fails); the rest
 * is the body. Seeds in t/fuzz/corpus/device/.
 *
 * Contract on every input: an answer (fuzz_tx.h), never 401 (a device
 * that gets 401 may unenroll), and a refusal has a log id (a 410 to
 * UserAuthenticate is the protocol's answer, not a refusal).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_tx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mdm_conf_t *fz_c;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *opts[] = {"identity", "none", "binding", "off", NULL};

    (void) argc;
    (void) argv;
    fz_c = fz_conf(opts);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ctypes[] = {
        "application/x-apple-aspen-mdm-checkin",
        "application/x-apple-aspen-mdm", ""};
    const mdm_response_t *resp;
    const char *ct, *msg;
    mdm_req_t *r;

    if (size < 2) {
        return 0;
    }
    r = mdm_req_new(fz_c, (mdm_endpoint_t) (1 + data[0] % 3));
    if (r == NULL) {
        abort();
    }
    ct = ctypes[data[0] / 3 % 3];
    mdm_req_set_content_type(r, ct, strlen(ct));
    mdm_req_set_body(r, data + 2, size - 2);
    fz_logs = 0;
    resp = fz_run(r, data[1]);
    if (resp != NULL) {
        fz_check_response(resp);
        if (resp->status == 401) {
            abort();
        }
        msg = mdm_req_var(r, MDM_VAR_MESSAGE);
        /* 410 is the answer to UserAuthenticate (user_auth gone), no
           refusal */
        if (resp->status >= 400 &&
            !(resp->status == 410 && msg &&
              strcmp(msg, "UserAuthenticate") == 0) &&
            (mdm_req_var(r, MDM_VAR_ERROR_ID) == NULL || fz_logs == 0)) {
            fprintf(stderr, "fuzz_device: %d without a log id (%d lines)\n",
                    resp->status, fz_logs);
            abort();
        }
    }
    mdm_req_free(r);
    return 0;
}
