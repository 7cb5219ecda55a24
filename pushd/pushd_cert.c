/*
 * MDM push certificates: load (PEM, or PKCS#12 with a passphrase file),
 * read the topic from the Subject UID, track expiry.
 *
 * The certificate and key are decoded here with OpenSSL, once, and kept
 * as unencrypted PEM blobs that the HTTP/2 client (pushd_h2.c) reads when
 * it makes a connection: that way PEM and PKCS#12 take one path, the topic
 * and validity come from the very bytes that are sent, and a reload swaps
 * blobs for new connections while the connections already made keep
 * their own copy for the pushes on the wire.
 */
#include "pushd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#define TOPIC_PREFIX "com.apple.mgmt."

static unsigned generation;

static int
read_pass(const char *file, char *buf, size_t len, char *err, size_t errlen)
{
    FILE *f;
    size_t n;

    buf[0] = '\0';
    if (file == NULL) {
        return 0;
    }
    f = fopen(file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open passphrase file %s: %s", file,
                 strerror(errno));
        return -1;
    }
    if (fgets(buf, (int) len, f) == NULL) {
        buf[0] = '\0';
    }
    fclose(f);
    /* the file is usually written by echo: its newline is not part of it */
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    return 0;
}

static void
ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s %s: %s", what, file, e ? buf : "no data");
    ERR_clear_error();
}

static int
pem_pass_cb(char *buf, int size, int rwflag, void *u)
{
    size_t n = strlen((const char *) u);

    (void) rwflag;
    if (n >= (size_t) size) {
        return -1;
    }
    memcpy(buf, u, n);
    return (int) n;
}

static char *
bio_take(BIO *b, size_t *len)
{
    char *p, *out;
    long n = BIO_get_mem_data(b, &p);

    if (n <= 0 || (out = malloc((size_t) n + 1)) == NULL) {
        return NULL;
    }
    memcpy(out, p, (size_t) n);
    out[n] = '\0';
    *len = (size_t) n;
    return out;
}

static int
is_pem(const char *file)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(file, "rb");

    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return memchr(buf, '\0', n) == NULL && strstr(buf, "-----BEGIN") != NULL;
}

static time_t
asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return timegm(&tm);
}

static char *
subject_uid(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_userId, -1);
    unsigned char *utf8 = NULL;
    char *out;
    int n;

    if (i < 0) {
        return NULL;
    }
    n = ASN1_STRING_to_UTF8(
        &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) {
        return NULL;
    }
    out = strndup((const char *) utf8, (size_t) n);
    OPENSSL_free(utf8);
    return out;
}

int
pushd_cert_load(const char *cert_file, const char *key_file,
                const char *pass_file, pushd_cert_t *out, char *err,
                size_t errlen)
{
    char pass[1024];
    X509 *x = NULL;
    EVP_PKEY *pkey = NULL;
    STACK_OF(X509) *chain = NULL;
    BIO *in = NULL, *mc = NULL, *mk = NULL;
    PKCS12 *p12 = NULL;
    pushd_cert_t n;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0, u;
    int pem, rc = -1, i;

    memset(&n, 0, sizeof(n));
    if (read_pass(pass_file, pass, sizeof(pass), err, errlen) != 0) {
        return -1;
    }
    pem = is_pem(cert_file);
    if (pem < 0) {
        snprintf(err, errlen, "cannot open %s: %s", cert_file, strerror(errno));
        goto done;
    }
    in = BIO_new_file(cert_file, "rb");
    if (in == NULL) {
        ssl_error(err, errlen, "cannot open", cert_file);
        goto done;
    }
    if (pem) {
        x = PEM_read_bio_X509(in, NULL, NULL, NULL);
        if (x == NULL) {
            ssl_error(err, errlen, "no PEM certificate in", cert_file);
            goto done;
        }
        if (key_file != NULL) {
            BIO_free(in);
            in = BIO_new_file(key_file, "rb");
            if (in == NULL) {
                ssl_error(err, errlen, "cannot open", key_file);
                goto done;
            }
        } else {
            (void) BIO_reset(in);
        }
        pkey = PEM_read_bio_PrivateKey(in, NULL, pem_pass_cb, pass);
        if (pkey == NULL) {
            ssl_error(err, errlen, "no usable private key in",
                      key_file ? key_file : cert_file);
            goto done;
        }
    } else {
        p12 = d2i_PKCS12_bio(in, NULL);
        if (p12 == NULL) {
            ssl_error(err, errlen, "neither PEM nor PKCS#12:", cert_file);
            goto done;
        }
        if (!PKCS12_parse(p12, pass, &pkey, &x, &chain) || x == NULL ||
            pkey == NULL) {
            ssl_error(err, errlen,
                      "cannot open PKCS#12 (wrong passphrase file?)",
                      cert_file);
            goto done;
        }
    }
    if (X509_check_private_key(x, pkey) != 1) {
        ssl_error(err, errlen, "the private key does not match", cert_file);
        goto done;
    }
    n.topic = subject_uid(x);
    if (n.topic == NULL) {
        snprintf(err, errlen,
                 "%s: no UID in the certificate subject: not an MDM push "
                 "certificate",
                 cert_file);
        goto done;
    }
    if (strncmp(n.topic, TOPIC_PREFIX, strlen(TOPIC_PREFIX)) != 0) {
        snprintf(err, errlen,
                 "%s: subject UID \"%s\" does not start with " TOPIC_PREFIX
                 ": not an MDM push certificate",
                 cert_file, n.topic);
        goto done;
    }
    n.subject = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    n.not_before = asn1_time(X509_get0_notBefore(x));
    n.not_after = asn1_time(X509_get0_notAfter(x));
    if (!X509_pubkey_digest(x, EVP_sha256(), md, &mdlen)) {
        ssl_error(err, errlen, "cannot hash the public key of", cert_file);
        goto done;
    }
    for (u = 0; u < mdlen && u < 32; u++) {
        snprintf(n.spki + 2 * u, 3, "%02x", md[u]);
    }

    mc = BIO_new(BIO_s_mem());
    mk = BIO_new(BIO_s_mem());
    if (mc == NULL || mk == NULL || !PEM_write_bio_X509(mc, x) ||
        !PEM_write_bio_PrivateKey(mk, pkey, NULL, NULL, 0, NULL, NULL)) {
        ssl_error(err, errlen, "cannot re-encode", cert_file);
        goto done;
    }
    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        PEM_write_bio_X509(mc, sk_X509_value(chain, i));
    }
    n.pem_cert = bio_take(mc, &n.pem_cert_len);
    n.pem_key = bio_take(mk, &n.pem_key_len);
    if (n.subject == NULL || n.pem_cert == NULL || n.pem_key == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    pushd_cert_clear_loaded(out);
    out->topic = n.topic;
    out->subject = n.subject;
    out->not_before = n.not_before;
    out->not_after = n.not_after;
    out->pem_cert = n.pem_cert;
    out->pem_cert_len = n.pem_cert_len;
    out->pem_key = n.pem_key;
    out->pem_key_len = n.pem_key_len;
    memcpy(out->spki, n.spki, sizeof(out->spki));
    out->gen = ++generation;
    memset(&n, 0, sizeof(n));
    rc = 0;
done:
    OPENSSL_cleanse(pass, sizeof(pass));
    pushd_cert_clear_loaded(&n);
    BIO_free(in);
    if (mk) {
        char *p;
        long len = BIO_get_mem_data(mk, &p);
        if (len > 0) {
            OPENSSL_cleanse(p, (size_t) len);
        }
    }
    BIO_free(mc);
    BIO_free(mk);
    PKCS12_free(p12);
    X509_free(x);
    EVP_PKEY_free(pkey);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

void
pushd_cert_clear_loaded(pushd_cert_t *c)
{
    free(c->topic);
    OPENSSL_free(c->subject);
    free(c->pem_cert);
    if (c->pem_key) {
        OPENSSL_cleanse(c->pem_key, c->pem_key_len);
    }
    free(c->pem_key);
    c->topic = c->subject = c->pem_cert = c->pem_key = NULL;
    c->pem_cert_len = c->pem_key_len = 0;
}

long
pushd_cert_days_left(const pushd_cert_t *c, time_t now)
{
    double d = difftime(c->not_after, now) / 86400.0;

    /* floor, so that a certificate expired an hour ago says -1, not 0 */
    return d >= 0 ? (long) d : (long) d - 1;
}

const char *
pushd_cert_state(const pushd_cert_t *c, time_t now)
{
    if (c->refused) {
        return "refused";
    }
    if (now >= c->not_after) {
        return "expired";
    }
    if (now < c->not_before) {
        return "not-yet-valid";
    }
    if (pushd_cert_days_left(c, now) < 30) {
        return "expiring";
    }
    return "ok";
}

void
pushd_cert_check_expiry(pushd_cert_t *c, time_t now)
{
    static const int steps[] = {30, 14, 7, 1};
    long left = pushd_cert_days_left(c, now);
    size_t i;
    int step = 0;

    if (now >= c->not_after) {
        if (c->warned_days != -1) {
            mdm_daemon_log(
                PL_ERR, "MDM09111",
                "push certificate for topic %s (%s) EXPIRED %ld day(s) "
                "ago: APNs refuses it and no device on this topic can "
                "be woken; renew it (same Apple ID, Renew in the "
                "portal) and reload with SIGHUP",
                c->topic, c->cert_file, -left);
            c->warned_days = -1;
        }
        return;
    }
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (left < steps[i]) {
            step = steps[i];
        }
    }
    if (step != 0 && (c->warned_days == 0 || step < c->warned_days)) {
        mdm_daemon_log(
            PL_WARN, "MDM09110",
            "push certificate for topic %s (%s) expires in %ld day(s) "
            "(under %d): renew it (same Apple ID, Renew in the "
            "portal, so the topic stays the same) and reload with "
            "SIGHUP",
            c->topic, c->cert_file, left, step);
        c->warned_days = step;
    }
}
