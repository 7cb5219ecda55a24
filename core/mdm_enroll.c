/*
 * Enrollment: the SCEP CA and the enrollment profile behind mdm_req_*,
 * so that the modules run them through the same loop as device requests.
 * (Placeholder until the SCEP and profile cores land: every option is
 * refused, so no configuration can name them yet.)
 */
#include "mdm_internal.h"

#include <stdio.h>
#include <string.h>

int
mdm_conf_can(const mdm_conf_t *c, mdm_can_t what)
{
    (void) c;
    (void) what;
    return 0;
}

static mdm_req_t *
mdm_enroll_refused(const mdm_conf_t *c)
{
    mdm_admin_args_t a;
    mdm_req_t *r;

    memset(&a, 0, sizeof(a));
    r = mdm_req_new_admin(c, &a);
    if (r) {
        r->pre_status = 501;
        r->pre_id = "MDM08000";
        snprintf(r->pre_msg, sizeof(r->pre_msg), "enrollment not available");
    }
    return r;
}

mdm_req_t *
mdm_req_new_scep_http(const mdm_conf_t *c, const char *method, size_t mlen,
                      const char *query, size_t qlen, const unsigned char *body,
                      size_t blen)
{
    (void) method;
    (void) mlen;
    (void) query;
    (void) qlen;
    (void) body;
    (void) blen;
    return mdm_enroll_refused(c);
}

mdm_req_t *
mdm_req_new_profile(const mdm_conf_t *c)
{
    return mdm_enroll_refused(c);
}
