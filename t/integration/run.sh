#!/bin/sh
# Integration tests of the nginx and Apache modules: run.sh [BUILD_DIR]
# Runs Debian's pytest-3 on t/integration with MDM_BUILD=BUILD_DIR
# (default: ./build); the Apache half is skipped while mod_mdm/mod_mdm.so
# is not built. Exits non-zero on any failure, and when no test ran.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${1:-${MDM_BUILD:-$TOP/build}}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || {
    echo "run.sh: no build directory: ${1:-$TOP/build}" >&2
    exit 2
}
shift 2>/dev/null || true

if [ ! -f "$BUILD/ngx_mdm/ngx_http_mdm_module.so" ]; then
    echo "run.sh: $BUILD/ngx_mdm/ngx_http_mdm_module.so not built" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mdm-itest.XXXXXX")
# nginx workers run as nobody when we are root: let them in
chmod 755 "$TMP"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT INT TERM

cd "$TOP" || exit 2
MDM_BUILD=$BUILD PYTHONDONTWRITEBYTECODE=1 \
    pytest-3 -q -p no:cacheprovider --basetemp="$TMP/pytest" \
    t/integration "$@"
rc=$?
if [ $rc -eq 5 ]; then
    echo "run.sh: no tests were collected" >&2
    exit 1
fi
exit $rc
