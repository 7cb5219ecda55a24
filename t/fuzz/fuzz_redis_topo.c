/*
 * libFuzzer target for what core/mdm_redis_topo.c reads from Redis and
 * from configuration: the input is tried as an address, a reply error
 * (MOVED/ASK, failover words) and a key; then read as RESP with hiredis'
 * reader, and the reply is tried as a CLUSTER SLOTS map, a Sentinel
 * address and a ROLE answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "mdm_redis_topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mdm_slotmap_t map;

/* hiredis 0.14 allocates an array's elements as announced: keep the
   announced sizes small (its memory use is not what is tested here) */
static int
small_arrays(const char *s, size_t size)
{
    size_t i, j;
    long n;

    for (i = 0; i < size; i++) {
        if (s[i] != '*') {
            continue;
        }
        for (n = 0, j = i + 1; j < size && s[j] >= '0' && s[j] <= '9'; j++) {
            n = n * 10 + (s[j] - '0');
            if (n > 4096) {
                return 0;
            }
        }
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *) data;
    mdm_redis_addr_t a;
    unsigned slot;
    int ask, i;
    char err[128], buf[300];
    redisReader *rd;
    void *reply = NULL;

    if (mdm_redis_addr_parse(s, size, &a, err, sizeof(err)) == 0) {
        mdm_redis_addr_format(&a, buf, sizeof(buf));
    }
    if (mdm_redis_redirect(s, size, &ask, &slot, &a) == 1 &&
        slot >= MDM_REDIS_SLOTS) {
        abort();
    }
    (void) mdm_redis_error_failover(s, size);
    if (mdm_redis_slot(s, size) >= MDM_REDIS_SLOTS) {
        abort();
    }
    rd = small_arrays(s, size) ? redisReaderCreate() : NULL;
    if (rd == NULL) {
        return 0;
    }
    if (redisReaderFeed(rd, s, size) == REDIS_OK &&
        redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
        if (mdm_slotmap_load(&map, reply) == 0) {
            for (i = 0; i < MDM_REDIS_SLOTS; i++) {
                if (mdm_slotmap_owner(&map, (unsigned) i) >= map.nnodes) {
                    abort();
                }
            }
        }
        (void) mdm_redis_sentinel_addr(reply, &a);
        (void) mdm_redis_role_is_master(reply);
        (void) mdm_redis_reply_failover(reply);
        freeReplyObject(reply);
    }
    redisReaderFree(rd);
    return 0;
}
