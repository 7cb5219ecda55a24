#!/bin/sh
# mdmctl ca init and mdmctl profile, checked with the openssl CLI: the CA's
# extensions and key mode, no overwriting, and a profile whose CMS
# signature "openssl cms -verify" accepts.
set -u
bin=${MDMCTL:-./tools/mdmctl}
if ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: openssl not installed"
    exit 77
fi
work=$(mktemp -d /tmp/mdm-profile-sh-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
pass=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

check() { # expected-exit, description, command...
    want=$1
    what=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok
    else
        bad "$what: exit $got, expected $want"
        cat "$work/out" "$work/err"
    fi
}

# check that the last command's stderr names something
says() {
    if grep -q -- "$1" "$work/err"; then ok; else
        bad "stderr does not mention '$1':"; cat "$work/err"; fi
}

has() { # file, fixed string, description
    if grep -qF -- "$2" "$1"; then ok; else bad "$3: no '$2' in $1"; fi
}

mode() {
    stat -c %a "$1"
}

# ---- ca init ----
ca=$work/ca
# a permissive umask must not loosen the key's mode
check 0 "ca init (RSA)" sh -c "umask 000; exec $bin ca init --out $ca"
[ "$(mode "$ca/ca.key")" = 600 ] && ok || bad "ca.key mode $(mode "$ca/ca.key")"
openssl x509 -in "$ca/ca.pem" -noout -text >"$work/ca.txt" 2>&1 || bad "ca.pem unreadable"
has "$work/ca.txt" "X509v3 Basic Constraints: critical" "basicConstraints critical"
has "$work/ca.txt" "CA:TRUE" "CA:TRUE"
has "$work/ca.txt" "X509v3 Key Usage: critical" "keyUsage critical"
has "$work/ca.txt" "Certificate Sign, CRL Sign" "keyCertSign + cRLSign"
has "$work/ca.txt" "X509v3 Subject Key Identifier" "SKI"
has "$work/ca.txt" "Public-Key: (3072 bit)" "RSA 3072"
has "$work/ca.txt" "Subject: CN = MDM CA" "default CN"
# self-signed and valid about 10 years (more than 9, less than 11)
openssl verify -CAfile "$ca/ca.pem" "$ca/ca.pem" >/dev/null 2>&1 && ok || bad "not self-signed"
openssl x509 -in "$ca/ca.pem" -noout -checkend $((9 * 365 * 86400)) >/dev/null && ok || bad "expires within 9 years"
openssl x509 -in "$ca/ca.pem" -noout -checkend $((11 * 365 * 86400)) >/dev/null && bad "valid beyond 11 years" || ok
openssl pkey -in "$ca/ca.key" -noout 2>/dev/null && ok || bad "ca.key unreadable"

# never overwrite: files unchanged, exit 1
sum=$(cat "$ca/ca.pem" "$ca/ca.key" | cksum)
check 1 "ca init over an existing CA" $bin ca init --out "$ca"
says "refusing to overwrite"
[ "$(cat "$ca/ca.pem" "$ca/ca.key" | cksum)" = "$sum" ] && ok || bad "CA files changed"
# only the certificate exists: refused, and no key left behind
mkdir "$work/half"
cp "$ca/ca.pem" "$work/half/ca.pem"
check 1 "ca init with ca.pem present" $bin ca init --out "$work/half"
[ -e "$work/half/ca.key" ] && bad "ca.key left behind" || ok

check 0 "ca init --ec" $bin ca init --out "$work/ec" --ec --cn "Test EC CA" --days 30
openssl x509 -in "$work/ec/ca.pem" -noout -text >"$work/ec.txt" 2>&1
has "$work/ec.txt" "P-384" "EC P-384"
has "$work/ec.txt" "Subject: CN = Test EC CA" "--cn"
has "$work/ec.txt" "Certificate Sign, CRL Sign" "EC keyUsage"
openssl x509 -in "$work/ec/ca.pem" -noout -checkend $((31 * 86400)) >/dev/null && bad "--days 30 ignored" || ok
[ "$(mode "$work/ec/ca.key")" = 600 ] && ok || bad "EC ca.key mode"

check 2 "ca init without --out" $bin ca init
check 2 "ca init --days 0" $bin ca init --out "$work/x" --days 0
check 2 "ca unknown subcommand" $bin ca frob
check 2 "ca init unknown option" $bin ca init --out "$work/x" --rsa

# ---- profile ----
# a signing certificate from the new CA (S/MIME-style: digitalSignature)
openssl req -new -newkey rsa:2048 -nodes -keyout "$work/sign.key" \
    -out "$work/sign.csr" -subj "/CN=profile signer" >/dev/null 2>&1
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' >"$work/sign.ext"
openssl x509 -req -in "$work/sign.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
    -CAcreateserial -out "$work/sign.pem" -days 30 -extfile "$work/sign.ext" \
    >/dev/null 2>&1 || bad "cannot issue the signing certificate"
topic=com.apple.mgmt.External.2c5e0b5a-3f1d-4a7b-9e6c-8d4f2a1b0c9e
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/push.key" \
    -out "$work/push.pem" -days 30 \
    -subj "/UID=$topic/CN=APSP:2c5e0b5a/C=US" >/dev/null 2>&1

P="--server-url https://mdm.example.com/mdm/connect --scep-url https://mdm.example.com/scep --scep-ca $ca/ca.pem"
check 0 "profile (signed)" $bin profile $P --push-cert "$work/push.pem" \
    --checkin-url https://mdm.example.com/mdm/checkin --challenge s3cret \
    --trust "$ca/ca.pem" --sign-cert "$work/sign.pem" --sign-key "$work/sign.key" \
    --organization "Example Org" --out "$work/p.mobileconfig"
[ "$(mode "$work/p.mobileconfig")" = 600 ] && ok || bad "profile mode $(mode "$work/p.mobileconfig")"
if openssl cms -verify -inform DER -in "$work/p.mobileconfig" \
    -CAfile "$ca/ca.pem" -out "$work/p.xml" >/dev/null 2>"$work/verify.err"; then
    ok
else
    bad "openssl cms -verify refused the profile"; cat "$work/verify.err"
fi
for k in '<string>Configuration</string>' '<string>com.apple.security.scep</string>' \
    '<string>com.apple.mdm</string>' '<string>com.apple.security.root</string>' \
    "<string>$topic</string>" '<key>IdentityCertificateUUID</key>' \
    '<key>Key Type</key>' '<key>Key Usage</key>' '<key>CAFingerprint</key>' \
    '<string>s3cret</string>' '<key>AccessRights</key>' \
    '<string>https://mdm.example.com/mdm/checkin</string>' \
    '<string>com.apple.mdm.per-user-connections</string>'; do
    has "$work/p.xml" "$k" "profile content"
done
# attached content: the plist is inside the DER (not detached)
openssl cms -cmsout -print -inform DER -in "$work/p.mobileconfig" \
    >"$work/cms.txt" 2>&1
grep -q "eContent: <ABSENT>" "$work/cms.txt" && bad "content detached" || ok
# a second download carries the same plist (same ids and UUIDs)
check 0 "profile again" $bin profile $P --topic "$topic" \
    --checkin-url https://mdm.example.com/mdm/checkin --challenge s3cret \
    --trust "$ca/ca.pem" --sign-cert "$work/sign.pem" --sign-key "$work/sign.key" \
    --organization "Example Org" --out "$work/p2.mobileconfig"
openssl cms -verify -inform DER -in "$work/p2.mobileconfig" \
    -CAfile "$ca/ca.pem" -out "$work/p2.xml" >/dev/null 2>&1
cmp -s "$work/p.xml" "$work/p2.xml" && ok || bad "second profile differs"

# the challenge from a file (not on the command line)
printf 'from-a-file\n' >"$work/challenge"
check 0 "profile --challenge-file" $bin profile $P --topic "$topic" --unsigned \
    --challenge-file "$work/challenge"
has "$work/out" "<string>from-a-file</string>" "--challenge-file"
check 2 "profile --challenge-file missing" $bin profile $P --topic "$topic" \
    --unsigned --challenge-file "$work/nonexistent"

# unsigned, to stdout
check 0 "profile --unsigned" $bin profile $P --topic "$topic" --unsigned
head -c 5 "$work/out" | grep -q '<?xml' && ok || bad "unsigned profile is not XML"
check 0 "profile --xml" $bin profile $P --topic "$topic" \
    --sign-cert "$work/sign.pem" --sign-key "$work/sign.key" --xml
head -c 5 "$work/out" | grep -q '<?xml' && ok || bad "--xml is not XML"

# refusals name the option
check 2 "profile without scep_url" $bin profile --server-url https://a.example/ \
    --topic "$topic" --unsigned
says scep_url
check 2 "profile --access-rights 0" $bin profile $P --topic "$topic" --unsigned \
    --access-rights 0
says access_rights
check 2 "profile without signing" $bin profile $P --topic "$topic"
says sign_cert
check 2 "profile http server url" $bin profile $P --topic "$topic" --unsigned \
    --server-url http://mdm.example.com/
says server_url
check 2 "profile unknown option" $bin profile $P --topic "$topic" --unsigned --frob x
says frob
check 2 "profile push cert without UID" $bin profile $P --push-cert "$ca/ca.pem" --unsigned
says push_cert
check 2 "profile missing value" $bin profile $P --topic
check 2 "profile signed by the CA itself" $bin profile $P --topic "$topic" \
    --sign-cert "$ca/ca.pem" --sign-key "$ca/ca.key"
says digitalSignature

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
