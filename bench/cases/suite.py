#!/usr/bin/env python3
"""The side-by-side benchmark suite (issue #5): runs every case against
Waverless and its comparisons in one go, then writes bench/RESULTS.md (its
own section) and bench/plots/*.png. bench/run installs and builds first and
then runs this; run it directly only on a prepared machine.

Scratch output (logs, raw samples, results.json) goes to bench/out/<stamp>/."""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CASES = ("hello", "kernel", "longchain", "word_count", "many_apps", "concurrency", "cross_node")

# What the run executes, relative to the build folder. The build folder may
# be shared with other work that rebuilds it at any time, so the run copies
# these first and uses only its copies: every case measures the same
# binaries.
BUILT = ("waverless", "bench/loadgen", "bench/native_server", "bench/wc_native",
         "bench/wc_functions", "bench/wc_driver", "bench/apps/kernel/app.wasm",
         "bench/apps/sleep/app.wasm", "bench/workerd/kernel.wasm", "apps/hello/app.wasm",
         "apps/word_count/app.wasm", "apps/longchain/app.wasm")


def snapshot_build(out):
    src = Path(os.environ.get("BUILD_DIR", HERE.parent.parent / "build")).resolve()
    dst = out / "build"
    for rel in BUILT:
        if not (src / rel).exists():
            why = "build first (bench/run does)"
            if rel in ("bench/wc_functions", "bench/wc_driver"):
                why = ("%s was configured without libhiredis-dev: install it "
                       "(scripts/install-deps.sh) and run bench/run without --no-build, "
                       "which reconfigures" % src)
            sys.exit("bench: %s is missing: %s" % (src / rel, why))
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)
    os.environ["BUILD_DIR"] = str(dst)
    return src


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    try:
        debian = open("/etc/debian_version").read().strip()
    except OSError:
        debian = "?"
    return {
        "cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(), "debian": debian,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "gcc": first_line(["gcc", "--version"]), "clang": first_line(["clang-14", "--version"]),
        "workerd": first_line([HERE.parent / ".deps/node_modules/@cloudflare/workerd-linux-64/bin/"
                               "workerd", "--version"]),
        "redis": first_line(["redis-server", "--version"]),
        "wrk": first_line(["wrk", "--version"]),
    }


def prune(out):
    """Drops the bulky state a run leaves behind (nodes' RocksDB and app
    copies, Redis append-only files, the binaries' copy); logs, samples and
    results stay."""
    for pattern in ("*/data", "*/apps", "redis_*/appendonlydir", "build"):
        for p in out.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (< 5 minutes)")
    ap.add_argument("--only", default=",".join(CASES),
                    help="comma-separated cases to run (default: all): " + ",".join(CASES))
    ap.add_argument("--keep", action="store_true",
                    help="keep the nodes' data folders and Redis files (hundreds of MB)")
    ap.add_argument("--command", default="bench/cases/suite.py",
                    help="the command line to record in RESULTS.md")
    args = ap.parse_args()
    only = [c for c in args.only.split(",") if c]
    for c in only:
        if c not in CASES:
            ap.error("unknown case %s" % c)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = HERE.parent / "out" / stamp
    out.mkdir(parents=True, exist_ok=True)
    built_from = snapshot_build(out)
    # Imported only now: lib reads BUILD_DIR (the snapshot) when loaded.
    import concurrency
    import cross_node
    import hello
    import many_apps
    import report
    import single_calls
    import word_count
    from lib import CpuMeter, Ctx, WaverlessNode, log

    ctx = Ctx(quick=args.quick, out=out)
    started = time.time()
    ctx.results["meta"] = {"machine": machine(), "command": args.command, "quick": args.quick,
                           "date": time.strftime("%Y-%m-%d %H:%M %Z"), "cases": only,
                           "out": str(ctx.out), "built_from": str(built_from)}
    ctx.results["errors"] = {}
    log("suite %s -> %s" % ("quick" if args.quick else "full", ctx.out))

    def attempt(name, fn, *a):
        if name not in only:
            return
        log("case %s" % name)
        t0 = time.time()
        meter = CpuMeter()
        try:
            fn(ctx, *a)
        except Exception as e:  # one broken case must not lose the others' numbers
            traceback.print_exc()
            ctx.results["errors"][name] = "%s: %s" % (type(e).__name__, e)
        cpu = meter.read()
        ctx.results.setdefault("case_seconds", {})[name] = round(time.time() - t0, 1)
        ctx.results.setdefault("case_other_cpu", {})[name] = cpu
        log("case %s: %.0f s; others used %.2f cores meanwhile" %
            (name, time.time() - t0, cpu["other_cores"]))

    # One node for the cases that share the demo apps; the others start
    # their own so that their memory and thread counts are their own.
    if {"hello", "kernel", "longchain", "word_count"} & set(only):
        apps = ["hello", "kernel", "longchain", "word_count"]
        if "word_count" in only:
            apps += word_count.node_apps(ctx)
        node = WaverlessNode(ctx, "main", apps, extra=["--max-body", str(256 << 20)])
        try:
            node.start()
            attempt("hello", hello.run, node)
            attempt("kernel", single_calls.kernel, node)
            attempt("longchain", single_calls.longchain, node)
            attempt("word_count", word_count.run, node)
        except Exception as e:
            traceback.print_exc()
            ctx.results["errors"]["main node"] = str(e)
        finally:
            node.stop()
    attempt("many_apps", lambda c: many_apps.run(c))
    attempt("concurrency", lambda c: concurrency.run(c))
    attempt("cross_node", cross_node.run)

    if not args.keep:
        prune(ctx.out)
    ctx.results["meta"]["seconds"] = round(time.time() - started, 1)
    ctx.results["meta"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    (ctx.out / "results.json").write_text(json.dumps(ctx.results, indent=1, default=str))
    log("raw results: %s" % (ctx.out / "results.json"))
    # The report reads what was saved (string keys, as JSON has them).
    report.write(json.loads(json.dumps(ctx.results, default=str)), ctx.out)
    log("done in %.0f s; see bench/RESULTS.md and bench/plots/" % (time.time() - started))
    return 1 if ctx.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
