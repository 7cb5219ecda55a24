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
