/*
 * Unit tests for the Mdm-Signature header through the verifier
 * (mdm_verifier_signature()): the fast path that lifts the certificates
 * out of the CMS (mdm_cms_split()) and decodes them through the
 * verifier's cache must give the results of the plain path.
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

/**
 * mdm_verifier_signature() with the contract checks of verify_b64(). On
 * success hash must be the SHA-256 of the signer's DER.
 */
static mdm_id_rc_t
vsig(mdm_verifier_t *v, const char *sig, const unsigned char *body,
     size_t bodylen, X509 **signer, char hash[65])
{
    const char *why = NULL;
    char want[65];
    mdm_id_rc_t rc;

    *signer = NULL;
    /* not a hash: a result that was never written shows */
    memset(hash, 'x', 64);
    hash[64] = '\0';
    rc = mdm_verifier_signature(v, sig, strlen(sig), body, bodylen, signer,
                                hash, &why);
    assert_non_null(why);
    if (rc == MDM_ID_OK) {
        assert_non_null(*signer);
        fingerprint(*signer, want);
        assert_string_equal(hash, want);
    } else {
        assert_null(*signer);
    }
    assert_int_equal(ERR_peek_error(), 0);
    return rc;
}

/** vsig(), dropping the certificate. */
static mdm_id_rc_t
vsig_rc(mdm_verifier_t *v, const char *sig, const unsigned char *body,
        size_t bodylen)
{
    char hash[65];
    X509 *x = NULL;
    mdm_id_rc_t rc = vsig(v, sig, body, bodylen, &x, hash);

    X509_free(x);
    return rc;
}

/** verify_b64() (the uncached function), dropping the certificate. */
static mdm_id_rc_t
plain_rc(const char *sig, const unsigned char *body, size_t bodylen)
{
    X509 *x = NULL;
    mdm_id_rc_t rc = verify_b64(sig, body, bodylen, &x);

    X509_free(x);
    return rc;
}

/** The offset of the only occurrence of needle in hay. */
static size_t
find_once(const unsigned char *hay, size_t len, const unsigned char *needle,
          size_t nlen)
{
    size_t i, at = (size_t) -1, count = 0;

    for (i = 0; nlen <= len && i <= len - nlen; i++) {
        if (memcmp(hay + i, needle, nlen) == 0) {
            at = i;
            count++;
        }
    }
    assert_int_equal(count, 1);
    return at;
}

/**
 * A certificate with every field of like (serial, names, dates,
 * extensions, so also the subject key identifier) but pub's public key,
 * issued by int: what an attacker holding some other key would like the
 * verifier to mistake for like.
 */
static X509 *
mint_twin(X509 *like, EVP_PKEY *pub)
{
    EVP_PKEY *ikey = pki_key("int");
    X509 *x = X509_new();
    int i;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_get_version(like)), 1);
    assert_int_equal(X509_set_serialNumber(x, X509_get_serialNumber(like)), 1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_issuer_name(like)), 1);
    assert_int_equal(X509_set_subject_name(x, X509_get_subject_name(like)), 1);
    assert_int_equal(X509_set1_notBefore(x, X509_get0_notBefore(like)), 1);
    assert_int_equal(X509_set1_notAfter(x, X509_get0_notAfter(like)), 1);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    for (i = 0; i < X509_get_ext_count(like); i++) {
        assert_int_equal(X509_add_ext(x, X509_get_ext(like, i), -1), 1);
    }
    assert_true(X509_sign(x, ikey, EVP_sha256()) > 0);
    EVP_PKEY_free(ikey);
    return x;
}

static void
test_vsig_same_as_plain(void **state)
{
    const char *names[] = {"dev1", "devec"};
    const EVP_MD *mds[2];
    mdm_verifier_t *v = cert_cache_verifier(16);
    char hash[65], hash2[65], want[65];
    X509 *x, *x2, *plain, *expect;
    unsigned char *body;
    size_t nc;
    char *sig;
    int n, m;

    (void) state;
    mds[0] = EVP_sha1();
    mds[1] = EVP_sha256();
    body = malloc(TEST_BODY_LEN);
    assert_non_null(body);
    for (n = 0; n < 2; n++) {
        expect = pki_cert(names[n]);
        fingerprint(expect, want);
        for (m = 0; m < 2; m++) {
            sig = sign_b64(names[n], mds[m], m);
            /* the fast path, or this test would prove nothing */
            assert_true(splits(sig, &nc));
            assert_int_equal(nc, 1);

            plain = NULL;
            assert_int_equal(verify_b64(sig, test_body, TEST_BODY_LEN, &plain),
                             MDM_ID_OK);
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                             MDM_ID_OK);
            assert_int_equal(X509_cmp(x, plain), 0);
            assert_int_equal(X509_cmp(x, expect), 0);
            assert_string_equal(hash, want);

            /* again: the very same decoded certificate, still verified */
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash2),
                             MDM_ID_OK);
            assert_ptr_equal(x2, x);
            assert_string_equal(hash2, want);
            X509_free(x2);

            /* a cached certificate does not spare the signature check */
            memcpy(body, test_body, TEST_BODY_LEN);
            body[TEST_BODY_LEN / 2] ^= 0x20;
            assert_int_equal(vsig_rc(v, sig, body, TEST_BODY_LEN),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(plain_rc(sig, body, TEST_BODY_LEN),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(vsig_rc(v, sig, test_body, 0),
                             MDM_ID_ERR_SIGNATURE);
            /* and the good body still passes afterwards */
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash2),
                             MDM_ID_OK);
            assert_ptr_equal(x2, x);
            X509_free(x2);

            X509_free(x);
            X509_free(plain);
            free(sig);
        }
        X509_free(expect);
    }
    free(body);
    mdm_verifier_free(v);
}

static void
test_vsig_synthetic(void **state)
{
    unsigned char *hdr, *body, *pem, *der;
    size_t hdrlen, bodylen, pemlen, derlen, i, nc;
    X509 *x, *x2, *plain = NULL, *expect;
    char hash[65], want[65], *sig;
    mdm_verifier_t *v = cert_cache_verifier(16);
    BIO *bio;

    (void) state;
    hdr = read_all(path_in(samples_dir, "synthetic/Mdm-Signature.header.txt"),
                   &hdrlen);
    body = read_all(
        path_in(samples_dir, "synthetic/checkin-body.TokenUpdate.plist"),
        &bodylen);
    pem = read_all(path_in(samples_dir, "synthetic/signer-identity.cert.pem"),
                   &pemlen);
    bio = BIO_new_mem_buf(pem, (int) pemlen);
    expect = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(expect);
    fingerprint(expect, want);

    assert_true(splits((char *) hdr, &nc));
    assert_int_equal(nc, 1);
    assert_int_equal(verify_b64((char *) hdr, body, bodylen, &plain),
                     MDM_ID_OK);
    assert_int_equal(vsig(v, (char *) hdr, body, bodylen, &x, hash), MDM_ID_OK);
    assert_string_equal(hash, want);
    assert_int_equal(X509_cmp(x, expect), 0);
    assert_int_equal(X509_cmp(x, plain), 0);
    assert_int_equal(vsig(v, (char *) hdr, body, bodylen, &x2, hash),
                     MDM_ID_OK);
    assert_ptr_equal(x2, x);
    assert_string_equal(hash, want);
    X509_free(x2);

    /* changed body bytes, with the certificate in the cache */
    for (i = 0; i < bodylen; i += 37) {
        body[i] ^= 0x01;
        assert_int_equal(vsig_rc(v, (char *) hdr, body, bodylen),
                         MDM_ID_ERR_SIGNATURE);
        body[i] ^= 0x01;
    }
    /* a changed signature value (the last bytes of the SignerInfo) */
    der = unb64((char *) hdr, &derlen);
    der[derlen - 1] ^= 0x01;
    sig = b64(der, derlen, 0);
    assert_true(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, body, bodylen), MDM_ID_ERR_SIGNATURE);
    assert_int_equal(plain_rc(sig, body, bodylen), MDM_ID_ERR_SIGNATURE);
    free(sig);

    OPENSSL_free(der);
    X509_free(x);
    X509_free(plain);
    X509_free(expect);
    free(hdr);
    free(body);
    free(pem);
    mdm_verifier_free(v);
}

static void
test_vsig_signers(void **state)
{
    signer_spec_t s[2] = {{"dev1", NULL, 0}, {"dev2", NULL, 0}};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *other[1];
    unsigned char *der;
    size_t derlen, nc;
    char *sig;

    (void) state;
    s[0].md = EVP_sha256();
    s[1].md = EVP_sha256();

    /* two valid signers */
    make_cms(test_body, TEST_BODY_LEN, s, 2, 0, &der, &derlen);
    sig = b64(der, derlen, 0);
    assert_true(splits(sig, &nc));
    assert_int_equal(nc, 2);
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    /* and once more, with both certificates cached */
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    free(sig);
    OPENSSL_free(der);

    /* no certificate at all (no certificate set: the fallback path) */
    s[0].flags = CMS_NOCERTS;
    make_cms(test_body, TEST_BODY_LEN, s, 1, 0, &der, &derlen);
    sig = b64(der, derlen, 0);
    assert_false(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    free(sig);
    OPENSSL_free(der);

    /* the certificate set holds somebody else's certificate only */
    other[0] = pki_cert("dev2");
    sig = sign_with_certs("dev1", 0, other, 1);
    assert_true(splits(sig, &nc));
    assert_int_equal(nc, 1);
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_SIGNERS);
    free(sig);
    X509_free(other[0]);
    mdm_verifier_free(v);
}

static void
test_vsig_swapped_cert(void **state)
{
    static const unsigned int sid[] = {0, CMS_USE_KEYID};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *dev1 = pki_cert("dev1"), *twin, *x;
    EVP_PKEY *k2 = pki_key("dev2");
    unsigned char *d1, *dt, *der;
    size_t d1len, dtlen, derlen, at, i;
    char hash[65], want[65], *good, *bad;
    mdm_id_rc_t rc;

    (void) state;
    twin = mint_twin(dev1, k2);
    d1 = cert_der(dev1, &d1len);
    dt = cert_der(twin, &dtlen);
    /* same length (RSA-2048 key, same issuer key): spliced in place */
    assert_int_equal(dtlen, d1len);
    assert_memory_not_equal(dt, d1, d1len);
    fingerprint(dev1, want);

    for (i = 0; i < 2; i++) {
        /* dev1's key, with dev1's certificate, then the twin in its place */
        good = sign_with_certs("dev1", sid[i], &dev1, 1);
        der = unb64(good, &derlen);
        at = find_once(der, derlen, d1, d1len);
        memcpy(der + at, dt, dtlen);
        bad = b64(der, derlen, 0);
        assert_true(splits(bad, NULL));

        /* the genuine one first, so that dev1 is in the cache */
        assert_int_equal(vsig(v, good, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_string_equal(hash, want);
        X509_free(x);
        rc = vsig_rc(v, bad, test_body, TEST_BODY_LEN);
        assert_true(rc == MDM_ID_ERR_SIGNATURE || rc == MDM_ID_ERR_SIGNERS);
        assert_int_equal(plain_rc(bad, test_body, TEST_BODY_LEN), rc);
        /* the twin is cached now: neither result changes */
        assert_int_equal(vsig_rc(v, bad, test_body, TEST_BODY_LEN), rc);
        assert_int_equal(vsig(v, good, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_string_equal(hash, want);
        assert_int_equal(X509_cmp(x, dev1), 0);
        X509_free(x);
        free(good);
        free(bad);
        OPENSSL_free(der);
    }
    OPENSSL_free(d1);
    OPENSSL_free(dt);
    X509_free(twin);
    X509_free(dev1);
    EVP_PKEY_free(k2);
    mdm_verifier_free(v);
}

static void
test_vsig_with_intermediate(void **state)
{
    static const char *sets[][3] = {
        /* signer last in the argument list: the leaf is no first cert */
        {"devec", "int", "dev1"},
        {"int", "dev1", NULL},
        {"dev1", "int", "devec"},
    };
    static const char *signer[] = {"dev1", "dev1", "devec"};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *certs[3], *x, *x2, *expect;
    mdm_cms_split_t split;
    unsigned char *der, *ld;
    size_t derlen, ldlen, i, j, n, first = 0;
    char hash[65], want[65], *sig;

    (void) state;
    for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        for (n = 0; n < 3 && sets[i][n] != NULL; n++) {
            certs[n] = pki_cert(sets[i][n]);
        }
        expect = pki_cert(signer[i]);
        fingerprint(expect, want);
        sig = sign_with_certs(signer[i], 0, certs, (int) n);

        /* where the signer's certificate is in the encoded set */
        der = unb64(sig, &derlen);
        ld = cert_der(expect, &ldlen);
        assert_int_equal(mdm_cms_split(der, derlen, &split), 0);
        assert_int_equal(split.ncerts, n);
        for (j = 0; j < n; j++) {
            if (split.cert_len[j] == ldlen &&
                memcmp(split.cert[j], ld, ldlen) == 0) {
                break;
            }
        }
        assert_true(j < n);
        if (j > 0) {
            first++;
        }
        free(split.stripped);
        OPENSSL_free(ld);
        OPENSSL_free(der);

        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x, expect), 0);
        assert_string_equal(hash, want);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash),
                         MDM_ID_OK);
        assert_ptr_equal(x2, x);
        assert_string_equal(hash, want);
        X509_free(x2);
        X509_free(x);
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);

        free(sig);
        X509_free(expect);
        for (j = 0; j < n; j++) {
            X509_free(certs[j]);
        }
    }
    /* at least one set put another certificate before the signer's */
    assert_true(first > 0);
    mdm_verifier_free(v);
}

static void
test_vsig_ber(void **state)
{
    static const char *names[] = {"dev1", "devec"};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *x, *x2, *expect;
    unsigned char *ber;
    char hash[65], want[65], *sig;
    size_t berlen, i;

    (void) state;
    for (i = 0; i < 2; i++) {
        expect = pki_cert(names[i]);
        fingerprint(expect, want);
        ber = sign_ber(names[i], test_body, TEST_BODY_LEN, &berlen);
        sig = b64(ber, berlen, 1);
        /* the splitter refuses BER: this goes the fallback way */
        assert_false(splits(sig, NULL));

        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x, expect), 0);
        assert_string_equal(hash, want);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x2, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x2, expect), 0);
        assert_string_equal(hash, want);
        X509_free(x2);
        X509_free(x);
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);
        free(sig);
        OPENSSL_free(ber);
        X509_free(expect);
    }
    mdm_verifier_free(v);
}

static void
test_vsig_reencoded(void **state)
{
    /* outer headers, certificate set header: the fast path only takes
     * definite lengths (and then writes DER lengths itself) */
    static const int lbs[][2] = {
        {LEN_BER, LEN_DER}, {LEN_DER, LEN_BER}, {LEN_BER, LEN_BER},
        {4, LEN_DER},       {LEN_DER, 4},       {4, 4},
        {3, LEN_BER},       {LEN_DER, LEN_DER},
    };
    signer_spec_t s = {"dev1", NULL, 0};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *x, *expect = pki_cert("dev1");
    unsigned char *der;
    size_t derlen, i;
    char hash[65], want[65], *sig;
    blob_t b;

    (void) state;
    s.md = EVP_sha256();
    fingerprint(expect, want);
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    for (i = 0; i < sizeof(lbs) / sizeof(lbs[0]); i++) {
        b = reencode(der, derlen, lbs[i][0], lbs[i][1]);
        if (lbs[i][0] == LEN_DER && lbs[i][1] == LEN_DER) {
            assert_int_equal(b.len, derlen);
            assert_memory_equal(b.p, der, derlen);
        }
        sig = b64(b.p, b.len, 0);
        assert_int_equal(splits(sig, NULL),
                         lbs[i][0] != LEN_BER && lbs[i][1] != LEN_BER);
        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        assert_int_equal(X509_cmp(x, expect), 0);
        assert_string_equal(hash, want);
        X509_free(x);
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);
        free(sig);
        free(b.p);
    }
    OPENSSL_free(der);
    X509_free(expect);
    mdm_verifier_free(v);
}

static void
test_vsig_many_certs(void **state)
{
    static const char *extra[] = {
        "root",     "int",        "dev2",       "devec",
        "devroot",  "expired",    "notyet",     "serverauth",
        "stranger", "selfsigned", "other-root", "server",
    };
    static const size_t totals[] = {2, 8, 9, 13};
    mdm_verifier_t *v = cert_cache_verifier(4);
    X509 *certs[13], *x, *expect = pki_cert("dev1");
    char hash[65], want[65], *sig;
    size_t t, i, nc;
    int round;

    (void) state;
    fingerprint(expect, want);
    for (t = 0; t < sizeof(totals) / sizeof(totals[0]); t++) {
        /* the signer's certificate in the middle of the set */
        for (i = 0; i + 1 < totals[t]; i++) {
            certs[i + (i >= totals[t] / 2)] = pki_cert(extra[i]);
        }
        certs[totals[t] / 2] = pki_cert("dev1");
        sig = sign_with_certs("dev1", 0, certs, (int) totals[t]);
        assert_int_equal(splits(sig, &nc), totals[t] <= MDM_CMS_MAX_CERTS);
        if (totals[t] <= MDM_CMS_MAX_CERTS) {
            assert_int_equal(nc, totals[t]);
        }
        assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
        /* more certificates than cache entries: twice, to evict */
        for (round = 0; round < 2; round++) {
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                             MDM_ID_OK);
            assert_int_equal(X509_cmp(x, expect), 0);
            assert_string_equal(hash, want);
            X509_free(x);
        }
        assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN - 1),
                         MDM_ID_ERR_SIGNATURE);
        free(sig);
        for (i = 0; i < totals[t]; i++) {
            X509_free(certs[i]);
        }
    }
    X509_free(expect);
    mdm_verifier_free(v);
}

static void
test_vsig_bad_cert_in_set(void **state)
{
    signer_spec_t s = {"dev1", NULL, 0};
    mdm_verifier_t *v = cert_cache_verifier(16);
    X509 *dev1 = pki_cert("dev1");
    unsigned char *der, *d1;
    size_t derlen, d1len, at;
    char *sig;

    (void) state;
    s.md = EVP_sha256();
    d1 = cert_der(dev1, &d1len);
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    at = find_once(der, derlen, d1, d1len);

    /* the TBSCertificate is no SEQUENCE: the set splits, d2i_X509 fails */
    assert_int_equal(der[at + 4], 0x30);
    der[at + 4] = 0x04;
    sig = b64(der, derlen, 0);
    assert_true(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_DECODE);
    assert_int_equal(plain_rc(sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_DECODE);
    free(sig);
    der[at + 4] = 0x30;

    /* the certificate is no SEQUENCE: refused by the splitter and then by
     * the whole decoder */
    der[at] = 0x31;
    sig = b64(der, derlen, 0);
    assert_false(splits(sig, NULL));
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN),
                     MDM_ID_ERR_DECODE);
    free(sig);
    der[at] = 0x30;

    /* and the repaired one passes */
    sig = b64(der, derlen, 0);
    assert_int_equal(vsig_rc(v, sig, test_body, TEST_BODY_LEN), MDM_ID_OK);
    free(sig);

    OPENSSL_free(d1);
    OPENSSL_free(der);
    X509_free(dev1);
    mdm_verifier_free(v);
}

typedef struct {
    mdm_verifier_t *v;
    const char *sig[2];
    const char *want[2];
    int id;
    int failures;
} vsig_thread_arg_t;

/* No cmocka assertions in here: they longjmp out of the main thread. */
static void *
vsig_thread(void *p)
{
    vsig_thread_arg_t *a = p;
    unsigned char body[TEST_BODY_LEN], *der, md[32];
    unsigned int mdlen;
    const char *why;
    char hash[65], fp[65];
    mdm_id_rc_t rc;
    X509 *x;
    int i, j, n, k;

    memcpy(body, test_body, TEST_BODY_LEN);
    for (i = 0; i < 120; i++) {
        j = (i + a->id) % 2;
        x = NULL;
        rc = mdm_verifier_signature(a->v, a->sig[j], strlen(a->sig[j]), body,
                                    TEST_BODY_LEN, &x, hash, &why);
        if (rc != MDM_ID_OK || x == NULL || strcmp(hash, a->want[j]) != 0) {
            a->failures++;
            X509_free(x);
            continue;
        }
        /* the certificate itself, fingerprinted independently */
        der = NULL;
        n = i2d_X509(x, &der);
        mdlen = 0;
        if (n <= 0 ||
            EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL) != 1) {
            a->failures++;
        } else {
            for (k = 0; k < 32; k++) {
                sprintf(fp + 2 * k, "%02x", md[k]);
            }
            if (strcmp(fp, a->want[j]) != 0) {
                a->failures++;
            }
        }
        OPENSSL_free(der);
        X509_free(x);
        if (i % 10 == 0) {
            body[i % TEST_BODY_LEN] ^= 0x01;
            x = NULL;
            if (mdm_verifier_signature(a->v, a->sig[j], strlen(a->sig[j]), body,
                                       TEST_BODY_LEN, &x, hash,
                                       &why) != MDM_ID_ERR_SIGNATURE ||
                x != NULL) {
                a->failures++;
            }
            body[i % TEST_BODY_LEN] ^= 0x01;
        }
        if (ERR_peek_error() != 0) {
            a->failures++;
        }
    }
    return NULL;
}

static void
test_vsig_threads(void **state)
{
    /* one entry for two devices: every thread keeps evicting the other's */
    mdm_verifier_t *v = cert_cache_verifier(1);
    vsig_thread_arg_t a[4];
    pthread_t t[4];
    char *sig[2], want[2][65];
    X509 *x;
    int i;

    (void) state;
    sig[0] = sign_b64("dev1", EVP_sha256(), 0);
    sig[1] = sign_b64("dev2", EVP_sha1(), 1);
    x = pki_cert("dev1");
    fingerprint(x, want[0]);
    X509_free(x);
    x = pki_cert("dev2");
    fingerprint(x, want[1]);
    X509_free(x);
    assert_true(splits(sig[0], NULL));
    assert_true(splits(sig[1], NULL));
    for (i = 0; i < 4; i++) {
        a[i].v = v;
        a[i].sig[0] = sig[0];
        a[i].sig[1] = sig[1];
        a[i].want[0] = want[0];
        a[i].want[1] = want[1];
        a[i].id = i;
        a[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, vsig_thread, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(a[i].failures, 0);
    }
    free(sig[0]);
    free(sig[1]);
    mdm_verifier_free(v);
}

/*
 * The usual device shape is verified directly from the DER of its
 * SignerInfo (mdm_verifier_direct() counts it); every other shape, and
 * every signature the direct path does not accept, goes through
 * CMS_verify(), which decides: both give the same answers.
 */
static void
test_vsig_direct(void **state)
{
    const char *names[] = {"dev1", "devec"};
    const EVP_MD *mds[3];
    mdm_verifier_t *v = cert_cache_verifier(16);
    signer_spec_t spec = {"dev1", NULL, CMS_CADES};
    unsigned char *body, *der;
    unsigned long before;
    size_t derlen;
    X509 *x = NULL;
    char hash[65], *sig;
    int n, m;

    (void) state;
    mds[0] = EVP_sha1();
    mds[1] = EVP_sha256();
    mds[2] = EVP_sha512();
    body = malloc(TEST_BODY_LEN);
    assert_non_null(body);
    memcpy(body, test_body, TEST_BODY_LEN);
    body[1] ^= 0x01;
    for (n = 0; n < 2; n++) {
        for (m = 0; m < 3; m++) {
            sig = sign_b64(names[n], mds[m], m == 1);
            before = mdm_verifier_direct(v);
            assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                             MDM_ID_OK);
            X509_free(x);
            assert_int_equal(mdm_verifier_direct(v), before + 1);
            /* a body it does not cover: refused, and not directly */
            assert_int_equal(vsig_rc(v, sig, body, TEST_BODY_LEN),
                             MDM_ID_ERR_SIGNATURE);
            assert_int_equal(mdm_verifier_direct(v), before + 1);
            free(sig);
        }
    }

    /* an ESS signing-certificate attribute (CAdES): OpenSSL checks it, so
     * the signature goes the CMS way, and still verifies */
    spec.md = EVP_sha256();
    make_cms(test_body, TEST_BODY_LEN, &spec, 1, 0, &der, &derlen);
    sig = b64(der, derlen, 0);
    OPENSSL_free(der);
    before = mdm_verifier_direct(v);
    assert_int_equal(vsig(v, sig, test_body, TEST_BODY_LEN, &x, hash),
                     MDM_ID_OK);
    X509_free(x);
    assert_int_equal(mdm_verifier_direct(v), before);
    free(sig);

    /* no certificate cache: no direct path */
    {
        mdm_verifier_t *nc = cert_cache_verifier(0);

        sig = sign_b64("dev1", EVP_sha256(), 0);
        assert_int_equal(vsig(nc, sig, test_body, TEST_BODY_LEN, &x, hash),
                         MDM_ID_OK);
        X509_free(x);
        assert_int_equal(mdm_verifier_direct(nc), 0);
        free(sig);
        mdm_verifier_free(nc);
    }
    free(body);
    mdm_verifier_free(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vsig_same_as_plain),
        cmocka_unit_test(test_vsig_synthetic),
        cmocka_unit_test(test_vsig_signers),
        cmocka_unit_test(test_vsig_swapped_cert),
        cmocka_unit_test(test_vsig_with_intermediate),
        cmocka_unit_test(test_vsig_ber),
        cmocka_unit_test(test_vsig_reencoded),
        cmocka_unit_test(test_vsig_many_certs),
        cmocka_unit_test(test_vsig_bad_cert_in_set),
        cmocka_unit_test(test_vsig_threads),
        cmocka_unit_test(test_vsig_direct),
    };

    return cmocka_run_group_tests(tests, identity_setup, NULL);
}
