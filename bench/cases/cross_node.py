"""Cross-node cases and network conditions, run through the cluster scripts
(each prints a Markdown table; see their headers):

  cluster    bench/cluster/cluster_bench.sh   nodes on loopback: longchain hop
             across nodes, word_count on 1 vs 2 workers, bytes moved by the
             random vs data-aware schedulers
  netns      bench/cluster/netns_bench.sh     the same across network
             namespaces, links shaped with tbf (netem delay where the
             kernel has it)
  wc_remote  bench/cluster/wc_remote_bench.sh word_count vs the Redis
             pipeline with Redis on its own host, at several link rates

The netns scripts need root and say so instead of measuring. They run the
project's build folder (not the suite's snapshot): they start whole
clusters from build/."""

import subprocess
from pathlib import Path

from lib import log

ROOT_DIR = Path(__file__).resolve().parent.parent.parent
SCRIPTS = (("cluster", "bench/cluster/cluster_bench.sh"),
           ("netns", "bench/cluster/netns_bench.sh"),
           ("wc_remote", "bench/cluster/wc_remote_bench.sh"))


def table_rows(markdown):
    """The data rows of the first Markdown table, as lists of cells."""
    rows = []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not all(set(c) <= set("-: ") for c in cells):
            rows.append(cells)
    return rows[1:]  # without the header


def run(ctx):
    res = {}
    for name, script in SCRIPTS:
        argv = ["bash", script] + (["--quick"] if ctx.quick else [])
        log("  %s" % " ".join(argv))
        p = subprocess.run(argv, cwd=ROOT_DIR, capture_output=True, text=True, timeout=3600)
        (ctx.out / ("%s.log" % name)).write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
        if p.returncode != 0:
            raise RuntimeError("%s failed (exit %d); see %s" %
                               (script, p.returncode, ctx.out / ("%s.log" % name)))
        res[name] = {"command": " ".join(["bench/cluster/" + script.split("/")[-1]] + argv[2:]),
                     "markdown": p.stdout.strip()}
    # word_count vs the remote-store pipeline, per link and input, for the targets table.
    res["wc_remote_ratios"] = [
        {"link": r[0], "input": r[1], "waverless": r[2], "redis": r[3], "ratio": r[4],
         "agree": r[5]} for r in table_rows(res["wc_remote"]["markdown"]) if len(r) >= 6]
    ctx.results["cross_node"] = res
