#!/bin/sh
# HTTPS keep-alive benchmark of mod_mdm next to Apache answering a static
# 200 to the same requests on the same TLS setup, in the same run.
#   bench/apache.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [CHILDREN] [THREADS]
# CHILDREN (default 1) event-MPM children of THREADS (default 64) threads
# each serve both the module and the static 200; wrk runs CHILDREN
# threads.
# Needs: wrk, apache2, redis-server, /usr/bin/python3 with cryptography.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
secs=${2:-10}
conns=${3:-32}
children=${4:-1}
threads=${5:-64}
work=$(mktemp -d /tmp/mdm-bench-apache-XXXXXX)
udid=BENCH-0000-4000-8000-000000000001
topic=com.apple.mgmt.External.bench
redis_pid=""
cleanup() {
    [ ! -f "$work/run/httpd.pid" ] || kill -TERM "$(cat "$work/run/httpd.pid")" 2>/dev/null || true
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
m=/usr/lib/apache2/modules
mkdir -p "$work/run" "$work/logs"
# one child process (like one nginx worker), its threads serve the load
cat >"$work/httpd.conf" <<EOF
ServerRoot $work
ServerName localhost
DefaultRuntimeDir $work/run
PidFile $work/run/httpd.pid
ErrorLog $work/logs/error.log
LogLevel warn
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule socache_shmcb_module $m/mod_socache_shmcb.so
LoadModule ssl_module $m/mod_ssl.so
LoadModule rewrite_module $m/mod_rewrite.so
LoadModule mdm_module $build/mod_mdm/mod_mdm.so
<IfDefine RUN_AS_ROOT>
User nobody
Group nogroup
</IfDefine>
StartServers $children
ServerLimit $children
ThreadsPerChild $threads
MaxRequestWorkers $((children * threads))
MaxConnectionsPerChild 0
KeepAliveTimeout 30
MaxKeepAliveRequests 0
SSLSessionCache shmcb:$work/run/ssl_scache(512000)
MDMRedis 127.0.0.1:$rport
Listen 127.0.0.1:$port https
Listen 127.0.0.1:$sport https
<VirtualHost 127.0.0.1:$port>
  SSLEngine on
  SSLCertificateFile $work/pki/server-chain.pem
  SSLCertificateKeyFile $work/pki/server.key
  SSLVerifyClient optional_no_ca
  SSLVerifyDepth 5
  LimitRequestBody 1048576
  MDMIdentity signature tls
  MDMIdentityCA $work/pki/cafile.pem
  MDMTopic $topic
  <LocationMatch "^/mdm/checkin\$">
    SetHandler mdm-checkin
  </LocationMatch>
  <LocationMatch "^/mdm/connect\$">
    SetHandler mdm-command
  </LocationMatch>
</VirtualHost>
# the baseline: the same TLS setup answering a static 200
<VirtualHost 127.0.0.1:$sport>
  SSLEngine on
  SSLCertificateFile $work/pki/server-chain.pem
  SSLCertificateKeyFile $work/pki/server.key
  SSLVerifyClient optional_no_ca
  SSLVerifyDepth 5
  LimitRequestBody 1048576
  RewriteEngine on
  RewriteRule ^ - [R=200,L]
</VirtualHost>
EOF
chmod -R 755 "$work"
root=""
[ "$(id -u)" != 0 ] || root=-DRUN_AS_ROOT
apache2 -d "$work" -f "$work/httpd.conf" $root -t >/dev/null 2>&1 ||
    apache2 -d "$work" -f "$work/httpd.conf" $root -t
apache2 -d "$work" -f "$work/httpd.conf" $root -k start
i=0
until curl -sk -X PUT "https://127.0.0.1:$sport/" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$work/logs/error.log"; exit 1; }
    sleep 0.1
done
child=$(pgrep -P "$(cat "$work/run/httpd.pid")" | head -1)
rss() { ps -o rss= -p "$child" | tr -d ' '; }

/usr/bin/python3 "$src/bench/mkrequests.py" "$work/pki" "$work" "$udid" "$topic"
for msg in authenticate tokenupdate; do
    curl -sk -X PUT --data-binary "@$work/$msg.body" \
        -H "Mdm-Signature: $(cat "$work/$msg.sig")" \
        -o /dev/null -w "%{http_code} $msg\n" "https://127.0.0.1:$port/mdm/checkin"
done

printf '\napache %s (event MPM, %s child(ren) x %s threads), wrk -t%s -c%s -d%ss, HTTPS keep-alive\n' \
    "$(apache2 -v | sed -n 's/.*Apache\/\([^ ]*\).*/\1/p')" "$children" \
    "$threads" "$children" "$conns" "$secs"
printf '%-40s %10s %10s %12s %10s\n' scenario req/s p99 child-RSS-KB \
    redis-us/req
rss0=$(rss)
wrk_threads=$children
pidfile=$work/run/httpd.pid
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
    perf record -g -o "$MDM_BENCH_PROFILE" -p "$child" -- sleep 5 \
        >/dev/null 2>&1 &
    perf_pid=$!
    run "Idle (profiled: $MDM_BENCH_PROFILE)" "https://127.0.0.1:$port/mdm/connect" idle $mdm
    wait "$perf_pid"
fi
run "TokenUpdate" "https://127.0.0.1:$port/mdm/checkin" tokenupdate $mdm-checkin
printf 'child RSS before: %s KB, after: %s KB\n' "$rss0" "$(rss)"
grep -E '\[(mdm|core):(error|crit|alert|emerg)\]' "$work/logs/error.log" | head -5 || true
