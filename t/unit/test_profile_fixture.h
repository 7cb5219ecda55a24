/*
 * The enrollment profile tests' shared material (test_profile_fixture.c).
 * Helpers fail the running test (cmocka) instead of returning errors.
 */
#ifndef TEST_PROFILE_FIXTURE_H
#define TEST_PROFILE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <plist/plist.h>

#include "mdm_profile.h"

#define TOPIC "com.apple.mgmt.External.0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
#define URL   "https://mdm.example.com/mdm/connect"

extern const char *pki_dir; /* MDM_TEST_PKI */
extern char tmp_dir[256];   /* this program's files, removed at the end */

/** Group setup: MDM_TEST_PKI, the temporary directory and its files. */
int profile_setup(void **state);
/** Group teardown: removes the temporary directory. */
int profile_teardown(void **state);

/** name in MDM_TEST_PKI / in the temporary directory (static buffers, 8
 * in rotation). */
char *pki(const char *name);
char *tmp(const char *name);
/** A PEM certificate (X509_free()). */
X509 *load_cert(const char *path);

/* the id and text of the last line logged through log_cb */
extern char last_log_id[16];
extern char last_log_msg[512];
void log_cb(void *data, mdm_log_level_t level, const char *id, const char *msg);

/** mdm_profile_conf_set() that must succeed. */
void set_ok(mdm_profile_conf_t *p, const char *name, const char *value);
/** A configuration with every option a device needs, not finished
 * (mdm_profile_conf_free()). */
mdm_profile_conf_t *base_conf(const char *url);
/** mdm_profile_conf_finish() that must succeed. */
void finish_ok(mdm_profile_conf_t *p);

/** The plist inside a signed profile, after CMS_verify against the test
 * root (plist_free()). */
plist_t verify_and_parse(const unsigned char *der, size_t len);
/** An XML plist (plist_free()). */
plist_t xml_parse(const unsigned char *xml, size_t len);
/** Key k of dict d, which must exist with type t (owned by d). */
plist_t item(plist_t d, const char *k, plist_type t);
/** The string, unsigned or boolean value of key k (owned by d). */
const char *str(plist_t d, const char *k);
uint64_t uint_of(plist_t d, const char *k);
int boolean(plist_t d, const char *k);
/** The idx'th payload of PayloadType type in the profile (or NULL). */
plist_t payload(plist_t root, const char *type, int idx);
/** The keys every payload has, checked. */
void common_keys(plist_t d);
/** mdm_profile_build() / mdm_profile_build_xml() that must succeed,
 * parsed (plist_free()). */
plist_t build_signed(const mdm_profile_conf_t *p, const char *challenge);
plist_t build_xml(const mdm_profile_conf_t *p, const char *challenge);
/** Every PayloadUUID and PayloadIdentifier of a profile, in order. */
void collect_uuids(plist_t root, char *buf, size_t len);

#endif
