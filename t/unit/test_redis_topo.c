/*
 * Unit tests for core/mdm_redis_topo.c: addresses, hash slots (against
 * the CLUSTER KEYSLOT answers of a real cluster-enabled redis-server the
 * test starts on a free loopback port, and published values), routing
 * keys, MOVED/ASK parsing, failover errors, Sentinel and ROLE replies,
 * the slot map from a CLUSTER SLOTS reply, the password file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis.h>

#include "mdm_redis_topo.h"
#include "redis_fixture.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static mdm_cmd_t
cmd_of(const char **argv, size_t *lens, int argc)
{
    mdm_cmd_t c;
    int i;

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    c.argc = argc;
    c.argv = argv;
    c.argvlen = lens;
    return c;
}

static const char *
route(int argc, ...)
{
    static const char *argv[16];
    static size_t lens[16];
    static char out[256];
    mdm_cmd_t c;
    const char *k;
    size_t len;
    va_list ap;
    int i;

    va_start(ap, argc);
    for (i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    c = cmd_of(argv, lens, argc);
    k = mdm_cmd_route_key(&c, &len);
    if (k == NULL) {
        return NULL;
    }
    snprintf(out, sizeof(out), "%.*s", (int) len, k);
    return out;
}

/* ------------------------------------------------------------------ */
/* addresses                                                           */

static void
test_addr_parse(void **state)
{
    mdm_redis_addr_t a;
    char err[256], buf[300];

    (void) state;
    assert_int_equal(
        mdm_redis_addr_parse("127.0.0.1:6380", 14, &a, err, sizeof(err)), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6380);
    assert_string_equal(mdm_redis_addr_format(&a, buf, sizeof(buf)),
                        "127.0.0.1:6380");
    assert_int_equal(
        mdm_redis_addr_parse("[::1]:7000", 10, &a, err, sizeof(err)), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 7000);
    assert_string_equal(mdm_redis_addr_format(&a, buf, sizeof(buf)),
                        "[::1]:7000");
    assert_int_equal(
        mdm_redis_addr_parse("unix:/run/redis.sock", 20, &a, err, sizeof(err)),
        0);
    assert_string_equal(a.host, "/run/redis.sock");
    assert_int_equal(a.port, 0);
    assert_string_equal(mdm_redis_addr_format(&a, buf, sizeof(buf)),
                        "unix:/run/redis.sock");
    /* only the first len bytes count */
    assert_int_equal(
        mdm_redis_addr_parse("127.0.0.1:6380 junk", 14, &a, err, sizeof(err)),
        0);
    assert_int_equal(a.port, 6380);

    assert_int_equal(
        mdm_redis_addr_parse("localhost:6379", 14, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not an IP"));
    assert_int_equal(mdm_redis_addr_parse("127.0.0.1", 9, &a, err, sizeof(err)),
                     -1);
    assert_int_equal(
        mdm_redis_addr_parse("127.0.0.1:0", 11, &a, err, sizeof(err)), -1);
    assert_int_equal(
        mdm_redis_addr_parse("127.0.0.1:65536", 15, &a, err, sizeof(err)), -1);
    assert_int_equal(
        mdm_redis_addr_parse("127.0.0.1:6a", 12, &a, err, sizeof(err)), -1);
    assert_int_equal(mdm_redis_addr_parse(":6379", 5, &a, err, sizeof(err)),
                     -1);
    assert_int_equal(
        mdm_redis_addr_parse("unix:rel.sock", 13, &a, err, sizeof(err)), -1);
    assert_int_equal(mdm_redis_addr_parse("", 0, &a, err, sizeof(err)), -1);
}

/* ------------------------------------------------------------------ */
/* slots                                                               */

static void
test_slot_known(void **state)
{
    (void) state;
    /* published values (Redis Cluster specification and CLUSTER KEYSLOT
       documentation) */
    assert_int_equal(mdm_redis_slot("123456789", 9), 0x31C3 & 16383);
    assert_int_equal(mdm_redis_slot("foo", 3), 12182);
    assert_int_equal(mdm_redis_slot("somekey", 7), 11058);
    assert_int_equal(mdm_redis_slot("foo{hash_tag}", 13), 2515);
    assert_int_equal(mdm_redis_slot("", 0), 0);
    /* the hash tag rule */
    assert_int_equal(mdm_redis_slot("{user1000}.following", 20),
                     mdm_redis_slot("{user1000}.followers", 20));
    assert_int_equal(mdm_redis_slot("foo{bar}{zap}", 13),
                     mdm_redis_slot("bar", 3));
    assert_int_equal(mdm_redis_slot("foo{{bar}}zap", 13),
                     mdm_redis_slot("{bar", 4));
    assert_int_equal(mdm_redis_slot("foo{}{bar}", 10),
                     mdm_redis_slot("foo{}{bar}", 10));
    assert_int_not_equal(mdm_redis_slot("foo{}{bar}", 10),
                         mdm_redis_slot("bar", 3));
    /* a device's keys share its slot (core/lua/KEYS.md) */
    assert_int_equal(mdm_redis_slot("mdm:{UDID-1}:rec", 16),
                     mdm_redis_slot("mdm:{UDID-1}:user:q", 19));
}

static void
test_slot_vs_redis(void **state)
{
    redis_fixture_t n;
    redisContext *c;
    redisReply *r;
    char key[64];
    const char *argv[3] = {"CLUSTER", "KEYSLOT", key};
    size_t lens[3] = {7, 7, 0};
    unsigned seed = 12345;
    int i, j, len;

    (void) state;
    /* a cluster-enabled redis-server, no slots assigned: enough for KEYSLOT */
    assert_int_equal(redis_fixture_start_cluster(&n), 0);
    c = redis_fixture_connect(&n);
    assert_non_null(c);
    for (i = 0; i < 600; i++) {
        len = (int) (rand_r(&seed) % 24);
        for (j = 0; j < len; j++) {
            /* printable, with many braces to exercise the tag rule */
            static const char chars[] = "ab{}:-0123XYZ{}";
            key[j] = chars[rand_r(&seed) % (sizeof(chars) - 1)];
        }
        if (i % 7 == 0 && len > 0) {
            key[0] = (char) (rand_r(&seed) % 255 + 1); /* any byte */
        }
        lens[2] = (size_t) len;
        r = redisCommandArgv(c, 3, argv, lens);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(mdm_redis_slot(key, (size_t) len),
                         (unsigned) r->integer);
        freeReplyObject(r);
    }
    redisFree(c);
    redis_fixture_stop(&n);
}

/* ------------------------------------------------------------------ */
/* routing keys                                                        */

static void
test_route_keys(void **state)
{
    (void) state;
    assert_string_equal(route(5, "EVALSHA", "abc", "2", "mdm:{D}:rec", "k2"),
                        "mdm:{D}:rec");
    assert_string_equal(route(4, "eval", "return 1", "1", "K"), "K");
    assert_null(route(3, "EVAL", "return 1", "0"));
    assert_null(route(4, "EVALSHA", "abc", "x", "K"));
    assert_null(route(3, "SCRIPT", "LOAD", "return 1"));
    assert_null(route(1, "PING"));
    assert_null(route(3, "WAIT", "1", "100"));
    assert_string_equal(route(2, "GET", "mdm:x"), "mdm:x");
    assert_string_equal(route(3, "SMEMBERS", "mdm:s", "x"), "mdm:s");
    assert_string_equal(route(4, "HMGET", "mdm:{D}:rec", "a", "b"),
                        "mdm:{D}:rec");
    assert_string_equal(route(5, "XADD", "mdm:events", "*", "k", "v"),
                        "mdm:events");
    assert_string_equal(route(8, "XREADGROUP", "GROUP", "g", "c", "COUNT", "10",
                              "STREAMS", "mdm:push"),
                        "mdm:push");
    assert_string_equal(
        route(7, "XREAD", "BLOCK", "0", "STREAMS", "mdm:ev", "$", "x"),
        "mdm:ev");
    assert_null(route(3, "XREAD", "BLOCK", "0"));
    assert_string_equal(route(3, "XINFO", "STREAM", "mdm:push"), "mdm:push");
    assert_string_equal(route(5, "XGROUP", "CREATE", "mdm:push", "g", "$"),
                        "mdm:push");
    assert_string_equal(route(4, "XACK", "mdm:push", "g", "1-1"), "mdm:push");
    assert_null(route(1, "GET"));
    assert_null(route(0));
}

/* ------------------------------------------------------------------ */
/* reply errors                                                        */

static void
test_redirect(void **state)
{
    mdm_redis_addr_t to;
    unsigned slot = 0;
    int ask = -1;
    const char *m = "MOVED 3999 127.0.0.1:6381";
    const char *a = "ASK 16383 [::1]:7002";

    (void) state;
    assert_int_equal(mdm_redis_redirect(m, strlen(m), &ask, &slot, &to), 1);
    assert_int_equal(ask, 0);
    assert_int_equal(slot, 3999);
    assert_string_equal(to.host, "127.0.0.1");
    assert_int_equal(to.port, 6381);
    assert_int_equal(mdm_redis_redirect(a, strlen(a), &ask, &slot, &to), 1);
    assert_int_equal(ask, 1);
    assert_int_equal(slot, 16383);
    assert_string_equal(to.host, "::1");
    assert_int_equal(to.port, 7002);
#define NOT_REDIRECT(s)                                                        \
    assert_int_equal(mdm_redis_redirect(s, strlen(s), &ask, &slot, &to), 0)
    NOT_REDIRECT("MOVED");
    NOT_REDIRECT("MOVED 16384 127.0.0.1:1");
    NOT_REDIRECT("MOVED x 127.0.0.1:1");
    NOT_REDIRECT("MOVED 1 host:1");
    NOT_REDIRECT("MOVED 1 127.0.0.1");
    NOT_REDIRECT("MOVEDX 1 127.0.0.1:1");
    NOT_REDIRECT("ASKING 1 127.0.0.1:1");
    NOT_REDIRECT("ERR unknown command");
    NOT_REDIRECT("NOSCRIPT No matching script");
    NOT_REDIRECT("");
    /* only len bytes are read */
    assert_int_equal(mdm_redis_redirect(m, 5, &ask, &slot, &to), 0);

    assert_int_equal(mdm_redis_error_failover("READONLY You can't write", 24),
                     1);
    assert_int_equal(mdm_redis_error_failover("MASTERDOWN Link down", 20), 1);
    assert_int_equal(mdm_redis_error_failover("LOADING Redis is loading", 24),
                     1);
    assert_int_equal(mdm_redis_error_failover("CLUSTERDOWN x", 13), 1);
    assert_int_equal(mdm_redis_error_failover("TRYAGAIN x", 10), 0);
    assert_int_equal(mdm_redis_error_failover("ERR READONLY", 12), 0);
    assert_int_equal(mdm_redis_error_failover("READONLYX", 9), 0);
    assert_int_equal(mdm_redis_error_failover("NOSCRIPT x", 10), 0);
}

/* ------------------------------------------------------------------ */
/* built replies (the shapes hiredis gives)                            */

static redisReply *
r_new(int type)
{
    redisReply *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    r->type = type;
    return r;
}

static redisReply *
r_str(int type, const char *s)
{
    redisReply *r = r_new(type);

    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *
r_int(long long v)
{
    redisReply *r = r_new(REDIS_REPLY_INTEGER);

    r->integer = v;
    return r;
}

static redisReply *
r_arr(size_t n, ...)
{
    redisReply *r = r_new(REDIS_REPLY_ARRAY);
    va_list ap;
    size_t i;

    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    va_start(ap, n);
    for (i = 0; i < n; i++) {
        r->element[i] = va_arg(ap, redisReply *);
    }
    va_end(ap);
    return r;
}

static void
test_sentinel_role(void **state)
{
    mdm_redis_addr_t a;
    redisReply *r;

    (void) state;
    r = r_arr(2, r_str(REDIS_REPLY_STRING, "127.0.0.1"),
              r_str(REDIS_REPLY_STRING, "6390"));
    assert_int_equal(mdm_redis_sentinel_addr(r, &a), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6390);
    freeReplyObject(r);
    r = r_arr(2, r_str(REDIS_REPLY_STRING, "::1"),
              r_str(REDIS_REPLY_STRING, "6390"));
    assert_int_equal(mdm_redis_sentinel_addr(r, &a), 0);
    assert_string_equal(a.host, "::1");
    freeReplyObject(r);
    r = r_new(REDIS_REPLY_NIL);
    assert_int_equal(mdm_redis_sentinel_addr(r, &a), -1);
    freeReplyObject(r);
    r = r_str(REDIS_REPLY_ERROR, "IDONTKNOW");
    assert_int_equal(mdm_redis_sentinel_addr(r, &a), -1);
    freeReplyObject(r);
    r = r_arr(2, r_str(REDIS_REPLY_STRING, "127.0.0.1"),
              r_str(REDIS_REPLY_STRING, "0"));
    assert_int_equal(mdm_redis_sentinel_addr(r, &a), -1);
    freeReplyObject(r);
    assert_int_equal(mdm_redis_sentinel_addr(NULL, &a), -1);

    r = r_arr(3, r_str(REDIS_REPLY_STRING, "master"), r_int(10), r_arr(0));
    assert_int_equal(mdm_redis_role_is_master(r), 1);
    freeReplyObject(r);
    r = r_arr(5, r_str(REDIS_REPLY_STRING, "slave"),
              r_str(REDIS_REPLY_STRING, "127.0.0.1"), r_int(6390),
              r_str(REDIS_REPLY_STRING, "connected"), r_int(10));
    assert_int_equal(mdm_redis_role_is_master(r), 0);
    freeReplyObject(r);
    r = r_str(REDIS_REPLY_ERROR, "NOAUTH");
    assert_int_equal(mdm_redis_role_is_master(r), 0);
    freeReplyObject(r);
    assert_int_equal(mdm_redis_role_is_master(NULL), 0);

    r = r_str(REDIS_REPLY_ERROR, "READONLY You can't write against a "
                                 "read only replica.");
    assert_int_equal(mdm_redis_reply_failover(r), 1);
    freeReplyObject(r);
    r = r_str(REDIS_REPLY_STATUS, "READONLY");
    assert_int_equal(mdm_redis_reply_failover(r), 0);
    freeReplyObject(r);
    assert_int_equal(mdm_redis_reply_failover(NULL), 0);
}

static redisReply *
range(long long lo, long long hi, const char *ip, long long port)
{
    return r_arr(4, r_int(lo), r_int(hi),
                 r_arr(3, r_str(REDIS_REPLY_STRING, ip), r_int(port),
                       r_str(REDIS_REPLY_STRING, "id")),
                 r_arr(3, r_str(REDIS_REPLY_STRING, "127.0.0.9"), r_int(9),
                       r_str(REDIS_REPLY_STRING, "replica")));
}

static void
test_slotmap(void **state)
{
    mdm_slotmap_t *m = malloc(sizeof(*m));
    mdm_redis_addr_t a;
    redisReply *r;
    int i;

    (void) state;
    assert_non_null(m);
    r = r_arr(4, range(0, 5460, "127.0.0.1", 7000),
              range(5461, 10922, "127.0.0.1", 7001),
              range(10923, 16383, "127.0.0.1", 7002),
              range(100, 100, "127.0.0.1", 7002));
    assert_int_equal(mdm_slotmap_load(m, r), 0);
    freeReplyObject(r);
    assert_int_equal(m->nnodes, 3); /* masters only */
    assert_int_equal(mdm_slotmap_owner(m, 0), 0);
    assert_int_equal(mdm_slotmap_owner(m, 5460), 0);
    assert_int_equal(mdm_slotmap_owner(m, 100), 2);
    assert_int_equal(mdm_slotmap_owner(m, 5461), 1);
    assert_int_equal(mdm_slotmap_owner(m, 16383), 2);
    assert_int_equal(mdm_slotmap_owner(m, 16384), -1);
    assert_int_equal(m->node[1].port, 7001);
    /* MOVED: the slot goes to a new node */
    assert_int_equal(mdm_redis_addr_parse("127.0.0.1:7003", 14, &a, NULL, 0),
                     0);
    assert_int_equal(mdm_slotmap_set(m, 42, &a), 3);
    assert_int_equal(mdm_slotmap_owner(m, 42), 3);
    assert_int_equal(mdm_slotmap_set(m, 43, &a), 3);
    assert_int_equal(m->nnodes, 4);

    /* a gap stays unknown; "?" gives an empty host */
    r = r_arr(1, range(0, 10, "?", 7000));
    assert_int_equal(mdm_slotmap_load(m, r), 0);
    freeReplyObject(r);
    assert_string_equal(m->node[0].host, "");
    assert_int_equal(mdm_slotmap_owner(m, 11), -1);

    /* bad shapes */
    r = r_arr(1, range(10, 5, "127.0.0.1", 7000));
    assert_int_equal(mdm_slotmap_load(m, r), -1);
    freeReplyObject(r);
    assert_int_equal(m->nnodes, 0);
    r = r_arr(1, range(0, 16384, "127.0.0.1", 7000));
    assert_int_equal(mdm_slotmap_load(m, r), -1);
    freeReplyObject(r);
    r = r_str(REDIS_REPLY_ERROR, "ERR This instance has cluster support "
                                 "disabled");
    assert_int_equal(mdm_slotmap_load(m, r), -1);
    freeReplyObject(r);
    assert_int_equal(mdm_slotmap_load(m, NULL), -1);
    /* too many masters */
    r = r_new(REDIS_REPLY_ARRAY);
    r->elements = MDM_REDIS_MAX_NODES + 1;
    r->element = calloc(r->elements, sizeof(*r->element));
    for (i = 0; i < (int) r->elements; i++) {
        r->element[i] = range(i, i, "127.0.0.1", 7000 + i);
    }
    assert_int_equal(mdm_slotmap_load(m, r), -1);
    freeReplyObject(r);
    free(m);
}

/* ------------------------------------------------------------------ */
/* password file and AUTH                                              */

static void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_password_file(void **state)
{
    char dir[] = "/tmp/mdm-pw-XXXXXX", path[64], buf[32], err[256];
    const char *argv[3];
    size_t lens[3];
    int loose = -1;

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pw", dir);

    write_file(path, "s3cret\nsecond line\n", 0600);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     0);
    assert_string_equal(buf, "s3cret");
    assert_int_equal(loose, 0);

    write_file(path, "with space\r\n", 0640);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     0);
    assert_string_equal(buf, "with space");
    assert_int_equal(loose, 1);

    write_file(path, "nonewline", 0400);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     0);
    assert_string_equal(buf, "nonewline");

    write_file(path, "\nsecond\n", 0600);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "empty"));
    write_file(path, "", 0600);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     -1);
    write_file(path, "0123456789012345678901234567890123456789\n", 0600);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "too long"));
    unlink(path);
    assert_int_equal(mdm_redis_read_password_file(path, buf, sizeof(buf),
                                                  &loose, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(mdm_redis_read_password_file(dir, buf, sizeof(buf), &loose,
                                                  err, sizeof(err)),
                     -1);
    rmdir(dir);

    assert_int_equal(mdm_redis_auth_argv(NULL, "pw", argv, lens), 2);
    assert_string_equal(argv[0], "AUTH");
    assert_string_equal(argv[1], "pw");
    assert_int_equal(mdm_redis_auth_argv("mdm", "pw", argv, lens), 3);
    assert_string_equal(argv[1], "mdm");
    assert_int_equal(lens[1], 3);
    assert_string_equal(argv[2], "pw");
    assert_int_equal(mdm_redis_auth_argv("", "pw", argv, lens), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_slot_known),
        cmocka_unit_test(test_slot_vs_redis),
        cmocka_unit_test(test_route_keys),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_sentinel_role),
        cmocka_unit_test(test_slotmap),
        cmocka_unit_test(test_password_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
