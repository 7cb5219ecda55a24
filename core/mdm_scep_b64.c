/*
 * Lenient base64 for the GET `message` parameter of a PKIOperation (and a
 * POST body that a client sent as base64 anyway): both alphabets, %XX
 * escapes, a '+' turned into a space, line breaks, optional padding.
 */
#include "mdm_scep_int.h"
#include "mdm_text.h"

#include <stdlib.h>

static int
b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

int
mdm_scep_b64_decode(const char *in, size_t len, unsigned char **out,
                    size_t *outlen)
{
    unsigned char *buf, c;
    unsigned acc = 0;
    size_t i, n = 0, pad = 0, o = 0;
    int bits = 0, v, hi, lo;

    *out = NULL;
    *outlen = 0;
    if (in == NULL || len == 0) {
        return -1;
    }
    buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];
        /* decoded once only: %25 is not a way to spell another escape */
        if (c == '%') {
            if (len - i < 3 ||
                (hi = mdm_hexval((unsigned char) in[i + 1])) < 0 ||
                (lo = mdm_hexval((unsigned char) in[i + 2])) < 0) {
                goto bad;
            }
            c = (unsigned char) (hi << 4 | lo);
            i += 2;
        }
        if (c == '\r' || c == '\n' || c == '\t') {
            continue;
        }
        /* a '+' that went through form decoding */
        if (c == ' ') {
            c = '+';
        }
        if (c == '=') {
            if (++pad > 2) {
                goto bad;
            }
            continue;
        }
        v = b64_digit(c);
        if (v < 0 || pad > 0) {
            goto bad;
        }
        acc = ((acc << 6) | (unsigned) v) & 0xfff;
        bits += 6;
        n++;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char) (acc >> bits);
        }
    }
    if (n == 0 || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0)) {
        goto bad;
    }
    *out = buf;
    *outlen = o;
    return 0;
bad:
    free(buf);
    return -1;
}
