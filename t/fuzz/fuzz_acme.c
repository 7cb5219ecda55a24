/*
 * libFuzzer target for the ACME parsers: core/mdm_acme_jws.c (strict
 * base64url, flattened JWS, JWK, signature check), core/mdm_cbor.c (the
 * strict CBOR decoder), core/mdm_acme_attest.c (the "apple" attestation
 * statement) and the finalize CSR reader of core/mdm_acme_issue.c.
 *
 * Input: byte 0 selects the mode (mod 5), the rest is the data.
 *   0: a JWS body for mdm_jws_parse() (kid prefix of t/fuzz seeds'
 *      URL "https://mdm.example.com/acme/acct/");
 *   1: CBOR for mdm_cbor_decode(); every item is walked (map lookups,
 *      array children);
 *   2: an attestation object for mdm_attest_verify() without roots
 *      (parsing and the extensions), 3: the same with an empty root
 *      store (the chain check runs and fails);
 *   4: a DER CSR for mdm_acme_csr().
 * Seeds in t/fuzz/corpus/acme/ (see t/fuzz/corpus/SOURCES.txt).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mdm_acme.h"
#include "mdm_cbor.h"

static void
walk(const mdm_cbor_doc_t *d)
{
    size_t i, k;

    for (i = 0; i < d->n; i++) {
        if (d->items[i].type == MDM_CBOR_MAP) {
            (void) mdm_cbor_map_get(d, i, "fmt");
            (void) mdm_cbor_map_get(d, i, "x5c");
        }
        if (d->items[i].type == MDM_CBOR_ARRAY) {
            for (k = 0; k < d->items[i].len && k < 4; k++) {
                if (mdm_cbor_child(d, i, k) >= d->n) {
                    abort();
                }
            }
        }
        if (d->items[i].end <= i || d->items[i].end > d->n) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static X509_STORE *empty;
    const unsigned char *p = data + 1;
    size_t n = size ? size - 1 : 0;
    const char *why = "";
    mdm_jws_t jws;
    mdm_cbor_doc_t doc;
    mdm_attest_t att;
    char kh[65];
    X509_REQ *req;

    if (size == 0) {
        return 0;
    }
    if (empty == NULL) {
        empty = X509_STORE_new();
    }
    switch (data[0] % 5) {
    case 0:
        if (mdm_jws_parse(p, n, "https://mdm.example.com/acme/acct/", &jws,
                          &why) == MDM_JWS_OK) {
            mdm_jws_free(&jws);
        }
        break;
    case 1:
        if (mdm_cbor_decode(p, n, &doc) == 0) {
            walk(&doc);
            mdm_cbor_free(&doc);
        }
        break;
    case 2:
    case 3:
        (void) mdm_attest_verify(p, n, data[0] % 5 == 3 ? empty : NULL, 0, &att,
                                 &why);
        break;
    default:
        req = mdm_acme_csr(p, n, kh, &why);
        X509_REQ_free(req);
        break;
    }
    return 0;
}
