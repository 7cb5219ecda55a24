/*
 * Small text codecs shared by core files that are also built on their own
 * (the fuzz targets compile mdm_identity.c alone): header-only.
 */
#ifndef MDM_TEXT_H
#define MDM_TEXT_H

#include <stddef.h>

/** Value of a hex digit, or -1. */
static inline int
mdm_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/** Lowercase hex of in; out has room for 2 * len + 1. */
static inline void
mdm_tohex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

/**
 * Percent-decoding into out (room for len + 1; NUL-terminated). '+' stays
 * '+'. Returns -1 on a bad escape, or on %00 unless allow_nul.
 */
static inline int
mdm_pct_decode(const char *in, size_t len, unsigned char *out, size_t *outlen,
               int allow_nul)
{
    size_t i, o = 0;
    int hi, lo;

    for (i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = (unsigned char) in[i];
            continue;
        }
        if (len - i < 3 || (hi = mdm_hexval((unsigned char) in[i + 1])) < 0 ||
            (lo = mdm_hexval((unsigned char) in[i + 2])) < 0 ||
            (!allow_nul && hi == 0 && lo == 0)) {
            return -1;
        }
        out[o++] = (unsigned char) (hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    *outlen = o;
    return 0;
}

#endif
