/*
 * The SCEP request object (mdm_scep_req.c): the start and feed frame both
 * transaction types run in (an unfinished CA, a second start, a storage
 * failure, a reply after the answer), and the request seen as the
 * mdm_req_t that the blocking runner drives.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "test_scep.h"

/* A CA whose mdm_scep_ca_finish() was never called answers nothing. */
static void
test_unfinished_ca(void **state)
{
    mdm_scep_ca_t *raw = mdm_scep_ca_new();
    mdm_scep_req_t *r;

    (void) state;
    assert_non_null(raw);
    r = mdm_scep_req_new_http(raw, "GET", 3, "operation=GetCACaps", 19, NULL,
                              0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 500);
    assert_string_equal(last_id, "MDM09002");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(raw, MDM_SCEP_ADMIN_CHALLENGE, "abc", 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 500);
    assert_string_equal(last_id, "MDM09002");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    mdm_scep_ca_free(raw);
}

static void
test_frame(void **state)
{
    mdm_scep_ca_t *ca = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    X509 *signer;
    size_t len;
    unsigned char *m = pkcsreq(CHALLENGE, NULL, NULL, &signer, &len);
    const mdm_plan_t *plan;
    mdm_scep_req_t *r;
    mdm_req_t *tx;
    mdm_step_t step;
    char serial[64];

    (void) state;
    r = post(ca, m, len, T_GEN, &step);
    assert_int_equal(step, MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    snprintf(serial, sizeof(serial), "%s",
             mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL));
    /* started twice: the plan stands, nothing is signed or logged again */
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    assert_ptr_equal(mdm_scep_req_plan(r), plan);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_SERIAL), serial);
    assert_int_equal(nlogs, 0);

    /* as an mdm_req_t: the same plan, variables and answer */
    tx = mdm_scep_req_tx(r);
    assert_ptr_equal(mdm_req_plan(tx), plan);
    assert_string_equal(mdm_req_var(tx, MDM_VAR_MESSAGE), "PKCSReq");
    assert_int_equal(mdm_req_feed(tx, NULL, 0), MDM_STEP_DONE);
    assert_ptr_equal(mdm_req_response(tx), mdm_scep_req_response(r));
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_int_equal(mdm_scep_req_response(r)->retry_after, 5);
    assert_string_equal(last_id, "MDM04001");
    assert_non_null(strstr(last_msg, "SCEP PKCSReq"));
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_ERROR_ID), "MDM04001");
    /* answered: a late reply changes nothing */
    assert_int_equal(feed1(r, rep_array1("OK")), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    /* the admin type: a lost reply and a reply it cannot read */
    r = mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_REVOKE, "ab:cd", 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    assert_int_equal(feed1(r, NULL), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_int_equal(mdm_scep_req_response(r)->retry_after, 5);
    assert_string_equal(last_id, "MDM04001");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);
    r = mdm_scep_req_new_admin(ca, MDM_SCEP_ADMIN_REVOKE, "ab:cd", 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    log_reset();
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_STATUS, "OK")),
                     MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 503);
    assert_string_equal(last_id, "MDM04002");
    assert_int_equal(nlogs, 1);
    mdm_scep_req_free(r);

    X509_free(signer);
    free(m);
    mdm_scep_ca_free(ca);
    assert_int_equal(ERR_peek_error(), 0);
}

int
scep_req_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unfinished_ca),
        cmocka_unit_test(test_frame),
    };

    return cmocka_run_group_tests_name("scep_req", tests, NULL, NULL);
}
