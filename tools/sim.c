/* A scripted device: see sim.h. */
#include "sim.h"
#include "mdm_sync.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <plist/plist.h>

int
sim_device_load(sim_device_t *d, const char *cert_pem, const char *key_pem)
{
    FILE *f;

    memset(d, 0, sizeof(*d));
    d->md = EVP_sha256();
    f = fopen(cert_pem, "r");
    if (f == NULL) {
        return -1;
    }
    d->cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(key_pem, "r");
    if (f == NULL) {
        sim_device_free(d);
        return -1;
    }
    d->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (d->cert == NULL || d->key == NULL) {
        sim_device_free(d);
        return -1;
    }
    return 0;
}

void
sim_device_free(sim_device_t *d)
{
    X509_free(d->cert);
    EVP_PKEY_free(d->key);
    memset(d, 0, sizeof(*d));
}

char *
sim_plist(size_t *len, ...)
{
    va_list ap;
    const char *k, *v;
    plist_t d = plist_new_dict();
    char *xml = NULL;
    uint32_t n = 0;

    va_start(ap, len);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (strcmp(k, "Token") == 0 || strcmp(k, "UnlockToken") == 0 ||
            strcmp(k, "BootstrapToken") == 0 || strcmp(k, "Data") == 0) {
            plist_dict_set_item(d, k, plist_new_data(v, strlen(v)));
        } else if ((strcmp(k, "AwaitingConfiguration") == 0 ||
                    strcmp(k, "NotOnConsole") == 0) &&
                   (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
            plist_dict_set_item(d, k, plist_new_bool(v[0] == 't'));
        } else {
            plist_dict_set_item(d, k, plist_new_string(v));
        }
    }
    va_end(ap);
    plist_to_xml(d, &xml, &n);
    plist_free(d);
    *len = n;
    return xml;
}

char *
sim_sign(const sim_device_t *d, const void *body, size_t len)
{
    BIO *in = BIO_new_mem_buf(body, (int) len);
    CMS_ContentInfo *cms;
    unsigned char *der = NULL;
    char *b64 = NULL;
    int n;

    if (in == NULL) {
        return NULL;
    }
    /* contentType, messageDigest and signingTime only, like a device
     * (no S/MIME capabilities) */
    cms = CMS_sign(NULL, NULL, NULL, NULL,
                   CMS_DETACHED | CMS_BINARY | CMS_PARTIAL);
    if (cms == NULL ||
        CMS_add1_signer(cms, d->cert, d->key, d->md,
                        CMS_BINARY | CMS_NOSMIMECAP) == NULL ||
        CMS_final(cms, in, NULL, CMS_DETACHED | CMS_BINARY) != 1) {
        goto done;
    }
    n = i2d_CMS_ContentInfo(cms, &der);
    if (n > 0) {
        b64 = malloc(4 * ((size_t) n + 2) / 3 + 4);
        if (b64) {
            EVP_EncodeBlock((unsigned char *) b64, der, n);
        }
        OPENSSL_free(der);
    }
done:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return b64;
}

void
sim_resp_free(sim_resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int
sim_send(redisContext *rc, const mdm_conf_t *conf, mdm_endpoint_t ep,
         const sim_device_t *d, const char *body, size_t len, sim_resp_t *out)
{
    mdm_req_t *r = mdm_req_new(conf, ep);
    const mdm_response_t *resp;
    const char *v;
    char *sig = NULL;

    memset(out, 0, sizeof(*out));
    if (r == NULL) {
        return -1;
    }
    mdm_req_set_body(r, (const unsigned char *) body, len);
    if (d) {
        sig = sim_sign(d, body, len);
        if (sig) {
            mdm_req_set_signature(r, sig, strlen(sig));
        }
    }
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        mdm_exec_sync(rc, r);
    }
    resp = mdm_req_response(r);
    out->status = resp->status;
    out->body = malloc(resp->body_len + 1);
    if (out->body) {
        if (resp->body_len) {
            memcpy(out->body, resp->body, resp->body_len);
        }
        out->body[resp->body_len] = '\0';
        out->body_len = resp->body_len;
    }
    if ((v = mdm_req_var(r, MDM_VAR_ERROR_ID)) != NULL) {
        snprintf(out->error_id, sizeof(out->error_id), "%s", v);
    }
    if ((v = mdm_req_var(r, MDM_VAR_NEXT_UUID)) != NULL) {
        snprintf(out->next_uuid, sizeof(out->next_uuid), "%s", v);
    }
    free(sig);
    mdm_req_free(r);
    return out->status;
}
