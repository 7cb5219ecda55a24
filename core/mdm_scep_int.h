/*
 * The SCEP CA's insides, shared by the mdm_scep*.c files only (the public
 * API is mdm_scep.h). A SCEP request is a transaction (mdm_tx.h); the
 * files form layers, each calling only files below it
 * (t/check-call-cycles.py):
 *
 *   mdm_scep.c          HTTP routing, the SCEP transaction type, and
 *                       mdm_scep_req_start()/feed() for both types
 *     mdm_scep_pki.c    PKIOperation: checks, issuing, storage plans
 *     mdm_scep_admin.c  the admin transaction type (challenge, revoke)
 *     mdm_scep_ca.c     CA configuration and loading
 *       mdm_scep_rep.c    writing the CertRep, certs-only SignedData
 *       mdm_scep_req.c    the request object: its start/feed frame,
 *                         shared helpers, the public accessors
 *         (mdm_tx.c: the transaction layer)
 *           mdm_scep_msg.c    reading a pkiMessage (CMS, envelope, CSR)
 *             mdm_scep_oid.c    attribute OIDs, message type names
 *             mdm_scep_issue.c  signing a certificate for a CSR
 *   (the GET message's lenient base64 is mdm_b64.c's, in mdm_scep.c)
 *
 * Every function with external linkage here is named mdm_scep_*.
 */
#ifndef MDM_SCEP_INT_H
#define MDM_SCEP_INT_H

#include "mdm_scep.h"
#include "mdm_tx.h"

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#define MDM_SCEP_MAX_MSG   (256 * 1024)
#define MDM_SCEP_MAX_TXID  128
#define MDM_SCEP_MAX_NONCE 64
#define MDM_SCEP_MAX_CHAL  255
/* issued certificates start a little in the past: device clocks drift */
#define MDM_SCEP_SKEW    300
#define MDM_SCEP_TXN_TTL "86400"
/* a pending request (approval manual) is kept this long by default */
#define MDM_SCEP_PENDING_TTL 604800

/* challenge modes */
enum { CH_UNSET = 0, CH_NONE, CH_STATIC, CH_DYNAMIC };

/* messageType */
enum {
    MT_CERTREP = 3,
    MT_RENEWAL = 17,
    MT_PKCSREQ = 19,
    MT_CERTPOLL = 20,
    MT_GETCERT = 21
};

/* pkiStatus */
enum { PKI_SUCCESS = 0, PKI_FAILURE = 2, PKI_PENDING = 3 };

/* failInfo */
enum {
    FAIL_BADALG = 0,
    FAIL_BADMESSAGECHECK = 1,
    FAIL_BADREQUEST = 2,
    FAIL_BADTIME = 3,
    FAIL_BADCERTID = 4
};

/* the operation of an HTTP request (mdm_scep.c) */
enum { OP_NONE = 0, OP_CAPS, OP_CACERT, OP_NEXTCACERT, OP_PKI };

/* what the current plan is for: the state of a request */
enum {
    SST_NONE = 0,
    SST_CHECK,  /* PKCSReq, RenewalReq: the transaction's record */
    SST_ISSUE,  /* the issue script (issue or pend) */
    SST_LOOKUP, /* CertPoll, GetCert */
    SST_ADMIN,
    SST_APPROVE_READ, /* admin approve: the pending request */
    SST_APPROVE_WRITE /* admin approve: the issue script */
};

/* the issue script's modes (scep_issue.lua) */
enum { ISSUE_NEW = 0, ISSUE_PEND, ISSUE_APPROVE };

struct mdm_scep_ca_s {
    char *ca_cert_file, *ca_key_file, *ca_pass_file;
    char *ra_cert_file, *ra_key_file, *ra_pass_file;
    char **chain_files;
    size_t nchain_files;
    long validity_days;
    long min_key_bits;
    long challenge_ttl;
    int challenge_mode;
    char *challenge;
    char *challenge_file;
    int renewal;
    char *crl_url; /* CRL distribution point of issued certificates */
    int approval_manual;
    long pending_ttl;
    char *next_ca_file;
    int legacy_des;
    char *prefix;

    /* loaded by mdm_scep_ca_finish() */
    int finished;
    X509 *ca;
    EVP_PKEY *ca_key;
    X509 *ra;
    EVP_PKEY *ra_key;
    STACK_OF(X509) * chain;
    X509 *next_ca;
    mdm_buf_t nextca; /* the GetNextCACert body */
    /* single DES (legacy_des on): OpenSSL 3 has it in the legacy provider
     * only, loaded into a private context so that the process's default
     * context (the web server's TLS) is left alone */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov_default, *prov_legacy;
    unsigned char challenge_md[32];
    mdm_buf_t cacert; /* the GetCACert body */
    const char *cacert_ctype;
    char caps[128];
    char *k_chal, *k_cert, *k_txn; /* prefixes, the rest is appended */
    char *k_issued, *k_revoked, *k_pending;
};

struct mdm_scep_req_s {
    mdm_tx_t base; /* first: a SCEP request is a transaction */
    const mdm_scep_ca_t *ca;
    time_t now;
    int op;
    int state;

    /* HTTP input */
    const unsigned char *msg;
    size_t msg_len;
    mdm_buf_t decoded; /* the GET message, base64-decoded */

    /* admin */
    mdm_scep_admin_op_t admin_op;
    char *admin_arg;
    long admin_ttl;

    /* the pkiMessage */
    CMS_ContentInfo *cms;
    CMS_SignerInfo *si;
    int msg_type;
    char txid[MDM_SCEP_MAX_TXID + 1];
    int txid_type;
    unsigned char nonce[MDM_SCEP_MAX_NONCE];
    size_t nonce_len;
    const EVP_MD *md;
    const EVP_CIPHER *cipher;
    X509 *signer;
    X509 *cert; /* issued, or found by CertPoll / GetCert */
    char serial[48];
    char *subject;
    char cert_hash[65];
    mdm_buf_t cert_der;
    char renew_serial[48];
    /* PKCSReq, RenewalReq: kept across the CHECK round trip */
    mdm_buf_t csr_der;
    char req_hash[65]; /* SHA-256 of the signer certificate and the CSR */
    char nonce_hex[2 * MDM_SCEP_MAX_NONCE + 1];
    char chal_hash[65]; /* SHA-256 of a one-time challenge, or "-" */
    int consume;

    const char *vars[MDM_SCEP_VAR_COUNT];
    char what[40]; /* "SCEP PKCSReq": storage failures say which */
};

/* ---- SCEP attribute OIDs and names (mdm_scep_oid.c) ---- */

typedef struct {
    ASN1_OBJECT *msgtype, *status, *failinfo, *snonce, *rnonce, *txid;
} mdm_scep_oids_t;

/** The SCEP attribute OIDs, created once; NULL out of memory. */
const mdm_scep_oids_t *mdm_scep_oids(void);
/** "PKCSReq", "RenewalReq"... ("unknown" for others). */
const char *mdm_scep_msg_type_name(int t);
/** "badAlg", "badMessageCheck"... ("unknown" for others). */
const char *mdm_scep_fail_name(int f);

/* ---- the request object (mdm_scep_req.c) ---- */

/** A zeroed request of the CA, of the type ops; NULL out of memory. */
mdm_scep_req_t *mdm_scep_req_alloc(const mdm_scep_ca_t *ca,
                                   const mdm_tx_ops_t *ops);
/** ops->free of every SCEP transaction type. */
void mdm_scep_tx_free(mdm_tx_t *tx);

/**
 * ops->start of a SCEP transaction type: inside an OpenSSL error mark,
 * once only, with the clock set and the CA finished (else 500, MDM09002),
 * run fn; the borrowed message is forgotten afterwards.
 */
mdm_step_t mdm_scep_tx_start(mdm_tx_t *tx, mdm_step_t (*fn)(mdm_scep_req_t *r));
/**
 * ops->feed: inside an OpenSSL error mark, with a missing reply a storage
 * failure and NOSCRIPT replanned, run fn on the first reply.
 */
mdm_step_t mdm_scep_tx_feed(mdm_tx_t *tx, struct redisReply *const *replies,
                            size_t n,
                            mdm_step_t (*fn)(mdm_scep_req_t *r,
                                             const struct redisReply *rep));

/** 1 when the method (mlen bytes) is want. */
int mdm_scep_method_is(const char *m, size_t mlen, const char *want);
/** Set a variable; the operation and message type are also $mdm_message. */
void mdm_scep_set_var(mdm_scep_req_t *r, mdm_scep_var_t v, const char *value);
/** 503 after a storage failure, logged with the message type. */
mdm_step_t mdm_scep_storage_failed(mdm_scep_req_t *r,
                                   const struct redisReply *rep);
/** The plan built in r->base.pb, one reply per command; enter state. */
mdm_step_t mdm_scep_plan_done(mdm_scep_req_t *r, int state);
/**
 * Plan scep_issue.lua in mode (ISSUE_*): r->cert (ISSUE_NEW, _APPROVE)
 * or r->csr_der (ISSUE_PEND), with r's transaction fields; enter state.
 */
mdm_step_t mdm_scep_plan_issue(mdm_scep_req_t *r, int mode, int state);

/* ---- reading the pkiMessage (mdm_scep_msg.c) ---- */

typedef enum {
    ENV_OK = 0,
    ENV_NOT_ENVELOPED,
    ENV_BAD_ALG,
    ENV_NOT_FOR_US,
    ENV_DECRYPT
} mdm_scep_env_rc_t;

/** The SignedData and its SCEP attributes into r: NULL, or why not. */
const char *mdm_scep_parse_outer(mdm_scep_req_t *r);
/** The signer's digest (also the CertRep's); NULL unsupported. */
const EVP_MD *mdm_scep_digest_of(CMS_SignerInfo *si, int *nid);
/** Open pkcsPKIEnvelope with the RA or CA key into out; why: a detail. */
mdm_scep_env_rc_t mdm_scep_open_envelope(mdm_scep_req_t *r, mdm_buf_t *out,
                                         char *why, size_t whylen);
/*
 * A PKCS#10 request as read here: the fields of X509_REQ, its
 * SubjectPublicKeyInfo left undecoded. d2i_X509_REQ() decodes the key
 * through OpenSSL 3.0's provider decoders, a third of an RSA-2048 private
 * operation; the key is nearly always the one of the request's signer
 * certificate, already decoded with the pkiMessage.
 */
typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *key;
} mdm_scep_spki_t;

typedef struct {
    ASN1_ENCODING enc; /* what was signed, kept as it came */
    ASN1_INTEGER *version;
    X509_NAME *subject;
    mdm_scep_spki_t *spki;
    STACK_OF(X509_ATTRIBUTE) * attributes;
} mdm_scep_csr_info_t;

typedef struct {
    mdm_scep_csr_info_t *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} mdm_scep_csr_der_t;

typedef struct {
    mdm_scep_csr_der_t *der;
    EVP_PKEY *pub; /* NULL: not decodable */
    int own_pub;   /* pub decoded here, else r->signer's */
} mdm_scep_csr_t;

/** The DER request into csr (then mdm_scep_csr_free()): -1 not one. */
int mdm_scep_csr_read(mdm_scep_req_t *r, const mdm_buf_t *data,
                      mdm_scep_csr_t *csr);
/** 1 when the request's self-signature verifies with its key. */
int mdm_scep_csr_verify(const mdm_scep_csr_t *csr);
void mdm_scep_csr_free(mdm_scep_csr_t *csr);
/** challengePassword of the CSR, else of the pkiMessage; -1 none. */
int mdm_scep_challenge_of(mdm_scep_req_t *r, const mdm_scep_csr_t *csr,
                          char *out, size_t cap);
/** RFC 2253 text of a name, malloc'd; NULL out of memory. */
char *mdm_scep_name_str(const X509_NAME *n);
/** Lowercase hex without leading zeros: the one spelling of a serial. */
int mdm_scep_serial_hex(const ASN1_INTEGER *ai, char *out, size_t cap);

/* ---- writing the answers (mdm_scep_rep.c) ---- */

/** A certs-only SignedData ("degenerate" PKCS#7) of certs into out. */
int mdm_scep_certs_only(STACK_OF(X509) * certs, mdm_buf_t *out);
/** A SignedData by the CA of certs, no content (GetNextCACert). */
int mdm_scep_signed_certs(const mdm_scep_ca_t *ca, STACK_OF(X509) * certs,
                          mdm_buf_t *out);
/** Answer a signed CertRep (500, MDM08040 if it cannot be built). */
mdm_step_t mdm_scep_reply_certrep(mdm_scep_req_t *r, int status, int fail);
/** Answer a FAILURE CertRep with one log line naming the transaction. */
mdm_step_t mdm_scep_fail_rep(mdm_scep_req_t *r, int fail, const char *id,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- issuing (mdm_scep_issue.c) ---- */

/** Sign the certificate for csr into r->cert; -1 on failure. */
int mdm_scep_issue(mdm_scep_req_t *r, const mdm_scep_csr_t *csr);
/**
 * A random nonzero 128-bit serial, its first byte masked with top_mask
 * (0x7f: DER needs no sign byte); NULL on failure.
 */
BIGNUM *mdm_scep_serial_new(unsigned char top_mask);
/**
 * The frame of a certificate of ca's whose public key x has already (the
 * subjectKeyIdentifier hashes it): version 3, serial, issuer, subject,
 * valid from MDM_SCEP_SKEW before now for validity_days but never past the
 * CA, and the client-authentication leaf's five extensions (basic
 * constraints, key usage, clientAuth, SKI, AKI). ctx is left set for the
 * caller's own extensions. 1 done, 0 on failure.
 */
int mdm_scep_cert_frame(X509 *x, const mdm_scep_ca_t *ca, const BIGNUM *serial,
                        const X509_NAME *subject, time_t now, X509V3_CTX *ctx);
/** The CRL distribution point extension (URI url) into x; 0 on failure. */
int mdm_scep_add_crl_dp(X509 *x, X509V3_CTX *ctx, const char *url);

/* ---- PKIOperation (mdm_scep_pki.c) ---- */

/** Check the pkiMessage and plan (or answer) what it asks. */
mdm_step_t mdm_scep_pki_start(mdm_scep_req_t *r);
/** The reply to the ISSUE or LOOKUP plan: the CertRep. */
mdm_step_t mdm_scep_pki_feed(mdm_scep_req_t *r, const struct redisReply *rep);

#endif
