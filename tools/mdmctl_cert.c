/*
 * mdmctl ca init: a self-signed CA for small deployments and the demo.
 * mdmctl profile: the enrollment profile the modules serve, to a file.
 *
 * Both run offline (no Redis) and only through OpenSSL's C API.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mdm.h"
#include "mdm_profile.h"
#include "mdmctl_cert.h"

const char mdmctl_cert_usage[] = MDMCTL_CERT_USAGE;

static void
log_stderr(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    fprintf(stderr, "mdmctl: %s %s\n", id, msg);
}

static void
ossl_print(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "mdmctl: %s: %s\n", what, e ? buf : "failed");
    ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* ca init                                                             */

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL) {
        return 0;
    }
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *
make_ca_cert(EVP_PKEY *key, const char *cn, long days, int ec)
{
    unsigned char rnd[16];
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = NULL;
    X509V3_CTX ctx;
    int ok;

    /* a positive 128-bit random serial */
    ok = x != NULL && name != NULL && RAND_bytes(rnd, sizeof(rnd)) == 1;
    if (ok) {
        rnd[0] = (rnd[0] & 0x7f) | 0x40;
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    }
    ok = ok && bn != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *) cn, -1, -1,
                                    0) == 1 &&
         X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, name) == 1 &&
         /* an hour back: devices with a slightly slow clock accept it */
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int) days, 0, NULL) != NULL &&
         X509_set_pubkey(x, key) == 1;
    if (ok) {
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
             add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
             X509_sign(x, key, ec ? EVP_sha384() : EVP_sha256()) > 0;
    }
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/** Create path exclusively with mode (never follows or replaces). */
static int
open_new(const char *path, mode_t mode)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

    if (fd < 0) {
        if (errno == EEXIST) {
            fprintf(stderr, "mdmctl: %s exists: refusing to overwrite it\n",
                    path);
        } else {
            fprintf(stderr, "mdmctl: cannot create %s: %s\n", path,
                    strerror(errno));
        }
    }
    return fd;
}

static int
finish_file(FILE *f, const char *path)
{
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f)) {
        fprintf(stderr, "mdmctl: writing %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "mdmctl: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int
ca_init(int argc, char **argv)
{
    const char *dir = NULL, *cn = "MDM CA";
    char keyp[PATH_MAX], certp[PATH_MAX], *end, hex[65];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, k;
    long days = 3650;
    int ec = 0, i, kfd = -1, cfd = -1, rc = 1;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    FILE *kf = NULL, *cf = NULL;
    struct stat st;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--ec") == 0) {
            ec = 1;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--cn") == 0 && i + 1 < argc) {
            cn = argv[++i];
        } else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
            errno = 0;
            days = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || days < 1 || days > 36500) {
                fprintf(stderr, "mdmctl: --days: expected 1 to 36500\n");
                return 2;
            }
        } else {
            fprintf(stderr,
                    "mdmctl: ca init: unknown or incomplete option "
                    "%s\n\n%s",
                    argv[i], mdmctl_cert_usage);
            return 2;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "mdmctl: ca init: --out DIR is required\n");
        return 2;
    }
    if (*cn == '\0' || strlen(cn) > 64) {
        fprintf(stderr, "mdmctl: --cn: 1 to 64 characters\n");
        return 2;
    }
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0700) != 0) {
            fprintf(stderr, "mdmctl: cannot create %s: %s\n", dir,
                    strerror(errno));
            return 1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mdmctl: %s is not a directory\n", dir);
        return 2;
    }
    if ((size_t) snprintf(keyp, sizeof(keyp), "%s/ca.key", dir) >=
            sizeof(keyp) ||
        (size_t) snprintf(certp, sizeof(certp), "%s/ca.pem", dir) >=
            sizeof(certp)) {
        fprintf(stderr, "mdmctl: --out: path too long\n");
        return 2;
    }
    /* both names claimed before the (slow) key generation; the key is
     * created 0600 from the start, never chmod'ed after being written */
    kfd = open_new(keyp, 0600);
    if (kfd < 0) {
        return 1;
    }
    cfd = open_new(certp, 0644);
    if (cfd < 0) {
        close(kfd);
        unlink(keyp);
        return 1;
    }
    key = ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")
             : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 3072);
    if (key == NULL) {
        ossl_print("key generation");
        goto out;
    }
    x = make_ca_cert(key, cn, days, ec);
    if (x == NULL) {
        ossl_print("certificate");
        goto out;
    }
    kf = fdopen(kfd, "w");
    if (kf == NULL) {
        goto out;
    }
    kfd = -1;
    if (PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) != 1) {
        ossl_print("writing the key");
        goto out;
    }
    rc = finish_file(kf, keyp);
    kf = NULL;
    if (rc != 0) {
        rc = 1;
        goto out;
    }
    rc = 1;
    cf = fdopen(cfd, "w");
    if (cf == NULL) {
        goto out;
    }
    cfd = -1;
    if (PEM_write_X509(cf, x) != 1) {
        ossl_print("writing the certificate");
        goto out;
    }
    rc = finish_file(cf, certp);
    cf = NULL;
    if (rc != 0) {
        rc = 1;
        goto out;
    }
    if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1) {
        for (k = 0; k < mdlen && k < 32; k++) {
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        }
        printf("wrote %s and %s: %s, CN=%s, %ld days, SHA-256 %s\n", certp,
               keyp, ec ? "EC P-384" : "RSA 3072", cn, days, hex);
    }
    rc = 0;
out:
    if (kf) {
        fclose(kf);
    }
    if (cf) {
        fclose(cf);
    }
    if (kfd >= 0) {
        close(kfd);
    }
    if (cfd >= 0) {
        close(cfd);
    }
    if (rc != 0) {
        /* only files this run created: both were opened O_EXCL above */
        unlink(keyp);
        unlink(certp);
    }
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}

int
mdmctl_ca(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "mdmctl: ca: expected a subcommand\n\n%s",
                mdmctl_cert_usage);
        return 2;
    }
    if (strcmp(argv[0], "init") == 0) {
        return ca_init(argc - 1, argv + 1);
    }
    fprintf(stderr, "mdmctl: ca: unknown subcommand \"%s\"\n\n%s", argv[0],
            mdmctl_cert_usage);
    return 2;
}

/* ------------------------------------------------------------------ */
/* profile                                                             */

static int
write_out(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f;
    int fd;

    if (strcmp(path, "-") == 0) {
        if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "mdmctl: writing the profile: %s\n",
                    strerror(errno));
            return -1;
        }
        return 0;
    }
    /* 0600: the profile may hold the SCEP challenge */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "mdmctl: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "mdmctl: writing %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    return finish_file(f, path);
}

/** The first line of path, without its line end. */
static int
read_secret(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fprintf(stderr, "mdmctl: --challenge-file: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fgets(buf, (int) len, f) == NULL) {
        buf[0] = '\0';
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

int
mdmctl_profile(int argc, char **argv)
{
    const char *out = "-", *opt, *val;
    char name[64], err[512], secret[512] = "";
    unsigned char *body = NULL;
    size_t len = 0, k;
    int i, xml = 0, rc;
    mdm_profile_conf_t *p = mdm_profile_conf_new();

    if (p == NULL) {
        fprintf(stderr, "mdmctl: out of memory\n");
        return 2;
    }
    for (i = 0; i < argc; i++) {
        opt = argv[i];
        if (strncmp(opt, "--", 2) != 0 || strlen(opt + 2) >= sizeof(name)) {
            fprintf(stderr, "mdmctl: profile: unexpected argument \"%s\"\n",
                    opt);
            mdm_profile_conf_free(p);
            return 2;
        }
        if (strcmp(opt, "--xml") == 0) {
            xml = 1;
            continue;
        }
        if (strcmp(opt, "--help") == 0) {
            fputs(mdmctl_cert_usage, stdout);
            mdm_profile_conf_free(p);
            return 0;
        }
        if (strcmp(opt, "--unsigned") == 0) {
            val = "on";
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "mdmctl: profile: %s needs a value\n", opt);
            mdm_profile_conf_free(p);
            return 2;
        }
        if (strcmp(opt, "--out") == 0) {
            out = val;
            continue;
        }
        if (strcmp(opt, "--challenge-file") == 0) {
            /* keeps the secret out of argv (visible in ps) */
            if (read_secret(val, secret, sizeof(secret)) != 0) {
                mdm_profile_conf_free(p);
                return 2;
            }
            val = secret;
            opt = "--scep-challenge";
        } else if (strcmp(opt, "--challenge") == 0) {
            opt = "--scep-challenge";
        } else if (strcmp(opt, "--trust") == 0) {
            opt = "--trust-cert";
        }
        for (k = 0; opt[k + 2]; k++) {
            name[k] = opt[k + 2] == '-' ? '_' : opt[k + 2];
        }
        name[k] = '\0';
        if (mdm_profile_conf_set(p, name, val, err, sizeof(err)) != 0) {
            fprintf(stderr, "mdmctl: %s: %s\n", opt, err);
            mdm_profile_conf_free(p);
            return 2;
        }
    }
    if (mdm_profile_conf_finish(p, err, sizeof(err)) != 0) {
        fprintf(stderr, "mdmctl: profile: %s\n", err);
        mdm_profile_conf_free(p);
        return 2;
    }
    rc = xml ? mdm_profile_build_xml(p, NULL, log_stderr, NULL, &body, &len)
             : mdm_profile_build(p, NULL, log_stderr, NULL, &body, &len);
    mdm_profile_conf_free(p);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc != 0) {
        return 1;
    }
    rc = write_out(out, body, len) == 0 ? 0 : 1;
    OPENSSL_cleanse(body, len);
    free(body);
    return rc;
}
