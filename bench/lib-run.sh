# Shared by bench/nginx.sh and bench/apache.sh (sourced): one wrk run per
# scenario and its figures. The caller sets src, work, secs, conns,
# rport, redis_pid, wrk_threads, pidfile (the server's parent) and rss()
# (the RSS column).
# Redis CPU seconds (user + sys) so far: its share per request is printed
redis_cpu() {
    redis-cli -p "$rport" info cpu |
        awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'
}
# MDM_BENCH_WHERE=DIR: each run is also recorded system-wide with perf
# (cpu-clock, 1999 Hz, the middle SECONDS-2 s, only the server's processes,
# redis-server and wrk) and bench/where.py prints their CPU microseconds per
# request by library
server_pids() { # the parent and its children, comma-separated
    m=$(cat "$pidfile")
    echo "$m $(pgrep -P "$m")" | tr -s ' \n' ',' | sed 's/,$//'
}
where_start() { # pids of the server's processes and of wrk
    [ -n "${MDM_BENCH_WHERE:-}" ] || return 0
    mkdir -p "$MDM_BENCH_WHERE"
    where_n=$((${where_n:-0} + 1))
    (sleep 1; exec perf record -F 1999 -p "$1,$redis_pid" \
        -o "$MDM_BENCH_WHERE/$where_n.data" -- sleep $((secs - 2))) \
        >/dev/null 2>&1 &
    where_pid=$!
}
where_end() { # label rps
    [ -n "${MDM_BENCH_WHERE:-}" ] || return 0
    wait "$where_pid" || true
    /usr/bin/python3 "$src/bench/where.py" "$MDM_BENCH_WHERE/$where_n.data" \
        1999 "$2" $((secs - 2)) "$1"
}
run() { # label url reqs ctype
    c0=$(redis_cpu)
    wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" --latency -s "$src/bench/wrk-mdm.lua" \
        "$2" -- "$work" "$3" "$(echo "$2" | sed 's|https://[^/]*||')" "$4" >"$work/wrk.out" &
    wrk_pid=$!
    where_start "$(server_pids),$wrk_pid"
    wait "$wrk_pid"
    out=$(cat "$work/wrk.out")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rus=$(awk -v a="$c0" -v b="$(redis_cpu)" -v n="${n:-0}" \
        'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / n; else print "-" }')
    printf '%-40s %10s %10s %12s %10s %s\n' "$1" "$rps" "$p99" "$(rss)" \
        "$rus" "${non2xx:+NON-2XX: $non2xx}"
    where_end "$1" "$rps"
}
