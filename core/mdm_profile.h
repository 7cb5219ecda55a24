/*
 * mdm_profile: the enrollment profile (.mobileconfig) a device installs to
 * enroll: TLS trust certificates, a SCEP payload for the device identity
 * and the MDM payload, signed with CMS (attached content).
 *
 * Sans-IO like the rest of libmdm: files are read while the options are
 * set (configuration time), building a profile touches no file, socket or
 * Redis. A one-time SCEP challenge, if any, is created by the caller and
 * passed to mdm_profile_build().
 *
 *     p = mdm_profile_conf_new();
 *     mdm_profile_conf_set(p, "server_url", "https://mdm.example.com/mdm",
 *                          err, sizeof(err));          (one per option)
 *     mdm_profile_conf_finish(p, err, sizeof(err));
 *     mdm_profile_build(p, challenge, log_fn, log_data, &body, &len);
 *     ... send body with MDM_PROFILE_CONTENT_TYPE ...; free(body);
 *
 * A finished configuration is read-only: mdm_profile_build() may run in
 * several threads at once on the same one.
 *
 * Serving it (the modules' profile handler): GET and HEAD only (405
 * otherwise); 200 with Content-Type MDM_PROFILE_CONTENT_TYPE and
 * "Cache-Control: no-store" (the body may hold a one-time challenge),
 * optionally "Content-Disposition: attachment;
 * filename=enroll.mobileconfig"; 500 when the build fails (already
 * logged). The location is protected by the web server's own access
 * control (auth_basic / Require): whoever downloads it can enroll.
 */
#ifndef MDM_PROFILE_H
#define MDM_PROFILE_H

#include <stddef.h>

#include "mdm.h"

#define MDM_PROFILE_CONTENT_TYPE "application/x-apple-aspen-config"

/* Log ids of mdm_profile_build() failures (the glue answers 500). */
#define MDM_PROFILE_LOG_NOMEM     "MDM10001" /* out of memory */
#define MDM_PROFILE_LOG_SIGN      "MDM10002" /* CMS signing failed */
#define MDM_PROFILE_LOG_CHALLENGE "MDM10003" /* challenge refused */
#define MDM_PROFILE_LOG_CONF      "MDM10004" /* configuration not finished */

typedef struct mdm_profile_conf_s mdm_profile_conf_t;

/** A new profile configuration with defaults; mdm_profile_conf_free(). */
mdm_profile_conf_t *mdm_profile_conf_new(void);
void mdm_profile_conf_free(mdm_profile_conf_t *p);

/**
 * Set one option by name (the modules map their directives onto these).
 * Files are read here. On error returns -1 with a message naming the
 * option in err. Boolean options take on|off (also true|false, yes|no).
 *
 *   server_url        ServerURL, https:// (required)
 *   checkin_url       CheckInURL, https:// (default: none, = ServerURL)
 *   topic             push topic, starts "com.apple.mgmt."
 *   push_cert         PEM/DER push certificate: topic from its subject UID
 *                     (one of topic / push_cert required; both must agree)
 *   scep_url          SCEP URL, http:// or https:// (required unless
 *                     acme_url)
 *   acme_url          DirectoryURL, https://: the identity comes from an
 *                     ACME payload (com.apple.security.acme, device
 *                     attestation) instead of SCEP; scep_* then unused
 *                     but scep_subject (its Subject) and scep_key_usage
 *                     (its UsageFlags)
 *   acme_client_identifier  ClientIdentifier, the identifier the device
 *                     orders (its serial number or UDID for
 *                     device-attest-01; required with acme_url)
 *   acme_key_type     ECSECPrimeRandom (default) | RSA
 *   acme_key_size     KeySize (default 384 for EC, 2048 for RSA)
 *   acme_hardware_bound  HardwareBound (default on)
 *   acme_attest       Attest (default on; needs acme_hardware_bound)
 *   scep_name         SCEP Name (CA identifier; default none)
 *   scep_subject      "/O=Example/CN=Device": short names C L ST O OU CN,
 *                     other OpenSSL names or dotted OIDs; '\' escapes
 *                     (default "/CN=MDM Identity", plus O=organization)
 *   scep_ca           PEM/DER SCEP CA certificate(s): CAFingerprint is the
 *                     hash of the top of their chain (required unless
 *                     scep_fingerprint is none)
 *   scep_fingerprint  sha1 (default) | sha256 | none: CAFingerprint hash
 *   scep_challenge    static challenge used when build gets none
 *   scep_key_size     2048 (default) | 4096
 *   scep_key_usage    1 signing | 4 encryption | 5 both (default 5)
 *   scep_retries      PENDING retries (default 3, 0-100)
 *   scep_retry_delay  seconds between retries (default 10, 0-3600)
 *   trust_cert        PEM/DER file of TLS trust certificates (repeatable):
 *                     self-signed ones become com.apple.security.root
 *                     payloads, others com.apple.security.pkcs1
 *   organization      PayloadOrganization (default none)
 *   display_name      PayloadDisplayName (default "MDM Enrollment")
 *   description       PayloadDescription (default none)
 *   identifier        base PayloadIdentifier (default: the server host
 *                     reversed + ".enrollment": "com.example.mdm.enrollment"
 *                     for mdm.example.com)
 *   access_rights     AccessRights 1-8191 (default 8191)
 *   sign_message      SignMessage (default on)
 *   check_out_when_removed  CheckOutWhenRemoved (default on)
 *   use_development_apns    UseDevelopmentAPNS (default off)
 *   server_capabilities     comma list, or "none" (default
 *                     com.apple.mdm.per-user-connections,
 *                     com.apple.mdm.bootstraptoken)
 *   sign_cert         PEM signing certificate; more certificates in the
 *                     same file are sent as its chain
 *   sign_key          PEM private key of sign_cert (unencrypted)
 *   sign_chain        PEM intermediates sent with the signature
 *   unsigned          on: serve the profile unsigned (default off; either
 *                     this or sign_cert + sign_key is required)
 */
int mdm_profile_conf_set(mdm_profile_conf_t *p, const char *name,
                         const char *value, char *err, size_t errlen);

/**
 * Check that the options form a profile (required options, key matches
 * certificate, topic agrees with push certificate...) and derive the
 * stable identifiers and UUIDs. Returns -1 with a message in err.
 */
int mdm_profile_conf_finish(mdm_profile_conf_t *p, char *err, size_t errlen);

/** The push topic of a finished configuration (owned by p). */
const char *mdm_profile_topic(const mdm_profile_conf_t *p);

/**
 * Build one profile. challenge: the SCEP Challenge for this download
 * (NULL: the static scep_challenge, if any; "" : none). On success *out
 * is malloc'd (the caller free()s it): the DER CMS SignedData with the
 * XML plist attached, or the XML plist when unsigned. Returns -1 after
 * logging one line (MDM_PROFILE_LOG_*) through log_fn (may be NULL).
 */
int mdm_profile_build(const mdm_profile_conf_t *p, const char *challenge,
                      mdm_log_fn log_fn, void *log_data, unsigned char **out,
                      size_t *outlen);

/**
 * The XML plist alone, never signed: for inspection and tests. Same
 * arguments and ownership as mdm_profile_build().
 */
int mdm_profile_build_xml(const mdm_profile_conf_t *p, const char *challenge,
                          mdm_log_fn log_fn, void *log_data,
                          unsigned char **out, size_t *outlen);

/**
 * The TLS trust certificates (option trust_cert, every file in order) as
 * the "anchor_certs" value of an Automated Device Enrollment (DEP)
 * profile: a JSON array of strings, each the base64 of one certificate's
 * DER ("[]" when there is none). Also the body of an MDMServiceConfig
 * dep_anchor_certs_url. Works on an unfinished configuration too (the
 * certificates are read when trust_cert is set). *json is malloc'd and
 * NUL-terminated (free()); returns -1 out of memory.
 */
int mdm_profile_anchor_certs(const mdm_profile_conf_t *p, char **json,
                             size_t *len);

/**
 * The push topic of a certificate file (PEM or DER): the subject's UID
 * (0.9.2342.19200300.100.1.1), which must start "com.apple.mgmt.".
 * *topic is malloc'd (free()). Returns -1 with a message in err.
 */
int mdm_push_topic_from_file(const char *path, char **topic, char *err,
                             size_t errlen);

#endif
