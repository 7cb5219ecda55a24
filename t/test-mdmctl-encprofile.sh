#!/bin/sh
# mdmctl profile encrypt: exit statuses, and the queued InstallProfile
# opened with openssl and the test PKI's device key, against a private
# redis-server on a free loopback port.
set -u
name=ctl-enc
. "${top_srcdir:-$(dirname "$0")/..}/t/lib/mdmctl-check.sh"
pki=${MDM_TEST_PKI:?MDM_TEST_PKI is not set}
start_redis
expect() { # description, command...: the command must succeed
    what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $what"
    fi
}
r="--redis 127.0.0.1:$port"
cat >"$work/p.json" <<'JSON'
{"PayloadIdentifier": "com.example.enc", "PayloadContent": [
 {"PayloadType": "com.apple.wifi.managed", "SSID_STR": "corp",
  "Password": "s3cr3t-pw"}]}
JSON
check 2 "profile encrypt: missing argument" $bin $r profile encrypt DEV-1
check 2 "profile encrypt: missing file" $bin $r profile encrypt DEV-1 /nonexistent
check 1 "profile encrypt: unknown enrollment" $bin $r profile encrypt NOBODY "$work/p.json"
grep -q MDM05061 "$work/out" || { fail=$((fail + 1)); echo "FAIL: no MDM05061"; }
redis-cli -p "$port" HSET 'mdm:{DEV-1}:rec' enabled 1 >/dev/null
check 1 "profile encrypt: no certificate" $bin $r profile encrypt DEV-1 "$work/p.json"
grep -q MDM05062 "$work/out" || { fail=$((fail + 1)); echo "FAIL: no MDM05062"; }
# bind dev1 as Authenticate does: its hash in the record, its DER beside
openssl x509 -in "$pki/dev1.pem" -outform DER -out "$work/dev1.der"
h=$(openssl dgst -sha256 -r "$work/dev1.der" | cut -c1-64)
redis-cli -p "$port" HSET 'mdm:{DEV-1}:rec' cert "$h" >/dev/null
redis-cli -p "$port" -x SET 'mdm:{DEV-1}:der' <"$work/dev1.der" >/dev/null
echo 'not a plist' >"$work/bad"
check 1 "profile encrypt: bad body" $bin $r profile encrypt DEV-1 "$work/bad"
grep -q MDM05060 "$work/out" || { fail=$((fail + 1)); echo "FAIL: no MDM05060"; }
[ "$(redis-cli -p "$port" LLEN 'mdm:{DEV-1}:q')" = 0 ] ||
    { fail=$((fail + 1)); echo "FAIL: a refusal queued something"; }
check 0 "profile encrypt" $bin $r profile encrypt DEV-1 "$work/p.json" --nopush
grep -q '"pushed":false' "$work/out" || { fail=$((fail + 1)); echo "FAIL: pushed"; }
uuid=$(redis-cli -p "$port" LINDEX 'mdm:{DEV-1}:q' 0)
redis-cli -p "$port" --raw HGET 'mdm:{DEV-1}:cmd' "$uuid" >"$work/cmd.plist"
expect "InstallProfile payload" /usr/bin/python3 -c '
import plistlib, sys
c = plistlib.load(open(sys.argv[1], "rb"))
assert c["Command"]["RequestType"] == "InstallProfile"
p = plistlib.loads(c["Command"]["Payload"])
assert p["PayloadType"] == "Configuration" and "PayloadContent" not in p
open(sys.argv[2], "wb").write(p["EncryptedPayloadContent"])
' "$work/cmd.plist" "$work/epc.der"
expect "openssl cms -decrypt with the device key" openssl cms -decrypt \
    -binary -inform DER -in "$work/epc.der" -recip "$pki/dev1.pem" \
    -inkey "$pki/dev1.key" -out "$work/inner.plist"
expect "inner payloads" /usr/bin/python3 -c '
import plistlib, sys
a = plistlib.load(open(sys.argv[1], "rb"))
assert a[0]["Password"] == "s3cr3t-pw", a
' "$work/inner.plist"
check 0 "profile (offline) still works" $bin profile --help
echo "mdmctl profile encrypt: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
