/*
 * Enrollment profile: mdm_profile_conf_finish() checks that the options
 * form a profile and derives what every download shares (the chain sent
 * with the signature, CAFingerprint, identifiers, UUIDs).
 *
 * Why the identifiers are derived and not random: a device that installs
 * a profile whose PayloadIdentifier it already has replaces the old one
 * (a renewal); a new identifier would be a second, competing enrollment.
 * PayloadUUIDs are name-based (RFC 4122 version 5) over the server URL,
 * the topic and the payload's role, so two servers never share them and
 * one server always sends the same ones.
 */
#include "mdm_profile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* Namespace of the name-based PayloadUUIDs (fixed forever: changing it
 * would turn every re-sent profile into a new enrollment). */
static const unsigned char uuid_ns[16] = {0x8e, 0x6b, 0x3a, 0x52, 0x1d, 0x47,
                                          0x4c, 0x0f, 0x9b, 0x21, 0x5e, 0x70,
                                          0xc4, 0x13, 0xa8, 0x96};

/** "MDM.example.com" in a URL -> "com.example.mdm.enrollment". */
static char *
identifier_from_url(const char *url)
{
    const char *h = strstr(url, "://") + 3, *end, *dot;
    size_t n, i, o = 0;
    char *out;

    if (*h == '[') {
        h++;
        n = strcspn(h, "]");
    } else {
        n = strcspn(h, ":/?#");
    }
    out = malloc(n + 16);
    if (out == NULL) {
        return NULL;
    }
    end = h + n;
    while (end > h) {
        for (dot = end; dot > h && dot[-1] != '.'; dot--) {
        }
        for (i = 0; dot + i < end; i++) {
            char c = dot[i];

            if (c >= 'A' && c <= 'Z') {
                c = (char) (c - 'A' + 'a');
            }
            out[o++] =
                (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
                    ? c
                    : '-';
        }
        if (o > 0 && out[o - 1] != '.') {
            out[o++] = '.';
        }
        end = dot > h ? dot - 1 : h;
    }
    memcpy(out + o, "enrollment", 11);
    return out;
}

/** RFC 4122 version 5 UUID of "a\nb\nc" in our namespace, upper case. */
static int
uuid_v5(const char *a, const char *b, const char *c, char out[37])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok;

    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, uuid_ns, sizeof(uuid_ns)) == 1 &&
         EVP_DigestUpdate(ctx, a, strlen(a)) == 1 &&
         EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
         EVP_DigestUpdate(ctx, b, strlen(b)) == 1 &&
         EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
         EVP_DigestUpdate(ctx, c, strlen(c)) == 1 &&
         EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }
    md[6] = (md[6] & 0x0f) | 0x50;
    md[8] = (md[8] & 0x3f) | 0x80;
    snprintf(out, 37,
             "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
             "%02X%02X%02X%02X%02X%02X",
             md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8],
             md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
    return 0;
}

static char *
join_id(const char *base, const char *suffix)
{
    char *s = NULL;

    if (asprintf(&s, "%s.%s", base, suffix) < 0) {
        return NULL;
    }
    return s;
}

/*
 * The ACME payload's key rules (Apple's com.apple.security.acme): RSA
 * keys of 1024-4096 bits (a multiple of 8) and never hardware bound; EC
 * keys on P-192/256/384/521, hardware bound only on 256 and 384; Attest
 * needs HardwareBound.
 */
static int
acme_check(mdm_profile_conf_t *p, char *err, size_t errlen)
{
    long k;

    if (p->acme_client_id == NULL) {
        snprintf(err, errlen,
                 "acme_client_identifier is required with acme_url");
        return -1;
    }
    if (p->acme_key_size == 0) {
        p->acme_key_size = p->acme_rsa ? 2048 : 384;
    }
    k = p->acme_key_size;
    if (p->acme_rsa ? (k < 1024 || k > 4096 || k % 8 != 0 || p->acme_hw_bound)
                    : (k != 192 && k != 256 && k != 384 && k != 521) ||
                          (p->acme_hw_bound && k != 256 && k != 384)) {
        snprintf(err, errlen,
                 "acme_key_size %ld does not fit acme_key_type %s with "
                 "acme_hardware_bound %s (RSA: 1024-4096, not hardware "
                 "bound; ECSECPrimeRandom: 192, 256, 384, 521, hardware "
                 "bound only 256 or 384)",
                 k, p->acme_rsa ? "RSA" : "ECSECPrimeRandom",
                 p->acme_hw_bound ? "on" : "off");
        return -1;
    }
    if (p->acme_attest && !p->acme_hw_bound) {
        snprintf(err, errlen, "acme_attest needs acme_hardware_bound on");
        return -1;
    }
    return 0;
}

int
mdm_profile_conf_finish(mdm_profile_conf_t *p, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    char hex[2 * EVP_MAX_MD_SIZE + 1], role[2 * EVP_MAX_MD_SIZE + 8], sfx[40];
    size_t i, n;

    if (p->finished) {
        return 0;
    }
    if (p->server_url == NULL) {
        snprintf(err, errlen, "server_url is required");
        return -1;
    }
    if (p->scep_url == NULL && p->acme_url == NULL) {
        snprintf(err, errlen, "scep_url (or acme_url) is required");
        return -1;
    }
    if (p->acme_url && acme_check(p, err, errlen) != 0) {
        return -1;
    }
    if (p->topic && p->push_topic && strcmp(p->topic, p->push_topic) != 0) {
        snprintf(err, errlen,
                 "topic \"%.200s\" differs from the push_cert topic "
                 "\"%.200s\"",
                 p->topic, p->push_topic);
        return -1;
    }
    p->the_topic = p->topic ? p->topic : p->push_topic;
    if (p->the_topic == NULL) {
        snprintf(err, errlen,
                 "a push topic is required: set topic or "
                 "push_cert");
        return -1;
    }
    if (p->acme_url) {
        p->fp_hash = MDM_PROFILE_FP_NONE; /* no SCEP payload to check */
    }
    if (p->fp_hash != MDM_PROFILE_FP_NONE && p->scep_ca == NULL) {
        snprintf(err, errlen,
                 "scep_ca is required for the CAFingerprint (or set "
                 "scep_fingerprint none)");
        return -1;
    }
    if (p->unsigned_on && (p->sign_cert || p->sign_key)) {
        snprintf(err, errlen,
                 "unsigned is on but sign_cert or sign_key is set: "
                 "choose one");
        return -1;
    }
    if (!p->unsigned_on) {
        if (p->sign_cert == NULL || p->sign_key == NULL) {
            snprintf(err, errlen,
                     "%s: profiles are signed; set sign_cert and "
                     "sign_key, or unsigned on",
                     p->sign_cert  ? "sign_key is missing"
                     : p->sign_key ? "sign_cert is missing"
                                   : "no signing certificate");
            return -1;
        }
        if (X509_check_private_key(p->sign_cert, p->sign_key) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "sign_key does not match sign_cert");
            return -1;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(p->sign_cert)) <= 0) {
            snprintf(err, errlen, "sign_cert has expired");
            return -1;
        }
        /* RFC 5280: a key usage without digitalSignature (a CA's
         * keyCertSign, cRLSign) does not sign data */
        if ((X509_get_extension_flags(p->sign_cert) & EXFLAG_KUSAGE) &&
            !(X509_get_key_usage(p->sign_cert) &
              (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
            snprintf(err, errlen,
                     "sign_cert: its keyUsage does not allow "
                     "digitalSignature (a CA certificate? sign with a "
                     "certificate it issued)");
            return -1;
        }
        sk_X509_pop_free(p->chain, X509_free);
        p->chain = sk_X509_new_null();
        if (p->chain == NULL) {
            snprintf(err, errlen, "profile: out of memory");
            return -1;
        }
        for (i = 0; i < 2; i++) {
            STACK_OF(X509) *from = i == 0 ? p->sign_extra : p->sign_chain;
            int j;

            for (j = 0; from && j < sk_X509_num(from); j++) {
                X509 *x = sk_X509_value(from, j);

                if (!X509_up_ref(x) || !sk_X509_push(p->chain, x)) {
                    X509_free(x);
                    snprintf(err, errlen, "profile: out of memory");
                    return -1;
                }
            }
        }
    }
    if (p->fp_hash != MDM_PROFILE_FP_NONE &&
        X509_digest(mdm_profile_chain_top(p->scep_ca),
                    p->fp_hash == MDM_PROFILE_FP_SHA1 ? EVP_sha1()
                                                      : EVP_sha256(),
                    p->fp, &p->fplen) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "scep_ca: cannot hash the CA certificate");
        return -1;
    }
    if (p->scep_subject == NULL) {
        p->scep_subject = plist_new_array();
        if (p->organization) {
            plist_array_append_item(p->scep_subject,
                                    mdm_profile_rdn_new("O", p->organization));
        }
        plist_array_append_item(p->scep_subject,
                                mdm_profile_rdn_new("CN", "MDM Identity"));
    }
    free(p->base_id);
    free(p->scep_id);
    free(p->mdm_id);
    p->scep_id = p->mdm_id = NULL;
    p->base_id = p->identifier ? mdm_strdup(p->identifier)
                               : identifier_from_url(p->server_url);
    if (p->base_id == NULL ||
        (p->scep_id = join_id(p->base_id, p->acme_url ? "acme" : "scep")) ==
            NULL ||
        (p->mdm_id = join_id(p->base_id, "mdm")) == NULL ||
        uuid_v5(p->server_url, p->the_topic, "profile", p->uuid_profile) != 0 ||
        uuid_v5(p->server_url, p->the_topic, "scep", p->uuid_scep) != 0 ||
        uuid_v5(p->server_url, p->the_topic, "mdm", p->uuid_mdm) != 0) {
        snprintf(err, errlen, "profile: out of memory");
        return -1;
    }
    n = p->trust ? (size_t) sk_X509_num(p->trust) : 0;
    if (n > 0) {
        p->trust_uuid = calloc(n, sizeof(*p->trust_uuid));
        p->trust_id = calloc(n, sizeof(char *));
        if (p->trust_uuid == NULL || p->trust_id == NULL) {
            snprintf(err, errlen, "profile: out of memory");
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        /* identified by content: the same certificate keeps its ids
         * whatever order the files list it in */
        if (X509_digest(sk_X509_value(p->trust, (int) i), EVP_sha256(), md,
                        &mdlen) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "trust_cert: cannot hash a certificate");
            return -1;
        }
        mdm_hex(md, mdlen, hex);
        snprintf(role, sizeof(role), "trust:%s", hex);
        snprintf(sfx, sizeof(sfx), "trust.%.16s", hex);
        if (uuid_v5(p->server_url, p->the_topic, role, p->trust_uuid[i]) != 0 ||
            (p->trust_id[i] = join_id(p->base_id, sfx)) == NULL) {
            snprintf(err, errlen, "profile: out of memory");
            return -1;
        }
    }
    p->finished = 1;
    return 0;
}

const char *
mdm_profile_topic(const mdm_profile_conf_t *p)
{
    return p->finished ? p->the_topic : NULL;
}
