/*
 * Per-device encrypted profiles (mdm_profile_enc.h): the admin's payloads
 * as EncryptedPayloadContent, a CMS EnvelopedData to the device identity
 * certificate, in a profile signed like the enrollment profile.
 */
#include "mdm_profile_enc.h"
#include "mdm_profile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

void
mdm_encprof_clear(mdm_encprof_t *e)
{
    plist_free(e->outer);
    plist_free(e->content);
    memset(e, 0, sizeof(*e));
}

/* The string value of d[k]; NULL when absent. *bad when not a string. */
static const char *
str_of(plist_t d, const char *k, int *bad)
{
    plist_t v = plist_dict_get_item(d, k);
    uint64_t n = 0;
    const char *s;

    if (v == NULL) {
        return NULL;
    }
    if (plist_get_node_type(v) != PLIST_STRING ||
        (s = plist_get_string_ptr(v, &n)) == NULL || n == 0) {
        *bad = 1;
        return NULL;
    }
    return s;
}

/* Fill a payload's (or the profile's) missing common keys. */
static int
fill_common(plist_t d, const char *identifier, const char *type)
{
    char uuid[37];

    if (plist_dict_get_item(d, "PayloadUUID") == NULL) {
        if (mdm_uuid(uuid) != 0) {
            return -1;
        }
        plist_dict_set_item(d, "PayloadUUID", plist_new_string(uuid));
    }
    if (plist_dict_get_item(d, "PayloadVersion") == NULL) {
        plist_dict_set_item(d, "PayloadVersion", plist_new_uint(1));
    }
    if (identifier && plist_dict_get_item(d, "PayloadIdentifier") == NULL) {
        plist_dict_set_item(d, "PayloadIdentifier",
                            plist_new_string(identifier));
    }
    if (type && plist_dict_get_item(d, "PayloadType") == NULL) {
        plist_dict_set_item(d, "PayloadType", plist_new_string(type));
    }
    return 0;
}

static int
fail(mdm_encprof_t *e, char *why, size_t whylen, const char *fmt,
     const char *arg)
{
    snprintf(why, whylen, fmt, arg);
    mdm_encprof_clear(e);
    return -1;
}

int
mdm_encprof_prepare(mdm_encprof_t *e, plist_t body, char *why, size_t whylen)
{
    plist_t pc, p;
    const char *id, *s;
    char sub[300];
    uint32_t i, n;
    int bad = 0;

    memset(e, 0, sizeof(*e));
    if (body == NULL || plist_get_node_type(body) != PLIST_DICT) {
        return fail(e, why, whylen, "%s", "body is not a dictionary");
    }
    if (plist_dict_get_item(body, "EncryptedPayloadContent") != NULL) {
        return fail(e, why, whylen, "%s",
                    "EncryptedPayloadContent given: the server encrypts "
                    "PayloadContent itself");
    }
    pc = plist_dict_get_item(body, "PayloadContent");
    if (pc != NULL) {
        /* a profile: its own keys outside, the payloads inside */
        s = str_of(body, "PayloadType", &bad);
        if (bad || (s && strcmp(s, "Configuration") != 0)) {
            return fail(e, why, whylen, "%s",
                        "a profile's PayloadType must be \"Configuration\"");
        }
        if (plist_get_node_type(pc) != PLIST_ARRAY ||
            plist_array_get_size(pc) == 0) {
            return fail(e, why, whylen, "%s",
                        "PayloadContent must be a non-empty array");
        }
        e->outer = plist_copy(body);
        e->content = plist_copy(pc);
        if (e->outer) {
            plist_dict_remove_item(e->outer, "PayloadContent");
        }
    } else if (plist_dict_get_item(body, "PayloadType") != NULL) {
        /* one payload: wrapped in a profile of its own */
        e->outer = plist_new_dict();
        e->content = plist_new_array();
        if (e->content) {
            plist_array_append_item(e->content, plist_copy(body));
        }
        id = str_of(body, "PayloadIdentifier", &bad);
        if (id && strlen(id) <= 190) {
            snprintf(e->identifier, sizeof(e->identifier), "%s.profile", id);
        }
    } else {
        return fail(e, why, whylen, "%s",
                    "neither a profile (PayloadContent) nor a payload "
                    "(PayloadType)");
    }
    if (e->outer == NULL || e->content == NULL) {
        return fail(e, why, whylen, "%s", "out of memory");
    }
    if (e->identifier[0] == '\0') {
        id = str_of(e->outer, "PayloadIdentifier", &bad);
        if (bad || (id && !mdm_profile_identifier_ok(id))) {
            return fail(e, why, whylen, "%s",
                        "PayloadIdentifier must be reverse-DNS style "
                        "(letters, digits, . - _), at most 200 characters");
        }
        if (id) {
            snprintf(e->identifier, sizeof(e->identifier), "%s", id);
        } else if (mdm_uuid(e->uuid) == 0) {
            snprintf(e->identifier, sizeof(e->identifier), "mdm.encrypted.%s",
                     e->uuid);
        } else {
            return fail(e, why, whylen, "%s", "no randomness");
        }
    }
    str_of(e->outer, "PayloadUUID", &bad);
    if (bad) {
        return fail(e, why, whylen, "%s", "PayloadUUID must be a string");
    }
    n = plist_array_get_size(e->content);
    for (i = 0; i < n; i++) {
        p = plist_array_get_item(e->content, i);
        if (plist_get_node_type(p) != PLIST_DICT) {
            return fail(e, why, whylen, "%s",
                        "every item of PayloadContent must be a dictionary");
        }
        s = str_of(p, "PayloadType", &bad);
        if (s == NULL || bad) {
            return fail(e, why, whylen, "%s",
                        "every payload needs a PayloadType (string)");
        }
        str_of(p, "PayloadIdentifier", &bad);
        if (bad) {
            return fail(e, why, whylen, "%s",
                        "a payload's PayloadIdentifier must be a string");
        }
        str_of(p, "PayloadUUID", &bad);
        if (bad) {
            return fail(e, why, whylen, "%s",
                        "a payload's PayloadUUID must be a string");
        }
        snprintf(sub, sizeof(sub), "%s.payload%u", e->identifier, i + 1);
        if (fill_common(p, sub, NULL) != 0) {
            return fail(e, why, whylen, "%s", "no randomness");
        }
    }
    if (fill_common(e->outer, e->identifier, "Configuration") != 0) {
        return fail(e, why, whylen, "%s", "no randomness");
    }
    if (plist_dict_get_item(e->outer, "PayloadDisplayName") == NULL) {
        plist_dict_set_item(e->outer, "PayloadDisplayName",
                            plist_new_string("Encrypted profile"));
    }
    s = str_of(e->outer, "PayloadUUID", &bad);
    snprintf(e->uuid, sizeof(e->uuid), "%.36s", s ? s : "");
    return 0;
}

int
mdm_encprof_can_sign(const mdm_profile_conf_t *p)
{
    return p != NULL && p->finished && !p->unsigned_on && p->sign_cert &&
           p->sign_key;
}

/* DER of a CMS structure, malloc'd; NULL on failure. */
static unsigned char *
cms_der(CMS_ContentInfo *cms, size_t *len)
{
    unsigned char *der = NULL, *q;
    int n = cms ? i2d_CMS_ContentInfo(cms, NULL) : -1;

    if (n > 0 && (der = malloc((size_t) n)) != NULL) {
        q = der;
        if (i2d_CMS_ContentInfo(cms, &q) != n) {
            free(der);
            der = NULL;
        }
    }
    *len = der ? (size_t) n : 0;
    return der;
}

static unsigned char *
envelope(const mdm_buf_t *inner, X509 *cert, size_t *len)
{
    STACK_OF(X509) *to = sk_X509_new_null();
    CMS_ContentInfo *cms = NULL;
    BIO *in = BIO_new_mem_buf(inner->ptr, (int) inner->len);
    unsigned char *der = NULL;

    if (to && in && sk_X509_push(to, cert) > 0) {
        cms = CMS_encrypt(to, in, EVP_aes_256_cbc(), CMS_BINARY);
        der = cms_der(cms, len);
    }
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(to);
    return der;
}

int
mdm_encprof_build(const mdm_encprof_t *e, X509 *cert,
                  const mdm_profile_conf_t *signer, unsigned char **out,
                  size_t *outlen, char *why, size_t whylen)
{
    mdm_buf_t inner = {NULL, 0}, xml = {NULL, 0};
    plist_t outer = NULL;
    CMS_ContentInfo *cms = NULL;
    EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
    unsigned char *env = NULL, *der = NULL;
    size_t envlen = 0, derlen = 0;
    BIO *in = NULL;
    char err[200];
    int rc = -1;

    if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA) {
        snprintf(why, whylen,
                 "the device certificate's key is not RSA (key transport "
                 "needs RSA)");
        return -1;
    }
    ERR_clear_error();
    if (mdm_plist_xml(e->content, &inner) != 0) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    env = envelope(&inner, cert, &envlen);
    if (env == NULL) {
        mdm_profile_ossl_error(err, sizeof(err));
        snprintf(why, whylen, "encryption failed: %s", err);
        goto done;
    }
    outer = plist_copy(e->outer);
    if (outer == NULL) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    plist_dict_set_item(outer, "EncryptedPayloadContent",
                        plist_new_data((const char *) env, envlen));
    if (mdm_plist_xml(outer, &xml) != 0) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    if (signer == NULL) {
        *out = xml.ptr;
        *outlen = xml.len;
        xml.ptr = NULL;
        rc = 0;
        goto done;
    }
    in = BIO_new_mem_buf(xml.ptr, (int) xml.len);
    if (in != NULL) {
        cms = CMS_sign(signer->sign_cert, signer->sign_key, signer->chain, in,
                       CMS_BINARY);
    }
    der = cms_der(cms, &derlen);
    if (der == NULL) {
        mdm_profile_ossl_error(err, sizeof(err));
        snprintf(why, whylen, "signing failed: %s", err);
        goto done;
    }
    *out = der;
    *outlen = derlen;
    rc = 0;
done:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    plist_free(outer);
    if (inner.ptr) {
        OPENSSL_cleanse(inner.ptr, inner.len); /* the payloads in clear */
    }
    mdm_buf_free(&inner);
    mdm_buf_free(&xml);
    free(env);
    return rc;
}
