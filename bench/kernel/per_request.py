#!/usr/bin/env python3
"""What one kernel request costs each server beyond the kernel's own
instructions: CPU time, minor page faults and context switches of the
serving process per request, read from /proc around each request (no
perf counters needed: the VM has no PMU). The same request as the suite's
kernel case (bench/cases/single_calls.py): body "1000000 20" over HTTP,
one at a time, the servers alternating.

  bench/kernel/per_request.py [--requests N] [--args "n rounds"]

Uses what bench/run built (BUILD_DIR, default build/). CPU time and faults
are counts, not timings: they hold on a busy machine; the wall times it
also prints do not."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cases"))
os.environ.setdefault("BUILD_DIR", str(HERE.parent.parent / "build"))  # read by lib at import

from lib import (Ctx, WaverlessNode, median, native_server, proc_counters,  # noqa: E402
                 proc_cpu_ns, script, workerd_server)


def faults(pid):
    """Minor and major page faults of the whole process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[9])  # minflt, majflt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--args", default="1000000 20")
    ap.add_argument("--no-workerd", action="store_true")
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="kernel-per-request-"))
    ctx = Ctx(quick=True, out=out)
    body = out / "body.txt"
    body.write_text(a.args)
    servers = {"waverless": WaverlessNode(ctx, "node", ["kernel"])}
    if not a.no_workerd:
        servers["workerd"] = workerd_server(ctx)
    servers["native"] = native_server(ctx)
    rows = {name: [] for name in servers}
    try:
        for s in servers.values():
            s.start()
        for i in range(a.requests + 1):
            for name, s in servers.items():
                c0, f0, t0 = proc_counters(s.pid), faults(s.pid), proc_cpu_ns(s.pid)
                tags, _ = script(s.target(), ["k POST /kernel @%s" % body],
                                 out / ("%s_%d.script" % (name, i)))
                c1, f1, t1 = proc_counters(s.pid), faults(s.pid), proc_cpu_ns(s.pid)
                if tags["k"]["errors"]:
                    sys.exit("kernel on %s failed; see %s" % (name, out))
                rows[name].append({"wall_ms": tags["k"]["p50"] / 1000,
                                   "cpu_ms": (t1 - t0) / 1e6,
                                   "minflt": f1[0] - f0[0], "majflt": f1[1] - f0[1],
                                   "switches": c1["switches"] - c0["switches"]})
    finally:
        for s in servers.values():
            s.stop()
    print("per request, first (cold) / median of the next %d:" % a.requests)
    print("%-10s %18s %18s %16s %14s" % ("server", "wall ms", "cpu ms", "minor faults",
                                          "ctx switches"))
    for name, r in rows.items():
        def col(k, fmt):
            return ("%s / %s" % (fmt, fmt)) % (r[0][k], median([x[k] for x in r[1:]]))
        print("%-10s %18s %18s %16s %14s" % (name, col("wall_ms", "%.1f"), col("cpu_ms", "%.1f"),
                                              col("minflt", "%d"), col("switches", "%d")))
    print("scratch: %s" % out)


if __name__ == "__main__":
    main()
