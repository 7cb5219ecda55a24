/*
 * JWS for ACME (RFC 8555 §6.2, RFC 7515, RFC 7518, RFC 7638): strict
 * base64url, the flattened JSON serialization, ES256 (P-256) and RS256
 * keys as JWKs, their thumbprints, the signature check with OpenSSL EVP.
 */
#include "mdm_acme.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

/* ---------------------------------------------------------------- */
/* base64url                                                        */

static int
b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int
mdm_b64url_decode(const char *in, size_t len, unsigned char **out,
                  size_t *outlen)
{
    unsigned char *o;
    size_t i, n = 0;
    unsigned acc = 0;
    int bits = 0, v;

    *out = NULL;
    *outlen = 0;
    if (len % 4 == 1) {
        return -1;
    }
    o = malloc(len / 4 * 3 + 3);
    if (o == NULL) {
        return -2;
    }
    for (i = 0; i < len; i++) {
        v = b64url_val((unsigned char) in[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (unsigned) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* the leftover bits must be zero: one text per octet string */
    if (acc != 0) {
        free(o);
        return -1;
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 0;
}

char *
mdm_b64url(const unsigned char *in, size_t len)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                             "wxyz0123456789-_";
    char *o = malloc(len / 3 * 4 + 5), *p = o;
    size_t i;
    unsigned v;

    if (o == NULL) {
        return NULL;
    }
    for (i = 0; i + 2 < len; i += 3) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8 | in[i + 2];
        *p++ = al[v >> 18];
        *p++ = al[(v >> 12) & 63];
        *p++ = al[(v >> 6) & 63];
        *p++ = al[v & 63];
    }
    if (len - i == 1) {
        v = (unsigned) in[i] << 16;
        *p++ = al[v >> 18];
        *p++ = al[(v >> 12) & 63];
    } else if (len - i == 2) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8;
        *p++ = al[v >> 18];
        *p++ = al[(v >> 12) & 63];
        *p++ = al[(v >> 6) & 63];
    }
    *p = '\0';
    return o;
}

/* ---------------------------------------------------------------- */
/* keys                                                             */

static int
b64url_member(json_t *o, const char *name, unsigned char **out, size_t *len)
{
    json_t *v = json_object_get(o, name);

    if (!json_is_string(v)) {
        return -1;
    }
    return mdm_b64url_decode(json_string_value(v), json_string_length(v), out,
                             len) == 0
               ? 0
               : -1;
}

static EVP_PKEY *
ec_key(const unsigned char *x, const unsigned char *y)
{
    unsigned char pt[65];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;

    pt[0] = 0x04;
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *) "prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt,
                                                  sizeof(pt));
    params[2] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        pk = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static EVP_PKEY *
rsa_key(const unsigned char *n, size_t nlen, const unsigned char *e,
        size_t elen)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *bn = BN_bin2bn(n, (int) nlen, NULL);
    BIGNUM *be = BN_bin2bn(e, (int) elen, NULL);
    EVP_PKEY *pk = NULL;

    if (bld && ctx && bn && be &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
        EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        pk = NULL;
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static int
thumbprint(const char *canon, char out[48])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char *s;

    if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        (s = mdm_b64url(md, mdlen)) == NULL) {
        return -1;
    }
    snprintf(out, 48, "%s", s);
    free(s);
    return 0;
}

static mdm_jws_err_t
key_of(json_t *jwk, mdm_jws_t *jws, const char **why)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    unsigned char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    char *canon = NULL;
    mdm_jws_err_t rc = MDM_JWS_BADKEY;
    int n;

    if (!json_is_object(jwk) || kty == NULL) {
        *why = "the JWK is not an object with a \"kty\"";
        return MDM_JWS_MALFORMED;
    }
    if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));

        if (crv == NULL || strcmp(crv, "P-256") != 0) {
            *why = "only the EC curve P-256 is accepted";
            goto done;
        }
        if (b64url_member(jwk, "x", &a, &al) != 0 ||
            b64url_member(jwk, "y", &b, &bl) != 0 || al != 32 || bl != 32) {
            *why = "the EC JWK needs 32-byte \"x\" and \"y\"";
            goto done;
        }
        n = asprintf(&canon,
                     "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
                     "\"y\":\"%s\"}",
                     json_string_value(json_object_get(jwk, "x")),
                     json_string_value(json_object_get(jwk, "y")));
        if (n < 0) {
            canon = NULL;
            rc = MDM_JWS_NOMEM;
            goto done;
        }
        jws->key = ec_key(a, b);
        if (jws->key == NULL) {
            *why = "the EC JWK is not a point of P-256";
            goto done;
        }
    } else if (strcmp(kty, "RSA") == 0) {
        if (b64url_member(jwk, "n", &a, &al) != 0 ||
            b64url_member(jwk, "e", &b, &bl) != 0 || al < 256 || al > 1024 ||
            bl == 0 || bl > 8 || a[0] == 0 || b[0] == 0 ||
            (b[bl - 1] & 1) == 0) {
            *why = "the RSA JWK needs a 2048-8192 bit \"n\" and an odd "
                   "\"e\", without leading zeros";
            goto done;
        }
        n = asprintf(&canon, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
                     json_string_value(json_object_get(jwk, "e")),
                     json_string_value(json_object_get(jwk, "n")));
        if (n < 0) {
            canon = NULL;
            rc = MDM_JWS_NOMEM;
            goto done;
        }
        jws->key = rsa_key(a, al, b, bl);
        if (jws->key == NULL) {
            *why = "the RSA JWK is not a usable key";
            goto done;
        }
    } else {
        *why = "only EC (P-256) and RSA keys are accepted";
        goto done;
    }
    if (thumbprint(canon, jws->tp) != 0) {
        rc = MDM_JWS_NOMEM;
        goto done;
    }
    jws->jwk = canon;
    canon = NULL;
    rc = MDM_JWS_OK;
done:
    free(a);
    free(b);
    free(canon);
    return rc;
}

mdm_jws_err_t
mdm_jws_key(const char *jwk_json, size_t len, mdm_jws_t *jws, const char **why)
{
    json_t *j = json_loadb(jwk_json, len, JSON_REJECT_DUPLICATES, NULL);
    mdm_jws_err_t rc;

    if (j == NULL) {
        *why = "the JWK is not JSON";
        return MDM_JWS_MALFORMED;
    }
    rc = key_of(j, jws, why);
    json_decref(j);
    return rc;
}

/* ---------------------------------------------------------------- */
/* the signature                                                    */

static int
verify(const mdm_jws_t *jws, const char *input, size_t ilen,
       const unsigned char *sig, size_t slen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    int derlen = 0, ok = 0;

    if (md == NULL) {
        return 0;
    }
    if (strcmp(jws->alg, "ES256") == 0) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL),
               *s = BN_bin2bn(sig + 32, 32, NULL);

        if (es == NULL || r == NULL || s == NULL || slen != 64 ||
            ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            EVP_MD_CTX_free(md);
            return 0;
        }
        derlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (derlen <= 0) {
            EVP_MD_CTX_free(md);
            return 0;
        }
        sig = der;
        slen = (size_t) derlen;
    }
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, jws->key) == 1 &&
         EVP_DigestVerify(md, sig, slen, (const unsigned char *) input, ilen) ==
             1;
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok;
}

static char *
dup_str(json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

mdm_jws_err_t
mdm_jws_parse(const unsigned char *body, size_t len, const char *kid_prefix,
              mdm_jws_t *jws, const char **why)
{
    json_t *outer = NULL, *hdr = NULL, *jp, *jpl, *js, *jwk, *kid, *alg;
    unsigned char *ph = NULL, *sig = NULL, *kb = NULL;
    size_t phlen, siglen, kblen, plen = strlen(kid_prefix);
    const char *pb, *plb, *sb;
    char *input = NULL;
    mdm_jws_err_t rc = MDM_JWS_MALFORMED;
    int n;

    memset(jws, 0, sizeof(*jws));
    *why = "";
    outer = json_loadb((const char *) body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(outer) || json_object_size(outer) != 3) {
        *why = "the body is not a flattened JWS (protected, payload, "
               "signature)";
        goto done;
    }
    jp = json_object_get(outer, "protected");
    jpl = json_object_get(outer, "payload");
    js = json_object_get(outer, "signature");
    if (!json_is_string(jp) || !json_is_string(jpl) || !json_is_string(js)) {
        *why = "the body is not a flattened JWS (protected, payload, "
               "signature)";
        goto done;
    }
    pb = json_string_value(jp);
    plb = json_string_value(jpl);
    sb = json_string_value(js);
    if (mdm_b64url_decode(pb, json_string_length(jp), &ph, &phlen) != 0 ||
        mdm_b64url_decode(sb, json_string_length(js), &sig, &siglen) != 0 ||
        mdm_b64url_decode(plb, json_string_length(jpl), &jws->payload,
                          &jws->payload_len) != 0) {
        *why = "a JWS part is not base64url";
        goto done;
    }
    if (jws->payload_len > MDM_ACME_MAX_PAYLOAD) {
        *why = "the payload is too large";
        goto done;
    }
    hdr = json_loadb((const char *) ph, phlen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hdr)) {
        *why = "the protected header is not a JSON object";
        goto done;
    }
    alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) ||
        (strcmp(json_string_value(alg), "ES256") != 0 &&
         strcmp(json_string_value(alg), "RS256") != 0)) {
        *why = "alg must be ES256 or RS256";
        rc = MDM_JWS_BADALG;
        goto done;
    }
    snprintf(jws->alg, sizeof(jws->alg), "%s", json_string_value(alg));
    jws->url = dup_str(json_object_get(hdr, "url"));
    if (jws->url == NULL) {
        *why = "the protected header has no \"url\"";
        goto done;
    }
    jws->nonce = dup_str(json_object_get(hdr, "nonce"));
    if (jws->nonce == NULL || jws->nonce[0] == '\0' ||
        strlen(jws->nonce) > 128 ||
        strspn(jws->nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
                           "yz0123456789-_") != strlen(jws->nonce)) {
        *why = "the protected header has no base64url \"nonce\"";
        rc = MDM_JWS_BADNONCE;
        goto done;
    }
    jwk = json_object_get(hdr, "jwk");
    kid = json_object_get(hdr, "kid");
    if ((jwk == NULL) == (kid == NULL)) {
        *why = "the protected header needs exactly one of \"jwk\" and "
               "\"kid\"";
        goto done;
    }
    if (jwk) {
        rc = key_of(jwk, jws, why);
    } else {
        /* our account URLs end in the account key (base64url JSON) */
        jws->kid = dup_str(kid);
        if (jws->kid == NULL || strncmp(jws->kid, kid_prefix, plen) != 0 ||
            mdm_b64url_decode(jws->kid + plen, strlen(jws->kid + plen), &kb,
                              &kblen) != 0) {
            *why = "the \"kid\" is not an account URL of this server";
            rc = MDM_JWS_BADKEY;
            goto done;
        }
        rc = mdm_jws_key((const char *) kb, kblen, jws, why);
        if (rc == MDM_JWS_MALFORMED) {
            rc = MDM_JWS_BADKEY;
        }
    }
    if (rc != MDM_JWS_OK) {
        goto done;
    }
    if ((strcmp(jws->alg, "ES256") == 0) !=
        (EVP_PKEY_get_base_id(jws->key) == EVP_PKEY_EC)) {
        *why = "alg does not fit the key";
        rc = MDM_JWS_BADALG;
        goto done;
    }
    n = asprintf(&input, "%s.%s", pb, plb);
    if (n < 0) {
        input = NULL;
        rc = MDM_JWS_NOMEM;
        goto done;
    }
    if (!verify(jws, input, (size_t) n, sig, siglen)) {
        *why = "the JWS signature does not verify";
        rc = MDM_JWS_BADSIG;
        goto done;
    }
    rc = MDM_JWS_OK;
done:
    if (rc == MDM_JWS_MALFORMED && **why == '\0') {
        *why = "malformed JWS";
    }
    free(input);
    free(ph);
    free(sig);
    free(kb);
    json_decref(hdr);
    json_decref(outer);
    if (rc != MDM_JWS_OK) {
        mdm_jws_free(jws);
    }
    return rc;
}

void
mdm_jws_free(mdm_jws_t *jws)
{
    free(jws->nonce);
    free(jws->url);
    free(jws->kid);
    free(jws->jwk);
    free(jws->payload);
    EVP_PKEY_free(jws->key);
    memset(jws, 0, sizeof(*jws));
}
