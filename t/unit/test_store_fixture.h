/*
 * What test_store and test_store_admin share: one redis-server for the
 * group, the test PKI's devices, a log sink, and the helpers that enroll
 * devices, run admin operations, report command results and read Redis.
 */
#ifndef MDM_TEST_STORE_FIXTURE_H
#define MDM_TEST_STORE_FIXTURE_H

#include <stddef.h>
#include <stdlib.h>

#include <hiredis.h>

#include "mdm.h"
#include "redis_fixture.h"
#include "sim.h"

#define TOPIC  "com.apple.mgmt.External.test-0001"
#define UDID1  "UDID-0001"
#define UDID2  "UDID-0002"
#define USER1  "11111111-2222-3333-4444-555555555555"
#define SHARED "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

extern redis_fixture_t fx;
extern redisContext *rc;
extern sim_device_t dev1, dev2, expired, stranger;
extern char pki[512];
/** The last line log_sink received ("id msg"); emptied by flush. */
extern char logbuf[4096];

void log_sink(void *data, mdm_log_level_t level, const char *id,
              const char *msg);
/** The store conf with binding, results_ttl 60 and one optional setting. */
mdm_conf_t *make_conf(const char *binding, const char *extra_name,
                      const char *extra_value);
/** cmocka group setup/teardown: redis-server, connection, devices. */
int group_setup(void **state);
int group_teardown(void **state);
/** Per-test setup: FLUSHALL and an empty logbuf. */
int flush(void **state);

int send_msg(const mdm_conf_t *c, mdm_endpoint_t ep, const sim_device_t *d,
             sim_resp_t *out, const char *body, size_t len);
#define SEND(c, ep, d, out, ...)                                               \
    do {                                                                       \
        size_t len_;                                                           \
        char *b_ = sim_plist(&len_, __VA_ARGS__, NULL);                        \
        send_msg(c, ep, d, out, b_, len_);                                     \
        free(b_);                                                              \
    } while (0)

/** Authenticate + TokenUpdate for udid, both answered 200. */
void enroll(const mdm_conf_t *c, const sim_device_t *d, const char *udid);
mdm_req_t *admin_req(const mdm_conf_t *c, mdm_admin_op_t op, const char *id,
                     const char *uuid, const char *body);
/** Run one admin operation; its status, its body into out if not NULL. */
int admin(const mdm_conf_t *c, mdm_admin_op_t op, const char *id,
          const char *uuid, const char *body, char *out, size_t outlen);
void enqueue(const mdm_conf_t *c, const char *id, const char *uuid,
             const char *type);
/** Report Status for uuid; returns the status; next uuid in r->next_uuid. */
int report(const mdm_conf_t *c, const sim_device_t *d, const char *udid,
           const char *user, const char *status, const char *uuid,
           sim_resp_t *r);
void expect_next(const mdm_conf_t *c, const sim_device_t *d, const char *udid,
                 const char *user, const char *status, const char *uuid,
                 const char *next);
/** A redis command on rc; the test fails if there is no reply. */
redisReply *cmd(const char *fmt, ...);
long long cmd_int(const char *fmt, const char *arg);
char *hget(const char *key, const char *field);
/** DEBUG DIGEST of the whole keyspace (malloc'd). */
char *digest(void);

#endif
