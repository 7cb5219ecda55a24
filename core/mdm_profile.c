/*
 * Enrollment profile: options by name (files read when set), stable
 * identifiers derived once, payloads built per download, CMS signature.
 *
 * Why the identifiers are derived and not random: a device that installs
 * a profile whose PayloadIdentifier it already has replaces the old one
 * (a renewal); a new identifier would be a second, competing enrollment.
 * PayloadUUIDs are name-based (RFC 4122 version 5) over the server URL,
 * the topic and the payload's role, so two servers never share them and
 * one server always sends the same ones.
 */
#include "mdm_internal.h"
#include "mdm_profile.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#define MAX_FILE      (1024 * 1024)
#define MAX_URL       2048
#define MAX_TEXT      1024
#define MAX_TRUST     16
#define MAX_CAPS      16
#define MAX_CHALLENGE 255

enum { FP_SHA1 = 0, FP_SHA256, FP_NONE };

struct mdm_profile_conf_s {
    char *server_url;
    char *checkin_url;
    char *topic;      /* option "topic" */
    char *push_topic; /* read from option "push_cert" */
    char *scep_url;
    char *scep_name;
    plist_t scep_subject; /* array of RDN arrays; NULL: default */
    STACK_OF(X509) * scep_ca;
    int fp_hash;
    char *scep_challenge;
    long key_size;
    long key_usage;
    long retries;
    long retry_delay;
    long access_rights;
    int sign_message;
    int check_out;
    int dev_apns;
    int unsigned_on;
    char **caps;
    size_t ncaps;
    STACK_OF(X509) * trust;
    char *organization;
    char *display_name;
    char *description;
    char *identifier;
    X509 *sign_cert;
    EVP_PKEY *sign_key;
    STACK_OF(X509) * sign_extra; /* after the signer in the sign_cert file */
    STACK_OF(X509) * sign_chain; /* option sign_chain (repeatable) */

    /* derived by mdm_profile_conf_finish() */
    int finished;
    const char *the_topic;
    char *base_id;
    char *scep_id;
    char *mdm_id;
    unsigned char fp[EVP_MAX_MD_SIZE];
    unsigned int fplen;
    STACK_OF(X509) * chain; /* sign_extra + sign_chain, sent in the CMS */
    char uuid_profile[37];
    char uuid_scep[37];
    char uuid_mdm[37];
    char (*trust_uuid)[37];
    char **trust_id;
};

/* Namespace of the name-based PayloadUUIDs (fixed forever: changing it
 * would turn every re-sent profile into a new enrollment). */
static const unsigned char uuid_ns[16] = {0x8e, 0x6b, 0x3a, 0x52, 0x1d, 0x47,
                                          0x4c, 0x0f, 0x9b, 0x21, 0x5e, 0x70,
                                          0xc4, 0x13, 0xa8, 0x96};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void plog(mdm_log_fn fn, void *data, mdm_log_level_t level,
                 const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
plog(mdm_log_fn fn, void *data, mdm_log_level_t level, const char *id,
     const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (fn == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fn(data, level, id, msg);
}

/** The first OpenSSL error of this thread as text (static per call). */
static void
ossl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(buf, len, "unknown OpenSSL error");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
}

static int
replace_str(char **dst, const char *v)
{
    char *n = mdm_strdup(v);

    if (n == NULL) {
        return -1;
    }
    free(*dst);
    *dst = n;
    return 0;
}

/** Printable text: no control characters, at most max bytes. */
static int
text_ok(const char *v, size_t max)
{
    size_t n = strlen(v);
    const unsigned char *s = (const unsigned char *) v;

    if (n > max) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int
parse_bool(const char *v, int *out)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 ||
        strcmp(v, "yes") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
    } else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 ||
               strcmp(v, "no") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
    } else {
        return -1;
    }
    return 0;
}

/**
 * An absolute http(s) URL with a host, no credentials, no spaces or
 * control characters. https_only refuses http://.
 */
static const char *
url_problem(const char *v, int https_only)
{
    const char *h;
    size_t n;

    if (!text_ok(v, MAX_URL) || strpbrk(v, " \"<>\\^`{|}")) {
        return "at most 2048 printable characters, no spaces";
    }
    if (strncasecmp(v, "https://", 8) == 0) {
        h = v + 8;
    } else if (!https_only && strncasecmp(v, "http://", 7) == 0) {
        h = v + 7;
    } else {
        return https_only ? "expected an https:// URL"
                          : "expected an http:// or https:// URL";
    }
    n = strcspn(h, "/?#");
    if (memchr(h, '@', n) != NULL) {
        return "credentials in a URL are not accepted";
    }
    if (n == 0 || h[0] == ':') {
        return "no host in the URL";
    }
    return NULL;
}

/** "MDM.example.com" in a URL -> "com.example.mdm.enrollment". */
static char *
identifier_from_url(const char *url)
{
    const char *h = strstr(url, "://") + 3, *end, *dot;
    size_t n, i, o = 0;
    char *out;

    if (*h == '[') {
        h++;
        n = strcspn(h, "]");
    } else {
        n = strcspn(h, ":/?#");
    }
    out = malloc(n + 16);
    if (out == NULL) {
        return NULL;
    }
    end = h + n;
    while (end > h) {
        for (dot = end; dot > h && dot[-1] != '.'; dot--) {
        }
        for (i = 0; dot + i < end; i++) {
            char c = dot[i];

            if (c >= 'A' && c <= 'Z') {
                c = (char) (c - 'A' + 'a');
            }
            out[o++] =
                (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
                    ? c
                    : '-';
        }
        if (o > 0 && out[o - 1] != '.') {
            out[o++] = '.';
        }
        end = dot > h ? dot - 1 : h;
    }
    memcpy(out + o, "enrollment", 11);
    return out;
}

static int
identifier_ok(const char *v)
{
    size_t n = strlen(v);

    return n > 0 && n <= 200 &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-_") == n &&
           v[0] != '.' && v[n - 1] != '.';
}

/** RFC 4122 version 5 UUID of "a\nb\nc" in our namespace, upper case. */
static int
uuid_v5(const char *a, const char *b, const char *c, char out[37])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok;

    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, uuid_ns, sizeof(uuid_ns)) == 1 &&
         EVP_DigestUpdate(ctx, a, strlen(a)) == 1 &&
         EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
         EVP_DigestUpdate(ctx, b, strlen(b)) == 1 &&
         EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
         EVP_DigestUpdate(ctx, c, strlen(c)) == 1 &&
         EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }
    md[6] = (md[6] & 0x0f) | 0x50;
    md[8] = (md[8] & 0x3f) | 0x80;
    snprintf(out, 37,
             "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
             "%02X%02X%02X%02X%02X%02X",
             md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8],
             md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
    return 0;
}

static int
no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1; /* never prompt on a terminal: encrypted keys fail */
}

/** Every certificate of a PEM file, or the one of a DER file. */
static STACK_OF(X509) *
    load_certs(const char *name, const char *path, char *err, size_t errlen)
{
    mdm_buf_t b = {NULL, 0};
    char tmp[384];
    STACK_OF(X509) * sk;
    X509 *x;
    BIO *bio;
    const unsigned char *q;

    if (mdm_read_file(path, &b, MAX_FILE, tmp, sizeof(tmp)) != 0) {
        snprintf(err, errlen, "%s: %s", name, tmp);
        return NULL;
    }
    sk = sk_X509_new_null();
    if (sk == NULL) {
        mdm_buf_free(&b);
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    if (memmem(b.ptr, b.len, "-----BEGIN", 10) != NULL) {
        bio = BIO_new_mem_buf(b.ptr, (int) b.len);
        while (bio != NULL &&
               (x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
            if (!sk_X509_push(sk, x)) {
                X509_free(x);
                break;
            }
        }
        BIO_free(bio);
    } else {
        q = b.ptr;
        x = d2i_X509(NULL, &q, (long) b.len);
        if (x != NULL && q == b.ptr + b.len && sk_X509_push(sk, x)) {
            x = NULL;
        }
        X509_free(x);
    }
    ERR_clear_error();
    mdm_buf_free(&b);
    if (sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        snprintf(err, errlen,
                 "%s: no certificate in \"%s\" (PEM or DER expected)", name,
                 path);
        return NULL;
    }
    return sk;
}

static EVP_PKEY *
load_key(const char *name, const char *path, char *err, size_t errlen)
{
    mdm_buf_t b = {NULL, 0};
    char tmp[384];
    EVP_PKEY *k = NULL;
    BIO *bio;

    if (mdm_read_file(path, &b, MAX_FILE, tmp, sizeof(tmp)) != 0) {
        snprintf(err, errlen, "%s: %s", name, tmp);
        return NULL;
    }
    bio = BIO_new_mem_buf(b.ptr, (int) b.len);
    if (bio != NULL) {
        k = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        BIO_free(bio);
    }
    OPENSSL_cleanse(b.ptr, b.len);
    mdm_buf_free(&b);
    if (k == NULL) {
        ossl_error(tmp, sizeof(tmp));
        snprintf(err, errlen,
                 "%s: no unencrypted PEM private key in \"%s\" (%s)", name,
                 path, tmp);
    }
    return k;
}

/** A subject entry as UTF-8, malloc'd, or NULL. */
static char *
name_entry(X509_NAME *n, int nid)
{
    int i = X509_NAME_get_index_by_NID(n, nid, -1);
    unsigned char *u = NULL;
    int len;
    char *s;

    if (i < 0) {
        return NULL;
    }
    len = ASN1_STRING_to_UTF8(
        &u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
    if (len < 0) {
        return NULL;
    }
    s = mdm_strndup((const char *) u, (size_t) len);
    OPENSSL_free(u);
    if (s != NULL && strlen(s) != (size_t) len) {
        free(s); /* embedded NUL */
        s = NULL;
    }
    return s;
}

static int
topic_ok(const char *t)
{
    return strncmp(t, "com.apple.mgmt.", 15) == 0 && t[15] != '\0' &&
           text_ok(t, 255) && strchr(t, ' ') == NULL;
}

static int
topic_of_cert(X509 *x, char **topic, char *err, size_t errlen)
{
    char *t = name_entry(X509_get_subject_name(x), NID_userId);

    if (t == NULL) {
        snprintf(err, errlen,
                 "no UID (0.9.2342.19200300.100.1.1) in the certificate "
                 "subject");
        return -1;
    }
    if (!topic_ok(t)) {
        snprintf(err, errlen,
                 "the certificate's UID \"%.200s\" is not a push topic "
                 "(\"com.apple.mgmt.\" prefix expected)",
                 t);
        free(t);
        return -1;
    }
    *topic = t;
    return 0;
}

int
mdm_push_topic_from_file(const char *path, char **topic, char *err,
                         size_t errlen)
{
    STACK_OF(X509) *sk = load_certs("push certificate", path, err, errlen);
    int rc;

    if (sk == NULL) {
        return -1;
    }
    rc = topic_of_cert(sk_X509_value(sk, 0), topic, err, errlen);
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

/**
 * The certificate at the top of the chain the file's certificates form,
 * starting from the first one: that is the one a device compares with
 * CAFingerprint (the last certificate of the chain it builds from the
 * GetCACert answer).
 */
static X509 *
chain_top(STACK_OF(X509) * sk)
{
    X509 *cur = sk_X509_value(sk, 0), *c;
    int n = sk_X509_num(sk), steps, j, up;

    for (steps = 0; steps < n; steps++) {
        if (X509_check_issued(cur, cur) == X509_V_OK) {
            break;
        }
        up = 0;
        for (j = 0; j < n; j++) {
            c = sk_X509_value(sk, j);
            if (c != cur && X509_check_issued(c, cur) == X509_V_OK) {
                cur = c;
                up = 1;
                break;
            }
        }
        if (!up) {
            break;
        }
    }
    return cur;
}

/* ---- SCEP Subject: "/C=US/O=Example/CN=Device" ---- */

static int
subject_key(const char *k, char *out, size_t outlen)
{
    static const char *const shorts[] = {"C", "L", "ST", "O", "OU", "CN"};
    ASN1_OBJECT *o;
    size_t i;
    int nid, n;

    for (i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        if (strcmp(k, shorts[i]) == 0) {
            snprintf(out, outlen, "%s", k);
            return 0;
        }
    }
    /* dotted OIDs as given; other names OpenSSL knows become dotted */
    o = OBJ_txt2obj(k, 1);
    if (o == NULL) {
        nid = OBJ_txt2nid(k);
        o = nid == NID_undef ? NULL : OBJ_nid2obj(nid);
        if (o == NULL) {
            ERR_clear_error();
            return -1;
        }
        o = OBJ_dup(o);
    }
    n = o == NULL ? 0 : OBJ_obj2txt(out, (int) outlen, o, 1);
    if (n <= 0 || (size_t) n >= outlen) {
        ASN1_OBJECT_free(o);
        ERR_clear_error();
        return -1;
    }
    ASN1_OBJECT_free(o);
    return 0;
}

static plist_t
rdn_new(const char *key, const char *value)
{
    plist_t pair = plist_new_array(), rdn = plist_new_array();

    plist_array_append_item(pair, plist_new_string(key));
    plist_array_append_item(pair, plist_new_string(value));
    plist_array_append_item(rdn, pair);
    return rdn;
}

static plist_t
parse_subject(const char *v, char *why, size_t whylen)
{
    char key[80], val[MAX_TEXT + 1], oid[80];
    const char *s = v;
    size_t k, n;
    plist_t arr;

    if (!text_ok(v, MAX_TEXT) || v[0] != '/') {
        snprintf(why, whylen, "expected /KEY=value/KEY=value...");
        return NULL;
    }
    arr = plist_new_array();
    s++;
    while (*s) {
        k = strcspn(s, "=/");
        if (s[k] != '=' || k == 0 || k >= sizeof(key)) {
            snprintf(why, whylen, "expected KEY=value at \"%.40s\"", s);
            plist_free(arr);
            return NULL;
        }
        memcpy(key, s, k);
        key[k] = '\0';
        s += k + 1;
        for (n = 0; *s && *s != '/'; s++) {
            if (*s == '\\' && (s[1] == '/' || s[1] == '\\')) {
                s++;
            }
            val[n++] = *s;
        }
        val[n] = '\0';
        if (*s == '/') {
            s++;
        }
        if (n == 0) {
            snprintf(why, whylen, "empty value for %s", key);
            plist_free(arr);
            return NULL;
        }
        if (subject_key(key, oid, sizeof(oid)) != 0) {
            snprintf(why, whylen,
                     "unknown attribute \"%s\" (C, L, ST, O, OU, CN, "
                     "another OpenSSL name or a dotted OID)",
                     key);
            plist_free(arr);
            return NULL;
        }
        plist_array_append_item(arr, rdn_new(oid, val));
    }
    if (plist_array_get_size(arr) == 0) {
        snprintf(why, whylen, "no attribute");
        plist_free(arr);
        return NULL;
    }
    return arr;
}

static int
challenge_ok(const char *c)
{
    return text_ok(c, MAX_CHALLENGE);
}

static void
free_caps(mdm_profile_conf_t *p)
{
    size_t i;

    for (i = 0; i < p->ncaps; i++) {
        free(p->caps[i]);
    }
    free(p->caps);
    p->caps = NULL;
    p->ncaps = 0;
}

static int
parse_caps(mdm_profile_conf_t *p, const char *v)
{
    char **caps = NULL;
    size_t n = 0, len;
    const char *s = v;

    if (strcmp(v, "none") == 0) {
        free_caps(p);
        return 0;
    }
    caps = calloc(MAX_CAPS, sizeof(char *));
    if (caps == NULL) {
        return -1;
    }
    for (s += strspn(s, ", "); *s; s += strspn(s, ", ")) {
        len = strcspn(s, ", ");
        if (n == MAX_CAPS || len > 128 ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789.-_") < len ||
            (caps[n] = mdm_strndup(s, len)) == NULL) {
            while (n > 0) {
                free(caps[--n]);
            }
            free(caps);
            return -1;
        }
        n++;
        s += len;
    }
    if (n == 0) {
        free(caps);
        return -1;
    }
    free_caps(p);
    p->caps = caps;
    p->ncaps = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

mdm_profile_conf_t *
mdm_profile_conf_new(void)
{
    mdm_profile_conf_t *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->fp_hash = FP_SHA1;
    p->key_size = 2048;
    p->key_usage = 5;
    p->retries = 3;
    p->retry_delay = 10;
    p->access_rights = 8191;
    p->sign_message = 1;
    p->check_out = 1;
    if (parse_caps(p, "com.apple.mdm.per-user-connections,"
                      "com.apple.mdm.bootstraptoken") != 0 ||
        (p->display_name = mdm_strdup("MDM Enrollment")) == NULL) {
        mdm_profile_conf_free(p);
        return NULL;
    }
    return p;
}

void
mdm_profile_conf_free(mdm_profile_conf_t *p)
{
    size_t i, n;

    if (p == NULL) {
        return;
    }
    n = p->trust ? (size_t) sk_X509_num(p->trust) : 0;
    free(p->server_url);
    free(p->checkin_url);
    free(p->topic);
    free(p->push_topic);
    free(p->scep_url);
    free(p->scep_name);
    if (p->scep_subject) {
        plist_free(p->scep_subject);
    }
    sk_X509_pop_free(p->scep_ca, X509_free);
    if (p->scep_challenge) {
        OPENSSL_cleanse(p->scep_challenge, strlen(p->scep_challenge));
        free(p->scep_challenge);
    }
    free_caps(p);
    sk_X509_pop_free(p->trust, X509_free);
    free(p->organization);
    free(p->display_name);
    free(p->description);
    free(p->identifier);
    X509_free(p->sign_cert);
    EVP_PKEY_free(p->sign_key);
    sk_X509_pop_free(p->sign_extra, X509_free);
    sk_X509_pop_free(p->sign_chain, X509_free);
    sk_X509_pop_free(p->chain, X509_free);
    free(p->base_id);
    free(p->scep_id);
    free(p->mdm_id);
    free(p->trust_uuid);
    if (p->trust_id) {
        for (i = 0; i < n; i++) {
            free(p->trust_id[i]);
        }
        free(p->trust_id);
    }
    free(p);
}

/** Append every certificate of src to *dst (taking them), src freed. */
static int
take_certs(STACK_OF(X509) * *dst, STACK_OF(X509) * src, int max)
{
    X509 *x;

    if (*dst == NULL && (*dst = sk_X509_new_null()) == NULL) {
        sk_X509_pop_free(src, X509_free);
        return -1;
    }
    if (sk_X509_num(*dst) + sk_X509_num(src) > max) {
        sk_X509_pop_free(src, X509_free);
        return -2;
    }
    while ((x = sk_X509_shift(src)) != NULL) {
        if (!sk_X509_push(*dst, x)) {
            X509_free(x);
            sk_X509_pop_free(src, X509_free);
            return -1;
        }
    }
    sk_X509_free(src);
    return 0;
}

#define NOMEM()                                                                \
    do {                                                                       \
        snprintf(err, errlen, "%s: out of memory", name);                      \
        return -1;                                                             \
    } while (0)

static int
set_url(char **dst, const char *name, const char *value, int https_only,
        char *err, size_t errlen)
{
    const char *why = url_problem(value, https_only);

    if (why != NULL) {
        snprintf(err, errlen, "invalid %s \"%.200s\": %s", name, value, why);
        return -1;
    }
    if (replace_str(dst, value) != 0) {
        NOMEM();
    }
    return 0;
}

static int
set_text(char **dst, const char *name, const char *value, size_t max, char *err,
         size_t errlen)
{
    if (*value == '\0' || !text_ok(value, max)) {
        snprintf(err, errlen,
                 "invalid %s: 1 to %zu printable characters expected", name,
                 max);
        return -1;
    }
    if (replace_str(dst, value) != 0) {
        NOMEM();
    }
    return 0;
}

static int
set_number(long *dst, const char *name, const char *value, long min, long max,
           char *err, size_t errlen)
{
    if (mdm_parse_long(value, min, max, dst) != 0) {
        snprintf(err, errlen,
                 "invalid %s \"%.40s\": expected a number from %ld to %ld",
                 name, value, min, max);
        return -1;
    }
    return 0;
}

static int
set_flag(int *dst, const char *name, const char *value, char *err,
         size_t errlen)
{
    if (parse_bool(value, dst) != 0) {
        snprintf(err, errlen, "invalid %s \"%.40s\": expected on or off", name,
                 value);
        return -1;
    }
    return 0;
}

int
mdm_profile_conf_set(mdm_profile_conf_t *p, const char *name, const char *value,
                     char *err, size_t errlen)
{
    STACK_OF(X509) * sk;
    char why[200], *t;
    plist_t subj;
    int rc;

    if (p->finished) {
        snprintf(err, errlen, "profile configuration already finished");
        return -1;
    }
    if (name == NULL || value == NULL) {
        snprintf(err, errlen, "option name and value are required");
        return -1;
    }
    if (strcmp(name, "server_url") == 0) {
        return set_url(&p->server_url, name, value, 1, err, errlen);
    }
    if (strcmp(name, "checkin_url") == 0) {
        return set_url(&p->checkin_url, name, value, 1, err, errlen);
    }
    if (strcmp(name, "scep_url") == 0) {
        return set_url(&p->scep_url, name, value, 0, err, errlen);
    }
    if (strcmp(name, "topic") == 0) {
        if (!topic_ok(value)) {
            snprintf(err, errlen,
                     "invalid topic \"%.200s\": a push topic starts with "
                     "\"com.apple.mgmt.\"",
                     value);
            return -1;
        }
        if (replace_str(&p->topic, value) != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "push_cert") == 0) {
        if (mdm_push_topic_from_file(value, &t, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "push_cert \"%.200s\": %s", value, why);
            return -1;
        }
        free(p->push_topic);
        p->push_topic = t;
        return 0;
    }
    if (strcmp(name, "scep_name") == 0) {
        return set_text(&p->scep_name, name, value, 255, err, errlen);
    }
    if (strcmp(name, "scep_subject") == 0) {
        subj = parse_subject(value, why, sizeof(why));
        if (subj == NULL) {
            snprintf(err, errlen, "invalid scep_subject \"%.200s\": %s", value,
                     why);
            return -1;
        }
        if (p->scep_subject) {
            plist_free(p->scep_subject);
        }
        p->scep_subject = subj;
        return 0;
    }
    if (strcmp(name, "scep_ca") == 0) {
        sk = load_certs(name, value, err, errlen);
        if (sk == NULL) {
            return -1;
        }
        sk_X509_pop_free(p->scep_ca, X509_free);
        p->scep_ca = sk;
        return 0;
    }
    if (strcmp(name, "scep_fingerprint") == 0) {
        if (strcmp(value, "sha1") == 0) {
            p->fp_hash = FP_SHA1;
        } else if (strcmp(value, "sha256") == 0) {
            p->fp_hash = FP_SHA256;
        } else if (strcmp(value, "none") == 0) {
            p->fp_hash = FP_NONE;
        } else {
            snprintf(err, errlen,
                     "invalid scep_fingerprint \"%.40s\": expected sha1, "
                     "sha256 or none",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "scep_challenge") == 0) {
        if (*value == '\0' || !challenge_ok(value)) {
            snprintf(err, errlen,
                     "invalid scep_challenge: 1 to %d printable characters "
                     "expected",
                     MAX_CHALLENGE);
            return -1;
        }
        if (p->scep_challenge) {
            OPENSSL_cleanse(p->scep_challenge, strlen(p->scep_challenge));
        }
        if (replace_str(&p->scep_challenge, value) != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "scep_key_size") == 0) {
        if (strcmp(value, "2048") != 0 && strcmp(value, "4096") != 0) {
            snprintf(err, errlen,
                     "invalid scep_key_size \"%.40s\": expected 2048 or "
                     "4096",
                     value);
            return -1;
        }
        p->key_size = atol(value);
        return 0;
    }
    if (strcmp(name, "scep_key_usage") == 0) {
        if (strcmp(value, "1") != 0 && strcmp(value, "4") != 0 &&
            strcmp(value, "5") != 0) {
            snprintf(err, errlen,
                     "invalid scep_key_usage \"%.40s\": expected 1 "
                     "(signing), 4 (encryption) or 5 (both)",
                     value);
            return -1;
        }
        p->key_usage = atol(value);
        return 0;
    }
    if (strcmp(name, "scep_retries") == 0) {
        return set_number(&p->retries, name, value, 0, 100, err, errlen);
    }
    if (strcmp(name, "scep_retry_delay") == 0) {
        return set_number(&p->retry_delay, name, value, 0, 3600, err, errlen);
    }
    if (strcmp(name, "access_rights") == 0) {
        return set_number(&p->access_rights, name, value, 1, 8191, err, errlen);
    }
    if (strcmp(name, "sign_message") == 0) {
        return set_flag(&p->sign_message, name, value, err, errlen);
    }
    if (strcmp(name, "check_out_when_removed") == 0) {
        return set_flag(&p->check_out, name, value, err, errlen);
    }
    if (strcmp(name, "use_development_apns") == 0) {
        return set_flag(&p->dev_apns, name, value, err, errlen);
    }
    if (strcmp(name, "unsigned") == 0) {
        return set_flag(&p->unsigned_on, name, value, err, errlen);
    }
    if (strcmp(name, "server_capabilities") == 0) {
        if (parse_caps(p, value) != 0) {
            snprintf(err, errlen,
                     "invalid server_capabilities \"%.200s\": expected a "
                     "comma list of up to %d names such as "
                     "com.apple.mdm.per-user-connections, or \"none\"",
                     value, MAX_CAPS);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "trust_cert") == 0) {
        sk = load_certs(name, value, err, errlen);
        if (sk == NULL) {
            return -1;
        }
        rc = take_certs(&p->trust, sk, MAX_TRUST);
        if (rc == -2) {
            snprintf(err, errlen,
                     "trust_cert \"%.200s\": more than %d trust "
                     "certificates",
                     value, MAX_TRUST);
            return -1;
        }
        if (rc != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "organization") == 0) {
        return set_text(&p->organization, name, value, 255, err, errlen);
    }
    if (strcmp(name, "display_name") == 0) {
        return set_text(&p->display_name, name, value, 255, err, errlen);
    }
    if (strcmp(name, "description") == 0) {
        return set_text(&p->description, name, value, MAX_TEXT, err, errlen);
    }
    if (strcmp(name, "identifier") == 0) {
        if (!identifier_ok(value)) {
            snprintf(err, errlen,
                     "invalid identifier \"%.200s\": reverse-DNS style, "
                     "letters, digits, '.', '-' and '_' (at most 200)",
                     value);
            return -1;
        }
        if (replace_str(&p->identifier, value) != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "sign_cert") == 0) {
        sk = load_certs(name, value, err, errlen);
        if (sk == NULL) {
            return -1;
        }
        X509_free(p->sign_cert);
        p->sign_cert = sk_X509_shift(sk);
        sk_X509_pop_free(p->sign_extra, X509_free);
        p->sign_extra = NULL;
        rc = take_certs(&p->sign_extra, sk, 16);
        if (rc != 0) {
            snprintf(err, errlen, "sign_cert \"%.200s\": %s", value,
                     rc == -2 ? "too many certificates" : "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "sign_chain") == 0) {
        sk = load_certs(name, value, err, errlen);
        if (sk == NULL) {
            return -1;
        }
        rc = take_certs(&p->sign_chain, sk, 16);
        if (rc != 0) {
            snprintf(err, errlen, "sign_chain \"%.200s\": %s", value,
                     rc == -2 ? "too many certificates" : "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "sign_key") == 0) {
        EVP_PKEY *k = load_key(name, value, err, errlen);

        if (k == NULL) {
            return -1;
        }
        EVP_PKEY_free(p->sign_key);
        p->sign_key = k;
        return 0;
    }
    snprintf(err, errlen, "unknown profile option \"%.80s\"", name);
    return -1;
}

#undef NOMEM

static char *
join_id(const char *base, const char *suffix)
{
    char *s = NULL;

    if (asprintf(&s, "%s.%s", base, suffix) < 0) {
        return NULL;
    }
    return s;
}

int
mdm_profile_conf_finish(mdm_profile_conf_t *p, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    char hex[2 * EVP_MAX_MD_SIZE + 1], role[2 * EVP_MAX_MD_SIZE + 8], sfx[40];
    size_t i, n;

    if (p->finished) {
        return 0;
    }
    if (p->server_url == NULL) {
        snprintf(err, errlen, "server_url is required");
        return -1;
    }
    if (p->scep_url == NULL) {
        snprintf(err, errlen, "scep_url is required");
        return -1;
    }
    if (p->topic && p->push_topic && strcmp(p->topic, p->push_topic) != 0) {
        snprintf(err, errlen,
                 "topic \"%.200s\" differs from the push_cert topic "
                 "\"%.200s\"",
                 p->topic, p->push_topic);
        return -1;
    }
    p->the_topic = p->topic ? p->topic : p->push_topic;
    if (p->the_topic == NULL) {
        snprintf(err, errlen,
                 "a push topic is required: set topic or "
                 "push_cert");
        return -1;
    }
    if (p->fp_hash != FP_NONE && p->scep_ca == NULL) {
        snprintf(err, errlen,
                 "scep_ca is required for the CAFingerprint (or set "
                 "scep_fingerprint none)");
        return -1;
    }
    if (p->unsigned_on && (p->sign_cert || p->sign_key)) {
        snprintf(err, errlen,
                 "unsigned is on but sign_cert or sign_key is set: "
                 "choose one");
        return -1;
    }
    if (!p->unsigned_on) {
        if (p->sign_cert == NULL || p->sign_key == NULL) {
            snprintf(err, errlen,
                     "%s: profiles are signed; set sign_cert and "
                     "sign_key, or unsigned on",
                     p->sign_cert  ? "sign_key is missing"
                     : p->sign_key ? "sign_cert is missing"
                                   : "no signing certificate");
            return -1;
        }
        if (X509_check_private_key(p->sign_cert, p->sign_key) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "sign_key does not match sign_cert");
            return -1;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(p->sign_cert)) <= 0) {
            snprintf(err, errlen, "sign_cert has expired");
            return -1;
        }
        /* RFC 5280: a key usage without digitalSignature (a CA's
         * keyCertSign, cRLSign) does not sign data */
        if ((X509_get_extension_flags(p->sign_cert) & EXFLAG_KUSAGE) &&
            !(X509_get_key_usage(p->sign_cert) &
              (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
            snprintf(err, errlen,
                     "sign_cert: its keyUsage does not allow "
                     "digitalSignature (a CA certificate? sign with a "
                     "certificate it issued)");
            return -1;
        }
        sk_X509_pop_free(p->chain, X509_free);
        p->chain = sk_X509_new_null();
        if (p->chain == NULL) {
            snprintf(err, errlen, "profile: out of memory");
            return -1;
        }
        for (i = 0; i < 2; i++) {
            STACK_OF(X509) *from = i == 0 ? p->sign_extra : p->sign_chain;
            int j;

            for (j = 0; from && j < sk_X509_num(from); j++) {
                X509 *x = sk_X509_value(from, j);

                if (!X509_up_ref(x) || !sk_X509_push(p->chain, x)) {
                    X509_free(x);
                    snprintf(err, errlen, "profile: out of memory");
                    return -1;
                }
            }
        }
    }
    if (p->fp_hash != FP_NONE &&
        X509_digest(chain_top(p->scep_ca),
                    p->fp_hash == FP_SHA1 ? EVP_sha1() : EVP_sha256(), p->fp,
                    &p->fplen) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "scep_ca: cannot hash the CA certificate");
        return -1;
    }
    if (p->scep_subject == NULL) {
        p->scep_subject = plist_new_array();
        if (p->organization) {
            plist_array_append_item(p->scep_subject,
                                    rdn_new("O", p->organization));
        }
        plist_array_append_item(p->scep_subject, rdn_new("CN", "MDM Identity"));
    }
    free(p->base_id);
    free(p->scep_id);
    free(p->mdm_id);
    p->scep_id = p->mdm_id = NULL;
    p->base_id = p->identifier ? mdm_strdup(p->identifier)
                               : identifier_from_url(p->server_url);
    if (p->base_id == NULL ||
        (p->scep_id = join_id(p->base_id, "scep")) == NULL ||
        (p->mdm_id = join_id(p->base_id, "mdm")) == NULL ||
        uuid_v5(p->server_url, p->the_topic, "profile", p->uuid_profile) != 0 ||
        uuid_v5(p->server_url, p->the_topic, "scep", p->uuid_scep) != 0 ||
        uuid_v5(p->server_url, p->the_topic, "mdm", p->uuid_mdm) != 0) {
        snprintf(err, errlen, "profile: out of memory");
        return -1;
    }
    n = p->trust ? (size_t) sk_X509_num(p->trust) : 0;
    if (n > 0) {
        p->trust_uuid = calloc(n, sizeof(*p->trust_uuid));
        p->trust_id = calloc(n, sizeof(char *));
        if (p->trust_uuid == NULL || p->trust_id == NULL) {
            snprintf(err, errlen, "profile: out of memory");
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        /* identified by content: the same certificate keeps its ids
         * whatever order the files list it in */
        if (X509_digest(sk_X509_value(p->trust, (int) i), EVP_sha256(), md,
                        &mdlen) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "trust_cert: cannot hash a certificate");
            return -1;
        }
        mdm_hex(md, mdlen, hex);
        snprintf(role, sizeof(role), "trust:%s", hex);
        snprintf(sfx, sizeof(sfx), "trust.%.16s", hex);
        if (uuid_v5(p->server_url, p->the_topic, role, p->trust_uuid[i]) != 0 ||
            (p->trust_id[i] = join_id(p->base_id, sfx)) == NULL) {
            snprintf(err, errlen, "profile: out of memory");
            return -1;
        }
    }
    p->finished = 1;
    return 0;
}

const char *
mdm_profile_topic(const mdm_profile_conf_t *p)
{
    return p->finished ? p->the_topic : NULL;
}

/* ------------------------------------------------------------------ */
/* building                                                            */

static void
dset(plist_t d, const char *k, plist_t v)
{
    plist_dict_set_item(d, k, v);
}

static plist_t
payload_new(const char *type, const char *id, const char *uuid,
            const char *display)
{
    plist_t d = plist_new_dict();

    dset(d, "PayloadType", plist_new_string(type));
    dset(d, "PayloadVersion", plist_new_uint(1));
    dset(d, "PayloadIdentifier", plist_new_string(id));
    dset(d, "PayloadUUID", plist_new_string(uuid));
    dset(d, "PayloadDisplayName", plist_new_string(display));
    return d;
}

/** A certificate payload; -1 when the certificate will not encode. */
static int
cert_payload(const mdm_profile_conf_t *p, size_t i, plist_t content)
{
    X509 *x = sk_X509_value(p->trust, (int) i);
    unsigned char *der = NULL;
    char *cn, file[96];
    size_t k;
    int len;
    plist_t d;

    len = i2d_X509(x, &der);
    if (len <= 0) {
        return -1;
    }
    cn = name_entry(X509_get_subject_name(x), NID_commonName);
    snprintf(file, sizeof(file), "%.80s", cn ? cn : "certificate");
    for (k = 0; file[k]; k++) {
        if (!((file[k] >= 'a' && file[k] <= 'z') ||
              (file[k] >= 'A' && file[k] <= 'Z') ||
              (file[k] >= '0' && file[k] <= '9') || file[k] == '-' ||
              file[k] == '.')) {
            file[k] = '_';
        }
    }
    strcat(file, ".cer");
    d = payload_new(X509_check_issued(x, x) == X509_V_OK
                        ? "com.apple.security.root"
                        : "com.apple.security.pkcs1",
                    p->trust_id[i], p->trust_uuid[i], cn ? cn : "Certificate");
    ERR_clear_error();
    dset(d, "PayloadCertificateFileName", plist_new_string(file));
    dset(d, "PayloadContent",
         plist_new_data((const char *) der, (uint64_t) len));
    plist_array_append_item(content, d);
    OPENSSL_free(der);
    free(cn);
    return 0;
}

static plist_t
scep_payload(const mdm_profile_conf_t *p, const char *challenge)
{
    plist_t d, c;

    d = payload_new("com.apple.security.scep", p->scep_id, p->uuid_scep,
                    "Device Identity (SCEP)");
    c = plist_new_dict();
    dset(c, "URL", plist_new_string(p->scep_url));
    if (p->scep_name) {
        dset(c, "Name", plist_new_string(p->scep_name));
    }
    dset(c, "Subject", plist_copy(p->scep_subject));
    if (challenge && *challenge) {
        dset(c, "Challenge", plist_new_string(challenge));
    }
    dset(c, "Keysize", plist_new_uint((uint64_t) p->key_size));
    dset(c, "Key Type", plist_new_string("RSA"));
    dset(c, "Key Usage", plist_new_uint((uint64_t) p->key_usage));
    if (p->fplen > 0) {
        dset(c, "CAFingerprint",
             plist_new_data((const char *) p->fp, p->fplen));
    }
    dset(c, "Retries", plist_new_uint((uint64_t) p->retries));
    dset(c, "RetryDelay", plist_new_uint((uint64_t) p->retry_delay));
    dset(d, "PayloadContent", c);
    return d;
}

static plist_t
mdm_payload(const mdm_profile_conf_t *p)
{
    plist_t d, caps;
    size_t i;

    d = payload_new("com.apple.mdm", p->mdm_id, p->uuid_mdm,
                    "Device Management");
    dset(d, "ServerURL", plist_new_string(p->server_url));
    if (p->checkin_url) {
        dset(d, "CheckInURL", plist_new_string(p->checkin_url));
    }
    dset(d, "Topic", plist_new_string(p->the_topic));
    dset(d, "IdentityCertificateUUID", plist_new_string(p->uuid_scep));
    dset(d, "SignMessage", plist_new_bool(p->sign_message));
    dset(d, "AccessRights", plist_new_uint((uint64_t) p->access_rights));
    dset(d, "CheckOutWhenRemoved", plist_new_bool(p->check_out));
    if (p->dev_apns) {
        dset(d, "UseDevelopmentAPNS", plist_new_bool(1));
    }
    if (p->ncaps > 0) {
        caps = plist_new_array();
        for (i = 0; i < p->ncaps; i++) {
            plist_array_append_item(caps, plist_new_string(p->caps[i]));
        }
        dset(d, "ServerCapabilities", caps);
    }
    return d;
}

static int
build_xml(const mdm_profile_conf_t *p, const char *challenge, mdm_log_fn log_fn,
          void *log_data, mdm_buf_t *xml)
{
    plist_t top, content;
    size_t i, n;
    int rc;

    if (!p->finished) {
        plog(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_CONF,
             "enrollment profile: configuration not finished");
        return -1;
    }
    if (challenge == NULL) {
        challenge = p->scep_challenge;
    }
    if (challenge && !challenge_ok(challenge)) {
        plog(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_CHALLENGE,
             "enrollment profile: SCEP challenge refused (at most %d "
             "printable characters)",
             MAX_CHALLENGE);
        return -1;
    }
    top = plist_new_dict();
    dset(top, "PayloadType", plist_new_string("Configuration"));
    dset(top, "PayloadVersion", plist_new_uint(1));
    dset(top, "PayloadIdentifier", plist_new_string(p->base_id));
    dset(top, "PayloadUUID", plist_new_string(p->uuid_profile));
    dset(top, "PayloadDisplayName", plist_new_string(p->display_name));
    if (p->organization) {
        dset(top, "PayloadOrganization", plist_new_string(p->organization));
    }
    if (p->description) {
        dset(top, "PayloadDescription", plist_new_string(p->description));
    }
    content = plist_new_array();
    /* certificate payloads first: they install before the MDM payload */
    n = p->trust ? (size_t) sk_X509_num(p->trust) : 0;
    for (i = 0; i < n; i++) {
        if (cert_payload(p, i, content) != 0) {
            plist_free(content);
            plist_free(top);
            plog(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_NOMEM,
                 "enrollment profile: cannot encode trust certificate %zu",
                 i + 1);
            return -1;
        }
    }
    plist_array_append_item(content, scep_payload(p, challenge));
    plist_array_append_item(content, mdm_payload(p));
    dset(top, "PayloadContent", content);
    rc = mdm_plist_xml(top, xml);
    plist_free(top);
    if (rc != 0) {
        plog(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_NOMEM,
             "enrollment profile: out of memory");
        return -1;
    }
    return 0;
}

int
mdm_profile_build_xml(const mdm_profile_conf_t *p, const char *challenge,
                      mdm_log_fn log_fn, void *log_data, unsigned char **out,
                      size_t *outlen)
{
    mdm_buf_t xml = {NULL, 0};

    if (build_xml(p, challenge, log_fn, log_data, &xml) != 0) {
        return -1;
    }
    *out = xml.ptr;
    *outlen = xml.len;
    return 0;
}

int
mdm_profile_build(const mdm_profile_conf_t *p, const char *challenge,
                  mdm_log_fn log_fn, void *log_data, unsigned char **out,
                  size_t *outlen)
{
    mdm_buf_t xml = {NULL, 0};
    CMS_ContentInfo *cms = NULL;
    BIO *in = NULL;
    unsigned char *der = NULL, *q;
    char why[256];
    int len = -1;

    if (build_xml(p, challenge, log_fn, log_data, &xml) != 0) {
        return -1;
    }
    if (p->unsigned_on) {
        *out = xml.ptr;
        *outlen = xml.len;
        return 0;
    }
    ERR_clear_error();
    /* attached content (no CMS_DETACHED), signed as bytes (CMS_BINARY:
     * no MIME canonicalisation of the XML's line ends) */
    in = BIO_new_mem_buf(xml.ptr, (int) xml.len);
    if (in != NULL) {
        cms = CMS_sign(p->sign_cert, p->sign_key, p->chain, in, CMS_BINARY);
    }
    if (cms != NULL) {
        len = i2d_CMS_ContentInfo(cms, NULL);
        if (len > 0 && (der = malloc((size_t) len)) != NULL) {
            q = der;
            len = i2d_CMS_ContentInfo(cms, &q);
        }
    }
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    if (xml.ptr) {
        OPENSSL_cleanse(xml.ptr, xml.len); /* holds the challenge */
    }
    mdm_buf_free(&xml);
    if (der == NULL || len <= 0) {
        free(der);
        ossl_error(why, sizeof(why));
        plog(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_SIGN,
             "enrollment profile: signing failed: %s", why);
        return -1;
    }
    *out = der;
    *outlen = (size_t) len;
    return 0;
}
