#!/bin/sh
# mdmctl's command-line contract: help, usage errors (2), refusals (1),
# success (0), against a private redis-server on a free loopback port.
set -u
name=ctl
. "${top_srcdir:-$(dirname "$0")/..}/t/lib/mdmctl-check.sh"
start_redis
r="--redis 127.0.0.1:$port"
check 0 "--help" $bin --help
check 2 "no command" $bin
check 2 "unknown command" $bin $r frobnicate x
check 2 "missing argument" $bin $r result ONE
check 2 "bad --redis" $bin --redis nowhere queue X
check 2 "unreachable redis" $bin --redis 127.0.0.1:1 queue X
check 2 "missing file" $bin $r enqueue X /nonexistent
echo '{"RequestType":"DeviceInformation"}' >"$work/cmd.json"
check 1 "unknown enrollment" $bin $r enqueue NOBODY "$work/cmd.json"
grep -q unknown "$work/out" || { fail=$((fail + 1)); echo "FAIL: no per-id status"; }
redis-cli -p "$port" HSET 'mdm:{DEV-1}:rec' enabled 1 >/dev/null
check 0 "enqueue" $bin $r enqueue DEV-1 "$work/cmd.json"
check 0 "queue" $bin $r queue DEV-1
grep -q DeviceInformation "$work/out" || { fail=$((fail + 1)); echo "FAIL: queue listing"; }
check 1 "bad command" sh -c "echo '{\"x\":1}' | $bin $r enqueue DEV-1 -"
check 1 "no result" $bin $r result DEV-1 NOPE
check 0 "clear" $bin $r clear DEV-1
check 0 "show" $bin $r show DEV-1
check 1 "show unknown" $bin $r show NOBODY
check 2 "revoke: too many arguments" $bin $r revoke DEV-1 A B
check 1 "revoke: nothing bound" $bin $r revoke DEV-1
check 1 "revoke: bad hash" $bin $r revoke DEV-1 xyz
h=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
redis-cli -p "$port" HSET 'mdm:{DEV-1}:rec' cert $h >/dev/null
check 0 "revoke" $bin $r revoke DEV-1
[ "$(redis-cli -p "$port" HEXISTS 'mdm:{DEV-1}:rec' "revoked:$h")" = 1 ] ||
    { fail=$((fail + 1)); echo "FAIL: revoke stored nothing"; }
# the SCEP CA's admin operations
check 0 "ca init" $bin ca init --out "$work/ca" --ec
check 2 "scep without the CA" $bin $r scep challenge
check 2 "scep: unknown operation" $bin $r --ca "$work/ca" scep frob
check 0 "scep challenge" $bin $r --ca "$work/ca" scep challenge 120
grep -q '"ttl":120' "$work/out" || { fail=$((fail + 1)); echo "FAIL: challenge ttl"; }
[ "$(redis-cli -p "$port" --scan --pattern 'mdm:{scep}:chal:*' | wc -l)" = 1 ] ||
    { fail=$((fail + 1)); echo "FAIL: no challenge in Redis"; }
check 1 "scep revoke: unknown serial" $bin $r --ca "$work/ca" scep revoke 0bad
check 2 "scep: bad CA" $bin $r --ca /nonexistent scep challenge
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
