/* See store_fixture.h. */
#include "store_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

void
store_fixture_load(sim_device_t *d, const char *pki, const char *name)
{
    char c[600], k[600];

    snprintf(c, sizeof(c), "%s/%s.pem", pki, name);
    snprintf(k, sizeof(k), "%s/%s.key", pki, name);
    if (sim_device_load(d, c, k) != 0) {
        fail_msg("cannot load %s", c);
    }
}

mdm_conf_t *
store_fixture_conf(const char *pki, const char *topic, ...)
{
    mdm_conf_t *c = mdm_conf_new();
    char err[512], ca[600];
    const char *name, *value;
    va_list ap;
    int ok;

    if (c == NULL) {
        fprintf(stderr, "conf: out of memory\n");
        return NULL;
    }
    snprintf(ca, sizeof(ca), "%s/cafile.pem", pki);
    ok = mdm_conf_set(c, "prefix", "t:", err, sizeof(err)) == 0 &&
         mdm_conf_set(c, "ca_file", ca, err, sizeof(err)) == 0 &&
         mdm_conf_set(c, "topic", topic, err, sizeof(err)) == 0;
    va_start(ap, topic);
    while (ok && (name = va_arg(ap, const char *)) != NULL) {
        value = va_arg(ap, const char *);
        ok = mdm_conf_set(c, name, value, err, sizeof(err)) == 0;
    }
    va_end(ap);
    if (!ok || mdm_conf_finish(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "conf: %s\n", err);
        mdm_conf_free(c);
        return NULL;
    }
    return c;
}
