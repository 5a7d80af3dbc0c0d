// Metrics of the last minutes from the node's history ring: requests,
// errors, latency percentiles, cold starts, KV bytes, memory; for all apps
// or one.
import { useEffect, useState } from "preact/hooks";
import { Chart } from "../chart";
import { history, latencySeries, Match, parseSeries, rates, subscribe, values } from "../history";

export function MetricsPage() {
  const [, tick] = useState(0);
  const [app, setApp] = useState("");
  useEffect(() => subscribe(() => tick((x) => x + 1)), []);
  const { samples, error } = history();
  const apps = new Set<string>();
  const last = samples[samples.length - 1];
  if (last) for (const k of Object.keys(last.v)) {
    const s = parseSeries(k);
    if (s.name === "wl_invocations_total" && s.labels.app) apps.add(s.labels.app);
  }
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
  return (
    <div>
      <section>
        <h2>Metrics</h2>
        <p>
          App:{" "}
          <select data-testid="metrics-app" value={app} onChange={(e) => setApp((e.target as HTMLSelectElement).value)}>
            <option value="">all (this node)</option>
            {Array.from(apps).sort().map((a) => <option value={a}>{a}</option>)}
          </select>{" "}
          <span class="muted">
            {samples.length} samples, one a second on the node (last {Math.round(samples.length / 60)} min); the page
            refreshes every 2 s. KV bytes are per node.
          </span>
        </p>
        {error && <p class="error">{error}</p>}
      </section>
      <div class="charts">
        <Chart title={app ? `${app}: invocations/s` : "requests/s"} testId="chart-rps" series={["req/s"]} data={[req[0], req[1]]} />
        <Chart title="errors/s" testId="chart-errors" series={["errors/s"]} data={[errs[0], errs[1]]} />
        <Chart title="function execution time (ms)" testId="chart-latency" series={["p50", "p99"]} data={[lt, p50, p99]} unit=" ms" />
        <Chart title="cold starts/s" testId="chart-cold" series={["cold/s"]} data={[cold[0], cold[1]]} />
        <Chart title="KV bytes/s (node)" testId="chart-kv" series={["written", "read"]} data={[kvw[0], kvw[1], kvr[1]]} />
        <Chart title="RSS (MiB)" testId="chart-rss" series={["rss"]} data={[rss[0], rss[1].map((b) => b / 1048576)]} />
      </div>
    </div>
  );
}
