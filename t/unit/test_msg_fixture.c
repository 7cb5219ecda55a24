/* See test_msg_fixture.h. */
#include "test_msg_fixture.h"

unsigned char *
load(const char *rel, size_t *len)
{
    const char *dir = getenv("MDM_SAMPLES");
    char path[1024];
    unsigned char *buf;
    long n;
    FILE *f;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t) n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;
    return buf;
}

mdm_msg_rc_t
parse_file(const char *rel, mdm_expect_t expect, mdm_msg_t *m)
{
    size_t len;
    unsigned char *buf = load(rel, &len);
    const char *why = NULL;
    mdm_msg_rc_t rc = mdm_msg_parse(buf, len, expect, m, &why);

    if (rc != MDM_MSG_OK) {
        print_message("%s: rc %d: %s\n", rel, rc, why ? why : "?");
    }
    free(buf);
    return rc;
}

mdm_msg_rc_t
parse_str(const char *s, mdm_expect_t expect, mdm_msg_t *m, const char **why)
{
    return mdm_msg_parse((const unsigned char *) s, strlen(s), expect, m, why);
}

/* A message from key, value-element pairs; ends with NULL. malloc'd. */
char *
xmsg(const char *k, ...)
{
    va_list ap;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    const char *v;

    assert_non_null(s);
    len += (size_t) snprintf(s, cap,
                             "<?xml version=\"1.0\"?>\n<plist "
                             "version=\"1.0\"><dict>");
    va_start(ap, k);
    for (; k != NULL; k = va_arg(ap, const char *)) {
        v = va_arg(ap, const char *);
        while (len + strlen(k) + strlen(v) + 64 > cap) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
        len += (size_t) snprintf(s + len, cap - len, "<key>%s</key>%s", k, v);
    }
    va_end(ap);
    snprintf(s + len, cap - len, "</dict></plist>\n");
    return s;
}

mdm_msg_rc_t
parse_xmsg(char *xml, mdm_expect_t expect, mdm_msg_t *m)
{
    const char *why = NULL;
    mdm_msg_rc_t rc = parse_str(xml, expect, m, &why);

    free(xml);
    return rc;
}

void
assert_cleared(const mdm_msg_t *m)
{
    static const mdm_msg_t zero;

    assert_memory_equal(m, &zero, sizeof(zero));
}

/* ------------------------------------------------------------------ */
/* Real check-ins                                                     */
