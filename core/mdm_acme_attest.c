/*
 * The "apple" attestation statement of a device-attest-01 challenge: a
 * CBOR map {"fmt": "apple", "attStmt": {"x5c": [DER...]}, "authData":
 * bytes}. The first certificate is the attestation, issued for the key the
 * device will ask a certificate for; it chains to Apple's Enterprise
 * Attestation Root (the configured roots) through the others. Its
 * extensions carry, as raw bytes, the freshness code (the SHA-256 of the
 * challenge token, 1.2.840.113635.100.8.11.1), the serial number
 * (.8.9.1) and the UDID (.8.9.2).
 */
#include "mdm_acme.h"
#include "mdm_cbor.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#define OID_NONCE  "1.2.840.113635.100.8.11.1"
#define OID_SERIAL "1.2.840.113635.100.8.9.1"
#define OID_UDID   "1.2.840.113635.100.8.9.2"
#define MAX_X5C    8

/* The raw value of extension oid: 1 found, 0 absent, -1 more than once. */
static int
ext_value(X509 *x, const char *oid, const unsigned char **v, size_t *len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    X509_EXTENSION *e;
    const ASN1_OCTET_STRING *os;
    int i;

    if (o == NULL) {
        return -1;
    }
    i = X509_get_ext_by_OBJ(x, o, -1);
    if (i >= 0 && X509_get_ext_by_OBJ(x, o, i) >= 0) {
        ASN1_OBJECT_free(o);
        return -1;
    }
    ASN1_OBJECT_free(o);
    if (i < 0) {
        return 0;
    }
    e = X509_get_ext(x, i);
    os = X509_EXTENSION_get_data(e);
    *v = ASN1_STRING_get0_data(os);
    *len = (size_t) ASN1_STRING_length(os);
    return 1;
}

/* A printable identifier into out; -1 when not one. */
static int
ident(X509 *x, const char *oid, char *out, size_t cap)
{
    const unsigned char *v;
    size_t len, i;
    int rc = ext_value(x, oid, &v, &len);

    out[0] = '\0';
    if (rc == 0) {
        return 0;
    }
    if (rc < 0 || len == 0 || len >= cap) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (v[i] <= 0x20 || v[i] >= 0x7f) {
            return -1;
        }
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

int
mdm_acme_spki_hash(X509_PUBKEY *pk, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0, i;
    int n = i2d_X509_PUBKEY(pk, &der);

    if (n <= 0) {
        return -1;
    }
    if (EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        return -1;
    }
    OPENSSL_free(der);
    for (i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * mdlen] = '\0';
    return 0;
}

static int
text_is(const mdm_cbor_t *it, const char *s)
{
    return it && it->type == MDM_CBOR_TEXT && it->len == strlen(s) &&
           memcmp(it->bytes, s, it->len) == 0;
}

mdm_attest_err_t
mdm_attest_verify(const unsigned char *att, size_t len, X509_STORE *roots,
                  long long now, mdm_attest_t *out, const char **why)
{
    mdm_cbor_doc_t doc;
    const mdm_cbor_t *fmt, *stmt, *x5c, *auth, *c;
    STACK_OF(X509) *chain = NULL;
    X509_STORE_CTX *ctx = NULL;
    X509 *leaf = NULL, *x;
    const unsigned char *p, *v;
    size_t i, idx, vlen;
    mdm_attest_err_t rc = MDM_ATTEST_MALFORMED;
    int r;

    memset(out, 0, sizeof(*out));
    r = mdm_cbor_decode(att, len, &doc);
    if (r != 0) {
        *why = "the attestation object is not strict CBOR";
        return r == -2 ? MDM_ATTEST_NOMEM : MDM_ATTEST_MALFORMED;
    }
    fmt = mdm_cbor_map_get(&doc, 0, "fmt");
    stmt = mdm_cbor_map_get(&doc, 0, "attStmt");
    auth = mdm_cbor_map_get(&doc, 0, "authData");
    if (doc.items[0].type != MDM_CBOR_MAP || doc.items[0].len != 3 ||
        stmt == NULL || stmt->type != MDM_CBOR_MAP || auth == NULL ||
        auth->type != MDM_CBOR_BYTES) {
        *why = "the attestation object is not a map of fmt, attStmt and "
               "authData";
        goto done;
    }
    if (!text_is(fmt, "apple")) {
        *why = "the attestation format is not \"apple\"";
        goto done;
    }
    x5c = mdm_cbor_map_get(&doc, mdm_cbor_index(&doc, stmt), "x5c");
    if (x5c == NULL || x5c->type != MDM_CBOR_ARRAY || x5c->len == 0 ||
        x5c->len > MAX_X5C) {
        *why = "attStmt has no x5c array of 1-8 certificates";
        goto done;
    }
    chain = sk_X509_new_null();
    if (chain == NULL) {
        rc = MDM_ATTEST_NOMEM;
        goto done;
    }
    idx = mdm_cbor_index(&doc, x5c);
    for (i = 0; i < x5c->len; i++) {
        c = &doc.items[mdm_cbor_child(&doc, idx, i)];
        if (c->type != MDM_CBOR_BYTES) {
            *why = "an x5c item is not a byte string";
            goto done;
        }
        p = c->bytes;
        x = d2i_X509(NULL, &p, (long) c->len);
        if (x == NULL || p != c->bytes + c->len) {
            X509_free(x);
            *why = "an x5c item is not one DER certificate";
            goto done;
        }
        if (i == 0) {
            leaf = x;
        } else if (!sk_X509_push(chain, x)) {
            X509_free(x);
            rc = MDM_ATTEST_NOMEM;
            goto done;
        }
    }
    r = ext_value(leaf, OID_NONCE, &v, &vlen);
    if (r != 1 || vlen == 0 || vlen > sizeof(out->nonce)) {
        *why = "the attestation has no freshness code (nonce) extension";
        goto done;
    }
    memcpy(out->nonce, v, vlen);
    out->nonce_len = vlen;
    if (ident(leaf, OID_SERIAL, out->serial, sizeof(out->serial)) != 0 ||
        ident(leaf, OID_UDID, out->udid, sizeof(out->udid)) != 0 ||
        (out->serial[0] == '\0' && out->udid[0] == '\0')) {
        *why = "the attestation has no readable serial number or UDID";
        goto done;
    }
    if (mdm_acme_spki_hash(X509_get_X509_PUBKEY(leaf), out->keyhash) != 0) {
        *why = "the attested key is unreadable";
        goto done;
    }
    if (roots) {
        ctx = X509_STORE_CTX_new();
        if (ctx == NULL || X509_STORE_CTX_init(ctx, roots, leaf, chain) != 1) {
            rc = MDM_ATTEST_NOMEM;
            goto done;
        }
        if (now > 0) {
            X509_STORE_CTX_set_time(ctx, 0, (time_t) now);
        }
        if (X509_verify_cert(ctx) != 1) {
            *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
            rc = MDM_ATTEST_UNTRUSTED;
            goto done;
        }
    }
    rc = MDM_ATTEST_OK;
done:
    X509_STORE_CTX_free(ctx);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    mdm_cbor_free(&doc);
    return rc;
}
