/*
 * Unit tests for core/mdm_profile.c: the enrollment profile.
 *
 * Needs MDM_TEST_PKI (t/pki/mkpki.sh output). The signing certificate and
 * the push certificates are made here with the OpenSSL API (the test PKI
 * has no S/MIME signer and no certificate with a UID).
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

#include "mdm_profile.h"

#define TOPIC "com.apple.mgmt.External.0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
#define URL   "https://mdm.example.com/mdm/connect"

static const char *pki_dir;
static char tmp_dir[256];

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static char *
pki(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];

    snprintf(p, sizeof(buf[0]), "%s/%s", pki_dir, name);
    return p;
}

static char *
tmp(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];

    snprintf(p, sizeof(buf[0]), "%s/%s", tmp_dir, name);
    return p;
}

static X509 *
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

static char last_log_id[16];
static char last_log_msg[512];

static void
log_cb(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    snprintf(last_log_id, sizeof(last_log_id), "%s", id);
    snprintf(last_log_msg, sizeof(last_log_msg), "%s", msg);
}

static void
set_ok(mdm_profile_conf_t *p, const char *name, const char *value)
{
    char err[512] = "";

    if (mdm_profile_conf_set(p, name, value, err, sizeof(err)) != 0) {
        fail_msg("%s=%s: %s", name, value, err);
    }
}

/** A configuration with every option a device needs, not finished. */
static mdm_profile_conf_t *
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

static void
finish_ok(mdm_profile_conf_t *p)
{
    char err[512] = "";

    if (mdm_profile_conf_finish(p, err, sizeof(err)) != 0) {
        fail_msg("finish: %s", err);
    }
}

/** The plist inside a signed profile, after CMS_verify against root. */
static plist_t
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

static plist_t
xml_parse(const unsigned char *xml, size_t len)
{
    plist_t root = NULL;

    assert_memory_equal(xml, "<?xml", 5);
    plist_from_xml((const char *) xml, (uint32_t) len, &root);
    assert_non_null(root);
    return root;
}

static plist_t
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

static const char *
str(plist_t d, const char *k)
{
    return plist_get_string_ptr(item(d, k, PLIST_STRING), NULL);
}

static uint64_t
uint_of(plist_t d, const char *k)
{
    uint64_t v = 0;

    plist_get_uint_val(item(d, k, PLIST_UINT), &v);
    return v;
}

static int
boolean(plist_t d, const char *k)
{
    uint8_t v = 2;

    plist_get_bool_val(item(d, k, PLIST_BOOLEAN), &v);
    return v;
}

/** The idx'th payload of PayloadType type in the profile (or NULL). */
static plist_t
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

static void
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

static plist_t
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

static plist_t
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

/* ------------------------------------------------------------------ */
/* tests                                                               */

static void
test_signed_profile_keys(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    plist_t root, scep, sc, mdm, caps, subj, rdn, pair, fp, trust;
    X509 *rootc = load_cert(pki("root.pem"));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *fpdata = NULL;
    uint64_t fplen = 0;

    (void) state;
    finish_ok(p);
    assert_string_equal(mdm_profile_topic(p), TOPIC);
    root = build_signed(p, "one-time-XYZ");

    /* top level */
    assert_string_equal(str(root, "PayloadType"), "Configuration");
    common_keys(root);
    assert_string_equal(str(root, "PayloadIdentifier"),
                        "com.example.mdm.enrollment");
    assert_string_equal(str(root, "PayloadOrganization"), "Example Org");
    str(root, "PayloadDisplayName");
    /* cafile.pem = root + int: one root payload, one pkcs1; first */
    assert_int_equal(
        plist_array_get_size(item(root, "PayloadContent", PLIST_ARRAY)), 4);
    trust = payload(root, "com.apple.security.root", 0);
    assert_non_null(trust);
    common_keys(trust);
    item(trust, "PayloadContent", PLIST_DATA);
    str(trust, "PayloadCertificateFileName");
    assert_ptr_equal(
        plist_array_get_item(item(root, "PayloadContent", PLIST_ARRAY), 0),
        trust);
    trust = payload(root, "com.apple.security.pkcs1", 0);
    assert_non_null(trust);
    common_keys(trust);
    item(trust, "PayloadContent", PLIST_DATA);

    /* SCEP */
    scep = payload(root, "com.apple.security.scep", 0);
    assert_non_null(scep);
    common_keys(scep);
    sc = item(scep, "PayloadContent", PLIST_DICT);
    assert_string_equal(str(sc, "URL"), "https://mdm.example.com/scep");
    assert_string_equal(str(sc, "Challenge"), "one-time-XYZ");
    assert_int_equal(uint_of(sc, "Keysize"), 2048);
    assert_string_equal(str(sc, "Key Type"), "RSA");
    assert_int_equal(uint_of(sc, "Key Usage"), 5);
    assert_int_equal(uint_of(sc, "Retries"), 3);
    assert_int_equal(uint_of(sc, "RetryDelay"), 10);
    subj = item(sc, "Subject", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(subj), 2);
    rdn = plist_array_get_item(subj, 1);
    assert_int_equal(plist_get_node_type(rdn), PLIST_ARRAY);
    pair = plist_array_get_item(rdn, 0);
    assert_int_equal(plist_get_node_type(pair), PLIST_ARRAY);
    assert_string_equal(
        plist_get_string_ptr(plist_array_get_item(pair, 0), NULL), "CN");
    /* CAFingerprint: SHA-1 of the root, though int.pem came first */
    fp = item(sc, "CAFingerprint", PLIST_DATA);
    plist_get_data_val(fp, &fpdata, &fplen);
    assert_int_equal(X509_digest(rootc, EVP_sha1(), md, &mdlen), 1);
    assert_int_equal(fplen, mdlen);
    assert_memory_equal(fpdata, md, mdlen);
    free(fpdata);

    /* MDM */
    mdm = payload(root, "com.apple.mdm", 0);
    assert_non_null(mdm);
    common_keys(mdm);
    assert_ptr_equal(
        plist_array_get_item(item(root, "PayloadContent", PLIST_ARRAY), 3),
        mdm);
    assert_string_equal(str(mdm, "ServerURL"), URL);
    assert_string_equal(str(mdm, "CheckInURL"),
                        "https://mdm.example.com/mdm/checkin");
    assert_string_equal(str(mdm, "Topic"), TOPIC);
    assert_string_equal(str(mdm, "IdentityCertificateUUID"),
                        str(scep, "PayloadUUID"));
    assert_int_equal(boolean(mdm, "SignMessage"), 1);
    assert_int_equal(uint_of(mdm, "AccessRights"), 8191);
    assert_int_equal(boolean(mdm, "CheckOutWhenRemoved"), 1);
    assert_null(plist_dict_get_item(mdm, "UseDevelopmentAPNS"));
    caps = item(mdm, "ServerCapabilities", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(caps), 2);
    assert_string_equal(
        plist_get_string_ptr(plist_array_get_item(caps, 0), NULL),
        "com.apple.mdm.per-user-connections");
    assert_string_equal(
        plist_get_string_ptr(plist_array_get_item(caps, 1), NULL),
        "com.apple.mdm.bootstraptoken");

    plist_free(root);
    X509_free(rootc);
    mdm_profile_conf_free(p);
}

static void
test_options_reach_the_plist(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    plist_t root, sc, mdm, subj, pair, caps;
    const char *want[][2] = {{"C", "US"},
                             {"O", "Ex/ample"},
                             {"CN", "dev 1"},
                             {"1.2.3.4", "x"},
                             {"1.2.840.113549.1.9.1", "a@example.com"}};
    size_t i;

    (void) state;
    set_ok(p, "scep_subject",
           "/C=US/O=Ex\\/ample/CN=dev 1/1.2.3.4=x/emailAddress=a@example.com");
    set_ok(p, "scep_name", "ca-1");
    set_ok(p, "scep_key_size", "4096");
    set_ok(p, "scep_key_usage", "1");
    set_ok(p, "scep_retries", "7");
    set_ok(p, "scep_retry_delay", "30");
    set_ok(p, "scep_fingerprint", "sha256");
    set_ok(p, "access_rights", "17");
    set_ok(p, "sign_message", "off");
    set_ok(p, "check_out_when_removed", "false");
    set_ok(p, "use_development_apns", "on");
    set_ok(p, "server_capabilities", "com.apple.mdm.token");
    set_ok(p, "identifier", "org.example.enroll");
    set_ok(p, "display_name", "Enroll Me");
    set_ok(p, "description", "Lets Example manage this device");
    finish_ok(p);
    root = build_signed(p, NULL);
    assert_string_equal(str(root, "PayloadIdentifier"), "org.example.enroll");
    assert_string_equal(str(root, "PayloadDisplayName"), "Enroll Me");
    str(root, "PayloadDescription");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(
        str(payload(root, "com.apple.security.scep", 0), "PayloadIdentifier"),
        "org.example.enroll.scep");
    assert_string_equal(str(sc, "Name"), "ca-1");
    assert_int_equal(uint_of(sc, "Keysize"), 4096);
    assert_int_equal(uint_of(sc, "Key Usage"), 1);
    assert_int_equal(uint_of(sc, "Retries"), 7);
    assert_int_equal(uint_of(sc, "RetryDelay"), 30);
    /* no challenge given, none configured: no key */
    assert_null(plist_dict_get_item(sc, "Challenge"));
    {
        char *d = NULL;
        uint64_t n = 0;

        plist_get_data_val(item(sc, "CAFingerprint", PLIST_DATA), &d, &n);
        assert_int_equal(n, 32);
        free(d);
    }
    subj = item(sc, "Subject", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(subj), 5);
    for (i = 0; i < 5; i++) {
        pair =
            plist_array_get_item(plist_array_get_item(subj, (uint32_t) i), 0);
        assert_string_equal(
            plist_get_string_ptr(plist_array_get_item(pair, 0), NULL),
            want[i][0]);
        assert_string_equal(
            plist_get_string_ptr(plist_array_get_item(pair, 1), NULL),
            want[i][1]);
    }
    mdm = payload(root, "com.apple.mdm", 0);
    assert_int_equal(uint_of(mdm, "AccessRights"), 17);
    assert_int_equal(boolean(mdm, "SignMessage"), 0);
    assert_int_equal(boolean(mdm, "CheckOutWhenRemoved"), 0);
    assert_int_equal(boolean(mdm, "UseDevelopmentAPNS"), 1);
    caps = item(mdm, "ServerCapabilities", PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(caps), 1);
    plist_free(root);
    mdm_profile_conf_free(p);

    /* no capabilities at all, no CAFingerprint, no scep_ca needed */
    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "http://scep.example.com/cgi-bin/pkiclient.exe");
    set_ok(p, "scep_fingerprint", "none");
    set_ok(p, "server_capabilities", "none");
    set_ok(p, "unsigned", "on");
    finish_ok(p);
    root = build_xml(p, NULL);
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_null(plist_dict_get_item(sc, "CAFingerprint"));
    mdm = payload(root, "com.apple.mdm", 0);
    assert_null(plist_dict_get_item(mdm, "ServerCapabilities"));
    assert_null(plist_dict_get_item(mdm, "CheckInURL"));
    assert_null(payload(root, "com.apple.security.root", 0));
    plist_free(root);
    mdm_profile_conf_free(p);
}

/** The chain may come in the sign_cert file itself. */
static void
test_chain_in_sign_cert_file(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    plist_t root;

    (void) state;
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "sign_cert", tmp("sign-int.pem"));
    set_ok(p, "sign_key", tmp("sign.key"));
    finish_ok(p);
    /* verify_and_parse trusts only the root: int must be in the CMS */
    root = build_signed(p, NULL);
    assert_string_equal(str(root, "PayloadType"), "Configuration");
    plist_free(root);
    mdm_profile_conf_free(p);
}

static void
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

static void
test_uuids_stable(void **state)
{
    mdm_profile_conf_t *a = base_conf(URL), *b = base_conf(URL),
                       *c = base_conf("https://other.example.com/mdm"),
                       *d = base_conf(URL);
    char ua[2048], ub[2048], ua2[2048], uc[2048], ud[2048];
    plist_t ra, ra2, rb, rc, rd;

    (void) state;
    set_ok(d, "topic", "com.apple.mgmt.External.another");
    finish_ok(a);
    finish_ok(b);
    finish_ok(c);
    finish_ok(d);
    ra = build_signed(a, "first");
    ra2 = build_signed(a, "second");
    rb = build_xml(b, "third");
    rc = build_signed(c, "first");
    rd = build_signed(d, "first");
    collect_uuids(ra, ua, sizeof(ua));
    collect_uuids(ra2, ua2, sizeof(ua2));
    collect_uuids(rb, ub, sizeof(ub));
    collect_uuids(rc, uc, sizeof(uc));
    collect_uuids(rd, ud, sizeof(ud));
    /* two downloads, and a second configuration of the same server */
    assert_string_equal(ua, ua2);
    assert_string_equal(ua, ub);
    /* another server or another topic: other UUIDs */
    assert_string_not_equal(ua, uc);
    assert_string_not_equal(ua, ud);
    assert_string_not_equal(str(ra, "PayloadUUID"), str(rc, "PayloadUUID"));
    assert_string_not_equal(
        str(payload(ra, "com.apple.security.scep", 0), "PayloadUUID"),
        str(payload(rc, "com.apple.security.scep", 0), "PayloadUUID"));
    assert_string_not_equal(
        str(payload(ra, "com.apple.mdm", 0), "PayloadUUID"),
        str(payload(rd, "com.apple.mdm", 0), "PayloadUUID"));
    /* all UUIDs of one profile differ from each other */
    assert_string_not_equal(
        str(payload(ra, "com.apple.mdm", 0), "PayloadUUID"),
        str(payload(ra, "com.apple.security.scep", 0), "PayloadUUID"));
    assert_string_not_equal(
        str(payload(ra, "com.apple.security.root", 0), "PayloadUUID"),
        str(payload(ra, "com.apple.security.pkcs1", 0), "PayloadUUID"));
    plist_free(ra);
    plist_free(ra2);
    plist_free(rb);
    plist_free(rc);
    plist_free(rd);
    mdm_profile_conf_free(a);
    mdm_profile_conf_free(b);
    mdm_profile_conf_free(c);
    mdm_profile_conf_free(d);
}

static void
expect_set_error(mdm_profile_conf_t *p, const char *name, const char *value,
                 const char *must_contain)
{
    char err[512] = "";

    if (mdm_profile_conf_set(p, name, value, err, sizeof(err)) != -1) {
        fail_msg("%s=\"%s\" was accepted", name, value);
    }
    if (strstr(err, must_contain) == NULL) {
        fail_msg("%s=\"%s\": message \"%s\" does not name \"%s\"", name, value,
                 err, must_contain);
    }
}

static void
test_topic_from_push_cert(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    char err[512] = "", *t = NULL;
    plist_t root;

    (void) state;
    assert_int_equal(
        mdm_push_topic_from_file(tmp("push.pem"), &t, err, sizeof(err)), 0);
    assert_string_equal(t, TOPIC);
    free(t);
    t = NULL;
    assert_int_equal(
        mdm_push_topic_from_file(tmp("nouid.pem"), &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "0.9.2342.19200300.100.1.1"));
    assert_null(t);

    set_ok(p, "server_url", URL);
    set_ok(p, "push_cert", tmp("push.pem"));
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "unsigned", "on");
    finish_ok(p);
    assert_string_equal(mdm_profile_topic(p), TOPIC);
    root = build_xml(p, NULL);
    assert_string_equal(str(payload(root, "com.apple.mdm", 0), "Topic"), TOPIC);
    plist_free(root);
    mdm_profile_conf_free(p);

    /* refused certificates name push_cert */
    p = mdm_profile_conf_new();
    expect_set_error(p, "push_cert", tmp("nouid.pem"), "push_cert");
    expect_set_error(p, "push_cert", tmp("nouid.pem"), "UID");
    expect_set_error(p, "push_cert", tmp("badtopic.pem"), "com.apple.mgmt.");
    expect_set_error(p, "push_cert", tmp("badtopic.pem"), "push_cert");
    expect_set_error(p, "push_cert", tmp("notcert.txt"), "push_cert");
    expect_set_error(p, "push_cert", "/nonexistent/push.pem", "push_cert");
    mdm_profile_conf_free(p);

    /* topic and push certificate must agree */
    p = base_conf(URL);
    set_ok(p, "push_cert", tmp("push2.pem"));
    assert_int_equal(mdm_profile_conf_finish(p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "push_cert"));
    assert_non_null(strstr(err, "topic"));
    mdm_profile_conf_free(p);
    p = base_conf(URL);
    set_ok(p, "push_cert", tmp("push.pem"));
    finish_ok(p);
    mdm_profile_conf_free(p);
}

static void
test_bad_options(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();

    (void) state;
    expect_set_error(p, "server_url", "http://mdm.example.com/", "server_url");
    expect_set_error(p, "server_url", "mdm.example.com", "server_url");
    expect_set_error(p, "server_url", "https://", "server_url");
    expect_set_error(p, "server_url", "https://a b/", "server_url");
    expect_set_error(p, "server_url", "https://u:pw@host/", "server_url");
    expect_set_error(p, "checkin_url", "ftp://x/", "checkin_url");
    expect_set_error(p, "scep_url", "scep://x/", "scep_url");
    expect_set_error(p, "topic", "com.example.topic", "topic");
    expect_set_error(p, "topic", "com.apple.mgmt.", "topic");
    expect_set_error(p, "access_rights", "0", "access_rights");
    expect_set_error(p, "access_rights", "8192", "access_rights");
    expect_set_error(p, "access_rights", "-1", "access_rights");
    expect_set_error(p, "access_rights", "all", "access_rights");
    expect_set_error(p, "scep_key_size", "1024", "scep_key_size");
    expect_set_error(p, "scep_key_usage", "2", "scep_key_usage");
    expect_set_error(p, "scep_retries", "101", "scep_retries");
    expect_set_error(p, "scep_retry_delay", "x", "scep_retry_delay");
    expect_set_error(p, "scep_fingerprint", "md5", "scep_fingerprint");
    expect_set_error(p, "scep_subject", "CN=x", "scep_subject");
    expect_set_error(p, "scep_subject", "/CN=", "scep_subject");
    expect_set_error(p, "scep_subject", "/NOTANATTR=x", "scep_subject");
    expect_set_error(p, "scep_subject", "/", "scep_subject");
    expect_set_error(p, "scep_challenge", "", "scep_challenge");
    expect_set_error(p, "scep_challenge", "bad\nchallenge", "scep_challenge");
    expect_set_error(p, "scep_ca", tmp("notcert.txt"), "scep_ca");
    expect_set_error(p, "scep_ca", "/nonexistent", "scep_ca");
    expect_set_error(p, "trust_cert", "/nonexistent", "trust_cert");
    expect_set_error(p, "sign_cert", tmp("sign.key"), "sign_cert");
    expect_set_error(p, "sign_key", tmp("sign.pem"), "sign_key");
    expect_set_error(p, "sign_chain", tmp("notcert.txt"), "sign_chain");
    expect_set_error(p, "sign_message", "maybe", "sign_message");
    expect_set_error(p, "check_out_when_removed", "2",
                     "check_out_when_removed");
    expect_set_error(p, "use_development_apns", "", "use_development_apns");
    expect_set_error(p, "unsigned", "perhaps", "unsigned");
    expect_set_error(p, "server_capabilities", "com.apple.mdm.token bad!",
                     "server_capabilities");
    expect_set_error(p, "server_capabilities", "", "server_capabilities");
    expect_set_error(p, "identifier", "has space", "identifier");
    expect_set_error(p, "identifier", ".leading", "identifier");
    expect_set_error(p, "organization", "", "organization");
    expect_set_error(p, "display_name", "tab\there", "display_name");
    expect_set_error(p, "frobnicate", "1", "frobnicate");
    expect_set_error(p, "scep_subject",
                     "/1.2.3.4.5.6.7.8.9.10.11.12.13.14.15."
                     "16.17.18.19.20.21.22.23.24.25.26.27.28.29.30=x",
                     "scep_subject");
    mdm_profile_conf_free(p);
}

/* Random text through the parsers: no crash, no leak (ASan), and any
 * accepted value still builds. */
static void
test_random_option_values(void **state)
{
    static const char *const names[] = {
        "scep_subject", "server_url", "scep_url",     "server_capabilities",
        "identifier",   "topic",      "access_rights"};
    static const char alphabet[] = "/=\\,.:@[]-_ aZ09CNOUST%+";
    mdm_profile_conf_t *p;
    char v[64], err[512];
    unsigned char *out;
    size_t i, k, len, n;

    (void) state;
    for (i = 0; i < 3000; i++) {
        /* no files: thousands of rounds stay fast under ASan */
        p = mdm_profile_conf_new();
        set_ok(p, "server_url", URL);
        set_ok(p, "topic", TOPIC);
        set_ok(p, "scep_url", "https://mdm.example.com/scep");
        set_ok(p, "scep_fingerprint", "none");
        set_ok(p, "unsigned", "on");
        n = (size_t) (random() % (long) (sizeof(v) - 1));
        for (k = 0; k < n; k++) {
            v[k] = alphabet[random() % (long) (sizeof(alphabet) - 1)];
        }
        v[n] = '\0';
        if (i % 2 == 0 && n > 0) {
            v[0] = '/';
        }
        (void) mdm_profile_conf_set(p, names[i % 7], v, err, sizeof(err));
        if (mdm_profile_conf_finish(p, err, sizeof(err)) == 0) {
            out = NULL;
            assert_int_equal(
                mdm_profile_build_xml(p, NULL, NULL, NULL, &out, &len), 0);
            free(out);
        }
        mdm_profile_conf_free(p);
    }
}

static void
expect_finish_error(mdm_profile_conf_t *p, const char *must_contain)
{
    char err[512] = "";

    assert_int_equal(mdm_profile_conf_finish(p, err, sizeof(err)), -1);
    if (strstr(err, must_contain) == NULL) {
        fail_msg("finish: \"%s\" does not name \"%s\"", err, must_contain);
    }
    mdm_profile_conf_free(p);
}

static void
test_finish_errors(void **state)
{
    mdm_profile_conf_t *p;
    unsigned char *out = NULL;
    size_t len = 0;

    (void) state;
    p = base_conf(URL);
    set_ok(p, "unsigned", "on");
    expect_finish_error(p, "unsigned");

    p = mdm_profile_conf_new();
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    expect_finish_error(p, "server_url");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    expect_finish_error(p, "scep_url");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    expect_finish_error(p, "topic");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "unsigned", "on");
    expect_finish_error(p, "scep_ca");

    /* signing is the default: no certificate is an error */
    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    expect_finish_error(p, "sign_cert");

    p = mdm_profile_conf_new();
    set_ok(p, "server_url", URL);
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "sign_cert", tmp("sign.pem"));
    expect_finish_error(p, "sign_key");

    p = base_conf(URL);
    set_ok(p, "sign_key", pki("dev1.key"));
    expect_finish_error(p, "does not match");

    /* a CA certificate (keyCertSign, cRLSign) does not sign profiles */
    p = base_conf(URL);
    set_ok(p, "sign_cert", pki("root.pem"));
    set_ok(p, "sign_key", pki("root.key"));
    expect_finish_error(p, "digitalSignature");

    /* an encrypted key is refused (and nothing prompts for a password) */
    p = mdm_profile_conf_new();
    expect_set_error(p, "sign_key", tmp("sign-enc.key"), "sign_key");
    mdm_profile_conf_free(p);

    /* not finished: build refuses with its log id */
    p = base_conf(URL);
    last_log_id[0] = '\0';
    assert_int_equal(mdm_profile_build(p, NULL, log_cb, NULL, &out, &len), -1);
    assert_string_equal(last_log_id, MDM_PROFILE_LOG_CONF);
    finish_ok(p);
    /* finished: read-only */
    expect_set_error(p, "organization", "Late", "finished");
    mdm_profile_conf_free(p);
}

static void
test_unsigned_mode(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    unsigned char *out = NULL;
    size_t len = 0;
    plist_t root;

    (void) state;
    set_ok(p, "server_url", "https://MDM.Example.com:8443/mdm/connect");
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", pki("root.pem"));
    set_ok(p, "unsigned", "on");
    finish_ok(p);
    assert_int_equal(mdm_profile_build(p, "c", log_cb, NULL, &out, &len), 0);
    /* the profile is the XML plist itself */
    root = xml_parse(out, len);
    assert_string_equal(str(root, "PayloadType"), "Configuration");
    assert_string_equal(str(item(payload(root, "com.apple.security.scep", 0),
                                 "PayloadContent", PLIST_DICT),
                            "Challenge"),
                        "c");
    /* default identifier from the host: reversed, lower case, no port */
    assert_string_equal(str(root, "PayloadIdentifier"),
                        "com.example.mdm.enrollment");
    plist_free(root);
    free(out);
    mdm_profile_conf_free(p);
}

static void
test_challenges(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    unsigned char *out = NULL;
    size_t len = 0;
    plist_t root, sc;

    (void) state;
    set_ok(p, "scep_challenge", "static-secret");
    finish_ok(p);
    /* NULL: the static one */
    root = build_xml(p, NULL);
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(str(sc, "Challenge"), "static-secret");
    plist_free(root);
    /* the caller's (one-time) challenge wins */
    root = build_signed(p, "one-time-1");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(str(sc, "Challenge"), "one-time-1");
    plist_free(root);
    /* "": no Challenge at all */
    root = build_xml(p, "");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_null(plist_dict_get_item(sc, "Challenge"));
    plist_free(root);
    /* XML-special characters are escaped, and come back intact */
    root = build_signed(p, "a<b>&\"c'");
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    assert_string_equal(str(sc, "Challenge"), "a<b>&\"c'");
    plist_free(root);
    /* control characters are refused with their log id */
    last_log_id[0] = '\0';
    assert_int_equal(
        mdm_profile_build(p, "bad\r\nchallenge", log_cb, NULL, &out, &len), -1);
    assert_string_equal(last_log_id, MDM_PROFILE_LOG_CHALLENGE);
    assert_null(out);
    mdm_profile_conf_free(p);
}

/** Files with several certificates, DER files, and the identifier path. */
static void
test_cert_files(void **state)
{
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    X509 *x = load_cert(pki("root.pem"));
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *fpdata = NULL;
    uint64_t fplen = 0;
    int len;
    FILE *fp;
    plist_t root, sc;

    (void) state;
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    fp = fopen(tmp("root.der"), "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(der, 1, (size_t) len, fp), (size_t) len);
    fclose(fp);
    OPENSSL_free(der);
    set_ok(p, "server_url", "https://[::1]:8443/mdm");
    set_ok(p, "topic", TOPIC);
    set_ok(p, "scep_url", "https://mdm.example.com/scep");
    set_ok(p, "scep_ca", tmp("root.der"));
    set_ok(p, "trust_cert", tmp("root.der"));
    set_ok(p, "trust_cert", pki("server-chain.pem"));
    set_ok(p, "unsigned", "yes");
    finish_ok(p);
    root = build_xml(p, NULL);
    /* root (DER) + server + int */
    assert_int_equal(
        plist_array_get_size(item(root, "PayloadContent", PLIST_ARRAY)), 5);
    assert_non_null(payload(root, "com.apple.security.root", 0));
    assert_non_null(payload(root, "com.apple.security.pkcs1", 1));
    assert_null(payload(root, "com.apple.security.pkcs1", 2));
    sc = item(payload(root, "com.apple.security.scep", 0), "PayloadContent",
              PLIST_DICT);
    plist_get_data_val(item(sc, "CAFingerprint", PLIST_DATA), &fpdata, &fplen);
    assert_int_equal(X509_digest(x, EVP_sha1(), md, &mdlen), 1);
    assert_int_equal(fplen, 20);
    assert_memory_equal(fpdata, md, 20);
    free(fpdata);
    /* an IPv6 literal still gives an identifier */
    {
        const char *id = str(root, "PayloadIdentifier");

        assert_true(strlen(id) > 11);
        assert_string_equal(id + strlen(id) - 11, ".enrollment");
    }
    plist_free(root);
    X509_free(x);
    mdm_profile_conf_free(p);
}

/* Apache builds profiles in several threads from one configuration. */
struct thread_arg {
    const mdm_profile_conf_t *p;
    int failures;
    unsigned char *first;
    size_t first_len;
};

static void *
build_many(void *v)
{
    struct thread_arg *a = v;
    unsigned char *out;
    size_t len;
    int i;

    for (i = 0; i < 25; i++) {
        out = NULL;
        if (mdm_profile_build(a->p, "threaded", NULL, NULL, &out, &len) != 0 ||
            len < 100) {
            a->failures++;
        }
        if (i == 0) {
            a->first = out;
            a->first_len = len;
        } else {
            free(out);
        }
    }
    return NULL;
}

static void
test_threads(void **state)
{
    mdm_profile_conf_t *p = base_conf(URL);
    struct thread_arg args[4];
    pthread_t th[4];
    char u0[2048], u[2048];
    plist_t root;
    int i;

    (void) state;
    finish_ok(p);
    memset(args, 0, sizeof(args));
    for (i = 0; i < 4; i++) {
        args[i].p = p;
        assert_int_equal(pthread_create(&th[i], NULL, build_many, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(args[i].failures, 0);
        root = verify_and_parse(args[i].first, args[i].first_len);
        collect_uuids(root, i == 0 ? u0 : u, sizeof(u));
        if (i > 0) {
            assert_string_equal(u0, u);
        }
        plist_free(root);
        free(args[i].first);
    }
    mdm_profile_conf_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_profile_keys),
        cmocka_unit_test(test_options_reach_the_plist),
        cmocka_unit_test(test_uuids_stable),
        cmocka_unit_test(test_topic_from_push_cert),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_random_option_values),
        cmocka_unit_test(test_finish_errors),
        cmocka_unit_test(test_unsigned_mode),
        cmocka_unit_test(test_challenges),
        cmocka_unit_test(test_cert_files),
        cmocka_unit_test(test_chain_in_sign_cert_file),
        cmocka_unit_test(test_threads),
    };
    char cmd[512];
    int rc;

    pki_dir = getenv("MDM_TEST_PKI");
    if (pki_dir == NULL) {
        fprintf(stderr, "test_profile: set MDM_TEST_PKI (t/pki/mkpki.sh "
                        "output)\n");
        return 1;
    }
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/mdm-profile-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    srandom((unsigned) getpid());
    make_material();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_profile: could not remove %s\n", tmp_dir);
    }
    return rc;
}
