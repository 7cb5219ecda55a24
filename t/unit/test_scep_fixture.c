/*
 * The SCEP tests' fixture: the sample CA and the keys made once, log
 * capture, files in a temporary directory, CA configurations, and
 * running a PKIOperation with replies made by hand.
 *
 * Needs MDM_SAMPLES (t/samples). The sample CA expired in May 2026, so
 * every transaction runs at a fixed time (mdm_scep_req_set_time()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "test_scep.h"

static const char *samples;
static char tmpdir[256];
X509 *sample_ca;
EVP_PKEY *sample_ca_key;
X509 *expect_signer;
EVP_PKEY *dev_key;
EVP_PKEY *dev_key2;
ASN1_OBJECT *o_msgtype, *o_status, *o_fail, *o_snonce, *o_rnonce, *o_txid;

/* ------------------------------------------------------------------ */
/* log capture                                                         */

char last_id[16];
char last_msg[1024];
int nlogs;

void
log_sink(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(last_id, sizeof(last_id), "%s", id);
    snprintf(last_msg, sizeof(last_msg), "%s", msg);
    nlogs++;
}

void
log_reset(void)
{
    last_id[0] = last_msg[0] = '\0';
    nlogs = 0;
}

/* ------------------------------------------------------------------ */
/* files                                                               */

char *
sample_path(const char *name)
{
    static char buf[32][1024];
    static int next;
    char *p = buf[next++ % 32];

    snprintf(p, sizeof(buf[0]), "%s/%s", samples, name);
    return p;
}

char *
tmp_path(const char *name)
{
    static char buf[32][512];
    static int next;
    char *p = buf[next++ % 32];

    snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
    return p;
}

unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long n;

    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t) n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;
    return b;
}

void
write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

void
write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

void
write_key(const char *path, EVP_PKEY *k, const char *pass)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, pass ? EVP_aes_256_cbc() : NULL,
                                          (unsigned char *) pass,
                                          pass ? (int) strlen(pass) : 0, NULL,
                                          NULL),
                     1);
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* CA configurations                                                   */

mdm_scep_ca_t *
ca_with(const opt_t *opts, char *err, size_t errlen, int *rc)
{
    mdm_scep_ca_t *ca = mdm_scep_ca_new();
    size_t i;

    assert_non_null(ca);
    err[0] = '\0';
    for (i = 0; opts[i].name; i++) {
        if (mdm_scep_ca_set(ca, opts[i].name, opts[i].value, err, errlen) !=
            0) {
            *rc = -1;
            return ca;
        }
    }
    *rc = mdm_scep_ca_finish(ca, err, errlen);
    return ca;
}

mdm_scep_ca_t *
sample_ca_conf(const char *challenge, const char *n1, const char *v1,
               const char *n2, const char *v2)
{
    opt_t o[] = {{"ca_cert", sample_path("scep/ca.pem")},
                 {"ca_key", sample_path("scep/ca.key")},
                 {"ca_key_pass_file", tmp_path("empty-pass")},
                 {"min_key_bits", "1024"},
                 {"challenge", challenge},
                 {"prefix", "t:"},
                 {n1, v1},
                 {n2, v2},
                 {NULL, NULL}};
    char err[512];
    int rc;
    mdm_scep_ca_t *ca;

    if (n1 == NULL) {
        o[6].name = NULL;
    } else if (n2 == NULL) {
        o[7].name = NULL;
    }
    ca = ca_with(o, err, sizeof(err), &rc);
    if (rc != 0) {
        fail_msg("SCEP CA: %s", err);
    }
    return ca;
}

/* ------------------------------------------------------------------ */
/* running transactions                                                */

int post_autocheck = 1;

/* The reply of a transaction record not found: HMGET's four nils. */
static redisReply *
rep_no_record(void)
{
    redisReply *r = rep_new(REDIS_REPLY_ARRAY, NULL);
    size_t i;

    r->elements = 4;
    r->element = calloc(4, sizeof(redisReply *));
    for (i = 0; i < 4; i++) {
        r->element[i] = rep_new(REDIS_REPLY_NIL, NULL);
    }
    return r;
}

mdm_scep_req_t *
post(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len, time_t now,
     mdm_step_t *step)
{
    static const char q[] = "operation=PKIOperation";
    mdm_scep_req_t *r =
        mdm_scep_req_new_http(ca, "POST", 4, q, sizeof(q) - 1, m, len);

    assert_non_null(r);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    mdm_scep_req_set_time(r, now);
    log_reset();
    *step = mdm_scep_req_start(r);
    if (post_autocheck && *step == MDM_STEP_REDIS &&
        mdm_scep_req_plan(r)->cmds[0].argc == 6 &&
        memcmp(mdm_scep_req_plan(r)->cmds[0].argv[0], "HMGET", 5) == 0 &&
        memcmp(mdm_scep_req_plan(r)->cmds[0].argv[2], "state", 5) == 0) {
        *step = feed1(r, rep_no_record());
    }
    return r;
}

redisReply *
rep_new(int type, const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));

    r->type = type;
    if (s) {
        r->str = strdup(s);
        r->len = strlen(s);
    }
    return r;
}

redisReply *
rep_array1(const char *s)
{
    redisReply *r = rep_new(REDIS_REPLY_ARRAY, NULL);

    r->elements = 1;
    r->element = calloc(1, sizeof(redisReply *));
    r->element[0] = rep_new(REDIS_REPLY_STRING, s);
    return r;
}

redisReply *
rep_lookup(const void *der, size_t len, const char *state)
{
    redisReply *r = rep_new(REDIS_REPLY_ARRAY, NULL);

    r->elements = 2;
    r->element = calloc(2, sizeof(redisReply *));
    r->element[0] = rep_new(der ? REDIS_REPLY_STRING : REDIS_REPLY_NIL, NULL);
    if (der) {
        r->element[0]->str = malloc(len + 1);
        memcpy(r->element[0]->str, der, len);
        r->element[0]->len = len;
    }
    r->element[1] =
        rep_new(state ? REDIS_REPLY_STRING : REDIS_REPLY_NIL, state);
    return r;
}

static void
rep_free(redisReply *r)
{
    size_t i;

    for (i = 0; i < r->elements; i++) {
        rep_free(r->element[i]);
    }
    free(r->element);
    free(r->str);
    free(r);
}

mdm_step_t
feed1(mdm_scep_req_t *r, redisReply *rep)
{
    redisReply *v[1] = {rep};
    mdm_step_t s = mdm_scep_req_feed(r, rep ? v : NULL, rep ? 1 : 0);

    if (rep) {
        rep_free(rep);
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

int
scep_setup(void)
{
    BIO *b;

    samples = getenv("MDM_SAMPLES");
    if (samples == NULL) {
        fprintf(stderr, "MDM_SAMPLES is not set\n");
        return -1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_scep.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    write_file(tmp_path("empty-pass"), "", 0);
    b = BIO_new_file(sample_path("scep/ca.pem"), "r");
    sample_ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_file(sample_path("scep/ca.key"), "r");
    sample_ca_key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *) "");
    BIO_free(b);
    dev_key = EVP_RSA_gen(2048);
    dev_key2 = EVP_RSA_gen(2048);
    o_msgtype = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
    o_status = OBJ_txt2obj("2.16.840.1.113733.1.9.3", 1);
    o_fail = OBJ_txt2obj("2.16.840.1.113733.1.9.4", 1);
    o_snonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);
    o_rnonce = OBJ_txt2obj("2.16.840.1.113733.1.9.6", 1);
    o_txid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);
    return sample_ca && sample_ca_key && dev_key && dev_key2 ? 0 : -1;
}

int
scep_teardown(void)
{
    char cmd[600];

    X509_free(sample_ca);
    EVP_PKEY_free(sample_ca_key);
    EVP_PKEY_free(dev_key);
    EVP_PKEY_free(dev_key2);
    ASN1_OBJECT_free(o_msgtype);
    ASN1_OBJECT_free(o_status);
    ASN1_OBJECT_free(o_fail);
    ASN1_OBJECT_free(o_snonce);
    ASN1_OBJECT_free(o_rnonce);
    ASN1_OBJECT_free(o_txid);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}
