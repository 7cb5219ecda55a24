/*
 * Shared by the libFuzzer targets that drive a whole transaction through
 * the public loop (mdm.h: start, plan, feed, response): a configuration,
 * Redis replies chosen by the input, and the contract checked on every
 * response. Included once per target (static functions).
 *
 * Replies: shaped as Redis answers each planned command (an integer for
 * EXISTS, an array of argc-2 strings or nils for HMGET, ...), with the
 * values, the occasional LOADING/NOSCRIPT error and storage failure
 * chosen by a generator seeded from the input; a script's reply
 * (EVALSHA) may have any shape.
 */
#ifndef FUZZ_TX_H
#define FUZZ_TX_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis.h>
#include <openssl/err.h>

#include "mdm.h"

#define FZ_MAX_ROUNDS  12
#define FZ_MAX_REPLIES 64

static int fz_logs;

static void
fz_log(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    const char *p;

    (void) data;
    (void) level;
    for (p = msg; p && *p && (unsigned char) *p >= 0x20 && *p != 0x7f; p++) {
    }
    if (id == NULL || strncmp(id, "MDM", 3) != 0 || msg == NULL || *p) {
        fprintf(stderr, "fuzz: bad log line %s: %s\n", id ? id : "(no id)",
                msg ? msg : "(null)");
        abort();
    }
    fz_logs++;
}

/* a configuration from name/value pairs; NULL-terminated */
static mdm_conf_t *
fz_conf(const char *const *opts)
{
    mdm_conf_t *c = mdm_conf_new();
    char err[512] = "";

    for (; c && opts[0]; opts += 2) {
        if (mdm_conf_set(c, opts[0], opts[1], err, sizeof(err)) != 0) {
            fprintf(stderr, "fuzz: %s=%s: %s\n", opts[0], opts[1], err);
            abort();
        }
    }
    if (c == NULL || mdm_conf_finish(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz: configuration: %s\n", err);
        abort();
    }
    return c;
}

/* a small deterministic generator: the reply choices of one input */
static unsigned
fz_next(unsigned *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 17;
    *st ^= *st << 5;
    return *st;
}

static char *const fz_pool[] = {
    "OK",
    "1",
    "0",
    "",
    "1700000000",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "0F1E2D3C-0000-4000-8000-000000000002",
    "com.apple.configuration.management.test t",
    "{\"a\":[1,\"x\"]}",
    "<plist version=\"1.0\"><dict><key>RequestType</key>"
    "<string>ProfileList</string></dict></plist>",
};

/* reply storage of one round, freed by fz_round_free() */
typedef struct {
    redisReply *all;
    redisReply **els;
    size_t nall, nels;
} fz_round_t;

static redisReply *
fz_take(fz_round_t *rd)
{
    return rd->nall < 4 * FZ_MAX_REPLIES ? &rd->all[rd->nall++] : NULL;
}

static void
fz_str(redisReply *x, unsigned *st)
{
    char *s = fz_pool[fz_next(st) % (sizeof(fz_pool) / sizeof(fz_pool[0]))];

    x->type = REDIS_REPLY_STRING;
    x->str = s;
    x->len = strlen(s);
}

/* an array of k strings (nil among them when nils) */
static void
fz_array(fz_round_t *rd, redisReply *x, size_t k, int nils, unsigned *st)
{
    size_t i;

    x->type = REDIS_REPLY_ARRAY;
    x->element = rd->els + rd->nels;
    for (i = 0; i < k && rd->nels < 8 * FZ_MAX_REPLIES; i++) {
        redisReply *e = fz_take(rd);

        if (e == NULL) {
            break;
        }
        if (nils && fz_next(st) % 3 == 0) {
            e->type = REDIS_REPLY_NIL;
        } else {
            fz_str(e, st);
        }
        rd->els[rd->nels++] = e;
        x->elements++;
    }
}

static int
fz_is(const mdm_cmd_t *c, const char *name)
{
    return c->argc > 0 && strlen(name) == c->argvlen[0] &&
           memcmp(c->argv[0], name, c->argvlen[0]) == 0;
}

/*
 * One reply shaped as Redis answers the command: an error now and then
 * (LOADING, NOSCRIPT: a restarting or flushed server), otherwise what
 * the command returns. Scripts (EVALSHA) get nil, an integer, a string or
 * an array of strings: the core checks which one a script answered, but
 * not the type of each element (a Lua table has no nil in it).
 */
static redisReply *
fz_reply_for(fz_round_t *rd, const mdm_cmd_t *c, unsigned *st)
{
    static char e_loading[] = "LOADING Redis is loading the dataset in memory",
                e_noscript[] = "NOSCRIPT No matching script";
    redisReply *x = fz_take(rd);
    unsigned v = fz_next(st);

    if (x == NULL) {
        return NULL;
    }
    if (v % 16 == 0) {
        x->type = REDIS_REPLY_ERROR;
        x->str = fz_is(c, "EVALSHA") ? e_noscript : e_loading;
        x->len = strlen(x->str);
    } else if (fz_is(c, "EXISTS") || fz_is(c, "SISMEMBER") ||
               fz_is(c, "SADD") || fz_is(c, "SREM") || fz_is(c, "DEL") ||
               fz_is(c, "HSET") || fz_is(c, "LLEN") || fz_is(c, "ZADD") ||
               fz_is(c, "XDEL")) {
        x->type = REDIS_REPLY_INTEGER;
        x->integer = v / 16 % 3;
    } else if (fz_is(c, "GET") || fz_is(c, "HGET")) {
        if (v / 16 % 3 == 0) {
            x->type = REDIS_REPLY_NIL;
        } else {
            fz_str(x, st);
        }
    } else if (fz_is(c, "SET")) {
        x->type = v / 16 % 2 ? REDIS_REPLY_STATUS : REDIS_REPLY_NIL;
        x->str = x->type == REDIS_REPLY_STATUS ? fz_pool[0] : NULL;
        x->len = x->str ? 2 : 0;
    } else if (fz_is(c, "XADD")) {
        fz_str(x, st);
    } else if (fz_is(c, "HMGET")) {
        fz_array(rd, x, c->argc > 2 ? (size_t) c->argc - 2 : 0, 1, st);
    } else if (fz_is(c, "SMISMEMBER")) {
        size_t i, k = c->argc > 2 ? (size_t) c->argc - 2 : 0;

        fz_array(rd, x, k, 0, st);
        for (i = 0; i < x->elements; i++) {
            x->element[i]->type = REDIS_REPLY_INTEGER;
            x->element[i]->integer = fz_next(st) % 2;
            x->element[i]->str = NULL;
            x->element[i]->len = 0;
        }
    } else if (fz_is(c, "HGETALL")) {
        fz_array(rd, x, 2 * (v / 16 % 4), 0, st);
    } else if (fz_is(c, "SMEMBERS") || fz_is(c, "LRANGE") ||
               fz_is(c, "ZRANGEBYSCORE")) {
        fz_array(rd, x, v / 16 % 5, 0, st);
    } else {
        /* a script: any shape */
        switch (v / 16 % 6) {
        case 0:
            x->type = REDIS_REPLY_NIL;
            break;
        case 1:
            x->type = REDIS_REPLY_INTEGER;
            x->integer = v / 96 % 3;
            break;
        case 2:
            fz_str(x, st);
            break;
        default: /* Lua tables: strings, no nil in them */
            fz_array(rd, x, v / 96 % 5, 0, st);
            break;
        }
    }
    return x;
}

static void
fz_round_free(fz_round_t *rd)
{
    free(rd->all);
    free(rd->els);
}

/* run r to the end; seed: the reply choices (0 storage fails at once) */
static const mdm_response_t *
fz_run(mdm_req_t *r, unsigned seed)
{
    redisReply *rep[FZ_MAX_REPLIES];
    mdm_step_t step;
    size_t i;
    unsigned st = seed * 2654435761u + 1;
    int rounds = 0, fail;

    mdm_req_set_logger(r, fz_log, NULL);
    for (step = mdm_req_start(r); step == MDM_STEP_REDIS;) {
        const mdm_plan_t *p = mdm_req_plan(r);
        fz_round_t rd = {NULL, NULL, 0, 0};

        if (p == NULL || p->ncmds == 0 || p->nreplies > p->ncmds) {
            abort();
        }
        if (++rounds > FZ_MAX_ROUNDS) {
            return NULL; /* still going: leave it, mdm_req_free() must cope */
        }
        /* seed 0, or now and then: the storage is gone (503) */
        fail = seed % 32 == 0 || fz_next(&st) % 64 == 0 ||
               p->nreplies > FZ_MAX_REPLIES;
        rd.all = calloc(4 * FZ_MAX_REPLIES, sizeof(redisReply));
        rd.els = calloc(8 * FZ_MAX_REPLIES, sizeof(redisReply *));
        if (rd.all == NULL || rd.els == NULL) {
            abort();
        }
        for (i = 0; !fail && i < p->nreplies; i++) {
            rep[i] = fz_reply_for(&rd, &p->cmds[i], &st);
        }
        step = mdm_req_feed(r, fail ? NULL : rep, fail ? 0 : p->nreplies);
        fz_round_free(&rd);
    }
    return mdm_req_response(r);
}

/* what holds for every answer */
static void
fz_check_response(const mdm_response_t *resp)
{
    if (resp == NULL || resp->status < 200 || resp->status > 599 ||
        (resp->body_len > 0 && resp->body == NULL) ||
        (resp->body_len > 0 && resp->content_type == NULL)) {
        fprintf(stderr, "fuzz: bad answer %d\n", resp ? resp->status : -1);
        abort();
    }
    if (resp->body_len > 0) {
        volatile unsigned char c = resp->body[resp->body_len - 1];
        (void) c;
    }
    if (ERR_peek_error() != 0) {
        fprintf(stderr, "fuzz: left on the OpenSSL error queue:\n");
        ERR_print_errors_fp(stderr);
        abort();
    }
}

#endif
