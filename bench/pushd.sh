#!/bin/sh
# Benchmark (not a test): pushes per second through mdm-pushd to a local
# APNs stand-in, next to h2load against the same stand-in in the same run,
# and mdm-pushd's RSS before and after.
#
#   sh bench/pushd.sh [BUILD_DIR] [N] [ROUNDS] [STANDIN]
#
# N push requests (distinct enrollments, so none is coalesced) are queued
# in the stream of a private redis-server, then mdm-pushd is started and
# timed until every one is acknowledged; ROUNDS times (RSS after each).
# STANDIN is "nginx" (default: Debian's nginx, HTTP/2, `return 200`, client
# certificate required) or "python" (t/pushd/apns_standin.py, the tests'
# stand-in; it is the bottleneck, a few thousand requests/s at most).
# h2load cannot present a client certificate, so it talks to a second
# listener of the same server that does not ask for one; everything else
# (TLS, HTTP/2, streams, the answer) is the same.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
n=${2:-100000}
rounds=${3:-2}
standin=${4:-nginx}
pushd_bin=$build/pushd/mdm-pushd
[ -x "$pushd_bin" ] || { echo "bench: $pushd_bin not built" >&2; exit 2; }
for t in redis-server redis-cli h2load openssl; do
    command -v $t >/dev/null || { echo "bench: $t missing" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mdm-pushd-bench.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port() { # a free port in 20000-32000
    /usr/bin/python3 -c 'import random,socket
while True:
    p = random.randrange(20000, 32000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); break
    except OSError: pass
    finally: s.close()
print(p)'
}
wait_port() {
    /usr/bin/python3 -c 'import socket, sys, time
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("bench: port %s not up" % sys.argv[1])' "$1"
}
rss() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }
cpu() { # user+system CPU seconds of a process
    awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' \
        /proc/"$1"/stat
}

# ---- PKI: CA, server certificate, MDM push certificate (Subject UID)
cd "$tmp"
uuid=$(cat /proc/sys/kernel/random/uuid)
topic=com.apple.mgmt.External.$uuid
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days 30 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 30 -extfile server.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout push.key -out push.csr \
    -subj "/UID=$topic/CN=APSP:$uuid/C=US" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >push.ext
openssl x509 -req -in push.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 365 -extfile push.ext -out push.pem 2>/dev/null

# ---- Redis
rport=$(port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save '' \
    --appendonly no --daemonize no --logfile "$tmp/redis.log" &
pids="$pids $!"
echo $! >"$tmp/redis.pid"
wait_port "$rport"
rcli() { redis-cli -p "$rport" "$@"; }

# ---- stand-in
sport=$(port)
hport=$(port)
if [ "$standin" = nginx ]; then
    mkdir -p ngx
    chmod 755 "$tmp" ngx # the worker (nobody) reaches the upstream socket
    cat >ngx/nginx.conf <<EOF
worker_processes 1;
daemon off;
pid $tmp/ngx/nginx.pid;
error_log $tmp/ngx/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $tmp/ngx;
    proxy_temp_path $tmp/ngx;
    fastcgi_temp_path $tmp/ngx;
    uwsgi_temp_path $tmp/ngx;
    scgi_temp_path $tmp/ngx;
    http2_max_concurrent_streams 1000;
    keepalive_requests 100000000;
    ssl_certificate $tmp/server.pem;
    ssl_certificate_key $tmp/server.key;
    # APNs reads the request body before it answers; nginx's own
    # "return 200" answers first and resets the stream's upload
    # (RST_STREAM). So, like APNs, the answer comes from a local upstream
    # after nginx has read the body.
    upstream ok { server unix:$tmp/ngx/ok.sock; keepalive 64; }
    server {
        listen unix:$tmp/ngx/ok.sock;
        location / { add_header apns-id \$request_id; return 200; }
    }
    server {
        listen 127.0.0.1:$sport ssl http2;
        ssl_client_certificate $tmp/ca.pem;
        ssl_verify_client on;
        location /3/device/ {
            proxy_pass http://ok;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:$hport ssl http2;
        location /3/device/ {
            proxy_pass http://ok;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    /usr/sbin/nginx -c "$tmp/ngx/nginx.conf" -e "$tmp/ngx/error.log" &
    pids="$pids $!"
    wait_port "$sport"
    wait_port "$hport"
    srv_pid=$(cat "$tmp/ngx/nginx.pid")
    srv_cpu_pid=$(pgrep -P "$srv_pid" | head -1) # the worker
else
    /usr/bin/python3 "$top/t/pushd/apns_standin.py" --port "$sport" \
        --cert server.pem --key server.key --ca ca.pem >/dev/null &
    spid=$!
    pids="$pids $spid"
    /usr/bin/python3 "$top/t/pushd/apns_standin.py" --port "$hport" \
        --cert server.pem --key server.key --ca ca.pem --no-client-cert \
        >/dev/null &
    pids="$pids $!"
    wait_port "$sport"
    wait_port "$hport"
    srv_pid=$spid
    srv_cpu_pid=$spid
fi

# ---- enrollments: N records as TokenUpdate leaves them
/usr/bin/python3 - "$n" "$topic" <<'EOF' | rcli --pipe >/dev/null
import os, sys
n, topic = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
def cmd(*a):
    b = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x.encode() if isinstance(x, str) else x
        b.append(b"$%d\r\n%s\r\n" % (len(x), x))
    out.write(b"".join(b))
for i in range(n):
    cmd("HSET", "mdm:{B-%07d}:rec" % i, "type", "Device", "topic", topic,
        "token", os.urandom(32).hex(), "magic", "5D2A3E6E-%028d" % i,
        "enabled", "1")
EOF
queue() { # N push requests exactly as the core's admin "push" writes them
    /usr/bin/python3 - "$n" <<'EOF' | rcli --pipe >/dev/null
import sys
n = int(sys.argv[1])
w = sys.stdout.buffer.write
for i in range(n):
    idv = b"B-%07d" % i
    w(b"*8\r\n$4\r\nXADD\r\n$8\r\nmdm:push\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n"
      b"$7\r\n2000000\r\n$1\r\n*\r\n$2\r\nid\r\n$%d\r\n%s\r\n"
      % (len(idv), idv))
EOF
}

cat >pushd.conf <<EOF
redis 127.0.0.1:$rport
consumer bench
endpoint https://127.0.0.1:$sport
ca_file $tmp/ca.pem
connections 2
streams ${STREAMS:-100}
max_jobs 5000
batch 1000
events_maxlen 100000
status_interval_ms 200
cert $tmp/push.pem key $tmp/push.key
EOF
skey="mdm:pushd:bench:$topic"

now() { date +%s.%N; }
echo "mdm-pushd benchmark: $n pushes x $rounds round(s), stand-in $standin," \
    "$(nproc) CPU(s)"
${PUSHD_WRAP:-} "$pushd_bin" -c pushd.conf 2>pushd.log ${PUSHD_ARGS:-} &
ppid=$!
pids="$pids $ppid"
i=0
until grep -q MDM09123 pushd.log; do
    i=$((i + 1))
    [ $i -lt 200 ] || { cat pushd.log; exit 1; }
    sleep 0.05
done
sleep 0.5
rss0=$(rss "$ppid")
echo "mdm-pushd RSS idle, connected: ${rss0} kB"
done_total=0
r=1
while [ $r -le "$rounds" ]; do
    queue
    c0=$(cpu "$ppid")
    rc0=$(cpu "$(cat "$tmp/redis.pid")")
    sc0=$(cpu "$srv_cpu_pid")
    t0=$(now)
    # the daemon reads the backlog; rate until all are acknowledged
    target=$((done_total + n))
    while :; do
        s=$(rcli HGET "$skey" succeeded)
        f=$(rcli HGET "$skey" failed)
        [ $((${s:-0} + ${f:-0})) -ge "$target" ] && break
        if ! kill -0 "$ppid" 2>/dev/null; then
            cat pushd.log
            exit 1
        fi
        sleep 0.05
    done
    t1=$(now)
    done_total=$target
    rate=$(echo "$n $t0 $t1" | awk '{printf "%.0f", $1 / ($3 - $2)}')
    echo "round $r: mdm-pushd $rate pushes/s ($n in $(echo "$t0 $t1" |
        awk '{printf "%.2f", $2 - $1}') s), RSS $(rss "$ppid") kB," \
        "stand-in RSS $(rss "$srv_pid") kB"
    echo "  CPU seconds: mdm-pushd $(echo "$c0 $(cpu "$ppid")" |
        awk '{print $2 - $1}'), redis $(echo "$rc0 $(cpu "$(cat "$tmp/redis.pid")")" |
        awk '{print $2 - $1}'), stand-in $(echo "$sc0 $(cpu "$srv_cpu_pid")" |
        awk '{print $2 - $1}')"
    r=$((r + 1))
done
pend=$(rcli XPENDING mdm:push mdm-pushd | head -1)
failed=$(rcli HGET "$skey" failed)
echo "pending after the run: $pend; failed: ${failed:-0}"

# ---- the ceiling: h2load, same server, same request, same run
tok=$(rcli HGET 'mdm:{B-0000000}:rec' token)
printf '{"mdm":"5D2A3E6E-0000000000000000000000000000"}' >body.json
h2load -n "$n" -c 2 -m "${STREAMS:-100}" -d body.json \
    -H "apns-topic: $topic" -H 'apns-push-type: mdm' \
    -H 'apns-priority: 10' -H 'apns-expiration: 0' \
    -H 'content-type: application/json' \
    "https://127.0.0.1:$hport/3/device/$tok" >h2load.out 2>&1 || true
h2=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' h2load.out)
grep -E '^(finished in|requests:|status codes:)' h2load.out
echo "h2load (2 connections, ${STREAMS:-100} streams each): ${h2:-?} req/s"
echo "mdm-pushd last round: $rate pushes/s =" \
    "$(echo "$rate ${h2:-0}" | awk '{ if ($2 > 0) printf "%.0f%%", 100 * $1 / $2; else print "?" }')" \
    "of h2load; RSS ${rss0} kB idle -> $(rss "$ppid") kB after" \
    "$done_total pushes"
kill -TERM "$ppid"
wait "$ppid" || true
