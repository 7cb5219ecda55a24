/*
 * The enrollment options of a configuration: "scep.NAME" goes to the SCEP
 * CA (mdm_scep.h), "profile.NAME" to the enrollment profile
 * (mdm_profile.h), "acme.NAME" to the ACME server (mdm_acme.h). Called
 * by mdm_conf.c.
 */
#include "mdm_acme.h"
#include "mdm_internal.h"
#include "mdm_profile.h"
#include "mdm_scep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The sub-configurations' messages name their option ("ca_key: ...");
 * say which family it is ("scep.ca_key: ...") so the glue can name its
 * directive.
 */
static void
enroll_err(const char *family, const char *opt, char *err, size_t errlen)
{
    char tmp[512];
    size_t n = 0;

    snprintf(tmp, sizeof(tmp), "%s", err);
    while (tmp[n] && (tmp[n] == '_' || (tmp[n] >= 'a' && tmp[n] <= 'z'))) {
        n++;
    }
    if (n > 0 && tmp[n] == ':') {
        snprintf(err, errlen, "%s.%s", family, tmp);
    } else if (opt) {
        snprintf(err, errlen, "%s.%s: %s", family, opt, tmp);
    } else {
        snprintf(err, errlen, "%s: %s", family, tmp);
    }
}

int
mdm_enroll_conf_set(mdm_conf_t *c, const char *name, const char *value,
                    char *err, size_t errlen)
{
    if (strncmp(name, "scep.", 5) == 0) {
        name += 5;
        if (strcmp(name, "crl_days") == 0) {
            char *end;
            long n = strtol(value, &end, 10);

            if (*end || n < 1 || n > 365) {
                snprintf(err, errlen,
                         "scep.crl_days: expected 1-365 days, got \"%s\"",
                         value);
                return -1;
            }
            c->crl_days = n;
            return 0;
        }
        if (c->scep == NULL && (c->scep = mdm_scep_ca_new()) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (strcmp(name, "prefix") == 0) {
            snprintf(err, errlen,
                     "scep.prefix: the SCEP CA uses the "
                     "configuration's prefix");
            return -1;
        }
        if (mdm_scep_ca_set(c->scep, name, value, err, errlen) != 0) {
            enroll_err("scep", name, err, errlen);
            return -1;
        }
        if (strcmp(name, "challenge") == 0) {
            c->scep_dynamic = strcmp(value, "dynamic") == 0;
        }
        return 0;
    }
    if (strncmp(name, "acme.", 5) == 0) {
        name += 5;
        if (c->acme == NULL && (c->acme = mdm_acme_conf_new()) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (mdm_acme_conf_set(c->acme, name, value, err, errlen) != 0) {
            enroll_err("acme", name, err, errlen);
            return -1;
        }
        return 0;
    }
    name += 8; /* "profile." */
    if (c->profile == NULL && (c->profile = mdm_profile_conf_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mdm_profile_conf_set(c->profile, name, value, err, errlen) != 0) {
        enroll_err("profile", name, err, errlen);
        return -1;
    }
    return 0;
}

int
mdm_enroll_conf_finish(mdm_conf_t *c, char *err, size_t errlen)
{
    if (c->scep &&
        (mdm_scep_ca_set(c->scep, "prefix", c->prefix, err, errlen) != 0 ||
         mdm_scep_ca_finish(c->scep, err, errlen) != 0)) {
        enroll_err("scep", NULL, err, errlen);
        return -1;
    }
    if (c->profile && mdm_profile_conf_finish(c->profile, err, errlen) != 0) {
        enroll_err("profile", NULL, err, errlen);
        return -1;
    }
    if (c->acme && mdm_acme_conf_finish(c->acme, err, errlen) != 0) {
        enroll_err("acme", NULL, err, errlen);
        return -1;
    }
    return 0;
}

void
mdm_enroll_conf_free(mdm_conf_t *c)
{
    mdm_scep_ca_free(c->scep);
    mdm_profile_conf_free(c->profile);
    mdm_acme_conf_free(c->acme);
}

int
mdm_conf_can(const mdm_conf_t *c, mdm_can_t what)
{
    if (!c->finished) {
        return 0;
    }
    if (what == MDM_CAN_ACME) {
        return c->acme != NULL && c->scep != NULL;
    }
    return what == MDM_CAN_SCEP ? c->scep != NULL : c->profile != NULL;
}
