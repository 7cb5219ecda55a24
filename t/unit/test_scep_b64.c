/*
 * The lenient base64 of the GET message (mdm_scep_b64.c): every spelling
 * a client or a proxy makes of it, and what is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "test_scep.h"

static void
b64_is(const char *in, const char *want)
{
    unsigned char *out = NULL;
    size_t len = 0;

    if (mdm_scep_b64_decode(in, strlen(in), &out, &len) != 0) {
        fail_msg("\"%s\" refused", in);
    }
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    free(out);
}

static void
b64_bad(const char *in, size_t len)
{
    unsigned char *out = (unsigned char *) "x";
    size_t olen = 7;

    assert_int_equal(mdm_scep_b64_decode(in, len, &out, &olen), -1);
    assert_null(out);
    assert_int_equal(olen, 0);
}

static void
test_b64(void **state)
{
    (void) state;
    b64_is("aGVsbG8gd29ybGQ=", "hello world");
    b64_is("aGVsbG8gd29ybGQ", "hello world"); /* padding optional */
    b64_is("aGVsbG8gd29ybGQ%3D", "hello world");
    b64_is("aGVs\r\nbG8g\nd29y\tbGQ=", "hello world");
    /* "+/8=" spelled every way a client or proxy spells it */
    b64_is("+/8=", "\xfb\xff");
    b64_is("%2B%2F8%3D", "\xfb\xff");
    b64_is("%2b%2f8%3d", "\xfb\xff");
    b64_is(" /8=", "\xfb\xff"); /* '+' form-decoded to a space */
    b64_is("-_8", "\xfb\xff");  /* URL-safe alphabet */
    b64_is("%2B/8", "\xfb\xff");
    b64_bad("", 0);
    b64_bad("a", 1);           /* a lone last character */
    b64_bad("aGVsbG8=x", 9);   /* data after padding */
    b64_bad("aGVsbG8===", 10); /* too much padding */
    b64_bad("aG=", 3);         /* padding that does not fit */
    b64_bad("aGVs*G8=", 8);    /* not base64 */
    b64_bad("aGVs%2", 6);      /* truncated escape */
    b64_bad("aGVs%zz", 7);     /* bad escape */
    b64_bad("aGVs%252B", 9);   /* decoded once only */
    b64_bad("aGVs\0bG8=", 9);  /* NUL */
    b64_bad("\r\n\t", 3);
}

int
scep_b64_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
    };

    return cmocka_run_group_tests_name("scep_b64", tests, NULL, NULL);
}
