/*
 * The SCEP unit tests (one program, t/unit/test_scep, built from the
 * test_scep*.c files): what their groups share.
 *
 *   test_scep.c          main(): every group in turn; fuzz seeds
 *   test_scep_fixture.c  the sample CA, files, logs, running transactions
 *   test_scep_make.c     certificates, CSRs and pkiMessages made here
 *   test_scep_check.c    reading a CertRep and an issued certificate
 *   test_scep_b64.c      mdm_scep_b64.c
 *   test_scep_req.c      mdm_scep_req.c: the start/feed frame
 *   test_scep_ca.c       mdm_scep_ca.c, GetCACaps/GetCACert, an RA
 *   test_scep_msg.c      mdm_scep_msg.c: real vectors, every refusal
 *   test_scep_pki.c      mdm_scep_pki.c: issuing, renewal, lookups
 *   test_scep_admin.c    mdm_scep_admin.c: plans and HTTP routes
 *   test_scep_store.c    all of it against a private redis-server
 */
#ifndef MDM_TEST_SCEP_H
#define MDM_TEST_SCEP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <hiredis.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mdm_scep.h"

#define DAY 86400
/* 2016-06-01: the real PKCSReq was made on 2016-05-31 */
#define T_SAMPLE ((time_t) 1464739200)
/* 2020-01-01: generated requests, sample CA still valid */
#define T_GEN ((time_t) 1577836800)

#define SAMPLE_TXID "A13090761A30F66664F85D37433D2065E1112BA1"
#define SAMPLE_CN   "com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224"
#define MDMCL_TXID  "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B"
#define CHALLENGE   "s3cret-challenge"

/* ---- the fixture (test_scep_fixture.c) ---- */

extern X509 *sample_ca;
extern EVP_PKEY *sample_ca_key;
extern X509 *expect_signer; /* who signs CertReps: the CA unless an RA */
extern EVP_PKEY *dev_key;   /* 2048-bit RSA, reused: key generation is slow */
extern EVP_PKEY *dev_key2;
extern ASN1_OBJECT *o_msgtype, *o_status, *o_fail, *o_snonce, *o_rnonce,
    *o_txid;

/* the last log line and how many there were since log_reset() */
extern char last_id[16];
extern char last_msg[1024];
extern int nlogs;

void log_sink(void *data, mdm_log_level_t level, const char *id,
              const char *msg);
void log_reset(void);

/** $MDM_SAMPLES/name, and a file in the test's temporary directory. */
char *sample_path(const char *name);
char *tmp_path(const char *name);
unsigned char *slurp(const char *path, size_t *len);
void write_file(const char *path, const void *p, size_t len);
void write_cert(const char *path, X509 *x);
void write_key(const char *path, EVP_PKEY *k, const char *pass);

typedef struct {
    const char *name, *value;
} opt_t;

/** A CA set with opts (NULL-terminated) and finished; *rc its result. */
mdm_scep_ca_t *ca_with(const opt_t *opts, char *err, size_t errlen, int *rc);
/** The sample CA with a challenge mode and up to two more options. */
mdm_scep_ca_t *sample_ca_conf(const char *challenge, const char *n1,
                              const char *v1, const char *n2, const char *v2);

/**
 * POST a PKIOperation at now, logging to log_sink; *step: the start. A
 * PKCSReq's or RenewalReq's first plan (the transaction's record) is
 * answered "none" unless post_autocheck is 0: *step is then the next.
 */
extern int post_autocheck;
mdm_scep_req_t *post(const mdm_scep_ca_t *ca, const unsigned char *m,
                     size_t len, time_t now, mdm_step_t *step);
/** Replies made by hand (freed by feed1()). */
redisReply *rep_new(int type, const char *s);
redisReply *rep_array1(const char *s);
/** A CertPoll/GetCert lookup's reply: the DER (NULL: nil), the state. */
redisReply *rep_lookup(const void *der, size_t len, const char *state);
/** Feed one reply (NULL: the storage failed) and free it. */
mdm_step_t feed1(mdm_scep_req_t *r, redisReply *rep);

/** Once, before the first group and after the last. */
int scep_setup(void);
int scep_teardown(void);

/* ---- certificates and requests made here (test_scep_make.c) ---- */

X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                EVP_PKEY *issuer_key, long serial, time_t nb, time_t na);
/** DER of a CSR; challenge may be NULL, cn NULL for an empty subject. */
unsigned char *make_csr(EVP_PKEY *key, const char *cn, const char *challenge,
                        EVP_PKEY *sign_key, size_t *len);
unsigned char *issuer_and_serial(X509 *issuer, long serial, size_t *len);

typedef struct {
    const char *msg_type; /* "19" ... */
    const char *txid;
    X509 *signer;
    EVP_PKEY *signer_key;
    const EVP_MD *md;
    const EVP_CIPHER *cipher;
    X509 *recipient;
    const unsigned char *content;
    size_t content_len;
    int no_txid;
    int des;                    /* single DES-CBC, from the legacy provider */
    const unsigned char *nonce; /* 16 bytes; NULL: test_nonce */
} req_opts_t;

/** The senderNonce of every pkiMessage made here. */
extern const unsigned char test_nonce[16];

unsigned char *make_pkimsg(const req_opts_t *o, size_t *len);
/** A PKCSReq from a fresh self-signed signer (returned in *signer). */
unsigned char *pkcsreq(const char *challenge, const EVP_MD *md,
                       const EVP_CIPHER *cipher, X509 **signer, size_t *len);
/**
 * A PKCSReq for cn in transaction txid with senderNonce nonce (16 bytes,
 * NULL: test_nonce). Made twice with the same arguments, the signer
 * certificate and CSR are the same bytes (deterministic signatures): the
 * same request.
 */
unsigned char *pkcsreq_tx(const char *challenge, const char *cn,
                          const char *txid, const unsigned char *nonce,
                          X509 **signer, size_t *len);

/* ---- what comes back (test_scep_check.c) ---- */

typedef struct {
    int status; /* pkiStatus */
    int fail;   /* failInfo, -1 when absent */
    X509 *issued;
    int cipher_nid; /* of the envelope */
    int md_nid;
} certrep_t;

/** The single value of a signed attribute, or NULL. */
const ASN1_TYPE *attr1(CMS_SignerInfo *si, const ASN1_OBJECT *o);
void read_certrep(const mdm_response_t *resp, const char *txid,
                  const unsigned char *nonce, size_t nonce_len, X509 *requester,
                  EVP_PKEY *key, certrep_t *out);
/** What every issued certificate must look like. */
void check_issued(X509 *x, EVP_PKEY *pub, const char *cn, time_t now);
/** The issued certificate as the plan carries it to Redis (argv[13]). */
X509 *planned_cert(const mdm_scep_req_t *r);
/** The signer certificate of a sample pkiMessage. */
X509 *sample_signer(const char *file);
/** A request that must come back as FAILURE fail with log id id. */
void expect_fail(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len,
                 time_t now, int fail, const char *id, const char *txid);

/* ---- the groups: each returns its number of failed tests ---- */

int scep_b64_tests(void);
int scep_req_tests(void);
int scep_ca_tests(void);
int scep_msg_tests(void);
int scep_pki_tests(void);
int scep_admin_tests(void);
int scep_store_tests(void);

#endif
