"""Cold starts and many apps, on one fresh node (pinned to cpu0; clients on
cpu1).

  cold start after deploy  deploy the hello wasm under 1,000 new names (the
                           compile is cached by content), timing each
                           deploy, the first call (cold) and a second (warm);
  cold start after evict   POST /api/apps/hello/evict, then call: cold;
                           call again: warm. Many samples of each.
  many apps                every app's idle instances evicted, then a
                           trace replay: per-second rates shaped like public
                           FaaS traces (a slow swell, noise, sudden spikes),
                           each request to one of the 1,000 apps by a Zipf
                           law (a few hot apps, a long tail of rare ones).
                           Node RSS and threads sampled throughout; cold
                           starts from wl_cold_starts_total."""

import math
import random

from lib import (CpuMeter, Sampler, WaverlessNode, app_tar, http, loadgen, log, metric_sum,
                 metrics_text, script)

N_APPS = 1000
ZIPF_S = 1.0


def trace_rates(seconds, mean, seed=5):
    """A per-second rate series with the features of the Azure Functions
    2019 trace, squeezed into a short window: a diurnal swell (trough, peak,
    trough), log-normal second-to-second noise, and sudden spikes of 2-4x
    lasting 1-3 s."""
    rng = random.Random(seed)
    rates = []
    for t in range(seconds):
        swell = 1 + 0.5 * math.sin(2 * math.pi * t / seconds - math.pi / 2)
        rates.append(mean * swell * rng.lognormvariate(0, 0.15))
    for _ in range(max(1, seconds // 15)):
        at, length, factor = rng.randrange(seconds), rng.randint(1, 3), rng.uniform(2, 4)
        for t in range(at, min(seconds, at + length)):
            rates[t] *= factor
    return rates


def stalls(timeline, cpu_series, threshold_us=50_000):
    """Seconds of the trace whose p99 exceeded threshold_us, with what the
    CPUs did meanwhile (from the sampler): a node that used little CPU while
    its CPU was busy was starved by others; a node busy or idle on an idle
    CPU stalled by itself."""
    out = []
    hz = CpuMeter.HZ
    for line in timeline.read_text().splitlines():
        if line.startswith("#"):
            continue
        sec, _, _, _, p99 = (float(x) for x in line.split())
        if p99 <= threshold_us:
            continue
        # The samples bracketing the second (the stall may start before the
        # requests due in it; take one second either side).
        window = [c for c in cpu_series if sec - 1 <= c[0] <= sec + 2]
        if len(window) < 2:
            continue
        (t0, n0, b0), (t1, n1, b1) = window[0], window[-1]
        span = max(1e-3, t1 - t0)
        out.append({"second": int(sec), "p99_us": p99, "window_s": round(span, 2),
                    "node_cores": round((n1 - n0) / hz / span, 2),
                    "cpu_busy": [round((y - x) / hz / span, 2) for x, y in zip(b0, b1)]})
    return out


def cold_starts(node):
    return metric_sum(metrics_text(node), "wl_cold_starts_total")


def scrape_cost(ctx, node):
    """What one GET /metrics costs with 1,000 apps, and what scraping it
    4 times a second does to the p99 of calls meanwhile (2,000 req/s,
    Zipf over the apps), against the same load unscraped."""
    tags, _ = script(node.target(), ["m GET /metrics"] * 20, ctx.out / "metrics.script")
    _, body = http("GET", node.url("/metrics"))
    out = {"bytes": len(body), "render_us": tags["m"]}
    seconds = str(ctx.pick(3, 10))
    for label, scrape in (("unscraped", False), ("scraped_4hz", True)):
        sampler = Sampler(node.pid, interval=0.25, gauge_url=node.url("/metrics"),
                          gauge="wl_instances") if scrape else None
        if sampler:
            sampler.start()
        r = loadgen(node.target(), "--rate", "2000", "--duration", seconds, "--apps", "/app",
                    "--napps", str(N_APPS), "--zipf", str(ZIPF_S), "--spin-us", "50")
        if sampler:
            sampler.finish()
        out[label] = r["latency_us"]
    log("  GET /metrics: %d KB, %.1f ms p50; p99 of calls unscraped %.0f us, scraped 4/s %.0f us"
        % (out["bytes"] / 1024, tags["m"]["p50"] / 1000, out["unscraped"]["p99"],
           out["scraped_4hz"]["p99"]))
    return out


def run(ctx):
    evict_samples = ctx.pick(300, 1000)
    trace_seconds = ctx.pick(20, 60)
    trace_mean = 2000
    node = WaverlessNode(ctx, "apps", ["hello"]).start()
    res = {"apps": N_APPS, "rss_kb": {}, "threads": {}}
    try:
        tar = app_tar("hello", ctx.out / "hello.tar")
        res["rss_kb"]["start"] = node.status()["VmRSS"]

        # --- cold start after deploy of a new name -------------------------
        lines = []
        for i in range(N_APPS):
            lines += ["deploy POST /api/apps?name=app%d @%s" % (i, tar),
                      "cold_deploy GET /app%d" % i, "warm_deploy GET /app%d" % i]
        before = cold_starts(node)
        tags, samples = script(node.target(), lines, ctx.out / "cold_deploy.script",
                               token=node.token())
        res["deploy"] = tags["deploy"]
        res["cold_deploy"] = tags["cold_deploy"]
        res["warm_deploy"] = tags["warm_deploy"]
        res["cold_deploy_counted"] = cold_starts(node) - before
        res["deploy_samples"] = str(samples)
        st = node.status()
        res["rss_kb"]["after_1000_apps_warm"] = st["VmRSS"]
        res["threads"]["after_1000_apps_warm"] = st["Threads"]
        log("  deploy p50 %.0f us; first call p50 %.0f p99 %.0f us; warm p50 %.0f us; "
            "cold starts counted %d/%d" %
            (tags["deploy"]["p50"], tags["cold_deploy"]["p50"], tags["cold_deploy"]["p99"],
             tags["warm_deploy"]["p50"], res["cold_deploy_counted"], N_APPS))

        # --- cold start after evict ----------------------------------------
        lines = []
        for _ in range(evict_samples):
            lines += ["evict POST /api/apps/hello/evict", "cold_evict GET /hello",
                      "warm_evict GET /hello"]
        before = cold_starts(node)
        tags, samples = script(node.target(), lines, ctx.out / "cold_evict.script",
                               token=node.token())
        res["cold_evict"] = tags["cold_evict"]
        res["warm_evict"] = tags["warm_evict"]
        res["cold_evict_counted"] = cold_starts(node) - before
        res["evict_samples"] = str(samples)
        log("  after evict: cold p50 %.0f p99 %.0f us; warm p50 %.0f us; counted %d/%d" %
            (tags["cold_evict"]["p50"], tags["cold_evict"]["p99"], tags["warm_evict"]["p50"],
             res["cold_evict_counted"], evict_samples))

        # --- many apps: Zipf trace from an all-idle node --------------------
        script(node.target(), ["evict POST /api/apps/app%d/evict" % i for i in range(N_APPS)],
               ctx.out / "evict_all.script", token=node.token())
        st = node.status()
        res["rss_kb"]["after_evict_all"] = st["VmRSS"]
        rates = trace_rates(trace_seconds, trace_mean)
        trace = ctx.out / "trace_rates.txt"
        trace.write_text("".join("%.1f\n" % r for r in rates))
        before = cold_starts(node)
        # /proc only: scraping /metrics during the trace would itself add
        # latency (measured separately below).
        sampler = Sampler(node.pid, interval=0.25)
        sampler.start()
        timeline = ctx.out / "trace_timeline.txt"
        cdf = ctx.out / "trace_cdf.txt"
        r = loadgen(node.target(), "--trace", trace, "--apps", "/app", "--napps", str(N_APPS),
                    "--zipf", str(ZIPF_S), "--conns", "64", "--spin-us", "50", "--drain", "10",
                    "--timeline", timeline, "--cdf", cdf)
        peaks = sampler.finish()
        text = metrics_text(node)
        cold = metric_sum(text, "wl_cold_starts_total") - before
        instances = metric_sum(text, "wl_instances")
        res["trace"] = {
            "seconds": trace_seconds, "mean_rps": trace_mean, "zipf_s": ZIPF_S,
            "peak_rate": max(rates), "loadgen": r, "cold_starts": cold,
            "cold_starts_per_s": cold / trace_seconds,
            "cold_fraction": cold / max(1, r["ok"] + r["errors"]),
            "peak_rss_kb": peaks["peak_rss_kb"], "peak_threads": peaks["peak_threads"],
            "instances_at_end": instances, "timeline": str(timeline), "cdf": str(cdf),
            "rss_series": [(round(t, 2), rss) for t, _, rss, _ in sampler.series],
            "cpu_series": sampler.cpu_series,
        }
        res["trace"]["stalls"] = stalls(timeline, sampler.cpu_series)
        for st in res["trace"]["stalls"]:
            log("  stall at second %d: p99 %.0f ms; meanwhile the node used %.2f cores, cpu0 was"
                " %.0f%% busy, cpu1 %.0f%%" % (st["second"], st["p99_us"] / 1000,
                                               st["node_cores"], 100 * st["cpu_busy"][0],
                                               100 * st["cpu_busy"][-1]))
        res["rss_kb"]["after_trace"] = node.status()["VmRSS"]
        res["metrics_scrape"] = scrape_cost(ctx, node)
        lat = r["latency_us"]
        log("  trace %ds mean %d/s: achieved %.0f/s, p50 %.0f p99 %.0f p99.9 %.0f us; apps hit %d;"
            " cold starts %d (%.1f/s); peak RSS %.1f MB, threads %d" %
            (trace_seconds, trace_mean, r["achieved_rps"], lat["p50"], lat["p99"], lat["p999"],
             r["targets_hit"], cold, cold / trace_seconds, peaks["peak_rss_kb"] / 1024,
             peaks["peak_threads"]))
    finally:
        node.stop()
    ctx.results["many_apps"] = res
