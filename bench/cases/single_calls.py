"""Cases timed one request at a time (loadgen's script mode, one keep-alive
connection from cpu1; servers on cpu0):

  kernel     the compute kernel (bench/kernel/kernel.c: sort 1M keys, then
             SHA-256 rounds) as wasm in Waverless, as wasm in workerd, and
             native behind the bare Beast server; digests must agree. Also
             the CPU time each serving process spent per request.
  longchain  apps/longchain on one node: 100 key-triggered hops per
             request; per hop = total / 100."""

from lib import log, median, native_server, proc_cpu_ns, script, workerd_server

KERNEL_ARGS = "1000000 20"  # as engine_bench: n keys, SHA-256 rounds


def paired_ratios(samples, base="native"):
    """{system: median over rounds of that round's value / base's}, from
    {system: [one value per round, in round order]}. A slow stretch of the
    machine slows a round's requests together and cancels out here, where
    the ratio of the medians keeps it whenever it hit one system's median
    sample and not another's."""
    b = samples[base]
    out = {}
    for k, v in samples.items():
        if len(v) != len(b):
            raise ValueError("%s has %d rounds, %s %d: ratios pair rounds" %
                             (k, len(v), base, len(b)))
        out[k] = median([x / y for x, y in zip(v, b)])
    return out


def kernel(ctx, node):
    # One request is ~0.3-0.7 s and a sample moves by 10-20% on a shared VM
    # (the host's other tenants; native alone read 463-673 ms in one run).
    # A round's own ratio to native varies by ~15% on an idle machine (~33%
    # while others compile), so the median of 15 rounds is good to ~5%,
    # where 3 could not tell 1.0x from 1.15x.
    runs = ctx.pick(15, 25)
    body = ctx.out / "kernel_body.txt"
    body.write_text(KERNEL_ARGS)
    servers = {"waverless": (node, "/kernel"),
               "workerd": (workerd_server(ctx).start(), "/kernel"),
               "native": (native_server(ctx).start(), "/kernel")}
    names = list(servers)
    res = {"args": KERNEL_ARGS, "runs": runs, "ms": {}, "cpu_ms": {}, "digest": {}}
    try:
        for run in range(runs + 1):
            # Alternate so that drift hits all alike, and rotate who goes first
            # so that nothing which changes within a round (a neighbour's
            # burst, the cache another server left) always lands on the same
            # one.
            first = run % len(names)
            for name in names[first:] + names[:first]:
                s, path = servers[name]
                out = ctx.out / ("kernel_%s.out" % name)
                cpu0 = proc_cpu_ns(s.pid)
                tags, _ = script(s.target(), ["k POST %s @%s >%s" % (path, body, out)],
                                 ctx.out / ("kernel_%s_%d.script" % (name, run)))
                cpu = (proc_cpu_ns(s.pid) - cpu0) / 1e6
                if tags["k"]["errors"]:
                    raise RuntimeError("kernel on %s failed" % name)
                if run > 0:  # the first is a warm-up (instance, JIT tiers)
                    res["ms"].setdefault(name, []).append(tags["k"]["p50"] / 1000)
                    res["cpu_ms"].setdefault(name, []).append(cpu)
                res["digest"][name] = out.read_text().strip()
    finally:
        servers["workerd"][0].stop()
        servers["native"][0].stop()
    res["median_ms"] = {k: median(v) for k, v in res["ms"].items()}
    res["median_cpu_ms"] = {k: median(v) for k, v in res["cpu_ms"].items()}
    res["paired_ratio"] = paired_ratios(res["ms"])
    res["paired_cpu_ratio"] = paired_ratios(res["cpu_ms"])
    res["digests_agree"] = len(set(res["digest"].values())) == 1
    for k, v in res["median_ms"].items():
        log("  kernel %-9s %8.1f ms (CPU %.1f ms); paired ratio to native %.3f (CPU %.3f)" %
            (k, v, res["median_cpu_ms"][k], res["paired_ratio"][k], res["paired_cpu_ratio"][k]))
    ctx.results["kernel"] = res


def longchain(ctx, node):
    n = ctx.pick(20, 100)
    text = "The quick brown fox jumps over the lazy dog, 0123456789 times."
    body = ctx.out / "longchain_body.txt"
    body.write_text(text)
    lines = ["warmup POST /longchain @%s" % body] * 3
    lines += ["chain POST /longchain @%s" % body] * (n - 1)
    lines += ["chain POST /longchain @%s >%s" % (body, ctx.out / "longchain.out")]
    tags, samples = script(node.target(), lines, ctx.out / "longchain.script")
    c = tags["chain"]
    res = {"requests": n, "body": text, "total_us": c, "errors": c["errors"],
           "per_hop_p50_us": c["p50"] / 100, "per_hop_p99_us": c["p99"] / 100,
           "per_hop_mean_us": c["mean"] / 100}
    # Each hop rotates letters by one: 100 hops = 22 places.
    rotated = "".join(
        chr((ord(ch) - base + 100) % 26 + base) if ch.isalpha() and ch.isascii() else ch
        for ch in text for base in [ord("a") if ch.islower() else ord("A")])
    res["output_ok"] = rotated in (ctx.out / "longchain.out").read_text()
    log("  longchain total p50 %.0f us -> %.1f us per hop (output %s)" %
        (c["p50"], res["per_hop_p50_us"], "ok" if res["output_ok"] else "WRONG"))
    ctx.results["longchain"] = res
