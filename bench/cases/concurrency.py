"""Concurrency: 1,000 invocations in flight at once, each waiting 100 ms.

loadgen opens 1,000 keep-alive connections and sends bursts of 1,000
requests every 500 ms (so every burst overlaps nothing but itself). While it
runs, /proc/<pid>/status (threads, RSS) is sampled every 20 ms. Waverless
runs bench/apps/sleep (wl_sleep_ms: the invocation parks its fiber, no
thread waits); workerd (await scheduler.wait) and the bare Beast server (an
asio timer) do the same wait for reference. Each server on a fresh start,
pinned to cpu0; the client on cpu1."""

from lib import CpuMeter, Sampler, WaverlessNode, loadgen, log, native_server, workerd_server

IN_FLIGHT = 1000


def measure(ctx, name, server, gauge=None):
    """The burst run; repeated (up to 3 times, the quietest kept) when other
    sessions used more than a quarter core meanwhile."""
    tries = []
    for _ in range(3):
        meter = CpuMeter()
        r = measure_once(ctx, name, server, gauge)
        r["cpu"] = meter.read()
        tries.append(r)
        if r["cpu"]["other_cores"] <= 0.25:
            break
        log("    others used %.2f cores meanwhile: measuring again" % r["cpu"]["other_cores"])
    best = min(tries, key=lambda t: t["cpu"]["other_cores"])
    best["attempts"] = [t["cpu"] for t in tries]
    return best


def measure_once(ctx, name, server, gauge=None):
    idle = server.status()
    sampler = Sampler(server.pid, interval=0.02,
                      gauge_url=server.url("/metrics") if gauge else None, gauge=gauge)
    sampler.start()
    r = loadgen(server.target(), "--path", "/sleep", "--arrival", "burst", "--burst",
                str(IN_FLIGHT), "--period-ms", "500", "--duration", str(ctx.pick(3, 10)),
                "--conns", str(IN_FLIGHT), "--drain", "15")
    peaks = sampler.finish()
    out = {"idle": idle, "loadgen": r, **peaks}
    lat = r["latency_us"]
    log("  %-9s in flight %4d: threads %d -> %d, RSS %.1f -> %.1f MB; latency p50 %.1f p99 %.1f"
        " ms; errors %d%s" %
        (name, r["peak_in_flight"], idle.get("Threads", 0), peaks["peak_threads"],
         idle.get("VmRSS", 0) / 1024, peaks["peak_rss_kb"] / 1024, lat["p50"] / 1000,
         lat["p99"] / 1000, r["errors"],
         ", peak parked fibers %d" % peaks["peak_gauge"] if gauge else ""))
    return out


def run(ctx):
    res = {"in_flight": IN_FLIGHT}
    node = WaverlessNode(ctx, "concurrency", ["sleep"]).start()
    try:
        res["waverless"] = measure(ctx, "waverless", node, gauge="wl_fibers_parked")
    finally:
        node.stop()
    for name, make in (("workerd", workerd_server), ("native", native_server)):
        s = make(ctx).start()
        try:
            res[name] = measure(ctx, name, s)
        finally:
            s.stop()
    ctx.results["concurrency"] = res
