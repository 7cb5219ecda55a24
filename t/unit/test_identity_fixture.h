/*
 * The device identity tests' shared material (test_identity_fixture.c).
 * Helpers fail the running test (cmocka) instead of returning errors;
 * what they return is the caller's to free as noted.
 */
#ifndef TEST_IDENTITY_FIXTURE_H
#define TEST_IDENTITY_FIXTURE_H

#include <stddef.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mdm_identity.h"

#define DAY 86400

extern const char *pki_dir;     /* MDM_TEST_PKI */
extern const char *samples_dir; /* MDM_SAMPLES */

/** Group setup: reads MDM_TEST_PKI and MDM_SAMPLES. */
int identity_setup(void **state);

/* The body the test signatures are made over. */
static const unsigned char test_body[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict>\n"
    "<key>MessageType</key><string>Authenticate</string>\n"
    "<key>UDID</key><string>0000-TEST</string>\n"
    "</dict></plist>\n";
#define TEST_BODY_LEN (sizeof(test_body) - 1)

/** dir/name in a static buffer (4 in rotation). */
char *path_in(const char *dir, const char *name);
/** Whole file, malloc'd and NUL-terminated; the caller frees it. */
unsigned char *read_all(const char *path, size_t *len);
/** A PEM certificate from a path, or name.pem / name.key of the test PKI
 * (X509_free(), EVP_PKEY_free()). */
X509 *load_cert_path(const char *path);
X509 *pki_cert(const char *name);
EVP_PKEY *pki_key(const char *name);
/** Independent fingerprint: SHA-256 over i2d_X509(), lowercase hex. */
void fingerprint(X509 *x, char out[65]);
/** The two certificates are the same (by fingerprint). */
void assert_same_cert(X509 *a, X509 *b);

/** Base64 of der, one line, or wrapped at 76 columns (free()). */
char *b64(const unsigned char *der, size_t len, int wrap);
/** Base64, line breaks allowed, to bytes (OPENSSL_free()). */
unsigned char *unb64(const char *s, size_t *len);
/** DER of cms / of x (OPENSSL_free()). */
unsigned char *cms_der(CMS_ContentInfo *cms, size_t *len);
unsigned char *cert_der(X509 *x, size_t *len);

typedef struct {
    const char *name; /* PKI name of the signer */
    const EVP_MD *md;
    unsigned int flags; /* extra CMS_add1_signer flags, e.g. CMS_NOCERTS */
} signer_spec_t;

/** CMS SignedData over body, detached unless attached; *der
 * OPENSSL_free(). */
void make_cms(const unsigned char *body, size_t len, const signer_spec_t *s,
              int nsigners, int attached, unsigned char **der, size_t *derlen);
/** One signer, detached, over test_body, base64 (free()). */
char *sign_b64(const char *name, const EVP_MD *md, int wrap);
/** Detached SHA-256 signature over test_body by name's key whose
 * certificate set is exactly certs, base64 (free()). */
char *sign_with_certs(const char *name, unsigned int sflags, X509 **certs,
                      int ncerts);
/** A detached signature over body in BER (OPENSSL_free()). */
unsigned char *sign_ber(const char *name, const unsigned char *body,
                        size_t bodylen, size_t *len);
/** Whether the base64 signature takes the fast path (mdm_cms_split()
 * accepts it); *ncerts (may be NULL) the certificates it lifted. */
int splits(const char *sig, size_t *ncerts);

/** mdm_identity_from_signature() with its contract checks. */
mdm_id_rc_t verify_b64(const char *sig, const unsigned char *body,
                       size_t bodylen, X509 **signer);
/** mdm_verifier_new() that must succeed (mdm_verifier_free()). */
mdm_verifier_t *verifier(const char *cafile, size_t size, unsigned ttl);
/** A verifier without chain cache, with a decoded-certificate cache of
 * size entries (mdm_verifier_free()). */
mdm_verifier_t *cert_cache_verifier(size_t size);
/** mdm_verifier_cert() with its contract checks (hash: the signer's
 * fingerprint on success). */
mdm_id_rc_t vcert(mdm_verifier_t *v, const unsigned char *data, size_t len,
                  X509 **x, char hash[65]);
/** A fresh clientAuth certificate issued by issuer with serial 1000 + n
 * (X509_free()). */
X509 *mint(X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *pub, long n);

/* ---- a small DER writer for hand-made inputs ---- */

typedef struct {
    unsigned char *p; /* malloc'd */
    size_t len;
} blob_t;

#define LEN_DER 0  /* shortest length encoding */
#define LEN_BER -1 /* indefinite length, end-of-contents octets */

/** A copy of data. */
blob_t blob(const void *data, size_t len);
/** n bytes of a pattern that differs with seed. */
blob_t filler(size_t n, unsigned seed);
/** a then b; both are consumed. */
blob_t cat(blob_t a, blob_t b);
/** An element: tag, length (LEN_DER, LEN_BER or n long-form octets),
 * content (consumed). */
blob_t tlv(unsigned char tag, blob_t c, int lenbytes);
/** The size of the element at p (DER or BER long form header). */
size_t elem_size(const unsigned char *p, size_t *hdr);
/** A DER ContentInfo(SignedData) with its outer headers re-encoded with
 * outer_lb and the certificate set's with certs_lb (see tlv()). */
blob_t reencode(const unsigned char *der, size_t len, int outer_lb,
                int certs_lb);

#endif
