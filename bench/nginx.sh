#!/bin/sh
# HTTPS keep-alive benchmark of ngx_mdm next to nginx answering a static 200
# to the same requests on the same TLS setup, in the same run.
#   bench/nginx.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [WORKERS]
# WORKERS (default 1) nginx workers serve both the module and the static
# 200, and wrk runs as many threads.
# Needs: wrk, nginx, redis-server, /usr/bin/python3 with cryptography.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
secs=${2:-10}
conns=${3:-32}
workers=${4:-1}
work=$(mktemp -d /tmp/mdm-bench-ngx-XXXXXX)
udid=BENCH-0000-4000-8000-000000000001
topic=com.apple.mgmt.External.bench
key=bench-admin-key-0123456789
redis_pid=""
cleanup() {
    [ ! -f "$work/run/nginx.pid" ] || kill -QUIT "$(cat "$work/run/nginx.pid")" 2>/dev/null || true
    [ -z "$redis_pid" ] || { kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; }
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

sh "$src/t/pki/mkpki.sh" "$work/pki" >/dev/null
rport=$(freeport)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --loglevel warning >/dev/null 2>&1 &
redis_pid=$!

port=$(freeport)
sport=$(freeport)
mkdir -p "$work/run/logs" "$work/run/tmp"
echo "admin:$(openssl passwd -apr1 bench)" >"$work/run/htpasswd"
/usr/bin/python3 "$src/tools/render-conf.py" "$src/conf/nginx" "$work/run" \
    MODULE="$build/ngx_mdm/ngx_http_mdm_module.so" WORKERS="$workers" \
    RUN="$work/run" CONF="$work/run" CONF_RUN="$work/run" \
    REDIS="127.0.0.1:$rport" PKI="$work/pki" PORT="$port" \
    PROXIED_PORT="$(freeport)" VERIFY_PORT="$(freeport)" \
    UPSTREAM_PORT="$(freeport)" TOPIC="$topic" ADMIN_KEY="$key" \
    SCEP_PORT="${scep_port:-$(freeport)}" PROFILE_TOPIC="$topic"
# the baseline: the same TLS setup answering a static 200
cat >"$work/run/static.conf" <<EOF2
server {
    listen 127.0.0.1:$sport ssl;
    ssl_certificate $work/pki/server-chain.pem;
    ssl_certificate_key $work/pki/server.key;
    ssl_verify_client optional_no_ca;
    access_log $work/run/logs/access.log mdm;
    client_max_body_size 1m;
    location / { return 200; }
}
EOF2
sed -i "s|include $work/run/mdm-verify-proxy.conf;|&\\n    include $work/run/static.conf;|" \
    "$work/run/nginx.conf"
chmod -R 755 "$work"
nginx -p "$work/run" -c "$work/run/nginx.conf" >"$work/nginx.out" 2>&1 &
i=0
until [ -f "$work/run/nginx.pid" ] && curl -sk "https://127.0.0.1:$sport/" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$work/nginx.out"; exit 1; }
    sleep 0.1
done
worker=$(pgrep -P "$(cat "$work/run/nginx.pid")" | head -1)
rss() { ps -o rss= -p "$worker" | tr -d ' '; }

# enroll the bench device
/usr/bin/python3 "$src/bench/mkrequests.py" "$work/pki" "$work" "$udid" "$topic"
for m in authenticate tokenupdate; do
    curl -sk -X PUT --data-binary "@$work/$m.body" \
        -H "Mdm-Signature: $(cat "$work/$m.sig")" \
        -o /dev/null -w "%{http_code} $m\n" "https://127.0.0.1:$port/mdm/checkin"
done

printf '\nnginx %s, wrk -t%s -c%s -d%ss, %s worker(s), HTTPS keep-alive\n' \
    "$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$workers" "$conns" "$secs" \
    "$workers"
printf '%-40s %10s %10s %12s %10s\n' scenario req/s p99 worker-RSS-KB \
    redis-us/req
rss0=$(rss)
wrk_threads=$workers
pidfile=$work/run/nginx.pid
. "$src/bench/lib-run.sh"
mdm=application/x-apple-aspen-mdm
run "static 200 (baseline, Idle request)" "https://127.0.0.1:$sport/mdm/connect" idle $mdm
run "Idle, empty queue" "https://127.0.0.1:$port/mdm/connect" idle $mdm
"$build/tools/mdmctl" --redis "127.0.0.1:$rport" enqueue "$udid" - --nopush \
    >/dev/null <<'EOF2'
{"CommandUUID":"BENCH-CMD-0001","Command":{"RequestType":"DeviceInformation"}}
EOF2
run "Idle + Acknowledged, command queued" "https://127.0.0.1:$port/mdm/connect" idle,ack $mdm
if [ -n "${MDM_BENCH_PROFILE:-}" ]; then
    perf record -g -o "$MDM_BENCH_PROFILE" -p "$worker" -- sleep 5 \
        >/dev/null 2>&1 &
    perf_pid=$!
    run "Idle (profiled: $MDM_BENCH_PROFILE)" "https://127.0.0.1:$port/mdm/connect" idle $mdm
    wait "$perf_pid"
fi
run "TokenUpdate" "https://127.0.0.1:$port/mdm/checkin" tokenupdate $mdm-checkin
if [ -n "${MDM_BENCH_REDIS_STATS:-}" ]; then
    # per command: calls and microseconds per call inside Redis
    redis-cli -p "$rport" info commandstats | grep -E '^cmdstat_' |
        sed 's/,rejected_calls.*//'
fi
printf 'worker RSS before: %s KB, after: %s KB\n' "$rss0" "$(rss)"
grep -E '\[(alert|crit|emerg)\]' "$work/run/logs/error.log" || true
