/*
 * Enrollment profile: the XML plist of one download (trust certificate
 * payloads, the SCEP payload with this download's challenge or the ACME
 * payload, the MDM payload). Reads a finished configuration only: safe in
 * several threads.
 */
#include "mdm_profile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

void
mdm_profile_log(mdm_log_fn fn, void *data, mdm_log_level_t level,
                const char *id, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (fn == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fn(data, level, id, msg);
}

static void
dset(plist_t d, const char *k, plist_t v)
{
    plist_dict_set_item(d, k, v);
}

static plist_t
payload_new(const char *type, const char *id, const char *uuid,
            const char *display)
{
    plist_t d = plist_new_dict();

    dset(d, "PayloadType", plist_new_string(type));
    dset(d, "PayloadVersion", plist_new_uint(1));
    dset(d, "PayloadIdentifier", plist_new_string(id));
    dset(d, "PayloadUUID", plist_new_string(uuid));
    dset(d, "PayloadDisplayName", plist_new_string(display));
    return d;
}

/** A certificate payload; -1 when the certificate will not encode. */
static int
cert_payload(const mdm_profile_conf_t *p, size_t i, plist_t content)
{
    X509 *x = sk_X509_value(p->trust, (int) i);
    unsigned char *der = NULL;
    char *cn, file[96];
    size_t k;
    int len;
    plist_t d;

    len = i2d_X509(x, &der);
    if (len <= 0) {
        return -1;
    }
    cn = mdm_profile_name_entry(X509_get_subject_name(x), NID_commonName);
    snprintf(file, sizeof(file), "%.80s", cn ? cn : "certificate");
    for (k = 0; file[k]; k++) {
        if (!((file[k] >= 'a' && file[k] <= 'z') ||
              (file[k] >= 'A' && file[k] <= 'Z') ||
              (file[k] >= '0' && file[k] <= '9') || file[k] == '-' ||
              file[k] == '.')) {
            file[k] = '_';
        }
    }
    strcat(file, ".cer");
    d = payload_new(X509_check_issued(x, x) == X509_V_OK
                        ? "com.apple.security.root"
                        : "com.apple.security.pkcs1",
                    p->trust_id[i], p->trust_uuid[i], cn ? cn : "Certificate");
    ERR_clear_error();
    dset(d, "PayloadCertificateFileName", plist_new_string(file));
    dset(d, "PayloadContent",
         plist_new_data((const char *) der, (uint64_t) len));
    plist_array_append_item(content, d);
    OPENSSL_free(der);
    free(cn);
    return 0;
}

static plist_t
scep_payload(const mdm_profile_conf_t *p, const char *challenge)
{
    plist_t d, c;

    d = payload_new("com.apple.security.scep", p->scep_id, p->uuid_scep,
                    "Device Identity (SCEP)");
    c = plist_new_dict();
    dset(c, "URL", plist_new_string(p->scep_url));
    if (p->scep_name) {
        dset(c, "Name", plist_new_string(p->scep_name));
    }
    dset(c, "Subject", plist_copy(p->scep_subject));
    if (challenge && *challenge) {
        dset(c, "Challenge", plist_new_string(challenge));
    }
    dset(c, "Keysize", plist_new_uint((uint64_t) p->key_size));
    dset(c, "Key Type", plist_new_string("RSA"));
    dset(c, "Key Usage", plist_new_uint((uint64_t) p->key_usage));
    if (p->fplen > 0) {
        dset(c, "CAFingerprint",
             plist_new_data((const char *) p->fp, p->fplen));
    }
    dset(c, "Retries", plist_new_uint((uint64_t) p->retries));
    dset(c, "RetryDelay", plist_new_uint((uint64_t) p->retry_delay));
    dset(d, "PayloadContent", c);
    return d;
}

/* com.apple.security.acme: the device gets its identity by ACME with
 * device attestation (the module's mdm_acme location) */
static plist_t
acme_payload(const mdm_profile_conf_t *p)
{
    plist_t d, eku;

    d = payload_new("com.apple.security.acme", p->scep_id, p->uuid_scep,
                    "Device Identity (ACME)");
    dset(d, "DirectoryURL", plist_new_string(p->acme_url));
    dset(d, "ClientIdentifier", plist_new_string(p->acme_client_id));
    dset(d, "KeyType",
         plist_new_string(p->acme_rsa ? "RSA" : "ECSECPrimeRandom"));
    dset(d, "KeySize", plist_new_uint((uint64_t) p->acme_key_size));
    dset(d, "HardwareBound", plist_new_bool(p->acme_hw_bound));
    dset(d, "Attest", plist_new_bool(p->acme_attest));
    dset(d, "Subject", plist_copy(p->scep_subject));
    dset(d, "UsageFlags", plist_new_uint((uint64_t) p->key_usage));
    eku = plist_new_array();
    plist_array_append_item(eku, plist_new_string("1.3.6.1.5.5.7.3.2"));
    dset(d, "ExtendedKeyUsage", eku);
    return d;
}

static plist_t
mdm_payload(const mdm_profile_conf_t *p)
{
    plist_t d, caps;
    size_t i;

    d = payload_new("com.apple.mdm", p->mdm_id, p->uuid_mdm,
                    "Device Management");
    dset(d, "ServerURL", plist_new_string(p->server_url));
    if (p->checkin_url) {
        dset(d, "CheckInURL", plist_new_string(p->checkin_url));
    }
    dset(d, "Topic", plist_new_string(p->the_topic));
    dset(d, "IdentityCertificateUUID", plist_new_string(p->uuid_scep));
    dset(d, "SignMessage", plist_new_bool(p->sign_message));
    dset(d, "AccessRights", plist_new_uint((uint64_t) p->access_rights));
    dset(d, "CheckOutWhenRemoved", plist_new_bool(p->check_out));
    if (p->dev_apns) {
        dset(d, "UseDevelopmentAPNS", plist_new_bool(1));
    }
    if (p->ncaps > 0) {
        caps = plist_new_array();
        for (i = 0; i < p->ncaps; i++) {
            plist_array_append_item(caps, plist_new_string(p->caps[i]));
        }
        dset(d, "ServerCapabilities", caps);
    }
    return d;
}

int
mdm_profile_xml(const mdm_profile_conf_t *p, const char *challenge,
                mdm_log_fn log_fn, void *log_data, mdm_buf_t *xml)
{
    plist_t top, content;
    size_t i, n;
    int rc;

    if (!p->finished) {
        mdm_profile_log(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_CONF,
                        "enrollment profile: configuration not finished");
        return -1;
    }
    if (challenge == NULL) {
        challenge = p->scep_challenge;
    }
    if (challenge && !mdm_profile_challenge_ok(challenge)) {
        mdm_profile_log(
            log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_CHALLENGE,
            "enrollment profile: SCEP challenge refused (at most %d "
            "printable characters)",
            MDM_PROFILE_MAX_CHALLENGE);
        return -1;
    }
    top = plist_new_dict();
    dset(top, "PayloadType", plist_new_string("Configuration"));
    dset(top, "PayloadVersion", plist_new_uint(1));
    dset(top, "PayloadIdentifier", plist_new_string(p->base_id));
    dset(top, "PayloadUUID", plist_new_string(p->uuid_profile));
    dset(top, "PayloadDisplayName", plist_new_string(p->display_name));
    if (p->organization) {
        dset(top, "PayloadOrganization", plist_new_string(p->organization));
    }
    if (p->description) {
        dset(top, "PayloadDescription", plist_new_string(p->description));
    }
    content = plist_new_array();
    /* certificate payloads first: they install before the MDM payload */
    n = p->trust ? (size_t) sk_X509_num(p->trust) : 0;
    for (i = 0; i < n; i++) {
        if (cert_payload(p, i, content) != 0) {
            plist_free(content);
            plist_free(top);
            mdm_profile_log(
                log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_NOMEM,
                "enrollment profile: cannot encode trust certificate %zu",
                i + 1);
            return -1;
        }
    }
    plist_array_append_item(content, p->acme_url ? acme_payload(p)
                                                 : scep_payload(p, challenge));
    plist_array_append_item(content, mdm_payload(p));
    dset(top, "PayloadContent", content);
    rc = mdm_plist_xml(top, xml);
    plist_free(top);
    if (rc != 0) {
        mdm_profile_log(log_fn, log_data, MDM_LOG_ERR, MDM_PROFILE_LOG_NOMEM,
                        "enrollment profile: out of memory");
        return -1;
    }
    return 0;
}

int
mdm_profile_build_xml(const mdm_profile_conf_t *p, const char *challenge,
                      mdm_log_fn log_fn, void *log_data, unsigned char **out,
                      size_t *outlen)
{
    mdm_buf_t xml = {NULL, 0};

    if (mdm_profile_xml(p, challenge, log_fn, log_data, &xml) != 0) {
        return -1;
    }
    *out = xml.ptr;
    *outlen = xml.len;
    return 0;
}
