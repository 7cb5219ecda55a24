/*
 * libFuzzer target for the admin API over HTTP (mdm_req_new_admin_http):
 * the router and its percent-decoding, the query string parser
 * (mdm_query.c), the JSON and plist command bodies (mdm_admin.c), the
 * declarative management bodies (mdm_ddm_admin.c), the encrypted profile
 * body (mdm_encprofile.c) and the /scep and /renewals routes, each run to
 * its answer with Redis replies the input picks (fuzz_tx.h).
 *
 * Input: byte 0 the method (mod 4: GET, POST, DELETE, PUT), byte 1 the
 * seed of the Redis replies (fuzz_tx.h; 0: the storage fails); then
 * "PATH[?QUERY]" up to the first newline, the rest is the body. Seeds in
 * t/fuzz/corpus/admin/.
 *
 * The configuration has the sample SCEP CA (t/samples/scep, through
 * $MDM_SAMPLES) so that the /scep routes get past "no CA here".
 *
 * Contract on every input: an answer (fuzz_tx.h), and every error answer
 * of the admin API is a JSON object (but 503: the storage failed, an
 * empty answer with Retry-After, as on every location).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "fuzz_tx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mdm_conf_t *fz_c;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *s = getenv("MDM_SAMPLES");
    char cert[4096], key[4096], pass[4096];
    int fd;

    (void) argc;
    (void) argv;
    if (s == NULL || *s == '\0') {
        fprintf(stderr, "fuzz_admin: set MDM_SAMPLES to t/samples\n");
        abort();
    }
    snprintf(cert, sizeof(cert), "%s/scep/ca.pem", s);
    snprintf(key, sizeof(key), "%s/scep/ca.key", s);
    snprintf(pass, sizeof(pass), "%s/fuzz_admin_pass.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    fd = mkstemp(pass); /* empty: the sample key's passphrase */
    if (fd < 0) {
        perror("fuzz_admin: passphrase file");
        abort();
    }
    close(fd);
    {
        const char *opts[] = {"identity",
                              "none",
                              "binding",
                              "off",
                              "store_der",
                              "on",
                              "scep.ca_cert",
                              cert,
                              "scep.ca_key",
                              key,
                              "scep.ca_key_pass_file",
                              pass,
                              "scep.challenge",
                              "dynamic",
                              NULL};

        fz_c = fz_conf(opts);
    }
    remove(pass);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "DELETE", "PUT"};
    const char *m, *target, *nl, *q;
    size_t tlen, plen;
    const mdm_response_t *resp;
    mdm_req_t *r;
    json_t *j;

    if (size < 2) {
        return 0;
    }
    m = methods[data[0] % 4];
    target = (const char *) data + 2;
    nl = memchr(target, '\n', size - 2);
    tlen = nl ? (size_t) (nl - target) : size - 2;
    q = memchr(target, '?', tlen);
    plen = q ? (size_t) (q - target) : tlen;
    fz_logs = 0;
    r = mdm_req_new_admin_http(fz_c, m, strlen(m), target, plen,
                               q ? q + 1 : NULL, q ? tlen - plen - 1 : 0,
                               nl ? (const unsigned char *) nl + 1 : NULL,
                               nl ? size - 2 - tlen - 1 : 0);
    if (r == NULL) {
        abort();
    }
    resp = fz_run(r, data[1]);
    if (resp != NULL) {
        fz_check_response(resp);
        if (resp->status >= 400 && resp->status != 503) {
            j = json_loadb((const char *) resp->body, resp->body_len, 0, NULL);
            if (!json_is_object(j)) {
                fprintf(stderr,
                        "fuzz_admin: %d answer not a JSON error: %.*s\n",
                        resp->status, (int) resp->body_len, resp->body);
                abort();
            }
            json_decref(j);
        }
    }
    mdm_req_free(r);
    return 0;
}
