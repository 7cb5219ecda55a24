#!/bin/sh
# The demo stack: a private Redis, a generated PKI and SCEP CA, Debian's
# nginx with ngx_mdm (the example configs of conf/nginx), and a scripted
# device that enrolls end to end: it downloads the signed profile, gets its
# identity from the built-in SCEP CA (Debian's scepclient, with the
# profile's one-time challenge), checks in, receives commands and answers
# them; the admin side is curl against the admin API. Every step is
# printed. Stops what it started.
#   tools/demo.sh BUILD_DIR
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
work=$(mktemp -d /tmp/mdm-demo-XXXXXX)
udid=4F0CC1B6-5E5A-4C0B-9A1B-0EBC340D432A
topic=com.apple.mgmt.External.demo
key=$(openssl rand -hex 16)
redis_pid=""
nginx_pid=""

cleanup() {
    [ -z "$nginx_pid" ] || { kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; }
    [ -z "$redis_pid" ] || { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
say() { printf '\n== %s\n' "$*"; }
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
waitfor() { # what, command...
    what=$1
    shift
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "$what did not start"; exit 1; }
        sleep 0.1
    done
}

rport=$(freeport)
port=$(freeport)
scep_port=$(freeport)
say "redis-server on 127.0.0.1:$rport (data in $work)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
waitfor redis redis-cli -p "$rport" ping

say "a test PKI: TLS server certificate and profile signer"
sh "$src/t/pki/mkpki.sh" "$work/pki" >/dev/null
openssl x509 -in "$work/pki/server.pem" -noout -subject -issuer | sed 's/^/   TLS: /'

say "the SCEP CA that will issue device identities: mdmctl ca init"
"$build/tools/mdmctl" ca init --out "$work/ca" --cn "Demo MDM CA"
openssl x509 -in "$work/ca/ca.pem" -noout -subject -dates | sed 's/^/   /'
ls -l "$work/ca/ca.key" | awk '{print "   " $1 " ca.key"}'
# the example configs name it scep-ca.*; devices are checked against it
cp "$work/ca/ca.pem" "$work/pki/scep-ca.pem"
cp "$work/ca/ca.key" "$work/pki/scep-ca.key"
cat "$work/pki/cafile.pem" "$work/pki/scep-ca.pem" >"$work/pki/identity-ca.pem"

say "nginx $(nginx -v 2>&1 | sed 's/.*\///') with ngx_mdm on https://localhost:$port (conf/nginx/*.conf)"
mkdir -p "$work/run/logs" "$work/run/tmp"
echo "admin:$(openssl passwd -apr1 demo)" >"$work/run/htpasswd"
/usr/bin/python3 "$src/tools/render-conf.py" "$src/conf/nginx" "$work/run" \
    MODULE="$build/ngx_mdm/ngx_http_mdm_module.so" WORKERS=1 \
    RUN="$work/run" CONF="$work/run" CONF_RUN="$work/run" \
    REDIS="127.0.0.1:$rport" PKI="$work/pki" PORT="$port" \
    PROXIED_PORT="$(freeport)" VERIFY_PORT="$(freeport)" \
    UPSTREAM_PORT="$(freeport)" TOPIC="$topic" ADMIN_KEY="$key" \
    SCEP_PORT="$scep_port" PROFILE_TOPIC="$topic"
chmod -R 755 "$work"
nginx -p "$work/run" -c "$work/run/nginx.conf" -t 2>&1 | sed 's/^/   /'
nginx -p "$work/run" -c "$work/run/nginx.conf" >"$work/nginx.out" 2>&1 &
nginx_pid=$!
base="https://localhost:$port"
waitfor nginx curl -s --cacert "$work/pki/root.pem" -o /dev/null "$base/"

device() { /usr/bin/python3 "$src/tools/demo-device.py" "$work/pki" "$base" \
    "$topic" "$udid" "$1" "${2:-issued}"; }
admin() { # method path [curl args]
    m=$1
    p=$2
    shift 2
    printf 'admin  -> %s /mdm/admin%s\n' "$m" "$p"
    curl -s --cacert "$work/pki/root.pem" -u admin:demo -H "X-API-Key: $key" \
        -X "$m" "$base/mdm/admin$p" "$@" | sed 's/^/   /'
    echo
}

say "the user downloads the enrollment profile (behind auth_basic)"
printf 'user   -> GET /mdm/enroll\n'
curl -s --cacert "$work/pki/root.pem" -u admin:demo -D "$work/profile.h" \
    -o "$work/enroll.mobileconfig" "$base/mdm/enroll"
grep -i '^content-type\|^cache-control' "$work/profile.h" | tr -d '\r' | sed 's/^/   /'
openssl cms -verify -inform DER -in "$work/enroll.mobileconfig" \
    -CAfile "$work/pki/root.pem" -out "$work/enroll.xml" 2>&1 | sed 's/^/   /'
challenge=$(/usr/bin/python3 - "$work/enroll.xml" <<'EOF2'
import plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
for pl in p["PayloadContent"]:
    print("   payload %-26s %s" % (pl["PayloadType"], pl["PayloadUUID"]),
          file=sys.stderr)
    if pl["PayloadType"] == "com.apple.security.scep":
        c = pl["PayloadContent"]
        print("      SCEP URL %s, Keysize %d, one-time Challenge %s..."
              % (c["URL"], c["Keysize"], c["Challenge"][:8]), file=sys.stderr)
        print(c["Challenge"])
    if pl["PayloadType"] == "com.apple.mdm":
        print("      ServerURL %s, Topic %s, SignMessage %s"
              % (pl["ServerURL"], pl["Topic"], pl["SignMessage"]),
              file=sys.stderr)
EOF2
)

say "the device gets its identity from the SCEP CA with that challenge (scepclient)"
fp=$(openssl x509 -in "$work/pki/scep-ca.pem" -outform DER | sha256sum | cut -d' ' -f1)
mkdir -p "$work/device"
scepclient -server-url "http://127.0.0.1:$scep_port/scep" \
    -challenge "$challenge" -private-key "$work/device/key.pem" \
    -certificate "$work/device/cert.pem" -cn "$udid" \
    -organization "Demo" -ca-fingerprint "$fp" -keySize 2048 2>&1 |
    sed 's/^/   /' | cut -c1-150
cp "$work/device/cert.pem" "$work/pki/issued.pem"
cp "$work/device/key.pem" "$work/pki/issued.key"
openssl x509 -in "$work/pki/issued.pem" -noout -subject -issuer -serial | sed 's/^/   issued: /'
printf 'again  -> the same challenge a second time: '
rm -rf "$work/again" && mkdir -p "$work/again"
if scepclient -server-url "http://127.0.0.1:$scep_port/scep" \
    -challenge "$challenge" -private-key "$work/again/key.pem" \
    -certificate "$work/again/cert.pem" -cn "$udid" -organization Demo \
    -ca-fingerprint "$fp" >/dev/null 2>&1; then
    echo "accepted (unexpected)"
else
    echo "refused (one-time)"
fi

say "the device checks in: Authenticate binds its new certificate, TokenUpdate enables it"
device enroll
admin GET "/enrollments/$udid"

say "the admin queues two commands, JSON and plist, and requests a push"
admin POST "/enqueue/$udid" -H 'Content-Type: application/json' \
    -d '{"RequestType":"DeviceInformation","Queries":["OSVersion","SerialNumber"]}'
admin POST "/enqueue/$udid" -H 'Content-Type: application/xml' --data-binary \
    '<?xml version="1.0"?><plist version="1.0"><dict><key>CommandUUID</key><string>DEMO-PROFILE-LIST</string><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>'
admin GET "/queue/$udid"
echo "   push requests for mdm-pushd: $(redis-cli -p "$rport" XLEN mdm:push) in the mdm:push stream"

say "the device polls (Idle) and acknowledges each command it receives"
device poll

say "a command's result, kept for mdm_results_ttl"
admin GET "/results/$udid/DEMO-PROFILE-LIST"

say "what nginx logged (log_format mdm, conf/nginx/log-format.conf)"
grep 'PUT /mdm' "$work/run/logs/access.log" | sed 's/^[^"]*"//; s/^/   /' | cut -c1-150

say "identity renewal: enrollments whose certificate expires within 400 days (issued for 365)"
admin GET "/renewals?days=400"
say "the sweep offers a fresh identity (InstallProfile, new one-time challenge) and pushes"
admin POST "/renewals/run?days=400"
admin POST "/renewals/run?days=400"
say "the device installs it (scepclient), checks in with the new certificate: the binding moves; the old one is refused"
device renew
grep -h 'MDM0300[67]' "$work/run/logs/error.log" | sed 's/^.*MDM/   MDM/' | cut -c1-150
admin GET "/renewals?days=400"

say "the device removes its profile: CheckOut disables the enrollment"
device checkout renewed
admin GET "/enrollments/$udid"

say "done: stopping nginx (pid $nginx_pid) and redis-server (pid $redis_pid)"
