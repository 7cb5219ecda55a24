/*
 * mdm_scep: a SCEP CA (RFC 8894) in the core, sans-IO like mdm_req_*.
 *
 *     ca = mdm_scep_ca_new();
 *     mdm_scep_ca_set(ca, "ca_cert", "/etc/mdm/scep-ca.pem", err, len); ...
 *     mdm_scep_ca_finish(ca, err, len);          (at configuration time)
 *
 *     r = mdm_scep_req_new_http(ca, method, mlen, query, qlen, body, blen);
 *     mdm_scep_req_set_logger(r, fn, data);
 *     for (step = mdm_scep_req_start(r); step == MDM_STEP_REDIS;
 *          step = mdm_scep_req_feed(r, replies, n)) { run mdm_scep_req_plan(r)
 * } resp = mdm_scep_req_response(r); mdm_scep_req_free(r);
 *
 * GetCACaps and GetCACert never need Redis. A PKIOperation that issues a
 * certificate is two round trips: the transaction's record is read (a
 * request seen before is answered from it), the certificate signed, then one
 * script consumes the one-time challenge (dynamic mode) and records the
 * certificate; only if the script says so does the device get it.
 *
 * Ownership: borrowed inputs (query, body) must stay valid until
 * mdm_scep_req_start() returns; everything returned by mdm_scep_req_*()
 * is owned by the transaction and lives until mdm_scep_req_free().
 * mdm_scep_ca_t is read-only after mdm_scep_ca_finish() and may be shared
 * by threads.
 */
#ifndef MDM_SCEP_H
#define MDM_SCEP_H

#include <stddef.h>
#include <time.h>

#include "mdm.h"

typedef struct mdm_scep_ca_s mdm_scep_ca_t;
typedef struct mdm_scep_req_s mdm_scep_req_t;

/** A new CA configuration with defaults. Free with mdm_scep_ca_free(). */
mdm_scep_ca_t *mdm_scep_ca_new(void);
void mdm_scep_ca_free(mdm_scep_ca_t *ca);

/**
 * Set one option by name. On error returns -1 and writes a message naming
 * the option to err (the modules turn it into an nginx -t / apachectl -t
 * error).
 *
 *   ca_cert          PEM file: the CA certificate (required)
 *   ca_key           PEM file: its private key (required; may be encrypted)
 *   ca_key_pass_file file whose first line is the ca_key passphrase
 *   chain            PEM file of intermediates sent with GetCACert
 *                    (repeatable)
 *   ra_cert, ra_key, ra_key_pass_file
 *                    an RA: requests are encrypted to it and CertReps are
 *                    signed by it; the CA key still signs certificates
 *   validity_days    days an issued certificate is valid (default 365,
 *                    1-3650; never beyond the CA's own notAfter)
 *   min_key_bits     smallest RSA key accepted in a CSR (default 2048)
 *   challenge        a static challenge (compared in constant time),
 *                    "dynamic" (one-time challenges in Redis, see
 *                    mdm_scep_req_new_admin()), or "none" (no challenge:
 *                    only behind the web server's own access control)
 *   challenge_file   a static challenge read from a file's first line
 *   challenge_ttl    default lifetime of a dynamic challenge in seconds
 *                    (default 3600)
 *   renewal          on (default) | off: accept RenewalReq
 *   legacy_des       off (default) | on: also accept single-DES envelopes
 *                    (old clients, Debian's scepclient); answered with AES
 *   approval         auto (default) | manual: a PKCSReq is kept pending
 *                    (CertRep PENDING) until the admin approves or rejects
 *                    it (MDM_SCEP_ADMIN_APPROVE/_REJECT); RenewalReq stays
 *                    automatic
 *   pending_ttl      seconds a pending request is kept (default 604800)
 *   next_ca_cert     PEM file: the CA that will follow this one, served
 *                    by GetNextCACert (and advertised in GetCACaps)
 *   prefix           Redis key prefix (default "mdm:")
 */
int mdm_scep_ca_set(mdm_scep_ca_t *ca, const char *name, const char *value,
                    char *err, size_t errlen);

/**
 * Load the files and check them (key matches certificate, RA complete, a
 * challenge mode chosen). Call once after the last mdm_scep_ca_set().
 * Returns -1 with a message naming the option in err on failure.
 */
int mdm_scep_ca_finish(mdm_scep_ca_t *ca, char *err, size_t errlen);

/**
 * A SCEP request over HTTP. query is the raw query string ("operation=
 * PKIOperation&message=..."), still URL-encoded; body is the raw request
 * body. Both are borrowed until mdm_scep_req_start() returns.
 *
 *   GET  operation=GetCACaps       200 text/plain
 *   GET  operation=GetCACert       200 application/x-x509-ca-cert (DER) or
 *                                  application/x-x509-ca-ra-cert (PKCS#7)
 *   GET  operation=GetNextCACert   200 application/x-x509-next-ca-cert:
 *                                  SignedData by the CA holding the next
 *                                  CA; 404 (MDM08005) without next_ca_cert
 *   POST operation=PKIOperation    body: DER pkiMessage (any Content-Type)
 *   GET  operation=PKIOperation&message=<base64, URL-escaped or not>
 *                                  200 application/x-pki-message: CertRep
 *
 * A PKIOperation that is not a pkiMessage at all (not DER, not a
 * SignedData with one signer and the SCEP attributes) answers 400
 * (MDM08001); anything wrong past that point is a signed CertRep with
 * pkiStatus FAILURE and a failInfo, HTTP 200. An unknown operation answers
 * 400 (MDM08002), a wrong method 405 (MDM08003). NULL on allocation
 * failure only.
 */
mdm_scep_req_t *mdm_scep_req_new_http(const mdm_scep_ca_t *ca,
                                      const char *method, size_t mlen,
                                      const char *query, size_t qlen,
                                      const unsigned char *body, size_t blen);

typedef enum {
    MDM_SCEP_ADMIN_CHALLENGE = 1, /* create a one-time challenge */
    MDM_SCEP_ADMIN_REVOKE,        /* revoke an issued certificate */
    MDM_SCEP_ADMIN_PENDING,       /* list the requests awaiting approval */
    MDM_SCEP_ADMIN_APPROVE,       /* sign a pending request's certificate */
    MDM_SCEP_ADMIN_REJECT         /* refuse a pending request */
} mdm_scep_admin_op_t;

/**
 * An admin transaction (same plan/feed loop; JSON responses).
 *   CHALLENGE: arg is the challenge to create (NULL: 32 random hex
 *     characters are made), ttl its lifetime in seconds (0: challenge_ttl).
 *     201 {"challenge":"...","ttl":N}; 409 if it exists already; 400 in
 *     static or no-challenge mode.
 *   REVOKE: arg is the serial number in hex (colons and case ignored).
 *     200 {"serial":"...","revoked":true}; 404 if this CA never issued it.
 *   PENDING: 200 {"pending":[{"transaction_id":"...","subject":"...",
 *     "kind":"PKCSReq","requested":UNIX}...]} (approval manual).
 *   APPROVE, REJECT: arg is the transactionID. APPROVE signs and records
 *     the certificate (the client's next CertPoll gets it): 200
 *     {"transaction_id":"...","serial":"...","approved":true}; REJECT:
 *     200 {"transaction_id":"...","rejected":true} (CertPoll gets
 *     FAILURE). 404 (MDM08055) when no request of that transactionID is
 *     pending.
 * arg is copied.
 */
mdm_scep_req_t *mdm_scep_req_new_admin(const mdm_scep_ca_t *ca,
                                       mdm_scep_admin_op_t op, const char *arg,
                                       long ttl);

/**
 * The same admin operations over HTTP, so that both modules expose one
 * API. path is the part after the SCEP admin location, body borrowed until
 * mdm_scep_req_start(); answers are JSON.
 *
 *   POST /challenge        body (optional): {"challenge": "...", "ttl": N}
 *   POST /revoke/SERIAL
 *   GET  /pending
 *   POST /pending/TXID/approve, POST /pending/TXID/reject
 *                          (TXID percent-encoded: '/' is %2F)
 *
 * Unknown paths answer 404 (MDM08053), other methods 405 (MDM08054).
 */
mdm_scep_req_t *mdm_scep_req_new_admin_http(const mdm_scep_ca_t *ca,
                                            const char *method, size_t mlen,
                                            const char *path, size_t plen,
                                            const unsigned char *body,
                                            size_t blen);

void mdm_scep_req_free(mdm_scep_req_t *r);
void mdm_scep_req_set_logger(mdm_scep_req_t *r, mdm_log_fn fn, void *data);

/**
 * The clock for validity checks and issued certificates (default: the
 * time at mdm_scep_req_start()). For tests and replayed vectors.
 */
void mdm_scep_req_set_time(mdm_scep_req_t *r, time_t now);

/** Validate, do the crypto and plan. DONE: the response is ready. */
mdm_step_t mdm_scep_req_start(mdm_scep_req_t *r);

/** The current plan; valid until the next mdm_scep_req_feed()/free. */
const mdm_plan_t *mdm_scep_req_plan(const mdm_scep_req_t *r);

/**
 * Feed the replies of plan->cmds[0 .. plan->nreplies). NULL replies (or
 * NULL entries) mean the storage failed: 503 with Retry-After, and no
 * certificate is handed out.
 */
mdm_step_t mdm_scep_req_feed(mdm_scep_req_t *r,
                             struct redisReply *const *replies, size_t n);

/** The response; valid once a step returned DONE. */
const mdm_response_t *mdm_scep_req_response(const mdm_scep_req_t *r);

/**
 * The same transaction as an mdm_req_t (borrowed: free it with
 * mdm_scep_req_free()), for code that drives every kind of transaction
 * through mdm_req_plan()/mdm_req_feed(), such as the blocking runner
 * mdm_exec_sync() beside the tools.
 */
mdm_req_t *mdm_scep_req_tx(mdm_scep_req_t *r);

typedef enum {
    MDM_SCEP_VAR_OPERATION = 0, /* GetCACaps, GetCACert, PKIOperation */
    MDM_SCEP_VAR_MESSAGE_TYPE,  /* PKCSReq, RenewalReq, CertPoll, GetCert */
    MDM_SCEP_VAR_TRANSACTION_ID,
    MDM_SCEP_VAR_STATUS,    /* SUCCESS, FAILURE, PENDING (the pkiStatus) */
    MDM_SCEP_VAR_FAIL_INFO, /* badAlg, badMessageCheck, badRequest... */
    MDM_SCEP_VAR_SERIAL,    /* issued or returned certificate, hex */
    MDM_SCEP_VAR_SUBJECT,   /* CSR subject, RFC 2253 */
    MDM_SCEP_VAR_ERROR_ID,  /* the MDM08nnn id of a failure */
    MDM_SCEP_VAR_COUNT
} mdm_scep_var_t;

/** NULL when unset. Owned by the transaction. */
const char *mdm_scep_req_var(const mdm_scep_req_t *r, mdm_scep_var_t v);

/**
 * Lenient base64 for the GET `message` parameter: standard and URL-safe
 * alphabets, %XX escapes (%2B, %2F, %3D...), a space taken for a '+' that
 * a form decoder turned into one, CR/LF/TAB ignored, padding optional.
 * On success returns 0 and *out is malloc'd (the caller frees it).
 */
int mdm_scep_b64_decode(const char *in, size_t len, unsigned char **out,
                        size_t *outlen);

#endif
