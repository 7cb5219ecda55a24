#!/bin/sh
# Core benchmarks (no web server): per-request CPU cost against one bare
# RSA-2048 verification in the same run, `openssl speed` as a reference,
# and Redis memory per idle enrollment.
#   bench/core.sh [BUILD_DIR] [N_ENROLLMENTS]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
n=${2:-100000}
work=$(mktemp -d /tmp/mdm-bench-XXXXXX)
redis_pid=""
cleanup() {
    [ -z "$redis_pid" ] || { kill "$redis_pid"; wait "$redis_pid" || true; }
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

sh "$src/t/pki/mkpki.sh" "$work/pki" >/dev/null
echo "== CPU: core Idle request with Mdm-Signature vs one RSA-2048 verify"
"$build/bench/core_bench" "$work/pki" 5
echo "== instructions per request (callgrind; repeatable where times are not)"
# the difference between two runs of different length removes start-up
if command -v valgrind >/dev/null 2>&1; then
    ir() { # args... -> total instructions of one core_bench run
        valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
            "$build/bench/core_bench" "$work/pki" "$@" >/dev/null 2>&1
        sed -n 's/^summary: *//p' "$work/cg.out"
    }
    a=$(ir -n 100)
    b=$(ir -n 600)
    c=$(ir -n 100 rsa)
    d=$(ir -n 600 rsa)
    core_ir=$(((b - a) / 500))
    rsa_ir=$(((d - c) / 500))
    echo "core Idle+Mdm-Signature: $core_ir instructions/request"
    echo "bare RSA-2048 verify:    $rsa_ir instructions/verify"
    echo "core minus the verify:   $((core_ir - rsa_ir)) instructions/request"
else
    echo "(valgrind not installed: apt-get install valgrind)"
fi
echo "== reference: openssl speed rsa2048 (verify/s, 1 core)"
openssl speed -seconds 3 rsa2048 2>/dev/null | tail -1

echo "== Redis memory per idle enrollment ($n enrollments)"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
i=0
until redis-cli -p "$port" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.05
done
"$build/bench/mem_bench" "127.0.0.1:$port" "$n"
redis-server --version | sed 's/^/   /'
