#!/bin/sh
# core/ must stay server-neutral and sans-IO:
#  - no nginx, httpd or APR header in it;
#  - no hiredis I/O: core/ may read replies (struct redisReply and the
#    REDIS_REPLY_* constants come from <hiredis.h>), but never connects,
#    sends or waits. The blocking runner is tools/mdm_sync.c.
dir=${top_srcdir:-.}/core
status=0
bad=$(grep -rlE '#[[:space:]]*include[[:space:]]*[<"](ngx_|nginx\.h|httpd\.h|http_[a-z_]+\.h|apr_|apr\.h|ap_|mod_)' "$dir")
if [ -n "$bad" ]; then
    echo "FAIL: server headers included in core/:"
    echo "$bad"
    status=1
fi
# the async API has its own header; the blocking API shares hiredis.h with
# the reply type, so its names are refused instead
bad=$(grep -rlE '#[[:space:]]*include[[:space:]]*[<"](hiredis/)?(async|adapters/[a-z]+)\.h' "$dir")
if [ -n "$bad" ]; then
    echo "FAIL: hiredis' async API included in core/:"
    echo "$bad"
    status=1
fi
bad=$(grep -rnE '\b(redisContext|redisConnect[A-Za-z]*|redisCommand[A-Za-z]*|redisvCommand|redisAppend[A-Za-z]*|redisGetReply[A-Za-z]*|redisBuffer[A-Za-z]*|redisFree|redisReconnect|redisSetTimeout|redisEnableKeepAlive|redisAsync[A-Za-z]*)\b' "$dir" --include='*.c' --include='*.h')
if [ -n "$bad" ]; then
    echo "FAIL: hiredis I/O used in core/ (plans only; the glue runs them):"
    echo "$bad"
    status=1
fi
[ $status -eq 0 ] &&
    echo "ok: core/ includes no nginx, httpd or APR header and does no hiredis I/O"
exit $status
