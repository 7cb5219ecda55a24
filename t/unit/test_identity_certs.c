/*
 * Unit tests for one certificate through the verifier's cache of decoded
 * certificates, its SHA-256 and subject (core/mdm_identity_certs.c).
 *
 * Needs MDM_TEST_PKI and MDM_SAMPLES (see test_identity_fixture.c).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mdm_der.h"
#include "mdm_identity.h"
#include "test_identity_fixture.h"

static void
test_cert_names(void **state)
{
    X509 *x = pki_cert("dev1");
    char hex[65], want[65];
    char *s;

    (void) state;
    assert_int_equal(mdm_cert_sha256_hex(x, hex), 0);
    fingerprint(x, want);
    assert_string_equal(hex, want);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(mdm_cert_sha256_hex(NULL, hex), -1);
    s = mdm_cert_subject(x);
    assert_non_null(s);
    assert_string_equal(s, "CN=device-1,O=libmdm test");
    free(s);
    assert_null(mdm_cert_subject(NULL));

    assert_string_equal(mdm_id_rc_name(MDM_ID_OK), "ok");
    assert_string_equal(mdm_id_rc_name(MDM_ID_ERR_SIGNATURE), "bad-signature");
    assert_string_equal(mdm_id_rc_name(MDM_ID_ERR_UNTRUSTED), "untrusted");
    X509_free(x);
}

static void
test_cert_cache_bounded(void **state)
{
    static const char *names[] = {"dev1", "dev2", "devec", "devroot", "server"};
    static const size_t sizes[] = {1, 2, 3};
    X509 *expect[5], *held[5], *x, *y;
    unsigned char *der[5];
    size_t derlen[5], s, i, k, same;
    char want[5][65], hash[65];
    mdm_verifier_t *v;
    int round;

    (void) state;
    for (i = 0; i < 5; i++) {
        expect[i] = pki_cert(names[i]);
        fingerprint(expect[i], want[i]);
        der[i] = cert_der(expect[i], &derlen[i]);
    }
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        v = cert_cache_verifier(sizes[s]);
        for (i = 0; i < 5; i++) {
            held[i] = NULL;
        }
        for (round = 0; round < 12; round++) {
            same = 0;
            for (k = 0; k < 5; k++) {
                /* in changing orders */
                i = (k * (size_t) (round % 2 ? 3 : 1) + (size_t) round) % 5;
                assert_int_equal(vcert(v, der[i], derlen[i], &x, hash),
                                 MDM_ID_OK);
                assert_int_equal(X509_cmp(x, expect[i]), 0);
                assert_string_equal(hash, want[i]);
                /* what was decoded a moment ago is a hit */
                assert_int_equal(vcert(v, der[i], derlen[i], &y, hash),
                                 MDM_ID_OK);
                assert_ptr_equal(y, x);
                X509_free(y);
                if (x == held[i]) {
                    same++;
                }
                /* the previous round's reference outlives its eviction */
                if (held[i] != NULL) {
                    assert_int_equal(X509_cmp(held[i], expect[i]), 0);
                    X509_free(held[i]);
                }
                held[i] = x;
            }
            /* five certificates do not fit: at most size of them can
             * still be the objects of the previous round */
            if (round > 0) {
                assert_true(same <= sizes[s]);
            }
        }
        mdm_verifier_free(v);
        /* references handed out stay valid after the verifier is gone */
        for (i = 0; i < 5; i++) {
            assert_int_equal(X509_cmp(held[i], expect[i]), 0);
            fingerprint(held[i], hash);
            assert_string_equal(hash, want[i]);
            X509_free(held[i]);
        }
    }
    for (i = 0; i < 5; i++) {
        OPENSSL_free(der[i]);
        X509_free(expect[i]);
    }
}

static void
test_cert_cache_same_slot(void **state)
{
    /*
     * A cache of one entry: every certificate has the same slot. Two
     * certificates whose SHA-256 start with the same byte must still not
     * be taken for each other (the whole key is compared).
     */
    X509 *issuer = pki_cert("int"), *minted[200], *x;
    EVP_PKEY *ikey = pki_key("int"), *pub = pki_key("dev1");
    unsigned char *der[2], md[200][32];
    unsigned int mdlen;
    size_t derlen[2], i, j = 0, k, found = 0;
    char hash[65], want[2][65];
    mdm_verifier_t *v;
    int round;

    (void) state;
    for (i = 0; i < 200 && !found; i++) {
        minted[i] = mint(issuer, ikey, pub, 100 + (long) i);
        der[0] = cert_der(minted[i], &derlen[0]);
        assert_int_equal(
            EVP_Digest(der[0], derlen[0], md[i], &mdlen, EVP_sha256(), NULL),
            1);
        OPENSSL_free(der[0]);
        for (j = 0; j < i; j++) {
            if (md[j][0] == md[i][0]) {
                found = 1;
                break;
            }
        }
    }
    /* 200 random bytes without a repeat: p < 1e-30 */
    assert_true(found);
    i--;
    der[0] = cert_der(minted[j], &derlen[0]);
    der[1] = cert_der(minted[i], &derlen[1]);
    fingerprint(minted[j], want[0]);
    fingerprint(minted[i], want[1]);
    assert_string_not_equal(want[0], want[1]);
    assert_memory_equal(want[0], want[1], 2);

    v = cert_cache_verifier(1);
    for (round = 0; round < 4; round++) {
        for (k = 0; k < 2; k++) {
            assert_int_equal(vcert(v, der[k], derlen[k], &x, hash), MDM_ID_OK);
            assert_string_equal(hash, want[k]);
            assert_int_equal(X509_cmp(x, k ? minted[i] : minted[j]), 0);
            X509_free(x);
        }
    }
    mdm_verifier_free(v);
    for (k = 0; k <= i; k++) {
        X509_free(minted[k]);
    }
    OPENSSL_free(der[0]);
    OPENSSL_free(der[1]);
    X509_free(issuer);
    EVP_PKEY_free(ikey);
    EVP_PKEY_free(pub);
}

static void
test_cert_cache_resize(void **state)
{
    mdm_verifier_t *v = cert_cache_verifier(4);
    X509 *expect = pki_cert("dev1"), *x, *y;
    unsigned char *der;
    size_t derlen;
    char hash[65], want[65];

    (void) state;
    fingerprint(expect, want);
    der = cert_der(expect, &derlen);
    assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_OK);
    assert_int_equal(vcert(v, der, derlen, &y, hash), MDM_ID_OK);
    assert_ptr_equal(x, y);
    X509_free(y);

    /* a new cache starts empty; what callers hold is untouched */
    assert_int_equal(mdm_verifier_set_cert_cache(v, 8), 0);
    assert_int_equal(X509_cmp(x, expect), 0);
    assert_int_equal(vcert(v, der, derlen, &y, hash), MDM_ID_OK);
    assert_ptr_not_equal(y, x);
    assert_string_equal(hash, want);
    X509_free(x);
    x = y;

    /* size 0: no cache, every call decodes */
    assert_int_equal(mdm_verifier_set_cert_cache(v, 0), 0);
    assert_int_equal(X509_cmp(x, expect), 0);
    assert_int_equal(vcert(v, der, derlen, &y, hash), MDM_ID_OK);
    assert_ptr_not_equal(y, x);
    assert_string_equal(hash, want);
    X509_free(x);
    assert_int_equal(vcert(v, der, derlen, &x, hash), MDM_ID_OK);
    assert_ptr_not_equal(y, x);
    assert_string_equal(hash, want);
    X509_free(y);
    X509_free(x);

    OPENSSL_free(der);
    X509_free(expect);
    mdm_verifier_free(v);
}

/* Regressions found by fuzzing the fast path (t/fuzz/corpus/signature). */
static void
test_fastpath_regressions(void **state)
{
    unsigned char *der, *bad;
    size_t len, i;
    X509 *x = NULL;
    char hash[65];
    const char *why;
    mdm_cms_split_t sp;
    mdm_verifier_t *v;
    char err[256];
    static const unsigned char null_params[] = {
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};

    (void) state;
    /* the certificate set is accepted only where the decoder expects it */
    der =
        read_all(path_in(samples_dir,
                         "../fuzz/corpus/signature/split-misplaced-first.der"),
                 &len);
    assert_int_equal(mdm_cms_split(der, len, &sp), -1);
    free(der);
    der = read_all(path_in(samples_dir,
                           "../fuzz/corpus/signature/split-misplaced-last.der"),
                   &len);
    assert_int_equal(mdm_cms_split(der, len, &sp), -1);
    free(der);

    /* a certificate whose unsigned outer part was altered: decoded like
     * the full decoder does; the hash is always that of its canonical DER
     * (cached or not), and the chain check refuses it (the outer and
     * signed signature algorithms differ) */
    x = load_cert_path(path_in(pki_dir, "dev1.pem"));
    der = NULL;
    len = (size_t) i2d_X509(x, &der);
    X509_free(x);
    x = NULL;
    bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, der, len);
    for (i = len - sizeof(null_params); i > 0; i--) {
        if (memcmp(bad + i, null_params, sizeof(null_params)) == 0) {
            break;
        }
    }
    assert_true(i > 0);
    bad[i + sizeof(null_params) - 2] = 0x3a; /* NULL -> another tag */
    v = mdm_verifier_new(path_in(pki_dir, "cafile.pem"), 16, 60, err,
                         sizeof(err));
    assert_non_null(v);
    assert_int_equal(mdm_verifier_set_cert_cache(v, 4), 0);
    {
        char canon[65];

        assert_int_equal(mdm_verifier_cert(v, der, len, &x, canon, &why),
                         MDM_ID_OK);
        X509_free(x);
        x = NULL;
        /* twice: the miss, then the cache hit */
        for (i = 0; i < 2; i++) {
            assert_int_equal(mdm_verifier_cert(v, bad, len, &x, hash, &why),
                             MDM_ID_OK);
            assert_int_equal(mdm_cert_sha256_hex(x, canon), 0);
            assert_string_equal(hash, canon);
            assert_int_not_equal(
                mdm_verifier_check(v, x, hash, time(NULL), &why), MDM_ID_OK);
            X509_free(x);
            x = NULL;
        }
    }
    mdm_verifier_free(v);
    OPENSSL_free(der);
    free(bad);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_names),
        cmocka_unit_test(test_cert_cache_bounded),
        cmocka_unit_test(test_cert_cache_same_slot),
        cmocka_unit_test(test_cert_cache_resize),
        cmocka_unit_test(test_fastpath_regressions),
    };

    return cmocka_run_group_tests(tests, identity_setup, NULL);
}
