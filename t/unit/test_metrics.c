/*
 * Unit tests for tools/mdm_metrics.c, the counter block both modules
 * share: where each request, refusal and Redis wait is counted, and the
 * Prometheus text (families, labels, cumulative buckets, exact seconds,
 * a buffer too small).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mdm_metrics.h"

static void
test_request_index(void **state)
{
    size_t seen[MDM_METRICS_N] = {0};
    const char *types[] = {"Authenticate", "Idle",    "NotNow", "admin",
                           "scep",         "profile", "Florp",  NULL};
    int statuses[] = {200, 400, 503, 299, 0};
    size_t i, j, k;

    (void) state;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        for (j = 0; j < sizeof(statuses) / sizeof(statuses[0]); j++) {
            k = mdm_metrics_request(types[i], statuses[j]);
            assert_true(k < MDM_METRICS_REFUSALS);
            seen[k]++;
        }
    }
    /* distinct, except the "other" status: 299 and 0 share it */
    assert_int_equal(mdm_metrics_request("Idle", 299),
                     mdm_metrics_request("Idle", 0));
    assert_int_not_equal(mdm_metrics_request("Idle", 200),
                         mdm_metrics_request("Idle", 400));
    assert_int_not_equal(mdm_metrics_request("Idle", 200),
                         mdm_metrics_request(NULL, 200));
    /* an unknown type is "other", not "none" */
    assert_int_equal(mdm_metrics_request("Florp", 200),
                     mdm_metrics_request("Blah", 200));
    assert_int_not_equal(mdm_metrics_request("Florp", 200),
                         mdm_metrics_request(NULL, 200));
}

static void
test_refusal_index(void **state)
{
    (void) state;
    assert_int_equal(mdm_metrics_refusal("MDM00000"), MDM_METRICS_REFUSALS);
    assert_int_equal(mdm_metrics_refusal("MDM02002"),
                     MDM_METRICS_REFUSALS + 2 * MDM_METRICS_ID_NUMS + 2);
    assert_int_equal(mdm_metrics_refusal("MDM15127"),
                     MDM_METRICS_REFUSAL_OTHER - 1);
    assert_int_equal(mdm_metrics_refusal("MDM16001"),
                     MDM_METRICS_REFUSAL_OTHER);
    assert_int_equal(mdm_metrics_refusal("MDM01128"),
                     MDM_METRICS_REFUSAL_OTHER);
    assert_int_equal(mdm_metrics_refusal("MDM0100"), MDM_METRICS_REFUSAL_OTHER);
    assert_int_equal(mdm_metrics_refusal("MDM010011"),
                     MDM_METRICS_REFUSAL_OTHER);
    assert_int_equal(mdm_metrics_refusal("XYZ01001"),
                     MDM_METRICS_REFUSAL_OTHER);
    assert_int_equal(mdm_metrics_refusal("MDM0a001"),
                     MDM_METRICS_REFUSAL_OTHER);
    assert_int_equal(mdm_metrics_refusal(NULL), MDM_METRICS_REFUSAL_OTHER);
}

static void
test_buckets(void **state)
{
    (void) state;
    assert_int_equal(mdm_metrics_redis_bucket(0), MDM_METRICS_REDIS_BUCKET);
    assert_int_equal(mdm_metrics_redis_bucket(250), MDM_METRICS_REDIS_BUCKET);
    assert_int_equal(mdm_metrics_redis_bucket(251),
                     MDM_METRICS_REDIS_BUCKET + 1);
    assert_int_equal(mdm_metrics_redis_bucket(2500000),
                     MDM_METRICS_REDIS_BUCKET + MDM_METRICS_BUCKETS - 2);
    assert_int_equal(mdm_metrics_redis_bucket(UINT64_MAX),
                     MDM_METRICS_REDIS_BUCKET + MDM_METRICS_BUCKETS - 1);
}

static void
test_render(void **state)
{
    uint64_t *m = calloc(MDM_METRICS_N, sizeof(uint64_t));
    char *text, small[64];
    size_t len, n;

    (void) state;
    assert_non_null(m);
    m[mdm_metrics_request("Idle", 200)] = 3;
    m[mdm_metrics_request(NULL, 400)] = 1;
    m[mdm_metrics_request("Idle", 299)] = 2;
    m[mdm_metrics_refusal("MDM02002")] = 1;
    m[mdm_metrics_refusal("bogus")] = 4;
    m[mdm_metrics_redis_bucket(300)] = 2;
    m[mdm_metrics_redis_bucket(9000000)] = 1;
    m[MDM_METRICS_REDIS_SUM_US] = 9000600;
    m[MDM_METRICS_REDIS_COUNT] = 3;
    m[MDM_METRICS_REDIS_ERRORS + MDM_METRICS_ERR_TIMEOUT] = 5;
    m[MDM_METRICS_CACHE_HIT] = 7;
    m[MDM_METRICS_DIRECT] = 8;

    len = mdm_metrics_render(m, NULL, 0);
    text = malloc(len + 1);
    assert_non_null(text);
    assert_int_equal(mdm_metrics_render(m, text, len + 1), len);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "# TYPE mdm_requests_total counter\n"));
    assert_non_null(
        strstr(text, "\nmdm_requests_total{type=\"Idle\",status=\"200\"} 3\n"));
    assert_non_null(
        strstr(text, "\nmdm_requests_total{type=\"none\",status=\"400\"} 1\n"));
    assert_non_null(strstr(
        text, "\nmdm_requests_total{type=\"Idle\",status=\"other\"} 2\n"));
    assert_null(strstr(text, "type=\"Authenticate\""));
    assert_non_null(strstr(text, "\nmdm_refusals_total{id=\"MDM02002\"} 1\n"));
    assert_non_null(strstr(text, "\nmdm_refusals_total{id=\"other\"} 4\n"));
    assert_non_null(strstr(text, "# TYPE mdm_redis_seconds histogram\n"));
    assert_non_null(
        strstr(text, "\nmdm_redis_seconds_bucket{le=\"0.00025\"} 0\n"));
    assert_non_null(
        strstr(text, "\nmdm_redis_seconds_bucket{le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(text, "\nmdm_redis_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "\nmdm_redis_seconds_bucket{le=\"2.5\"} 2\n"));
    assert_non_null(
        strstr(text, "\nmdm_redis_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "\nmdm_redis_seconds_sum 9.000600\n"));
    assert_non_null(strstr(text, "\nmdm_redis_seconds_count 3\n"));
    assert_non_null(
        strstr(text, "\nmdm_redis_errors_total{kind=\"timeout\"} 5\n"));
    assert_non_null(
        strstr(text, "\nmdm_redis_errors_total{kind=\"connect\"} 0\n"));
    assert_non_null(
        strstr(text, "\nmdm_identity_cache_total{result=\"hit\"} 7\n"));
    assert_non_null(
        strstr(text, "\nmdm_identity_cache_total{result=\"miss\"} 0\n"));
    assert_non_null(strstr(text, "\nmdm_identity_direct_total 8\n"));
    assert_int_equal(text[len - 1], '\n');

    /* too small: cut, NUL-terminated, the same length needed */
    n = mdm_metrics_render(m, small, sizeof(small));
    assert_int_equal(n, len);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, text, sizeof(small) - 1);
    free(text);
    free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_index),
        cmocka_unit_test(test_refusal_index),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_render),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
