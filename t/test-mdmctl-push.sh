#!/bin/sh
# mdmctl push csr | vendor-sign | check, checked with the openssl CLI: the
# key's mode, the CSR, the vendor request plist (PushCertSignature over
# the CSR's DER verified with the vendor certificate, the chain), and the
# push certificate checks; refusals write nothing.
set -u
name=push
. "${top_srcdir:-$(dirname "$0")/..}/t/lib/mdmctl-check.sh"

# ---- push csr ----
d=$work/csr
check 0 "push csr" sh -c "umask 000; exec $bin push csr --out $d --cn 'Example Org push' --email admin@example.com --org 'Example Org' --country US"
[ "$(mode "$d/push.key")" = 600 ] && ok || bad "push.key mode $(mode "$d/push.key")"
openssl req -in "$d/push.csr" -noout -verify >/dev/null 2>&1 && ok || bad "push.csr does not verify"
openssl req -in "$d/push.csr" -noout -subject -nameopt RFC2253 >"$work/subj" 2>&1
has "$work/subj" "CN=Example Org push" "CSR CN"
has "$work/subj" "emailAddress=admin@example.com" "CSR email"
has "$work/subj" "C=US" "CSR country"
openssl req -in "$d/push.csr" -noout -text >"$work/csr.txt" 2>&1
has "$work/csr.txt" "Public-Key: (2048 bit)" "RSA 2048"
has "$work/csr.txt" "sha256WithRSAEncryption" "CSR signed with SHA-256"
openssl req -in "$d/push.csr.der" -inform DER -outform PEM -out "$work/der.pem" 2>/dev/null
cmp -s "$work/der.pem" "$d/push.csr" && ok || bad "push.csr.der is not push.csr"
# the CSR's key is push.key
a=$(openssl req -in "$d/push.csr" -noout -pubkey | openssl sha256)
b=$(openssl pkey -in "$d/push.key" -pubout | openssl sha256)
[ "$a" = "$b" ] && ok || bad "the CSR's key is not push.key"
# never overwrite
sum=$(cat "$d"/* | cksum)
check 1 "push csr again" $bin push csr --out "$d"
says "refusing to overwrite"
[ "$(cat "$d"/* | cksum)" = "$sum" ] && ok || bad "push csr changed files"
mkdir "$work/half"
cp "$d/push.csr.der" "$work/half/"
check 1 "push csr with push.csr.der present" $bin push csr --out "$work/half"
absent "$work/half/push.key" "partial push csr"
check 2 "push csr without --out" $bin push csr
check 2 "push csr bad --country" $bin push csr --out "$work/x" --country usa
check 2 "push csr bad --email" $bin push csr --out "$work/x" --email nobody
check 2 "push csr unknown option" $bin push csr --out "$work/x" --frob 1
absent "$work/x" "refused push csr"

# ---- push vendor-sign ----
# stand-ins: an "Apple root", an intermediate, the vendor certificate
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/root.key" \
    -out "$work/root.pem" -days 30 -subj "/CN=Test Apple Root CA" >/dev/null 2>&1
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >"$work/ca.ext"
openssl req -new -newkey rsa:2048 -nodes -keyout "$work/int.key" \
    -out "$work/int.csr" -subj "/CN=Test Apple WWDR CA" >/dev/null 2>&1
openssl x509 -req -in "$work/int.csr" -CA "$work/root.pem" -CAkey "$work/root.key" \
    -CAcreateserial -out "$work/int.pem" -days 30 -extfile "$work/ca.ext" >/dev/null 2>&1
openssl req -new -newkey rsa:2048 -nodes -keyout "$work/vendor.key" \
    -out "$work/vendor.csr" -subj "/CN=MDM Vendor: Example/OU=XYZ" >/dev/null 2>&1
openssl x509 -req -in "$work/vendor.csr" -CA "$work/int.pem" -CAkey "$work/int.key" \
    -CAcreateserial -out "$work/vendor.pem" -days 30 >/dev/null 2>&1 ||
    bad "cannot make the vendor certificate"
V="--vendor-cert $work/vendor.pem --vendor-key $work/vendor.key"

check 0 "push vendor-sign" $bin push vendor-sign --csr "$d/push.csr" $V \
    --chain "$work/int.pem" --chain "$work/root.pem" --out "$work/req.b64"
# one line of base64, no line breaks
[ "$(wc -l <"$work/req.b64")" -eq 0 ] && ok || bad "req.b64 has line breaks"
base64 -d "$work/req.b64" >"$work/req.plist" 2>/dev/null && ok || bad "req.b64 is not base64"
has "$work/req.plist" '<key>PushCertRequestCSR</key>' "plist"
has "$work/req.plist" '<key>PushCertCertificateChain</key>' "plist"
has "$work/req.plist" '<key>PushCertSignature</key>' "plist"
# the three values, out of the plist with python3's plistlib
if "$py" - "$work/req.plist" "$work" <<'PY'
import base64, plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
assert sorted(d) == ["PushCertCertificateChain", "PushCertRequestCSR",
                     "PushCertSignature"], sorted(d)
assert all(isinstance(v, str) for v in d.values())
w = sys.argv[2]
open(w + "/csr.der", "wb").write(base64.b64decode(d["PushCertRequestCSR"], validate=True))
open(w + "/sig", "wb").write(base64.b64decode(d["PushCertSignature"], validate=True))
open(w + "/chain.pem", "w").write(d["PushCertCertificateChain"])
PY
then ok; else bad "the plist's keys"; fi
cmp -s "$work/csr.der" "$d/push.csr.der" && ok || bad "PushCertRequestCSR is not the CSR's DER"
openssl x509 -in "$work/vendor.pem" -noout -pubkey >"$work/vendor.pub"
if openssl dgst -sha256 -verify "$work/vendor.pub" -signature "$work/sig" \
    "$work/csr.der" >/dev/null 2>&1; then ok; else bad "PushCertSignature does not verify"; fi
# and not over something else
printf 'x' >>"$work/csr.der"
openssl dgst -sha256 -verify "$work/vendor.pub" -signature "$work/sig" \
    "$work/csr.der" >/dev/null 2>&1 && bad "signature verifies other data" || ok
# the chain: vendor, intermediate, root, each PEM that parses
[ "$(grep -c 'BEGIN CERTIFICATE' "$work/chain.pem")" = 3 ] && ok || bad "chain: not 3 certificates"
openssl x509 -in "$work/chain.pem" -noout -subject -nameopt RFC2253 >"$work/first" 2>&1
has "$work/first" "MDM Vendor: Example" "chain starts with the vendor certificate"
openssl verify -CAfile "$work/root.pem" -untrusted "$work/chain.pem" \
    "$work/chain.pem" >/dev/null 2>&1 && ok || bad "chain does not verify"
awk 'length > 64 && !/^-----/' "$work/chain.pem" | grep -q . &&
    bad "chain PEM lines over 64 characters" || ok
# a DER CSR works the same
check 0 "push vendor-sign (DER CSR, no chain)" $bin push vendor-sign \
    --csr "$d/push.csr.der" $V --out "$work/req2.b64"
says "warning: no --chain"
# refusals: nothing written
check 1 "vendor-sign over an existing file" $bin push vendor-sign \
    --csr "$d/push.csr" $V --out "$work/req.b64"
says "refusing to overwrite"
check 1 "vendor-sign with another key" $bin push vendor-sign --csr "$d/push.csr" \
    --vendor-cert "$work/vendor.pem" --vendor-key "$work/int.key" --out "$work/r3"
says "not the key of --vendor-cert"
absent "$work/r3" "wrong vendor key"
echo "not a CSR" >"$work/garbage"
check 1 "vendor-sign garbage CSR" $bin push vendor-sign --csr "$work/garbage" $V \
    --out "$work/r3"
says "no certificate request"
absent "$work/r3" "garbage CSR"
# a CSR whose signature is broken (one byte of its DER changed)
"$py" -c "
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[-5] ^= 1
open(sys.argv[2], 'wb').write(b)" "$d/push.csr.der" "$work/broken.der"
check 1 "vendor-sign damaged CSR" $bin push vendor-sign --csr "$work/broken.der" $V \
    --out "$work/r3"
says "does not verify"
absent "$work/r3" "damaged CSR"
check 1 "vendor-sign garbage chain" $bin push vendor-sign --csr "$d/push.csr" $V \
    --chain "$work/garbage" --out "$work/r3"
absent "$work/r3" "garbage chain"
check 2 "vendor-sign without --out" $bin push vendor-sign --csr "$d/push.csr" $V
check 1 "vendor-sign missing CSR" $bin push vendor-sign --csr "$work/none" $V --out "$work/r3"
absent "$work/r3" "missing CSR"

# ---- push check ----
topic=com.apple.mgmt.External.2c5e0b5a-3f1d-4a7b-9e6c-8d4f2a1b0c9e
# "Apple" issues the push certificate for the CSR
openssl x509 -req -in "$d/push.csr" -CA "$work/int.pem" -CAkey "$work/int.key" \
    -CAcreateserial -days 300 -out "$work/tmp.pem" >/dev/null 2>&1
# the subject Apple sets: a CA database keeps it from a request
mkdir "$work/db"
: >"$work/db/index.txt"
echo 01 >"$work/db/serial"
cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $work/db/index.txt
new_certs_dir = $work/db
serial = $work/db/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
CNF
openssl req -new -key "$d/push.key" -out "$work/apsp.csr" \
    -subj "/UID=$topic/CN=APSP:2c5e0b5a/C=US" >/dev/null 2>&1
openssl ca -batch -config "$work/ca.cnf" -cert "$work/int.pem" -keyfile "$work/int.key" \
    -in "$work/apsp.csr" -out "$work/push.pem" -days 300 -preserveDN -notext >/dev/null 2>&1 ||
    bad "cannot issue the push certificate"
openssl ca -batch -config "$work/ca.cnf" -cert "$work/int.pem" -keyfile "$work/int.key" \
    -in "$work/apsp.csr" -out "$work/expired.pem" -startdate 20200101000000Z \
    -enddate 20210101000000Z -preserveDN -notext >/dev/null 2>&1 ||
    bad "cannot issue the expired certificate"
openssl ca -batch -config "$work/ca.cnf" -cert "$work/int.pem" -keyfile "$work/int.key" \
    -in "$work/apsp.csr" -out "$work/soon.pem" -days 5 -preserveDN -notext >/dev/null 2>&1

check 0 "push check" $bin push check "$work/push.pem" --key "$d/push.key"
has "$work/out" "topic:     $topic" "topic"
has "$work/out" "CN = APSP:2c5e0b5a" "subject"
has "$work/out" "issuer:    CN = Test Apple WWDR CA" "issuer"
has "$work/out" "notAfter:  " "notAfter"
grep -Eq '^days left: (299|300)$' "$work/out" && ok || bad "days left: $(grep days "$work/out")"
has "$work/out" "matches" "--key matches"
[ -s "$work/err" ] && bad "warning for a certificate valid 300 days" || ok
openssl x509 -in "$work/push.pem" -outform DER -out "$work/push.der"
check 0 "push check DER" $bin push check "$work/push.der"
has "$work/out" "topic:     $topic" "topic (DER)"
check 0 "push check about to expire" $bin push check "$work/soon.pem"
says "expires in"
check 0 "push check --warn-days 1" $bin push check "$work/soon.pem" --warn-days 1
[ -s "$work/err" ] && bad "--warn-days ignored" || ok
check 1 "push check expired" $bin push check "$work/expired.pem"
says "has expired"
check 1 "push check without UID" $bin push check "$work/vendor.pem"
says "not an MDM push certificate"
says "no UID"
# a UID that is not a push topic
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/o.key" -out "$work/other.pem" \
    -days 30 -subj "/UID=com.example.other/CN=x" >/dev/null 2>&1
check 1 "push check UID not a topic" $bin push check "$work/other.pem"
says "com.apple.mgmt."
check 1 "push check wrong key" $bin push check "$work/push.pem" --key "$work/vendor.key"
says "is not the key of"
check 1 "push check garbage" $bin push check "$work/garbage"
says "no certificate"
check 1 "push check missing file" $bin push check "$work/none"
check 2 "push check without a file" $bin push check
check 2 "push check bad --warn-days" $bin push check "$work/push.pem" --warn-days x

finish
