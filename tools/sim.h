/*
 * A scripted device for tests, the demo and benchmarks: builds check-in
 * and report plists and signs them like a device (Mdm-Signature).
 */
#ifndef MDM_SIM_H
#define MDM_SIM_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mdm.h"

struct redisContext;

typedef struct {
    X509 *cert;
    EVP_PKEY *key;
    const EVP_MD *md; /* signature digest (default SHA-256) */
} sim_device_t;

/** Load a PEM certificate and key. Returns -1 on failure. */
int sim_device_load(sim_device_t *d, const char *cert_pem, const char *key_pem);
void sim_device_free(sim_device_t *d);

/**
 * A message plist from NULL-terminated key/value string pairs. Keys Token,
 * UnlockToken, BootstrapToken, Data become <data> of the value's bytes;
 * values "true"/"false" for AwaitingConfiguration/NotOnConsole become
 * booleans. Returns malloc'd XML and its length.
 */
char *sim_plist(size_t *len, ...);

/** Mdm-Signature value over body: malloc'd base64 (free()). */
char *sim_sign(const sim_device_t *d, const void *body, size_t len);

typedef struct {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
    char error_id[16];
    char next_uuid[64];
} sim_resp_t;

void sim_resp_free(sim_resp_t *r);

/**
 * Send body through the core on a blocking Redis connection, signed by d
 * (d may be NULL: no identity). Returns the HTTP status.
 */
int sim_send(struct redisContext *rc, const mdm_conf_t *conf, mdm_endpoint_t ep,
             const sim_device_t *d, const char *body, size_t len,
             sim_resp_t *out);

#endif
