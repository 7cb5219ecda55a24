#!/bin/sh
# Tests of mdm-eventd: run.sh [BUILD_DIR] [pytest args]
# Runs Debian's pytest-3 on t/eventd with MDM_BUILD=BUILD_DIR (default:
# ./build): the daemon against python3 http.server receivers and a private
# redis-server. Exits non-zero on any failure, and when no test ran.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${1:-${MDM_BUILD:-$TOP/build}}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || {
    echo "run.sh: no build directory: ${1:-$TOP/build}" >&2
    exit 2
}
shift 2>/dev/null || true

for f in eventd/mdm-eventd; do
    if [ ! -x "$BUILD/$f" ]; then
        echo "run.sh: $BUILD/$f not built" >&2
        exit 2
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mdm-eventd-test.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT INT TERM

cd "$TOP" || exit 2
MDM_BUILD=$BUILD PYTHONDONTWRITEBYTECODE=1 \
    pytest-3 -q -p no:cacheprovider --basetemp="$TMP/pytest" \
    t/eventd "$@"
rc=$?
if [ $rc -eq 5 ]; then
    echo "run.sh: no tests were collected" >&2
    exit 1
fi
exit $rc
