/*
 * mdm_b64: base64 decoding (see mdm_b64.h). The text is checked, and
 * rewritten only when it has to be, then OpenSSL decodes it.
 */
#include "mdm_b64.h"
#include "mdm_text.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

enum { B64_BAD = 0, B64_DIGIT, B64_MAPPED, B64_PAD, B64_SKIP };

/** The class of *c under flags; a mapped character is rewritten in *c. */
static int
b64_class(unsigned char *c, unsigned flags)
{
    unsigned char x = *c;

    if ((x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') ||
        (x >= '0' && x <= '9') || x == '+' || x == '/') {
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
    size_t i, n = 0, pad = 0;
    int hi, lo, cls;
    unsigned char c;
    char *cp = NULL;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];
        /* decoded once only: %25 is not a way to spell another escape */
        if (c == '%' && (flags & MDM_B64_LENIENT)) {
            if (len - i < 3 ||
                (hi = mdm_hexval((unsigned char) in[i + 1])) < 0 ||
                (lo = mdm_hexval((unsigned char) in[i + 2])) < 0) {
                goto bad;
            }
            c = (unsigned char) (hi << 4 | lo);
            i += 2;
            if (cp == NULL && (cp = b64_copy(in, n, len)) == NULL) {
                return -2;
            }
        }
        cls = b64_class(&c, flags);
        if (cls == B64_DIGIT && pad == 0) {
            if (cp != NULL) {
                cp[n] = (char) c;
            }
            n++;
            continue;
        }
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
        /* skipped or mapped: EVP_DecodeBlock() cannot have in as it is;
         * so far in[0..n) were the digits */
        if (cp == NULL && (cp = b64_copy(in, n, len)) == NULL) {
            return -2;
        }
        if (cls == B64_MAPPED) {
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
 * -O2, x86-64). Time: the best of 7 runs of 100,000 calls; instructions:
 * callgrind, per call, malloc and free included.
 *
 *                           table decoder        this function
 *   one line (as sent)      2.9-3.0 us, 82.2 k   3.4-3.5 us, 84.4 k
 *   wrapped at 76 columns   3.1 us, 83.2 k       3.6 us, 90.5 k
 *
 * About 0.5 us more per device request, of ~38 us the core spends on
 * one (README, Benchmarks): the check costs about 55 k instructions,
 * EVP_DecodeBlock() 29 k. Kept, for one decoder instead of two.
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
