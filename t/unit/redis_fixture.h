/* A private redis-server for tests: free loopback port, temp dir, by PID. */
#ifndef MDM_REDIS_FIXTURE_H
#define MDM_REDIS_FIXTURE_H

#include <sys/types.h>

struct redisContext;

typedef struct {
    pid_t pid;
    int port;
    char dir[256];
} redis_fixture_t;

/** Start redis-server ($REDIS_SERVER or redis-server). 0 on success. */
int redis_fixture_start(redis_fixture_t *f);
/**
 * The same, cluster-enabled (its nodes.conf in f->dir), no slot assigned
 * yet: CLUSTER KEYSLOT answers, CLUSTER ADDSLOTSRANGE makes it serve.
 */
int redis_fixture_start_cluster(redis_fixture_t *f);
void redis_fixture_stop(redis_fixture_t *f);
struct redisContext *redis_fixture_connect(const redis_fixture_t *f);

#endif
