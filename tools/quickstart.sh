#!/bin/sh
# One entry point for a fresh Debian 12 machine (run as root, or as a user
# when every package is already installed):
#
#   tools/quickstart.sh demo   install what is missing, build, run the demo
#   tools/quickstart.sh test   install what is missing, build, run every test
#                              (plain build, ASan+UBSan build, fuzzing)
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
what=${1:-}
case "$what" in
demo|test) ;;
*) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

# ---- Debian packages ----
pkgs="build-essential autoconf automake libtool pkg-config openssl scep
libssl-dev libplist-dev libhiredis-dev libjansson-dev redis-server
libcmocka-dev python3 python3-cryptography python3-requests nginx nginx-dev
apache2 apache2-dev
curl libcurl4-openssl-dev nghttp2-client libnghttp2-dev"
if [ "$what" = test ]; then
    pkgs="$pkgs clang libclang-rt-14-dev clang-format python3-pytest
python3-redis scep python3-h2 wrk python3-acme python3-cbor2
redis-sentinel redis-tools"
fi
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "quickstart: missing packages:$missing (run as root)" >&2
        exit 1
    fi
    echo "quickstart: installing$missing"
    apt-get update -q >/dev/null
    # never start system services from here (redis would take :6379)
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q \
        --no-install-recommends $missing >/dev/null
fi

# ---- build ----
jobs=$(nproc 2>/dev/null || echo 2)
[ -x configure ] && [ configure -nt configure.ac ] ||
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
build() { # dir, configure args...
    dir=$1
    shift
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        if ! (cd "$dir" && "$top/configure" "$@" >configure.out 2>&1); then
            tail -20 "$dir/configure.out"
            exit 1
        fi
    fi
    make -s -C "$dir" -j"$jobs" >/dev/null
}
build build CFLAGS="-O2 -g"

if [ "$what" = demo ]; then
    exec sh tools/demo.sh "$top/build"
fi

# ---- tests ----
status=0
summary() { # dir: add its automake results to the totals
    p=$(grep -c '^PASS' "$1/test-suite.log.all" 2>/dev/null || true)
    echo "$p"
}
pass=0
fail=0
for dir in build build-asan; do
    if [ "$dir" = build-asan ]; then
        build build-asan CFLAGS="-O1 -g" --enable-sanitizers
    fi
    echo "== make check ($dir)"
    if ! ASAN_OPTIONS=detect_leaks=1 make -s -C "$dir" -j"$jobs" check \
        >"$dir/check.out" 2>&1; then
        status=1
        cat "$dir/check.out"
        find "$dir/t" -name '*.log' -newer "$dir/Makefile" \
            -exec grep -l -E '^(FAIL|ERROR)' {} \; | while read -r l; do
            echo "---- $l"
            tail -50 "$l"
        done
    fi
    grep -E '^(PASS|FAIL|ERROR|SKIP):' "$dir/check.out" || true
    p=$(grep -c '^PASS:' "$dir/check.out" || true)
    f=$(grep -c -E '^(FAIL|ERROR):' "$dir/check.out" || true)
    # cmocka counts inside each unit program
    for log in "$dir"/t/unit/*.log; do
        [ -f "$log" ] || continue
        # (a program may run several groups: one line each)
        n=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" |
            awk '{ s += $1 } END { print s + 0 }')
        [ "$n" -gt 0 ] && p=$((p + n - 1))
        n=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log" |
            awk '{ s += $1 } END { print s + 0 }')
        f=$((f + n))
    done
    pass=$((pass + p))
    fail=$((fail + f))
done

# one pytest-3 suite in one build: NAME DIR [ENV=VALUE...]; its closing
# line adds to the totals (no closing line counts as a failure)
suite() {
    name=$1
    dir=$2
    shift 2
    echo "== $name ($dir)"
    if env "$@" sh "t/$name/run.sh" "$top/$dir" >"$dir/$name.out" 2>&1; then
        tail -1 "$dir/$name.out"
    else
        status=1
        tail -60 "$dir/$name.out"
    fi
    last=$(tail -1 "$dir/$name.out")
    p=$(echo "$last" | grep -Eo '[0-9]+ passed' | cut -d' ' -f1)
    for f in $(echo "$last" | grep -Eo '[0-9]+ (failed|errors?)' |
        cut -d' ' -f1); do
        fail=$((fail + f))
    done
    pass=$((pass + ${p:-0}))
    [ -n "$p" ] || fail=$((fail + 1))
}

# pytest-3 against Debian's nginx with our module and a real redis-server;
# the sanitizer build's module runs with libasan preloaded into nginx and
# apache2
for dir in build build-asan; do
    preload=""
    [ "$dir" = build-asan ] && preload=$(gcc -print-file-name=libasan.so)
    suite integration "$dir" MDM_NGINX_PRELOAD="$preload" \
        MDM_APACHE_PRELOAD="$preload"
done

# mdm-pushd against a python3-h2 APNs stand-in, mdm-eventd against python3
# http.server webhook receivers (plain and TLS), each with a real
# redis-server, in both builds (the daemons run sanitized in the second)
for name in pushd eventd; do
    for dir in build build-asan; do
        suite "$name" "$dir" ASAN_OPTIONS=detect_leaks=1
    done
done

echo "== fuzz (bounded)"
if sh t/fuzz/run.sh "$top/build-fuzz" "${MDM_FUZZ_SECONDS:-30}"; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    status=1
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] || status=1
exit $status
