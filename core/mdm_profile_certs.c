/*
 * Enrollment profile: certificate and key files (read while the options
 * are set), the push topic of a certificate, the top of a CA chain.
 */
#include "mdm_profile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/** The first OpenSSL error of this thread as text (static per call). */
void
mdm_profile_ossl_error(char *buf, size_t len)
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
no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1; /* never prompt on a terminal: encrypted keys fail */
}

int
mdm_profile_load_certs(const char *name, const char *path,
                       STACK_OF(X509) * *out, char *err, size_t errlen)
{
    mdm_buf_t b = {NULL, 0};
    char tmp[384];
    STACK_OF(X509) * sk;
    X509 *x;
    BIO *bio;
    const unsigned char *q;

    if (mdm_read_file(path, &b, MDM_PROFILE_MAX_FILE, tmp, sizeof(tmp)) != 0) {
        snprintf(err, errlen, "%s: %s", name, tmp);
        return -1;
    }
    sk = sk_X509_new_null();
    if (sk == NULL) {
        mdm_buf_free(&b);
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
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
        return -1;
    }
    *out = sk;
    return 0;
}

EVP_PKEY *
mdm_profile_load_key(const char *name, const char *path, char *err,
                     size_t errlen)
{
    mdm_buf_t b = {NULL, 0};
    char tmp[384];
    EVP_PKEY *k = NULL;
    BIO *bio;

    if (mdm_read_file(path, &b, MDM_PROFILE_MAX_FILE, tmp, sizeof(tmp)) != 0) {
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
        mdm_profile_ossl_error(tmp, sizeof(tmp));
        snprintf(err, errlen,
                 "%s: no unencrypted PEM private key in \"%s\" (%s)", name,
                 path, tmp);
    }
    return k;
}

/** A subject entry as UTF-8, malloc'd, or NULL. */
char *
mdm_profile_name_entry(X509_NAME *n, int nid)
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
topic_of_cert(X509 *x, char **topic, char *err, size_t errlen)
{
    char *t = mdm_profile_name_entry(X509_get_subject_name(x), NID_userId);

    if (t == NULL) {
        snprintf(err, errlen,
                 "no UID (0.9.2342.19200300.100.1.1) in the certificate "
                 "subject");
        return -1;
    }
    if (!mdm_profile_topic_ok(t)) {
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
    STACK_OF(X509) * sk;
    int rc;

    if (mdm_profile_load_certs("push certificate", path, &sk, err, errlen) !=
        0) {
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
X509 *
mdm_profile_chain_top(STACK_OF(X509) * sk)
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

/** Append every certificate of src to *dst (taking them), src freed. */
int
mdm_profile_take_certs(STACK_OF(X509) * *dst, STACK_OF(X509) * src, int max)
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

int
mdm_profile_anchor_certs(const mdm_profile_conf_t *p, char **json, size_t *len)
{
    int i, n = p->trust ? sk_X509_num(p->trust) : 0, dlen;
    size_t cap = 3, used = 0;
    unsigned char *der;
    char *out, *b64;

    *json = NULL;
    *len = 0;
    /* base64 is 4/3 of the DER, plus quotes and a comma each */
    for (i = 0; i < n; i++) {
        dlen = i2d_X509(sk_X509_value(p->trust, i), NULL);
        if (dlen <= 0) {
            return -1;
        }
        cap += 4 * (((size_t) dlen + 2) / 3) + 3;
    }
    out = malloc(cap);
    if (out == NULL) {
        return -1;
    }
    out[used++] = '[';
    for (i = 0; i < n; i++) {
        der = NULL;
        dlen = i2d_X509(sk_X509_value(p->trust, i), &der);
        b64 = dlen > 0 ? mdm_b64(der, (size_t) dlen) : NULL;
        OPENSSL_free(der);
        if (b64 == NULL) {
            free(out);
            return -1;
        }
        used += (size_t) snprintf(out + used, cap - used, "%s\"%s\"",
                                  i ? "," : "", b64);
        free(b64);
    }
    out[used++] = ']';
    out[used] = '\0';
    *json = out;
    *len = used;
    return 0;
}
