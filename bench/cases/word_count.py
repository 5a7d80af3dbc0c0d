"""Word count of 10 MB and 100 MB of text, three ways, each answer checked
byte for byte against the others:

  waverless  apps/word_count: split_file stores ~1 MiB slices in the node's
             KV; each kv_set triggers count_slice; split_file waits and
             merges the partial counts.
  redis      the usual serverless way (bench/redis): split/count/merge
             functions behind HTTP keep every slice and partial count in a
             remote Redis and are chained by the caller (wc_driver, 4
             counts at a time). Once with Redis persistence off (its
             fastest), once with an append-only file written but not fsynced
             (the durability Waverless's KV has: survives a process crash).
  native     one thread counting the text in memory (bench/native/wc_native):
             in one pass, and sliced like the app (count each slice, encode
             its part, merge the parts) without any store.

Two variants of where the text starts:
  body    it arrives in the HTTP request (end to end, upload included);
  stored  it already lives where each platform keeps data: the app's data
          folder (files/input.txt, called with an empty body) for Waverless,
          a Redis key for the pipeline (split GETs it).

Nothing is pinned here: each system may use both cores (Waverless runs
counts on its 2 executor threads; the pipeline's functions and Redis run in
parallel); the client only waits."""

import hashlib
import subprocess

from lib import (ALL_CPUS, BIN, Server, free_port, log, median, metric_sum, metrics_text,
                 run_json, script)

SIZES_MB = (10, 100)
VARIANTS = ("body", "stored")


def inputs(ctx):
    """The input texts (generated once, kept across runs in bench/out/data)."""
    out = {}
    for mb in SIZES_MB:
        path = ctx.out.parent / "data" / ("text_%dmb.txt" % mb)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([BIN / "wc_native", "gen", str(mb << 20), path], check=True)
        out[mb] = path
    return out


def node_apps(ctx):
    """The word_count app under extra names whose files/input.txt is the
    text: the 'stored' variant calls them with an empty body."""
    return [("wc%d" % mb, "word_count", {"input.txt": path}) for mb, path in inputs(ctx).items()]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def waverless(ctx, node, texts, runs):
    out = {v: {} for v in VARIANTS}
    node.pin(ALL_CPUS)
    try:
        for variant in VARIANTS:
            for mb, path in texts.items():
                save = ctx.out / ("wc_waverless_%s_%dmb.json" % (variant, mb))
                call = ("POST /word_count @%s" % path if variant == "body" else
                        "POST /wc%d" % mb)
                lines = ["warmup " + call] + ["wc " + call] * (runs[mb] - 1)
                lines += ["wc %s >%s" % (call, save)]
                tags, samples = script(node.target(), lines,
                                       ctx.out / ("wc_%s_%dmb.script" % (variant, mb)),
                                       cpus=ALL_CPUS)
                if tags["wc"]["errors"] or tags["warmup"]["errors"]:
                    raise RuntimeError("word_count on Waverless failed; see %s" % node.log_path)
                ms = [int(l.split()[1]) / 1000 for l in samples.read_text().splitlines()
                      if l.startswith("wc ")]
                out[variant][mb] = {"ms": ms, "median_ms": median(ms), "digest": digest(save)}
                log("  word_count %3d MB %-6s waverless     %8.1f ms" % (mb, variant, median(ms)))
        out["function_seconds"] = function_seconds(node)
    finally:
        node.pin("0")
    return out


def function_seconds(node):
    """Time spent inside each word-count function, from the node's
    wl_invocation_seconds (all runs, both variants): where the time goes."""
    text = metrics_text(node)
    out = {}
    for fn in ("split_file", "count_slice"):
        label = 'fn="%s"' % fn
        total = metric_sum(text, "wl_invocation_seconds_sum", label)
        count = metric_sum(text, "wl_invocation_seconds_count", label)
        out[fn] = {"seconds": total, "count": count, "mean_ms": 1000 * total / max(1, count)}
    return out


def redis_pipeline(ctx, texts, runs, persistence):
    redis_port, fn_port = free_port(), free_port()
    d = ctx.out / ("redis_" + persistence)
    d.mkdir(parents=True, exist_ok=True)
    args = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
            "--dir", d, "--daemonize", "no", "--protected-mode", "no"]
    args += (["--appendonly", "yes", "--appendfsync", "no"] if persistence == "aof"
             else ["--appendonly", "no"])
    redis = Server("redis", args, d / "redis.log", cpus=ALL_CPUS, ready_path=None)
    redis.http_port = redis_port  # the port, though it speaks RESP, not HTTP
    fns = Server("wc_functions", [BIN / "wc_functions", fn_port, redis_port, 4],
                 d / "functions.log", cpus=ALL_CPUS, ready_path=None)
    fns.http_port = fn_port
    out = {v: {} for v in VARIANTS}
    try:
        redis.start()
        fns.start()
        for variant in VARIANTS:
            for mb, path in texts.items():
                save = ctx.out / ("wc_redis_%s_%s_%dmb.json" % (persistence, variant, mb))
                # One untimed warm-up run, as for Waverless.
                r = run_json([BIN / "wc_driver", "--target", fns.target(), "--input", path,
                              "--runs", str(runs[mb] + 1), "--fanout", "4", "--save", save,
                              "--stored", "yes" if variant == "stored" else "no"], cpus=ALL_CPUS)
                ms = r["ms"][1:]
                out[variant][mb] = {"ms": ms, "median_ms": median(ms), "slices": r["slices"],
                                    "digest": digest(save)}
                log("  word_count %3d MB %-6s redis(%-3s)    %8.1f ms" %
                    (mb, variant, persistence, median(ms)))
    finally:
        fns.stop()
        redis.stop()
    return out


def run(ctx, node):
    runs = {10: ctx.pick(3, 5), 100: ctx.pick(2, 3)}
    texts = inputs(ctx)
    res = {"sizes_mb": list(SIZES_MB), "runs": runs}
    res["waverless"] = waverless(ctx, node, texts, runs)
    res["native"] = {}
    for mb, path in texts.items():
        save = ctx.out / ("wc_native_%dmb.json" % mb)
        rs = [run_json([BIN / "wc_native", "count", path, save], cpus=ALL_CPUS)
              for _ in range(runs[mb])]
        ms, sliced = [r["ms"] for r in rs], [r["sliced_ms"] for r in rs]
        res["native"][mb] = {"ms": ms, "median_ms": median(ms), "sliced_ms": sliced,
                             "sliced_median_ms": median(sliced), "digest": digest(save)}
        log("  word_count %3d MB        native        %8.1f ms (sliced like the app: %.1f ms)" %
            (mb, median(ms), median(sliced)))
    res["redis"] = redis_pipeline(ctx, texts, runs, "off")
    res["redis_aof"] = redis_pipeline(ctx, texts, runs, "aof")
    res["answers_agree"] = all(
        len({res["native"][mb]["digest"]} |
            {res[k][v][mb]["digest"] for k in ("waverless", "redis", "redis_aof")
             for v in VARIANTS}) == 1 for mb in SIZES_MB)
    ctx.results["word_count"] = res
