/*
 * mdm_cbor: a small strict CBOR (RFC 8949) decoder, only what an ACME
 * device attestation object needs: unsigned and negative integers, byte
 * and text strings, arrays, maps, false, true and null, all of definite
 * length and in their shortest encoding. Tags, floats, undefined,
 * indefinite lengths, duplicate map keys, invalid UTF-8 in text, nesting
 * deeper than MDM_CBOR_MAX_DEPTH and trailing bytes are refused.
 * Depends on libc only: the fuzz target builds it on its own.
 */
#ifndef MDM_CBOR_H
#define MDM_CBOR_H

#include <stddef.h>
#include <stdint.h>

#define MDM_CBOR_MAX_DEPTH 16
#define MDM_CBOR_MAX_NODES 4096
#define MDM_CBOR_MAX_PAIRS 256 /* entries of one map */

typedef enum {
    MDM_CBOR_UINT = 0,
    MDM_CBOR_NINT, /* the value is -1 - u */
    MDM_CBOR_BYTES,
    MDM_CBOR_TEXT,
    MDM_CBOR_ARRAY,
    MDM_CBOR_MAP,
    MDM_CBOR_FALSE,
    MDM_CBOR_TRUE,
    MDM_CBOR_NULL
} mdm_cbor_type_t;

/* One item; the items of a document are kept in preorder. */
typedef struct {
    mdm_cbor_type_t type;
    uint64_t u;                 /* UINT, NINT */
    const unsigned char *bytes; /* BYTES, TEXT: borrowed from the input */
    size_t len;                 /* BYTES, TEXT: length; ARRAY: items;
                                   MAP: pairs (key, value, key, value...) */
    size_t end;                 /* index past this item and its children */
} mdm_cbor_t;

typedef struct {
    mdm_cbor_t *items; /* malloc'd; items[0] is the top item */
    size_t n;
} mdm_cbor_doc_t;

/**
 * Decode in[0..len) (borrowed: it must outlive doc). 0 with doc filled
 * (free with mdm_cbor_free()), -1 when the input is not one strict item,
 * -2 out of memory; doc is empty then.
 */
int mdm_cbor_decode(const unsigned char *in, size_t len, mdm_cbor_doc_t *doc);
void mdm_cbor_free(mdm_cbor_doc_t *doc);

/** The value of text key in the map at index m, or NULL. */
const mdm_cbor_t *mdm_cbor_map_get(const mdm_cbor_doc_t *doc, size_t m,
                                   const char *key);
/** Index of the i-th child item of the array at index a; 0 if none. */
size_t mdm_cbor_child(const mdm_cbor_doc_t *doc, size_t a, size_t i);
/** Index of an item of doc. */
size_t mdm_cbor_index(const mdm_cbor_doc_t *doc, const mdm_cbor_t *it);

#endif
