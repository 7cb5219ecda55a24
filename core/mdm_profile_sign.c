/*
 * Enrollment profile: mdm_profile_build(), the XML plist signed with CMS
 * (attached content), or sent as is when the configuration is unsigned.
 */
#include "mdm_profile_int.h"

#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

int
mdm_profile_build(const mdm_profile_conf_t *p, const char *challenge,
                  mdm_log_fn log_fn, void *log_data, unsigned char **out,
                  size_t *outlen)
{
    mdm_buf_t xml = {NULL, 0};
    CMS_ContentInfo *cms = NULL;
    BIO *in = NULL;
    unsigned char *der = NULL, *q;
    char why[256];
    int len = -1;

    if (mdm_profile_xml(p, challenge, log_fn, log_data, &xml) != 0) {
        return -1;
    }
    if (p->unsigned_on) {
        *out = xml.ptr;
        *outlen = xml.len;
        return 0;
    }
    ERR_clear_error();
    /* attached content (no CMS_DETACHED), signed as bytes (CMS_BINARY:
     * no MIME canonicalisation of the XML's line ends) */
    in = BIO_new_mem_buf(xml.ptr, (int) xml.len);
    if (in != NULL) {
        cms = CMS_sign(p->sign_cert, p->sign_key, p->chain, in, CMS_BINARY);
    }
    if (cms != NULL) {
        len = i2d_CMS_ContentInfo(cms, NULL);
        if (len > 0 && (der = malloc((size_t) len)) != NULL) {
            q = der;
            len = i2d_CMS_ContentInfo(cms, &q);
        }
    }
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    if (xml.ptr) {
        OPENSSL_cleanse(xml.ptr, xml.len); /* holds the challenge */
    }
    mdm_buf_free(&xml);
    if (der == NULL || len <= 0) {
        free(der);
        mdm_profile_ossl_error(why, sizeof(why));
        mdm_profile_log(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_SIGN,
                        "enrollment profile: signing failed: %s", why);
        return -1;
    }
    *out = der;
    *outlen = (size_t) len;
    return 0;
}
