/* ACME test helpers (test_acme_fixture.h). */
#include "test_acme_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "mdm_acme.h"

#define OID_NONCE  "1.2.840.113635.100.8.11.1"
#define OID_SERIAL "1.2.840.113635.100.8.9.1"
#define OID_UDID   "1.2.840.113635.100.8.9.2"

EVP_PKEY *
key_ec(void)
{
    return EVP_EC_gen("P-256");
}

EVP_PKEY *
key_rsa(void)
{
    return EVP_RSA_gen(2048);
}

static int
add_raw_ext(X509 *x, const char *oid, const unsigned char *v, size_t len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    int ok = o && os && ASN1_OCTET_STRING_set(os, v, (int) len) == 1 &&
             (e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os)) != NULL &&
             X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(o);
    return ok;
}

static X509 *
mk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
        int ca)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long) (random() & 0xffffff));
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                   : X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), -300);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    if (ca) {
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                "critical,CA:TRUE");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                                "critical,keyCertSign,cRLSign");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    (void) issuer_key;
    return x;
}

int
att_pki_new(att_pki_t *p, const char *name)
{
    char cn[128];

    memset(p, 0, sizeof(*p));
    p->root_key = key_ec();
    p->int_key = key_ec();
    if (p->root_key == NULL || p->int_key == NULL) {
        return -1;
    }
    snprintf(cn, sizeof(cn), "%s Root", name);
    p->root = mk_cert(cn, p->root_key, NULL, p->root_key, 1);
    if (X509_sign(p->root, p->root_key, EVP_sha256()) <= 0) {
        return -1;
    }
    snprintf(cn, sizeof(cn), "%s Sub", name);
    p->inter = mk_cert(cn, p->int_key, p->root, p->root_key, 1);
    return X509_sign(p->inter, p->root_key, EVP_sha256()) > 0 ? 0 : -1;
}

void
att_pki_free(att_pki_t *p)
{
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->int_key);
    X509_free(p->root);
    X509_free(p->inter);
    memset(p, 0, sizeof(*p));
}

int
att_pki_write_root(const att_pki_t *p, const char *path)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL) {
        return -1;
    }
    ok = PEM_write_X509(f, p->root) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

/* ---- a CBOR writer: just what an attestation object needs ---- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
} cbuf_t;

static void
cb_put(cbuf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void
cb_head(cbuf_t *b, int major, size_t n)
{
    unsigned char h[9];
    size_t k = 1;

    if (n < 24) {
        h[0] = (unsigned char) (major << 5 | n);
    } else if (n <= 0xff) {
        h[0] = (unsigned char) (major << 5 | 24);
        h[1] = (unsigned char) n;
        k = 2;
    } else if (n <= 0xffff) {
        h[0] = (unsigned char) (major << 5 | 25);
        h[1] = (unsigned char) (n >> 8);
        h[2] = (unsigned char) n;
        k = 3;
    } else {
        h[0] = (unsigned char) (major << 5 | 26);
        h[1] = (unsigned char) (n >> 24);
        h[2] = (unsigned char) (n >> 16);
        h[3] = (unsigned char) (n >> 8);
        h[4] = (unsigned char) n;
        k = 5;
    }
    cb_put(b, h, k);
}

static void
cb_text(cbuf_t *b, const char *s)
{
    cb_head(b, 3, strlen(s));
    cb_put(b, s, strlen(s));
}

static void
cb_bytes(cbuf_t *b, const unsigned char *p, size_t n)
{
    cb_head(b, 2, n);
    cb_put(b, p, n);
}

static void
cb_cert(cbuf_t *b, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    cb_bytes(b, der, (size_t) n);
    OPENSSL_free(der);
}

int
att_obj(const att_pki_t *p, EVP_PKEY *dev, const unsigned char *nonce,
        size_t nlen, const char *serial, const char *udid, unsigned char **out,
        size_t *outlen)
{
    X509 *leaf = mk_cert("attestation", dev, p->inter, p->int_key, 0);
    unsigned char auth[37] = {0};
    cbuf_t b = {NULL, 0, 0};

    if (!add_raw_ext(leaf, OID_NONCE, nonce, nlen) ||
        (serial &&
         !add_raw_ext(leaf, OID_SERIAL, (const unsigned char *) serial,
                      strlen(serial))) ||
        (udid && !add_raw_ext(leaf, OID_UDID, (const unsigned char *) udid,
                              strlen(udid))) ||
        X509_sign(leaf, p->int_key, EVP_sha256()) <= 0) {
        X509_free(leaf);
        return -1;
    }
    cb_head(&b, 5, 3);
    cb_text(&b, "fmt");
    cb_text(&b, "apple");
    cb_text(&b, "attStmt");
    cb_head(&b, 5, 1);
    cb_text(&b, "x5c");
    cb_head(&b, 4, 2);
    cb_cert(&b, leaf);
    cb_cert(&b, p->inter);
    cb_text(&b, "authData");
    cb_bytes(&b, auth, sizeof(auth));
    X509_free(leaf);
    *out = b.p;
    *outlen = b.len;
    return 0;
}

void
sha256_str(const char *s, unsigned char md[32])
{
    unsigned int n;

    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
}

/* ---- JWS ---- */

static char *
bn_b64(EVP_PKEY *k, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;
    char *s;

    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) {
        return NULL;
    }
    n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    s = mdm_b64url(buf, (size_t) n);
    return s;
}

static json_t *
jwk_of(EVP_PKEY *key)
{
    json_t *j;
    char *a, *b;

    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        a = bn_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        b = bn_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        j = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x",
                      a, "y", b);
    } else {
        a = bn_b64(key, OSSL_PKEY_PARAM_RSA_N, 0);
        b = bn_b64(key, OSSL_PKEY_PARAM_RSA_E, 0);
        j = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", a, "e", b);
    }
    free(a);
    free(b);
    return j;
}

char *
jws_sign(EVP_PKEY *key, const char *alg, const char *nonce, const char *url,
         const char *kid, const char *payload)
{
    json_t *hdr =
        json_pack("{s:s, s:s, s:s}", "alg", alg, "nonce", nonce, "url", url);
    char *h, *ph, *pp, *input, *sig64, *out;
    unsigned char sig[1024], raw[64];
    size_t slen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (kid) {
        json_object_set_new(hdr, "kid", json_string(kid));
    } else {
        json_object_set_new(hdr, "jwk", jwk_of(key));
    }
    h = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    ph = mdm_b64url((const unsigned char *) h, strlen(h));
    pp = mdm_b64url((const unsigned char *) payload, strlen(payload));
    if (asprintf(&input, "%s.%s", ph, pp) < 0) {
        return NULL;
    }
    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
    EVP_DigestSign(md, sig, &slen, (unsigned char *) input, strlen(input));
    EVP_MD_CTX_free(md);
    if (strcmp(alg, "ES256") == 0 && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long) slen);

        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 64);
        slen = 64;
    }
    sig64 = mdm_b64url(sig, slen);
    if (asprintf(&out,
                 "{\"protected\":\"%s\",\"payload\":\"%s\","
                 "\"signature\":\"%s\"}",
                 ph, pp, sig64) < 0) {
        out = NULL;
    }
    free(h);
    free(ph);
    free(pp);
    free(input);
    free(sig64);
    return out;
}

int
csr_der(EVP_PKEY *key, const char *cn, unsigned char **der, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    int n;

    X509_REQ_set_version(req, 0);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                               MBSTRING_UTF8, (const unsigned char *) cn, -1,
                               -1, 0);
    X509_REQ_set_pubkey(req, key);
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        X509_REQ_free(req);
        return -1;
    }
    *der = NULL;
    n = i2d_X509_REQ(req, der);
    X509_REQ_free(req);
    if (n <= 0) {
        return -1;
    }
    *len = (size_t) n;
    return 0;
}
