#!/bin/sh
# Build the libFuzzer targets with clang and run each for a bounded time.
#   t/fuzz/run.sh OUTDIR [SECONDS_PER_TARGET] [--keep] [--jobs N] [TARGET...]
# Corpora are copied to OUTDIR first: by default new inputs never land in
# the tree (this is what CI runs, 30 s per target, one after the other).
#   --keep    after the runs, merge the new inputs back into
#             t/fuzz/corpus/TARGET/ with libFuzzer's -merge=1 (only inputs
#             that add coverage over the seeds already there are copied)
#             and print per target: executions, exec/s, the final cov: and
#             ft: figures, corpus files before/after
#   --jobs N  run up to N targets at the same time (default 1)
#   TARGET    msg, signature, ... (default: all of them)
# For long runs on a shared machine: nice -n 19 sh t/fuzz/run.sh ...
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
shift
secs=30
case ${1:-} in
[0-9]*)
    secs=$1
    shift
    ;;
esac
keep=0
jobs=1
only=""
while [ $# -gt 0 ]; do
    case $1 in
    --keep) keep=1 ;;
    --jobs | -j)
        jobs=$2
        shift
        ;;
    -*)
        echo "run.sh: unknown option $1" >&2
        exit 2
        ;;
    *) only="$only $1" ;;
    esac
    shift
done
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
    case " ${only:-${name#fuzz_}} " in
    *" ${name#fuzz_} "*) ;;
    *) return 0 ;;
    esac
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
    core/mdm_acme_issue.c core/mdm_scep_issue.c t/fuzz/fuzz_acme.c -- \
    $jansson $ssl
# Redis topology: addresses, redirects, slot maps, Sentinel/ROLE replies
build fuzz_redis_topo core/mdm_redis_topo.c t/fuzz/fuzz_redis_topo.c -- \
    $hiredis
MDM_SAMPLES=$src/t/samples
export MDM_SAMPLES

# --- targets added for issue 14 (keep this block apart from the list above)
# whole transactions through the public loop (fuzz_tx.h): all of libmdm
core_all=""
for f in "$src"/core/*.c; do
    case $f in
    */mdm_lua.c) ;;
    *) core_all="$core_all core/${f##*/}" ;;
    esac
done
# the admin API over HTTP: router, query strings, JSON/plist/DDM bodies
# shellcheck disable=SC2086
build fuzz_admin $core_all t/fuzz/fuzz_admin.c \
    -- "$out/mdm_lua.c" $ssl $plist $hiredis $jansson
# the device transaction behind the message parser (identity off)
# shellcheck disable=SC2086
build fuzz_device $core_all t/fuzz/fuzz_device.c \
    -- "$out/mdm_lua.c" $ssl $plist $hiredis $jansson
extra_targets="admin device"
# --- end of the issue 14 block

targets="msg signature scep ddm acme redis_topo"
targets="$targets ${extra_targets:-}"
if [ -n "$only" ]; then
    for t in $only; do
        case " $targets " in
        *" $t "*) ;;
        *)
            echo "run.sh: no target $t (have:$targets)" >&2
            exit 2
            ;;
        esac
    done
    targets=$only
fi

# one target: its log is $out/fuzz_$t.log, its result $out/fuzz_$t.rc
run_one() {
    t=$1
    rm -rf "$out/corpus-$t" "$out/fuzz_$t.rc"
    mkdir -p "$out/corpus-$t"
    cp "$src/t/fuzz/corpus/$t/"* "$out/corpus-$t/"
    rc=0
    t0=$(date +%s)
    "$out/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/$t-" \
        "$out/corpus-$t" >"$out/fuzz_$t.log" 2>&1 || rc=$?
    echo $(($(date +%s) - t0)) >"$out/fuzz_$t.secs"
    echo $rc >"$out/fuzz_$t.rc"
}

# the figures of one finished run (from -print_final_stats=1 and the last
# status line): "execs exec/s cov ft"
figures() {
    log=$out/fuzz_$1.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    echo "${runs:-?} ${rate:-?} ${cov:-?} ${ft:-?}"
}

status=0
# shellcheck disable=SC2086
set -- $targets
while [ $# -gt 0 ]; do
    batch=""
    n=0
    while [ $# -gt 0 ] && [ $n -lt "$jobs" ]; do
        batch="$batch $1"
        n=$((n + 1))
        shift
    done
    for t in $batch; do
        run_one "$t" &
    done
    wait
    for t in $batch; do
        if [ "$(cat "$out/fuzz_$t.rc")" = 0 ]; then
            runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
                "$out/fuzz_$t.log")
            echo "PASS: fuzz_$t ($runs executions in ${secs}s)"
        else
            echo "FAIL: fuzz_$t (see $out/fuzz_$t.log)"
            tail -40 "$out/fuzz_$t.log"
            status=1
        fi
    done
done

if [ $keep = 1 ]; then
    # seconds: the wall clock the run took (less than asked after a crash)
    echo "target seconds execs exec/s cov ft corpus-before corpus-after"
    for t in $targets; do
        dir=$src/t/fuzz/corpus/$t
        before=$(ls "$dir" | wc -l)
        # inputs that add features over the seeds in the tree, smallest first
        "$out/fuzz_$t" -merge=1 -rss_limit_mb=2048 -max_len=65536 \
            "$dir" "$out/corpus-$t" >"$out/merge_$t.log" 2>&1 || {
            echo "FAIL: merge fuzz_$t (see $out/merge_$t.log)"
            status=1
        }
        after=$(ls "$dir" | wc -l)
        echo "$t $(cat "$out/fuzz_$t.secs") $(figures "$t") $before $after"
    done
fi
exit $status
