/*
 * Enrollment profile: the configuration's life (new with defaults, one
 * option set by name, free). Files named by options are read here;
 * checking the whole and deriving identifiers is mdm_profile_finish.c.
 */
#include "mdm_profile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void
free_caps(mdm_profile_conf_t *p)
{
    size_t i;

    for (i = 0; i < p->ncaps; i++) {
        free(p->caps[i]);
    }
    free(p->caps);
    p->caps = NULL;
    p->ncaps = 0;
}

static int
parse_caps(mdm_profile_conf_t *p, const char *v)
{
    char **caps = NULL;
    size_t n = 0, len;
    const char *s = v;

    if (strcmp(v, "none") == 0) {
        free_caps(p);
        return 0;
    }
    caps = calloc(MDM_PROFILE_MAX_CAPS, sizeof(char *));
    if (caps == NULL) {
        return -1;
    }
    for (s += strspn(s, ", "); *s; s += strspn(s, ", ")) {
        len = strcspn(s, ", ");
        if (n == MDM_PROFILE_MAX_CAPS || len > 128 ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789.-_") < len ||
            (caps[n] = mdm_strndup(s, len)) == NULL) {
            while (n > 0) {
                free(caps[--n]);
            }
            free(caps);
            return -1;
        }
        n++;
        s += len;
    }
    if (n == 0) {
        free(caps);
        return -1;
    }
    free_caps(p);
    p->caps = caps;
    p->ncaps = n;
    return 0;
}

mdm_profile_conf_t *
mdm_profile_conf_new(void)
{
    mdm_profile_conf_t *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->fp_hash = MDM_PROFILE_FP_SHA1;
    p->key_size = 2048;
    p->key_usage = 5;
    p->retries = 3;
    p->retry_delay = 10;
    p->access_rights = 8191;
    p->sign_message = 1;
    p->acme_hw_bound = 1;
    p->acme_attest = 1;
    p->check_out = 1;
    if (parse_caps(p, "com.apple.mdm.per-user-connections,"
                      "com.apple.mdm.bootstraptoken") != 0 ||
        (p->display_name = mdm_strdup("MDM Enrollment")) == NULL) {
        mdm_profile_conf_free(p);
        return NULL;
    }
    return p;
}

void
mdm_profile_conf_free(mdm_profile_conf_t *p)
{
    size_t i, n;

    if (p == NULL) {
        return;
    }
    n = p->trust ? (size_t) sk_X509_num(p->trust) : 0;
    free(p->server_url);
    free(p->checkin_url);
    free(p->topic);
    free(p->push_topic);
    free(p->scep_url);
    free(p->scep_name);
    free(p->acme_url);
    free(p->acme_client_id);
    if (p->scep_subject) {
        plist_free(p->scep_subject);
    }
    sk_X509_pop_free(p->scep_ca, X509_free);
    if (p->scep_challenge) {
        OPENSSL_cleanse(p->scep_challenge, strlen(p->scep_challenge));
        free(p->scep_challenge);
    }
    free_caps(p);
    sk_X509_pop_free(p->trust, X509_free);
    free(p->organization);
    free(p->display_name);
    free(p->description);
    free(p->identifier);
    X509_free(p->sign_cert);
    EVP_PKEY_free(p->sign_key);
    sk_X509_pop_free(p->sign_extra, X509_free);
    sk_X509_pop_free(p->sign_chain, X509_free);
    sk_X509_pop_free(p->chain, X509_free);
    free(p->base_id);
    free(p->scep_id);
    free(p->mdm_id);
    free(p->trust_uuid);
    if (p->trust_id) {
        for (i = 0; i < n; i++) {
            free(p->trust_id[i]);
        }
        free(p->trust_id);
    }
    free(p);
}

#define NOMEM()                                                                \
    do {                                                                       \
        snprintf(err, errlen, "%s: out of memory", name);                      \
        return -1;                                                             \
    } while (0)

static int
set_url(char **dst, const char *name, const char *value, int https_only,
        char *err, size_t errlen)
{
    const char *why = mdm_profile_url_problem(value, https_only);

    if (why != NULL) {
        snprintf(err, errlen, "invalid %s \"%.200s\": %s", name, value, why);
        return -1;
    }
    if (mdm_set_str(dst, value) != 0) {
        NOMEM();
    }
    return 0;
}

static int
set_text(char **dst, const char *name, const char *value, size_t max, char *err,
         size_t errlen)
{
    if (*value == '\0' || !mdm_profile_text_ok(value, max)) {
        snprintf(err, errlen,
                 "invalid %s: 1 to %zu printable characters expected", name,
                 max);
        return -1;
    }
    if (mdm_set_str(dst, value) != 0) {
        NOMEM();
    }
    return 0;
}

static int
set_number(long *dst, const char *name, const char *value, long min, long max,
           char *err, size_t errlen)
{
    if (mdm_parse_long(value, min, max, dst) != 0) {
        snprintf(err, errlen,
                 "invalid %s \"%.40s\": expected a number from %ld to %ld",
                 name, value, min, max);
        return -1;
    }
    return 0;
}

static int
set_flag(int *dst, const char *name, const char *value, char *err,
         size_t errlen)
{
    if (mdm_profile_parse_bool(value, dst) != 0) {
        snprintf(err, errlen, "invalid %s \"%.40s\": expected on or off", name,
                 value);
        return -1;
    }
    return 0;
}

int
mdm_profile_conf_set(mdm_profile_conf_t *p, const char *name, const char *value,
                     char *err, size_t errlen)
{
    STACK_OF(X509) * sk;
    char why[200], *t;
    plist_t subj;
    int rc;

    if (p->finished) {
        snprintf(err, errlen, "profile configuration already finished");
        return -1;
    }
    if (name == NULL || value == NULL) {
        snprintf(err, errlen, "option name and value are required");
        return -1;
    }
    if (strcmp(name, "server_url") == 0) {
        return set_url(&p->server_url, name, value, 1, err, errlen);
    }
    if (strcmp(name, "checkin_url") == 0) {
        return set_url(&p->checkin_url, name, value, 1, err, errlen);
    }
    if (strcmp(name, "scep_url") == 0) {
        return set_url(&p->scep_url, name, value, 0, err, errlen);
    }
    if (strcmp(name, "acme_url") == 0) {
        return set_url(&p->acme_url, name, value, 1, err, errlen);
    }
    if (strcmp(name, "acme_client_identifier") == 0) {
        return set_text(&p->acme_client_id, name, value, 128, err, errlen);
    }
    if (strcmp(name, "acme_key_type") == 0) {
        if (strcmp(value, "RSA") != 0 &&
            strcmp(value, "ECSECPrimeRandom") != 0) {
            snprintf(err, errlen,
                     "invalid acme_key_type \"%.40s\": expected RSA or "
                     "ECSECPrimeRandom",
                     value);
            return -1;
        }
        p->acme_rsa = value[0] == 'R';
        return 0;
    }
    if (strcmp(name, "acme_key_size") == 0) {
        if (mdm_parse_long(value, 192, 4096, &p->acme_key_size) != 0) {
            snprintf(err, errlen,
                     "invalid acme_key_size \"%.40s\": expected 192-4096",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "acme_hardware_bound") == 0) {
        return set_flag(&p->acme_hw_bound, name, value, err, errlen);
    }
    if (strcmp(name, "acme_attest") == 0) {
        return set_flag(&p->acme_attest, name, value, err, errlen);
    }
    if (strcmp(name, "topic") == 0) {
        if (!mdm_profile_topic_ok(value)) {
            snprintf(err, errlen,
                     "invalid topic \"%.200s\": a push topic starts with "
                     "\"com.apple.mgmt.\"",
                     value);
            return -1;
        }
        if (mdm_set_str(&p->topic, value) != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "push_cert") == 0) {
        if (mdm_push_topic_from_file(value, &t, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "push_cert \"%.200s\": %s", value, why);
            return -1;
        }
        free(p->push_topic);
        p->push_topic = t;
        return 0;
    }
    if (strcmp(name, "scep_name") == 0) {
        return set_text(&p->scep_name, name, value, 255, err, errlen);
    }
    if (strcmp(name, "scep_subject") == 0) {
        subj = mdm_profile_parse_subject(value, why, sizeof(why));
        if (subj == NULL) {
            snprintf(err, errlen, "invalid scep_subject \"%.200s\": %s", value,
                     why);
            return -1;
        }
        if (p->scep_subject) {
            plist_free(p->scep_subject);
        }
        p->scep_subject = subj;
        return 0;
    }
    if (strcmp(name, "scep_ca") == 0) {
        if (mdm_profile_load_certs(name, value, &sk, err, errlen) != 0) {
            return -1;
        }
        sk_X509_pop_free(p->scep_ca, X509_free);
        p->scep_ca = sk;
        return 0;
    }
    if (strcmp(name, "scep_fingerprint") == 0) {
        if (strcmp(value, "sha1") == 0) {
            p->fp_hash = MDM_PROFILE_FP_SHA1;
        } else if (strcmp(value, "sha256") == 0) {
            p->fp_hash = MDM_PROFILE_FP_SHA256;
        } else if (strcmp(value, "none") == 0) {
            p->fp_hash = MDM_PROFILE_FP_NONE;
        } else {
            snprintf(err, errlen,
                     "invalid scep_fingerprint \"%.40s\": expected sha1, "
                     "sha256 or none",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "scep_challenge") == 0) {
        if (*value == '\0' || !mdm_profile_challenge_ok(value)) {
            snprintf(err, errlen,
                     "invalid scep_challenge: 1 to %d printable characters "
                     "expected",
                     MDM_PROFILE_MAX_CHALLENGE);
            return -1;
        }
        if (p->scep_challenge) {
            OPENSSL_cleanse(p->scep_challenge, strlen(p->scep_challenge));
        }
        if (mdm_set_str(&p->scep_challenge, value) != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "scep_key_size") == 0) {
        if (strcmp(value, "2048") != 0 && strcmp(value, "4096") != 0) {
            snprintf(err, errlen,
                     "invalid scep_key_size \"%.40s\": expected 2048 or "
                     "4096",
                     value);
            return -1;
        }
        p->key_size = atol(value);
        return 0;
    }
    if (strcmp(name, "scep_key_usage") == 0) {
        if (strcmp(value, "1") != 0 && strcmp(value, "4") != 0 &&
            strcmp(value, "5") != 0) {
            snprintf(err, errlen,
                     "invalid scep_key_usage \"%.40s\": expected 1 "
                     "(signing), 4 (encryption) or 5 (both)",
                     value);
            return -1;
        }
        p->key_usage = atol(value);
        return 0;
    }
    if (strcmp(name, "scep_retries") == 0) {
        return set_number(&p->retries, name, value, 0, 100, err, errlen);
    }
    if (strcmp(name, "scep_retry_delay") == 0) {
        return set_number(&p->retry_delay, name, value, 0, 3600, err, errlen);
    }
    if (strcmp(name, "access_rights") == 0) {
        return set_number(&p->access_rights, name, value, 1, 8191, err, errlen);
    }
    if (strcmp(name, "sign_message") == 0) {
        return set_flag(&p->sign_message, name, value, err, errlen);
    }
    if (strcmp(name, "check_out_when_removed") == 0) {
        return set_flag(&p->check_out, name, value, err, errlen);
    }
    if (strcmp(name, "use_development_apns") == 0) {
        return set_flag(&p->dev_apns, name, value, err, errlen);
    }
    if (strcmp(name, "unsigned") == 0) {
        return set_flag(&p->unsigned_on, name, value, err, errlen);
    }
    if (strcmp(name, "server_capabilities") == 0) {
        if (parse_caps(p, value) != 0) {
            snprintf(err, errlen,
                     "invalid server_capabilities \"%.200s\": expected a "
                     "comma list of up to %d names such as "
                     "com.apple.mdm.per-user-connections, or \"none\"",
                     value, MDM_PROFILE_MAX_CAPS);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "trust_cert") == 0) {
        if (mdm_profile_load_certs(name, value, &sk, err, errlen) != 0) {
            return -1;
        }
        rc = mdm_profile_take_certs(&p->trust, sk, MDM_PROFILE_MAX_TRUST);
        if (rc == -2) {
            snprintf(err, errlen,
                     "trust_cert \"%.200s\": more than %d trust "
                     "certificates",
                     value, MDM_PROFILE_MAX_TRUST);
            return -1;
        }
        if (rc != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "organization") == 0) {
        return set_text(&p->organization, name, value, 255, err, errlen);
    }
    if (strcmp(name, "display_name") == 0) {
        return set_text(&p->display_name, name, value, 255, err, errlen);
    }
    if (strcmp(name, "description") == 0) {
        return set_text(&p->description, name, value, MDM_PROFILE_MAX_TEXT, err,
                        errlen);
    }
    if (strcmp(name, "identifier") == 0) {
        if (!mdm_profile_identifier_ok(value)) {
            snprintf(err, errlen,
                     "invalid identifier \"%.200s\": reverse-DNS style, "
                     "letters, digits, '.', '-' and '_' (at most 200)",
                     value);
            return -1;
        }
        if (mdm_set_str(&p->identifier, value) != 0) {
            NOMEM();
        }
        return 0;
    }
    if (strcmp(name, "sign_cert") == 0) {
        if (mdm_profile_load_certs(name, value, &sk, err, errlen) != 0) {
            return -1;
        }
        X509_free(p->sign_cert);
        p->sign_cert = sk_X509_shift(sk);
        sk_X509_pop_free(p->sign_extra, X509_free);
        p->sign_extra = NULL;
        rc = mdm_profile_take_certs(&p->sign_extra, sk, 16);
        if (rc != 0) {
            snprintf(err, errlen, "sign_cert \"%.200s\": %s", value,
                     rc == -2 ? "too many certificates" : "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "sign_chain") == 0) {
        if (mdm_profile_load_certs(name, value, &sk, err, errlen) != 0) {
            return -1;
        }
        rc = mdm_profile_take_certs(&p->sign_chain, sk, 16);
        if (rc != 0) {
            snprintf(err, errlen, "sign_chain \"%.200s\": %s", value,
                     rc == -2 ? "too many certificates" : "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "sign_key") == 0) {
        EVP_PKEY *k = mdm_profile_load_key(name, value, err, errlen);

        if (k == NULL) {
            return -1;
        }
        EVP_PKEY_free(p->sign_key);
        p->sign_key = k;
        return 0;
    }
    snprintf(err, errlen, "unknown profile option \"%.80s\"", name);
    return -1;
}

#undef NOMEM
