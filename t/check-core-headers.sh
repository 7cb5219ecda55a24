#!/bin/sh
# core/ must stay server-neutral: no nginx, httpd or APR header in it.
dir=${top_srcdir:-.}/core
bad=$(grep -rlE '#[[:space:]]*include[[:space:]]*[<"](ngx_|nginx\.h|httpd\.h|http_[a-z_]+\.h|apr_|apr\.h|ap_|mod_)' "$dir")
if [ -n "$bad" ]; then
    echo "FAIL: server headers included in core/:"
    echo "$bad"
    exit 1
fi
echo "ok: core/ includes no nginx, httpd or APR header"
