/* Configuration: options by name, validated when set, files loaded once. */
#include "mdm_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define MDM_MAX_CONF_FILE (4 * 1024 * 1024)

mdm_conf_t *
mdm_conf_new(void)
{
    mdm_conf_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->prefix = mdm_strdup("mdm:");
    if (c->prefix == NULL) {
        free(c);
        return NULL;
    }
    c->identity = MDM_ID_SIGNATURE | MDM_ID_TLS;
    c->binding = MDM_BIND_STRICT;
    c->results_ttl = 7 * 86400;
    c->events_maxlen = 100000;
    c->push_maxlen = 100000;
    c->cache_size = 10000;
    c->cache_ttl = 3600;
    c->cert_cache_size = 1000;
    c->user_auth = MDM_UA_GONE;
    return c;
}

void
mdm_conf_free(mdm_conf_t *c)
{
    size_t i;

    if (c == NULL) {
        return;
    }
    free(c->prefix);
    free(c->ca_file);
    for (i = 0; i < c->ntopics; i++) {
        free(c->topics[i]);
    }
    free(c->topics);
    free(c->get_token_type);
    free(c->get_token_file);
    mdm_buf_free(&c->get_token);
    free(c->rts_wifi_file);
    free(c->rts_mdm_file);
    mdm_buf_free(&c->rts_wifi);
    mdm_buf_free(&c->rts_mdm);
    if (c->verifier) {
        mdm_verifier_free(c->verifier);
    }
    free(c->events_key);
    free(c->push_key);
    free(c->expiry_key);
    free(c->admin_key);
    mdm_enroll_conf_free(c);
    free(c);
}

static int
parse_identity(const char *v, unsigned *out)
{
    unsigned m = 0;
    const char *p = v;
    size_t n;

    if (strcmp(v, "none") == 0) {
        *out = 0;
        return 0;
    }
    while (*p) {
        n = strcspn(p, ", ");
        if (n == 9 && strncmp(p, "signature", 9) == 0) {
            m |= MDM_ID_SIGNATURE;
        } else if (n == 3 && strncmp(p, "tls", 3) == 0) {
            m |= MDM_ID_TLS;
        } else if (n == 6 && strncmp(p, "header", 6) == 0) {
            m |= MDM_ID_HEADER;
        } else if (n != 0) {
            return -1;
        }
        p += n;
        p += strspn(p, ", ");
    }
    if (m == 0) {
        return -1;
    }
    *out = m;
    return 0;
}

int
mdm_conf_set(mdm_conf_t *c, const char *name, const char *value, char *err,
             size_t errlen)
{
    long n;
    char **t;

    if (c->finished) {
        snprintf(err, errlen, "configuration already finished");
        return -1;
    }
    if (strncmp(name, "scep.", 5) == 0 || strncmp(name, "profile.", 8) == 0 ||
        strncmp(name, "acme.", 5) == 0) {
        return mdm_enroll_conf_set(c, name, value, err, errlen);
    }
    if (strcmp(name, "prefix") == 0) {
        if (*value == '\0' || strlen(value) > 64 || strpbrk(value, "{} ")) {
            snprintf(err, errlen,
                     "invalid prefix \"%s\": 1-64 characters, "
                     "no braces or spaces",
                     value);
            return -1;
        }
        return mdm_set_str(&c->prefix, value);
    }
    if (strcmp(name, "identity") == 0) {
        if (parse_identity(value, &c->identity) != 0) {
            snprintf(err, errlen,
                     "invalid identity \"%s\": expected a "
                     "list of signature, tls, header, or \"none\"",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "ca_file") == 0) {
        return mdm_set_str(&c->ca_file, value);
    }
    if (strcmp(name, "topic") == 0) {
        if (strncmp(value, "com.apple.mgmt.", 15) != 0 || value[15] == 0) {
            snprintf(err, errlen,
                     "invalid topic \"%s\": a push topic "
                     "starts with \"com.apple.mgmt.\"",
                     value);
            return -1;
        }
        t = realloc(c->topics, (c->ntopics + 1) * sizeof(char *));
        if (t == NULL) {
            return -1;
        }
        c->topics = t;
        t[c->ntopics] = mdm_strdup(value);
        if (t[c->ntopics] == NULL) {
            return -1;
        }
        c->ntopics++;
        return 0;
    }
    if (strcmp(name, "binding") == 0) {
        if (strcmp(value, "strict") == 0) {
            c->binding = MDM_BIND_STRICT;
        } else if (strcmp(value, "retro") == 0) {
            c->binding = MDM_BIND_RETRO;
        } else if (strcmp(value, "off") == 0) {
            c->binding = MDM_BIND_OFF;
        } else {
            snprintf(err, errlen,
                     "invalid binding \"%s\": expected "
                     "strict, retro or off",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "user_auth") == 0) {
        if (strcmp(value, "gone") == 0) {
            c->user_auth = MDM_UA_GONE;
        } else if (strcmp(value, "zero-length") == 0) {
            c->user_auth = MDM_UA_ZERO_LENGTH;
        } else {
            snprintf(err, errlen,
                     "invalid user_auth \"%s\": expected gone "
                     "or zero-length",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "store_der") == 0) {
        if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0) {
            c->store_cert = value[1] == 'n';
            return 0;
        }
        snprintf(err, errlen, "invalid store_der \"%s\": expected on or off",
                 value);
        return -1;
    }
    if (strcmp(name, "rts") == 0) {
        if (strcmp(value, "on") == 0) {
            c->rts = 1;
        } else if (strcmp(value, "off") == 0) {
            c->rts = 0;
        } else {
            snprintf(err, errlen, "invalid rts \"%s\": expected on or off",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "admin_key") == 0) {
        if (strlen(value) < 16) {
            snprintf(err, errlen,
                     "admin key too short: use at least 16 "
                     "characters");
            return -1;
        }
        return mdm_set_str(&c->admin_key, value);
    }
    if (strcmp(name, "rts_wifi_profile") == 0) {
        return mdm_set_str(&c->rts_wifi_file, value);
    }
    if (strcmp(name, "rts_mdm_profile") == 0) {
        return mdm_set_str(&c->rts_mdm_file, value);
    }
    if (strcmp(name, "get_token") == 0) {
        const char *sp = strchr(value, ' ');

        if (sp == NULL || sp == value || sp[1] == '\0') {
            snprintf(err, errlen,
                     "invalid get_token \"%s\": expected "
                     "\"<TokenServiceType> <file>\"",
                     value);
            return -1;
        }
        free(c->get_token_type);
        c->get_token_type = mdm_strndup(value, (size_t) (sp - value));
        return mdm_set_str(&c->get_token_file, sp + 1);
    }
    if (strcmp(name, "renew_days") == 0) {
        if (mdm_parse_long(value, 0, 3650, &n) != 0) {
            snprintf(err, errlen,
                     "invalid renew_days \"%s\": expected a number of "
                     "days from 0 (off) to 3650",
                     value);
            return -1;
        }
        c->renew_days = n;
        return 0;
    }
    if (strcmp(name, "results_ttl") == 0 ||
        strcmp(name, "events_maxlen") == 0 ||
        strcmp(name, "push_maxlen") == 0 || strcmp(name, "cache_size") == 0 ||
        strcmp(name, "cache_ttl") == 0 ||
        strcmp(name, "cert_cache_size") == 0) {
        if (mdm_parse_long(value, name[0] == 'r' ? 1 : 0, INT_MAX, &n) != 0) {
            snprintf(err, errlen,
                     "invalid %s \"%s\": expected a number "
                     "from %d to %d",
                     name, value, name[0] == 'r' ? 1 : 0, INT_MAX);
            return -1;
        }
        if (name[0] == 'r') {
            c->results_ttl = n;
        } else if (name[0] == 'e') {
            c->events_maxlen = n;
        } else if (name[0] == 'p') {
            c->push_maxlen = n;
        } else if (strcmp(name, "cert_cache_size") == 0) {
            c->cert_cache_size = (size_t) n;
        } else if (strcmp(name, "cache_size") == 0) {
            c->cache_size = (size_t) n;
        } else {
            c->cache_ttl = (unsigned) n;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown option \"%s\"", name);
    return -1;
}

int
mdm_conf_finish(mdm_conf_t *c, char *err, size_t errlen)
{
    if (c->finished) {
        return 0;
    }
    if (c->identity != 0) {
        if (c->ca_file == NULL) {
            snprintf(err, errlen,
                     "an identity CA file is required unless "
                     "identity is \"none\"");
            return -1;
        }
        c->verifier = mdm_verifier_new(c->ca_file, c->cache_size, c->cache_ttl,
                                       err, errlen);
        if (c->verifier == NULL) {
            return -1;
        }
        if (mdm_verifier_set_cert_cache(c->verifier, c->cert_cache_size) != 0) {
            snprintf(err, errlen,
                     "cannot allocate %zu certificate cache "
                     "entries",
                     c->cert_cache_size);
            return -1;
        }
    } else if (c->binding != MDM_BIND_OFF) {
        snprintf(err, errlen,
                 "certificate binding needs an identity: set "
                 "binding to off when identity is \"none\"");
        return -1;
    }
    if (c->get_token_file &&
        mdm_read_file(c->get_token_file, &c->get_token, MDM_MAX_CONF_FILE, err,
                      errlen) != 0) {
        return -1;
    }
    if (c->rts_wifi_file &&
        mdm_read_file(c->rts_wifi_file, &c->rts_wifi, MDM_MAX_CONF_FILE, err,
                      errlen) != 0) {
        return -1;
    }
    if (c->rts_mdm_file && mdm_read_file(c->rts_mdm_file, &c->rts_mdm,
                                         MDM_MAX_CONF_FILE, err, errlen) != 0) {
        return -1;
    }
    if (asprintf(&c->events_key, "%sevents", c->prefix) < 0) {
        c->events_key = NULL;
        return -1;
    }
    if (asprintf(&c->expiry_key, "%sexpiry", c->prefix) < 0) {
        c->expiry_key = NULL;
        return -1;
    }
    if (asprintf(&c->push_key, "%spush", c->prefix) < 0) {
        c->push_key = NULL;
        return -1;
    }
    snprintf(c->events_maxlen_s, sizeof(c->events_maxlen_s), "%ld",
             c->events_maxlen);
    snprintf(c->push_maxlen_s, sizeof(c->push_maxlen_s), "%ld", c->push_maxlen);
    snprintf(c->results_ttl_s, sizeof(c->results_ttl_s), "%ld", c->results_ttl);
    if (mdm_enroll_conf_finish(c, err, errlen) != 0) {
        return -1;
    }
    (void) mdm_script(0);
    c->finished = 1;
    return 0;
}

int
mdm_conf_admin_key_ok(const mdm_conf_t *c, const char *key, size_t len)
{
    size_t klen, i;
    unsigned char d = 0;

    if (c->admin_key == NULL) {
        return 1;
    }
    klen = strlen(c->admin_key);
    if (key == NULL) {
        key = "";
        len = 0;
    }
    /* compare over the configured key's length whatever was sent */
    for (i = 0; i < klen; i++) {
        d |= (unsigned char) c->admin_key[i] ^
             (unsigned char) (i < len ? key[i] : 0);
    }
    return d == 0 && len == klen;
}

void
mdm_conf_identity_stats(const mdm_conf_t *c, mdm_identity_stats_t *st)
{
    st->cache_hits = 0;
    st->cache_misses = 0;
    st->direct = 0;
    if (c == NULL || c->verifier == NULL) {
        return;
    }
    mdm_verifier_stats(c->verifier, &st->cache_hits, &st->cache_misses, NULL);
    st->direct = mdm_verifier_direct(c->verifier);
}
