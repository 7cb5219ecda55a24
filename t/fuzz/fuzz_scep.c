/*
 * libFuzzer target for core/mdm_scep*.c: the pkiMessage parser and the
 * whole PKIOperation path behind it, the HTTP routing, and the lenient
 * base64 helper.
 *
 * Input: byte 0 selects the mode (mod 3).
 *   0: POST PKIOperation. Byte 1 selects the Redis reply fed back if the
 *      transaction plans one (mod 6: script OK, NOCHALLENGE, REVOKED,
 *      NOSCRIPT then OK, nil, storage failure); bytes 2.. are the body.
 *   1: GET; bytes 1.. are the query string (operation=...&message=...).
 *   2: mdm_scep_b64_decode() on bytes 1..end.
 * Seeds in t/fuzz/corpus/scep/ follow this layout (see SOURCES.txt there).
 *
 * The CA is the sample SCEP test CA (t/samples/scep/ca.pem and ca.key,
 * empty passphrase) found through $MDM_SAMPLES, with no challenge,
 * 1024-bit keys and single DES allowed, at a time (2020) when it and the
 * generated seeds' certificates were valid: the real request gets all the way
 * to a SUCCESS CertRep.
 *
 * Contract checked on every input: a response with a known status; a
 * PKIOperation writes exactly one log line whatever happens; a 200
 * PKIOperation answer is a CertRep; nothing is left on the OpenSSL error
 * queue.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "mdm_scep.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T_FUZZ ((time_t) 1577836800) /* 2020-01-01 */

static mdm_scep_ca_t *fz_ca;
static int fz_logs;

static void
fz_log(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    if (id == NULL || strncmp(id, "MDM0", 4) != 0 || msg == NULL) {
        abort();
    }
    fz_logs++;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *s = getenv("MDM_SAMPLES");
    char cert[4096], key[4096], pass[4096], err[512];
    FILE *f;

    (void) argc;
    (void) argv;
    if (s == NULL || *s == '\0') {
        fprintf(stderr, "fuzz_scep: set MDM_SAMPLES to t/samples\n");
        abort();
    }
    snprintf(cert, sizeof(cert), "%s/scep/ca.pem", s);
    snprintf(key, sizeof(key), "%s/scep/ca.key", s);
    snprintf(pass, sizeof(pass), "%s/fuzz_scep_pass.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    {
        int fd = mkstemp(pass);

        if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
            perror("fuzz_scep: passphrase file");
            abort();
        }
        fclose(f); /* empty: the sample key's passphrase */
    }
    fz_ca = mdm_scep_ca_new();
    if (fz_ca == NULL ||
        mdm_scep_ca_set(fz_ca, "ca_cert", cert, err, sizeof(err)) != 0 ||
        mdm_scep_ca_set(fz_ca, "ca_key", key, err, sizeof(err)) != 0 ||
        mdm_scep_ca_set(fz_ca, "ca_key_pass_file", pass, err, sizeof(err)) !=
            0 ||
        mdm_scep_ca_set(fz_ca, "challenge", "none", err, sizeof(err)) != 0 ||
        mdm_scep_ca_set(fz_ca, "min_key_bits", "1024", err, sizeof(err)) != 0 ||
        mdm_scep_ca_set(fz_ca, "legacy_des", "on", err, sizeof(err)) != 0 ||
        mdm_scep_ca_finish(fz_ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_scep: %s\n", err);
        abort();
    }
    remove(pass);
    return 0;
}

static redisReply *
fz_reply(int type, const char *s)
{
    static redisReply r[2];
    static redisReply *el[1];
    static char buf[32];

    memset(r, 0, sizeof(r));
    if (type == REDIS_REPLY_ARRAY) {
        snprintf(buf, sizeof(buf), "%s", s);
        r[1].type = REDIS_REPLY_STRING;
        r[1].str = buf;
        r[1].len = strlen(buf);
        el[0] = &r[1];
        r[0].type = REDIS_REPLY_ARRAY;
        r[0].elements = 1;
        r[0].element = el;
        return &r[0];
    }
    r[0].type = type;
    if (s) {
        snprintf(buf, sizeof(buf), "%s", s);
        r[0].str = buf;
        r[0].len = strlen(buf);
    }
    return &r[0];
}

static void
fz_feed(mdm_scep_req_t *r, int which)
{
    redisReply *rep;
    mdm_step_t step = MDM_STEP_REDIS;
    int rounds = 0;

    while (step == MDM_STEP_REDIS) {
        const mdm_plan_t *p = mdm_scep_req_plan(r);

        if (p == NULL || p->ncmds == 0 || p->nreplies > p->ncmds ||
            ++rounds > 3) {
            abort();
        }
        switch (which) {
        case 0:
            rep = fz_reply(REDIS_REPLY_ARRAY, "OK");
            break;
        case 1:
            rep = fz_reply(REDIS_REPLY_ARRAY, "NOCHALLENGE");
            break;
        case 2:
            rep = fz_reply(REDIS_REPLY_ARRAY, "REVOKED");
            break;
        case 3:
            rep = rounds == 1 ? fz_reply(REDIS_REPLY_ERROR, "NOSCRIPT x")
                              : fz_reply(REDIS_REPLY_ARRAY, "OK");
            break;
        case 4:
            rep = fz_reply(REDIS_REPLY_NIL, NULL);
            break;
        default:
            rep = NULL;
            break;
        }
        step = mdm_scep_req_feed(r, rep ? &rep : NULL, rep ? 1 : 0);
    }
}

static void
fz_check(mdm_scep_req_t *r, int pki)
{
    const mdm_response_t *resp = mdm_scep_req_response(r);
    const char *op = mdm_scep_req_var(r, MDM_SCEP_VAR_OPERATION);

    switch (resp->status) {
    case 200:
        if (resp->body == NULL || resp->body_len == 0 ||
            resp->content_type == NULL) {
            abort();
        }
        break;
    case 400:
    case 404: /* GetNextCACert without a next CA */
    case 405:
    case 500:
    case 503:
        if (mdm_scep_req_var(r, MDM_SCEP_VAR_ERROR_ID) == NULL ||
            resp->body_len != 0) {
            abort();
        }
        break;
    default:
        abort();
    }
    if (pki && op && strcmp(op, "PKIOperation") == 0) {
        if (fz_logs != 1) {
            abort();
        }
        if (resp->status == 200 &&
            strcmp(resp->content_type, "application/x-pki-message") != 0) {
            abort();
        }
    }
    if (ERR_peek_error() != 0) {
        abort();
    }
}

static void
fz_b64(const uint8_t *in, size_t len)
{
    unsigned char *out = NULL, *again = NULL;
    char *enc;
    size_t olen = 0, alen = 0;

    if (mdm_scep_b64_decode((const char *) in, len, &out, &olen) != 0) {
        if (out != NULL || olen != 0) {
            abort();
        }
        return;
    }
    if (out == NULL || olen > len / 4 * 3 + 3) {
        abort();
    }
    /* what it decoded, re-encoded canonically, decodes the same */
    if (olen > 0) {
        enc = malloc(4 * ((olen + 2) / 3) + 1);
        if (enc == NULL) {
            abort();
        }
        EVP_EncodeBlock((unsigned char *) enc, out, (int) olen);
        if (mdm_scep_b64_decode(enc, strlen(enc), &again, &alen) != 0 ||
            alen != olen || memcmp(again, out, olen) != 0) {
            abort();
        }
        free(again);
        free(enc);
    }
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdm_scep_req_t *r;
    static const char q[] = "operation=PKIOperation";
    mdm_step_t step;

    if (size < 1) {
        return 0;
    }
    fz_logs = 0;
    switch (data[0] % 3) {
    case 0:
        if (size < 2) {
            return 0;
        }
        r = mdm_scep_req_new_http(fz_ca, "POST", 4, q, sizeof(q) - 1, data + 2,
                                  size - 2);
        break;
    case 1:
        r = mdm_scep_req_new_http(fz_ca, "GET", 3, (const char *) data + 1,
                                  size - 1, NULL, 0);
        break;
    default:
        fz_b64(data + 1, size - 1);
        return 0;
    }
    if (r == NULL) {
        abort();
    }
    mdm_scep_req_set_logger(r, fz_log, NULL);
    mdm_scep_req_set_time(r, T_FUZZ);
    step = mdm_scep_req_start(r);
    if (step == MDM_STEP_REDIS) {
        fz_feed(r, data[0] % 3 == 0 ? data[1] % 6 : 0);
    }
    fz_check(r, 1);
    mdm_scep_req_free(r);
    return 0;
}
