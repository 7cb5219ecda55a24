#!/bin/sh
# SCEP PKCSReq issuance rate of ngx_mdm (and mod_mdm) next to Debian's
# scepserver in the same run, and next to the RSA-2048 private-key
# operations each issuance needs (openssl speed, same run).
#   bench/scep.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
# Each server gets a real PKCSReq from scepclient, recorded on its way
# (bench/scep-record.py; the message is encrypted to that server's CA),
# then wrk POSTs that same message for SECONDS (bench/wrk-scep.lua): every
# SUCCESS answer is a newly signed certificate. CA keys RSA 2048, one
# static challenge for all, one core each: one nginx worker, one Apache
# child pinned to CPU 0, scepserver with GOMAXPROCS=1
# (MDM_BENCH_GOMAXPROCS changes it). scepserver is loaded one request at a
# time (MDM_BENCH_SCEP_CONNS changes it): concurrent requests break its
# file depot; a last row shows it at CONNECTIONS too.
# MDM_BENCH_APACHE=0 skips Apache; MDM_BENCH_PROFILE=FILE records a perf
# profile (DWARF call graphs) of the nginx worker during a shorter extra
# nginx run.
#
# scepserver cannot bind to 127.0.0.1 only, so everything runs in a private
# network namespace (unshare -n) where only lo exists. Needs root, wrk,
# nginx, redis-server, Debian's scep, /usr/bin/python3, openssl; apache2
# for the Apache row. Takes about 5 x SECONDS + 20 s.
set -eu
if [ -z "${MDM_BENCH_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "$0: run as root (unshare -n)" >&2; exit 2; }
    MDM_BENCH_NETNS=1 exec unshare -n sh "$0" "$@"
fi
ip link set lo up

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
secs=${2:-10}
conns=${3:-8}
scep_conns=${MDM_BENCH_SCEP_CONNS:-1}
gomax=${MDM_BENCH_GOMAXPROCS:-1}
with_apache=${MDM_BENCH_APACHE:-1}
command -v apache2 >/dev/null 2>&1 || with_apache=0
[ -f "$build/mod_mdm/mod_mdm.so" ] || with_apache=0
chal=bench-static-challenge-42
work=$(mktemp -d /tmp/mdm-bench-scep-XXXXXX)
redis_pid="" scep_pid="" proxy_pid="" ngx_pid="" apache_pid="" perf_pid=""
cleanup() {
    [ -z "$perf_pid" ] || kill -INT "$perf_pid" 2>/dev/null || true
    [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null || true
    [ -z "$ngx_pid" ] || kill -QUIT "$ngx_pid" 2>/dev/null || true
    [ -z "$apache_pid" ] || kill -TERM "$apache_pid" 2>/dev/null || true
    [ -z "$scep_pid" ] || kill "$scep_pid" 2>/dev/null || true
    for p in $perf_pid $ngx_pid $apache_pid $scep_pid $proxy_pid; do
        wait "$p" 2>/dev/null || true
    done
    [ -z "$redis_pid" ] || { kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
waitport() { # port [pid]
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$1/scep?operation=GetCACaps"; do
        i=$((i + 1))
        if [ $i -ge 100 ] || { [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; }; then
            echo "nothing listens on port $1" >&2
            return 1
        fi
        sleep 0.1
    done
}
hz=$(getconf CLK_TCK)
cputicks() { # pids...: user + system ticks, all threads
    t=0
    for p in "$@"; do
        # the command name (field 2) may hold spaces: count after ")"
        n=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || n=0
        t=$((t + ${n:-0}))
    done
    echo "$t"
}

# 1. the baseline: RSA-2048 private-key operations (sign/s) on one core,
# measured before the servers are loaded and again after; the faster of
# the two (the less disturbed by whatever else runs) is used
rsa_speed() {
    v=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')
    [ -n "$v" ] || { echo "openssl speed rsa2048 gave nothing" >&2; exit 1; }
    echo "$v"
}
speed0=$(rsa_speed)

# 2. the servers
sh "$src/t/pki/mkpki.sh" "$work/pki" >/dev/null
rport=$(freeport)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --loglevel warning >/dev/null 2>&1 &
redis_pid=$!

render() { # conf-src run-dir port: the example configs, static challenge
    /usr/bin/python3 "$src/tools/render-conf.py" "$src/conf/$1" "$2/conf" \
        MODULE="$3" WORKERS=1 RUN="$2" CONF="$2/conf" CONF_RUN="$2" \
        REDIS="127.0.0.1:$rport" PKI="$work/pki" PORT="$(freeport)" \
        PROXIED_PORT="$(freeport)" VERIFY_PORT="$(freeport)" \
        UPSTREAM_PORT="$(freeport)" TOPIC=com.apple.mgmt.External.bench \
        ADMIN_KEY=bench-admin-key-0123456789 SCEP_PORT="$4" \
        PROFILE_TOPIC=com.apple.mgmt.External.bench
    echo "admin:$(openssl passwd -apr1 bench)" >"$2/htpasswd"
}

ngx_port=$(freeport)
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
render nginx "$work/nginx" "$build/ngx_mdm/ngx_http_mdm_module.so" "$ngx_port"
sed -i "s|^mdm_scep_challenge dynamic;.*|mdm_scep_challenge $chal;|" \
    "$work/nginx/conf/mdm-enroll.conf"
grep -q "^mdm_scep_challenge $chal;" "$work/nginx/conf/mdm-enroll.conf"

if [ "$with_apache" = 1 ]; then
    apache_port=$(freeport)
    mkdir -p "$work/apache/logs" "$work/apache/run" "$work/apache/htdocs"
    render apache "$work/apache" "$build/mod_mdm/mod_mdm.so" "$apache_port"
    sed -i "s|^MDMSCEPChallenge dynamic|MDMSCEPChallenge $chal|" \
        "$work/apache/conf/mdm-enroll.conf"
    grep -q "^MDMSCEPChallenge $chal" "$work/apache/conf/mdm-enroll.conf"
    # one child process, like one nginx worker: one core
    sed -i -e 's|^MaxRequestWorkers 150$|ServerLimit 1\nMaxRequestWorkers 25|' \
        -e 's|^MinSpareThreads 25$|MinSpareThreads 1|' \
        -e 's|^MaxSpareThreads 75$|MaxSpareThreads 25|' \
        "$work/apache/conf/httpd.conf"
    grep -q '^ServerLimit 1$' "$work/apache/conf/httpd.conf"
fi
chmod -R 755 "$work"

nginx -p "$work/nginx" -c "$work/nginx/conf/nginx.conf" >"$work/nginx.out" 2>&1 &
ngx_pid=$!
waitport "$ngx_port" "$ngx_pid" || { cat "$work/nginx.out"; exit 1; }
ngx_worker=$(pgrep -P "$ngx_pid" | head -1)

if [ "$with_apache" = 1 ]; then
    root=""
    [ "$(id -u)" != 0 ] || root=-DRUN_AS_ROOT
    apache2 -d "$work/apache" -f "$work/apache/conf/httpd.conf" $root -t \
        >"$work/apache.out" 2>&1 || { cat "$work/apache.out"; exit 1; }
    # its threads would use both cores: pinned to one, like the others
    pin=""
    ! command -v taskset >/dev/null 2>&1 || pin="taskset -c 0"
    $pin apache2 -d "$work/apache" -f "$work/apache/conf/httpd.conf" $root \
        -DFOREGROUND >"$work/apache.out" 2>&1 &
    apache_pid=$!
    waitport "$apache_port" "$apache_pid" || { cat "$work/apache.out"; exit 1; }
fi

scep_port=$(freeport)
scepserver ca -init -depot "$work/depot" -keySize 2048 -years 1 \
    -organization "Bench SCEP CA" >/dev/null 2>&1
GOMAXPROCS=$gomax scepserver -depot "$work/depot" -port "$scep_port" \
    -challenge "$chal" -allowrenew 0 >"$work/scepserver.log" 2>&1 &
scep_pid=$!
waitport "$scep_port" "$scep_pid" || { cat "$work/scepserver.log"; exit 1; }

# 3. one real PKCSReq per server (scepclient through the recording proxy),
# and one replay of it checked end to end
record() { # name port ca.pem
    d=$work/$1
    mkdir -p "$d/client"
    pport=$(freeport)
    /usr/bin/python3 "$src/bench/scep-record.py" "$pport" "$2" "$d/req.der" 30 &
    proxy_pid=$!
    fp=$(openssl x509 -in "$3" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$pport/scep?operation=GetCACaps"; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "$1: recording proxy did not start" >&2; exit 1; }
        sleep 0.1
    done
    scepclient -server-url "http://127.0.0.1:$pport/scep" -challenge "$chal" \
        -private-key "$d/client/key.pem" -certificate "$d/client/cert.pem" \
        -cn "bench-$1" -organization "libmdm bench" -ca-fingerprint "$fp" \
        -keySize 2048 >"$d/scepclient.log" 2>&1 ||
        { echo "$1: scepclient failed:" >&2; cat "$d/scepclient.log" >&2; exit 1; }
    wait "$proxy_pid" || { echo "$1: no PKIOperation recorded" >&2; exit 1; }
    proxy_pid=""
    # the replay: a 200 whose CertRep is signed by the CA, says SUCCESS and
    # holds, encrypted to the requester, a new certificate from that CA
    code=$(curl -s -o "$d/rep.der" -w '%{http_code}' \
        -H 'Content-Type: application/x-pki-message' --data-binary "@$d/req.der" \
        "http://127.0.0.1:$2/scep?operation=PKIOperation")
    [ "$code" = 200 ] || { echo "$1: replay answered $code" >&2; exit 1; }
    check_reply "$d" "$3" ||
        { echo "$1: the replayed PKCSReq got no valid new certificate" >&2;
          cat "$d/check.log" >&2; exit 1; }
}
check_reply() { # dir ca.pem
    openssl cms -verify -inform DER -in "$1/rep.der" -CAfile "$2" \
        -purpose any -binary -out "$1/env.der" 2>"$1/check.log" || return 1
    openssl cms -cmsout -print -inform DER -in "$1/rep.der" |
        grep -A2 '(2.16.840.1.113733.1.9.3)' | grep -q 'PRINTABLESTRING:0$' ||
        { echo "pkiStatus is not SUCCESS" >>"$1/check.log"; return 1; }
    # scepserver answers in DES-CBC: the legacy provider opens it
    openssl pkcs7 -inform DER -in "$1/req.der" -print_certs \
        -out "$1/client/signer.pem" 2>>"$1/check.log" &&
    openssl cms -decrypt -provider legacy -provider default -inform DER \
        -in "$1/env.der" -binary \
        -recip "$1/client/signer.pem" -inkey "$1/client/key.pem" \
        -out "$1/certs.der" 2>>"$1/check.log" &&
    openssl pkcs7 -inform DER -in "$1/certs.der" -print_certs \
        -out "$1/issued.pem" 2>>"$1/check.log" &&
    openssl verify -CAfile "$2" "$1/issued.pem" >>"$1/check.log" 2>&1 ||
        return 1
    # a new certificate, not the one scepclient got
    [ "$(openssl x509 -in "$1/issued.pem" -noout -serial)" != \
      "$(openssl x509 -in "$1/client/cert.pem" -noout -serial)" ]
}
record scepserver "$scep_port" "$work/depot/ca.pem"
record nginx "$ngx_port" "$work/pki/scep-ca.pem"
[ "$with_apache" = 0 ] || record apache "$apache_port" "$work/pki/scep-ca.pem"

# 4. the load
stored() { # name: certificates the server has recorded so far
    if [ "$1" = scepserver ]; then
        wc -l <"$work/depot/index.txt"
    else
        redis-cli -p "$rport" ZCARD 'mdm:{scep}:issued'
    fi
}
bench() { # name port conns pids...: prints "issued/s SUCCESS FAILURE
    # other CPU-ms/issuance stored", other: not a 200 with a pkiStatus, or a
    # socket error; stored: certificates the server recorded meanwhile
    # (SUCCESS plus the requests still in flight when wrk stopped)
    name=$1 port=$2 c=$3
    shift 3
    n0=$(stored "$name")
    t0=$(cputicks "$@")
    out=$(wrk -t1 -c"$c" -d"${secs}s" -s "$src/bench/wrk-scep.lua" \
        "http://127.0.0.1:$port/scep?operation=PKIOperation" -- "$work/$name/req.der")
    t1=$(cputicks "$@")
    sleep 0.5
    n1=$(stored "$name")
    echo "$out" >>"$work/$name/wrk.out"
    dur=$(echo "$out" | sed -n 's/.* requests in \([0-9.]*\)\([a-z]*\),.*/\1 \2/p')
    echo "$out" | awk -v dur="$dur" -v ticks=$((t1 - t0)) -v hz="$hz" \
        -v stored=$((n1 - n0)) '
        /^scep:/ { s = $3; f = $5; o += $7 + $9 }
        /Socket errors:/ { gsub(",", ""); o += $4 + $6 + $8 + $10 }
        END {
            split(dur, d, " "); t = d[1]
            if (d[2] == "ms") t /= 1000; else if (d[2] == "m") t *= 60
            printf "%.1f %d %d %d %.2f %d\n", s / t, s, f, o,
                s ? ticks * 1000 / hz / s : 0, stored
        }'
}
# scepserver one request at a time: concurrent PKCSReqs race in its file
# depot (two get the same serial, "file exists"; once its serial file is
# rewritten every later request fails), so its best rate is sequential
res_scep=$(bench scepserver "$scep_port" "$scep_conns" "$scep_pid")
res_ngx=$(bench nginx "$ngx_port" "$conns" "$ngx_worker")
if [ "$with_apache" = 1 ]; then
    # the parent and its one child
    res_apache=$(bench apache "$apache_port" "$conns" "$apache_pid" $(pgrep -P "$apache_pid"))
    apache_children=$(pgrep -P "$apache_pid" | wc -l)
fi
# last (it may break its depot): scepserver with our concurrency
[ "$scep_conns" = "$conns" ] ||
    res_scep_c=$(bench scepserver "$scep_port" "$conns" "$scep_pid")
if [ -n "${MDM_BENCH_PROFILE:-}" ]; then
    psecs=$((secs < 5 ? secs : 5))
    perf record -F 499 --call-graph dwarf -o "$MDM_BENCH_PROFILE" \
        -p "$ngx_worker" -- sleep "$psecs" \
        >/dev/null 2>&1 &
    perf_pid=$!
    wrk -t1 -c"$conns" -d"${psecs}s" -s "$src/bench/wrk-scep.lua" \
        "http://127.0.0.1:$ngx_port/scep?operation=PKIOperation" -- \
        "$work/nginx/req.der" >/dev/null
    wait "$perf_pid" || true
    perf_pid=""
fi

speed1=$(rsa_speed)
speed=$(awk -v a="$speed0" -v b="$speed1" 'BEGIN { printf "%.1f", (a > b ? a : b) }')
if [ -z "$speed" ] || [ "$speed" = 0.0 ]; then
    echo "no openssl speed figure" >&2
    exit 1
fi

# 5. the table
ideal_ms=$(awk -v s="$speed" 'BEGIN { printf "%.3f", 3000 / s }')
printf '\nSCEP PKCSReq issuance: the same recorded request POSTed again and again,\n'
printf 'wrk -t1 -d%ss (-c: connections), CA keys RSA 2048, static challenge, one core per server\n' "$secs"
printf 'openssl speed rsa2048 (1 core): %s private ops/s (%s before the load, %s after)\n' \
    "$speed" "$speed0" "$speed1"
awk -v a="$speed0" -v b="$speed1" 'BEGIN { if (a > 1.1 * b || b > 1.1 * a)
    print "  (more than 10% apart: the machine was busy, figures are noisy)" }'
printf 'the 3 an issuance needs (decrypt the content key, sign the certificate,\n'
printf 'sign the CertRep) take %s ms: ideal %s issuances/s per core\n\n' "$ideal_ms" \
    "$(awk -v s="$speed" 'BEGIN { printf "%.1f", s / 3 }')"
printf '%-44s %8s %7s %7s %5s %7s %10s %9s\n' server issued/s SUCCESS FAILURE other \
    stored CPU-ms/iss CPU/ideal
row() { # label result
    echo "$2" | awk -v l="$1" -v i="$ideal_ms" '{
        printf "%-44s %8s %7s %7s %5s %7s %10s %8.2fx\n", l, $1, $2, $3, $4, $6,
            $5, $5 / i }'
}
ngxv=$(nginx -v 2>&1 | sed 's/.*nginx\///')
scepv=$(dpkg-query -W -f '${Version}' scep 2>/dev/null | sed 's/-.*//') || scepv='?'
row "scepserver $scepv (GOMAXPROCS=$gomax) -c$scep_conns" "$res_scep"
row "nginx $ngxv + ngx_mdm (1 worker) -c$conns" "$res_ngx"
[ "$with_apache" = 0 ] ||
    row "apache $(apache2 -v | sed -n 's/.*Apache\/\([^ ]*\).*/\1/p') + mod_mdm (${apache_children} child, 1 CPU) -c$conns" "$res_apache"
[ "$scep_conns" = "$conns" ] ||
    row "scepserver $scepv (GOMAXPROCS=$gomax) -c$conns" "$res_scep_c"
printf '\n'
target() { # label result
    echo "$2 $res_scep" | awk -v l="$1" -v i="$ideal_ms" -v s="$speed" '{
        vs = $7 > 0 ? $1 / $7 : 0
        printf "%s: %.2fx the rate of scepserver (target >= 2x: %s), %.2fx less CPU per issuance;\n",
            l, vs, (vs >= 2 ? "met" : "NOT MET"), ($5 > 0 ? $11 / $5 : 0)
        printf "  CPU per issuance %.2fx the 3 private ops (target <= 1.5x: %s), the ideal rate %.2fx ours\n",
            $5 / i, ($5 / i <= 1.5 ? "met" : "NOT MET"), (s / 3) / $1 }'
}
target nginx "$res_ngx"
[ "$with_apache" = 0 ] || target apache "$res_apache"

# 6. what the servers said
bad=$(grep -cE '\[(warn|error|crit|alert|emerg)\]' "$work/nginx/logs/error.log" || true)
printf 'nginx error log: %s warn-or-worse lines\n' "$bad"
grep -E '\[(warn|error|crit|alert|emerg)\]' "$work/nginx/logs/error.log" | head -3 || true
if [ "$with_apache" = 1 ]; then
    # AH01882: Debian's mod_ssl built against a newer OpenSSL 3.0 than
    # the one installed; said at start, not about SCEP
    bad=$(grep -E '\[[a-z_]*:(warn|error|crit|alert|emerg)\]' "$work/apache/logs/error.log" |
        grep -vc AH01882 || true)
    printf 'apache error log: %s warn-or-worse lines (AH01882 aside)\n' "$bad"
    grep -E '\[[a-z_]*:(warn|error|crit|alert|emerg)\]' "$work/apache/logs/error.log" |
        grep -v AH01882 | head -3 || true
fi
bad=$(grep -c 'err=[^n]' "$work/scepserver.log" || true)
printf 'scepserver log: %s lines with an error\n' "$bad"
grep 'err=[^n]' "$work/scepserver.log" | head -2 || true
