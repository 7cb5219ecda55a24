/*
 * Unit tests for core/mdm_b64.c: the strict, whitespace-tolerant and
 * lenient (SCEP) modes of mdm_b64_decode(), against fixed cases, a slow
 * model of the rules in mdm_b64.h on random short texts, round trips of
 * EVP_EncodeBlock() output, and mdm_scep_b64_decode() (whose documented
 * behaviour the lenient mode must keep).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "mdm_b64.h"
#include "mdm_scep.h"

#define WS      MDM_B64_WS
#define LENIENT MDM_B64_LENIENT

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/** in (len bytes) decodes under flags to want (wantlen bytes). */
static void
ok_n(const char *in, size_t len, unsigned flags, const char *want,
     size_t wantlen)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    int rc = mdm_b64_decode(in, len, flags, &out, &outlen);

    if (rc != 0) {
        fail_msg("\"%.*s\" (flags %u) refused: %d", (int) len, in, flags, rc);
    }
    assert_non_null(out);
    assert_int_equal(outlen, wantlen);
    assert_memory_equal(out, want, wantlen);
    free(out);
}

static void
ok(const char *in, unsigned flags, const char *want)
{
    ok_n(in, strlen(in), flags, want, strlen(want));
}

/** in (len bytes) is refused under flags, nothing handed out. */
static void
bad_n(const char *in, size_t len, unsigned flags)
{
    unsigned char *out = (unsigned char *) "x";
    size_t outlen = 7;
    int rc = mdm_b64_decode(in, len, flags, &out, &outlen);

    if (rc != MDM_B64_BAD) {
        fail_msg("\"%.*s\" (flags %u): %d, refusal expected", (int) len, in,
                 flags, rc);
    }
    assert_null(out);
    assert_int_equal(outlen, 0);
}

static void
bad(const char *in, unsigned flags)
{
    bad_n(in, strlen(in), flags);
}

static int
hexval(char c)
{
    const char *h = "0123456789abcdef", *p;

    if (c >= 'A' && c <= 'F') {
        c = (char) (c - 'A' + 'a');
    }
    p = c ? strchr(h, c) : NULL;
    return p ? (int) (p - h) : -1;
}

/**
 * The rules of mdm_b64.h written out the slow way, independently of the
 * decoder: -1 when refused, else 0 with the bytes in out (room for len).
 */
static int
model(const char *in, size_t len, unsigned flags, unsigned char *out,
      size_t *outlen)
{
    size_t i, n = 0, pad = 0, o = 0;
    unsigned long acc = 0;
    int bits = 0, v, hi, lo;
    const char *p;
    char c;

    for (i = 0; i < len; i++) {
        c = in[i];
        if ((flags & LENIENT) && c == '%') {
            if (i + 2 >= len || (hi = hexval(in[i + 1])) < 0 ||
                (lo = hexval(in[i + 2])) < 0) {
                return -1;
            }
            c = (char) (hi * 16 + lo);
            i += 2;
        }
        v = -1;
        p = c ? strchr(std_alphabet, c) : NULL;
        if (p != NULL) {
            v = (int) (p - std_alphabet);
        } else if (c == '=') {
            if (++pad > 2) {
                return -1;
            }
            continue;
        } else if (flags & LENIENT) {
            if (c == '-' || c == ' ') {
                v = 62;
            } else if (c == '_') {
                v = 63;
            } else if (c == '\r' || c == '\n' || c == '\t') {
                continue;
            }
        } else if ((flags & WS) &&
                   (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
            continue;
        }
        if (v < 0 || pad > 0) {
            return -1;
        }
        n++;
        acc = acc << 6 | (unsigned long) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }
    if (n == 0 || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0)) {
        return -1;
    }
    *outlen = o;
    return 0;
}

/** Base64 of d (EVP_EncodeBlock), malloc'd. */
static char *
encode(const unsigned char *d, size_t n)
{
    char *s = malloc(4 * ((n + 2) / 3) + 1);

    assert_non_null(s);
    assert_int_equal(EVP_EncodeBlock((unsigned char *) s, d, (int) n),
                     (int) (4 * ((n + 2) / 3)));
    return s;
}

/* ------------------------------------------------------------------ */
/* strict                                                              */

static void
test_strict(void **state)
{
    (void) state;
    ok("aGVsbG8gd29ybGQ=", 0, "hello world");
    ok("aGVsbG8gd29ybGQ", 0, "hello world"); /* padding may be missing */
    ok("QQ==", 0, "A");
    ok("QQ", 0, "A");
    ok("QUI=", 0, "AB");
    ok("QUJD", 0, "ABC");
    ok("+/8=", 0, "\xfb\xff");
    ok_n("AAAA", 4, 0, "\0\0\0", 3);
    /* non-zero bits after the last byte are ignored, as before */
    ok("QR==", 0, "A");

    bad("", 0);
    bad_n(NULL, 0, 0);
    bad_n("QUJD", 0, 0);
    /* the URL-safe alphabet and escapes are the lenient mode's */
    bad("-_8=", 0);
    bad("QUJ-", 0);
    bad("QUJ_", 0);
    bad("QUI%3D", 0);
    bad("%2B%2F8=", 0);
    /* trailing garbage: EVP_DecodeBlock() alone would drop the '-' */
    bad("QUJD-", 0);
    bad("QUJD-garbage", 0);
    bad("QUJD#", 0);
    bad("QUJD.", 0);
    bad("QUI=x", 0);
    bad("QUI=-", 0);
    /* a lone last character cannot encode a byte */
    bad("A", 0);
    bad("QUJDR", 0);
    bad("QUJDR===", 0);
    /* more than two '=' */
    bad("QQ===", 0);
    bad("QQ====", 0);
    bad("QUJD====", 0);
    /* '=' inside, or padding that does not complete the quantum */
    bad("QQ==QUJD", 0);
    bad("AA=A", 0);
    bad("AAAA=A", 0);
    bad("=QUJD", 0);
    bad("==", 0);
    bad("AAA==", 0);
    bad("QUJD=", 0);
    bad("Q=", 0);
    /* whitespace is the WS mode's; a NUL or a high byte never passes */
    bad(" QUJD", 0);
    bad("QU JD", 0);
    bad("QUJD\n", 0);
    bad("QUJD\r\n", 0);
    bad("QU\tJD", 0);
    bad_n("QU\0JD", 5, 0);
    bad("QU\x80JD", 0);
    bad("QU\xc3\xa9JD", 0);
}

/* ------------------------------------------------------------------ */
/* whitespace                                                          */

static void
test_ws(void **state)
{
    (void) state;
    ok("aGVs\r\nbG8g\nd29y\tbGQ=", WS, "hello world");
    ok(" aGVsbG8gd29ybGQ= ", WS, "hello world");
    ok("aGVsbG8gd29ybGQ=\r\n", WS, "hello world");
    ok("a G V s b G 8 g d 2 9 y b G Q", WS, "hello world");
    ok("QQ= =", WS, "A");
    ok("Q Q\t=\r=\n", WS, "A");
    ok("QUJD", WS, "ABC");

    bad("", WS);
    bad(" \t\r\n", WS);
    bad("   \n", WS);
    bad("QUJD\v", WS);
    bad("QUJD\f", WS);
    bad("QUJD-", WS);
    bad("QU_D", WS);
    bad("QUI%3D", WS);
    bad("QQ== x", WS);
    bad("QQ= = =", WS);
    bad("A \n", WS);
    bad("QQ==\nQUJD", WS);
}

/* ------------------------------------------------------------------ */
/* lenient (SCEP GET message)                                          */

static void
test_lenient(void **state)
{
    (void) state;
    ok("aGVsbG8gd29ybGQ=", LENIENT, "hello world");
    ok("aGVsbG8gd29ybGQ", LENIENT, "hello world"); /* padding optional */
    ok("aGVsbG8gd29ybGQ%3D", LENIENT, "hello world");
    ok("aGVs\r\nbG8g\nd29y\tbGQ=", LENIENT, "hello world");
    /* "+/8=" spelled every way a client or proxy spells it */
    ok("+/8=", LENIENT, "\xfb\xff");
    ok("%2B%2F8%3D", LENIENT, "\xfb\xff");
    ok("%2b%2f8%3d", LENIENT, "\xfb\xff");
    ok(" /8=", LENIENT, "\xfb\xff"); /* '+' form-decoded to a space */
    ok("%20/8", LENIENT, "\xfb\xff");
    ok("-_8", LENIENT, "\xfb\xff"); /* URL-safe alphabet */
    ok("-_8=", LENIENT, "\xfb\xff");
    ok("%2B/8", LENIENT, "\xfb\xff");
    ok("+_8", LENIENT, "\xfb\xff"); /* the alphabets mixed */
    ok("%51%55%4A%44", LENIENT, "ABC");
    ok("QUJD%0D%0A", LENIENT, "ABC"); /* escaped line break: skipped */
    ok("QQ%3D%3D", LENIENT, "A");
    ok("QQ=\r\n=", LENIENT, "A");
    ok("QUI", LENIENT, "AB");
    ok("QQ", LENIENT, "A");
    /* WS changes nothing here: a space stays a '+' */
    ok(" /8=", LENIENT | WS, "\xfb\xff");

    bad("", LENIENT);
    bad_n(NULL, 0, LENIENT);
    bad("a", LENIENT);          /* a lone last character */
    bad("aGVsbG8=x", LENIENT);  /* data after padding */
    bad("aGVsbG8= ", LENIENT);  /* a space is a '+', so data too */
    bad("aGVsbG8===", LENIENT); /* too much padding */
    bad("aG=", LENIENT);        /* padding that does not fit */
    bad("aGVs*G8=", LENIENT);   /* not base64 */
    bad("aGVs%2", LENIENT);     /* truncated escape */
    bad("aGVs%", LENIENT);
    bad("aGVs%zz", LENIENT);   /* bad escape */
    bad("aGVs%2z", LENIENT);   /* bad escape */
    bad("aGVs%252B", LENIENT); /* decoded once only */
    bad("aGVs%00", LENIENT);
    bad("aGVs%7F", LENIENT);
    bad_n("aGVs\0bG8=", 9, LENIENT); /* NUL */
    bad("\r\n\t", LENIENT);
    bad("%0D%0A", LENIENT);
    bad("QUJD\v", LENIENT);
}

/* ------------------------------------------------------------------ */
/* the rules, on random texts                                          */

static void
test_model(void **state)
{
    /* characters that matter to some mode, some twice to be frequent */
    static const char pool[] = "AQgw+/=-_% \t\r\n2BF3D0aZ9==#\x80";
    static const unsigned modes[] = {0, WS, LENIENT, LENIENT | WS};
    unsigned char want[64], *out, *sout;
    size_t wantlen, outlen, soutlen, len, i, m, accepted[4] = {0};
    unsigned long seed = 12345;
    char in[32];
    int rc, mrc, src;
    long k;

    (void) state;
    for (k = 0; k < 300000; k++) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        len = (size_t) (seed >> 33) % 17;
        for (i = 0; i < len; i++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            in[i] = pool[(seed >> 33) % (sizeof(pool) - 1)];
        }
        for (m = 0; m < 4; m++) {
            out = NULL;
            rc = mdm_b64_decode(in, len, modes[m], &out, &outlen);
            mrc = model(in, len, modes[m], want, &wantlen);
            if ((rc == 0) != (mrc == 0)) {
                fail_msg("\"%.*s\" mode %u: decoder %d, model %d", (int) len,
                         in, modes[m], rc, mrc);
            }
            if (rc == 0) {
                accepted[m]++;
                assert_int_equal(outlen, wantlen);
                assert_memory_equal(out, want, wantlen);
            }
            /* the lenient mode is mdm_scep_b64_decode()'s contract */
            if (modes[m] == LENIENT) {
                sout = NULL;
                src = mdm_scep_b64_decode(in, len, &sout, &soutlen);
                if ((src == 0) != (rc == 0)) {
                    fail_msg("\"%.*s\": mdm_scep_b64_decode %d, lenient %d",
                             (int) len, in, src, rc);
                }
                if (src == 0) {
                    assert_int_equal(soutlen, outlen);
                    assert_memory_equal(sout, out, outlen);
                }
                free(sout);
            }
            free(out);
        }
    }
    /* the texts were not all refused in any mode */
    for (m = 0; m < 4; m++) {
        assert_true(accepted[m] > 1000);
    }
}

/* ------------------------------------------------------------------ */
/* round trips                                                         */

static void
test_round_trip(void **state)
{
    unsigned char data[700], *out;
    size_t n, i, o, outlen;
    char *s, *t;

    (void) state;
    for (i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char) (i * 131 + 7);
    }
    for (n = 1; n <= sizeof(data); n += n < 40 ? 1 : 37) {
        s = encode(data, n);
        t = malloc(strlen(s) * 3 + 8);
        assert_non_null(t);
        /* as encoded */
        ok_n(s, strlen(s), 0, (const char *) data, n);
        ok_n(s, strlen(s), WS, (const char *) data, n);
        ok_n(s, strlen(s), LENIENT, (const char *) data, n);
        /* wrapped at 64 columns with CRLF */
        for (i = o = 0; s[i]; i++) {
            if (i > 0 && i % 64 == 0) {
                t[o++] = '\r';
                t[o++] = '\n';
            }
            t[o++] = s[i];
        }
        ok_n(t, o, WS, (const char *) data, n);
        ok_n(t, o, LENIENT, (const char *) data, n);
        if (o > strlen(s)) {
            bad_n(t, o, 0);
        }
        /* URL-safe without padding, then form-escaped */
        for (i = o = 0; s[i] && s[i] != '='; i++) {
            t[o++] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
        }
        ok_n(t, o, LENIENT, (const char *) data, n);
        for (i = o = 0; s[i]; i++) {
            if (s[i] == '+' || s[i] == '/' || s[i] == '=') {
                o += (size_t) sprintf(t + o, "%%%02X", s[i]);
            } else {
                t[o++] = s[i];
            }
        }
        ok_n(t, o, LENIENT, (const char *) data, n);
        /* every proper prefix that decodes gives a prefix of the data */
        for (i = 1; i < strlen(s) && i < 12; i++) {
            out = NULL;
            if (mdm_b64_decode(s, i, 0, &out, &outlen) == 0) {
                assert_true(outlen <= n);
                assert_memory_equal(out, data, outlen);
            }
            free(out);
        }
        free(t);
        free(s);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict),     cmocka_unit_test(test_ws),
        cmocka_unit_test(test_lenient),    cmocka_unit_test(test_model),
        cmocka_unit_test(test_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
