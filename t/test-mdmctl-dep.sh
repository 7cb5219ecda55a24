#!/bin/sh
# mdmctl dep keypair | token-decrypt | profile, checked with the openssl
# CLI: the server token is built here as ABM sends it (S/MIME
# EnvelopedData encrypted to the keypair's certificate), decrypted to a
# file and into a private redis-server; wrong keys, garbage and bad
# tokens are refused and write nothing.
set -u
name=dep
. "${top_srcdir:-$(dirname "$0")/..}/t/lib/mdmctl-check.sh"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT

# ---- dep keypair ----
k=$work/dep
check 0 "dep keypair" sh -c "umask 000; exec $bin dep keypair --out $k --cn 'Example MDM DEP'"
[ "$(mode "$k/dep.key")" = 600 ] && ok || bad "dep.key mode $(mode "$k/dep.key")"
openssl x509 -in "$k/dep.pem" -noout -text >"$work/cert.txt" 2>&1 || bad "dep.pem unreadable"
has "$work/cert.txt" "Subject: CN = Example MDM DEP" "--cn"
has "$work/cert.txt" "Public-Key: (2048 bit)" "RSA 2048"
has "$work/cert.txt" "CA:FALSE" "not a CA"
has "$work/cert.txt" "Key Encipherment" "keyEncipherment"
openssl verify -CAfile "$k/dep.pem" "$k/dep.pem" >/dev/null 2>&1 && ok || bad "not self-signed"
a=$(openssl x509 -in "$k/dep.pem" -noout -pubkey | openssl sha256)
b=$(openssl pkey -in "$k/dep.key" -pubout | openssl sha256)
[ "$a" = "$b" ] && ok || bad "dep.pem is not dep.key's"
sum=$(cat "$k"/* | cksum)
check 1 "dep keypair again" $bin dep keypair --out "$k"
says "refusing to overwrite"
[ "$(cat "$k"/* | cksum)" = "$sum" ] && ok || bad "dep keypair changed files"
check 2 "dep keypair without --out" $bin dep keypair
check 2 "dep keypair --days 0" $bin dep keypair --out "$work/x" --days 0
absent "$work/x" "refused dep keypair"
check 0 "a second keypair" $bin dep keypair --out "$work/other"

# ---- dep token-decrypt ----
# the decrypted content of an ABM server token: a MIME part
token() { # file, json
    printf 'Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n-----BEGIN MESSAGE-----\r\n%s\r\n-----END MESSAGE-----\r\n' "$2" >"$1"
}
J='{"consumer_key":"CK_0a1b2c","consumer_secret":"CS_3d4e5f","access_token":"AT_O123456","access_secret":"AS_789abc","access_token_expiry":"2099-11-29T17:45:51Z"}'
token "$work/plain" "$J"
# as ABM sends it: S/MIME (MIME headers, base64), EnvelopedData
openssl smime -encrypt -aes256 -in "$work/plain" -out "$work/token.p7m" \
    "$k/dep.pem" 2>/dev/null || bad "cannot encrypt the token"
has "$work/token.p7m" "smime-type=enveloped-data" "S/MIME wrapping"
D="--key $k/dep.key --cert $k/dep.pem"
check 0 "token-decrypt" sh -c "umask 000; exec $bin dep token-decrypt $D --in $work/token.p7m --out $work/token.json"
[ "$(mode "$work/token.json")" = 600 ] && ok || bad "token.json mode $(mode "$work/token.json")"
has "$work/out" "2099-11-29T17:45:51Z" "expiry reported"
grep -q "CS_3d4e5f\|AS_789abc" "$work/out" "$work/err" && bad "secrets printed" || ok
if "$py" - "$work/token.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d == {"consumer_key": "CK_0a1b2c", "consumer_secret": "CS_3d4e5f",
             "access_token": "AT_O123456", "access_secret": "AS_789abc",
             "access_token_expiry": "2099-11-29T17:45:51Z"}, d
PY
then ok; else bad "token.json content"; fi
check 1 "token-decrypt over an existing file" $bin dep token-decrypt $D \
    --in "$work/token.p7m" --out "$work/token.json"
says "refusing to overwrite"
# DER and PEM CMS, from openssl cms
openssl cms -encrypt -aes256 -in "$work/plain" -outform DER -out "$work/token.der" \
    "$k/dep.pem" 2>/dev/null
check 0 "token-decrypt DER" $bin dep token-decrypt $D --in "$work/token.der" \
    --out "$work/t2.json"
cmp -s "$work/t2.json" "$work/token.json" && ok || bad "DER token differs"
openssl cms -encrypt -aes256 -in "$work/plain" -outform PEM -out "$work/token.pem" \
    "$k/dep.pem" 2>/dev/null
check 0 "token-decrypt PEM" $bin dep token-decrypt $D --in "$work/token.pem" \
    --out "$work/t3.json"
base64 "$work/token.der" >"$work/token.b64"
check 0 "token-decrypt bare base64" $bin dep token-decrypt $D --in "$work/token.b64" \
    --out "$work/t4.json"
cmp -s "$work/t4.json" "$work/token.json" && ok || bad "base64 token differs"
token "$work/frac" '{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_secret":"AS_1","access_token_expiry":"2099-01-01T00:00:00.000Z"}'
openssl smime -encrypt -aes256 -in "$work/frac" -out "$work/frac.p7m" "$k/dep.pem" 2>/dev/null
check 0 "token-decrypt, expiry with fractions" $bin dep token-decrypt $D \
    --in "$work/frac.p7m" --out "$work/t5.json"

# refusals, each writes nothing
n=0
refused() { # description, expected stderr, token file, [key dir]
    n=$((n + 1))
    kd=${4:-$k}
    check 1 "$1" $bin dep token-decrypt --key "$kd/dep.key" --cert "$kd/dep.pem" \
        --in "$3" --out "$work/r$n.json"
    says "$2"
    absent "$work/r$n.json" "$1"
}
refused "token for another certificate" "not encrypted to --cert" \
    "$work/token.p7m" "$work/other"
check 1 "key and cert mismatch" $bin dep token-decrypt --key "$work/other/dep.key" \
    --cert "$k/dep.pem" --in "$work/token.p7m" --out "$work/r0.json"
says "not the key of --cert"
absent "$work/r0.json" "mismatched key"
echo "this is not a token" >"$work/garbage"
refused "garbage" "no S/MIME or CMS" "$work/garbage"
refused "plaintext MIME" "no S/MIME or CMS" "$work/plain"
head -c 300 "$work/token.p7m" >"$work/cut.p7m"
refused "truncated token" "no S/MIME or CMS" "$work/cut.p7m"
# a signed (not encrypted) message
openssl cms -sign -nodetach -in "$work/plain" -signer "$k/dep.pem" -inkey "$k/dep.key" \
    -out "$work/signed.p7m" 2>/dev/null
refused "signed, not encrypted" "not an encrypted one" "$work/signed.p7m"
enc() { # name, plaintext file
    openssl smime -encrypt -aes256 -in "$2" -out "$work/$1.p7m" "$k/dep.pem" 2>/dev/null
}
printf 'Content-Type: text/plain\r\n\r\n%s\r\n' "$J" >"$work/nomarkers"
enc nomarkers "$work/nomarkers"
refused "no BEGIN MESSAGE" "BEGIN MESSAGE" "$work/nomarkers.p7m"
token "$work/missing" '{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_token_expiry":"2099-01-01T00:00:00Z"}'
enc missing "$work/missing"
refused "missing access_secret" "no access_secret" "$work/missing.p7m"
token "$work/empty" '{"consumer_key":"","consumer_secret":"CS_1","access_token":"AT_1","access_secret":"AS_1","access_token_expiry":"2099-01-01T00:00:00Z"}'
enc empty "$work/empty"
refused "empty consumer_key" "no consumer_key" "$work/empty.p7m"
token "$work/notjson" 'consumer_key=CK_1'
enc notjson "$work/notjson"
refused "not JSON" "not a JSON object" "$work/notjson.p7m"
token "$work/expired" '{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_secret":"AS_1","access_token_expiry":"2020-01-01T00:00:00Z"}'
enc expired "$work/expired"
refused "expired token" "expired" "$work/expired.p7m"
token "$work/baddate" '{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_secret":"AS_1","access_token_expiry":"soon"}'
enc baddate "$work/baddate"
refused "bad expiry" "ISO 8601" "$work/baddate.p7m"
check 2 "token-decrypt without --in" $bin dep token-decrypt $D --out "$work/r.json"
check 2 "token-decrypt without --out or --redis" $bin dep token-decrypt $D \
    --in "$work/token.p7m"
check 2 "token-decrypt with both" $bin dep token-decrypt $D --in "$work/token.p7m" \
    --out "$work/r.json" --redis 127.0.0.1:1
absent "$work/r.json" "usage errors"
check 1 "token-decrypt missing key file" $bin dep token-decrypt --key "$work/none" \
    --cert "$k/dep.pem" --in "$work/token.p7m" --out "$work/r.json"
absent "$work/r.json" "missing key file"

# --redis: SET <prefix>dep:token:<name>, against a private redis-server
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$work" --loglevel warning >/dev/null 2>&1 &
    pid=$!
    i=0
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { bad "no redis"; break; }
        sleep 0.05
    done
    check 0 "token-decrypt --redis" $bin dep token-decrypt $D --in "$work/token.p7m" \
        --redis "127.0.0.1:$port"
    redis-cli -p "$port" GET mdm:dep:token:default >"$work/redis.json"
    has "$work/redis.json" '"access_secret":"AS_789abc"' "token in Redis"
    check 0 "token-decrypt --redis --prefix --name" $bin dep token-decrypt $D \
        --in "$work/token.p7m" --redis "127.0.0.1:$port" --prefix x: --name abm1
    [ "$(redis-cli -p "$port" EXISTS x:dep:token:abm1)" = 1 ] && ok || bad "--prefix/--name"
    check 1 "token-decrypt --redis, expired" $bin dep token-decrypt $D \
        --in "$work/expired.p7m" --redis "127.0.0.1:$port" --name expired
    [ "$(redis-cli -p "$port" EXISTS mdm:dep:token:expired)" = 0 ] && ok ||
        bad "an expired token reached Redis"
    check 2 "token-decrypt --redis bad name" $bin dep token-decrypt $D \
        --in "$work/token.p7m" --redis "127.0.0.1:$port" --name "a b"
    # the global connection options: "--redis -" as they are, AUTH from a
    # password file (never on the command line)
    check 0 "token-decrypt --redis - (global --redis)" $bin --redis \
        "127.0.0.1:$port" dep token-decrypt $D --in "$work/token.p7m" \
        --redis - --name global
    [ "$(redis-cli -p "$port" EXISTS mdm:dep:token:global)" = 1 ] && ok ||
        bad "--redis - did not store"
    redis-cli -p "$port" CONFIG SET requirepass dep-pw-123 >/dev/null
    (umask 077; echo dep-pw-123 >"$work/redis.pw")
    check 2 "token-decrypt --redis, AUTH needed" $bin dep token-decrypt $D \
        --in "$work/token.p7m" --redis "127.0.0.1:$port" --name noauth
    check 0 "token-decrypt --redis with --redis-password-file" $bin \
        --redis-password-file "$work/redis.pw" dep token-decrypt $D \
        --in "$work/token.p7m" --redis "127.0.0.1:$port" --name authed
    [ "$(redis-cli -p "$port" -a dep-pw-123 --no-auth-warning EXISTS \
        mdm:dep:token:authed)" = 1 ] && ok || bad "AUTH store"
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    pid=
fi
check 2 "token-decrypt unreachable Redis" $bin dep token-decrypt $D \
    --in "$work/token.p7m" --redis 127.0.0.1:1

# ---- dep profile ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/root.key" \
    -out "$work/root.pem" -days 30 -subj "/CN=Test TLS Root" >/dev/null 2>&1
openssl req -new -newkey rsa:2048 -nodes -keyout "$work/int.key" \
    -out "$work/int.csr" -subj "/CN=Test TLS Intermediate" >/dev/null 2>&1
openssl x509 -req -in "$work/int.csr" -CA "$work/root.pem" -CAkey "$work/root.key" \
    -CAcreateserial -out "$work/int.pem" -days 30 >/dev/null 2>&1
cat "$work/int.pem" "$work/root.pem" >"$work/chain.pem"
check 0 "dep profile" $bin dep profile --url https://mdm.example.com/mdm/enroll \
    --name "Example" --trust "$work/chain.pem" --supervised on --mandatory on \
    --removable off --await-configured on --department "IT" \
    --support-phone "+1 555 0100" --skip Location --skip Siri --device C02XYZ \
    --out "$work/dep.json"
if "$py" - "$work/dep.json" "$work/int.pem" "$work/root.pem" <<'PY'
import base64, json, ssl, sys
d = json.load(open(sys.argv[1]))
want = [base64.b64encode(ssl.PEM_cert_to_DER_cert(open(f).read())).decode()
        for f in sys.argv[2:]]
assert d["anchor_certs"] == want, "anchor_certs"
assert d["url"] == "https://mdm.example.com/mdm/enroll"
assert d["profile_name"] == "Example"
assert d["is_supervised"] is True and d["is_mandatory"] is True
assert d["is_mdm_removable"] is False and d["await_device_configured"] is True
assert d["department"] == "IT" and d["support_phone_number"] == "+1 555 0100"
assert d["skip_setup_items"] == ["Location", "Siri"]
assert d["devices"] == ["C02XYZ"]
PY
then ok; else bad "dep profile JSON"; fi
# anchor_certs parse as certificates (DER)
"$py" -c "
import base64, json, sys
for i, c in enumerate(json.load(open(sys.argv[1]))['anchor_certs']):
    open('%s/anchor%d.der' % (sys.argv[2], i), 'wb').write(base64.b64decode(c))
" "$work/dep.json" "$work"
openssl x509 -inform DER -in "$work/anchor1.der" -noout -subject 2>/dev/null |
    grep -q "Test TLS Root" && ok || bad "anchor_certs[1] is not the root"
# to stdout; no --trust: no anchor_certs (the device trusts its roots)
check 0 "dep profile, no trust" $bin dep profile --url https://mdm.example.com/e
grep -q anchor_certs "$work/out" && bad "anchor_certs without --trust" || ok
has "$work/out" '"profile_name": "MDM Enrollment"' "default profile_name"
check 0 "dep profile --supervising-host-cert" $bin dep profile \
    --url https://mdm.example.com/e --supervising-host-cert "$work/root.pem"
has "$work/out" '"supervising_host_certs"' "supervising_host_certs"
check 2 "dep profile without --url" $bin dep profile --trust "$work/root.pem"
check 2 "dep profile http url" $bin dep profile --url http://mdm.example.com/e
check 2 "dep profile bad boolean" $bin dep profile --url https://a.example/ --supervised maybe
check 2 "dep profile unknown option" $bin dep profile --url https://a.example/ --frob 1
check 2 "dep profile trust garbage" $bin dep profile --url https://a.example/ \
    --trust "$work/garbage" --out "$work/p2.json"
says trust_cert
absent "$work/p2.json" "refused dep profile"
check 1 "dep profile over an existing file" $bin dep profile \
    --url https://a.example/ --out "$work/dep.json"
check 2 "dep without subcommand" $bin dep
check 2 "dep unknown subcommand" $bin dep frob

finish
