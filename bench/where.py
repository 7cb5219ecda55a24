#!/usr/bin/python3
"""CPU microseconds per request, by process and library, from a
system-wide `perf record -a -F FREQ` taken while wrk ran at a known rate.

    where.py PERF_DATA FREQ REQS_PER_SEC SECONDS [LABEL]

Each cpu-clock sample stands for 1/FREQ s of one CPU, so a process's CPU
time is its samples / FREQ; divided by the requests answered in the
window (REQS_PER_SEC x SECONDS) it is that process's cost per request,
whatever else the machine was running (other processes only change the
rate, not the per-request figures).
"""
import collections
import subprocess
import sys

COMMS = ("nginx", "apache2", "redis-server", "wrk")


def group(dso):
    for key, name in (("libcrypto", "libcrypto"), ("libssl", "libssl"),
                      ("libc.so", "libc"), ("kernel", "kernel"),
                      ("mdm", "our module"), ("hiredis", "hiredis"),
                      ("plist", "libplist"), ("libapr", "apr"),
                      ("mod_", "apache modules"), ("lua", "lua")):
        if key in dso:
            return name
    if dso in ("nginx", "apache2", "redis-server", "wrk"):
        return "own binary"
    return "other"


def main():
    data, freq, rps, secs = sys.argv[1:5]
    label = sys.argv[5] if len(sys.argv) > 5 else data
    reqs = float(rps) * float(secs)
    out = subprocess.run(
        ["perf", "report", "-i", data, "--sort", "comm,dso", "-n",
         "--stdio", "-g", "none"], capture_output=True, text=True).stdout
    cost = collections.defaultdict(float)
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4 or not f[0].endswith("%") or f[2] not in COMMS:
            continue
        us = int(f[1]) / float(freq) / reqs * 1e6
        cost[(f[2], group(f[3]))] += us
    total = collections.defaultdict(float)
    for (comm, _), us in cost.items():
        total[comm] += us
    print("%s: %.0f req/s, CPU us per request (perf -a, %s s)" %
          (label, float(rps), secs))
    for comm in sorted(total, key=lambda c: -total[c]):
        parts = sorted(((us, g) for (c, g), us in cost.items() if c == comm),
                       reverse=True)
        detail = ", ".join("%s %.1f" % (g, us) for us, g in parts if us >= 0.1)
        print("  %-13s %6.1f  (%s)" % (comm, total[comm], detail))
    print("  %-13s %6.1f" % ("all four", sum(total.values())))


main()
