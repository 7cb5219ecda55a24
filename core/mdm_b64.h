/*
 * mdm_b64: the one base64 decoder of libmdm, OpenSSL's EVP_DecodeBlock()
 * behind a strict check of the text (EVP_DecodeBlock() alone would skip
 * leading whitespace, drop trailing whitespace and '-', and take '=' in
 * the middle for 'A'). Depends on OpenSSL only: the fuzz targets build it
 * on its own.
 */
#ifndef MDM_B64_H
#define MDM_B64_H

#include <stddef.h>

/* flags of mdm_b64_decode() */
#define MDM_B64_WS      0x1u /* skip SP, HTAB, CR, LF anywhere */
#define MDM_B64_LENIENT 0x2u /* the SCEP GET message, see below */

/* mdm_b64_decode() results other than 0 */
#define MDM_B64_BAD   (-1) /* not base64 of the kind flags allow */
#define MDM_B64_NOMEM (-2)

/**
 * Decode in[0..len). Without flags: the standard alphabet (A-Z a-z 0-9 +
 * /), at most two '=' and only at the end, where they must complete the
 * last quantum; missing padding is accepted; a last quantum of one
 * character, an empty text and anything else are refused.
 *
 * MDM_B64_WS: SP, HTAB, CR and LF are skipped wherever they are (also
 * after the padding).
 *
 * MDM_B64_LENIENT (the SCEP GET `message` parameter, as
 * mdm_scep_b64_decode() documents it): %XX escapes are decoded once (a
 * %25 does not start another escape; a bad or truncated escape is
 * refused), then the standard and the URL-safe alphabet ('-' for '+',
 * '_' for '/') are both taken, a space is a '+' that a form decoder
 * turned into one, CR, LF and HTAB are skipped; padding is optional.
 * MDM_B64_WS is ignored in this mode (a space is a '+').
 *
 * Returns 0 with *out malloc'd (the caller free()s it) and *outlen the
 * decoded length; MDM_B64_BAD or MDM_B64_NOMEM with *out NULL and
 * *outlen 0.
 */
int mdm_b64_decode(const char *in, size_t len, unsigned flags,
                   unsigned char **out, size_t *outlen);

#endif
