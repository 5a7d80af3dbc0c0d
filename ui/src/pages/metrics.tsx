// Metrics of the last minutes from the node's history ring: requests,
// errors, latency percentiles, cold starts, KV bytes, memory; for all apps
// or one.
import { useEffect, useMemo, useState } from "preact/hooks";
import { Chart } from "../chart";
import { history, latencySeries, Match, parseSeries, rates, Sample, subscribe, values } from "../history";
import { refreshSeconds } from "../refresh";

// The charts' data: new arrays only when new samples came (or the app
// changed), so a chart redraws only then.
function seriesOf(samples: Sample[], app: string) {
  const want: Match = app ? { app } : {};
  // Requests: HTTP requests node-wide; one app's requests are its invocations.
  const req = app ? rates(samples, "wl_invocations_total", want) : rates(samples, "wl_http_requests_total");
  const errs = app
    ? rates(samples, "wl_invocations_total", { app, result: "error" })
    : rates(samples, "wl_http_errors_total");
  const [lt, p50, p99] = latencySeries(samples, want);
  const cold = rates(samples, "wl_cold_starts_total", want);
  const kvw = rates(samples, "wl_kv_bytes", { dir: "written" });
  const kvr = rates(samples, "wl_kv_bytes", { dir: "read" });
  const rss = values(samples, "wl_process_rss_bytes");
  return {
    req: [req[0], req[1]],
    errs: [errs[0], errs[1]],
    latency: [lt, p50, p99],
    cold: [cold[0], cold[1]],
    kv: [kvw[0], kvw[1], kvr[1]],
    rss: [rss[0], rss[1].map((b) => b / 1048576)],
  };
}

export function MetricsPage() {
  const [, tick] = useState(0);
  const [app, setApp] = useState("");
  useEffect(() => subscribe(() => tick((x) => x + 1)), []);
  const { samples, error } = history();
  const last = samples[samples.length - 1];
  const apps = useMemo(() => {
    const out = new Set<string>();
    if (last) for (const k of Object.keys(last.v)) {
      const s = parseSeries(k);
      if (s.name === "wl_invocations_total" && s.labels.app) out.add(s.labels.app);
    }
    return Array.from(out).sort();
  }, [last]);
  const d = useMemo(() => seriesOf(samples, app), [samples, app]);
  return (
    <div>
      <section>
        <h2>Metrics</h2>
        <p>
          App:{" "}
          <select data-testid="metrics-app" value={app} onChange={(e) => setApp((e.target as HTMLSelectElement).value)}>
            <option value="">all (this node)</option>
            {apps.map((a) => <option value={a}>{a}</option>)}
          </select>{" "}
          <span class="muted">
            {samples.length} samples, one a second on the node (last {Math.round(samples.length / 60)} min); the page
            refreshes every {refreshSeconds()} s. KV bytes are per node.
          </span>
        </p>
        {error && <p class="error">{error}</p>}
      </section>
      <div class="charts">
        <Chart title={app ? `${app}: invocations/s` : "requests/s"} testId="chart-rps" series={["req/s"]} data={d.req} />
        <Chart title="errors/s" testId="chart-errors" series={["errors/s"]} data={d.errs} />
        <Chart title="function execution time (ms)" testId="chart-latency" series={["p50", "p99"]} data={d.latency} unit=" ms" />
        <Chart title="cold starts/s" testId="chart-cold" series={["cold/s"]} data={d.cold} />
        <Chart title="KV bytes/s (node)" testId="chart-kv" series={["written", "read"]} data={d.kv} />
        <Chart title="RSS (MiB)" testId="chart-rss" series={["rss"]} data={d.rss} />
      </div>
    </div>
  );
}
