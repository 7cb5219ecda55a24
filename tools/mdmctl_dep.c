/*
 * mdmctl dep keypair | token-decrypt | profile: Apple Business Manager
 * (Automated Device Enrollment, formerly DEP).
 *
 *   keypair        the key and self-signed certificate the admin uploads
 *                  to ABM ("Upload Public Key" of an MDM server);
 *   token-decrypt  the server token ABM then offers for download: an
 *                  S/MIME message (CMS EnvelopedData, MIME-wrapped,
 *                  base64) encrypted to that certificate, whose plaintext
 *                  is a MIME part holding the OAuth 1.0a credentials as
 *                  JSON between "-----BEGIN MESSAGE-----" and
 *                  "-----END MESSAGE-----";
 *   profile        the JSON of an ADE profile (mdmenrollment.apple.com
 *                  /profile), anchor_certs from the enrollment profile's
 *                  trust certificates (mdm_profile_anchor_certs()).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis.h>

#include "mdm_redislink.h"
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h> /* before cms.h: PEM_read_bio_CMS() */
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "mdm_b64.h"
#include "mdm_profile.h"
#include "mdmctl_dep.h"
#include "mdmctl_io.h"

static const char dep_usage[] = MDMCTL_DEP_USAGE;

static int
usage_error(const char *sub, const char *what)
{
    fprintf(stderr, "mdmctl: dep %s: %s\n\n%s", sub, what, dep_usage);
    return 2;
}

/* ------------------------------------------------------------------ */
/* dep keypair                                                         */

static X509 *
make_cert(EVP_PKEY *key, const char *cn, long days)
{
    unsigned char rnd[16];
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = NULL;
    X509_EXTENSION *ext;
    X509V3_CTX ctx;
    int ok;

    ok = x != NULL && name != NULL && RAND_bytes(rnd, sizeof(rnd)) == 1;
    if (ok) {
        rnd[0] = (rnd[0] & 0x7f) | 0x40; /* positive, 128 bits */
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    }
    ok = ok && bn != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *) cn, -1, -1,
                                    0) == 1 &&
         X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, name) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int) days, 0, NULL) != NULL &&
         X509_set_pubkey(x, key) == 1;
    if (ok) {
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                  "critical,CA:FALSE");
        ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        ext = ok ? X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                                       "critical,keyEncipherment")
                 : NULL;
        ok = ok && ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    }
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int
dep_keypair(int argc, char **argv)
{
    const char *dir = NULL, *cn = "mdmctl DEP";
    char keyp[PATH_MAX], certp[PATH_MAX], *end;
    char *ktext = NULL, *ctext = NULL;
    size_t klen = 0, clen = 0;
    long days = 365;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    BIO *kb = NULL, *cb = NULL;
    mdmctl_file_t files[2];
    int i, rc = 1;

    for (i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            return usage_error("keypair", "an option without its value");
        } else if (strcmp(argv[i], "--out") == 0) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--cn") == 0) {
            cn = argv[++i];
        } else if (strcmp(argv[i], "--days") == 0) {
            errno = 0;
            days = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || days < 1 || days > 3650) {
                return usage_error("keypair", "--days: 1 to 3650");
            }
        } else {
            return usage_error("keypair", "unknown option");
        }
    }
    if (dir == NULL) {
        return usage_error("keypair", "--out DIR is required");
    }
    if (*cn == '\0' || strlen(cn) > 64) {
        return usage_error("keypair", "--cn: 1 to 64 characters");
    }
    if (mdmctl_path(keyp, sizeof(keyp), dir, "dep.key") != 0 ||
        mdmctl_path(certp, sizeof(certp), dir, "dep.pem") != 0) {
        return 2;
    }
    if (mdmctl_out_dir(dir) != 0) {
        return 1;
    }
    key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    x = key ? make_cert(key, cn, days) : NULL;
    kb = BIO_new(BIO_s_secmem()); /* the private key */
    cb = BIO_new(BIO_s_mem());
    if (x == NULL || kb == NULL || cb == NULL ||
        PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cb, x) != 1 ||
        (ktext = mdmctl_bio_text(kb, &klen)) == NULL ||
        (ctext = mdmctl_bio_text(cb, &clen)) == NULL) {
        mdmctl_ossl_error("key and certificate");
        goto out;
    }
    files[0] = (mdmctl_file_t){keyp, 0600, ktext, klen};
    files[1] = (mdmctl_file_t){certp, 0644, ctext, clen};
    if (mdmctl_write_files(files, 2) != 0) {
        goto out;
    }
    printf("wrote %s (keep it) and %s: upload %s to Apple Business "
           "Manager (Preferences, your MDM server, Upload Public Key)\n",
           keyp, certp, certp);
    rc = 0;
out:
    if (ktext) {
        OPENSSL_cleanse(ktext, klen);
        free(ktext);
    }
    free(ctext);
    BIO_free(kb);
    BIO_free(cb);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* ------------------------------------------------------------------ */
/* dep token-decrypt                                                   */

#define BEGIN_MESSAGE "-----BEGIN MESSAGE-----"
#define END_MESSAGE   "-----END MESSAGE-----"

/**
 * The CMS message of a token file: S/MIME (MIME headers, base64 body)
 * as ABM sends it, PEM, DER, or bare base64 of the DER.
 */
static CMS_ContentInfo *
parse_token(const unsigned char *b, size_t len)
{
    CMS_ContentInfo *cms = NULL;
    const unsigned char *q = b;
    unsigned char *der = NULL;
    size_t dlen = 0;
    BIO *bio;

    if (len > 0 && b[0] == 0x30) {
        cms = d2i_CMS_ContentInfo(NULL, &q, (long) len);
    } else if (strstr((const char *) b, "-----BEGIN") != NULL) {
        bio = BIO_new_mem_buf(b, (int) len);
        cms = bio ? PEM_read_bio_CMS(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else if (mdm_b64_decode((const char *) b, len, MDM_B64_WS, &der, &dlen) ==
               0) {
        q = der;
        cms = d2i_CMS_ContentInfo(NULL, &q, (long) dlen);
        free(der);
    } else {
        bio = BIO_new_mem_buf(b, (int) len);
        cms = bio ? SMIME_read_CMS(bio, NULL) : NULL;
        BIO_free(bio);
    }
    ERR_clear_error();
    return cms;
}

/** The JSON between the markers of the decrypted MIME part, in place. */
static char *
message_json(char *plain, size_t *jlen)
{
    char *s = strstr(plain, BEGIN_MESSAGE), *e;

    if (s == NULL) {
        return NULL;
    }
    s += sizeof(BEGIN_MESSAGE) - 1;
    e = strstr(s, END_MESSAGE);
    if (e == NULL) {
        return NULL;
    }
    while (s < e && strchr(" \t\r\n", *s)) {
        s++;
    }
    while (e > s && strchr(" \t\r\n", e[-1])) {
        e--;
    }
    *jlen = (size_t) (e - s);
    return s;
}

/** The token's fields checked; its expiry into *expiry. -1 after a
 * message. */
static int
check_token(const char *json, size_t len, time_t *expiry)
{
    static const char *keys[] = {"consumer_key", "consumer_secret",
                                 "access_token", "access_secret",
                                 "access_token_expiry"};
    json_error_t jerr;
    json_t *o = json_loadb(json, len, 0, &jerr), *v;
    struct tm tm;
    const char *e;
    char *end;
    size_t i;
    int rc = -1;

    if (!json_is_object(o)) {
        fprintf(stderr, "mdmctl: the token's message is not a JSON object\n");
        goto out;
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        v = json_object_get(o, keys[i]);
        if (!json_is_string(v) || json_string_length(v) == 0) {
            fprintf(stderr,
                    "mdmctl: the token has no %s (a non-empty string): not "
                    "an ABM server token\n",
                    keys[i]);
            goto out;
        }
    }
    /* "2025-11-29T17:45:51Z" */
    e = json_string_value(json_object_get(o, "access_token_expiry"));
    memset(&tm, 0, sizeof(tm));
    end = strptime(e, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end != NULL && *end == '.') { /* fractions of a second */
        end += 1 + strspn(end + 1, "0123456789");
    }
    if (end == NULL || (strcmp(end, "Z") != 0 && strcmp(end, "") != 0)) {
        fprintf(stderr,
                "mdmctl: the token's access_token_expiry \"%.40s\" is not "
                "an ISO 8601 UTC time\n",
                e);
        goto out;
    }
    *expiry = timegm(&tm);
    if (*expiry <= time(NULL)) {
        fprintf(stderr,
                "mdmctl: the token expired at %s: download a new one from "
                "Apple Business Manager\n",
                e);
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/** SET prefix + "dep:token:" + name through mdmctl's Redis link. Exit
 * code. */
static int
store_redis(mdmctl_connect_fn connect, const char *addr, const char *prefix,
            const char *name, const char *json, size_t len)
{
    mdm_redislink_t *l = connect(addr);
    redisReply *r;
    char key[256];
    const char *argv[3];
    size_t lens[3];
    int rc;

    if (l == NULL) {
        return 2;
    }
    snprintf(key, sizeof(key), "%sdep:token:%s", prefix, name);
    argv[0] = "SET";
    argv[1] = key;
    argv[2] = json;
    lens[0] = 3;
    lens[1] = strlen(key);
    lens[2] = len;
    r = mdm_redislink_cmd(l, 3, argv, lens);
    rc = r != NULL && r->type == REDIS_REPLY_STATUS ? 0 : 2;
    if (rc != 0) {
        fprintf(stderr, "mdmctl: Redis: SET failed%s%s\n", r ? ": " : "",
                r && r->str ? r->str : "");
    } else {
        printf("stored the token in Redis as %s\n", key);
    }
    if (r) {
        freeReplyObject(r);
    }
    mdm_redislink_free(l);
    return rc;
}

/** 1 when one of the message's recipients is cert. */
static int
for_cert(CMS_ContentInfo *cms, X509 *cert)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    CMS_RecipientInfo *ri;
    int i;

    for (i = 0; ris && i < sk_CMS_RecipientInfo_num(ris); i++) {
        ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
            CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0) {
            return 1;
        }
    }
    ERR_clear_error();
    return 0;
}

/** The decrypted content of token (malloc'd, NUL-terminated). */
static char *
decrypt_token(const char *path, EVP_PKEY *key, X509 *cert, size_t *plen)
{
    unsigned char *b;
    size_t len;
    CMS_ContentInfo *cms;
    BIO *out;
    char *plain = NULL;

    b = mdmctl_read_file("--in", path, &len);
    if (b == NULL) {
        return NULL;
    }
    cms = parse_token(b, len);
    free(b);
    if (cms == NULL) {
        fprintf(stderr,
                "mdmctl: --in: %s is no S/MIME or CMS message (expected the "
                "server token file from Apple Business Manager)\n",
                path);
        return NULL;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
        fprintf(stderr,
                "mdmctl: --in: %s is a CMS message but not an encrypted "
                "one (EnvelopedData)\n",
                path);
        CMS_ContentInfo_free(cms);
        return NULL;
    }
    if (!for_cert(cms, cert)) {
        fprintf(stderr, "mdmctl: --in: the token is not encrypted to --cert: "
                        "upload that certificate to Apple Business Manager and "
                        "download the token again\n");
        CMS_ContentInfo_free(cms);
        return NULL;
    }
    out = BIO_new(BIO_s_mem());
    if (out == NULL || CMS_decrypt(cms, key, cert, NULL, out, 0) != 1 ||
        (plain = mdmctl_bio_text(out, plen)) == NULL) {
        mdmctl_ossl_error("--in: cannot decrypt the token");
    }
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return plain;
}

static int
dep_token_decrypt(int argc, char **argv, mdmctl_connect_fn connect)
{
    const char *keyp = NULL, *certp = NULL, *in = NULL, *outp = NULL;
    const char *addr = NULL, *prefix = "mdm:", *name = "default";
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *key = NULL;
    char *plain = NULL, *json, *line = NULL, tbuf[64];
    size_t plen = 0, jlen = 0;
    time_t expiry = 0;
    mdmctl_file_t f;
    int rc = 1;

    const mdmctl_opt_t opts[] = {{"--key", &keyp},   {"--cert", &certp},
                                 {"--in", &in},      {"--out", &outp},
                                 {"--redis", &addr}, {"--prefix", &prefix},
                                 {"--name", &name},  {NULL, NULL}};
    const char *bad = mdmctl_opts(argc, argv, opts);

    if (bad != NULL) {
        return usage_error("token-decrypt", bad);
    }
    if (keyp == NULL || certp == NULL || in == NULL) {
        return usage_error("token-decrypt",
                           "--key, --cert and --in are required");
    }
    if ((outp == NULL) == (addr == NULL)) {
        return usage_error("token-decrypt",
                           "one of --out FILE or --redis ADDR is required");
    }
    if (*name == '\0' || strlen(name) > 64 || strpbrk(name, " {}\t\r\n")) {
        return usage_error("token-decrypt", "--name: 1 to 64 characters, no "
                                            "spaces or braces");
    }
    if ((key = mdmctl_load_key("--key", keyp)) == NULL ||
        (sk = mdmctl_load_certs("--cert", certp)) == NULL) {
        goto out;
    }
    if (X509_check_private_key(sk_X509_value(sk, 0), key) != 1) {
        ERR_clear_error();
        fprintf(stderr, "mdmctl: --key is not the key of --cert\n");
        goto out;
    }
    plain = decrypt_token(in, key, sk_X509_value(sk, 0), &plen);
    if (plain == NULL) {
        goto out;
    }
    json = message_json(plain, &jlen);
    if (json == NULL) {
        fprintf(stderr, "mdmctl: the decrypted token has no " BEGIN_MESSAGE
                        " ... " END_MESSAGE " block\n");
        goto out;
    }
    if (check_token(json, jlen, &expiry) != 0) {
        goto out;
    }
    strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&expiry));
    if (addr != NULL) {
        rc = store_redis(connect, addr, prefix, name, json, jlen);
        goto out;
    }
    line = malloc(jlen + 2);
    if (line == NULL) {
        goto out;
    }
    memcpy(line, json, jlen);
    line[jlen] = '\n';
    f = (mdmctl_file_t){outp, 0600, line, jlen + 1};
    if (mdmctl_write_files(&f, 1) != 0) {
        goto out;
    }
    printf("wrote %s (mode 0600): the token's access expires %s\n", outp, tbuf);
    rc = 0;
out:
    if (line) {
        OPENSSL_cleanse(line, jlen + 1);
        free(line);
    }
    if (plain) {
        OPENSSL_cleanse(plain, plen);
        free(plain);
    }
    sk_X509_pop_free(sk, X509_free);
    EVP_PKEY_free(key);
    return rc;
}

/* ------------------------------------------------------------------ */
/* dep profile                                                         */

enum { OPT_STR, OPT_URL, OPT_BOOL, OPT_LIST };

/* command-line option -> key of Apple's Profile object */
static const struct {
    const char *opt;
    const char *key;
    int type;
} dep_opts[] = {
    {"--url", "url", OPT_URL},
    {"--name", "profile_name", OPT_STR},
    {"--configuration-web-url", "configuration_web_url", OPT_URL},
    {"--supervised", "is_supervised", OPT_BOOL},
    {"--mandatory", "is_mandatory", OPT_BOOL},
    {"--removable", "is_mdm_removable", OPT_BOOL},
    {"--await-configured", "await_device_configured", OPT_BOOL},
    {"--auto-advance", "auto_advance_setup", OPT_BOOL},
    {"--multi-user", "is_multi_user", OPT_BOOL},
    {"--department", "department", OPT_STR},
    {"--org-magic", "org_magic", OPT_STR},
    {"--support-phone", "support_phone_number", OPT_STR},
    {"--support-email", "support_email_address", OPT_STR},
    {"--language", "language", OPT_STR},
    {"--region", "region", OPT_STR},
    {"--skip", "skip_setup_items", OPT_LIST},
    {"--device", "devices", OPT_LIST},
};

static int
printable(const char *v, size_t max)
{
    const unsigned char *p;

    for (p = (const unsigned char *) v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return *v != '\0' && strlen(v) <= max;
}

/** Set one profile key from its option; -1 after a message. */
static int
dep_set(json_t *o, size_t k, const char *v)
{
    const char *key = dep_opts[k].key;
    json_t *list;

    switch (dep_opts[k].type) {
    case OPT_BOOL:
        if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 ||
            strcmp(v, "yes") == 0) {
            return json_object_set_new(o, key, json_true());
        }
        if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 ||
            strcmp(v, "no") == 0) {
            return json_object_set_new(o, key, json_false());
        }
        fprintf(stderr, "mdmctl: %s: on or off expected, got \"%s\"\n",
                dep_opts[k].opt, v);
        return -1;
    case OPT_URL:
        if (strncmp(v, "https://", 8) != 0 || v[8] == '\0' || v[8] == '/' ||
            strpbrk(v, " \"<>\\^`{|}") != NULL || !printable(v, 2048)) {
            fprintf(stderr, "mdmctl: %s: an https:// URL expected\n",
                    dep_opts[k].opt);
            return -1;
        }
        break;
    default:
        if (!printable(v, 1024)) {
            fprintf(stderr, "mdmctl: %s: 1 to 1024 printable characters\n",
                    dep_opts[k].opt);
            return -1;
        }
    }
    if (dep_opts[k].type != OPT_LIST) {
        return json_object_set_new(o, key, json_string(v));
    }
    list = json_object_get(o, key);
    if (list == NULL) {
        list = json_array();
        if (json_object_set_new(o, key, list) != 0) {
            return -1;
        }
    }
    return json_array_append_new(list, json_string(v));
}

/** Base64 DER of every certificate of a file into array a. */
static int
add_certs_b64(json_t *a, const char *opt, const char *path)
{
    STACK_OF(X509) *sk = mdmctl_load_certs(opt, path);
    unsigned char *der;
    char *b64;
    int i, n, rc = 0;

    if (sk == NULL) {
        return -1;
    }
    for (i = 0; rc == 0 && i < sk_X509_num(sk); i++) {
        der = NULL;
        n = i2d_X509(sk_X509_value(sk, i), &der);
        b64 = n > 0 ? mdmctl_b64(der, (size_t) n) : NULL;
        rc = b64 && json_array_append_new(a, json_string(b64)) == 0 ? 0 : -1;
        free(b64);
        OPENSSL_free(der);
    }
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

/** anchor_certs from the trust certificates, through the enrollment
 * profile's own reading of them. */
static int
add_anchor_certs(json_t *o, mdm_profile_conf_t *p)
{
    char *text = NULL;
    size_t len = 0;
    json_t *a;

    if (mdm_profile_anchor_certs(p, &text, &len) != 0) {
        fprintf(stderr, "mdmctl: out of memory\n");
        return -1;
    }
    a = json_loadb(text, len, 0, NULL);
    free(text);
    if (!json_is_array(a)) {
        json_decref(a);
        return -1;
    }
    if (json_array_size(a) == 0) {
        json_decref(a); /* none: the device trusts its built-in roots */
        return 0;
    }
    return json_object_set_new(o, "anchor_certs", a);
}

static int
dep_profile(int argc, char **argv)
{
    const char *out = "-";
    mdm_profile_conf_t *p = mdm_profile_conf_new();
    json_t *o = json_object(), *hosts = json_array();
    char err[512], *text = NULL;
    size_t k, n = sizeof(dep_opts) / sizeof(dep_opts[0]);
    mdmctl_file_t f;
    int i, rc = 2;

    if (p == NULL || o == NULL || hosts == NULL) {
        fprintf(stderr, "mdmctl: out of memory\n");
        goto out;
    }
    /* Apple's defaults spelled out: a profile for supervised devices the
     * user cannot unenroll is the usual choice, but the admin decides */
    json_object_set_new(o, "profile_name", json_string("MDM Enrollment"));
    for (i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            usage_error("profile", "an option without its value");
            goto out;
        }
        if (strcmp(argv[i], "--out") == 0) {
            out = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--trust") == 0 ||
            strcmp(argv[i], "--trust-cert") == 0) {
            if (mdm_profile_conf_set(p, "trust_cert", argv[++i], err,
                                     sizeof(err)) != 0) {
                fprintf(stderr, "mdmctl: --trust: %s\n", err);
                goto out;
            }
            continue;
        }
        if (strcmp(argv[i], "--supervising-host-cert") == 0) {
            if (add_certs_b64(hosts, argv[i], argv[i + 1]) != 0) {
                goto out;
            }
            i++;
            continue;
        }
        for (k = 0; k < n && strcmp(argv[i], dep_opts[k].opt) != 0; k++) {
        }
        if (k == n) {
            fprintf(stderr, "mdmctl: dep profile: unknown option %s\n\n%s",
                    argv[i], dep_usage);
            goto out;
        }
        if (dep_set(o, k, argv[++i]) != 0) {
            goto out;
        }
    }
    if (json_object_get(o, "url") == NULL) {
        usage_error("profile", "--url URL (where devices fetch the "
                               "enrollment profile) is required");
        goto out;
    }
    rc = 1;
    if (add_anchor_certs(o, p) != 0 ||
        (json_array_size(hosts) > 0 &&
         json_object_set(o, "supervising_host_certs", hosts) != 0)) {
        goto out;
    }
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        fprintf(stderr, "mdmctl: out of memory\n");
        goto out;
    }
    if (strcmp(out, "-") == 0) {
        rc = puts(text) >= 0 && fflush(stdout) == 0 ? 0 : 1;
        goto out;
    }
    f = (mdmctl_file_t){out, 0644, text, strlen(text)};
    rc = mdmctl_write_files(&f, 1) == 0 ? 0 : 1;
out:
    free(text);
    json_decref(hosts);
    json_decref(o);
    mdm_profile_conf_free(p);
    return rc;
}

int
mdmctl_dep(int argc, char **argv, mdmctl_connect_fn connect)
{
    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        fputs(dep_usage, stdout);
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "keypair") == 0) {
        return dep_keypair(argc - 1, argv + 1);
    }
    if (argc >= 1 && strcmp(argv[0], "token-decrypt") == 0) {
        return dep_token_decrypt(argc - 1, argv + 1, connect);
    }
    if (argc >= 1 && strcmp(argv[0], "profile") == 0) {
        return dep_profile(argc - 1, argv + 1);
    }
    fprintf(stderr, "mdmctl: dep: unknown or missing subcommand\n\n%s",
            dep_usage);
    return 2;
}
