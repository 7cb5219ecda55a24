#!/bin/sh
# Tests of mdm-pushd: run.sh [BUILD_DIR] [pytest args]
# Runs Debian's pytest-3 on t/pushd with MDM_BUILD=BUILD_DIR (default:
# ./build): the daemon against a python3-h2 APNs stand-in and a private
# redis-server. Exits non-zero on any failure, and when no test ran.
SUITE=pushd
NEED="pushd/mdm-pushd tools/mdmctl"
. "$(cd "$(dirname "$0")/../lib" && pwd)/run-suite.sh"
