/*
 * The transaction layer (mdm_tx.h): the one place that answers, refuses,
 * logs and handles storage failures and NOSCRIPT for every transaction.
 */
#include "mdm_tx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>

#define MDM_RETRY_AFTER 5

static const char ct_json[] = "application/json";

mdm_tx_t *
mdm_tx_new(size_t size, const mdm_tx_ops_t *ops, const mdm_conf_t *c)
{
    mdm_tx_t *tx = calloc(1, size);

    if (tx != NULL) {
        tx->ops = ops;
        tx->conf = c;
    }
    return tx;
}

void
mdm_tx_free(mdm_tx_t *tx)
{
    if (tx == NULL) {
        return;
    }
    if (tx->ops && tx->ops->free) {
        tx->ops->free(tx);
    }
    mdm_planb_free(&tx->pb);
    mdm_buf_free(&tx->out);
    free(tx);
}

mdm_step_t
mdm_tx_start(mdm_tx_t *tx)
{
    if (tx->pre_status) {
        if (tx->pre_json) {
            return mdm_tx_json_error(tx, tx->pre_status, tx->pre_id,
                                     tx->pre_msg);
        }
        return mdm_tx_refuse(tx, tx->pre_status, tx->pre_level, tx->pre_id,
                             "%s", tx->pre_msg);
    }
    return tx->ops->start(tx);
}

mdm_step_t
mdm_tx_feed(mdm_tx_t *tx, struct redisReply *const *rep, size_t n)
{
    if (tx->done) {
        return MDM_STEP_DONE;
    }
    return tx->ops->feed(tx, rep, n);
}

void
mdm_tx_pre_refuse(mdm_tx_t *tx, int status, mdm_log_level_t level,
                  const char *id, int json, const char *fmt, ...)
{
    va_list ap;

    tx->pre_status = status;
    tx->pre_level = level;
    tx->pre_id = id;
    tx->pre_json = json;
    va_start(ap, fmt);
    vsnprintf(tx->pre_msg, sizeof(tx->pre_msg), fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- */
/* logging and answers                                              */

void
mdm_tx_vlog(mdm_tx_t *tx, mdm_log_level_t level, const char *id,
            const char *fmt, va_list ap)
{
    char buf[1024], *p;
    int n = 0;

    if (tx->log_fn == NULL) {
        return;
    }
    if (tx->what) {
        n = snprintf(buf, sizeof(buf), "%s: ", tx->what);
        if (n < 0 || (size_t) n >= sizeof(buf)) {
            n = 0;
        }
    }
    vsnprintf(buf + n, sizeof(buf) - (size_t) n, fmt, ap);
    /* device and admin input is quoted in messages: one line, always
       (nginx and httpd write it to the error log unescaped) */
    for (p = buf; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    tx->log_fn(tx->log_data, level, id, buf);
}

void
mdm_tx_log(mdm_tx_t *tx, mdm_log_level_t level, const char *id, const char *fmt,
           ...)
{
    va_list ap;

    va_start(ap, fmt);
    mdm_tx_vlog(tx, level, id, fmt, ap);
    va_end(ap);
}

mdm_step_t
mdm_tx_reply(mdm_tx_t *tx, int status, const char *ctype, mdm_buf_t *buf)
{
    if (buf && buf != &tx->out) {
        mdm_buf_free(&tx->out);
        tx->out = *buf;
        buf->ptr = NULL;
        buf->len = 0;
    } else if (buf == NULL) {
        mdm_buf_free(&tx->out);
    }
    tx->resp.status = status;
    tx->resp.content_type = tx->out.len ? ctype : NULL;
    tx->resp.body = tx->out.ptr;
    tx->resp.body_len = tx->out.len;
    tx->resp.retry_after = 0;
    tx->done = 1;
    return MDM_STEP_DONE;
}

mdm_step_t
mdm_tx_reply_str(mdm_tx_t *tx, int status, const char *ctype, const char *s)
{
    if (mdm_buf_set(&tx->out, s, strlen(s)) != 0) {
        return mdm_tx_oom(tx);
    }
    return mdm_tx_reply(tx, status, ctype, &tx->out);
}

mdm_step_t
mdm_tx_refuse(mdm_tx_t *tx, int status, mdm_log_level_t level, const char *id,
              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mdm_tx_vlog(tx, level, id, fmt, ap);
    va_end(ap);
    tx->vars[MDM_VAR_ERROR_ID] = id;
    tx->resp.no_store = 0;
    return mdm_tx_reply(tx, status, NULL, NULL);
}

mdm_step_t
mdm_tx_oom(mdm_tx_t *tx)
{
    return mdm_tx_refuse(tx, 500, MDM_LOG_ERR, "MDM09001", "out of memory");
}

mdm_step_t
mdm_tx_storage_failed(mdm_tx_t *tx, const struct redisReply *rep)
{
    if (rep == NULL) {
        mdm_tx_refuse(tx, 503, MDM_LOG_ERR, "MDM04001",
                      "storage unavailable (connection error or timeout)");
    } else {
        mdm_tx_refuse(tx, 503, MDM_LOG_ERR, "MDM04002", "storage error: %.*s",
                      rep->type == REDIS_REPLY_ERROR ? (int) rep->len : 16,
                      rep->type == REDIS_REPLY_ERROR ? rep->str
                                                     : "unexpected reply");
    }
    tx->resp.retry_after = MDM_RETRY_AFTER;
    return MDM_STEP_DONE;
}

mdm_step_t
mdm_tx_json(mdm_tx_t *tx, int status, struct json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    mdm_buf_t b = {0};

    json_decref(j);
    if (s == NULL) {
        return mdm_tx_oom(tx);
    }
    b.ptr = (unsigned char *) s;
    b.len = strlen(s);
    return mdm_tx_reply(tx, status, ct_json, &b);
}

mdm_step_t
mdm_tx_json_error(mdm_tx_t *tx, int status, const char *id, const char *msg)
{
    json_t *j;
    char safe[512];
    size_t i;

    mdm_tx_log(tx, MDM_LOG_NOTICE, id, "admin request refused: %s", msg);
    tx->vars[MDM_VAR_ERROR_ID] = id;
    j = json_pack("{s:s,s:s}", "error", msg, "id", id);
    if (j == NULL) {
        /* msg quotes input that is not UTF-8: answer 400, not 500 */
        for (i = 0; msg[i] && i < sizeof(safe) - 1; i++) {
            safe[i] = (unsigned char) msg[i] < 0x80 ? msg[i] : '?';
        }
        safe[i] = '\0';
        j = json_pack("{s:s,s:s}", "error", safe, "id", id);
    }
    return mdm_tx_json(tx, status, j);
}

/* ---------------------------------------------------------------- */
/* plans                                                            */

void
mdm_tx_evalsha(mdm_tx_t *tx, mdm_lua_t which)
{
    tx->script = which;
    tx->script_cmd = tx->pb.ncmds;
    mdm_planb_cmd(&tx->pb);
    mdm_planb_str(&tx->pb, "EVALSHA");
    mdm_planb_str(&tx->pb, mdm_script(which)->sha1);
}

int
mdm_tx_noscript(mdm_tx_t *tx, const struct redisReply *rep)
{
    if (tx->evalled || rep == NULL || rep->type != REDIS_REPLY_ERROR ||
        strncmp(rep->str, "NOSCRIPT", 8) != 0) {
        return 0;
    }
    /* Resend only the script: the appends after it already ran. */
    tx->evalled = 1;
    mdm_planb_to_eval(&tx->pb, tx->script_cmd, mdm_script(tx->script));
    tx->pb.first[0] = tx->pb.first[tx->script_cmd];
    tx->pb.cmds[0].argc = tx->pb.cmds[tx->script_cmd].argc;
    tx->pb.ncmds = 1;
    tx->script_cmd = 0;
    tx->plan = mdm_planb_finish(&tx->pb, 1);
    return tx->plan != NULL;
}

mdm_step_t
mdm_tx_plan(mdm_tx_t *tx, size_t nreplies)
{
    tx->plan = mdm_planb_finish(&tx->pb, nreplies);
    return tx->plan ? MDM_STEP_REDIS : mdm_tx_oom(tx);
}
