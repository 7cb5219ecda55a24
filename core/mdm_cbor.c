/*
 * The strict CBOR decoder of mdm_cbor.h: one pass, items in preorder,
 * each container's end index filled in when its children are done.
 */
#include "mdm_cbor.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *p, *end;
    mdm_cbor_doc_t *doc;
    size_t cap;
} cbor_rd_t;

/* The head of an item: major type and argument, shortest form only. */
static int
head(cbor_rd_t *rd, int *major, uint64_t *arg)
{
    unsigned ai;
    size_t n, i;
    uint64_t v = 0;

    if (rd->p >= rd->end) {
        return -1;
    }
    *major = *rd->p >> 5;
    ai = *rd->p & 0x1f;
    rd->p++;
    if (ai < 24) {
        *arg = ai;
        return 0;
    }
    if (ai > 27) {
        return -1; /* reserved, or indefinite length (31) */
    }
    n = (size_t) 1 << (ai - 24);
    if ((size_t) (rd->end - rd->p) < n) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        v = (v << 8) | rd->p[i];
    }
    rd->p += n;
    /* shortest form: a longer head than the value needs is refused */
    if ((n == 1 && v < 24) || (n == 2 && v <= 0xff) ||
        (n == 4 && v <= 0xffff) || (n == 8 && v <= 0xffffffffu)) {
        return -1;
    }
    *arg = v;
    return 0;
}

static int
utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0, k, n;
    uint32_t c;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xe0) == 0xc0) {
            n = 1;
            c = s[i] & 0x1f;
        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 2;
            c = s[i] & 0x0f;
        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 3;
            c = s[i] & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n) {
            return 0;
        }
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
            (n == 3 && (c < 0x10000 || c > 0x10ffff)) ||
            (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }
        i += n + 1;
    }
    return 1;
}

static int
same_key(const mdm_cbor_t *a, const mdm_cbor_t *b)
{
    if (a->type != b->type) {
        return 0;
    }
    if (a->type == MDM_CBOR_BYTES || a->type == MDM_CBOR_TEXT) {
        return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
    }
    return a->u == b->u;
}

static int item(cbor_rd_t *rd, int depth);

static int
item(cbor_rd_t *rd, int depth)
{
    mdm_cbor_doc_t *doc = rd->doc;
    mdm_cbor_t *it;
    size_t idx, i, count, k, j, ki, kj;
    uint64_t arg;
    int major, rc;

    if (depth > MDM_CBOR_MAX_DEPTH || doc->n >= MDM_CBOR_MAX_NODES) {
        return -1;
    }
    if (doc->n == rd->cap) {
        size_t cap = rd->cap ? rd->cap * 2 : 16;
        mdm_cbor_t *p = realloc(doc->items, cap * sizeof(*p));

        if (p == NULL) {
            return -2;
        }
        doc->items = p;
        rd->cap = cap;
    }
    idx = doc->n++;
    it = &doc->items[idx];
    memset(it, 0, sizeof(*it));
    if (head(rd, &major, &arg) != 0) {
        return -1;
    }
    switch (major) {
    case 0:
    case 1:
        it->type = major == 0 ? MDM_CBOR_UINT : MDM_CBOR_NINT;
        it->u = arg;
        break;
    case 2:
    case 3:
        if (arg > (uint64_t) (rd->end - rd->p)) {
            return -1;
        }
        it->type = major == 2 ? MDM_CBOR_BYTES : MDM_CBOR_TEXT;
        it->bytes = rd->p;
        it->len = (size_t) arg;
        rd->p += it->len;
        if (major == 3 && !utf8_ok(it->bytes, it->len)) {
            return -1;
        }
        break;
    case 4:
    case 5:
        /* every child takes at least one byte: a bound before looping */
        if (arg > (uint64_t) (rd->end - rd->p) ||
            (major == 5 && arg > MDM_CBOR_MAX_PAIRS)) {
            return -1;
        }
        it->type = major == 4 ? MDM_CBOR_ARRAY : MDM_CBOR_MAP;
        it->len = (size_t) arg;
        count = major == 4 ? it->len : it->len * 2;
        for (i = 0; i < count; i++) {
            if ((rc = item(rd, depth + 1)) != 0) {
                return rc;
            }
        }
        it = &doc->items[idx]; /* the array may have moved */
        if (major == 5) {
            /* keys are integers or strings, each once */
            ki = idx + 1;
            for (k = 0; k < it->len; k++) {
                mdm_cbor_t *key = &doc->items[ki];

                if (key->type != MDM_CBOR_UINT && key->type != MDM_CBOR_NINT &&
                    key->type != MDM_CBOR_TEXT && key->type != MDM_CBOR_BYTES) {
                    return -1;
                }
                kj = doc->items[key->end].end;
                for (j = k + 1; j < it->len; j++) {
                    if (same_key(key, &doc->items[kj])) {
                        return -1;
                    }
                    kj = doc->items[doc->items[kj].end].end;
                }
                ki = doc->items[key->end].end;
            }
        }
        break;
    case 7:
        it->type = arg == 20   ? MDM_CBOR_FALSE
                   : arg == 21 ? MDM_CBOR_TRUE
                   : arg == 22 ? MDM_CBOR_NULL
                               : MDM_CBOR_UINT;
        if (it->type == MDM_CBOR_UINT) {
            return -1; /* floats, undefined, other simple values */
        }
        break;
    default:
        return -1; /* tags */
    }
    doc->items[idx].end = doc->n;
    return 0;
}

int
mdm_cbor_decode(const unsigned char *in, size_t len, mdm_cbor_doc_t *doc)
{
    cbor_rd_t rd;
    int rc;

    doc->items = NULL;
    doc->n = 0;
    rd.p = in;
    rd.end = in + len;
    rd.doc = doc;
    rd.cap = 0;
    if (in == NULL || len == 0) {
        return -1;
    }
    rc = item(&rd, 0);
    if (rc == 0 && rd.p != rd.end) {
        rc = -1; /* trailing bytes */
    }
    if (rc != 0) {
        mdm_cbor_free(doc);
    }
    return rc;
}

void
mdm_cbor_free(mdm_cbor_doc_t *doc)
{
    free(doc->items);
    doc->items = NULL;
    doc->n = 0;
}

size_t
mdm_cbor_child(const mdm_cbor_doc_t *doc, size_t a, size_t i)
{
    size_t c, k, count;

    if (a >= doc->n || (doc->items[a].type != MDM_CBOR_ARRAY &&
                        doc->items[a].type != MDM_CBOR_MAP)) {
        return 0;
    }
    count = doc->items[a].type == MDM_CBOR_ARRAY ? doc->items[a].len
                                                 : doc->items[a].len * 2;
    if (i >= count) {
        return 0;
    }
    c = a + 1;
    for (k = 0; k < i; k++) {
        c = doc->items[c].end;
    }
    return c;
}

const mdm_cbor_t *
mdm_cbor_map_get(const mdm_cbor_doc_t *doc, size_t m, const char *key)
{
    size_t k, c, klen = strlen(key);
    const mdm_cbor_t *it;

    if (m >= doc->n || doc->items[m].type != MDM_CBOR_MAP) {
        return NULL;
    }
    c = m + 1;
    for (k = 0; k < doc->items[m].len; k++) {
        it = &doc->items[c];
        if (it->type == MDM_CBOR_TEXT && it->len == klen &&
            memcmp(it->bytes, key, klen) == 0) {
            return &doc->items[it->end];
        }
        c = doc->items[it->end].end;
    }
    return NULL;
}

size_t
mdm_cbor_index(const mdm_cbor_doc_t *doc, const mdm_cbor_t *it)
{
    return (size_t) (it - doc->items);
}
