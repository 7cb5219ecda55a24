/*
 * Unit tests for core/mdm_scep.c: the real Apple PKCSReq vectors
 * (t/samples/scep, t/samples/commandment), requests built here with the
 * OpenSSL API for every failInfo path, the lenient base64 helper, CA
 * loading errors, and the Redis scripts against a private redis-server.
 *
 * Needs MDM_SAMPLES (t/samples). The sample CA expired in May 2026, so
 * every transaction runs at a fixed time (mdm_scep_req_set_time()).
 */
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

#include <hiredis.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mdm_scep.h"
#include "mdm_sync.h"
#include "redis_fixture.h"

#define DAY 86400
/* 2016-06-01: the real PKCSReq was made on 2016-05-31 */
#define T_SAMPLE ((time_t) 1464739200)
/* 2020-01-01: generated requests, sample CA still valid */
#define T_GEN ((time_t) 1577836800)

#define SAMPLE_TXID "A13090761A30F66664F85D37433D2065E1112BA1"
#define SAMPLE_CN   "com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224"
#define MDMCL_TXID  "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B"
#define CHALLENGE   "s3cret-challenge"

static const char *samples;
static char tmpdir[256];
static X509 *sample_ca;
static EVP_PKEY *sample_ca_key;
static X509 *expect_signer; /* who signs CertReps: the CA unless an RA */
static EVP_PKEY *dev_key;   /* 2048-bit RSA, reused: key generation is slow */
static EVP_PKEY *dev_key2;
static ASN1_OBJECT *o_msgtype, *o_status, *o_fail, *o_snonce, *o_rnonce,
    *o_txid;

/* ------------------------------------------------------------------ */
/* log capture                                                         */

static char last_id[16];
static char last_msg[1024];
static int nlogs;

static void
log_sink(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(last_id, sizeof(last_id), "%s", id);
    snprintf(last_msg, sizeof(last_msg), "%s", msg);
    nlogs++;
}

static void
log_reset(void)
{
    last_id[0] = last_msg[0] = '\0';
    nlogs = 0;
}

/* ------------------------------------------------------------------ */
/* files                                                               */

static char *
sample_path(const char *name)
{
    static char buf[32][1024];
    static int next;
    char *p = buf[next++ % 32];

    snprintf(p, sizeof(buf[0]), "%s/%s", samples, name);
    return p;
}

static char *
tmp_path(const char *name)
{
    static char buf[32][512];
    static int next;
    char *p = buf[next++ % 32];

    snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
    return p;
}

static unsigned char *
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

static void
write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

static void
write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void
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

typedef struct {
    const char *name, *value;
} opt_t;

static mdm_scep_ca_t *
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

/* The sample CA with a challenge mode and up to two more options. */
static mdm_scep_ca_t *
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
/* certificates and requests made here                                 */

static void
set_times(X509 *x, time_t nb, time_t na)
{
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          long serial, time_t nb, time_t na)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    X509_set_pubkey(x, key);
    set_times(x, nb, na);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

/* DER of a CSR; challenge may be NULL, cn NULL for an empty subject. */
static unsigned char *
make_csr(EVP_PKEY *key, const char *cn, const char *challenge,
         EVP_PKEY *sign_key, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    unsigned char *der = NULL, *out;
    int l;

    X509_REQ_set_version(req, 0);
    if (cn) {
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   (const unsigned char *) cn, -1, -1, 0);
    }
    X509_REQ_set_subject_name(req, n);
    X509_NAME_free(n);
    X509_REQ_set_pubkey(req, key);
    if (challenge) {
        assert_int_equal(X509_REQ_add1_attr_by_NID(
                             req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                             (const unsigned char *) challenge, -1),
                         1);
    }
    assert_true(X509_REQ_sign(req, sign_key ? sign_key : key, EVP_sha256()) >
                0);
    if (sign_key) {
        /* signed by another key: the self-signature no longer holds */
        X509_REQ_set_pubkey(req, key);
    }
    l = i2d_X509_REQ(req, &der);
    assert_true(l > 0);
    out = malloc((size_t) l);
    memcpy(out, der, (size_t) l);
    OPENSSL_free(der);
    X509_REQ_free(req);
    *len = (size_t) l;
    return out;
}

static unsigned char *
issuer_and_serial(X509 *issuer, long serial, size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *der = NULL, *out;
    int l;

    X509_NAME_set(&ias->issuer, X509_get_subject_name(issuer));
    ASN1_INTEGER_set(ias->serial, serial);
    l = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
    assert_true(l > 0);
    out = malloc((size_t) l);
    memcpy(out, der, (size_t) l);
    OPENSSL_free(der);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    *len = (size_t) l;
    return out;
}

typedef struct {
    const char *msg_type; /* "19" ... */
    const char *txid;
    X509 *signer;
    EVP_PKEY *signer_key;
    const EVP_MD *md;
    const EVP_CIPHER *cipher;
    X509 *recipient;
    const unsigned char *content;
    size_t content_len;
    int no_txid;
    int des; /* single DES-CBC, from the legacy provider */
} req_opts_t;

static const unsigned char test_nonce[16] = "nonce-0123456789";

static unsigned char *
make_pkimsg(const req_opts_t *o, size_t *len)
{
    STACK_OF(X509) *rc = sk_X509_new_null();
    CMS_ContentInfo *env, *cms;
    CMS_SignerInfo *si;
    BIO *in, *ein;
    unsigned char *envder = NULL, *der = NULL, *out;
    int elen, l;
    const char *txid = o->txid ? o->txid : "TXID-0001";

    sk_X509_push(rc, o->recipient ? o->recipient : sample_ca);
    in = BIO_new_mem_buf(o->content, (int) o->content_len);
    if (o->des) {
        OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
        OSSL_PROVIDER *d = OSSL_PROVIDER_load(lc, "default");
        OSSL_PROVIDER *l = OSSL_PROVIDER_load(lc, "legacy");
        EVP_CIPHER *des = EVP_CIPHER_fetch(lc, "DES-CBC", NULL);

        assert_non_null(des);
        env = CMS_encrypt_ex(rc, in, des, CMS_BINARY, lc, NULL);
        EVP_CIPHER_free(des);
        assert_non_null(env);
        elen = i2d_CMS_ContentInfo(env, &envder);
        CMS_ContentInfo_free(env);
        env = NULL;
        OSSL_PROVIDER_unload(l);
        OSSL_PROVIDER_unload(d);
        OSSL_LIB_CTX_free(lc);
    } else {
        env = CMS_encrypt(rc, in, o->cipher ? o->cipher : EVP_aes_128_cbc(),
                          CMS_BINARY);
        assert_non_null(env);
        elen = i2d_CMS_ContentInfo(env, &envder);
    }
    assert_true(elen > 0);
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    si = CMS_add1_signer(cms, o->signer, o->signer_key,
                         o->md ? o->md : EVP_sha256(),
                         CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP);
    assert_non_null(si);
    assert_int_equal(CMS_signed_add1_attr_by_OBJ(
                         si, o_msgtype, V_ASN1_PRINTABLESTRING,
                         o->msg_type ? o->msg_type : "19",
                         o->msg_type ? (int) strlen(o->msg_type) : 2),
                     1);
    if (!o->no_txid) {
        assert_int_equal(CMS_signed_add1_attr_by_OBJ(si, o_txid,
                                                     V_ASN1_PRINTABLESTRING,
                                                     txid, (int) strlen(txid)),
                         1);
    }
    assert_int_equal(CMS_signed_add1_attr_by_OBJ(
                         si, o_snonce, V_ASN1_OCTET_STRING, test_nonce, 16),
                     1);
    ein = BIO_new_mem_buf(envder, elen);
    assert_int_equal(CMS_final(cms, ein, NULL, CMS_BINARY), 1);
    l = i2d_CMS_ContentInfo(cms, &der);
    assert_true(l > 0);
    out = malloc((size_t) l);
    memcpy(out, der, (size_t) l);
    OPENSSL_free(der);
    OPENSSL_free(envder);
    BIO_free(in);
    BIO_free(ein);
    CMS_ContentInfo_free(env);
    CMS_ContentInfo_free(cms);
    sk_X509_free(rc);
    *len = (size_t) l;
    return out;
}

/* A PKCSReq from a fresh self-signed signer (returned in *signer). */
static unsigned char *
pkcsreq(const char *challenge, const EVP_MD *md, const EVP_CIPHER *cipher,
        X509 **signer, size_t *len)
{
    size_t clen;
    unsigned char *csr =
        make_csr(dev_key, "device-0001", challenge, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;

    *signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                        T_GEN + DAY);
    o.signer = *signer;
    o.signer_key = dev_key;
    o.md = md;
    o.cipher = cipher;
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, len);
    free(csr);
    return m;
}

/* ------------------------------------------------------------------ */
/* running transactions                                                */

static mdm_scep_req_t *
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
    return r;
}

static redisReply *
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

static redisReply *
rep_array1(const char *s)
{
    redisReply *r = rep_new(REDIS_REPLY_ARRAY, NULL);

    r->elements = 1;
    r->element = calloc(1, sizeof(redisReply *));
    r->element[0] = rep_new(REDIS_REPLY_STRING, s);
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

static mdm_step_t
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
/* reading a CertRep                                                   */

typedef struct {
    int status; /* pkiStatus */
    int fail;   /* failInfo, -1 when absent */
    X509 *issued;
    int cipher_nid; /* of the envelope */
    int md_nid;
} certrep_t;

static const ASN1_TYPE *
attr1(CMS_SignerInfo *si, const ASN1_OBJECT *o)
{
    int i = CMS_signed_get_attr_by_OBJ(si, o, -1);

    if (i < 0) {
        return NULL;
    }
    return X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, i), 0);
}

static int
attr_int(CMS_SignerInfo *si, const ASN1_OBJECT *o)
{
    const ASN1_TYPE *t = attr1(si, o);
    char buf[16];

    if (t == NULL) {
        return -1;
    }
    assert_int_equal(t->type, V_ASN1_PRINTABLESTRING);
    snprintf(buf, sizeof(buf), "%.*s", ASN1_STRING_length(t->value.asn1_string),
             ASN1_STRING_get0_data(t->value.asn1_string));
    return atoi(buf);
}

/*
 * Check everything a client checks: signed by the CA, messageType 3,
 * transactionID and recipientNonce echoed, a fresh 16-byte senderNonce,
 * and on SUCCESS an envelope whose RecipientInfo names the requester's
 * signer certificate (issuer and serial). With key, the envelope is
 * opened and the issued certificate returned in out->issued.
 */
static void
read_certrep(const mdm_response_t *resp, const char *txid,
             const unsigned char *nonce, size_t nonce_len, X509 *requester,
             EVP_PKEY *key, certrep_t *out)
{
    const unsigned char *p = resp->body;
    CMS_ContentInfo *cms, *env = NULL, *inner;
    STACK_OF(X509) * signers, *certs;
    CMS_SignerInfo *si;
    const ASN1_TYPE *t;
    ASN1_OCTET_STRING **pos;
    X509_ALGOR *dig;
    const ASN1_OBJECT *obj;
    PKCS7 *p7;
    X509_NAME *iss = NULL;
    ASN1_INTEGER *sno = NULL;
    BIO *bio;
    char *data;
    long n;

    memset(out, 0, sizeof(*out));
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "application/x-pki-message");
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) resp->body_len);
    assert_non_null(cms);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
    /* signature checked; the signer must be the CA (no chain: the sample
     * CA is expired today) */
    assert_int_equal(CMS_verify(cms, NULL, NULL, NULL, NULL,
                                CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY),
                     1);
    signers = CMS_get0_signers(cms);
    assert_int_equal(sk_X509_num(signers), 1);
    assert_int_equal(X509_cmp(sk_X509_value(signers, 0),
                              expect_signer ? expect_signer : sample_ca),
                     0);
    sk_X509_free(signers);
    si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    X509_ALGOR_get0(&obj, NULL, NULL, dig);
    out->md_nid = OBJ_obj2nid(obj);

    assert_int_equal(attr_int(si, o_msgtype), 3);
    out->status = attr_int(si, o_status);
    out->fail = attr_int(si, o_fail);
    t = attr1(si, o_txid);
    assert_non_null(t);
    assert_int_equal(ASN1_STRING_length(t->value.asn1_string), strlen(txid));
    assert_memory_equal(ASN1_STRING_get0_data(t->value.asn1_string), txid,
                        strlen(txid));
    t = attr1(si, o_rnonce);
    assert_non_null(t);
    assert_int_equal(t->type, V_ASN1_OCTET_STRING);
    assert_int_equal(ASN1_STRING_length(t->value.octet_string), nonce_len);
    assert_memory_equal(ASN1_STRING_get0_data(t->value.octet_string), nonce,
                        nonce_len);
    t = attr1(si, o_snonce);
    assert_non_null(t);
    assert_int_equal(ASN1_STRING_length(t->value.octet_string), 16);
    assert_false(
        nonce_len == 16 &&
        memcmp(ASN1_STRING_get0_data(t->value.octet_string), nonce, 16) == 0);

    pos = CMS_get0_content(cms);
    if (out->status != 0) {
        assert_int_equal(out->status, 2);
        assert_true(out->fail >= 0 && out->fail <= 4);
        /* no envelope */
        assert_true(pos == NULL || *pos == NULL ||
                    ASN1_STRING_length(*pos) == 0);
        CMS_ContentInfo_free(cms);
        return;
    }
    assert_int_equal(out->fail, -1);
    assert_non_null(pos);
    assert_non_null(*pos);
    p = ASN1_STRING_get0_data(*pos);
    p7 = d2i_PKCS7(NULL, &p, ASN1_STRING_length(*pos));
    assert_non_null(p7);
    out->cipher_nid =
        OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);
    p = ASN1_STRING_get0_data(*pos);
    env = d2i_CMS_ContentInfo(NULL, &p, ASN1_STRING_length(*pos));
    assert_non_null(env);
    assert_int_equal(sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(env)), 1);
    assert_int_equal(
        CMS_RecipientInfo_ktri_get0_signer_id(
            sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(env), 0), NULL,
            &iss, &sno),
        1);
    assert_non_null(iss);
    assert_int_equal(X509_NAME_cmp(iss, X509_get_issuer_name(requester)), 0);
    assert_int_equal(ASN1_INTEGER_cmp(sno, X509_get0_serialNumber(requester)),
                     0);
    if (key != NULL) {
        bio = BIO_new(BIO_s_mem());
        assert_int_equal(
            CMS_decrypt(env, key, requester, NULL, bio, CMS_BINARY), 1);
        n = BIO_get_mem_data(bio, &data);
        p = (const unsigned char *) data;
        inner = d2i_CMS_ContentInfo(NULL, &p, n);
        assert_non_null(inner);
        assert_int_equal(OBJ_obj2nid(CMS_get0_type(inner)), NID_pkcs7_signed);
        assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(inner)), 0);
        certs = CMS_get1_certs(inner);
        assert_int_equal(sk_X509_num(certs), 1);
        out->issued = sk_X509_shift(certs);
        sk_X509_pop_free(certs, X509_free);
        CMS_ContentInfo_free(inner);
        BIO_free(bio);
    }
    CMS_ContentInfo_free(env);
    CMS_ContentInfo_free(cms);
}

/* What every issued certificate must look like. */
static void
check_issued(X509 *x, EVP_PKEY *pub, const char *cn, time_t now)
{
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    EXTENDED_KEY_USAGE *eku;
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    X509_NAME_ENTRY *e;
    int crit = -1, i;
    time_t t;

    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(sample_ca)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
                                   X509_get_subject_name(sample_ca)),
                     0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pub), 1);
    e = X509_NAME_get_entry(X509_get_subject_name(x), 0);
    assert_non_null(e);
    assert_string_equal(
        (const char *) ASN1_STRING_get0_data(X509_NAME_ENTRY_get_data(e)), cn);
    /* random, positive, at most 128 bits */
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
    BN_free(bn);
    /* validity: a little in the past, 365 days or the CA's end */
    t = now - 300;
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &t), -1);
    t = now - 301;
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &t), 1);
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(x),
                                  X509_get0_notAfter(sample_ca)) <= 0);
    t = now + 365 * DAY + 1;
    assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &t), -1);

    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1); /* digitalSignature */
    for (i = 1; i < 9; i++) {
        assert_int_equal(ASN1_BIT_STRING_get_bit(ku, i), 0);
    }
    ASN1_BIT_STRING_free(ku);
    eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)),
                     NID_client_auth);
    EXTENDED_KEY_USAGE_free(eku);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
}

/* The issued certificate as the plan carries it to Redis (argv[13]). */
static X509 *
planned_cert(const mdm_scep_req_t *r)
{
    const mdm_plan_t *p = mdm_scep_req_plan(r);
    const unsigned char *d;

    assert_non_null(p);
    assert_int_equal(p->ncmds, 1);
    assert_true(p->cmds[0].argc == 18);
    d = (const unsigned char *) p->cmds[0].argv[13];
    return d2i_X509(NULL, &d, (long) p->cmds[0].argvlen[13]);
}

static X509 *
sample_signer(const char *file)
{
    size_t len;
    unsigned char *m = slurp(sample_path(file), &len);
    const unsigned char *p = m;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
    STACK_OF(X509) * certs;
    X509 *x;

    assert_non_null(cms);
    certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 1);
    x = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    free(m);
    return x;
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

static int
setup(void **state)
{
    BIO *b;

    (void) state;
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

static int
teardown(void **state)
{
    char cmd[600];

    (void) state;
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

/* ------------------------------------------------------------------ */
/* base64                                                              */

static void
b64_is(const char *in, const char *want)
{
    unsigned char *out = NULL;
    size_t len = 0;

    if (mdm_scep_b64_decode(in, strlen(in), &out, &len) != 0) {
        fail_msg("\"%s\" refused", in);
    }
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    free(out);
}

static void
b64_bad(const char *in, size_t len)
{
    unsigned char *out = (unsigned char *) "x";
    size_t olen = 7;

    assert_int_equal(mdm_scep_b64_decode(in, len, &out, &olen), -1);
    assert_null(out);
    assert_int_equal(olen, 0);
}

static void
test_b64(void **state)
{
    (void) state;
    b64_is("aGVsbG8gd29ybGQ=", "hello world");
    b64_is("aGVsbG8gd29ybGQ", "hello world"); /* padding optional */
    b64_is("aGVsbG8gd29ybGQ%3D", "hello world");
    b64_is("aGVs\r\nbG8g\nd29y\tbGQ=", "hello world");
    /* "+/8=" spelled every way a client or proxy spells it */
    b64_is("+/8=", "\xfb\xff");
    b64_is("%2B%2F8%3D", "\xfb\xff");
    b64_is("%2b%2f8%3d", "\xfb\xff");
    b64_is(" /8=", "\xfb\xff"); /* '+' form-decoded to a space */
    b64_is("-_8", "\xfb\xff");  /* URL-safe alphabet */
    b64_is("%2B/8", "\xfb\xff");
    b64_bad("", 0);
    b64_bad("a", 1);           /* a lone last character */
    b64_bad("aGVsbG8=x", 9);   /* data after padding */
    b64_bad("aGVsbG8===", 10); /* too much padding */
    b64_bad("aG=", 3);         /* padding that does not fit */
    b64_bad("aGVs*G8=", 8);    /* not base64 */
    b64_bad("aGVs%2", 6);      /* truncated escape */
    b64_bad("aGVs%zz", 7);     /* bad escape */
    b64_bad("aGVs%252B", 9);   /* decoded once only */
    b64_bad("aGVs\0bG8=", 9);  /* NUL */
    b64_bad("\r\n\t", 3);
}

/* ------------------------------------------------------------------ */
/* CA loading                                                          */

static void
ca_err(const opt_t *o, const char *want)
{
    char err[512];
    int rc;
    mdm_scep_ca_t *ca = ca_with(o, err, sizeof(err), &rc);

    assert_int_equal(rc, -1);
    if (strstr(err, want) == NULL) {
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    }
    mdm_scep_ca_free(ca);
}

static void
test_ca_load_errors(void **state)
{
    EVP_PKEY *other = dev_key2;
    X509 *leaf;
    const char *cert = sample_path("scep/ca.pem"),
               *key = sample_path("scep/ca.key"),
               *empty = tmp_path("empty-pass");

    (void) state;
    write_key(tmp_path("enc.key"), sample_ca_key, "right passphrase");
    write_file(tmp_path("right-pass"), "right passphrase\n", 17);
    write_file(tmp_path("wrong-pass"), "wrong passphrase\n", 17);
    write_key(tmp_path("other.key"), other, NULL);
    leaf = make_cert(other, "leaf", sample_ca, sample_ca_key, 7, T_GEN - DAY,
                     T_GEN + DAY);
    write_cert(tmp_path("leaf.pem"), leaf);
    X509_free(leaf);
    write_file(tmp_path("chal"), "from-a-file\n", 12);
    write_file(tmp_path("nochal"), "\n", 1);

    {
        opt_t o[] = {{"ca_key", key}, {"challenge", "x"}, {NULL, NULL}};
        ca_err(o, "ca_cert is required");
    }
    {
        opt_t o[] = {{"ca_cert", cert}, {"challenge", "x"}, {NULL, NULL}};
        ca_err(o, "ca_key is required");
    }
    {
        opt_t o[] = {{"ca_cert", tmp_path("nonexistent")},
                     {"ca_key", key},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "ca_cert: cannot open");
    }
    {
        opt_t o[] = {{"ca_cert", key},
                     {"ca_key", key},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "ca_cert: no PEM certificate");
    }
    {
        /* encrypted key, no passphrase file */
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("enc.key")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "is encrypted: set ca_key_pass_file");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("enc.key")},
                     {"ca_key_pass_file", tmp_path("wrong-pass")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "wrong passphrase");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", tmp_path("nonexistent")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "ca_key_pass_file: cannot open");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("other.key")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "does not match ca_cert");
    }
    {
        opt_t o[] = {{"ca_cert", tmp_path("leaf.pem")},
                     {"ca_key", tmp_path("other.key")},
                     {"challenge", "x"},
                     {NULL, NULL}};
        ca_err(o, "is not a CA certificate");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", empty},
                     {NULL, NULL}};
        ca_err(o, "challenge: required");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", empty},
                     {"challenge_file", tmp_path("nochal")},
                     {NULL, NULL}};
        ca_err(o, "challenge_file:");
    }
    {
        opt_t o[] = {{"ca_cert", cert},           {"ca_key", key},
                     {"ca_key_pass_file", empty}, {"challenge", "x"},
                     {"ra_cert", cert},           {NULL, NULL}};
        ca_err(o, "an RA needs both ra_cert and ra_key");
    }
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", key},
                     {"ca_key_pass_file", empty},
                     {"challenge", "x"},
                     {"ra_cert", cert},
                     {"ra_key", tmp_path("other.key")},
                     {NULL, NULL}};
        ca_err(o, "ra_key:");
    }
    {
        opt_t o[] = {{"validity_days", "0"}, {NULL, NULL}};
        ca_err(o, "validity_days");
    }
    {
        opt_t o[] = {{"min_key_bits", "512"}, {NULL, NULL}};
        ca_err(o, "min_key_bits");
    }
    {
        opt_t o[] = {{"renewal", "maybe"}, {NULL, NULL}};
        ca_err(o, "renewal");
    }
    {
        opt_t o[] = {{"prefix", "a{b"}, {NULL, NULL}};
        ca_err(o, "prefix");
    }
    {
        opt_t o[] = {{"challenge", ""}, {NULL, NULL}};
        ca_err(o, "challenge");
    }
    {
        opt_t o[] = {{"no_such_option", "1"}, {NULL, NULL}};
        ca_err(o, "unknown SCEP option \"no_such_option\"");
    }
    /* and the ones that work */
    {
        opt_t o[] = {{"ca_cert", cert},
                     {"ca_key", tmp_path("enc.key")},
                     {"ca_key_pass_file", tmp_path("right-pass")},
                     {"challenge_file", tmp_path("chal")},
                     {NULL, NULL}};
        char err[512];
        int rc;
        mdm_scep_ca_t *ca = ca_with(o, err, sizeof(err), &rc);

        if (rc != 0) {
            fail_msg("%s", err);
        }
        mdm_scep_ca_free(ca);
    }
    /* the sample key: DES3 PEM with an empty passphrase */
    mdm_scep_ca_free(sample_ca_conf("none", NULL, NULL, NULL, NULL));
    assert_int_equal(ERR_peek_error(), 0);
}

/* ------------------------------------------------------------------ */
/* GetCACaps, GetCACert, routing                                       */

static mdm_scep_req_t *
get(const mdm_scep_ca_t *ca, const char *method, const char *q,
    mdm_step_t *step)
{
    mdm_scep_req_t *r = mdm_scep_req_new_http(ca, method, strlen(method), q,
                                              strlen(q), NULL, 0);

    assert_non_null(r);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    *step = mdm_scep_req_start(r);
    return r;
}

/* An RA: requests are encrypted to it, CertReps signed by it, the CA key
 * still signs the certificates; GetCACert sends both. */
static void
test_ra(void **state)
{
    EVP_PKEY *rakey = dev_key2;
    X509 *ra = make_cert(rakey, "Test RA", sample_ca, sample_ca_key, 77,
                         T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    mdm_scep_ca_t *ca;
    X509 *signer;
    size_t clen, len;
    unsigned char *csr =
        make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;
    const unsigned char *p;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    CMS_ContentInfo *cms;
    STACK_OF(X509) * certs;

    (void) state;
    write_cert(tmp_path("ra.pem"), ra);
    write_key(tmp_path("ra.key"), rakey, NULL);
    ca = sample_ca_conf(CHALLENGE, "ra_cert", tmp_path("ra.pem"), "ra_key",
                        tmp_path("ra.key"));
    r = get(ca, "GET", "operation=GetCACert", &step);
    resp = mdm_scep_req_response(r);
    assert_string_equal(resp->content_type, "application/x-x509-ca-ra-cert");
    p = resp->body;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) resp->body_len);
    certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 2);
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    mdm_scep_req_free(r);

    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;
    o.content = csr;
    o.content_len = clen;
    o.recipient = ra;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    expect_signer = ra;
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    check_issued(cr.issued, dev_key, "device-0001", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m);
    /* encrypted to the CA itself: accepted too */
    o.recipient = NULL;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    mdm_scep_req_free(r);
    free(m);
    expect_signer = NULL;
    free(csr);
    X509_free(signer);
    X509_free(ra);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_caps_cacert(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("none", NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *ca2;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;
    mdm_step_t step;
    unsigned char *der = NULL;
    const unsigned char *p;
    CMS_ContentInfo *cms;
    STACK_OF(X509) * certs;
    X509 *leaf;
    int n;

    (void) state;
    r = get(ca, "GET", "operation=GetCACaps", &step);
    assert_int_equal(step, MDM_STEP_DONE);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "text/plain");
    assert_int_equal(resp->body_len,
                     strlen("POSTPKIOperation\nSHA-256\nSHA-512\nSHA-1\nAES\n"
                            "DES3\nSCEPStandard\nRenewal\n"));
    assert_memory_equal(resp->body,
                        "POSTPKIOperation\nSHA-256\nSHA-512\nSHA-1\nAES\n"
                        "DES3\nSCEPStandard\nRenewal\n",
                        resp->body_len);
    assert_int_equal(nlogs, 0);
    mdm_scep_req_free(r);

    /* the single CA: raw DER */
    r = get(ca, "GET", "operation=GetCACert&message=anything", &step);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "application/x-x509-ca-cert");
    n = i2d_X509(sample_ca, &der);
    assert_int_equal(resp->body_len, (size_t) n);
    assert_memory_equal(resp->body, der, (size_t) n);
    OPENSSL_free(der);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_OPERATION),
                        "GetCACert");
    mdm_scep_req_free(r);

    /* operation names are matched without case; HEAD is a GET */
    r = get(ca, "HEAD", "x=1&operation=getcacaps", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    mdm_scep_req_free(r);

    r = get(ca, "POST", "operation=GetCACaps", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 405);
    assert_string_equal(last_id, "MDM08003");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    r = get(ca, "HEAD", "operation=PKIOperation&message=MA==", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 405);
    mdm_scep_req_free(r);
    r = get(ca, "PUT", "operation=PKIOperation", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 405);
    assert_string_equal(last_id, "MDM08003");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "operation=GetNextCACert", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08002");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "message=x", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08002");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "operation=PKIOperation", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08004");
    mdm_scep_req_free(r);
    r = get(ca, "GET", "operation=PKIOperation&message=%%%", &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08004");
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);

    /* with an intermediate: a certs-only PKCS#7 with both, CA first */
    leaf = make_cert(dev_key2, "Intermediate", sample_ca, sample_ca_key, 9,
                     T_GEN - DAY, T_GEN + DAY);
    write_cert(tmp_path("chain.pem"), leaf);
    ca2 = sample_ca_conf("none", "chain", tmp_path("chain.pem"), "renewal",
                         "off");
    r = get(ca2, "GET", "operation=GetCACert", &step);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "application/x-x509-ca-ra-cert");
    p = resp->body;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) resp->body_len);
    assert_non_null(cms);
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 0);
    certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 2);
    /* a SET OF: in DER order, not in ours */
    assert_true((X509_cmp(sk_X509_value(certs, 0), sample_ca) == 0 &&
                 X509_cmp(sk_X509_value(certs, 1), leaf) == 0) ||
                (X509_cmp(sk_X509_value(certs, 1), sample_ca) == 0 &&
                 X509_cmp(sk_X509_value(certs, 0), leaf) == 0));
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    mdm_scep_req_free(r);
    /* renewal off: not advertised */
    r = get(ca2, "GET", "operation=GetCACaps", &step);
    resp = mdm_scep_req_response(r);
    assert_null(memmem(resp->body, resp->body_len, "Renewal", 7));
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca2);
    X509_free(leaf);
}

/* ------------------------------------------------------------------ */
/* the real vectors                                                    */

static const unsigned char sample_nonce[8] = {0xae, 0x7f, 0xe8, 0x81,
                                              0x6c, 0xc6, 0xbe, 0xdd};

static void
test_real_pkcsreq(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("none", NULL, NULL, NULL, NULL);
    size_t len, csrlen;
    unsigned char *m = slurp(sample_path("scep/PKCSReq.der"), &len);
    unsigned char *csrder =
        slurp(sample_path("scep/PKCSReq.decrypted-csr.der"), &csrlen);
    const unsigned char *p = csrder;
    X509_REQ *csr = d2i_X509_REQ(NULL, &p, (long) csrlen);
    X509 *signer = sample_signer("scep/PKCSReq.der"), *issued;
    const mdm_plan_t *plan;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    (void) state;
    assert_non_null(csr);
    r = post(ca, m, len, T_SAMPLE, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_MESSAGE_TYPE),
                        "PKCSReq");
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_TRANSACTION_ID),
                        SAMPLE_TXID);
    /* the CSR inside the envelope: the one the DERIVED file holds */
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_SUBJECT),
                        "CN=" SAMPLE_CN);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "EVALSHA");
    assert_string_equal(plan->cmds[0].argv[2], "5");
    assert_string_equal(plan->cmds[0].argv[3], "t:{scep}:chal:-");
    assert_string_equal(plan->cmds[0].argv[8], "keep");
    assert_string_equal(plan->cmds[0].argv[9],
                        mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
    assert_string_equal(plan->cmds[0].argv[15], "PKCSReq");
    issued = planned_cert(r);
    assert_non_null(issued);
    check_issued(issued, X509_REQ_get0_pubkey(csr), SAMPLE_CN, T_SAMPLE);

    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    resp = mdm_scep_req_response(r);
    read_certrep(resp, SAMPLE_TXID, sample_nonce, 8, signer, NULL, &cr);
    assert_int_equal(cr.status, 0);
    /* the request's algorithms: SHA-1, DES3 */
    assert_int_equal(cr.md_nid, NID_sha1);
    assert_int_equal(cr.cipher_nid, NID_des_ede3_cbc);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_STATUS), "SUCCESS");
    assert_string_equal(last_id, "MDM08030");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* GET with the message base64, URL-escaped */
    {
        char *b64 = malloc(4 * ((len + 2) / 3) + 1), *q;
        size_t i, o = 0;

        EVP_EncodeBlock((unsigned char *) b64, m, (int) len);
        q = malloc(strlen(b64) * 3 + 64);
        o = (size_t) sprintf(q, "operation=PKIOperation&message=");
        for (i = 0; b64[i]; i++) {
            if (b64[i] == '+' || b64[i] == '/' || b64[i] == '=') {
                o += (size_t) sprintf(q + o, "%%%02X", b64[i]);
            } else {
                q[o++] = b64[i];
            }
        }
        q[o] = '\0';
        r = mdm_scep_req_new_http(ca, "GET", 3, q, o, NULL, 0);
        mdm_scep_req_set_time(r, T_SAMPLE);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_TRANSACTION_ID),
                            SAMPLE_TXID);
        mdm_scep_req_free(r);
        free(q);
        free(b64);
    }
    mdm_scep_ca_free(ca);

    /* the sample has no challenge: a CA that wants one refuses it */
    ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    r = post(ca, m, len, T_SAMPLE, &step);
    assert_int_equal(step, MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), SAMPLE_TXID, sample_nonce, 8, signer,
                 NULL, &cr);
    assert_int_equal(cr.status, 2);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08017");
    assert_non_null(strstr(last_msg, "no challengePassword"));
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);

    /* and its 1024-bit key is below the default minimum */
    {
        opt_t o[] = {{"ca_cert", sample_path("scep/ca.pem")},
                     {"ca_key", sample_path("scep/ca.key")},
                     {"ca_key_pass_file", tmp_path("empty-pass")},
                     {"challenge", "none"},
                     {NULL, NULL}};
        char err[256];
        int rc;

        ca = ca_with(o, err, sizeof(err), &rc);
        assert_int_equal(rc, 0);
    }
    r = post(ca, m, len, T_SAMPLE, &step);
    read_certrep(mdm_scep_req_response(r), SAMPLE_TXID, sample_nonce, 8, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08016");
    mdm_scep_req_free(r);

    /* today the sample CA is expired: nothing is issued */
    r = post(ca, m, len, (time_t) 1798761600 /* 2027-01-01 */, &step);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);
    ca = sample_ca_conf("none", NULL, NULL, NULL, NULL);
    r = post(ca, m, len, (time_t) 1798761600, &step);
    assert_int_equal(step, MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 500);
    assert_string_equal(last_id, "MDM08041");
    mdm_scep_req_free(r);
    mdm_scep_ca_free(ca);

    X509_REQ_free(csr);
    X509_free(issued);
    X509_free(signer);
    free(csrder);
    free(m);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_real_mdmclient(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    size_t len;
    unsigned char *m =
        slurp(sample_path("commandment/mdmclient-PKIOperation.der"), &len);
    X509 *signer = sample_signer("commandment/mdmclient-PKIOperation.der");
    const unsigned char *p = m;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    const ASN1_TYPE *nonce = attr1(si, o_snonce);
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    char name[256];

    (void) state;
    X509_NAME_oneline(X509_get_subject_name(signer), name, sizeof(name));
    assert_string_equal(name, "/CN=MDM SCEP SIGNER/C=AU");
    /* the caller's own OpenSSL error survives, and nothing is added */
    ERR_raise(ERR_LIB_USER, 42);
    r = post(ca, m, len, (time_t) 1491445800 /* 2017-04-06 */, &step);
    assert_int_equal(ERR_GET_REASON(ERR_get_error()), 42);
    assert_int_equal(ERR_peek_error(), 0);
    assert_int_equal(step, MDM_STEP_DONE);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_MESSAGE_TYPE),
                        "PKCSReq");
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_TRANSACTION_ID),
                        MDMCL_TXID);
    /* signature fine, SHA-512; the envelope is for a Microsoft NDES RA */
    read_certrep(mdm_scep_req_response(r), MDMCL_TXID,
                 ASN1_STRING_get0_data(nonce->value.octet_string),
                 (size_t) ASN1_STRING_length(nonce->value.octet_string), signer,
                 NULL, &cr);
    assert_int_equal(cr.status, 2);
    assert_int_equal(cr.fail, 1);
    assert_int_equal(cr.md_nid, NID_sha512);
    assert_string_equal(last_id, "MDM08012");
    assert_non_null(strstr(last_msg, "not encrypted to this CA"));
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_FAIL_INFO),
                        "badMessageCheck");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    CMS_ContentInfo_free(cms);
    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ------------------------------------------------------------------ */
/* generated requests                                                  */

static void
issue_with(const EVP_MD *md, const EVP_CIPHER *cipher, int want_md,
           int want_cipher)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer;
    size_t len;
    unsigned char *m = pkcsreq(CHALLENGE, md, cipher, &signer, &len);
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    X509 *planned;

    r = post(ca, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    planned = planned_cert(r);
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_int_equal(cr.md_nid, want_md);
    assert_int_equal(cr.cipher_nid, want_cipher);
    assert_non_null(cr.issued);
    check_issued(cr.issued, dev_key, "device-0001", T_GEN);
    /* what the device gets is what was recorded */
    assert_int_equal(X509_cmp(cr.issued, planned), 0);
    X509_free(cr.issued);
    X509_free(planned);
    X509_free(signer);
    mdm_scep_req_free(r);
    free(m);
    mdm_scep_ca_free(ca);
}

static void
test_issue(void **state)
{
    (void) state;
    issue_with(EVP_sha256(), EVP_aes_128_cbc(), NID_sha256, NID_aes_128_cbc);
    issue_with(EVP_sha512(), EVP_des_ede3_cbc(), NID_sha512, NID_des_ede3_cbc);
    issue_with(EVP_sha1(), EVP_aes_256_cbc(), NID_sha1, NID_aes_256_cbc);
    assert_int_equal(ERR_peek_error(), 0);
}

/* A request that must come back as FAILURE fail with log id id. */
static void
expect_fail(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len,
            time_t now, int fail, const char *id, const char *txid)
{
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    r = post(ca, m, len, now, &step);
    assert_int_equal(step, MDM_STEP_DONE);
    if (strcmp(last_id, id) != 0) {
        fail_msg("expected %s, got %s %s", id, last_id, last_msg);
    }
    assert_int_equal(nlogs, 1);
    read_certrep(mdm_scep_req_response(r), txid ? txid : "TXID-0001",
                 test_nonce, 16, NULL, NULL, &cr);
    assert_int_equal(cr.status, 2);
    assert_int_equal(cr.fail, fail);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_ERROR_ID), id);
    mdm_scep_req_free(r);
}

/* Single DES (Debian's scepclient, old NDES clients): refused unless
 * legacy_des is on; then the answer is AES-128, never DES. */
static void
test_legacy_des(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *des =
        sample_ca_conf(CHALLENGE, "legacy_des", "on", NULL, NULL);
    X509 *signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1,
                             T_GEN - DAY, T_GEN + DAY);
    size_t clen, len;
    unsigned char *csr =
        make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    req_opts_t o = {0};
    unsigned char *m;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    (void) state;
    o.signer = signer;
    o.signer_key = dev_key;
    o.content = csr;
    o.content_len = clen;
    o.des = 1;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 0, "MDM08010", NULL);
    assert_non_null(strstr(last_msg, "legacy_des"));
    r = post(des, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_int_equal(cr.cipher_nid, NID_aes_128_cbc);
    check_issued(cr.issued, dev_key, "device-0001", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m);
    free(csr);
    X509_free(signer);
    mdm_scep_ca_free(ca);
    mdm_scep_ca_free(des);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_failures(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer, *other_ca;
    size_t len, clen;
    unsigned char *m, *csr, *hit;
    req_opts_t o = {0};

    (void) state;
    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;

    /* tampered: one byte of the envelope changed after signing */
    m = pkcsreq(CHALLENGE, NULL, NULL, &other_ca, &len);
    X509_free(other_ca);
    hit = m + len / 2;
    *hit ^= 0x01;
    expect_fail(ca, m, len, T_GEN, 1, "MDM08011", NULL);
    free(m);

    /* MD5: badAlg before anything else */
    csr = make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    o.md = EVP_md5();
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 0, "MDM08010", NULL);
    free(m);
    o.md = NULL;

    /* an envelope cipher we do not speak */
    o.cipher = EVP_camellia_128_cbc();
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 0, "MDM08010", NULL);
    assert_non_null(strstr(last_msg, "CAMELLIA"));
    free(m);
    o.cipher = NULL;

    /* encrypted to someone else */
    other_ca = make_cert(dev_key2, "Other CA", NULL, NULL, 5, T_GEN - DAY,
                         T_GEN + DAY);
    o.recipient = other_ca;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 1, "MDM08012", NULL);
    assert_non_null(strstr(last_msg, "CN=Other CA"));
    free(m);
    o.recipient = NULL;
    free(csr);

    /* wrong and missing challenge */
    csr = make_csr(dev_key, "device-0001", "not-the-challenge", NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    assert_non_null(strstr(last_msg, "wrong challengePassword"));
    /* the log never shows a challenge */
    assert_null(strstr(last_msg, "not-the-challenge"));
    free(m);
    free(csr);
    /* a prefix of the right one is wrong too */
    csr = make_csr(dev_key, "device-0001", "s3cret", NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    free(m);
    free(csr);
    csr = make_csr(dev_key, "device-0001", NULL, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    free(m);
    free(csr);

    /* CSR signed by another key */
    csr = make_csr(dev_key, "device-0001", CHALLENGE, dev_key2, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 1, "MDM08014", NULL);
    free(m);
    free(csr);

    /* not a CSR at all */
    o.content = (const unsigned char *) "\x30\x03\x02\x01\x00";
    o.content_len = 5;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08014", NULL);
    free(m);

    /* empty subject */
    csr = make_csr(dev_key, NULL, CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08015", NULL);
    free(m);
    free(csr);

    /* GetCRL and other message types */
    csr = make_csr(dev_key, "device-0001", CHALLENGE, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    o.msg_type = "22";
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08013", NULL);
    free(m);
    o.msg_type = "3";
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08013", NULL);
    free(m);
    o.msg_type = NULL;

    /* not a pkiMessage: 400, no CertRep */
    {
        mdm_scep_req_t *r;
        mdm_step_t step;

        o.no_txid = 1;
        m = make_pkimsg(&o, &len);
        r = post(ca, m, len, T_GEN, &step);
        assert_int_equal(step, MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_int_equal(mdm_scep_req_response(r)->body_len, 0);
        assert_string_equal(last_id, "MDM08001");
        assert_non_null(strstr(last_msg, "transactionID"));
        assert_int_equal(nlogs, 1);
        mdm_scep_req_free(r);
        free(m);
        o.no_txid = 0;

        r = post(ca, (const unsigned char *) "\x30\x03garbage", 10, T_GEN,
                 &step);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(last_id, "MDM08001");
        mdm_scep_req_free(r);
        r = post(ca, NULL, 0, T_GEN, &step);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(last_id, "MDM08001");
        mdm_scep_req_free(r);
        r = post(ca, (const unsigned char *) "not base64 @@", 13, T_GEN, &step);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(last_id, "MDM08001");
        mdm_scep_req_free(r);
        /* a certificate is DER but no pkiMessage */
        {
            unsigned char *der = NULL;
            int n = i2d_X509(sample_ca, &der);

            r = post(ca, der, (size_t) n, T_GEN, &step);
            assert_int_equal(mdm_scep_req_response(r)->status, 400);
            assert_string_equal(last_id, "MDM08001");
            mdm_scep_req_free(r);
            OPENSSL_free(der);
        }
    }
    free(csr);
    X509_free(other_ca);
    X509_free(signer);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_renewal(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *off;
    X509 *ours, *expired, *stranger;
    size_t len, clen;
    unsigned char *m, *csr;
    req_opts_t o = {0};
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    (void) state;
    ours = make_cert(dev_key, "device-0001", sample_ca, sample_ca_key, 0x1234,
                     T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    expired = make_cert(dev_key, "device-0001", sample_ca, sample_ca_key,
                        0x1235, T_GEN - 10 * DAY, T_GEN - DAY);
    stranger = make_cert(dev_key, "device-0001", NULL, NULL, 0x1236,
                         T_GEN - 10 * DAY, T_GEN + 10 * DAY);
    /* no challenge in a renewal */
    csr = make_csr(dev_key2, "device-0001", NULL, NULL, &clen);
    o.msg_type = "17";
    o.signer_key = dev_key;
    o.content = csr;
    o.content_len = clen;

    o.signer = ours;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    if (step != MDM_STEP_REDIS) {
        fail_msg("%s %s", last_id, last_msg);
    }
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[15], "RenewalReq");
    assert_string_equal(plan->cmds[0].argv[16], "1234");
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, ours,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    check_issued(cr.issued, dev_key2, "device-0001", T_GEN);
    X509_free(cr.issued);
    mdm_scep_req_free(r);

    /* the certificate was revoked meanwhile: the script says so */
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    assert_int_equal(feed1(r, rep_array1("REVOKED")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, ours,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08020");
    mdm_scep_req_free(r);

    /* renewal switched off */
    off = sample_ca_conf(CHALLENGE, "renewal", "off", NULL, NULL);
    expect_fail(off, m, len, T_GEN, 2, "MDM08013", NULL);
    mdm_scep_ca_free(off);
    free(m);

    o.signer = expired;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 3, "MDM08018", NULL);
    free(m);
    o.signer = stranger;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08019", NULL);
    free(m);
    /* a renewal keeps the name */
    free(csr);
    csr = make_csr(dev_key2, "device-9999", NULL, NULL, &clen);
    o.content = csr;
    o.content_len = clen;
    o.signer = ours;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08023", NULL);
    free(m);

    free(csr);
    X509_free(ours);
    X509_free(expired);
    X509_free(stranger);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_getcert_certpoll(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer, *known, *other;
    size_t len, clen;
    unsigned char *m, *ias, *der = NULL;
    req_opts_t o = {0};
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    redisReply *rep;
    int n;

    (void) state;
    signer = make_cert(dev_key, "MDM SCEP SIGNER", NULL, NULL, 1, T_GEN - DAY,
                       T_GEN + DAY);
    known = make_cert(dev_key2, "device-0002", sample_ca, sample_ca_key, 0xabcd,
                      T_GEN - DAY, T_GEN + DAY);
    o.signer = signer;
    o.signer_key = dev_key;

    /* GetCert: looked up by serial */
    ias = issuer_and_serial(sample_ca, 0xabcd, &clen);
    o.msg_type = "21";
    o.content = ias;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "HGET");
    assert_string_equal(plan->cmds[0].argv[1], "t:{scep}:cert:abcd");
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_NIL, NULL)), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 4);
    assert_string_equal(last_id, "MDM08021");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* known serial: the certificate, encrypted to the asker */
    r = post(ca, m, len, T_GEN, &step);
    n = i2d_X509(known, &der);
    rep = rep_new(REDIS_REPLY_STRING, NULL);
    rep->str = malloc((size_t) n);
    memcpy(rep->str, der, (size_t) n);
    rep->len = (size_t) n;
    OPENSSL_free(der);
    assert_int_equal(feed1(r, rep), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_int_equal(X509_cmp(cr.issued, known), 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);

    /* storage down: 503, not a CertRep */
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(feed1(r, NULL), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_int_equal(mdm_scep_req_response(r)->retry_after, 5);
    assert_string_equal(last_id, "MDM04001");
    mdm_scep_req_free(r);
    free(m);
    free(ias);

    /* serials are spelled without a leading zero nibble (0x0abc) */
    ias = issuer_and_serial(sample_ca, 0xabc, &clen);
    o.content = ias;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    assert_string_equal(mdm_scep_req_plan(r)->cmds[0].argv[1],
                        "t:{scep}:cert:abc");
    mdm_scep_req_free(r);
    free(m);
    free(ias);

    /* another issuer: badCertId without asking Redis */
    other = make_cert(dev_key2, "Other CA", NULL, NULL, 5, T_GEN - DAY,
                      T_GEN + DAY);
    ias = issuer_and_serial(other, 0xabcd, &clen);
    o.content = ias;
    o.content_len = clen;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 4, "MDM08021", NULL);
    free(m);
    free(ias);
    o.content = (const unsigned char *) "\x05\x00";
    o.content_len = 2;
    m = make_pkimsg(&o, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08021", NULL);
    free(m);

    /* CertPoll: by transactionID */
    o.msg_type = "20";
    o.txid = "POLL-0001";
    o.content = (const unsigned char *) "\x30\x00";
    o.content_len = 2;
    m = make_pkimsg(&o, &len);
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[1], "t:{scep}:txn:POLL-0001");
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_NIL, NULL)), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "POLL-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 4);
    assert_string_equal(last_id, "MDM08022");
    mdm_scep_req_free(r);
    free(m);

    X509_free(other);
    X509_free(known);
    X509_free(signer);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

/* Replies the script may give, and NOSCRIPT. */
static void
test_issue_replies(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    X509 *signer;
    size_t len;
    unsigned char *m = pkcsreq("one-time-1", NULL, NULL, &signer, &len);
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;
    unsigned char md[32];
    char want[128], hex[65];
    int i;

    (void) state;
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    /* the key holds the challenge's SHA-256, never the challenge */
    EVP_Digest("one-time-1", 10, md, NULL, EVP_sha256(), NULL);
    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", md[i]);
    }
    snprintf(want, sizeof(want), "t:{scep}:chal:%s", hex);
    assert_string_equal(plan->cmds[0].argv[3], want);
    assert_string_equal(plan->cmds[0].argv[8], "consume");
    /* NOSCRIPT: the same call once more, with EVAL */
    assert_int_equal(
        feed1(r, rep_new(REDIS_REPLY_ERROR, "NOSCRIPT No matching script")),
        MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "EVAL");
    assert_string_equal(plan->cmds[0].argv[3], want);
    assert_int_equal(feed1(r, rep_array1("NOCHALLENGE")), MDM_STEP_DONE);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08017");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* a second NOSCRIPT is a storage error */
    r = post(ca, m, len, T_GEN, &step);
    feed1(r, rep_new(REDIS_REPLY_ERROR, "NOSCRIPT x"));
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_ERROR, "NOSCRIPT x")),
                     MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_string_equal(last_id, "MDM04002");
    mdm_scep_req_free(r);

    /* dynamic mode without a challenge: refused before Redis */
    X509_free(signer);
    free(m);
    m = pkcsreq(NULL, NULL, NULL, &signer, &len);
    expect_fail(ca, m, len, T_GEN, 2, "MDM08017", NULL);
    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
}

static void
test_admin_plans(void **state)
{
    mdm_scep_ca_t *dyn = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *st = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    const mdm_plan_t *plan;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;

    (void) state;
    r = mdm_scep_req_new_admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, "abc", 60);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_int_equal(plan->cmds[0].argc, 6);
    assert_string_equal(plan->cmds[0].argv[0], "SET");
    assert_string_equal(plan->cmds[0].argv[3], "NX");
    assert_string_equal(plan->cmds[0].argv[4], "EX");
    assert_string_equal(plan->cmds[0].argv[5], "60");
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_STATUS, "OK")),
                     MDM_STEP_DONE);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 201);
    assert_string_equal(resp->content_type, "application/json");
    assert_int_equal(resp->body_len,
                     strlen("{\"challenge\":\"abc\",\"ttl\":60}"));
    assert_memory_equal(resp->body, "{\"challenge\":\"abc\",\"ttl\":60}",
                        resp->body_len);
    mdm_scep_req_free(r);

    log_reset();
    r = mdm_scep_req_new_admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, NULL, 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    assert_string_equal(mdm_scep_req_plan(r)->cmds[0].argv[5], "3600");
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_NIL, NULL)), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 409);
    assert_string_equal(last_id, "MDM08052");
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, "has space", 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08050");
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_CHALLENGE, NULL, 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_REVOKE, "00:AB:Cd:01", 0);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "EVALSHA");
    assert_string_equal(plan->cmds[0].argv[3], "t:{scep}:cert:abcd01");
    assert_string_equal(plan->cmds[0].argv[4], "t:{scep}:revoked");
    assert_int_equal(feed1(r, rep_array1("UNKNOWN")), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_REVOKE, "xyz", 0);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    mdm_scep_req_free(r);
    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_REVOKE, "0000", 0);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    mdm_scep_req_free(r);
    /* the HTTP routes */
    {
        static const char b1[] = "{\"challenge\":\"from-json\",\"ttl\":90}";
        static const char b2[] = "{\"ttl\":\"soon\"}";

        r = mdm_scep_req_new_admin_http(dyn, "POST", 4, "/challenge", 10,
                                        (const unsigned char *) b1,
                                        sizeof(b1) - 1);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        plan = mdm_scep_req_plan(r);
        assert_string_equal(plan->cmds[0].argv[5], "90");
        assert_int_equal(feed1(r, rep_new(REDIS_REPLY_STATUS, "OK")),
                         MDM_STEP_DONE);
        resp = mdm_scep_req_response(r);
        assert_int_equal(resp->status, 201);
        assert_non_null(memmem(resp->body, resp->body_len, "from-json", 9));
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(dyn, "POST", 4, "challenge/", 10, NULL,
                                        0);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(dyn, "POST", 4, "/challenge", 10,
                                        (const unsigned char *) b2,
                                        sizeof(b2) - 1);
        mdm_scep_req_set_logger(r, log_sink, NULL);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(mdm_scep_req_response(r)->content_type,
                            "application/json");
        assert_string_equal(last_id, "MDM08050");
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(dyn, "GET", 3, "/challenge", 10, NULL,
                                        0);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 405);
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(st, "POST", 4, "/revoke/0A%3Abc", 15,
                                        NULL, 0);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        assert_string_equal(mdm_scep_req_plan(r)->cmds[0].argv[3],
                            "t:{scep}:cert:abc");
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(st, "POST", 4, "/nothing", 8, NULL, 0);
        mdm_scep_req_set_logger(r, log_sink, NULL);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 404);
        assert_string_equal(last_id, "MDM08053");
        mdm_scep_req_free(r);
    }
    mdm_scep_ca_free(dyn);
    mdm_scep_ca_free(st);
}

/* ------------------------------------------------------------------ */
/* against a real redis-server                                         */

static redis_fixture_t fx;
static redisContext *rc;

static int
store_setup(void **state)
{
    (void) state;
    if (redis_fixture_start(&fx) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return -1;
    }
    rc = redis_fixture_connect(&fx);
    return rc ? 0 : -1;
}

static int
store_teardown(void **state)
{
    (void) state;
    if (rc) {
        redisFree(rc);
    }
    redis_fixture_stop(&fx);
    return 0;
}

static long long
redis_int(const char *fmt, const char *arg)
{
    redisReply *x = redisCommand(rc, fmt, arg);
    long long v;

    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_INTEGER);
    v = x->integer;
    freeReplyObject(x);
    return v;
}

static char *
redis_str(const char *fmt, const char *a, const char *b)
{
    redisReply *x = redisCommand(rc, fmt, a, b);
    char *s = NULL;

    assert_non_null(x);
    if (x->type == REDIS_REPLY_STRING) {
        /* binary-safe: DER values contain NUL bytes */
        s = malloc(x->len + 1);
        memcpy(s, x->str, x->len);
        s[x->len] = '\0';
    }
    freeReplyObject(x);
    return s;
}

static mdm_scep_req_t *
run(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len)
{
    mdm_step_t step;
    mdm_scep_req_t *r = post(ca, m, len, T_GEN, &step);

    if (step == MDM_STEP_REDIS) {
        mdm_scep_exec_sync(rc, r);
    }
    return r;
}

static mdm_scep_req_t *
admin(const mdm_scep_ca_t *ca, mdm_scep_admin_op_t op, const char *arg,
      long ttl)
{
    mdm_scep_req_t *r = mdm_scep_req_new_admin(ca, op, arg, ttl);

    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    if (mdm_scep_req_start(r) == MDM_STEP_REDIS) {
        mdm_scep_exec_sync(rc, r);
    }
    return r;
}

static void
test_store_dynamic(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *st = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    mdm_scep_req_t *r;
    X509 *signer, *signer2;
    size_t len, len2, clen;
    unsigned char *m, *m2, *ias;
    certrep_t cr;
    char key[256], serial[64], chal[64], *s;
    const char *c;
    req_opts_t o = {0};
    long long dbsize;

    (void) state;
    freeReplyObject(redisCommand(rc, "FLUSHALL"));

    /* a generated one-time challenge */
    r = admin(ca, MDM_SCEP_ADMIN_CHALLENGE, NULL, 120);
    assert_int_equal(mdm_scep_req_response(r)->status, 201);
    assert_string_equal(last_id, "MDM08031");
    s = strndup((const char *) mdm_scep_req_response(r)->body,
                mdm_scep_req_response(r)->body_len);
    mdm_scep_req_free(r);
    c = strstr(s, "\"challenge\":\"") + 13;
    snprintf(chal, sizeof(chal), "%.*s", (int) strcspn(c, "\""), c);
    free(s);
    assert_int_equal(strlen(chal), 32);
    /* the same one again: 409 */
    r = admin(ca, MDM_SCEP_ADMIN_CHALLENGE, chal, 120);
    assert_int_equal(mdm_scep_req_response(r)->status, 409);
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("DBSIZE", NULL), 1);

    m = pkcsreq(chal, NULL, NULL, &signer, &len);
    /* the script is not loaded yet: NOSCRIPT, then EVAL */
    r = run(ca, m, len);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    snprintf(serial, sizeof(serial), "%s",
             mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
    mdm_scep_req_free(r);
    /* recorded: serial, subject, SHA-256, notAfter, the DER */
    snprintf(key, sizeof(key), "t:{scep}:cert:%s", serial);
    s = redis_str("HGET %s %s", key, "subject");
    assert_string_equal(s, "CN=device-0001");
    free(s);
    s = redis_str("HGET %s %s", key, "sha256");
    assert_int_equal(strlen(s), 64);
    free(s);
    s = redis_str("HGET %s %s", key, "kind");
    assert_string_equal(s, "PKCSReq");
    free(s);
    s = redis_str("HGET %s %s", key, "not_after");
    assert_true(atoll(s) > (long long) T_GEN);
    free(s);
    s = redis_str("ZSCORE %s %s", "t:{scep}:issued", serial);
    assert_non_null(s);
    free(s);
    assert_true(redis_int("TTL %s", "t:{scep}:txn:TXID-0001") > 0);
    X509_free(cr.issued);

    /* the challenge is spent: a second request with it gets nothing and
     * leaves nothing */
    dbsize = redis_int("DBSIZE", NULL);
    m2 = pkcsreq(chal, NULL, NULL, &signer2, &len2);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer2,
                 NULL, &cr);
    assert_int_equal(cr.fail, 2);
    assert_string_equal(last_id, "MDM08017");
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("DBSIZE", NULL), dbsize);
    free(m2);
    X509_free(signer2);

    /* CertPoll for that transaction: the same certificate */
    o.signer = signer;
    o.signer_key = dev_key;
    o.msg_type = "20";
    o.content = (const unsigned char *) "\x30\x00";
    o.content_len = 2;
    m2 = make_pkimsg(&o, &len2);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL), serial);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m2);

    /* GetCert by serial */
    {
        BIGNUM *bn = NULL;

        BN_hex2bn(&bn, serial);
        ias = issuer_and_serial(sample_ca, 1, &clen);
        {
            PKCS7_ISSUER_AND_SERIAL *x;
            const unsigned char *p = ias;
            unsigned char *der = NULL;
            int n;

            x = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long) clen);
            BN_to_ASN1_INTEGER(bn, x->serial);
            free(ias);
            n = i2d_PKCS7_ISSUER_AND_SERIAL(x, &der);
            ias = malloc((size_t) n);
            memcpy(ias, der, (size_t) n);
            clen = (size_t) n;
            OPENSSL_free(der);
            PKCS7_ISSUER_AND_SERIAL_free(x);
        }
        BN_free(bn);
    }
    o.msg_type = "21";
    o.content = ias;
    o.content_len = clen;
    m2 = make_pkimsg(&o, &len2);
    r = run(ca, m2, len2);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 dev_key, &cr);
    assert_int_equal(cr.status, 0);
    X509_free(cr.issued);
    mdm_scep_req_free(r);
    free(m2);
    free(ias);

    /* revoke it: recorded, and a renewal signed by it is refused */
    r = admin(st, MDM_SCEP_ADMIN_REVOKE, serial, 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 200);
    assert_string_equal(last_id, "MDM08032");
    mdm_scep_req_free(r);
    assert_int_equal(redis_int("SISMEMBER t:{scep}:revoked %s", serial), 1);
    s = redis_str("HGET %s %s", key, "revoked");
    assert_non_null(s);
    free(s);
    r = admin(st, MDM_SCEP_ADMIN_REVOKE, "123456", 0);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    assert_string_equal(last_id, "MDM08051");
    mdm_scep_req_free(r);

    {
        X509 *issued;
        const unsigned char *p;

        s = redis_str("HGET %s %s", key, "der");
        p = (const unsigned char *) s;
        issued = d2i_X509(NULL, &p, 4096);
        assert_non_null(issued);
        o.signer = issued;
        o.msg_type = "17";
        o.txid = "RENEW-1";
        {
            size_t cl;
            unsigned char *csr =
                make_csr(dev_key, "device-0001", NULL, NULL, &cl);

            o.content = csr;
            o.content_len = cl;
            m2 = make_pkimsg(&o, &len2);
            free(csr);
        }
        dbsize = redis_int("DBSIZE", NULL);
        r = run(st, m2, len2);
        read_certrep(mdm_scep_req_response(r), "RENEW-1", test_nonce, 16,
                     issued, NULL, &cr);
        assert_int_equal(cr.fail, 2);
        assert_string_equal(last_id, "MDM08020");
        mdm_scep_req_free(r);
        assert_int_equal(redis_int("DBSIZE", NULL), dbsize);
        /* unrevoked (by hand), the renewal goes through and says where it
         * came from */
        freeReplyObject(redisCommand(rc, "SREM t:{scep}:revoked %s", serial));
        r = run(st, m2, len2);
        read_certrep(mdm_scep_req_response(r), "RENEW-1", test_nonce, 16,
                     issued, dev_key, &cr);
        assert_int_equal(cr.status, 0);
        X509_free(cr.issued);
        snprintf(key, sizeof(key), "t:{scep}:cert:%s",
                 mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
        mdm_scep_req_free(r);
        free(s);
        s = redis_str("HGET %s %s", key, "renewed_from");
        assert_string_equal(s, serial);
        free(s);
        X509_free(issued);
        free(m2);
    }

    /* static mode records too */
    free(m);
    X509_free(signer);
    m = pkcsreq(CHALLENGE, NULL, NULL, &signer, &len);
    dbsize = redis_int("DBSIZE", NULL);
    r = run(st, m, len);
    read_certrep(mdm_scep_req_response(r), "TXID-0001", test_nonce, 16, signer,
                 NULL, &cr);
    assert_int_equal(cr.status, 0);
    mdm_scep_req_free(r);
    /* one more record; the transaction key is overwritten */
    assert_int_equal(redis_int("DBSIZE", NULL), dbsize + 1);

    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
    mdm_scep_ca_free(st);
}

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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_ca_load_errors),
        cmocka_unit_test(test_caps_cacert),
        cmocka_unit_test(test_ra),
        cmocka_unit_test(test_real_pkcsreq),
        cmocka_unit_test(test_real_mdmclient),
        cmocka_unit_test(test_issue),
        cmocka_unit_test(test_legacy_des),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_getcert_certpoll),
        cmocka_unit_test(test_issue_replies),
        cmocka_unit_test(test_admin_plans),
        cmocka_unit_test(test_write_seeds),
    };
    const struct CMUnitTest store[] = {
        cmocka_unit_test(test_store_dynamic),
    };
    int failed;

    if (setup(NULL) != 0) {
        return 1;
    }
    failed = cmocka_run_group_tests_name("scep", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("scep_store", store, store_setup,
                                          store_teardown);
    teardown(NULL);
    return failed ? 1 : 0;
}
