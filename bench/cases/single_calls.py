"""Cases timed one request at a time (loadgen's script mode, one keep-alive
connection from cpu1; servers on cpu0):

  kernel     the compute kernel (bench/kernel/kernel.c: sort 1M keys, then
             SHA-256 rounds) as wasm in Waverless, as wasm in workerd, and
             native behind the bare Beast server; digests must agree.
  longchain  apps/longchain on one node: 100 key-triggered hops per
             request; per hop = total / 100."""

from lib import log, median, native_server, script, workerd_server

KERNEL_ARGS = "1000000 20"  # as engine_bench: n keys, SHA-256 rounds


def kernel(ctx, node):
    runs = ctx.pick(3, 7)
    body = ctx.out / "kernel_body.txt"
    body.write_text(KERNEL_ARGS)
    servers = {"waverless": (node, "/kernel"),
               "workerd": (workerd_server(ctx).start(), "/kernel"),
               "native": (native_server(ctx).start(), "/kernel")}
    res = {"args": KERNEL_ARGS, "runs": runs, "ms": {}, "digest": {}}
    try:
        # Alternate between the three so drift hits all alike.
        for run in range(runs + 1):
            for name, (s, path) in servers.items():
                out = ctx.out / ("kernel_%s.out" % name)
                tags, _ = script(s.target(), ["k POST %s @%s >%s" % (path, body, out)],
                                 ctx.out / ("kernel_%s_%d.script" % (name, run)))
                if tags["k"]["errors"]:
                    raise RuntimeError("kernel on %s failed" % name)
                if run > 0:  # the first is a warm-up (instance, JIT tiers)
                    res["ms"].setdefault(name, []).append(tags["k"]["p50"] / 1000)
                res["digest"][name] = out.read_text().strip()
    finally:
        servers["workerd"][0].stop()
        servers["native"][0].stop()
    res["median_ms"] = {k: median(v) for k, v in res["ms"].items()}
    res["digests_agree"] = len(set(res["digest"].values())) == 1
    for k, v in res["median_ms"].items():
        log("  kernel %-9s %8.1f ms" % (k, v))
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
