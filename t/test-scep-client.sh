#!/bin/sh
# A real SCEP client against the SCEP core: Debian's scepclient (micromdm's
# Go client) enrolls through t/scep_httpd, a test-only HTTP server around
# libmdm, with a private redis-server on a free loopback port. Static and
# one-time challenges, a wrong and a spent challenge; approval manual
# (scepclient resends its PKCSReq every 30 s while PENDING: approved and
# rejected requests); GetNextCACert checked with openssl. Skipped (77)
# without scepclient.
set -u
command -v scepclient >/dev/null 2>&1 || { echo "SKIP: no scepclient"; exit 77; }
httpd=${SCEP_HTTPD:-./t/scep_httpd}
work=$(mktemp -d /tmp/mdm-scep-XXXXXX)
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rport=$(free_port)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --loglevel warning >/dev/null 2>&1 &
pids="$!"
i=0
until redis-cli -p "$rport" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "FAIL: no redis"; exit 1; }
    sleep 0.05
done
fail=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# a CA valid today, its key encrypted
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.plain.key" \
    -out "$work/ca.pem" -days 30 -subj "/CN=Test SCEP CA/O=mdm" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 ||
    { echo "FAIL: openssl req"; exit 1; }
echo "pass phrase" >"$work/pass"
openssl pkey -in "$work/ca.plain.key" -aes256 -passout "file:$work/pass" \
    -out "$work/ca.key" || exit 1
fp=$(openssl x509 -in "$work/ca.pem" -noout -fingerprint -sha256 |
    cut -d= -f2 | tr -d :)

start() { # name, options...
    name=$1
    shift
    rm -f "$work/$name.port"
    "$httpd" "$work/$name.port" "$rport" ca_cert="$work/ca.pem" \
        ca_key="$work/ca.key" ca_key_pass_file="$work/pass" prefix=t: "$@" \
        2>"$work/$name.log" &
    pids="$! $pids"
    i=0
    until [ -s "$work/$name.port" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "FAIL: no $name"; cat "$work/$name.log"; exit 1; }
        sleep 0.05
    done
    port=$(cat "$work/$name.port")
}

enroll() { # dir, cn, challenge
    mkdir -p "$work/$1"
    scepclient -server-url "http://127.0.0.1:$port/scep" -challenge "$3" \
        -private-key "$work/$1/key.pem" -certificate "$work/$1/cert.pem" \
        -cn "$2" -organization Demo -ca-fingerprint "$fp" -keySize 2048 \
        >"$work/$1/out" 2>&1
}

check_cert() { # dir, cn
    c="$work/$1/cert.pem"
    if openssl verify -CAfile "$work/ca.pem" -purpose sslclient "$c" \
        >/dev/null 2>&1; then ok; else bad "$1: certificate does not verify"; fi
    t=$(openssl x509 -in "$c" -noout -text)
    echo "$t" | grep -q "CN = $2" && ok || bad "$1: subject"
    echo "$t" | grep -q "TLS Web Client Authentication" && ok || bad "$1: EKU"
    echo "$t" | grep -A1 "Key Usage: critical" | grep -q "Digital Signature" &&
        ok || bad "$1: keyUsage"
    echo "$t" | grep -q "CA:FALSE" && ok || bad "$1: basicConstraints"
    a=$(openssl x509 -in "$c" -noout -pubkey)
    b=$(openssl pkey -in "$work/$1/key.pem" -pubout)
    [ "$a" = "$b" ] && ok || bad "$1: not the client's key"
}

# static challenge
start static challenge=s3cret legacy_des=on
if enroll s1 device-0001 s3cret; then ok; check_cert s1 device-0001
else bad "static enrollment"; cat "$work/s1/out" "$work/static.log"; fi
n=$(redis-cli -p "$rport" --scan --pattern 't:{scep}:cert:*' | wc -l)
[ "$n" -eq 1 ] && ok || bad "static: $n certificate records, expected 1"
if enroll s2 device-0002 wrong; then bad "wrong challenge accepted"
else ok; grep -q MDM08017 "$work/static.log" && ok || bad "no MDM08017 logged"; fi
[ ! -s "$work/s2/cert.pem" ] && ok || bad "wrong challenge: a certificate"
# scepclient renews when its directory holds a certificate: RenewalReq
# signed by it, same key and subject (its cached CSR)
old_serial=$(openssl x509 -in "$work/s1/cert.pem" -noout -serial)
rm -f "$work/s1/cert.pem.new"
if enroll s1 device-0001 ignored; then
    new_serial=$(openssl x509 -in "$work/s1/cert.pem" -noout -serial)
    [ "$new_serial" != "$old_serial" ] && ok || bad "renewal: same certificate"
    grep -q "RenewalReq.*issued" "$work/static.log" && ok || bad "renewal: not a RenewalReq"
    check_cert s1 device-0001
else bad "renewal"; cat "$work/s1/out" "$work/static.log"; fi
# GetCACaps as a client sees it
curl -s "http://127.0.0.1:$port/scep?operation=GetCACaps" | grep -qx SCEPStandard &&
    ok || bad "GetCACaps"

# one-time challenges
start dynamic challenge=dynamic legacy_des=on
chal=$(curl -s -X POST -d '{"ttl":300}' "http://127.0.0.1:$port/admin/challenge" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["challenge"])')
[ -n "$chal" ] && ok || bad "no one-time challenge"
if enroll d1 device-0003 "$chal"; then ok; check_cert d1 device-0003
else bad "one-time enrollment"; cat "$work/d1/out" "$work/dynamic.log"; fi
if enroll d2 device-0004 "$chal"; then bad "spent challenge accepted"
else ok; fi
n=$(redis-cli -p "$rport" --scan --pattern 't:{scep}:cert:*' | wc -l)
[ "$n" -eq 3 ] && ok || bad "dynamic: $n certificate records, expected 3 (static, renewal, one-time)"
serial=$(openssl x509 -in "$work/d1/cert.pem" -noout -serial | cut -d= -f2 |
    tr 'A-F' 'a-f' | sed 's/^0*//')
curl -s -X POST "http://127.0.0.1:$port/admin/revoke/$serial" | grep -q '"revoked":true' &&
    ok || bad "revoke"
[ "$(redis-cli -p "$rport" SISMEMBER 't:{scep}:revoked' "$serial")" = 1 ] &&
    ok || bad "revoked set"
# a revoked certificate renews nothing
if enroll d1 device-0003 ignored; then bad "renewal with a revoked certificate"
else ok; grep -q MDM08020 "$work/dynamic.log" && ok || bad "no MDM08020 logged"; fi

# approval manual: two clients wait (PENDING), one approved, one rejected
start manual challenge=s3cret legacy_des=on approval=manual
mkdir -p "$work/m1" "$work/m2"
(enroll m1 device-m1 s3cret; echo $? >"$work/m1/rc") &
pids="$! $pids"
(enroll m2 device-m2 s3cret; echo $? >"$work/m2/rc") &
pids="$! $pids"
pending() { curl -s "http://127.0.0.1:$port/admin/pending"; }
txid_of() { # cn: the pending request's transactionID, percent-encoded
    pending | /usr/bin/python3 -c 'import json, sys, urllib.parse
for p in json.load(sys.stdin)["pending"]:
    if "CN='"$1"'," in p["subject"]:
        print(urllib.parse.quote(p["transaction_id"], safe=""))'
}
i=0
until [ -n "$(txid_of device-m1)" ] && [ -n "$(txid_of device-m2)" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || break
    sleep 0.05
done
t1=$(txid_of device-m1)
t2=$(txid_of device-m2)
[ -n "$t1" ] && [ -n "$t2" ] && ok || bad "manual: requests not pending: $(pending)"
grep -q "MDM08033" "$work/manual.log" && ok || bad "manual: no MDM08033 logged"
[ "$(redis-cli -p "$rport" ZCARD 't:{scep}:issued')" = 3 ] && ok ||
    bad "manual: a certificate issued before approval"
curl -s -X POST "http://127.0.0.1:$port/admin/pending/$t1/approve" |
    grep -q '"approved":true' && ok || bad "approve"
curl -s -X POST "http://127.0.0.1:$port/admin/pending/$t2/reject" |
    grep -q '"rejected":true' && ok || bad "reject"
curl -s -o /dev/null -w '%{http_code}' -X POST \
    "http://127.0.0.1:$port/admin/pending/$t2/approve" | grep -qx 404 &&
    ok || bad "approve after reject: not 404"
curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$port/admin/pending/$t1/approve" | grep -qx 405 &&
    ok || bad "GET approve: not 405"
i=0
until [ -s "$work/m1/rc" ] && [ -s "$work/m2/rc" ]; do
    i=$((i + 1)); [ $i -lt 900 ] || break
    sleep 0.1
done
if [ "$(cat "$work/m1/rc" 2>/dev/null)" = 0 ]; then ok; check_cert m1 device-m1
else bad "approved request: no certificate"; cat "$work/m1/out" "$work/manual.log"; fi
[ "$(cat "$work/m2/rc" 2>/dev/null)" != 0 ] && [ ! -s "$work/m2/cert.pem" ] &&
    ok || bad "rejected request got a certificate"
grep -q MDM08025 "$work/manual.log" && ok || bad "no MDM08025 logged"
[ "$(redis-cli -p "$rport" ZCARD 't:{scep}:issued')" = 4 ] && ok ||
    bad "manual: not exactly one more certificate"

# GetNextCACert: a SignedData by the current CA holding the next one
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/next.key" \
    -out "$work/next.pem" -days 60 -subj "/CN=Next SCEP CA/O=mdm" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 ||
    { echo "FAIL: openssl req"; exit 1; }
curl -s "http://127.0.0.1:$port/scep?operation=GetCACaps" |
    grep -qx GetNextCACert && bad "GetNextCACert advertised without next_ca_cert" || ok
[ "$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$port/scep?operation=GetNextCACert")" = 404 ] &&
    grep -q MDM08005 "$work/manual.log" && ok || bad "GetNextCACert unconfigured: not 404 MDM08005"
start next challenge=s3cret next_ca_cert="$work/next.pem"
curl -s "http://127.0.0.1:$port/scep?operation=GetCACaps" |
    grep -qx GetNextCACert && ok || bad "GetNextCACert not advertised"
ct=$(curl -s -o "$work/next.p7" -w '%{content_type}' \
    "http://127.0.0.1:$port/scep?operation=GetNextCACert")
[ "$ct" = application/x-x509-next-ca-cert ] && ok || bad "GetNextCACert type $ct"
openssl cms -verify -inform DER -in "$work/next.p7" -certfile "$work/ca.pem" \
    -CAfile "$work/ca.pem" -purpose any -out /dev/null 2>/dev/null &&
    ok || bad "GetNextCACert: not signed by the current CA"
openssl cms -verify -inform DER -in "$work/next.p7" -certfile "$work/next.pem" \
    -CAfile "$work/next.pem" -purpose any -out /dev/null 2>/dev/null &&
    bad "GetNextCACert verifies with the next CA as signer" || ok
a=$(openssl pkcs7 -inform DER -in "$work/next.p7" -print_certs |
    openssl x509 -noout -fingerprint -sha256)
b=$(openssl x509 -in "$work/next.pem" -noout -fingerprint -sha256)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "GetNextCACert: not the next CA"
[ "$(openssl pkcs7 -inform DER -in "$work/next.p7" -print_certs |
    grep -c 'BEGIN CERTIFICATE')" = 1 ] && ok || bad "GetNextCACert: other certificates"
# a next CA that is no CA: refused at configuration
"$httpd" "$work/bad.port" "$rport" ca_cert="$work/ca.pem" \
    ca_key="$work/ca.key" ca_key_pass_file="$work/pass" challenge=x \
    next_ca_cert="$work/d1/cert.pem" 2>"$work/bad.log" &
bp=$!
i=0
while kill -0 $bp 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.05; done
if kill -0 $bp 2>/dev/null; then kill $bp; bad "next_ca_cert: a non-CA accepted"
else grep -q "next_ca_cert" "$work/bad.log" && ok || bad "next_ca_cert error: $(cat "$work/bad.log")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
