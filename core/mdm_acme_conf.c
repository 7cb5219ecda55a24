/*
 * The acme.* options of a configuration (mdm_acme.h): the external URL,
 * the attestation roots and the lifetimes.
 */
#include "mdm_acme.h"
#include "mdm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

mdm_acme_conf_t *
mdm_acme_conf_new(void)
{
    mdm_acme_conf_t *a = calloc(1, sizeof(*a));

    if (a) {
        a->order_ttl = 86400;
        a->cert_ttl = 7776000;
    }
    return a;
}

void
mdm_acme_conf_free(mdm_acme_conf_t *a)
{
    if (a == NULL) {
        return;
    }
    free(a->url);
    free(a->attest_file);
    free(a->path);
    X509_STORE_free(a->roots);
    free(a);
}

int
mdm_acme_conf_set(mdm_acme_conf_t *a, const char *name, const char *value,
                  char *err, size_t errlen)
{
    if (strcmp(name, "url") == 0) {
        size_t n = strlen(value);

        if ((strncmp(value, "https://", 8) != 0 &&
             strncmp(value, "http://", 7) != 0) ||
            n > 512 || strpbrk(value, " \"<>?#")) {
            snprintf(err, errlen,
                     "url: expected an http(s) URL without query, got "
                     "\"%s\"",
                     value);
            return -1;
        }
        while (n > 0 && value[n - 1] == '/') {
            n--;
        }
        free(a->url);
        a->url = mdm_strndup(value, n);
        return a->url ? 0 : -1;
    }
    if (strcmp(name, "attest_ca") == 0) {
        return mdm_set_str(&a->attest_file, value);
    }
    if (strcmp(name, "order_ttl") == 0 || strcmp(name, "cert_ttl") == 0) {
        long *dst = name[0] == 'o' ? &a->order_ttl : &a->cert_ttl;

        if (mdm_parse_long(value, 60, 315360000, dst) != 0) {
            snprintf(err, errlen,
                     "%s: expected 60-315360000 seconds, got "
                     "\"%s\"",
                     name, value);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "%s: unknown ACME option", name);
    return -1;
}

X509_STORE *
mdm_acme_load_roots(const char *file, char *err, size_t errlen)
{
    X509_STORE *st = X509_STORE_new();
    BIO *bio = BIO_new_file(file, "r");
    X509 *x;
    int n = 0;

    if (st == NULL || bio == NULL) {
        snprintf(err, errlen, "attest_ca: cannot read \"%s\"", file);
        goto fail;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) != 1) {
            X509_free(x);
            snprintf(err, errlen, "attest_ca: cannot use \"%s\"", file);
            goto fail;
        }
        X509_free(x);
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "attest_ca: no PEM certificate in \"%s\"", file);
        goto fail;
    }
    BIO_free(bio);
    return st;
fail:
    BIO_free(bio);
    X509_STORE_free(st);
    return NULL;
}

int
mdm_acme_conf_finish(mdm_acme_conf_t *a, char *err, size_t errlen)
{
    const char *p;

    if (a->url == NULL) {
        snprintf(err, errlen, "url: the ACME location needs its URL");
        return -1;
    }
    if (a->attest_file == NULL) {
        snprintf(err, errlen, "attest_ca: the attestation roots are needed");
        return -1;
    }
    a->roots = mdm_acme_load_roots(a->attest_file, err, errlen);
    if (a->roots == NULL) {
        return -1;
    }
    p = strstr(a->url, "://") + 3;
    p = strchr(p, '/');
    a->path = mdm_strdup(p ? p : "");
    return a->path ? 0 : -1;
}
