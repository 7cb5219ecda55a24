#!/bin/sh
# The demo: a private Redis, a generated PKI, and a scripted device driven
# through the MDM core end to end (no web server yet: ngx_mdm and mod_mdm
# will put the same core behind HTTPS).
#   tools/demo.sh BUILD_DIR
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
work=$(mktemp -d /tmp/mdm-demo-XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
udid=4F0CC1B6-5E5A-4C0B-9A1B-0EBC340D432A
topic=com.apple.mgmt.External.demo
redis_pid=""

cleanup() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '\n== %s\n' "$*"; }

say "starting redis-server on 127.0.0.1:$port (data in $work)"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
i=0
until "$build/tools/mdmctl" --redis "127.0.0.1:$port" show none \
    >/dev/null 2>&1 || [ $? -eq 1 ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "redis did not start"; exit 1; }
    sleep 0.05
done

say "generating a test PKI (identity CA, device certificate)"
sh "$src/t/pki/mkpki.sh" "$work/pki" >/dev/null
openssl x509 -in "$work/pki/dev1.pem" -noout -subject -issuer | sed 's/^/   /'

sim() { "$build/tools/mdm-simdevice" --redis "127.0.0.1:$port" \
    --pki "$work/pki" --udid "$udid" --topic "$topic" "$@"; }
ctl() { "$build/tools/mdmctl" --redis "127.0.0.1:$port" "$@"; }

say "the device enrolls: Authenticate binds its certificate, TokenUpdate enables it"
sim enroll
ctl show "$udid"

say "the admin queues two commands (JSON and plist) and requests a push"
printf '{"RequestType":"DeviceInformation","Queries":["OSVersion","SerialNumber"]}' >"$work/devinfo.json"
ctl enqueue "$udid" "$work/devinfo.json"
cat >"$work/profiles.plist" <<'PL'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
  <key>CommandUUID</key><string>DEMO-PROFILE-LIST</string>
  <key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>
</dict></plist>
PL
ctl enqueue "$udid" "$work/profiles.plist"
ctl queue "$udid"

say "the device polls (Idle) and acknowledges each command it receives"
sim poll

say "the result of ProfileList, kept for the configured TTL"
ctl result "$udid" DEMO-PROFILE-LIST

say "the events stream other tools can consume"
redis-cli -p "$port" XRANGE mdm:events - + | paste -sd' ' | fold -w 100 | head -8

say "the profile is removed: CheckOut disables the enrollment"
sim checkout
ctl show "$udid"

say "done: stopping redis-server (pid $redis_pid)"
