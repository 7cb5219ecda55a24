/*
 * Unit tests for the SCEP CA (core/mdm_scep*.c): one program, a cmocka
 * group per SCEP file (t/unit/test_scep.h lists them), the real Apple
 * PKCSReq vectors (t/samples/scep, t/samples/commandment), requests built
 * here with the OpenSSL API for every failInfo path, the lenient base64
 * helper, CA loading errors, and the Redis scripts against a private
 * redis-server.
 *
 * Needs MDM_SAMPLES (t/samples). The sample CA expired in May 2026, so
 * every transaction runs at a fixed time (mdm_scep_req_set_time()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "test_scep.h"

/*
 * With MDM_SCEP_SEEDS=DIR, write generated requests as fuzz seeds
 * (t/fuzz/corpus/scep/gen-*: mode byte 0, reply byte 0, then the DER).
 */
static void
seed(const char *dir, const char *name, const unsigned char *m, size_t len)
{
    char path[1024];
    unsigned char *b = malloc(len + 2);

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    b[0] = b[1] = 0;
    memcpy(b + 2, m, len);
    write_file(path, b, len + 2);
    free(b);
}

static void
test_write_seeds(void **state)
{
    const char *dir = getenv("MDM_SCEP_SEEDS");
    X509 *signer, *ours;
    size_t len, clen;
    unsigned char *m, *c;
    req_opts_t o = {0};

    (void) state;
    if (dir == NULL) {
        skip();
    }
    m = pkcsreq(CHALLENGE, EVP_sha256(), EVP_aes_128_cbc(), &signer, &len);
    seed(dir, "gen-pkcsreq-sha256-aes128", m, len);
    free(m);
    o.signer = signer;
    o.signer_key = dev_key;
    c = make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    o.content = c;
    o.content_len = clen;
    o.des = 1;
    m = make_pkimsg(&o, &len);
    seed(dir, "gen-pkcsreq-des", m, len);
    free(m);
    o.des = 0;
    o.md = EVP_sha512();
    o.cipher = EVP_aes_256_cbc();
    m = make_pkimsg(&o, &len);
    seed(dir, "gen-pkcsreq-sha512-aes256", m, len);
    free(m);
    o.md = NULL;
    o.cipher = NULL;
    ours = make_cert(dev_key, "device-0001", sample_ca, sample_ca_key, 0x1234,
                     T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    o.signer = ours;
    o.msg_type = "17";
    m = make_pkimsg(&o, &len);
    seed(dir, "gen-renewalreq", m, len);
    free(m);
    free(c);
    o.signer = signer;
    o.msg_type = "21";
    c = issuer_and_serial(sample_ca, 0xabcd, &clen);
    o.content = c;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    seed(dir, "gen-getcert", m, len);
    free(m);
    free(c);
    o.msg_type = "20";
    o.content = (const unsigned char *) "\x30\x00";
    o.content_len = 2;
    m = make_pkimsg(&o, &len);
    seed(dir, "gen-certpoll", m, len);
    free(m);
    X509_free(ours);
    X509_free(signer);
}

/*
 * With MDM_SCEP_ISSUE=N, no tests: the cost of issuing, for
 * bench/scep.sh and callgrind. One PKCSReq (SHA-256, AES-128, a 2048-bit
 * device key) to a 2048-bit CA with a static challenge is answered N
 * times, start to CertRep, the issuing script's "OK" given by hand
 * (issue_loop()); then 3N RSA-2048 private-key operations (PKCS#1 v1.5
 * signatures of a SHA-256 digest) with the CA key (private_loop()), the
 * three an issuance cannot do without. Prints the CPU time of each; under
 * valgrind --tool=callgrind the inclusive counts of the two functions
 * give the same ratio in instructions.
 */
static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static int
issue_loop(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len, long n)
{
    mdm_scep_req_t *r;
    mdm_step_t step;
    long i;

    for (i = 0; i < n; i++) {
        r = post(ca, m, len, T_GEN, &step);
        if (step != MDM_STEP_REDIS ||
            feed1(r, rep_array1("OK")) != MDM_STEP_DONE ||
            mdm_scep_req_response(r)->status != 200) {
            fprintf(stderr, "issue %ld: %s %s\n", i, last_id, last_msg);
            mdm_scep_req_free(r);
            return -1;
        }
        mdm_scep_req_free(r);
    }
    return 0;
}

__attribute__((noinline)) static int
private_loop(EVP_PKEY *key, long n)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    unsigned char md[32] = "0123456789abcdef0123456789abcdef", sig[512];
    size_t siglen;
    long i;
    int rc = -1;

    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        siglen = sizeof(sig);
        if (EVP_PKEY_sign(ctx, sig, &siglen, md, sizeof(md)) != 1) {
            goto done;
        }
        md[0] = sig[0];
    }
    rc = 0;
done:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int
issue_bench(long n)
{
    EVP_PKEY *ca_key = EVP_RSA_gen(2048);
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    X509 *ca_cert, *signer;
    req_opts_t o = {0};
    unsigned char *csr, *m;
    size_t clen, len;
    mdm_scep_ca_t *ca;
    double t0, t1, t2;
    int rc;
    opt_t opts[] = {{"ca_cert", tmp_path("bench-ca.pem")},
                    {"ca_key", tmp_path("bench-ca.key")},
                    {"challenge", CHALLENGE},
                    {"prefix", "t:"},
                    {NULL, NULL}};
    char err[512];

    ca_cert = make_cert(ca_key, "Bench SCEP CA", NULL, NULL, 1, T_GEN - DAY,
                        T_GEN + 3650 * DAY);
    bc->ca = 1;
    X509_add1_ext_i2d(ca_cert, NID_basic_constraints, bc, 1, 0);
    BASIC_CONSTRAINTS_free(bc);
    X509_sign(ca_cert, ca_key, EVP_sha256());
    write_cert(opts[0].value, ca_cert);
    write_key(opts[1].value, ca_key, NULL);
    ca = ca_with(opts, err, sizeof(err), &rc);
    if (rc != 0) {
        fprintf(stderr, "SCEP CA: %s\n", err);
        return 1;
    }
    csr = make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;
    o.recipient = ca_cert;
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    /* one of each first: lazily made tables out of the loops */
    rc = issue_loop(ca, m, len, 1) == 0 && private_loop(ca_key, 1) == 0;
    t0 = cpu_now();
    rc = rc && issue_loop(ca, m, len, n) == 0;
    t1 = cpu_now();
    rc = rc && private_loop(ca_key, 3 * n) == 0;
    t2 = cpu_now();
    if (rc) {
        printf("%ld issuances: %.3f ms CPU each; 3 RSA-2048 private ops: "
               "%.3f ms; ratio %.2fx\n",
               n, (t1 - t0) * 1000 / (double) n, (t2 - t1) * 1000 / (double) n,
               (t1 - t0) / (t2 - t1));
    }
    free(m);
    free(csr);
    X509_free(signer);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    mdm_scep_ca_free(ca);
    return rc ? 0 : 1;
}

int
main(void)
{
    const struct CMUnitTest seeds[] = {
        cmocka_unit_test(test_write_seeds),
    };
    int failed;

    if (scep_setup() != 0) {
        return 1;
    }
    if (getenv("MDM_SCEP_ISSUE") != NULL) {
        failed = issue_bench(atol(getenv("MDM_SCEP_ISSUE")));
        scep_teardown();
        return failed;
    }
    failed = scep_b64_tests();
    failed += scep_req_tests();
    failed += scep_ca_tests();
    failed += scep_msg_tests();
    failed += scep_pki_tests();
    failed += scep_admin_tests();
    failed += cmocka_run_group_tests_name("scep_seeds", seeds, NULL, NULL);
    failed += scep_store_tests();
    scep_teardown();
    return failed ? 1 : 0;
}
