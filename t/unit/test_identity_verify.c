/*
 * Unit tests for the verifier (core/mdm_identity_verify.c): the chain
 * check against the identity CA file and the cache of its results.
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

static time_t
asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return timegm(&tm);
}

static mdm_id_rc_t
check_at(mdm_verifier_t *v, const char *name, time_t now)
{
    X509 *x = pki_cert(name);
    const char *why = NULL;
    char hex[65];
    mdm_id_rc_t rc;

    assert_int_equal(mdm_cert_sha256_hex(x, hex), 0);
    rc = mdm_verifier_check(v, x, hex, now, &why);
    assert_non_null(why);
    assert_int_equal(ERR_peek_error(), 0);
    X509_free(x);
    return rc;
}

static mdm_id_rc_t
check(mdm_verifier_t *v, const char *name)
{
    return check_at(v, name, time(NULL));
}

static time_t
not_after_of(const char *name)
{
    X509 *x = pki_cert(name);
    time_t t = asn1_to_time(X509_get0_notAfter(x));

    X509_free(x);
    return t;
}

static time_t
not_before_of(const char *name)
{
    X509 *x = pki_cert(name);
    time_t t = asn1_to_time(X509_get0_notBefore(x));

    X509_free(x);
    return t;
}

static void
test_chain(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 0, 0);

    (void) state;
    assert_int_equal(check(v, "dev1"), MDM_ID_OK);
    assert_int_equal(check(v, "dev2"), MDM_ID_OK);
    assert_int_equal(check(v, "devec"), MDM_ID_OK);
    assert_int_equal(check(v, "devroot"), MDM_ID_OK);
    assert_int_equal(check(v, "stranger"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "selfsigned"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "expired"), MDM_ID_ERR_EXPIRED);
    assert_int_equal(check(v, "notyet"), MDM_ID_ERR_EXPIRED);
    assert_int_equal(check(v, "serverauth"), MDM_ID_ERR_USAGE);
    /* a TLS server certificate is not a device identity either */
    assert_int_equal(check(v, "server"), MDM_ID_ERR_USAGE);
    mdm_verifier_free(v);
}

static void
test_chain_time_is_now_argument(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 0, 0);
    time_t mid = not_before_of("expired") +
                 (not_after_of("expired") - not_before_of("expired")) / 2;

    (void) state;
    /* validity is judged at the given time, not at the wall clock */
    assert_int_equal(check_at(v, "expired", mid), MDM_ID_OK);
    assert_int_equal(check_at(v, "notyet", not_before_of("notyet") + DAY),
                     MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", not_after_of("dev1") + 1),
                     MDM_ID_ERR_EXPIRED);
    assert_int_equal(check_at(v, "dev1", not_before_of("dev1") - 1),
                     MDM_ID_ERR_EXPIRED);
    mdm_verifier_free(v);
}

static void
test_chain_partial_cafile(void **state)
{
    mdm_verifier_t *v;

    (void) state;
    /*
     * Only the root: the verifier uses no intermediates but those of the
     * CA file (the device sends none), so dev1 cannot be chained.
     */
    v = verifier(path_in(pki_dir, "root.pem"), 0, 0);
    assert_int_equal(check(v, "dev1"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "devroot"), MDM_ID_OK);
    mdm_verifier_free(v);

    /* Only the intermediate: a chain ending at it is trusted. */
    v = verifier(path_in(pki_dir, "int.pem"), 0, 0);
    assert_int_equal(check(v, "dev1"), MDM_ID_OK);
    assert_int_equal(check(v, "devec"), MDM_ID_OK);
    assert_int_equal(check(v, "devroot"), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check(v, "expired"), MDM_ID_ERR_EXPIRED);
    assert_int_equal(check(v, "serverauth"), MDM_ID_ERR_USAGE);
    mdm_verifier_free(v);

    /* The other root trusts its own device and nothing of ours. */
    v = verifier(path_in(pki_dir, "other-root.pem"), 0, 0);
    assert_int_equal(check(v, "stranger"), MDM_ID_OK);
    assert_int_equal(check(v, "dev1"), MDM_ID_ERR_UNTRUSTED);
    mdm_verifier_free(v);
}

static void
test_verifier_new_errors(void **state)
{
    char err[256];
    char tmpl[] = "/tmp/mdm_test_caXXXXXX";
    int fd;

    (void) state;
    err[0] = '\0';
    assert_null(
        mdm_verifier_new("/nonexistent/ca.pem", 8, 60, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read CA file /nonexistent/ca.pem"));

    fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello\n", 6), 6);
    close(fd);
    err[0] = '\0';
    assert_null(mdm_verifier_new(tmpl, 8, 60, err, sizeof(err)));
    assert_non_null(strstr(err, "no certificate in CA file"));
    assert_int_equal(ERR_peek_error(), 0);

    /* a key file holds no certificate either */
    err[0] = '\0';
    assert_null(mdm_verifier_new(path_in(pki_dir, "dev1.key"), 8, 60, err,
                                 sizeof(err)));
    assert_non_null(strstr(err, "no certificate in CA file"));

    /* NULL err buffer must not crash */
    assert_null(mdm_verifier_new(tmpl, 8, 60, NULL, 0));
    unlink(tmpl);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_cache_hit(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 16, 60);
    unsigned long hits, misses;
    size_t entries;
    time_t now = time(NULL);

    (void) state;
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 1);
    assert_int_equal(entries, 1);

    assert_int_equal(check_at(v, "dev1", now + 1), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    assert_int_equal(entries, 1);

    /* failures are never cached */
    assert_int_equal(check_at(v, "stranger", now), MDM_ID_ERR_UNTRUSTED);
    assert_int_equal(check_at(v, "stranger", now), MDM_ID_ERR_UNTRUSTED);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 3);
    assert_int_equal(entries, 1);
    mdm_verifier_free(v);

    /* size 0 or ttl 0: no cache */
    v = verifier(path_in(pki_dir, "cafile.pem"), 0, 60);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 0);
    assert_int_equal(entries, 0);
    mdm_verifier_free(v);
    v = verifier(path_in(pki_dir, "cafile.pem"), 16, 0);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits, 0);
    assert_int_equal(entries, 0);
    mdm_verifier_free(v);
}

static void
test_cache_bounded(void **state)
{
    static const size_t sizes[] = {1, 2, 7, 16};
    X509 *issuer = pki_cert("int");
    EVP_PKEY *ikey = pki_key("int"), *pub = pki_key("dev1");
    X509 *certs[40];
    mdm_verifier_t *v;
    unsigned long hits, misses;
    size_t entries, s, i, max;
    time_t now = time(NULL);
    char hex[65];

    (void) state;
    for (i = 0; i < 40; i++) {
        certs[i] = mint(issuer, ikey, pub, (long) i);
    }
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        v = verifier(path_in(pki_dir, "cafile.pem"), sizes[s], 3600);
        max = 0;
        for (i = 0; i < 40; i++) {
            assert_int_equal(mdm_cert_sha256_hex(certs[i], hex), 0);
            assert_int_equal(
                mdm_verifier_check(v, certs[i], hex, now + (time_t) i, NULL),
                MDM_ID_OK);
            mdm_verifier_stats(v, NULL, NULL, &entries);
            assert_true(entries <= sizes[s]);
            if (entries > max) {
                max = entries;
            }
        }
        /* it did cache something, just not everything */
        assert_true(max >= 1);
        mdm_verifier_stats(v, &hits, &misses, &entries);
        assert_int_equal(hits, 0);
        assert_int_equal(misses, 40);
        /* the last certificate is still cached, the first was evicted */
        assert_int_equal(mdm_cert_sha256_hex(certs[39], hex), 0);
        assert_int_equal(mdm_verifier_check(v, certs[39], hex, now + 40, NULL),
                         MDM_ID_OK);
        mdm_verifier_stats(v, &hits, NULL, NULL);
        assert_int_equal(hits, 1);
        assert_int_equal(mdm_cert_sha256_hex(certs[0], hex), 0);
        assert_int_equal(mdm_verifier_check(v, certs[0], hex, now + 41, NULL),
                         MDM_ID_OK);
        mdm_verifier_stats(v, &hits, NULL, &entries);
        assert_int_equal(hits, 1);
        assert_true(entries <= sizes[s]);
        mdm_verifier_free(v);
    }
    for (i = 0; i < 40; i++) {
        X509_free(certs[i]);
    }
    X509_free(issuer);
    EVP_PKEY_free(ikey);
    EVP_PKEY_free(pub);
}

static void
test_cache_ttl(void **state)
{
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 16, 60);
    unsigned long hits, misses;
    time_t now = time(NULL);

    (void) state;
    assert_int_equal(check_at(v, "dev1", now), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", now + 59), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    /* 60 s after the check the entry is stale: verified again */
    assert_int_equal(check_at(v, "dev1", now + 60), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 2);
    /* and cached again from that second check */
    assert_int_equal(check_at(v, "dev1", now + 61), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 2);
    mdm_verifier_free(v);
}

static void
test_cache_not_after(void **state)
{
    /* a ttl far longer than the certificate's life */
    mdm_verifier_t *v =
        verifier(path_in(pki_dir, "cafile.pem"), 16, 4000000000u);
    time_t nb = not_before_of("expired"), na = not_after_of("expired");
    unsigned long hits, misses;

    (void) state;
    assert_int_equal(check_at(v, "expired", nb + 60), MDM_ID_OK);
    assert_int_equal(check_at(v, "expired", na), MDM_ID_OK);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);
    assert_int_equal(check_at(v, "expired", na + 1), MDM_ID_ERR_EXPIRED);
    mdm_verifier_stats(v, &hits, &misses, NULL);
    assert_int_equal(hits, 1);

    /* the same for the cert of an ordinary device, years ahead */
    assert_int_equal(check_at(v, "dev1", time(NULL)), MDM_ID_OK);
    assert_int_equal(check_at(v, "dev1", not_after_of("dev1") + 3600),
                     MDM_ID_ERR_EXPIRED);
    mdm_verifier_free(v);
}

typedef struct {
    mdm_verifier_t *v;
    X509 *cert[2];
    char hex[2][65];
    time_t now;
    int failures;
} thread_arg_t;

static void *
check_thread(void *p)
{
    thread_arg_t *a = p;
    int i;

    for (i = 0; i < 300; i++) {
        if (mdm_verifier_check(a->v, a->cert[i % 2], a->hex[i % 2],
                               a->now + i / 50, NULL) != MDM_ID_OK) {
            a->failures++;
        }
    }
    return NULL;
}

static void
test_cache_threads(void **state)
{
    /* a small cache shared by threads, as in Apache's worker MPM */
    mdm_verifier_t *v = verifier(path_in(pki_dir, "cafile.pem"), 1, 3);
    thread_arg_t a[4];
    pthread_t t[4];
    unsigned long hits, misses;
    size_t entries;
    int i;

    (void) state;
    for (i = 0; i < 4; i++) {
        a[i].v = v;
        a[i].cert[0] = pki_cert(i % 2 ? "dev1" : "devec");
        a[i].cert[1] = pki_cert(i % 2 ? "dev2" : "devroot");
        assert_int_equal(mdm_cert_sha256_hex(a[i].cert[0], a[i].hex[0]), 0);
        assert_int_equal(mdm_cert_sha256_hex(a[i].cert[1], a[i].hex[1]), 0);
        a[i].now = time(NULL);
        a[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, check_thread, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
        X509_free(a[i].cert[0]);
        X509_free(a[i].cert[1]);
    }
    mdm_verifier_stats(v, &hits, &misses, &entries);
    assert_int_equal(hits + misses, 4 * 300);
    assert_true(entries <= 1);
    mdm_verifier_free(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_chain_time_is_now_argument),
        cmocka_unit_test(test_chain_partial_cafile),
        cmocka_unit_test(test_verifier_new_errors),
        cmocka_unit_test(test_cache_hit),
        cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_cache_ttl),
        cmocka_unit_test(test_cache_not_after),
        cmocka_unit_test(test_cache_threads),
    };

    return cmocka_run_group_tests(tests, identity_setup, NULL);
}
