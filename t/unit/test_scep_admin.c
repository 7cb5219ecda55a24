/*
 * The admin transaction (mdm_scep_admin.c): the plans of CHALLENGE and
 * REVOKE, their refusals, and the HTTP routes that make them.
 */
#include <string.h>

#include "test_scep.h"

static void
test_admin_plans(void **state)
{
    mdm_scep_ca_t *dyn = sample_ca_conf("dynamic", NULL, NULL, NULL, NULL);
    mdm_scep_ca_t *st = sample_ca_conf(CHALLENGE, NULL, NULL, NULL, NULL);
    const mdm_plan_t *plan;
    const mdm_response_t *resp;
    mdm_scep_req_t *r;

    (void) state;
    r = mdm_scep_req_new_admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, "abc", 60);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_int_equal(plan->cmds[0].argc, 6);
    assert_string_equal(plan->cmds[0].argv[0], "SET");
    assert_string_equal(plan->cmds[0].argv[3], "NX");
    assert_string_equal(plan->cmds[0].argv[4], "EX");
    assert_string_equal(plan->cmds[0].argv[5], "60");
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_STATUS, "OK")),
                     MDM_STEP_DONE);
    resp = mdm_scep_req_response(r);
    assert_int_equal(resp->status, 201);
    assert_string_equal(resp->content_type, "application/json");
    assert_int_equal(resp->body_len,
                     strlen("{\"challenge\":\"abc\",\"ttl\":60}"));
    assert_memory_equal(resp->body, "{\"challenge\":\"abc\",\"ttl\":60}",
                        resp->body_len);
    mdm_scep_req_free(r);

    log_reset();
    r = mdm_scep_req_new_admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, NULL, 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    assert_string_equal(mdm_scep_req_plan(r)->cmds[0].argv[5], "3600");
    assert_int_equal(feed1(r, rep_new(REDIS_REPLY_NIL, NULL)), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 409);
    assert_string_equal(last_id, "MDM08052");
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(dyn, MDM_SCEP_ADMIN_CHALLENGE, "has space", 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    assert_string_equal(last_id, "MDM08050");
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_CHALLENGE, NULL, 0);
    mdm_scep_req_set_logger(r, log_sink, NULL);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_REVOKE, "00:AB:Cd:01", 0);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
    plan = mdm_scep_req_plan(r);
    assert_string_equal(plan->cmds[0].argv[0], "EVALSHA");
    assert_string_equal(plan->cmds[0].argv[3], "t:{scep}:cert:abcd01");
    assert_string_equal(plan->cmds[0].argv[4], "t:{scep}:revoked");
    assert_int_equal(feed1(r, rep_array1("UNKNOWN")), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 404);
    mdm_scep_req_free(r);

    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_REVOKE, "xyz", 0);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    mdm_scep_req_free(r);
    r = mdm_scep_req_new_admin(st, MDM_SCEP_ADMIN_REVOKE, "0000", 0);
    assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
    assert_int_equal(mdm_scep_req_response(r)->status, 400);
    mdm_scep_req_free(r);
    /* the HTTP routes */
    {
        static const char b1[] = "{\"challenge\":\"from-json\",\"ttl\":90}";
        static const char b2[] = "{\"ttl\":\"soon\"}";

        r = mdm_scep_req_new_admin_http(dyn, "POST", 4, "/challenge", 10,
                                        (const unsigned char *) b1,
                                        sizeof(b1) - 1);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        plan = mdm_scep_req_plan(r);
        assert_string_equal(plan->cmds[0].argv[5], "90");
        assert_int_equal(feed1(r, rep_new(REDIS_REPLY_STATUS, "OK")),
                         MDM_STEP_DONE);
        resp = mdm_scep_req_response(r);
        assert_int_equal(resp->status, 201);
        assert_non_null(memmem(resp->body, resp->body_len, "from-json", 9));
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(dyn, "POST", 4, "challenge/", 10, NULL,
                                        0);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(dyn, "POST", 4, "/challenge", 10,
                                        (const unsigned char *) b2,
                                        sizeof(b2) - 1);
        mdm_scep_req_set_logger(r, log_sink, NULL);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 400);
        assert_string_equal(mdm_scep_req_response(r)->content_type,
                            "application/json");
        assert_string_equal(last_id, "MDM08050");
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(dyn, "GET", 3, "/challenge", 10, NULL,
                                        0);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 405);
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(st, "POST", 4, "/revoke/0A%3Abc", 15,
                                        NULL, 0);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_REDIS);
        assert_string_equal(mdm_scep_req_plan(r)->cmds[0].argv[3],
                            "t:{scep}:cert:abc");
        mdm_scep_req_free(r);
        r = mdm_scep_req_new_admin_http(st, "POST", 4, "/nothing", 8, NULL, 0);
        mdm_scep_req_set_logger(r, log_sink, NULL);
        assert_int_equal(mdm_scep_req_start(r), MDM_STEP_DONE);
        assert_int_equal(mdm_scep_req_response(r)->status, 404);
        assert_string_equal(last_id, "MDM08053");
        mdm_scep_req_free(r);
    }
    mdm_scep_ca_free(dyn);
    mdm_scep_ca_free(st);
}

int
scep_admin_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin_plans),
    };

    return cmocka_run_group_tests_name("scep_admin", tests, NULL, NULL);
}
