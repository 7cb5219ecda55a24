/* Small helpers shared by the core. */
#include "mdm_internal.h"
#include "mdm_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <plist/plist.h>

int
mdm_buf_set(mdm_buf_t *b, const void *p, size_t len)
{
    unsigned char *n = malloc(len ? len : 1);

    if (n == NULL) {
        return -1;
    }
    if (len) {
        memcpy(n, p, len);
    }
    free(b->ptr);
    b->ptr = n;
    b->len = len;
    return 0;
}

void
mdm_buf_free(mdm_buf_t *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
}

int
mdm_read_file(const char *path, mdm_buf_t *out, size_t max, char *err,
              size_t errlen)
{
    FILE *f;
    struct stat st;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t) st.st_size > max) {
        snprintf(err, errlen,
                 "\"%s\" is not a regular file of at most %zu "
                 "bytes",
                 path, max);
        fclose(f);
        return -1;
    }
    mdm_buf_free(out);
    out->ptr = malloc((size_t) st.st_size + 1);
    if (out->ptr == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory reading \"%s\"", path);
        return -1;
    }
    n = fread(out->ptr, 1, (size_t) st.st_size, f);
    fclose(f);
    if (n != (size_t) st.st_size) {
        snprintf(err, errlen, "short read on \"%s\"", path);
        mdm_buf_free(out);
        return -1;
    }
    out->ptr[n] = '\0';
    out->len = n;
    return 0;
}

char *
mdm_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *
mdm_strdup(const char *s)
{
    return s ? mdm_strndup(s, strlen(s)) : NULL;
}

void
mdm_hex(const unsigned char *in, size_t len, char *out)
{
    mdm_tohex(in, len, out);
}

char *
mdm_b64(const unsigned char *in, size_t len)
{
    size_t olen = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(olen);

    if (out != NULL) {
        EVP_EncodeBlock((unsigned char *) out, in, (int) len);
    }
    return out;
}

int
mdm_uuid(char out[37])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return -1;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37,
             "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
             "%02X%02X%02X%02X%02X%02X",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

int
mdm_ctype_prefix(const char *v, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    if (v == NULL || len < n || strncasecmp(v, prefix, n) != 0) {
        return 0;
    }
    /* "...-mdm" must not match "...-mdm-checkin" */
    return len == n || v[n] == ';' || v[n] == ' ' || v[n] == '\t';
}

int
mdm_plist_xml(void *node, mdm_buf_t *out)
{
    char *xml = NULL;
    uint32_t len = 0;

    plist_to_xml((plist_t) node, &xml, &len);
    if (xml == NULL) {
        return -1;
    }
    free(out->ptr);
    out->ptr = (unsigned char *) xml;
    out->len = len;
    return 0;
}

int
mdm_set_str(char **dst, const char *v)
{
    char *n = mdm_strdup(v);

    if (n == NULL) {
        return -1;
    }
    free(*dst);
    *dst = n;
    return 0;
}

int
mdm_parse_long(const char *v, long min, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < min || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}
