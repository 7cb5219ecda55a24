#!/bin/sh
# Tests of mdm-eventd: run.sh [BUILD_DIR] [pytest args]
# Runs Debian's pytest-3 on t/eventd with MDM_BUILD=BUILD_DIR (default:
# ./build): the daemon against python3 http.server receivers and a private
# redis-server. Exits non-zero on any failure, and when no test ran.
SUITE=eventd
NEED="eventd/mdm-eventd"
. "$(cd "$(dirname "$0")/../lib" && pwd)/run-suite.sh"
