/*
 * Per-device encrypted profiles (internal to libmdm): a configuration
 * profile whose payloads travel as EncryptedPayloadContent, a CMS
 * EnvelopedData (AES-256-CBC, RSA key transport) of the XML plist of the
 * PayloadContent array, encrypted to one device's identity certificate;
 * the outer profile is then signed (CMS SignedData, content attached) when
 * a signer is configured. Pure work: no Redis, no file.
 *
 *   mdm_encprofile.c          the admin transaction (POST /profiles/...)
 *     mdm_profile_enc.c       this builder
 */
#ifndef MDM_PROFILE_ENC_H
#define MDM_PROFILE_ENC_H

#include "mdm_internal.h"
#include "mdm_profile.h"

#include <openssl/x509.h>
#include <plist/plist.h>

typedef struct {
    plist_t outer;   /* the profile's own keys (no PayloadContent) */
    plist_t content; /* the PayloadContent array */
    char identifier[256];
    char uuid[37];
} mdm_encprof_t;

/**
 * Split an admin's dictionary into e: either a profile (a PayloadContent
 * array of payload dictionaries, and the profile's own keys:
 * PayloadIdentifier, PayloadDisplayName...) or one payload (a dictionary
 * with a PayloadType), wrapped. Missing PayloadUUID, PayloadVersion,
 * PayloadType (Configuration) and PayloadIdentifier are filled in. body is
 * borrowed. Returns -1 with a reason in why (nothing kept).
 */
int mdm_encprof_prepare(mdm_encprof_t *e, plist_t body, char *why,
                        size_t whylen);
void mdm_encprof_clear(mdm_encprof_t *e);

/** 1 when p (may be NULL) has a signer and is not "unsigned on". */
int mdm_encprof_can_sign(const mdm_profile_conf_t *p);

/**
 * The profile of e encrypted to cert (an RSA key), signed with signer's
 * sign_cert and sign_key when signer is not NULL (see can_sign), else the
 * XML plist. *out is malloc'd. Returns -1 with a reason in why.
 */
int mdm_encprof_build(const mdm_encprof_t *e, X509 *cert,
                      const mdm_profile_conf_t *signer, unsigned char **out,
                      size_t *outlen, char *why, size_t whylen);

#endif
