#!/bin/sh
# Test PKI for libmdm and the server modules: mkpki.sh OUTDIR
#
# Everything is PEM. Names are relied upon by other tests:
#   root, int (CA issued by root), cafile.pem = root + int
#   dev1, dev2 (RSA, issued by int), devroot (issued by root),
#   devec (EC P-256, by int), expired, notyet, serverauth (EKU serverAuth
#   only), other-root, stranger (by other-root), selfsigned,
#   server (CN=localhost, by int) + server-chain.pem = server + int,
#   scep-ca (the built-in SCEP CA, self-signed), signer (signs enrollment
#   profiles, by int) + signer-chain.pem, identity-ca.pem = cafile.pem +
#   scep-ca (what devices enrolled by SCEP are checked against).
# Keys: RSA 2048 for root, int, dev1, dev2, server; EC P-256 for the rest
# (faster to generate). Keys are 0644 on purpose: test servers may drop
# privileges.
# Idempotent: does nothing when OUTDIR/.done exists.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -f "$OUT/.done" ] && exit 0

# Parallel test runs may call us at the same time: one generates, the
# others wait and then see .done.
exec 9>"$OUT/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
[ -f "$OUT/.done" ] && exit 0

W=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"

ossl() {
    openssl "$@" 2>"$W/err.log" || { cat "$W/err.log" >&2; exit 1; }
}

# Dates for "openssl ca" (GeneralizedTime, UTC).
d() {
    date -u -d "$1" +%Y%m%d%H%M%SZ
}
PAST=$(d '-1 day')
FAR=$(d '+3650 days')
CA_START=$(d '-3650 days')
CA_END=$(d '+7300 days')

cat >ext.cnf <<'EOF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[int]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[selfclient]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash

[serverauth]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[signer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# "openssl ca" is used for every issued certificate because it is the only
# 3.0 CLI that takes explicit start and end dates (expired / not yet valid).
ca_conf() {
    mkdir -p "db-$1"
    : >"db-$1/index.txt"
    cat >"db-$1/ca.cnf" <<EOF
[ca]
default_ca = this
[this]
database = $W/db-$1/index.txt
new_certs_dir = $W/db-$1
rand_serial = yes
unique_subject = no
default_md = sha256
policy = any
email_in_dn = no
copy_extensions = none
[any]
organizationName = optional
commonName = supplied
EOF
}

key_rsa() {
    ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"
}

key_ec() {
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
}

# issue NAME ISSUER EXT_SECTION SUBJECT [STARTDATE ENDDATE]
issue() {
    ossl req -new -key "$1.key" -subj "$4" -out "$1.csr"
    ossl ca -batch -notext -config "db-$2/ca.cnf" -cert "$2.pem" \
        -keyfile "$2.key" -in "$1.csr" -out "$1.pem" \
        -extfile ext.cnf -extensions "$3" \
        -startdate "${5:-$PAST}" -enddate "${6:-$FAR}"
}

# selfsign NAME EXT_SECTION SUBJECT: also through "openssl ca", so that
# the CAs are valid long before the certificates they issue (tests check
# an expired identity at a time when it was still valid).
selfsign() {
    ca_conf "$1"
    ossl req -new -key "$1.key" -subj "$3" -out "$1.csr"
    ossl ca -batch -notext -selfsign -config "db-$1/ca.cnf" \
        -keyfile "$1.key" -in "$1.csr" -out "$1.pem" \
        -extfile ext.cnf -extensions "$2" \
        -startdate "$CA_START" -enddate "$CA_END"
}

key_rsa root
selfsign root root "/O=libmdm test/CN=libmdm test root CA"

key_rsa int
issue int root int "/O=libmdm test/CN=libmdm test device CA" \
    "$CA_START" "$CA_END"
ca_conf int

key_ec other-root
selfsign other-root root "/O=elsewhere/CN=unrelated root CA"

key_rsa dev1
issue dev1 int client "/O=libmdm test/CN=device-1"
key_rsa dev2
issue dev2 int client "/O=libmdm test/CN=device-2"
key_ec devroot
issue devroot root client "/O=libmdm test/CN=device-root"
key_ec devec
issue devec int client "/O=libmdm test/CN=device-ec"
key_ec expired
issue expired int client "/O=libmdm test/CN=device-expired" \
    "$(d '-30 days')" "$(d '-1 day')"
key_ec notyet
issue notyet int client "/O=libmdm test/CN=device-notyet" \
    "$(d '+30 days')" "$(d '+60 days')"
key_ec serverauth
issue serverauth int serverauth "/O=libmdm test/CN=device-serverauth"
key_ec stranger
issue stranger other-root client "/O=elsewhere/CN=device-stranger"
key_ec selfsigned
selfsign selfsigned selfclient "/O=nobody/CN=device-selfsigned"
key_rsa server
issue server int server "/O=libmdm test/CN=localhost"

key_rsa scep-ca
selfsign scep-ca root "/O=libmdm test/CN=libmdm test SCEP CA"
key_rsa signer
issue signer int signer "/O=libmdm test/CN=profile signer"

cat root.pem int.pem >cafile.pem
cat server.pem int.pem >server-chain.pem
cat signer.pem int.pem >signer-chain.pem
cat cafile.pem scep-ca.pem >identity-ca.pem

for n in root int other-root dev1 dev2 devroot devec expired notyet \
    serverauth stranger selfsigned server scep-ca signer; do
    chmod 0644 "$n.key" "$n.pem"
    mv -f "$n.key" "$n.pem" "$OUT/"
done
chmod 0644 cafile.pem server-chain.pem signer-chain.pem identity-ca.pem
mv -f cafile.pem server-chain.pem signer-chain.pem identity-ca.pem "$OUT/"
touch "$OUT/.done"
