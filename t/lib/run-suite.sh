# Sourced by t/pushd/run.sh and t/eventd/run.sh after they set SUITE (the
# directory under t/) and NEED (the programs under the build directory the
# suite runs). Arguments: [BUILD_DIR] [pytest args]. Runs Debian's pytest-3
# on t/$SUITE with MDM_BUILD=BUILD_DIR (default: ./build) and t/lib on
# PYTHONPATH (mdmtest.py). Exits non-zero on any failure, and when no test
# ran.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${1:-${MDM_BUILD:-$TOP/build}}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || {
    echo "run.sh: no build directory: ${1:-$TOP/build}" >&2
    exit 2
}
shift 2>/dev/null || true

for f in $NEED; do
    if [ ! -x "$BUILD/$f" ]; then
        echo "run.sh: $BUILD/$f not built" >&2
        exit 2
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mdm-$SUITE-test.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT INT TERM

cd "$TOP" || exit 2
MDM_BUILD=$BUILD PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH="$TOP/t/lib${PYTHONPATH:+:$PYTHONPATH}" \
    pytest-3 -q -p no:cacheprovider --basetemp="$TMP/pytest" \
    "t/$SUITE" "$@"
rc=$?
if [ $rc -eq 5 ]; then
    echo "run.sh: no tests were collected" >&2
    exit 1
fi
exit $rc
