/*
 * mdmctl push csr | vendor-sign | check: the MDM push certificate, from
 * the customer's request to the certificate Apple sends back.
 *
 *   1. the customer: "push csr" makes the key (kept) and the CSR;
 *   2. the MDM vendor: "push vendor-sign" signs the CSR's DER with the
 *      vendor key (SHA-256 with RSA, PKCS #1 v1.5) and writes the request
 *      the customer uploads to https://identity.apple.com: the base64 of
 *      an XML plist with three strings, PushCertRequestCSR (base64 DER
 *      CSR), PushCertCertificateChain (PEM: the vendor certificate, then
 *      Apple's intermediate and root), PushCertSignature (base64);
 *   3. the customer: "push check" on the certificate Apple issued (topic
 *      from its subject UID, expiry, and that it is push.key's).
 *
 * Offline, through OpenSSL's C API and libplist only.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#include "mdm_profile.h"
#include "mdmctl_io.h"
#include "mdmctl_push.h"

static const char push_usage[] = MDMCTL_PUSH_USAGE;

static int
usage_error(const char *sub, const char *what)
{
    fprintf(stderr, "mdmctl: push %s: %s\n\n%s", sub, what, push_usage);
    return 2;
}

/* ------------------------------------------------------------------ */
/* push csr                                                            */

static X509_REQ *
make_csr(EVP_PKEY *key, const char *cn, const char *email, const char *org,
         const char *country)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    int ok;

#define ADD(field, v)                                                          \
    ((v) == NULL ||                                                            \
     X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,                       \
                                (const unsigned char *) (v), -1, -1, 0) == 1)
    ok = req != NULL && n != NULL && ADD("C", country) && ADD("O", org) &&
         ADD("CN", cn) && ADD("emailAddress", email) &&
         X509_REQ_set_version(req, X509_REQ_VERSION_1) == 1 &&
         X509_REQ_set_subject_name(req, n) == 1 &&
         X509_REQ_set_pubkey(req, key) == 1 &&
         X509_REQ_sign(req, key, EVP_sha256()) > 0;
#undef ADD
    X509_NAME_free(n);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

static int
text_ok(const char *opt, const char *v, size_t max)
{
    const unsigned char *p;

    if (v == NULL) {
        return 1;
    }
    for (p = (const unsigned char *) v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            break;
        }
    }
    if (*v == '\0' || *p != '\0' || strlen(v) > max) {
        fprintf(stderr, "mdmctl: %s: 1 to %zu printable characters\n", opt,
                max);
        return 0;
    }
    return 1;
}

static int
push_csr(int argc, char **argv)
{
    const char *dir = NULL, *cn = "MDM Push", *email = NULL, *org = NULL;
    const char *country = NULL;
    char keyp[PATH_MAX], pemp[PATH_MAX], derp[PATH_MAX];
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    BIO *kb = NULL, *cb = NULL;
    unsigned char *der = NULL;
    char *ktext = NULL, *ctext = NULL;
    size_t klen = 0, clen = 0;
    int dlen = 0, rc = 1;
    mdmctl_file_t files[3];

    const mdmctl_opt_t opts[] = {{"--out", &dir},         {"--cn", &cn},
                                 {"--email", &email},     {"--org", &org},
                                 {"--country", &country}, {NULL, NULL}};
    const char *bad = mdmctl_opts(argc, argv, opts);

    if (bad != NULL) {
        return usage_error("csr", bad);
    }
    if (dir == NULL) {
        return usage_error("csr", "--out DIR is required");
    }
    if (!text_ok("--cn", cn, 64) || !text_ok("--email", email, 128) ||
        !text_ok("--org", org, 64)) {
        return 2;
    }
    if (email && strchr(email, '@') == NULL) {
        fprintf(stderr, "mdmctl: --email: \"%s\" is no mail address\n", email);
        return 2;
    }
    if (country && (strlen(country) != 2 || country[0] < 'A' ||
                    country[0] > 'Z' || country[1] < 'A' || country[1] > 'Z')) {
        fprintf(stderr, "mdmctl: --country: two capital letters (US, DE...)\n");
        return 2;
    }
    if (mdmctl_path(keyp, sizeof(keyp), dir, "push.key") != 0 ||
        mdmctl_path(pemp, sizeof(pemp), dir, "push.csr") != 0 ||
        mdmctl_path(derp, sizeof(derp), dir, "push.csr.der") != 0) {
        return 2;
    }
    if (mdmctl_out_dir(dir) != 0) {
        return 1;
    }
    key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    if (key == NULL) {
        mdmctl_ossl_error("key generation");
        goto out;
    }
    req = make_csr(key, cn, email, org, country);
    if (req == NULL) {
        mdmctl_ossl_error("certificate request");
        goto out;
    }
    kb = BIO_new(BIO_s_secmem()); /* the private key */
    cb = BIO_new(BIO_s_mem());
    dlen = i2d_X509_REQ(req, &der);
    if (kb == NULL || cb == NULL || dlen <= 0 ||
        PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509_REQ(cb, req) != 1 ||
        (ktext = mdmctl_bio_text(kb, &klen)) == NULL ||
        (ctext = mdmctl_bio_text(cb, &clen)) == NULL) {
        mdmctl_ossl_error("encoding");
        goto out;
    }
    files[0] = (mdmctl_file_t){keyp, 0600, ktext, klen};
    files[1] = (mdmctl_file_t){pemp, 0644, ctext, clen};
    files[2] = (mdmctl_file_t){derp, 0644, der, (size_t) dlen};
    if (mdmctl_write_files(files, 3) != 0) {
        goto out;
    }
    printf("wrote %s (RSA 2048, keep it), %s and %s: CN=%s\n"
           "send the CSR to your MDM vendor (mdmctl push vendor-sign)\n",
           keyp, pemp, derp, cn);
    rc = 0;
out:
    if (ktext) {
        OPENSSL_cleanse(ktext, klen);
        free(ktext);
    }
    free(ctext);
    OPENSSL_free(der);
    BIO_free(cb);
    if (kb) {
        BIO_free(kb);
    }
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

/* ------------------------------------------------------------------ */
/* push vendor-sign                                                    */

/** A CSR from a PEM or DER file, its own signature checked. */
static X509_REQ *
load_csr(const char *path)
{
    unsigned char *b;
    const unsigned char *q;
    size_t len;
    X509_REQ *req = NULL;
    EVP_PKEY *pk;
    BIO *bio;

    b = mdmctl_read_file("--csr", path, &len);
    if (b == NULL) {
        return NULL;
    }
    if (strstr((char *) b, "-----BEGIN") != NULL) {
        bio = BIO_new_mem_buf(b, (int) len);
        req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        q = b;
        req = d2i_X509_REQ(NULL, &q, (long) len);
        if (req != NULL && q != b + len) {
            X509_REQ_free(req);
            req = NULL;
        }
    }
    free(b);
    ERR_clear_error();
    if (req == NULL) {
        fprintf(stderr,
                "mdmctl: --csr: no certificate request in %s (PEM or DER "
                "expected)\n",
                path);
        return NULL;
    }
    pk = X509_REQ_get0_pubkey(req);
    if (pk == NULL || X509_REQ_verify(req, pk) != 1) {
        ERR_clear_error();
        fprintf(stderr,
                "mdmctl: --csr: the request's own signature does not "
                "verify: %s is damaged\n",
                path);
        X509_REQ_free(req);
        return NULL;
    }
    if (!EVP_PKEY_is_a(pk, "RSA")) {
        fprintf(stderr, "mdmctl: --csr: the request's key is not RSA (APNs "
                        "push certificates are RSA)\n");
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

/** SHA-256 with RSA (PKCS #1 v1.5) over data; malloc'd signature. */
static unsigned char *
sign_sha256(EVP_PKEY *key, const unsigned char *data, size_t len,
            size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t n = 0;

    if (ctx != NULL &&
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(ctx, NULL, &n, data, len) == 1 &&
        (sig = malloc(n)) != NULL &&
        EVP_DigestSign(ctx, sig, &n, data, len) == 1) {
        *siglen = n;
    } else {
        free(sig);
        sig = NULL;
    }
    EVP_MD_CTX_free(ctx);
    return sig;
}

/** The three-key plist as XML (malloc'd by libplist: free()). */
static char *
request_plist(const char *csr_b64, const char *chain, const char *sig_b64,
              uint32_t *len)
{
    plist_t d = plist_new_dict();
    char *xml = NULL;

    if (d == NULL) {
        return NULL;
    }
    plist_dict_set_item(d, "PushCertRequestCSR", plist_new_string(csr_b64));
    plist_dict_set_item(d, "PushCertCertificateChain", plist_new_string(chain));
    plist_dict_set_item(d, "PushCertSignature", plist_new_string(sig_b64));
    plist_to_xml(d, &xml, len);
    plist_free(d);
    return xml;
}

/** The vendor certificate, then every --chain certificate, as PEM. */
static char *
chain_pem(X509 *vendor, STACK_OF(X509) * extra)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    int i, ok;

    ok = b != NULL && PEM_write_bio_X509(b, vendor) == 1;
    for (i = 0; ok && extra && i < sk_X509_num(extra); i++) {
        ok = PEM_write_bio_X509(b, sk_X509_value(extra, i)) == 1;
    }
    if (ok) {
        s = mdmctl_bio_text(b, NULL);
    }
    BIO_free(b);
    return s;
}

/** Append every certificate of path to *chain (created when NULL). */
static int
add_chain_file(STACK_OF(X509) * *chain, const char *path)
{
    STACK_OF(X509) *sk = mdmctl_load_certs("--chain", path);
    X509 *x;

    if (sk == NULL) {
        return -1;
    }
    if (*chain == NULL && (*chain = sk_X509_new_null()) == NULL) {
        sk_X509_pop_free(sk, X509_free);
        return -1;
    }
    while ((x = sk_X509_shift(sk)) != NULL) {
        if (!sk_X509_push(*chain, x)) {
            X509_free(x);
            sk_X509_pop_free(sk, X509_free);
            return -1;
        }
    }
    sk_X509_free(sk);
    return 0;
}

static int
vendor_checks(X509 *vendor, EVP_PKEY *vkey, STACK_OF(X509) * chain)
{
    int i, found = 0;

    if (X509_check_private_key(vendor, vkey) != 1) {
        ERR_clear_error();
        fprintf(stderr, "mdmctl: --vendor-key is not the key of "
                        "--vendor-cert\n");
        return -1;
    }
    if (!EVP_PKEY_is_a(vkey, "RSA")) {
        fprintf(stderr, "mdmctl: --vendor-key: not RSA (Apple expects the "
                        "signature SHA-256 with RSA)\n");
        return -1;
    }
    if (X509_cmp_time(X509_get0_notAfter(vendor), NULL) <= 0) {
        fprintf(stderr, "mdmctl: --vendor-cert has expired: renew the MDM "
                        "vendor certificate in Apple's developer account\n");
        return -1;
    }
    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        if (X509_check_issued(sk_X509_value(chain, i), vendor) == X509_V_OK) {
            found = 1;
        }
    }
    if (chain == NULL) {
        fprintf(stderr,
                "mdmctl: warning: no --chain: the portal expects the vendor "
                "certificate followed by Apple's intermediate (Apple "
                "Worldwide Developer Relations) and root certificates\n");
    } else if (!found) {
        fprintf(stderr, "mdmctl: warning: no --chain certificate issued "
                        "--vendor-cert\n");
    }
    return 0;
}

static int
push_vendor_sign(int argc, char **argv)
{
    const char *csrp = NULL, *certp = NULL, *keyp = NULL, *out = NULL;
    STACK_OF(X509) *chain = NULL, *vsk = NULL;
    X509_REQ *req = NULL;
    EVP_PKEY *vkey = NULL;
    unsigned char *der = NULL, *sig = NULL;
    char *csr_b64 = NULL, *sig_b64 = NULL, *pem = NULL, *xml = NULL;
    char *body = NULL;
    size_t siglen = 0;
    uint32_t xlen = 0;
    int i, dlen, rc = 1;
    mdmctl_file_t f;

    for (i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            return usage_error("vendor-sign", "an option without its value");
        } else if (strcmp(argv[i], "--csr") == 0) {
            csrp = argv[++i];
        } else if (strcmp(argv[i], "--vendor-cert") == 0) {
            certp = argv[++i];
        } else if (strcmp(argv[i], "--vendor-key") == 0) {
            keyp = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--chain") != 0) {
            return usage_error("vendor-sign", "unknown option");
        } else if (add_chain_file(&chain, argv[++i]) != 0) {
            goto out;
        }
    }
    if (csrp == NULL || certp == NULL || keyp == NULL || out == NULL) {
        sk_X509_pop_free(chain, X509_free);
        return usage_error("vendor-sign", "--csr, --vendor-cert, "
                                          "--vendor-key and --out are "
                                          "required");
    }
    if ((req = load_csr(csrp)) == NULL ||
        (vsk = mdmctl_load_certs("--vendor-cert", certp)) == NULL ||
        (vkey = mdmctl_load_key("--vendor-key", keyp)) == NULL ||
        vendor_checks(sk_X509_value(vsk, 0), vkey, chain) != 0) {
        goto out;
    }
    /* more certificates in the vendor-cert file follow it in the chain */
    while (sk_X509_num(vsk) > 1) {
        X509 *x = sk_X509_pop(vsk);

        if ((chain == NULL && (chain = sk_X509_new_null()) == NULL) ||
            !sk_X509_insert(chain, x, 0)) {
            X509_free(x);
            goto out;
        }
    }
    dlen = i2d_X509_REQ(req, &der);
    if (dlen <= 0 ||
        (sig = sign_sha256(vkey, der, (size_t) dlen, &siglen)) == NULL) {
        mdmctl_ossl_error("signing the request");
        goto out;
    }
    csr_b64 = mdmctl_b64(der, (size_t) dlen);
    sig_b64 = mdmctl_b64(sig, siglen);
    pem = chain_pem(sk_X509_value(vsk, 0), chain);
    xml = csr_b64 && sig_b64 && pem
              ? request_plist(csr_b64, pem, sig_b64, &xlen)
              : NULL;
    body = xml ? mdmctl_b64((unsigned char *) xml, xlen) : NULL;
    if (body == NULL) {
        fprintf(stderr, "mdmctl: out of memory\n");
        goto out;
    }
    f = (mdmctl_file_t){out, 0644, body, strlen(body)};
    if (mdmctl_write_files(&f, 1) != 0) {
        goto out;
    }
    printf("wrote %s: the customer uploads it to "
           "https://identity.apple.com (Apple Push Certificates Portal)\n",
           out);
    rc = 0;
out:
    free(body);
    free(xml);
    free(pem);
    free(sig_b64);
    free(csr_b64);
    free(sig);
    OPENSSL_free(der);
    EVP_PKEY_free(vkey);
    sk_X509_pop_free(vsk, X509_free);
    sk_X509_pop_free(chain, X509_free);
    X509_REQ_free(req);
    return rc;
}

/* ------------------------------------------------------------------ */
/* push check                                                          */

static void
print_time(const char *label, const ASN1_TIME *t)
{
    struct tm tm;
    char buf[64];

    if (ASN1_TIME_to_tm(t, &tm) == 1 &&
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) {
        printf("%s%s\n", label, buf);
    }
}

static void
print_name(const char *label, X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s;

    if (b != NULL &&
        X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >=
            0 &&
        (s = mdmctl_bio_text(b, NULL)) != NULL) {
        printf("%s%s\n", label, s);
        free(s);
    }
    BIO_free(b);
}

static int
push_check(int argc, char **argv)
{
    const char *certp = NULL, *keyp = NULL;
    char err[512], *topic = NULL, *end;
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *key = NULL;
    long warn = 30, days;
    int i, rc = 1;
    X509 *x;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            keyp = argv[++i];
        } else if (strcmp(argv[i], "--warn-days") == 0 && i + 1 < argc) {
            errno = 0;
            warn = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || warn < 0 || warn > 3650) {
                return usage_error("check", "--warn-days: 0 to 3650");
            }
        } else if (argv[i][0] != '-' && certp == NULL) {
            certp = argv[i];
        } else {
            return usage_error("check", "unknown option or extra argument");
        }
    }
    if (certp == NULL) {
        return usage_error("check", "expected the certificate file");
    }
    sk = mdmctl_load_certs("push check", certp);
    if (sk == NULL) {
        return 1;
    }
    x = sk_X509_value(sk, 0);
    if (mdm_push_topic_from_file(certp, &topic, err, sizeof(err)) != 0) {
        fprintf(stderr, "mdmctl: %s is not an MDM push certificate: %s\n",
                certp, err);
        goto out;
    }
    days = mdmctl_days_left(X509_get0_notAfter(x));
    printf("topic:     %s\n", topic);
    print_name("subject:   ", X509_get_subject_name(x));
    print_name("issuer:    ", X509_get_issuer_name(x));
    print_time("notBefore: ", X509_get0_notBefore(x));
    print_time("notAfter:  ", X509_get0_notAfter(x));
    printf("days left: %ld\n", days < 0 ? 0 : days);
    if (X509_cmp_time(X509_get0_notAfter(x), NULL) <= 0) {
        fprintf(stderr,
                "mdmctl: %s has expired (%ld day(s) ago): APNs refuses it; "
                "renew it in the Push Certificates Portal with the same "
                "Apple ID to keep the topic\n",
                certp, -days);
        goto out;
    }
    if (X509_cmp_time(X509_get0_notBefore(x), NULL) > 0) {
        fprintf(stderr, "mdmctl: %s is not valid yet\n", certp);
        goto out;
    }
    if (keyp != NULL) {
        key = mdmctl_load_key("--key", keyp);
        if (key == NULL) {
            goto out;
        }
        if (X509_check_private_key(x, key) != 1) {
            ERR_clear_error();
            fprintf(stderr, "mdmctl: %s is not the key of %s\n", keyp, certp);
            goto out;
        }
        printf("key:       %s matches\n", keyp);
    }
    if (days < warn) {
        fprintf(stderr,
                "mdmctl: warning: %s expires in %ld day(s): renew it (same "
                "Apple ID, Renew) before then\n",
                certp, days);
    }
    rc = 0;
out:
    free(topic);
    EVP_PKEY_free(key);
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

int
mdmctl_push_offline(const char *sub)
{
    return strcmp(sub, "csr") == 0 || strcmp(sub, "vendor-sign") == 0 ||
           strcmp(sub, "check") == 0;
}

int
mdmctl_push(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        fputs(push_usage, stdout);
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "csr") == 0) {
        return push_csr(argc - 1, argv + 1);
    }
    if (argc >= 1 && strcmp(argv[0], "vendor-sign") == 0) {
        return push_vendor_sign(argc - 1, argv + 1);
    }
    if (argc >= 1 && strcmp(argv[0], "check") == 0) {
        return push_check(argc - 1, argv + 1);
    }
    fprintf(stderr, "mdmctl: push: unknown subcommand\n\n%s", push_usage);
    return 2;
}
