/*
 * What the libmdm store tests share: the test PKI's devices
 * ($MDM_TEST_PKI, t/pki) and the common mdm_conf_t.
 */
#ifndef MDM_STORE_FIXTURE_H
#define MDM_STORE_FIXTURE_H

#include "mdm.h"
#include "sim.h"

/** Load pki/name.pem and pki/name.key into d; the test fails if not. */
void store_fixture_load(sim_device_t *d, const char *pki, const char *name);

/**
 * A finished conf: prefix "t:", ca_file pki/cafile.pem, topic, then the
 * (name, value) pairs that follow, up to a NULL name. NULL (with the
 * error on stderr) if a setting is refused.
 */
mdm_conf_t *store_fixture_conf(const char *pki, const char *topic, ...);

#endif
