/* See mdm_der.h. Only definite-length DER with one-byte tags. */
#include "mdm_der.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char tag;
    const unsigned char *tlv; /* start of the element */
    const unsigned char *val; /* start of its contents */
    size_t len;               /* contents length */
    size_t tlv_len;           /* whole element */
} tlv_t;

static int
tlv_read(const unsigned char *p, const unsigned char *end, tlv_t *t)
{
    size_t n, i, len;

    if (end - p < 2 || (p[0] & 0x1f) == 0x1f) {
        return -1;
    }
    t->tag = p[0];
    t->tlv = p;
    if (p[1] < 0x80) {
        len = p[1];
        n = 2;
    } else {
        i = p[1] & 0x7f;
        /* 0x80 (indefinite, BER) and absurd sizes are not for us */
        if (i == 0 || i > 4 || (size_t) (end - p) < 2 + i) {
            return -1;
        }
        len = 0;
        for (n = 0; n < i; n++) {
            len = len << 8 | p[2 + n];
        }
        n = 2 + i;
    }
    if (len > (size_t) (end - p) - n) {
        return -1;
    }
    t->val = p + n;
    t->len = len;
    t->tlv_len = n + len;
    return 0;
}

/* tlv_read(), and the length in its shortest form (DER, X.690 10.1). */
static int
der_read(const unsigned char *p, const unsigned char *end, tlv_t *t)
{
    if (tlv_read(p, end, t) != 0) {
        return -1;
    }
    if (p[1] & 0x80) {
        size_t i = p[1] & 0x7f;

        if (t->len < 0x80 || p[2] == 0 || (i < 4 && t->len >> (8 * i)) != 0) {
            return -1;
        }
    }
    return 0;
}

static size_t
hdr_len(size_t len)
{
    return len < 0x80        ? 2
           : len < 0x100     ? 3
           : len < 0x10000   ? 4
           : len < 0x1000000 ? 5
                             : 6;
}

static unsigned char *
hdr_put(unsigned char *o, unsigned char tag, size_t len)
{
    size_t n = hdr_len(len) - 2, i;

    *o++ = tag;
    if (n == 0) {
        *o++ = (unsigned char) len;
        return o;
    }
    *o++ = (unsigned char) (0x80 | n);
    for (i = n; i > 0; i--) {
        *o++ = (unsigned char) (len >> (8 * (i - 1)));
    }
    return o;
}

int
mdm_cms_split(const unsigned char *in, size_t len, mdm_cms_split_t *out)
{
    static const unsigned char oid_signed[] = {
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
    tlv_t ci, oid, exp, sd, el, certs = {0};
    const unsigned char *p, *end;
    size_t sd_len, exp_len, ci_len, i;
    unsigned char *o;

    memset(out, 0, sizeof(*out));
    if (tlv_read(in, in + len, &ci) != 0 || ci.tag != 0x30 ||
        ci.tlv_len != len) {
        return -1;
    }
    p = ci.val;
    end = ci.val + ci.len;
    if (tlv_read(p, end, &oid) != 0 || oid.tlv_len != sizeof(oid_signed) ||
        memcmp(oid.tlv, oid_signed, sizeof(oid_signed)) != 0) {
        return -1;
    }
    p += oid.tlv_len;
    if (tlv_read(p, end, &exp) != 0 || exp.tag != 0xa0 ||
        exp.val + exp.len != end) {
        return -1;
    }
    if (tlv_read(exp.val, exp.val + exp.len, &sd) != 0 || sd.tag != 0x30 ||
        sd.tlv_len != exp.len) {
        return -1;
    }
    /* SignedData: version, digestAlgorithms, encapContentInfo,
     * [0] certificates, [1] crls, signerInfos; the set must be exactly
     * where the full decoder expects it */
    for (i = 0, p = sd.val, end = sd.val + sd.len; p < end;
         p += el.tlv_len, i++) {
        if (tlv_read(p, end, &el) != 0) {
            return -1;
        }
        if (el.tag == 0xa0) {
            if (i != 3) {
                return -1;
            }
            certs = el;
        }
    }
    if (certs.tlv == NULL) {
        return -1;
    }
    for (p = certs.val, end = certs.val + certs.len; p < end; p += el.tlv_len) {
        if (tlv_read(p, end, &el) != 0 || el.tag != 0x30 ||
            out->ncerts == MDM_CMS_MAX_CERTS) {
            return -1;
        }
        out->cert[out->ncerts] = el.tlv;
        out->cert_len[out->ncerts] = el.tlv_len;
        out->ncerts++;
    }
    if (out->ncerts == 0) {
        return -1;
    }

    sd_len = sd.len - certs.tlv_len;
    exp_len = hdr_len(sd_len) + sd_len;
    ci_len = oid.tlv_len + hdr_len(exp_len) + exp_len;
    out->stripped_len = hdr_len(ci_len) + ci_len;
    out->stripped = malloc(out->stripped_len);
    if (out->stripped == NULL) {
        out->ncerts = 0;
        return -1;
    }
    o = hdr_put(out->stripped, 0x30, ci_len);
    memcpy(o, oid.tlv, oid.tlv_len);
    o += oid.tlv_len;
    o = hdr_put(o, 0xa0, exp_len);
    o = hdr_put(o, 0x30, sd_len);
    memcpy(o, sd.val, (size_t) (certs.tlv - sd.val));
    o += certs.tlv - sd.val;
    memcpy(o, certs.tlv + certs.tlv_len,
           (size_t) (sd.val + sd.len - (certs.tlv + certs.tlv_len)));
    return 0;
}

int
mdm_cms_digests_ok(const unsigned char *in, size_t len)
{
    /* OID contents: sha1, then sha224, sha256, sha384, sha512 */
    static const unsigned char sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
    static const unsigned char sha2[] = {0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02};
    tlv_t ci, oid, exp, sd, ver, algs, alg, id;
    const unsigned char *p, *end;

    if (tlv_read(in, in + len, &ci) != 0 || ci.tag != 0x30 ||
        tlv_read(ci.val, ci.val + ci.len, &oid) != 0 || oid.tag != 0x06 ||
        tlv_read(oid.val + oid.len, ci.val + ci.len, &exp) != 0 ||
        exp.tag != 0xa0 || tlv_read(exp.val, exp.val + exp.len, &sd) != 0 ||
        sd.tag != 0x30 || tlv_read(sd.val, sd.val + sd.len, &ver) != 0 ||
        ver.tag != 0x02 ||
        tlv_read(ver.val + ver.len, sd.val + sd.len, &algs) != 0 ||
        algs.tag != 0x31) {
        return -1;
    }
    for (p = algs.val, end = algs.val + algs.len; p < end; p += alg.tlv_len) {
        if (tlv_read(p, end, &alg) != 0 || alg.tag != 0x30 ||
            tlv_read(alg.val, alg.val + alg.len, &id) != 0 || id.tag != 0x06) {
            return -1;
        }
        if (!(id.len == sizeof(sha1) && memcmp(id.val, sha1, id.len) == 0) &&
            !(id.len == sizeof(sha2) + 1 &&
              memcmp(id.val, sha2, sizeof(sha2)) == 0 &&
              id.val[sizeof(sha2)] >= 1 && id.val[sizeof(sha2)] <= 4)) {
            return 0;
        }
    }
    return 1;
}

/* An AlgorithmIdentifier whose parameters are absent or NULL: its OID. */
static int
alg_read(const tlv_t *alg, mdm_der_span_t *oid)
{
    const unsigned char *end = alg->val + alg->len;
    tlv_t id, par;

    if (alg->tag != 0x30 || der_read(alg->val, end, &id) != 0 ||
        id.tag != 0x06 || id.len == 0) {
        return -1;
    }
    if (id.val + id.len != end &&
        (der_read(id.val + id.len, end, &par) != 0 || par.tag != 0x05 ||
         par.len != 0 || par.val != end)) {
        return -1;
    }
    oid->ptr = id.val;
    oid->len = id.len;
    return 0;
}

/* The signed attributes: exactly one messageDigest and one contentType,
 * each with one value. */
static int
attrs_read(const tlv_t *set, mdm_cms_signed_t *out)
{
    /* 1.2.840.113549.1.9.3 contentType, .4 messageDigest */
    static const unsigned char pkcs9[] = {0x2a, 0x86, 0x48, 0x86,
                                          0xf7, 0x0d, 0x01, 0x09};
    const unsigned char *p = set->val, *end = set->val + set->len;
    tlv_t attr, oid, vals, v;
    int nct = 0, nmd = 0, nst = 0, ncap = 0;

    for (; p < end; p += attr.tlv_len) {
        if (der_read(p, end, &attr) != 0 || attr.tag != 0x30 ||
            der_read(attr.val, attr.val + attr.len, &oid) != 0 ||
            oid.tag != 0x06 ||
            der_read(oid.val + oid.len, attr.val + attr.len, &vals) != 0 ||
            vals.tag != 0x31 || vals.val + vals.len != attr.val + attr.len) {
            return -1;
        }
        /* contentType (3), messageDigest (4), signingTime (5) and
         * smimeCapabilities (15) only: another attribute may carry a
         * check of its own (ESS signing-certificate), which OpenSSL's CMS
         * path then does */
        if (oid.len != sizeof(pkcs9) + 1 ||
            memcmp(oid.val, pkcs9, sizeof(pkcs9)) != 0 ||
            (oid.val[sizeof(pkcs9)] != 3 && oid.val[sizeof(pkcs9)] != 4 &&
             oid.val[sizeof(pkcs9)] != 5 && oid.val[sizeof(pkcs9)] != 15)) {
            return -1;
        }
        if (der_read(vals.val, vals.val + vals.len, &v) != 0 ||
            v.tlv_len != vals.len) {
            return -1; /* not exactly one value */
        }
        /* as OpenSSL's attribute checks (RFC 5652 11): one signingTime,
         * a Time; one smimeCapabilities, a SEQUENCE */
        if (oid.val[sizeof(pkcs9)] == 5) {
            if ((v.tag != 0x17 && v.tag != 0x18) || nst++) {
                return -1;
            }
            continue;
        }
        if (oid.val[sizeof(pkcs9)] == 15) {
            if (v.tag != 0x30 || ncap++) {
                return -1;
            }
            continue;
        }
        if (oid.val[sizeof(pkcs9)] == 3) {
            if (v.tag != 0x06 || nct++) {
                return -1;
            }
            out->content_type.ptr = v.val;
            out->content_type.len = v.len;
        } else {
            if (v.tag != 0x04 || nmd++) {
                return -1;
            }
            out->message_digest.ptr = v.val;
            out->message_digest.len = v.len;
        }
    }
    return nct == 1 && nmd == 1 ? 0 : -1;
}

static int
signer_read(const tlv_t *si, mdm_cms_signed_t *out)
{
    const unsigned char *p = si->val, *end = si->val + si->len;
    tlv_t ver, sid, name, serial, dalg, attrs, salg, sig, rest;

    /* version 1: sid is issuerAndSerialNumber */
    if (der_read(p, end, &ver) != 0 || ver.tag != 0x02 || ver.len != 1 ||
        ver.val[0] != 1) {
        return -1;
    }
    p += ver.tlv_len;
    if (der_read(p, end, &sid) != 0 || sid.tag != 0x30 ||
        der_read(sid.val, sid.val + sid.len, &name) != 0 || name.tag != 0x30 ||
        der_read(name.val + name.len, sid.val + sid.len, &serial) != 0 ||
        serial.tag != 0x02 || serial.len == 0 ||
        serial.val + serial.len != sid.val + sid.len) {
        return -1;
    }
    out->issuer.ptr = name.tlv;
    out->issuer.len = name.tlv_len;
    out->serial.ptr = serial.val;
    out->serial.len = serial.len;
    p += sid.tlv_len;
    if (der_read(p, end, &dalg) != 0 || alg_read(&dalg, &out->digest_alg)) {
        return -1;
    }
    p += dalg.tlv_len;
    if (der_read(p, end, &attrs) != 0 || attrs.tag != 0xa0 ||
        attrs_read(&attrs, out) != 0) {
        return -1;
    }
    out->signed_attrs.ptr = attrs.tlv;
    out->signed_attrs.len = attrs.tlv_len;
    p += attrs.tlv_len;
    if (der_read(p, end, &salg) != 0 || alg_read(&salg, &out->sig_alg)) {
        return -1;
    }
    p += salg.tlv_len;
    if (der_read(p, end, &sig) != 0 || sig.tag != 0x04 || sig.len == 0) {
        return -1;
    }
    out->signature.ptr = sig.val;
    out->signature.len = sig.len;
    p += sig.tlv_len;
    /* unsignedAttrs: OpenSSL checks them too; the CMS path decides */
    (void) rest;
    return p == end ? 0 : -1;
}

int
mdm_cms_parse_signed(const unsigned char *in, size_t len, mdm_cms_signed_t *out)
{
    static const unsigned char oid_signed[] = {
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
    tlv_t ci, oid, exp, sd, ver, algs, eci, ect, certs, el, sis, si;
    const unsigned char *p, *end;

    memset(out, 0, sizeof(*out));
    if (der_read(in, in + len, &ci) != 0 || ci.tag != 0x30 ||
        ci.tlv_len != len || der_read(ci.val, ci.val + ci.len, &oid) != 0 ||
        oid.tlv_len != sizeof(oid_signed) ||
        memcmp(oid.tlv, oid_signed, sizeof(oid_signed)) != 0 ||
        der_read(oid.val + oid.len, ci.val + ci.len, &exp) != 0 ||
        exp.tag != 0xa0 || exp.val + exp.len != ci.val + ci.len ||
        der_read(exp.val, exp.val + exp.len, &sd) != 0 || sd.tag != 0x30 ||
        sd.tlv_len != exp.len) {
        return -1;
    }
    p = sd.val;
    end = sd.val + sd.len;
    /* version, digestAlgorithms (checked by mdm_cms_digests_ok()) */
    if (der_read(p, end, &ver) != 0 || ver.tag != 0x02 ||
        der_read(p + ver.tlv_len, end, &algs) != 0 || algs.tag != 0x31) {
        return -1;
    }
    p += ver.tlv_len + algs.tlv_len;
    /* encapContentInfo: eContentType alone (detached) */
    if (der_read(p, end, &eci) != 0 || eci.tag != 0x30 ||
        der_read(eci.val, eci.val + eci.len, &ect) != 0 || ect.tag != 0x06 ||
        ect.tlv_len != eci.len) {
        return -1;
    }
    out->econtent_type.ptr = ect.val;
    out->econtent_type.len = ect.len;
    p += eci.tlv_len;
    if (der_read(p, end, &certs) != 0 || certs.tag != 0xa0) {
        return -1;
    }
    for (el.tlv_len = 0, p = certs.val; p < certs.val + certs.len;
         p += el.tlv_len) {
        if (der_read(p, certs.val + certs.len, &el) != 0 || el.tag != 0x30 ||
            out->ncerts == MDM_CMS_MAX_CERTS) {
            return -1;
        }
        out->cert[out->ncerts].ptr = el.tlv;
        out->cert[out->ncerts].len = el.tlv_len;
        out->ncerts++;
    }
    p = certs.val + certs.len;
    /* no crls [1]: signerInfos, with exactly one SignerInfo */
    if (out->ncerts == 0 || der_read(p, end, &sis) != 0 || sis.tag != 0x31 ||
        sis.val + sis.len != end ||
        der_read(sis.val, sis.val + sis.len, &si) != 0 || si.tag != 0x30 ||
        si.tlv_len != sis.len) {
        return -1;
    }
    return signer_read(&si, out);
}

int
mdm_cert_issuer_serial(const unsigned char *in, size_t len,
                       mdm_der_span_t *issuer, mdm_der_span_t *serial)
{
    tlv_t cert, tbs, el, alg, name;
    const unsigned char *p, *end;

    if (tlv_read(in, in + len, &cert) != 0 || cert.tag != 0x30 ||
        tlv_read(cert.val, cert.val + cert.len, &tbs) != 0 || tbs.tag != 0x30) {
        return -1;
    }
    p = tbs.val;
    end = tbs.val + tbs.len;
    if (tlv_read(p, end, &el) != 0) {
        return -1;
    }
    if (el.tag == 0xa0) { /* [0] version */
        p += el.tlv_len;
        if (tlv_read(p, end, &el) != 0) {
            return -1;
        }
    }
    if (el.tag != 0x02 || tlv_read(p + el.tlv_len, end, &alg) != 0 ||
        alg.tag != 0x30 || tlv_read(alg.tlv + alg.tlv_len, end, &name) != 0 ||
        name.tag != 0x30) {
        return -1;
    }
    serial->ptr = el.val;
    serial->len = el.len;
    issuer->ptr = name.tlv;
    issuer->len = name.tlv_len;
    return 0;
}
