#!/bin/sh
# Build the libFuzzer targets with clang and run each for a bounded time.
#   t/fuzz/run.sh OUTDIR [SECONDS_PER_TARGET]
# Corpora are copied to OUTDIR first: new inputs never land in the tree.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
secs=${2:-30}
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
flags="$flags -D_GNU_SOURCE -I$src/core"
ssl=$(pkg-config --cflags --libs openssl)
plist=$(pkg-config --cflags --libs libplist-2.0)
hiredis=$(pkg-config --cflags --libs hiredis)
jansson=$(pkg-config --cflags --libs jansson)

build() { # name, sources..., then libs after --
    name=$1
    shift
    srcs=""
    while [ "$1" != "--" ]; do
        srcs="$srcs $src/$1"
        shift
    done
    shift
    # shellcheck disable=SC2086
    clang $flags $srcs -o "$out/$name" "$@" -lpthread
}
build fuzz_msg core/mdm_msg.c t/fuzz/fuzz_msg.c -- $plist
build fuzz_signature core/mdm_identity_certs.c core/mdm_identity_tls.c \
    core/mdm_identity_sig.c core/mdm_identity_verify.c core/mdm_b64.c \
    core/mdm_der.c t/fuzz/fuzz_signature.c -- $ssl
# the SCEP core needs the plan builder, the script table and its sources
sh "$src/core/lua/gen.sh" "$src/core/lua" >"$out/mdm_lua.c"
# (only the layers below it: the transaction layer and its leaves; the
# SCEP files but the admin one, which no HTTP SCEP request reaches)
build fuzz_scep core/mdm_scep.c core/mdm_scep_ca.c \
    core/mdm_scep_issue.c core/mdm_scep_msg.c core/mdm_scep_oid.c \
    core/mdm_scep_pki.c core/mdm_scep_rep.c core/mdm_scep_req.c \
    core/mdm_identity_certs.c core/mdm_identity_tls.c core/mdm_identity_sig.c \
    core/mdm_identity_verify.c core/mdm_b64.c core/mdm_der.c core/mdm_tx.c \
    core/mdm_plan.c \
    core/mdm_util.c core/mdm_script.c core/mdm_query.c t/fuzz/fuzz_scep.c \
    -- "$out/mdm_lua.c" $ssl $plist $hiredis $jansson
# declarative management: status reports and declarations (JSON only)
build fuzz_ddm core/mdm_ddm_json.c t/fuzz/fuzz_ddm.c -- $jansson $ssl
# ACME: JWS, CBOR, the attestation statement, the finalize CSR
build fuzz_acme core/mdm_acme_jws.c core/mdm_cbor.c core/mdm_acme_attest.c \
    core/mdm_acme_issue.c t/fuzz/fuzz_acme.c -- $jansson $ssl
# Redis topology: addresses, redirects, slot maps, Sentinel/ROLE replies
build fuzz_redis_topo core/mdm_redis_topo.c t/fuzz/fuzz_redis_topo.c -- \
    $hiredis
MDM_SAMPLES=$src/t/samples
export MDM_SAMPLES

status=0
for t in msg signature scep ddm acme redis_topo; do
    rm -rf "$out/corpus-$t"
    mkdir -p "$out/corpus-$t"
    cp "$src/t/fuzz/corpus/$t/"* "$out/corpus-$t/"
    if "$out/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/" \
        "$out/corpus-$t" \
        >"$out/fuzz_$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
            "$out/fuzz_$t.log")
        echo "PASS: fuzz_$t ($runs executions in ${secs}s)"
    else
        echo "FAIL: fuzz_$t (see $out/fuzz_$t.log)"
        tail -40 "$out/fuzz_$t.log"
        status=1
    fi
done
exit $status
