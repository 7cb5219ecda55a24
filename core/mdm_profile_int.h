/*
 * Private to the enrollment profile files (mdm_profile_*.c): the
 * configuration structure and what the files share. Layers, each file
 * calling only those below it:
 *
 *   mdm_profile_sign.c      mdm_profile_build(): the CMS signature
 *   mdm_profile_payload.c   the XML plist of one download
 *   mdm_profile_conf.c      options by name (new, set, free)
 *   mdm_profile_finish.c    checks, derived identifiers and UUIDs
 *   mdm_profile_certs.c     certificate and key files, push topic
 *   mdm_profile_syntax.c    option value checks and parsers
 */
#ifndef MDM_PROFILE_INT_H
#define MDM_PROFILE_INT_H

#include "mdm_internal.h"
#include "mdm_profile.h"

#include <stdarg.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#define MDM_PROFILE_MAX_FILE      (1024 * 1024)
#define MDM_PROFILE_MAX_URL       2048
#define MDM_PROFILE_MAX_TEXT      1024
#define MDM_PROFILE_MAX_TRUST     16
#define MDM_PROFILE_MAX_CAPS      16
#define MDM_PROFILE_MAX_CHALLENGE 255

enum { MDM_PROFILE_FP_SHA1 = 0, MDM_PROFILE_FP_SHA256, MDM_PROFILE_FP_NONE };

struct mdm_profile_conf_s {
    char *server_url;
    char *checkin_url;
    char *topic;      /* option "topic" */
    char *push_topic; /* read from option "push_cert" */
    char *scep_url;
    char *scep_name;
    /* an ACME payload instead of SCEP (acme_url set) */
    char *acme_url;
    char *acme_client_id;
    int acme_rsa; /* KeyType RSA, else ECSECPrimeRandom */
    long acme_key_size;
    int acme_hw_bound;
    int acme_attest;
    plist_t scep_subject; /* array of RDN arrays; NULL: default */
    STACK_OF(X509) * scep_ca;
    int fp_hash;
    char *scep_challenge;
    long key_size;
    long key_usage;
    long retries;
    long retry_delay;
    long access_rights;
    int sign_message;
    int check_out;
    int dev_apns;
    int unsigned_on;
    char **caps;
    size_t ncaps;
    STACK_OF(X509) * trust;
    char *organization;
    char *display_name;
    char *description;
    char *identifier;
    X509 *sign_cert;
    EVP_PKEY *sign_key;
    STACK_OF(X509) * sign_extra; /* after the signer in the sign_cert file */
    STACK_OF(X509) * sign_chain; /* option sign_chain (repeatable) */

    /* derived by mdm_profile_conf_finish() */
    int finished;
    const char *the_topic;
    char *base_id;
    char *scep_id; /* the identity payload's (SCEP or ACME) */
    char *mdm_id;
    unsigned char fp[EVP_MAX_MD_SIZE];
    unsigned int fplen;
    STACK_OF(X509) * chain; /* sign_extra + sign_chain, sent in the CMS */
    char uuid_profile[37];
    char uuid_scep[37];
    char uuid_mdm[37];
    char (*trust_uuid)[37];
    char **trust_id;
};

/* ---- option values (mdm_profile_syntax.c) ---- */

/** Printable text: no control characters, at most max bytes. */
int mdm_profile_text_ok(const char *v, size_t max);
/** on|true|yes|1 -> 1, off|false|no|0 -> 0 into *out; -1 otherwise. */
int mdm_profile_parse_bool(const char *v, int *out);
/**
 * NULL when v is an absolute http(s) URL with a host, no credentials, no
 * spaces or control characters (https_only refuses http://); otherwise
 * why not (static text).
 */
const char *mdm_profile_url_problem(const char *v, int https_only);
/** A PayloadIdentifier: reverse-DNS style, at most 200 characters. */
int mdm_profile_identifier_ok(const char *v);
/** A push topic: "com.apple.mgmt." and more, printable, no space. */
int mdm_profile_topic_ok(const char *t);
/** A SCEP challenge: printable, at most MDM_PROFILE_MAX_CHALLENGE. */
int mdm_profile_challenge_ok(const char *c);
/** One RDN [[key, value]] (a new plist node, plist_free() or adopt). */
plist_t mdm_profile_rdn_new(const char *key, const char *value);
/**
 * "/C=US/O=Example/CN=Device" as an array of RDNs (a new plist node the
 * caller plist_free()s); NULL with a reason in why.
 */
plist_t mdm_profile_parse_subject(const char *v, char *why, size_t whylen);

/* ---- certificate and key files (mdm_profile_certs.c) ---- */

/** The first OpenSSL error of this thread as text; clears the queue. */
void mdm_profile_ossl_error(char *buf, size_t len);
/**
 * Every certificate of a PEM file, or the one of a DER file, into *out: a
 * new stack the caller frees (sk_X509_pop_free(sk, X509_free)). -1 with
 * a message naming the option name in err.
 */
int mdm_profile_load_certs(const char *name, const char *path,
                           STACK_OF(X509) * *out, char *err, size_t errlen);
/** An unencrypted PEM private key (EVP_PKEY_free()); NULL and err. */
EVP_PKEY *mdm_profile_load_key(const char *name, const char *path, char *err,
                               size_t errlen);
/** A subject entry as UTF-8, malloc'd (free()), or NULL. */
char *mdm_profile_name_entry(X509_NAME *n, int nid);
/**
 * The certificate at the top of the chain sk's certificates form,
 * starting from the first one (a reference owned by sk).
 */
X509 *mdm_profile_chain_top(STACK_OF(X509) * sk);
/**
 * Move every certificate of src to the end of *dst (created when NULL);
 * src is freed in every case. -2 when *dst would hold more than max, -1
 * out of memory.
 */
int mdm_profile_take_certs(STACK_OF(X509) * *dst, STACK_OF(X509) * src,
                           int max);

/* ---- the XML plist (mdm_profile_payload.c) ---- */

/** One log line through fn (nothing when fn is NULL). */
void mdm_profile_log(mdm_log_fn fn, void *data, mdm_log_level_t level,
                     const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/**
 * The XML plist of one download into *xml (xml->ptr malloc'd: the caller
 * mdm_buf_free()s it, after OPENSSL_cleanse() as it holds the
 * challenge). -1 after logging one line.
 */
int mdm_profile_xml(const mdm_profile_conf_t *p, const char *challenge,
                    mdm_log_fn log_fn, void *log_data, mdm_buf_t *xml);

#endif
