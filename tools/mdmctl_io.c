/*
 * mdmctl_io: files in and out for mdmctl's offline certificate commands
 * (mdmctl_push.c, mdmctl_dep.c). See mdmctl_io.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "mdmctl_io.h"

void
mdmctl_ossl_error(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "mdmctl: %s: %s\n", what, e ? buf : "failed");
    ERR_clear_error();
}

unsigned char *
mdmctl_read_file(const char *what, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t got = 0, r;

    *len = 0;
    if (f == NULL) {
        fprintf(stderr, "mdmctl: %s: cannot open %s: %s\n", what, path,
                strerror(errno));
        return NULL;
    }
    buf = malloc(MDMCTL_MAX_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "mdmctl: out of memory\n");
        return NULL;
    }
    while ((r = fread(buf + got, 1, MDMCTL_MAX_FILE + 1 - got, f)) > 0) {
        got += r;
        if (got > MDMCTL_MAX_FILE) {
            break;
        }
    }
    if (ferror(f) || got > MDMCTL_MAX_FILE) {
        fprintf(stderr, "mdmctl: %s: %s: %s\n", what, path,
                ferror(f) ? strerror(errno) : "larger than 1 MiB");
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[got] = '\0';
    *len = got;
    return buf;
}

static int
no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1; /* never prompt: an encrypted key fails */
}

STACK_OF(X509) * mdmctl_load_certs(const char *what, const char *path)
{
    STACK_OF(X509) * sk;
    unsigned char *b;
    const unsigned char *q;
    size_t len;
    X509 *x;
    BIO *bio;

    b = mdmctl_read_file(what, path, &len);
    if (b == NULL) {
        return NULL;
    }
    sk = sk_X509_new_null();
    if (sk != NULL && strstr((char *) b, "-----BEGIN") != NULL) {
        bio = BIO_new_mem_buf(b, (int) len);
        while (bio != NULL &&
               (x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
            if (!sk_X509_push(sk, x)) {
                X509_free(x);
                break;
            }
        }
        BIO_free(bio);
    } else if (sk != NULL) {
        q = b;
        x = d2i_X509(NULL, &q, (long) len);
        if (x != NULL && q == b + len && sk_X509_push(sk, x)) {
            x = NULL;
        }
        X509_free(x);
    }
    ERR_clear_error();
    free(b);
    if (sk == NULL || sk_X509_num(sk) == 0) {
        fprintf(stderr,
                "mdmctl: %s: no certificate in %s (PEM or DER expected)\n",
                what, path);
        sk_X509_free(sk);
        return NULL;
    }
    return sk;
}

EVP_PKEY *
mdmctl_load_key(const char *what, const char *path)
{
    unsigned char *b;
    size_t len;
    EVP_PKEY *k = NULL;
    BIO *bio;
    char msg[256];

    b = mdmctl_read_file(what, path, &len);
    if (b == NULL) {
        return NULL;
    }
    bio = BIO_new_mem_buf(b, (int) len);
    if (bio != NULL) {
        k = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        BIO_free(bio);
    }
    OPENSSL_cleanse(b, len);
    free(b);
    if (k == NULL) {
        snprintf(msg, sizeof(msg), "%s: no unencrypted PEM private key in %s",
                 what, path);
        mdmctl_ossl_error(msg);
    }
    return k;
}

int
mdmctl_write_files(const mdmctl_file_t *files, size_t n)
{
    int fds[8];
    size_t i, made = 0, off;
    ssize_t w;
    int rc = -1;

    if (n > sizeof(fds) / sizeof(fds[0])) {
        return -1;
    }
    /* every name claimed before anything is written */
    for (i = 0; i < n; i++) {
        fds[i] = open(files[i].path,
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      files[i].mode);
        if (fds[i] < 0) {
            if (errno == EEXIST) {
                fprintf(stderr, "mdmctl: %s exists: refusing to overwrite it\n",
                        files[i].path);
            } else {
                fprintf(stderr, "mdmctl: cannot create %s: %s\n", files[i].path,
                        strerror(errno));
            }
            goto out;
        }
        made++;
    }
    for (i = 0; i < n; i++) {
        for (off = 0; off < files[i].len; off += (size_t) w) {
            w = write(fds[i], (const char *) files[i].data + off,
                      files[i].len - off);
            if (w < 0 && errno == EINTR) {
                w = 0;
            } else if (w <= 0) {
                fprintf(stderr, "mdmctl: writing %s: %s\n", files[i].path,
                        strerror(errno));
                goto out;
            }
        }
        if (fsync(fds[i]) != 0) {
            fprintf(stderr, "mdmctl: writing %s: %s\n", files[i].path,
                    strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    for (i = 0; i < made; i++) {
        if (close(fds[i]) != 0 && rc == 0) {
            fprintf(stderr, "mdmctl: writing %s: %s\n", files[i].path,
                    strerror(errno));
            rc = -1;
        }
    }
    if (rc != 0) {
        /* only files this call created: each was opened O_EXCL */
        for (i = 0; i < made; i++) {
            unlink(files[i].path);
        }
    }
    return rc;
}

int
mdmctl_out_dir(const char *dir)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0700) != 0) {
            fprintf(stderr, "mdmctl: cannot create %s: %s\n", dir,
                    strerror(errno));
            return -1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mdmctl: %s is not a directory\n", dir);
        return -1;
    }
    return 0;
}

int
mdmctl_path(char *buf, size_t size, const char *dir, const char *name)
{
    if ((size_t) snprintf(buf, size, "%s/%s", dir, name) >= size) {
        fprintf(stderr, "mdmctl: --out: path too long\n");
        return -1;
    }
    return 0;
}

char *
mdmctl_b64(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out != NULL) {
        EVP_EncodeBlock((unsigned char *) out, in, (int) len);
    }
    return out;
}

long
mdmctl_days_left(const ASN1_TIME *t)
{
    int days = 0, secs = 0;

    if (ASN1_TIME_diff(&days, &secs, NULL, t) != 1) {
        return 0;
    }
    /* a partial day left still counts as 0, a partial day passed as -1 */
    if (days <= 0 && secs < 0) {
        return days - 1;
    }
    return days;
}

char *
mdmctl_bio_text(BIO *b, size_t *len)
{
    char *p = NULL, *s;
    long n = BIO_get_mem_data(b, &p);

    if (n < 0 || (s = malloc((size_t) n + 1)) == NULL) {
        return NULL;
    }
    memcpy(s, p, (size_t) n);
    s[n] = '\0';
    if (len) {
        *len = (size_t) n;
    }
    return s;
}

const char *
mdmctl_opts(int argc, char **argv, const mdmctl_opt_t *opts)
{
    const mdmctl_opt_t *o;
    int i;

    for (i = 0; i < argc; i += 2) {
        if (i + 1 >= argc) {
            return "an option without its value";
        }
        for (o = opts; o->name && strcmp(o->name, argv[i]) != 0; o++) {
        }
        if (o->name == NULL) {
            return "unknown option";
        }
        *o->value = argv[i + 1];
    }
    return NULL;
}
