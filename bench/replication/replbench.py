#!/usr/bin/env python3
"""The replicated KV measured side by side in one run (issue 10): run by bench/replication/run.sh,
which documents the cases. Prints the Markdown section for bench/RESULTS.md on stdout (and writes
it, with results.json, into the run's folder)."""

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cases"))
import lib  # noqa: E402
import procs  # noqa: E402

SERVERS = lib.SERVER_CPUS  # every node and etcd member: cpu0
CLIENTS = lib.CLIENT_CPUS  # wrk, loadgen, the failover poller: cpu1
VALUE = "".join(random.Random(7).choice("abcdefghijklmnopqrstuvwxyz0123456789")
                for _ in range(256))
NKEYS = 10000


def log(msg):
    print("[replbench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def med(v):
    return statistics.median(v) if v else float("nan")


# --- apps ------------------------------------------------------------------------


def stage_apps(dest):
    """kvput, longchain and word_count as built, each also as a variant whose keys take the
    other durability (`<app>_local` / `word_count_repl`)."""
    apps = {
        "kvput": (HERE.parent / "apps/kvput", lib.BIN / "apps/kvput/app.wasm"),
        "longchain": lib.APP_SOURCES["longchain"],
        "word_count": lib.APP_SOURCES["word_count"],
    }
    for name, (src, wasm) in apps.items():
        d = dest / name
        d.mkdir(parents=True)
        shutil.copy(src / "app.yaml", d / "app.yaml")
        shutil.copy(wasm, d / "app.wasm")
    shutil.copytree(dest / "kvput", dest / "kvput_local")
    with open(dest / "kvput_local/app.yaml", "a") as f:
        f.write("durability:\n  bk_{}: local\n")
    shutil.copytree(dest / "longchain", dest / "longchain_local")
    with open(dest / "longchain_local/app.yaml", "a") as f:
        f.write("durability:\n  chain_{}_{}: local\n  chainres_{}: local\n")
    shutil.copytree(dest / "word_count", dest / "word_count_repl")
    y = (dest / "word_count_repl/app.yaml").read_text()
    cut = y.index("durability:")
    (dest / "word_count_repl/app.yaml").write_text(y[:cut])
    if "durability" in (dest / "word_count_repl/app.yaml").read_text():
        raise RuntimeError("word_count_repl still names a durability")


def lua_bodies(path, kind, method_path, host):
    """A wrk script sending POST method_path with one of NKEYS bodies drawn at random. Host is
    explicit: wrk.format at load time has none, and Go's server (etcd) answers 400 without it."""
    lines = ["math.randomseed(42)", "local bodies = {"]
    for i in range(NKEYS):
        if kind == "etcd":
            b = json.dumps({"key": base64.b64encode(("bk_k%d" % i).encode()).decode(),
                            "value": base64.b64encode(VALUE.encode()).decode()})
        else:
            b = "k%d\\n%s" % (i, VALUE)
        lines.append('  "%s",' % b.replace('"', '\\"'))
    lines += ["}",
              "local reqs = {}",
              "for i, b in ipairs(bodies) do",
              "  reqs[i] = wrk.format('POST', '%s', {['Host'] = '%s', "
              "['Content-Type'] = 'application/json'}, b)" % (method_path, host),
              "end",
              "request = function() return reqs[math.random(#reqs)] end"]
    Path(path).write_text("\n".join(lines) + "\n")


def wrk(target, script, seconds, conns):
    argv = ["taskset", "-c", CLIENTS, "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
            "--latency", "-s", str(script), "http://" + target]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    import re
    res = {"conns": conns}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
        res["p%s_us" % pct] = (float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
                              if m else None)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", out)
    res["socket_errors"] = m.group(0) if m else ""
    return res


def loadgen(target, path, body_file, rate, seconds):
    return lib.run_json([lib.BIN / "loadgen", "--target", target, "--path", path, "--method",
                         "POST", "--body", "@%s" % body_file, "--rate", rate, "--duration",
                         seconds + 1, "--warmup", 1, "--conns", 64], cpus=CLIENTS)


# --- 1. kv_set: replicated vs local vs etcd ----------------------------------------


def case_kvset(ctx, wl, etcd, out):
    entry = wl.workers[0]
    eleader = etcd.leader()
    targets = {
        "waverless, replicated (3)": (wl.http(entry), "/kvput", "wl"),
        "waverless, durability: local": (wl.http(entry), "/kvput_local", "wl"),
        "etcd (3 members), leader": (etcd.endpoint(eleader), "/v3/kv/put", "etcd"),
    }
    scripts = {}
    for name, (target, path, kind) in targets.items():
        scripts[name] = out / ("wrk-%s.lua" % path.strip("/").replace("/", "_"))
        lua_bodies(scripts[name], kind, path, target)
    (out / "wl_body.txt").write_text("-\n" + VALUE)
    (out / "etcd_body.json").write_text(json.dumps(
        {"key": base64.b64encode(b"bk_open").decode(),
         "value": base64.b64encode(VALUE.encode()).decode()}))
    bodies = {"wl": out / "wl_body.txt", "etcd": out / "etcd_body.json"}

    closed = {n: [] for n in targets}
    names = list(targets)
    # Warm-up, unrecorded, the same for every system: a cluster just started has not settled
    # (Waverless's leaders move to the node the writes enter at: docs/replication.md).
    warm = {}
    for n in names:
        warm[n] = wrk(targets[n][0], scripts[n], ctx.warmup, 64)["rps"]
        log("warm-up %s: %.0f req/s (%d s, not counted)" % (n, warm[n], ctx.warmup))
    for rep in range(ctx.reps):
        order = names[rep % 3:] + names[:rep % 3]  # rotate: drift hits every system alike
        for n in order:
            target, _, _ = targets[n]
            meter = lib.CpuMeter()
            r = wrk(target, scripts[n], ctx.seconds, 64)
            r.update(meter.read())
            closed[n].append(r)
            log("closed %s: %.0f req/s p50 %s p99 %s non2xx %d %s" % (
                n, r["rps"], r["p50_us"], r["p99_us"], r["non2xx"], r["socket_errors"]))

    opened = {}
    for rate in ctx.rates:
        for n in names:
            target, path, kind = targets[n]
            meter = lib.CpuMeter()
            try:
                r = loadgen(target, path, bodies[kind], rate, ctx.seconds)
            except RuntimeError as e:  # e.g. "cannot reconnect": a row that says so, not no run
                log("open %d %s: %s" % (rate, n, e))
                r = {"achieved_rps": 0, "errors": 0, "unfinished": 0, "failed": str(e)[-200:],
                     "latency_us": {"p50": None, "p99": None, "p999": None}}
            r.update(meter.read())
            opened[(rate, n)] = r
            log("open %d %s: achieved %.0f p50 %s p99 %s errors %d unfinished %d" % (
                rate, n, r["achieved_rps"], r["latency_us"]["p50"], r["latency_us"]["p99"],
                r["errors"], r["unfinished"]))
    return {"closed": closed, "open": {"%d|%s" % k: v for k, v in opened.items()}, "warm": warm,
            "etcd_leader": eleader, "entry_node": entry}


def case_etcd_perf(ctx, etcd):
    """etcd's own put load over gRPC (`etcdctl check perf`: its clients, no gateway) as a
    yardstick for how much the JSON gateway costs etcd. Debian ships no `benchmark` tool."""
    p = subprocess.run(["taskset", "-c", CLIENTS, "etcdctl", "--endpoints", etcd.endpoints(),
                        "check", "perf", "--load", ctx.perf_load],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, ETCDCTL_API="3"))
    lines = [l.strip() for l in (p.stdout + p.stderr).splitlines()
             if l.strip().startswith(("PASS", "FAIL"))]
    log("etcdctl check perf --load %s: %s" % (ctx.perf_load, " | ".join(lines)))
    return {"load": ctx.perf_load, "lines": lines, "rc": p.returncode}


# --- 2. longchain, 3. word_count ------------------------------------------------------


def time_post(url, body, timeout=300):
    t0 = time.perf_counter()
    st, text = lib.http("POST", url, body, timeout=timeout)
    return time.perf_counter() - t0, st, text


def rot(word, n):
    return "".join(chr((ord(c) - 97 + n) % 26 + 97) if "a" <= c <= "z" else c for c in word)


def case_longchain(ctx, wl):
    entry = wl.workers[0]
    res = {}
    for app in ("longchain", "longchain_local"):
        wl.wait_app(entry, "/" + app, b"warm")
    times = {"longchain": [], "longchain_local": []}
    for rep in range(ctx.chain_reps):
        for app in (("longchain", "longchain_local") if rep % 2 == 0
                    else ("longchain_local", "longchain")):
            dt, st, text = time_post(wl.url(entry, "/" + app), b"hello")
            if st != 200 or json.loads(text) != {"hops": 100, "final": rot("hello", 100)}:
                raise RuntimeError("%s answered %d %r" % (app, st, text[:200]))
            times[app].append(dt)
    for app, v in times.items():
        res[app] = {"median_s": med(v), "min_s": min(v), "max_s": max(v), "n": len(v)}
        log("%s: median %.1f ms per request" % (app, med(v) * 1e3))
    return res


def make_text(path, mb):
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
             "kappa"]
    target, size = mb << 20, 0
    counts = {}
    with open(path, "w") as f:
        while size < target:
            line_words = [rng.choice(words) for _ in range(12)]
            for w in line_words:
                counts[w] = counts.get(w, 0) + 1
            line = " ".join(line_words) + "\n"
            f.write(line)
            size += len(line)
    return counts


def case_word_count(ctx, wl, out):
    entry = wl.workers[0]
    text = out / "text.txt"
    want = make_text(text, ctx.mb)
    body = text.read_bytes()
    res = {}
    times = {"word_count": [], "word_count_repl": []}
    for app in times:
        wl.wait_app(entry, "/" + app, b"warm up")
    for rep in range(ctx.wc_reps):
        for app in (("word_count", "word_count_repl") if rep % 2 == 0
                    else ("word_count_repl", "word_count")):
            meter = lib.CpuMeter()
            dt, st, answer = time_post(wl.url(entry, "/" + app), body, timeout=600)
            if st != 200 or json.loads(answer) != want:
                raise RuntimeError("%s answered %d %r" % (app, st, answer[:300]))
            times[app].append(dt)
            log("%s %d MB: %.2f s (others %.2f cores)" % (app, ctx.mb, dt,
                                                         meter.read()["other_cores"]))
    for app, v in times.items():
        res[app] = {"median_s": med(v), "all_s": v}
    return res


# --- 4. failover -----------------------------------------------------------------------


def poll_until_ok(put, t0, interval=0.005, limit=30.0, cap=400):
    """Seconds from t0 until a put() first succeeds. A new put() starts every `interval` without
    waiting for the ones in flight (at most `cap` at once): a request caught by the kill may hang
    until its server-side timeout (etcd: 7 s), which is not the time the system took to recover."""
    done = threading.Event()
    first = []
    lock = threading.Lock()
    running = [0]

    def one():
        try:
            if put():
                with lock:
                    if not first:
                        first.append(time.perf_counter() - t0)
                done.set()
        finally:
            with lock:
                running[0] -= 1

    while not done.is_set() and time.perf_counter() - t0 < limit:
        with lock:
            busy = running[0] >= cap
            if not busy:
                running[0] += 1
        if not busy:
            threading.Thread(target=one, daemon=True).start()
        done.wait(interval)
    done.wait(max(0.0, limit - (time.perf_counter() - t0)))
    return first[0] if first else None


def case_failover_wl(ctx, wl, probe):
    entry = wl.workers[0]
    times = []
    for trial in range(ctx.trials):
        # A group led by a worker other than the entry node, and a key in it.
        deadline = time.time() + 30
        victim = group = None
        while time.time() < deadline and victim is None:
            leaders = wl.leaders()
            cands = sorted(g for g, n in leaders.items() if n != entry)
            if len(leaders) == wl.shards and cands:
                group = random.Random(trial).choice(cands)
                victim = leaders[group]
            else:
                time.sleep(0.2)
        if victim is None:
            raise RuntimeError("no leader found for every group")
        key = probe[group][len("bk_"):]
        url = wl.url(entry, "/kvput")
        body = ("%s\n%s" % (key, VALUE)).encode()

        def put():
            return lib.http("POST", url, body, timeout=10)[0] == 200

        if not put():
            raise RuntimeError("write to %s failed before the kill" % key)
        t0 = time.perf_counter()
        procs.kill9(wl.procs[victim])
        dt = poll_until_ok(put, t0)
        new_leader = wl.leaders().get(group)
        log("waverless trial %d: killed node %d (leader of group %d), first write after %s s, "
            "new leader %s" % (trial, victim, group, dt, new_leader))
        times.append({"victim": victim, "group": group, "seconds": dt, "new_leader": new_leader})
        wl.start_node(victim)
        wl.wait_healthy(victim, time.time() + 120)
        time.sleep(ctx.settle)
    return times


def case_failover_etcd(ctx, etcd):
    times = []
    for trial in range(ctx.trials):
        leader = None
        deadline = time.time() + 30
        while leader is None and time.time() < deadline:
            leader = etcd.leader()
        if leader is None:
            raise RuntimeError("etcd has no leader")
        other = next(n for n in etcd.names if n != leader)

        def put():
            return etcd.put(other, "failover", VALUE, timeout=10)

        if not put():
            raise RuntimeError("etcd put failed before the kill")
        t0 = time.perf_counter()
        procs.kill9(etcd.procs[leader])
        dt = poll_until_ok(put, t0)
        log("etcd trial %d: killed %s, first put after %s s" % (trial, leader, dt))
        times.append({"victim": leader, "seconds": dt})
        etcd.start_member(leader)
        deadline = time.time() + 60
        while time.time() < deadline and not etcd.put(leader, "back", "x"):
            time.sleep(0.1)
        time.sleep(ctx.settle)
    return times


# --- 5. idle groups -------------------------------------------------------------------------


def idle_usage(root, apps, shards, seconds, probe_bin):
    wl = procs.WaverlessCluster(root, apps, workers=5, shards=shards, replicas=3, cpus=None)
    try:
        t0 = time.time()
        wl.start()
        # Every group elected (the gauge counts leaders) before the idle window opens.
        deadline = time.time() + 300
        while time.time() < deadline and len(wl.leaders()) < shards:
            time.sleep(0.5)
        up_s = time.time() - t0
        led = len(wl.leaders())
        time.sleep(3)
        pids = wl.pids()
        cpu0 = {i: procs.cpu_s(p) for i, p in pids.items()}
        w0 = time.time()
        time.sleep(seconds)
        wall = time.time() - w0
        res = {}
        for i, p in pids.items():
            res[i] = {"rss_kb": procs.rss_kb(p),
                      "cpu_pct": 100.0 * (procs.cpu_s(p) - cpu0[i]) / wall}
        hosted = {}
        out = subprocess.run([probe_bin, "--shards", str(shards), "--replicas", "3", "--workers",
                              ",".join(str(w) for w in wl.workers), "--app", "x", "--prefix",
                              "k"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("hosted "):
                _, node, n = line.split()
                hosted[int(node)] = int(n)
        return {"nodes": res, "hosted": hosted, "leaders": led, "startup_s": up_s}
    finally:
        wl.stop()


def case_idle(ctx, out, apps):
    probe_bin = str(lib.BIN / "shard_probe")
    small = idle_usage(out / "idle-small", apps, ctx.small_shards, ctx.idle_s, probe_bin)
    log("idle S=%d: %s" % (ctx.small_shards, small))
    big = idle_usage(out / "idle-big", apps, ctx.big_shards, ctx.idle_s, probe_bin)
    log("idle S=%d: %s" % (ctx.big_shards, big))
    per = {}
    for node, b in big["nodes"].items():
        if node not in big["hosted"]:
            continue
        s = small["nodes"][node]
        dg = big["hosted"][node] - small["hosted"].get(node, 0)
        per[node] = {"groups": dg,
                     "rss_kib_per_group": (b["rss_kb"] - s["rss_kb"]) / dg,
                     "cpu_pct_per_group": (b["cpu_pct"] - s["cpu_pct"]) / dg}
    return {"small": small, "big": big, "per_group": per}


# --- report ------------------------------------------------------------------------------------


def fmt_us(us):
    if us is None:
        return "-"
    return "%.0f µs" % us if us < 1000 else "%.2f ms" % (us / 1000)


def report(ctx, R, machine):
    L = []
    L.append("Command: `%s` (%d s). Raw data: `%s/results.json` (not committed)." % (
        ctx.command, R["elapsed_s"], ctx.out_rel))
    L.append("")
    L.append("- Machine: %s" % machine)
    L.append("- Pinning: every Waverless node and every etcd member on **cpu0** (taskset), wrk, "
             "loadgen and the failover poller on **cpu1**; the idle-group case runs unpinned. "
             "Both clusters run at the same time, idle while the other is measured; systems "
             "alternate point by point.")
    L.append("- Waverless: master (node 1) + %d workers, `shards: %d`, `replicas: 3`; requests "
             "enter at worker %d. etcd %s: 3 members, defaults (fsync on, heartbeat 100 ms, "
             "election 1 s: the placement groups' raft uses the same), requests to the leader." % (
                 ctx.workers, ctx.shards, R["entry_node"], ctx.etcd_version))
    L.append("")
    if "kvset" in R:
        k = R["kvset"]
        L.append("### kv_set: replicated vs `durability: local` vs etcd")
        L.append("")
        L.append("Both over HTTP/1.1 keep-alive: Waverless `POST /kvput` runs `bench/apps/kvput` "
                 "(one `wl_kv_set` of a %d-byte value, answered once acknowledged), etcd "
                 "`POST /v3/kv/put` on its grpc-gateway (JSON, key and value base64). Closed loop: "
                 "wrk -t1 -c64, %d s, keys drawn from %d (`bk_k<i>`, the same set on both), %d "
                 "rounds, after %d s of the same load on each system, not counted (%s). Open "
                 "loop: loadgen, Poisson, 64 connections, %d s after 1 s warm-up; "
                 "Waverless keys spread over 100,000 by the invocation id, etcd one key (one "
                 "raft group whatever the key)." % (
                     len(VALUE), ctx.seconds, NKEYS, ctx.reps, ctx.warmup,
                     ", ".join("%s %.0f req/s" % (n, r) for n, r in k.get("warm", {}).items()),
                     ctx.seconds))
        L.append("")
        L.append("| closed loop, 64 conns | req/s (median) | all rounds | p50 | p99 | "
                 "non-2xx | others' CPU |")
        L.append("|---|---|---|---|---|---|---|")
        for n, rs in k["closed"].items():
            L.append("| %s | %.0f | %s | %s | %s | %d | %.2f cores |" % (
                n, med([r["rps"] for r in rs]), ", ".join("%.0f" % r["rps"] for r in rs),
                fmt_us(med([r["p50_us"] or 0 for r in rs])),
                fmt_us(med([r["p99_us"] or 0 for r in rs])),
                sum(r["non2xx"] for r in rs), med([r["other_cores"] for r in rs])))
        L.append("")
        L.append("| offered req/s | system | achieved | p50 | p99 | p99.9 | errors / unanswered |"
                 " others' CPU |")
        L.append("|---|---|---|---|---|---|---|---|")
        for key, r in k["open"].items():
            rate, n = key.split("|", 1)
            if "failed" in r:
                L.append("| %s | %s | loadgen failed: %s | | | | | %.2f cores |" % (
                    rate, n, r["failed"].strip().splitlines()[-1], r["other_cores"]))
                continue
            lat = r["latency_us"]
            L.append("| %s | %s | %.0f | %s | %s | %s | %d / %d | %.2f cores |" % (
                rate, n, r["achieved_rps"], fmt_us(lat["p50"]), fmt_us(lat["p99"]),
                fmt_us(lat["p999"]), r["errors"], r["unfinished"], r["other_cores"]))
        L.append("")
        names = list(k["closed"])
        wlr = med([r["rps"] for r in k["closed"][names[0]]])
        etr = med([r["rps"] for r in k["closed"][names[2]]])
        wlp = med([r["p99_us"] or 0 for r in k["closed"][names[0]]])
        etp = med([r["p99_us"] or 0 for r in k["closed"][names[2]]])
        met = etr > 0 and wlr >= 2 * etr and wlp <= etp
        L.append("Target (issue 10): replicated put throughput ≥ 2× etcd's at ≤ etcd's p99. "
                 "This run (closed loop, medians): %.0f / %.0f req/s = **%.2f×**, p99 %s vs %s: "
                 "**%s**." % (wlr, etr, wlr / etr if etr else 0, fmt_us(wlp), fmt_us(etp),
                              "met" if met else "missed"))
        L.append("")
    if "etcdperf" in R:
        e = R["etcdperf"]
        L.append("etcd through its own gRPC clients instead of the gateway, same cluster, right "
                 "after: `etcdctl check perf --load %s` (60 s of puts at a fixed rate from many "
                 "gRPC clients; exit %d): %s." % (e["load"], e["rc"],
                                                  "; ".join(e["lines"]) or "no verdict printed"))
        L.append("")
    if "longchain" in R:
        c = R["longchain"]
        a, b = c["longchain"]["median_s"], c["longchain_local"]["median_s"]
        L.append("### longchain per hop")
        L.append("")
        L.append("`POST /longchain` (100 hops, each a `kv_set` that triggers the next step), "
                 "median of %d, alternating with `longchain_local` (the same app with "
                 "`chain_{}_{}` and `chainres_{}` `durability: local`)." % c["longchain"]["n"])
        L.append("")
        L.append("| keys | per request | per hop | range per request |")
        L.append("|---|---|---|---|")
        for app, label in (("longchain", "replicated (3)"), ("longchain_local", "local")):
            v = c[app]
            L.append("| %s | %.1f ms | %.0f µs | %.1f–%.1f ms |" % (
                label, v["median_s"] * 1e3, v["median_s"] * 1e4, v["min_s"] * 1e3,
                v["max_s"] * 1e3))
        L.append("")
        L.append("Replicated / local per hop: **%.2f×**." % (a / b))
        L.append("")
    if "word_count" in R:
        w = R["word_count"]
        a, b = w["word_count_repl"]["median_s"], w["word_count"]["median_s"]
        L.append("### word_count %d MB" % ctx.mb)
        L.append("")
        L.append("`POST /word_count` with the text as the body (answers checked against a count "
                 "made by the script), %d runs each, alternating; `word_count` keeps its ~1 MiB "
                 "slices `local` (its app.yaml), `word_count_repl` is the same app without that "
                 "line (slices replicated on 3). Nodes on cpu0 as above." % ctx.wc_reps)
        L.append("")
        L.append("| slices | median | all runs |")
        L.append("|---|---|---|")
        L.append("| local | %.2f s | %s |" % (b, ", ".join("%.2f" % x for x in
                                                       w["word_count"]["all_s"])))
        L.append("| replicated (3) | %.2f s | %s |" % (a, ", ".join("%.2f" % x for x in
                                                                w["word_count_repl"]["all_s"])))
        L.append("")
        L.append("Replicated / local: **%.2f×**." % (a / b))
        L.append("")
    if "failover_wl" in R:
        fw = [t["seconds"] for t in R["failover_wl"]]
        fe = [t["seconds"] for t in R["failover_etcd"]]
        L.append("### Failover: kill -9 of a leader → first successful write")
        L.append("")
        L.append("Waverless: the leader of a placement group (read from the nodes' "
                 "`wl_shard_leader` gauge; never the entry node) is killed with SIGKILL, then a "
                 "`POST /kvput` of a key in that group (picked with `shard_probe`, the product's "
                 "ShardMap) is started toward the entry node every 5 ms (each on its own connection, "
                 "without waiting for those in flight) until one answers 200; the time is from "
                 "the kill to that answer. The platform itself retries a write whose leader is "
                 "gone (20 ms doubling to 250 ms, within 5 s). etcd: the leader member is killed "
                 "and `POST /v3/kv/put` requests start toward a surviving member every 5 ms the "
                 "same way (one caught by the kill waits for etcd's 7 s request timeout: that "
                 "is why requests are not sent one after the other). The killed node or member is restarted "
                 "and given %d s between trials." % ctx.settle)
        L.append("")
        L.append("| system | trials | median | max | all |")
        L.append("|---|---|---|---|---|")
        for n, v in (("waverless", fw), ("etcd", fe)):
            ok = [x for x in v if x is not None]
            L.append("| %s | %d | %s | %s | %s |" % (
                n, len(v), "%.2f s" % med(ok) if ok else "-", "%.2f s" % max(ok) if ok else "-",
                ", ".join("%.2f" % x if x is not None else "none in 30 s" for x in v)))
        L.append("")
    if "idle" in R:
        i = R["idle"]
        L.append("### Idle placement groups: memory and CPU per hosted group")
        L.append("")
        L.append("Master + 5 workers, `replicas: 3`, unpinned, the bench apps deployed and no request sent: each "
                 "node's RSS and CPU over %d s of idleness once every group has a leader, with "
                 "`shards: %d` minus the same with `shards: %d`, divided by the difference in "
                 "groups the worker hosts (from `shard_probe`)." % (
                     ctx.idle_s, ctx.big_shards, ctx.small_shards))
        L.append("")
        L.append("| worker | groups hosted (S=%d / S=%d) | RSS | CPU | RSS per group | CPU per "
                 "group |" % (ctx.big_shards, ctx.small_shards))
        L.append("|---|---|---|---|---|---|")
        for node, p in sorted(i["per_group"].items(), key=lambda kv: int(kv[0])):
            b, s = i["big"]["nodes"][node], i["small"]["nodes"][node]
            L.append("| %s | %d / %d | %.1f → %.1f MiB | %.2f%% → %.2f%% | %.0f KiB | %.4f%% |" % (
                node, i["big"]["hosted"][node], i["small"]["hosted"].get(node, 0),
                s["rss_kb"] / 1024, b["rss_kb"] / 1024, s["cpu_pct"], b["cpu_pct"],
                p["rss_kib_per_group"], p["cpu_pct_per_group"]))
        m = i["big"]["nodes"].get(1) or i["big"]["nodes"].get("1")
        if m:
            L.append("")
            L.append("The master (no groups) at S=%d: %.1f MiB, %.2f%% CPU. Start-up until every "
                     "group had a leader: %.1f s (S=%d), %.1f s (S=%d)." % (
                         ctx.big_shards, m["rss_kb"] / 1024, m["cpu_pct"],
                         i["big"]["startup_s"], ctx.big_shards, i["small"]["startup_s"],
                         ctx.small_shards))
        L.append("")
    return "\n".join(L) + "\n"


def machine_line():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) / 1048576
    load = open("/proc/loadavg").read().split()[:3]
    return "%s, %d cores, %.1f GiB, Linux %s; load average at start %s (shared VM)." % (
        cpu, os.cpu_count(), mem, os.uname().release, "/".join(load))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="kvset,etcdperf,longchain,word_count,failover,idle")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shards", type=int, default=64, help="placement groups of the 3-worker cluster")
    ap.add_argument("--command", default="bench/replication/run.sh")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    procs.PIDS_FILE = out / "pids"

    class Ctx:
        pass

    ctx = Ctx()
    ctx.out = out
    ctx.out_rel = os.path.relpath(out, lib.REPO)
    ctx.command = a.command
    ctx.quick = a.quick
    ctx.workers, ctx.shards = 3, a.shards
    ctx.reps = 2 if a.quick else 3
    ctx.seconds = 3 if a.quick else 10
    ctx.warmup = 5 if a.quick else 20
    ctx.rates = [500, 1000] if a.quick else [250, 500, 1000, 2000]
    ctx.chain_reps = 3 if a.quick else 11
    ctx.mb = 10 if a.quick else 100
    ctx.wc_reps = 1 if a.quick else 3
    ctx.trials = 2 if a.quick else 5
    ctx.perf_load = "s" if a.quick else "m"  # etcdctl check perf: 60 s either way
    ctx.settle = 3 if a.quick else 5
    ctx.idle_s = 5 if a.quick else 30
    ctx.small_shards, ctx.big_shards = 8, (64 if a.quick else 256)
    ctx.etcd_version = subprocess.run(["etcd", "--version"], capture_output=True,
                                      text=True).stdout.split("\n")[0].split()[-1]
    only = set(a.only.split(","))
    machine = machine_line()

    apps = out / "apps"
    stage_apps(apps)
    R = {}
    t0 = time.time()
    wl = etcd = None
    try:
        if only & {"kvset", "etcdperf", "longchain", "word_count", "failover"}:
            log("starting etcd (3 members) and Waverless (master + 3 workers)")
            etcd = procs.EtcdCluster(out / "etcd", SERVERS)
            etcd.start()
            wl = procs.WaverlessCluster(out / "wl", apps, workers=ctx.workers, shards=ctx.shards,
                                        replicas=3, cpus=SERVERS, max_body=256 << 20)
            wl.start()
            entry = wl.workers[0]
            wl.wait_app(entry, "/kvput", ("k0\n" + VALUE).encode())
            wl.wait_app(entry, "/kvput_local", ("k0\n" + VALUE).encode())
            # Every group's first write elects nothing new, but the first call per group pays
            # for connections: write a key in each group once before measuring.
            probe = {}
            p = subprocess.run([lib.BIN / "shard_probe", "--shards", str(ctx.shards),
                                "--replicas", "3", "--workers",
                                ",".join(str(w) for w in wl.workers), "--app", "kvput",
                                "--prefix", "bk_f"], capture_output=True, text=True, check=True)
            for line in p.stdout.splitlines():
                if not line.startswith("hosted"):
                    g, key, _ = line.split()
                    probe[int(g)] = key
            for g, key in probe.items():
                lib.http("POST", wl.url(entry, "/kvput"),
                         ("%s\n%s" % (key[len("bk_"):], VALUE)).encode(), timeout=10)
        if "kvset" in only:
            R["kvset"] = case_kvset(ctx, wl, etcd, out)
        if "etcdperf" in only:
            R["etcdperf"] = case_etcd_perf(ctx, etcd)
        if "longchain" in only:
            R["longchain"] = case_longchain(ctx, wl)
        if "word_count" in only:
            R["word_count"] = case_word_count(ctx, wl, out)
        if "failover" in only:
            R["failover_etcd"] = case_failover_etcd(ctx, etcd)
            R["failover_wl"] = case_failover_wl(ctx, wl, probe)
    finally:
        if wl:
            wl.stop()
        if etcd:
            etcd.stop()
    if "idle" in only:
        R["idle"] = case_idle(ctx, out, apps)
    R["elapsed_s"] = time.time() - t0
    R["entry_node"] = 2  # wl.workers[0]: the first worker
    (out / "results.json").write_text(json.dumps(R, indent=1, default=str))
    md = report(ctx, R, machine)
    (out / "section.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
