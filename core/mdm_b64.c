/*
 * mdm_b64: base64 decoding (see mdm_b64.h). The text is checked, and
 * rewritten only when it has to be, then OpenSSL decodes it.
 */
#include "mdm_b64.h"
#include "mdm_text.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

enum { B64_BAD = 0, B64_DIGIT, B64_MAPPED, B64_PAD, B64_SKIP };

/* The standard alphabet as a bit set of the ASCII codes 0-127: one test
 * per character instead of five comparisons (see the figures below). */
#define B64_RANGE(lo, hi) ((((uint64_t) 1 << ((hi) - (lo) + 1)) - 1) << (lo))
static const uint64_t b64_std[2] = {
    (uint64_t) 1 << '+' | (uint64_t) 1 << '/' | B64_RANGE('0', '9'),
    B64_RANGE('A' - 64, 'Z' - 64) | B64_RANGE('a' - 64, 'z' - 64),
};

/** A character of the standard alphabet (A-Z a-z 0-9 + /). */
static inline int
b64_is_std(unsigned char c)
{
    return c < 128 && (b64_std[c >> 6] >> (c & 63) & 1);
}

/* The same as a byte table, for the runs of digits that are most of the
 * text: one load and one test a byte (GNU range designators). */
static const unsigned char b64_std_tab[256] = {
    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['0' ... '9'] = 1,
    ['+'] = 1,         ['/'] = 1,
};

/** The class of *c under flags; a mapped character is rewritten in *c. */
static int
b64_class(unsigned char *c, unsigned flags)
{
    unsigned char x = *c;

    if (b64_is_std(x)) {
        return B64_DIGIT;
    }
    if (x == '=') {
        return B64_PAD;
    }
    if (flags & MDM_B64_LENIENT) {
        switch (x) {
        case '-':
        case ' ': /* a '+' that went through form decoding */
            *c = '+';
            return B64_MAPPED;
        case '_':
            *c = '/';
            return B64_MAPPED;
        case '\r':
        case '\n':
        case '\t':
            return B64_SKIP;
        }
        return B64_BAD;
    }
    if ((flags & MDM_B64_WS) &&
        (x == ' ' || x == '\t' || x == '\r' || x == '\n')) {
        return B64_SKIP;
    }
    return B64_BAD;
}

/** in[0..n) in a new buffer with room for len + 3 (free()), or NULL. */
static char *
b64_copy(const char *in, size_t n, size_t len)
{
    char *cp = malloc(len + 3);

    if (cp != NULL) {
        memcpy(cp, in, n);
    }
    return cp;
}

/**
 * Check in under flags: on success returns 0 with *ndigits base64 digits
 * and *npad '=' in it. When in is not exactly those digits (standard
 * alphabet) then the padding, *norm receives the digits in the standard
 * alphabet, malloc'd with room for 3 more (the caller frees it);
 * otherwise *norm stays NULL. -1 when in is refused, -2 out of memory
 * (*norm NULL in both cases).
 */
static int
b64_scan(const char *in, size_t len, unsigned flags, char **norm,
         size_t *ndigits, size_t *npad)
{
    size_t i = 0, run, n = 0, pad = 0;
    int hi, lo, cls;
    unsigned char c;
    char *cp = NULL;

    for (;;) {
        /* a run of digits: most of the text, checked one test a byte */
        for (run = 0; i + run < len && b64_std_tab[(unsigned char) in[i + run]];
             run++) {
        }
        if (run > 0) {
            if (pad > 0) {
                goto bad; /* data after the padding */
            }
            if (cp != NULL) {
                memcpy(cp + n, in + i, run);
            }
            n += run;
            i += run;
        }
        if (i == len) {
            break;
        }
        /* one other character */
        c = (unsigned char) in[i++];
        /* decoded once only: %25 is not a way to spell another escape */
        if (c == '%' && (flags & MDM_B64_LENIENT)) {
            if (len - i < 2 || (hi = mdm_hexval((unsigned char) in[i])) < 0 ||
                (lo = mdm_hexval((unsigned char) in[i + 1])) < 0) {
                goto bad;
            }
            c = (unsigned char) (hi << 4 | lo);
            i += 2;
            if (cp == NULL && (cp = b64_copy(in, n, len)) == NULL) {
                return -2;
            }
        }
        cls = b64_class(&c, flags);
        if (cls == B64_PAD) {
            if (++pad > 2) {
                goto bad;
            }
            continue;
        }
        /* nothing but skipped whitespace after the padding */
        if (cls == B64_BAD || (cls != B64_SKIP && pad > 0)) {
            goto bad;
        }
        /* skipped, mapped or escaped: EVP_DecodeBlock() cannot have in as
         * it is; so far in[0..n) were the digits */
        if (cp == NULL && (cp = b64_copy(in, n, len)) == NULL) {
            return -2;
        }
        if (cls != B64_SKIP) {
            cp[n++] = (char) c;
        }
    }
    /* a single character of a last quantum cannot encode a byte */
    if (n == 0 || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0)) {
        goto bad;
    }
    *ndigits = n;
    *npad = pad;
    *norm = cp;
    return 0;

bad:
    free(cp);
    return -1;
}

/*
 * Cost against the table decoder this replaces (mdm_identity.c until
 * issue 10), for an Mdm-Signature header of 3,120 characters (2,340
 * bytes of CMS), on the 2-core development machine (OpenSSL 3.0.19, gcc
 * -O2, x86-64). Time: the best of 7 runs of 100,000 calls, two rounds;
 * instructions: callgrind, per call, malloc and free included.
 *
 *                           table decoder         this function
 *   one line (as sent)      2.86-2.95 us, 82.2 k  2.48 us, 72.8 k
 *   wrapped at 76 columns   3.03-3.21 us, 83.2 k  3.12 us, 78.5 k
 *
 * EVP_DecodeBlock() is 28.9 k of the instructions, the check the rest.
 * A first version that tested each character with comparisons and
 * checked a wrapped text twice took 3.4 us and 6.0 us: hence the bit set
 * and the runs of digits. bench/core_bench, a whole Idle request with
 * Mdm-Signature, three runs each: 30.5-31.0 us before, 30.2-30.5 us
 * after.
 */
int
mdm_b64_decode(const char *in, size_t len, unsigned flags, unsigned char **out,
               size_t *outlen)
{
    size_t n, pad, need, total, full;
    const unsigned char *src;
    unsigned char *buf;
    char *norm = NULL;
    int k;

    *out = NULL;
    *outlen = 0;
    if (in == NULL || len == 0 || len > INT_MAX - 4) {
        return MDM_B64_BAD;
    }
    k = b64_scan(in, len, flags, &norm, &n, &pad);
    if (k != 0) {
        return k == -2 ? MDM_B64_NOMEM : MDM_B64_BAD;
    }
    need = (4 - n % 4) % 4; /* the '=' a complete last quantum has */
    if (norm == NULL && pad == need) {
        src = (const unsigned char *) in;
        total = len;
    } else {
        /* whitespace, escapes, the URL-safe alphabet or missing padding:
         * EVP_DecodeBlock() gets the digits and the padding alone */
        if (norm == NULL) {
            /* only the padding is missing: in[0..n) are the digits */
            norm = b64_copy(in, n, n);
            if (norm == NULL) {
                return MDM_B64_NOMEM;
            }
        }
        memset(norm + n, '=', need);
        src = (const unsigned char *) norm;
        total = n + need;
    }
    full = total / 4 * 3;
    buf = malloc(full);
    if (buf == NULL) {
        free(norm);
        return MDM_B64_NOMEM;
    }
    /* every quantum of src is complete: '=' decodes as zero bits and
     * counts in the result, which therefore is full */
    k = EVP_DecodeBlock(buf, src, (int) total);
    free(norm);
    if (k < 0 || (size_t) k != full) {
        free(buf);
        return MDM_B64_BAD;
    }
    *out = buf;
    *outlen = full - need;
    return 0;
}
