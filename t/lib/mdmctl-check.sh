# Sourced by the mdmctl shell tests (t/test-mdmctl*.sh) after they set
# name (the work directory is /tmp/mdm-$name-sh-XXXXXX): $bin, $py, $work
# (removed at exit), the counters and the checks, start_redis (a private
# redis-server on a free loopback port: $port); the test ends with
# "finish".
bin=${MDMCTL:-./tools/mdmctl}
if ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: openssl not installed"
    exit 77
fi
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
work=$(mktemp -d "/tmp/mdm-$name-sh-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
pass=0

start_redis() {
    port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$work" --loglevel warning >/dev/null 2>&1 &
    redis_pid=$!
    trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$work"' EXIT
    i=0
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "FAIL: no redis"; exit 1; }
        sleep 0.05
    done
}

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

check() { # expected-exit, description, command...
    want=$1
    what=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok
    else
        bad "$what: exit $got, expected $want"
        cat "$work/out" "$work/err"
    fi
}
says() {
    if grep -q -- "$1" "$work/err"; then ok; else
        bad "stderr does not mention '$1':"; cat "$work/err"; fi
}
has() { # file, fixed string, description
    if grep -qF -- "$2" "$1"; then ok; else bad "$3: no '$2' in $1"; fi
}
absent() { # path, description
    if [ -e "$1" ]; then bad "$2: $1 was written"; else ok; fi
}
mode() {
    stat -c %a "$1"
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
