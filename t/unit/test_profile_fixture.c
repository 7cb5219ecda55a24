/*
 * Shared by the enrollment profile unit tests (test_profile_conf.c,
 * test_profile_build.c): the key and certificate files they need, made
 * once per program with the OpenSSL API in a temporary directory, and
 * helpers to build a profile and read the plist back.
 *
 * Needs MDM_TEST_PKI (t/pki/mkpki.sh output). The signing certificate and
 * the push certificates are made here (the test PKI has no S/MIME signer
 * and no certificate with a UID).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#include "test_profile_fixture.h"

const char *pki_dir;
char tmp_dir[256];

/* ------------------------------------------------------------------ */
/* helpers                                                             */

char *
pki(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];

    snprintf(p, sizeof(buf[0]), "%s/%s", pki_dir, name);
    return p;
}

char *
tmp(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];

    snprintf(p, sizeof(buf[0]), "%s/%s", tmp_dir, name);
    return p;
}

X509 *
load_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x;

    assert_non_null(fp);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *
load_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k;

    assert_non_null(fp);
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/**
 * A certificate for key with subject "K=V/K=V" fields (via
 * X509_NAME_add_entry_by_txt), issued by issuer/ikey (NULL: self-signed).
 */
static X509 *
make_cert(EVP_PKEY *key, const char *const *fields, X509 *issuer,
          EVP_PKEY *ikey, int signer)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    size_t i;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x),
                                      (long) (random() & 0x7fffffff) + 1),
                     1);
    for (i = 0; fields[i]; i += 2) {
        assert_int_equal(X509_NAME_add_entry_by_txt(
                             n, fields[i], MBSTRING_UTF8,
                             (const unsigned char *) fields[i + 1], -1, -1, 0),
                         1);
    }
    assert_int_equal(X509_set_subject_name(x, n), 1);
    assert_int_equal(
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n), 1);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (signer) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    }
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void
write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    if (x) {
        assert_int_equal(PEM_write_X509(fp, x), 1);
    }
    if (k) {
        assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL),
                         1);
    }
    fclose(fp);
}

static void
write_text(const char *path, const char *s)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(s, fp);
    fclose(fp);
}

/** Concatenate files a and b into path. */
static void
cat2(const char *path, const char *a, const char *b)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", a, b, path);
    assert_int_equal(system(cmd), 0);
}

/* Material made once for all tests. */
static void
make_material(void)
{
    EVP_PKEY *ik = load_key(pki("int.key"));
    X509 *ic = load_cert(pki("int.pem"));
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x;
    const char *sign_f[] = {"O", "libmdm test", "CN", "profile signer", NULL};
    const char *push_f[] = {"UID", TOPIC, "CN", "APSP:0f1e2d3c",
                            "C",   "US",  NULL};
    const char *push2_f[] = {"UID", "com.apple.mgmt.External.other", "CN",
                             "APSP:other", NULL};
    const char *nouid_f[] = {"CN", "no uid here", NULL};
    const char *bad_f[] = {"UID", "com.example.not-a-topic", "CN", "x", NULL};

    assert_non_null(k);
    x = make_cert(k, sign_f, ic, ik, 1);
    write_pem(tmp("sign.pem"), x, NULL);
    write_pem(tmp("sign.key"), NULL, k);
    X509_free(x);
    /* push certificates: the key is in the same file, as often */
    x = make_cert(k, push_f, NULL, NULL, 0);
    write_pem(tmp("push.pem"), x, k);
    X509_free(x);
    x = make_cert(k, push2_f, NULL, NULL, 0);
    write_pem(tmp("push2.pem"), x, NULL);
    X509_free(x);
    x = make_cert(k, nouid_f, NULL, NULL, 0);
    write_pem(tmp("nouid.pem"), x, NULL);
    X509_free(x);
    x = make_cert(k, bad_f, NULL, NULL, 0);
    write_pem(tmp("badtopic.pem"), x, NULL);
    X509_free(x);
    /* intermediate first: CAFingerprint must still be the root's */
    cat2(tmp("int-root.pem"), pki("int.pem"), pki("root.pem"));
    cat2(tmp("sign-int.pem"), tmp("sign.pem"), pki("int.pem"));
    {
        FILE *fp = fopen(tmp("sign-enc.key"), "w");

        assert_non_null(fp);
        assert_int_equal(PEM_write_PrivateKey(fp, k, EVP_aes_128_cbc(), NULL, 0,
                                              NULL, (void *) "secret"),
                         1);
        fclose(fp);
    }
    write_text(tmp("notcert.txt"), "this is not a certificate\n");
    EVP_PKEY_free(k);
    EVP_PKEY_free(ik);
    X509_free(ic);
}

char last_log_id[16];
char last_log_msg[512];

void
log_cb(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(last_log_id, sizeof(last_log_id), "%s", id);
    snprintf(last_log_msg, sizeof(last_log_msg), "%s", msg);
}

void
set_ok(mdm_profile_conf_t *p, const char *name, const char *value)
{
    char err[512] = "";

    if (mdm_profile_conf_set(p, name, value, err, sizeof(err)) != 0) {
        fail_msg("%s=%s: %s", name, value, err);
    }
}

/** A configuration with every option a device needs, not finished. */
mdm_profile_conf_t *
base_conf(const char *url)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();

    assert_non_null(p);
    set_ok(p, "server_url", url);
    set_ok(p, "checkin_url", "https://mdm.example.com/mdm/checkin");
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", tmp("int-root.pem"));
    set_ok(p, "trust_cert", pki("cafile.pem"));
    set_ok(p, "organization", "Example Org");
    set_ok(p, "sign_cert", tmp("sign.pem"));
    set_ok(p, "sign_chain", pki("int.pem"));
    set_ok(p, "sign_key", tmp("sign.key"));
    return p;
}

void
finish_ok(mdm_profile_conf_t *p)
{
    char err[512] = "";

    if (mdm_profile_conf_finish(p, err, sizeof(err)) != 0) {
        fail_msg("finish: %s", err);
    }
}

/** The plist inside a signed profile, after CMS_verify against root. */
plist_t
verify_and_parse(const unsigned char *der, size_t len)
{
    const unsigned char *q = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long) len);
    X509_STORE *store = X509_STORE_new();
    X509 *trusted;
    BIO *out = BIO_new(BIO_s_mem());
    char *data;
    long n;
    plist_t root = NULL;

    assert_non_null(cms);
    assert_ptr_equal(q, der + len);
    /* attached content, exactly one signer, chain in the certificates */
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
    assert_non_null(CMS_get0_content(cms));
    assert_non_null(*CMS_get0_content(cms));
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 1);
    trusted = load_cert(pki("root.pem"));
    assert_int_equal(X509_STORE_add_cert(store, trusted), 1);
    X509_free(trusted); /* the store holds its own reference */
    /* only the root is trusted: the intermediate must come from the CMS */
    if (CMS_verify(cms, NULL, store, NULL, out, CMS_BINARY) != 1) {
        ERR_print_errors_fp(stderr);
        fail_msg("CMS_verify failed");
    }
    n = BIO_get_mem_data(out, &data);
    assert_true(n > 0);
    assert_memory_equal(data, "<?xml", 5);
    plist_from_xml(data, (uint32_t) n, &root);
    assert_non_null(root);
    BIO_free(out);
    X509_STORE_free(store);
    CMS_ContentInfo_free(cms);
    return root;
}

plist_t
xml_parse(const unsigned char *xml, size_t len)
{
    plist_t root = NULL;

    assert_memory_equal(xml, "<?xml", 5);
    plist_from_xml((const char *) xml, (uint32_t) len, &root);
    assert_non_null(root);
    return root;
}

plist_t
item(plist_t d, const char *k, plist_type t)
{
    plist_t n = plist_dict_get_item(d, k);

    if (n == NULL) {
        fail_msg("missing key %s", k);
    }
    if (plist_get_node_type(n) != t) {
        fail_msg("key %s has type %d, expected %d", k,
                 (int) plist_get_node_type(n), (int) t);
    }
    return n;
}

const char *
str(plist_t d, const char *k)
{
    return plist_get_string_ptr(item(d, k, PLIST_STRING), NULL);
}

uint64_t
uint_of(plist_t d, const char *k)
{
    uint64_t v = 0;

    plist_get_uint_val(item(d, k, PLIST_UINT), &v);
    return v;
}

int
boolean(plist_t d, const char *k)
{
    uint8_t v = 2;

    plist_get_bool_val(item(d, k, PLIST_BOOLEAN), &v);
    return v;
}

/** The idx'th payload of PayloadType type in the profile (or NULL). */
plist_t
payload(plist_t root, const char *type, int idx)
{
    plist_t content = item(root, "PayloadContent", PLIST_ARRAY);
    uint32_t i, n = plist_array_get_size(content);
    plist_t d;

    for (i = 0; i < n; i++) {
        d = plist_array_get_item(content, i);
        assert_int_equal(plist_get_node_type(d), PLIST_DICT);
        if (strcmp(str(d, "PayloadType"), type) == 0 && idx-- == 0) {
            return d;
        }
    }
    return NULL;
}

void
common_keys(plist_t d)
{
    const char *u;

    str(d, "PayloadType");
    assert_int_equal(uint_of(d, "PayloadVersion"), 1);
    assert_true(strlen(str(d, "PayloadIdentifier")) > 0);
    u = str(d, "PayloadUUID");
    assert_int_equal(strlen(u), 36);
    assert_true(u[14] == '5'); /* name-based, version 5 */
}

plist_t
build_signed(const mdm_profile_conf_t *p, const char *challenge)
{
    unsigned char *out = NULL;
    size_t len = 0;
    plist_t root;

    assert_int_equal(mdm_profile_build(p, challenge, log_cb, NULL, &out, &len),
                     0);
    root = verify_and_parse(out, len);
    free(out);
    return root;
}

plist_t
build_xml(const mdm_profile_conf_t *p, const char *challenge)
{
    unsigned char *out = NULL;
    size_t len = 0;
    plist_t root;

    assert_int_equal(
        mdm_profile_build_xml(p, challenge, log_cb, NULL, &out, &len), 0);
    root = xml_parse(out, len);
    free(out);
    return root;
}

void
collect_uuids(plist_t root, char *buf, size_t len)
{
    plist_t content = item(root, "PayloadContent", PLIST_ARRAY);
    uint32_t i;

    snprintf(buf, len, "%s %s", str(root, "PayloadUUID"),
             str(root, "PayloadIdentifier"));
    for (i = 0; i < plist_array_get_size(content); i++) {
        plist_t d = plist_array_get_item(content, i);
        size_t o = strlen(buf);

        snprintf(buf + o, len - o, " %s %s", str(d, "PayloadUUID"),
                 str(d, "PayloadIdentifier"));
    }
}

int
profile_setup(void **state)
{
    (void) state;
    pki_dir = getenv("MDM_TEST_PKI");
    if (pki_dir == NULL) {
        fprintf(stderr, "set MDM_TEST_PKI (t/pki/mkpki.sh output)\n");
        return -1;
    }
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/mdm-profile-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    srandom((unsigned) getpid());
    make_material();
    return 0;
}

int
profile_teardown(void **state)
{
    char cmd[512];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
    return 0;
}
