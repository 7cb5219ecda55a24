# Sourced by the mdmctl shell tests (t/test-mdmctl-push.sh,
# t/test-mdmctl-dep.sh) after they set name (the work directory is
# /tmp/mdm-$name-sh-XXXXXX): $bin, $py, $work (removed at exit), the
# counters and the checks; the test ends with "finish".
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
