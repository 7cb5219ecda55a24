/*
 * Enrollment profile: the syntax of option values (text, URLs, booleans,
 * identifiers, push topics, challenges, the SCEP subject). No state, no
 * file: a leaf under the other mdm_profile_*.c files.
 */
#include "mdm_profile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>

/** Printable text: no control characters, at most max bytes. */
int
mdm_profile_text_ok(const char *v, size_t max)
{
    size_t n = strlen(v);
    const unsigned char *s = (const unsigned char *) v;

    if (n > max) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }
    return 1;
}

int
mdm_profile_parse_bool(const char *v, int *out)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 ||
        strcmp(v, "yes") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
    } else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 ||
               strcmp(v, "no") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
    } else {
        return -1;
    }
    return 0;
}

/**
 * An absolute http(s) URL with a host, no credentials, no spaces or
 * control characters. https_only refuses http://.
 */
const char *
mdm_profile_url_problem(const char *v, int https_only)
{
    const char *h;
    size_t n;

    if (!mdm_profile_text_ok(v, MDM_PROFILE_MAX_URL) ||
        strpbrk(v, " \"<>\\^`{|}")) {
        return "at most 2048 printable characters, no spaces";
    }
    if (strncasecmp(v, "https://", 8) == 0) {
        h = v + 8;
    } else if (!https_only && strncasecmp(v, "http://", 7) == 0) {
        h = v + 7;
    } else {
        return https_only ? "expected an https:// URL"
                          : "expected an http:// or https:// URL";
    }
    n = strcspn(h, "/?#");
    if (memchr(h, '@', n) != NULL) {
        return "credentials in a URL are not accepted";
    }
    if (n == 0 || h[0] == ':') {
        return "no host in the URL";
    }
    return NULL;
}

int
mdm_profile_identifier_ok(const char *v)
{
    size_t n = strlen(v);

    return n > 0 && n <= 200 &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-_") == n &&
           v[0] != '.' && v[n - 1] != '.';
}

int
mdm_profile_topic_ok(const char *t)
{
    return strncmp(t, "com.apple.mgmt.", 15) == 0 && t[15] != '\0' &&
           mdm_profile_text_ok(t, 255) && strchr(t, ' ') == NULL;
}

int
mdm_profile_challenge_ok(const char *c)
{
    return mdm_profile_text_ok(c, MDM_PROFILE_MAX_CHALLENGE);
}

/* ---- SCEP Subject: "/C=US/O=Example/CN=Device" ---- */

static int
subject_key(const char *k, char *out, size_t outlen)
{
    static const char *const shorts[] = {"C", "L", "ST", "O", "OU", "CN"};
    ASN1_OBJECT *o;
    size_t i;
    int nid, n;

    for (i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        if (strcmp(k, shorts[i]) == 0) {
            snprintf(out, outlen, "%s", k);
            return 0;
        }
    }
    /* dotted OIDs as given; other names OpenSSL knows become dotted */
    o = OBJ_txt2obj(k, 1);
    if (o == NULL) {
        nid = OBJ_txt2nid(k);
        o = nid == NID_undef ? NULL : OBJ_nid2obj(nid);
        if (o == NULL) {
            ERR_clear_error();
            return -1;
        }
        o = OBJ_dup(o);
    }
    n = o == NULL ? 0 : OBJ_obj2txt(out, (int) outlen, o, 1);
    if (n <= 0 || (size_t) n >= outlen) {
        ASN1_OBJECT_free(o);
        ERR_clear_error();
        return -1;
    }
    ASN1_OBJECT_free(o);
    return 0;
}

plist_t
mdm_profile_rdn_new(const char *key, const char *value)
{
    plist_t pair = plist_new_array(), rdn = plist_new_array();

    plist_array_append_item(pair, plist_new_string(key));
    plist_array_append_item(pair, plist_new_string(value));
    plist_array_append_item(rdn, pair);
    return rdn;
}

plist_t
mdm_profile_parse_subject(const char *v, char *why, size_t whylen)
{
    char key[80], val[MDM_PROFILE_MAX_TEXT + 1], oid[80];
    const char *s = v;
    size_t k, n;
    plist_t arr;

    if (!mdm_profile_text_ok(v, MDM_PROFILE_MAX_TEXT) || v[0] != '/') {
        snprintf(why, whylen, "expected /KEY=value/KEY=value...");
        return NULL;
    }
    arr = plist_new_array();
    s++;
    while (*s) {
        k = strcspn(s, "=/");
        if (s[k] != '=' || k == 0 || k >= sizeof(key)) {
            snprintf(why, whylen, "expected KEY=value at \"%.40s\"", s);
            plist_free(arr);
            return NULL;
        }
        memcpy(key, s, k);
        key[k] = '\0';
        s += k + 1;
        for (n = 0; *s && *s != '/'; s++) {
            if (*s == '\\' && (s[1] == '/' || s[1] == '\\')) {
                s++;
            }
            val[n++] = *s;
        }
        val[n] = '\0';
        if (*s == '/') {
            s++;
        }
        if (n == 0) {
            snprintf(why, whylen, "empty value for %s", key);
            plist_free(arr);
            return NULL;
        }
        if (subject_key(key, oid, sizeof(oid)) != 0) {
            snprintf(why, whylen,
                     "unknown attribute \"%s\" (C, L, ST, O, OU, CN, "
                     "another OpenSSL name or a dotted OID)",
                     key);
            plist_free(arr);
            return NULL;
        }
        plist_array_append_item(arr, mdm_profile_rdn_new(oid, val));
    }
    if (plist_array_get_size(arr) == 0) {
        snprintf(why, whylen, "no attribute");
        plist_free(arr);
        return NULL;
    }
    return arr;
}
