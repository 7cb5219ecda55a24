/*
 * Identity renewal, the certificate side: what the device path reads of a
 * verified certificate (its notAfter, and whether its CN is the name of a
 * renewal offer), and the fresh names the renewal sweep hands out. See
 * README "Identity renewal".
 */
#include "mdm_internal.h"

#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

void
mdm_renew_cert_facts(X509 *cert, long long *not_after, char cn_hash[65])
{
    const ASN1_TIME *t = cert ? X509_get0_notAfter(cert) : NULL;
    X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
    const X509_NAME_ENTRY *e;
    const ASN1_STRING *v;
    unsigned char md[32];
    unsigned int mdlen;
    struct tm tm;
    size_t plen = sizeof(MDM_RENEW_CN_PREFIX) - 1;
    int i;

    *not_after = 0;
    cn_hash[0] = '\0';
    if (t && ASN1_TIME_to_tm(t, &tm) == 1) {
        *not_after = (long long) timegm(&tm);
    }
    i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (i < 0 || (e = X509_NAME_get_entry(name, i)) == NULL ||
        (v = X509_NAME_ENTRY_get_data(e)) == NULL ||
        ASN1_STRING_type(v) == V_ASN1_BMPSTRING ||
        (size_t) ASN1_STRING_length(v) <= plen ||
        memcmp(ASN1_STRING_get0_data(v), MDM_RENEW_CN_PREFIX, plen) != 0) {
        return;
    }
    if (EVP_Digest(ASN1_STRING_get0_data(v), (size_t) ASN1_STRING_length(v), md,
                   &mdlen, EVP_sha256(), NULL) == 1) {
        mdm_hex(md, 32, cn_hash);
    }
}

int
mdm_renew_new_cn(char cn[64], char cn_hash[65])
{
    unsigned char rnd[16], md[32];
    unsigned int mdlen;
    size_t plen = sizeof(MDM_RENEW_CN_PREFIX) - 1;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return -1;
    }
    memcpy(cn, MDM_RENEW_CN_PREFIX, plen);
    mdm_hex(rnd, sizeof(rnd), cn + plen);
    if (EVP_Digest(cn, strlen(cn), md, &mdlen, EVP_sha256(), NULL) != 1) {
        return -1;
    }
    mdm_hex(md, 32, cn_hash);
    return 0;
}
