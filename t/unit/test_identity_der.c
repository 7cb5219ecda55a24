/*
 * Unit tests for mdm_cms_split() (core/mdm_der.c), the DER reader behind
 * the Mdm-Signature fast path: real signatures and crafted shapes.
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

/** mdm_cms_split() that must refuse: nothing is left to free. */
static void
assert_no_split(const unsigned char *in, size_t len)
{
    mdm_cms_split_t s;

    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(mdm_cms_split(in, len, &s), -1);
    assert_null(s.stripped);
}

static void
test_split_real(void **state)
{
    static const char *names[] = {"dev1", "int"};
    X509 *certs[2], *x;
    STACK_OF(X509) * got, *mine;
    CMS_ContentInfo *cms;
    mdm_cms_split_t s;
    unsigned char *der, *cd[2];
    const unsigned char *p;
    size_t derlen, cdlen[2], i, j, seen[2] = {0, 0};
    char *sig;
    BIO *in;

    (void) state;
    for (i = 0; i < 2; i++) {
        certs[i] = pki_cert(names[i]);
        cd[i] = cert_der(certs[i], &cdlen[i]);
    }
    sig = sign_with_certs("dev1", 0, certs, 2);
    der = unb64(sig, &derlen);

    assert_int_equal(mdm_cms_split(der, derlen, &s), 0);
    assert_int_equal(s.ncerts, 2);
    for (i = 0; i < s.ncerts; i++) {
        /* borrowed from the input, not copied */
        assert_true(s.cert[i] >= der && s.cert_len[i] <= derlen &&
                    (size_t) (s.cert[i] - der) <= derlen - s.cert_len[i]);
        for (j = 0; j < 2; j++) {
            if (s.cert_len[i] == cdlen[j] &&
                memcmp(s.cert[i], cd[j], cdlen[j]) == 0) {
                seen[j]++;
            }
        }
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);

    /* what is left is a ContentInfo without certificates */
    assert_non_null(s.stripped);
    assert_true(s.stripped_len < derlen - cdlen[0] - cdlen[1]);
    p = s.stripped;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) s.stripped_len);
    assert_non_null(cms);
    assert_ptr_equal(p, s.stripped + s.stripped_len);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
    got = CMS_get1_certs(cms);
    assert_true(got == NULL || sk_X509_num(got) == 0);
    sk_X509_pop_free(got, X509_free);
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 1);
    /* and still the signature, given the lifted certificates */
    mine = sk_X509_new_null();
    assert_non_null(mine);
    for (i = 0; i < s.ncerts; i++) {
        p = s.cert[i];
        x = d2i_X509(NULL, &p, (long) s.cert_len[i]);
        assert_non_null(x);
        assert_true(sk_X509_push(mine, x) > 0);
    }
    in = BIO_new_mem_buf(test_body, (int) TEST_BODY_LEN);
    assert_int_equal(
        CMS_verify(cms, mine, NULL, in, NULL,
                   CMS_DETACHED | CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY),
        1);
    BIO_free(in);
    sk_X509_pop_free(mine, X509_free);
    CMS_ContentInfo_free(cms);

    /* every prefix, and one byte more, is refused */
    for (i = 0; i < derlen; i++) {
        assert_no_split(der, i);
    }
    der = OPENSSL_realloc(der, derlen + 1);
    assert_non_null(der);
    der[derlen] = 0;
    assert_no_split(der, derlen + 1);

    free(s.stripped);
    OPENSSL_free(der);
    free(sig);
    for (i = 0; i < 2; i++) {
        OPENSSL_free(cd[i]);
        X509_free(certs[i]);
    }
}

static void
test_split_refused_cms(void **state)
{
    signer_spec_t s = {"dev1", NULL, CMS_NOCERTS};
    static const char *extra[] = {"root",   "int",        "dev2",
                                  "devec",  "devroot",    "expired",
                                  "notyet", "serverauth", "dev1"};
    X509 *certs[9];
    CMS_ContentInfo *cms;
    unsigned char *der;
    size_t derlen, i;
    char *sig;
    BIO *in;

    (void) state;
    s.md = EVP_sha256();
    /* BER */
    der = sign_ber("dev1", test_body, TEST_BODY_LEN, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);

    /* a SignedData without certificates */
    make_cms(test_body, TEST_BODY_LEN, &s, 1, 0, &der, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);

    /* not a SignedData */
    in = BIO_new_mem_buf(test_body, (int) TEST_BODY_LEN);
    cms = CMS_data_create(in, CMS_BINARY);
    assert_non_null(cms);
    der = cms_der(cms, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);

    /* nine certificates */
    for (i = 0; i < 9; i++) {
        certs[i] = pki_cert(extra[i]);
    }
    sig = sign_with_certs("dev1", 0, certs, 9);
    der = unb64(sig, &derlen);
    assert_no_split(der, derlen);
    OPENSSL_free(der);
    free(sig);
    /* eight are fine */
    sig = sign_with_certs("dev1", 0, certs + 1, 8);
    assert_true(splits(sig, &i));
    assert_int_equal(i, 8);
    free(sig);
    for (i = 0; i < 9; i++) {
        X509_free(certs[i]);
    }
}

static const unsigned char oid_signed_data[] = {
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
static const unsigned char oid_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x07, 0x01};

enum { L_CI, L_EXP, L_SD, L_CERTS, L_CERT, L_MAX };

typedef struct {
    size_t ncerts;            /* certificates: SEQUENCEs of filler */
    size_t cert_len;          /* content length of each */
    size_t si_len;            /* content length of the signerInfos SET */
    int lb[L_MAX];            /* length encodings, see tlv() */
    int certs_tag;            /* 0: 0xa0 */
    int cert_tag;             /* 0: 0x30 */
    int dup_certs;            /* a second [0] after the first */
    int certs_last;           /* [0] after signerInfos (not where it belongs) */
    const unsigned char *oid; /* NULL: SignedData */
    blob_t *after_sd; /* appended inside [0] EXPLICIT, after SignedData */
} sd_shape_t;

/** The certificate set's elements of shape (no header). */
static blob_t
shape_certs(const sd_shape_t *s)
{
    blob_t b = blob(NULL, 0);
    size_t i;

    for (i = 0; i < s->ncerts; i++) {
        b = cat(b, tlv(s->cert_tag ? (unsigned char) s->cert_tag : 0x30,
                       filler(s->cert_len, (unsigned) i), s->lb[L_CERT]));
    }
    return b;
}

/** A ContentInfo(SignedData) of shape, with or without certificates. */
static blob_t
shape_der(const sd_shape_t *s, int with_certs)
{
    unsigned char certs_tag =
        s->certs_tag ? (unsigned char) s->certs_tag : 0xa0;
    blob_t sd, exp, certs;
    int lb_sd = with_certs ? s->lb[L_SD] : LEN_DER;

    sd = blob("\x02\x01\x01", 3);
    sd = cat(sd, tlv(0x31, blob(NULL, 0), LEN_DER));
    sd = cat(sd, tlv(0x30, blob(oid_data, sizeof(oid_data)), LEN_DER));
    if (with_certs && !s->certs_last) {
        sd = cat(sd, tlv(certs_tag, shape_certs(s), s->lb[L_CERTS]));
        if (s->dup_certs) {
            sd = cat(sd, tlv(certs_tag, shape_certs(s), s->lb[L_CERTS]));
        }
    }
    sd = cat(sd, tlv(0x31, filler(s->si_len, 99), LEN_DER));
    if (with_certs && s->certs_last) {
        sd = cat(sd, tlv(certs_tag, shape_certs(s), s->lb[L_CERTS]));
    }
    exp = tlv(0x30, sd, lb_sd);
    if (with_certs && s->after_sd != NULL) {
        exp = cat(exp, blob(s->after_sd->p, s->after_sd->len));
    }
    certs = tlv(0xa0, exp, with_certs ? s->lb[L_EXP] : LEN_DER);
    return tlv(
        0x30,
        cat(blob(s->oid ? s->oid : oid_signed_data, sizeof(oid_signed_data)),
            certs),
        with_certs ? s->lb[L_CI] : LEN_DER);
}

/**
 * Split shape's encoding: the certificates must be the very bytes of the
 * input and the rest the DER of the same ContentInfo without them.
 */
static void
assert_split_shape(const sd_shape_t *s)
{
    blob_t in = shape_der(s, 1), want = shape_der(s, 0), one;
    mdm_cms_split_t out;
    size_t i, prev = 0;

    assert_int_equal(mdm_cms_split(in.p, in.len, &out), 0);
    assert_int_equal(out.ncerts, s->ncerts);
    for (i = 0; i < s->ncerts; i++) {
        one = tlv(0x30, filler(s->cert_len, (unsigned) i), s->lb[L_CERT]);
        assert_int_equal(out.cert_len[i], one.len);
        /* in order, inside the input, not overlapping */
        assert_true(out.cert[i] >= in.p + prev);
        assert_true((size_t) (out.cert[i] - in.p) <= in.len - one.len);
        assert_memory_equal(out.cert[i], one.p, one.len);
        prev = (size_t) (out.cert[i] - in.p) + one.len;
        free(one.p);
    }
    assert_int_equal(out.stripped_len, want.len);
    assert_memory_equal(out.stripped, want.p, want.len);
    /* nothing more to lift from what is left */
    assert_no_split(out.stripped, out.stripped_len);
    free(out.stripped);
    free(in.p);
    free(want.p);
}

static void
assert_no_split_shape(const sd_shape_t *s)
{
    blob_t in = shape_der(s, 1);

    assert_no_split(in.p, in.len);
    free(in.p);
}

static const sd_shape_t base_shape = {2, 10, 20, {0}, 0, 0, 0, 0, NULL, NULL};

static void
test_split_crafted(void **state)
{
    static const unsigned char oid_enveloped[] = {
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03};
    sd_shape_t s;
    blob_t b, c, extra;
    size_t i;
    int l;

    (void) state;
    s = base_shape;
    assert_split_shape(&s);
    /* one to eight certificates; the splitter does not look inside */
    for (i = 1; i <= MDM_CMS_MAX_CERTS; i++) {
        s.ncerts = i;
        assert_split_shape(&s);
        s.cert_len = 0;
        assert_split_shape(&s);
        s.cert_len = 10;
    }
    s.ncerts = MDM_CMS_MAX_CERTS + 1;
    assert_no_split_shape(&s);
    s.ncerts = 20;
    assert_no_split_shape(&s);
    /* an empty set lifts nothing */
    s.ncerts = 0;
    assert_no_split_shape(&s);

    /* long-form lengths where DER wants the short form, at each level */
    for (l = 0; l < L_MAX; l++) {
        s = base_shape;
        s.lb[l] = 1;
        assert_split_shape(&s);
        s.lb[l] = 4;
        assert_split_shape(&s);
        /* five length octets: never DER */
        s.lb[l] = 5;
        assert_no_split_shape(&s);
        /* indefinite length at any level */
        s.lb[l] = LEN_BER;
        assert_no_split_shape(&s);
    }
    s = base_shape;
    for (l = 0; l < L_MAX; l++) {
        s.lb[l] = 4;
    }
    assert_split_shape(&s);

    /* shapes that are not a SignedData with one certificate set */
    s = base_shape;
    s.oid = oid_enveloped;
    assert_no_split_shape(&s);
    s.oid = oid_data;
    assert_no_split_shape(&s);
    s = base_shape;
    s.dup_certs = 1;
    assert_no_split_shape(&s);
    s = base_shape;
    s.cert_tag = 0x31;
    assert_no_split_shape(&s);
    s.cert_tag = 0xa1; /* another CertificateChoices */
    assert_no_split_shape(&s);
    s.cert_tag = 0x1f; /* multi-octet tag */
    assert_no_split_shape(&s);
    s = base_shape;
    s.certs_tag = 0xa1; /* [1] crls only: no certificate set */
    assert_no_split_shape(&s);
    s = base_shape;
    extra = blob("\x05\x00", 2);
    s.after_sd = &extra;
    assert_no_split_shape(&s);
    free(extra.p);

    /* the ContentInfo and SignedData must be SEQUENCEs, [0] the wrapper */
    for (i = 0; i < 3; i++) {
        static const size_t at[] = {0, 13, 15};
        static const unsigned char bad[] = {0x31, 0xa1, 0x31};

        b = shape_der(&base_shape, 1);
        assert_int_equal(b.p[at[i]], i == 1 ? 0xa0 : 0x30);
        b.p[at[i]] = bad[i];
        assert_no_split(b.p, b.len);
        free(b.p);
    }
    /* an element after [0] inside the ContentInfo */
    c = shape_der(&base_shape, 1);
    assert_int_equal(c.p[1], c.len - 2);
    b = tlv(0x30, cat(blob(c.p + 2, c.len - 2), blob("\x05\x00", 2)), LEN_DER);
    assert_no_split(b.p, b.len);
    free(b.p);
    free(c.p);
    /* an OID of the right length but another tag */
    b = shape_der(&base_shape, 1);
    b.p[2] = 0x04;
    assert_no_split(b.p, b.len);
    free(b.p);

    /* every prefix of a good input, and trailing bytes */
    b = shape_der(&base_shape, 1);
    for (i = 0; i < b.len; i++) {
        assert_no_split(b.p, i);
    }
    b = cat(b, blob("", 1));
    assert_no_split(b.p, b.len);
    free(b.p);
    assert_no_split((const unsigned char *) "", 0);
}

static void
test_split_lengths(void **state)
{
    /* lengths that do not fit: in headers, and past what holds them */
    static const struct {
        const char *bytes;
        size_t len;
    } raw[] = {
        {"\x30", 1},
        {"\x30\x80", 2},
        {"\x30\x80\x00\x00", 4},
        {"\x30\x81", 2},
        {"\x30\x82\x01", 3},
        {"\x30\x84\xff\xff\xff\xff", 6},
        {"\x30\x84\xff\xff\xff\xff\x06\x09", 8},
        {"\x30\x84\x00\x00\x00\x02\x05\x00", 8},
        {"\x30\x85\x00\x00\x00\x00\x02\x05\x00", 9},
        {"\x30\x88\x00\x00\x00\x00\x00\x00\x00\x02\x05\x00", 12},
        {"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xf0\x05\x00", 12},
        {"\x30\x8f\x05\x00", 4},
        {"\x30\xff\x05\x00", 4},
        {"\x30\x02\x05\x00", 4},
        {"\x1f\x02\x05\x00", 4},
        {"\x3f\x81\x00\x00", 4},
    };
    sd_shape_t s = base_shape;
    /* where the four length octets are when every length has four: the
     * ContentInfo, [0], SignedData, certificate set, first certificate */
    static const size_t lens[] = {2, 19, 25, 49, 55};
    static const unsigned char tags[] = {0x30, 0xa0, 0x30, 0xa0, 0x30};
    static const unsigned char huge[][4] = {{0xff, 0xff, 0xff, 0xff},
                                            {0x80, 0x00, 0x00, 0x00},
                                            {0x7f, 0xff, 0xff, 0xff},
                                            {0xff, 0xff, 0xff, 0xf0}};
    blob_t b, c;
    size_t i, j, v;
    int l;

    (void) state;
    for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        assert_no_split((const unsigned char *) raw[i].bytes, raw[i].len);
    }
    /* a certificate with an indefinite length (0x80 read as an empty
     * element would leave "30 00" as a second certificate) */
    b = blob("\x02\x01\x01\x31\x00", 5);
    b = cat(b, tlv(0x30, blob(oid_data, sizeof(oid_data)), LEN_DER));
    c = blob("\x30\x80\x30\x00", 4);
    b = cat(b, tlv(0xa0, c, LEN_DER));
    b = cat(b, tlv(0x31, filler(4, 1), LEN_DER));
    b = tlv(0x30,
            cat(blob(oid_signed_data, sizeof(oid_signed_data)),
                tlv(0xa0, tlv(0x30, b, LEN_DER), LEN_DER)),
            LEN_DER);
    assert_no_split(b.p, b.len);
    free(b.p);
    for (l = 0; l < L_MAX; l++) {
        s.lb[l] = 4;
    }
    assert_split_shape(&s);
    b = shape_der(&s, 1);
    for (j = 0; j < 5; j++) {
        assert_int_equal(b.p[lens[j] - 2], tags[j]);
        assert_int_equal(b.p[lens[j] - 1], 0x84);
        /* lengths far beyond the input */
        for (i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
            c = blob(b.p, b.len);
            memcpy(c.p + lens[j], huge[i], 4);
            assert_no_split(c.p, c.len);
            free(c.p);
        }
        /* one octet more than the enclosing element leaves */
        c = blob(b.p, b.len);
        v = (size_t) c.p[lens[j]] << 24 | (size_t) c.p[lens[j] + 1] << 16 |
            (size_t) c.p[lens[j] + 2] << 8 | c.p[lens[j] + 3];
        v++;
        c.p[lens[j]] = (unsigned char) (v >> 24);
        c.p[lens[j] + 1] = (unsigned char) (v >> 16);
        c.p[lens[j] + 2] = (unsigned char) (v >> 8);
        c.p[lens[j] + 3] = (unsigned char) v;
        assert_no_split(c.p, c.len);
        free(c.p);
    }
    free(b.p);
}

/** The DER header length of a content of n octets (test's own count). */
static size_t
der_hdr(size_t n)
{
    size_t k = 0;

    if (n < 0x80) {
        return 2;
    }
    while (n != 0) {
        n >>= 8;
        k++;
    }
    return 2 + k;
}

static void
test_split_length_boundaries(void **state)
{
    /* where the length of the rewritten headers changes size */
    static const size_t bounds[] = {0x80, 0x100, 0x10000, 0x1000000};
    sd_shape_t s = base_shape;
    size_t bi, si, lo, sdc, expc, cic, done = 0;

    (void) state;
    for (bi = 0; bi < sizeof(bounds) / sizeof(bounds[0]); bi++) {
        lo = bounds[bi] > 64 ? bounds[bi] - 64 : 0;
        for (si = lo; si < bounds[bi] + 8; si++) {
            /* the stripped lengths, as shape_der() makes them */
            sdc = 3 + 2 + 13 + der_hdr(si) + si;
            expc = der_hdr(sdc) + sdc;
            cic = sizeof(oid_signed_data) + der_hdr(expc) + expc;
            /* the big ones only at the edges: they take time */
            if (bounds[bi] > 0x10000 &&
                !(sdc + 1 >= bounds[bi] && sdc <= bounds[bi]) &&
                !(expc + 1 >= bounds[bi] && expc <= bounds[bi]) &&
                !(cic + 1 >= bounds[bi] && cic <= bounds[bi])) {
                continue;
            }
            s.si_len = si;
            s.ncerts = 3;
            s.cert_len = 40;
            assert_split_shape(&s);
            done++;
        }
    }
    assert_true(done > 200);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_real),
        cmocka_unit_test(test_split_refused_cms),
        cmocka_unit_test(test_split_crafted),
        cmocka_unit_test(test_split_lengths),
        cmocka_unit_test(test_split_length_boundaries),
    };

    return cmocka_run_group_tests(tests, identity_setup, NULL);
}
