// Experiments: define a load, run it from the node (POST /api/experiments),
// watch the app's throughput and latency live, keep the runs, compare them
// as latency CDFs and throughput over time, export JSON or CSV.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, apiJson, ApiError, AppInfo } from "../api";
import { Chart } from "../chart";
import { history, latencySeries, rates, subscribe } from "../history";
import { every } from "../refresh";

interface Spec {
  method: string;
  path: string;
  arrival: string;
  rate: number;
  duration_s: number;
  connections: number;
  burst: number;
  period_ms: number;
  body_bytes: number;
}
interface Result {
  scheduled: number;
  answered: number;
  ok: number;
  errors: Record<string, number>;
  failed_connections: number;
  unanswered: number;
  seconds: number;
  throughput: number;
  latency_us: { p50: number; p90: number; p99: number; p999: number; max: number };
  timeline: { s: number; due: number; ok: number; p50_us: number; p99_us: number }[];
  cdf: [number, number][];
}
interface Run {
  id: number;
  state: "running" | "done" | "failed";
  started_ms: number;
  finished_ms: number;
  spec: Spec;
  error?: string;
  result?: Result;
}

const nines = (q: number) => (q >= 1 ? 6 : -Math.log10(1 - q));
const ninesLabel = (v: number) => {
  if (v >= 6) return "max";
  const q = 1 - Math.pow(10, -v);
  return "p" + (q * 100).toFixed(Math.max(0, Math.ceil(v) - 2));
};

function download(name: string, text: string, type: string) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  URL.revokeObjectURL(a.href);
}

function csv(run: Run): string {
  const r = run.result!;
  const lines = ["section,second_or_percentile,due,ok,p50_us,p99_us,latency_us"];
  for (const t of r.timeline) lines.push(`timeline,${t.s},${t.due},${t.ok},${t.p50_us},${t.p99_us},`);
  for (const [us, q] of r.cdf) lines.push(`cdf,${q},,,,,${us}`);
  return lines.join("\n") + "\n";
}

function Compare(props: { runs: Run[] }) {
  const runs = props.runs.filter((r) => r.result);
  // A finished run never changes: the charts redraw when the picked runs do.
  const data = useMemo(() => (runs.length ? compareData(runs) : null), [runs.map((r) => r.id).join(",")]);
  if (!data) return <p class="muted">Tick finished runs to compare them.</p>;
  return (
    <div class="charts">
      <Chart title="latency CDF (ms by percentile)" testId="chart-cdf" series={data.names} data={data.cdf} unit=" ms" xLabel={ninesLabel} />
      <Chart title="throughput over time (ok/s by second)" testId="chart-throughput" series={data.names} data={data.tp} xLabel={(v) => v + " s"} />
    </div>
  );
}

function compareData(runs: Run[]) {
  // CDFs share their percentile grid (load/report.cpp), so one x axis fits all.
  const grid = Array.from(new Set(runs.flatMap((r) => r.result!.cdf.map(([, q]) => nines(q))))).sort((a, b) => a - b);
  const cdf = [grid, ...runs.map((r) => grid.map((x) => {
    const p = r.result!.cdf.find(([, q]) => Math.abs(nines(q) - x) < 1e-9);
    return p ? p[0] / 1000 : null;
  }))];
  const secs = Math.max(...runs.map((r) => r.result!.timeline.length));
  const tp = [Array.from({ length: secs }, (_, i) => i), ...runs.map((r) =>
    Array.from({ length: secs }, (_, i) => r.result!.timeline.find((t) => t.s === i)?.ok ?? null))];
  const names = runs.map((r) => `#${r.id} ${r.spec.arrival} ${r.spec.rate}/s`);
  return { cdf, tp, names };
}

export function ExperimentsPage() {
  const [apps, setApps] = useState<AppInfo[]>([]);
  const [app, setApp] = useState("");
  const [fn, setFn] = useState("");
  const [body, setBody] = useState("");
  const [arrival, setArrival] = useState("poisson");
  const [rate, setRate] = useState("100");
  const [duration, setDuration] = useState("10");
  const [connections, setConnections] = useState("16");
  const [burst, setBurst] = useState("10");
  const [period, setPeriod] = useState("100");
  const [trace, setTrace] = useState("50, 100, 200, 100, 50");
  const [runs, setRuns] = useState<Run[]>([]);
  const [details, setDetails] = useState<Record<number, Run>>({});
  const [picked, setPicked] = useState<number[]>([]);
  const [error, setError] = useState("");
  const [, tick] = useState(0);

  useEffect(() => {
    apiJson<AppInfo[]>("/api/apps").then((a) => (setApps(a), a.length && setApp((x) => x || a[0].name))).catch(() => {});
    return subscribe(() => tick((x) => x + 1));
  }, []);
  const load = async () => {
    try {
      const list = await apiJson<Run[]>("/api/experiments");
      setRuns(list);
      // Full results (timeline, CDF) of finished runs, fetched once each.
      for (const r of list) {
        if (r.state === "done" && !details[r.id]) {
          const full = await apiJson<Run>("/api/experiments/" + r.id);
          setDetails((d) => ({ ...d, [r.id]: full }));
        }
      }
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  const running = runs.some((r) => r.state === "running");
  // On the page's refresh clock: every refresh while a run is going, else
  // every 5 s (a run started elsewhere, by the CLI or another tab).
  useEffect(() => every(load, running ? 0 : 5000), [running, Object.keys(details).length]);

  const start = async () => {
    setError("");
    const q = new URLSearchParams({ app, arrival, duration, connections });
    if (fn) q.set("fn", fn);
    if (arrival === "burst") (q.set("burst", burst), q.set("period_ms", period));
    else if (arrival === "trace") q.set("trace", trace.split(/[\s,]+/).filter(Boolean).join(","));
    else q.set("rate", rate);
    try {
      await api("/api/experiments?" + q.toString(), { method: "POST", body });
      await load();
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  const { samples } = history();
  // Recomputed (and the live charts redrawn) on new samples, not on each
  // keystroke in the form.
  const live = useMemo(() => {
    const last = samples.slice(-90);
    const rps = rates(last, "wl_invocations_total", { app });
    return { rps: [rps[0], rps[1]], latency: latencySeries(last, { app }) };
  }, [samples, app]);
  const field = (label: string, value: string, set: (v: string) => void, testId: string) => (
    <label>
      {label} <input size={6} value={value} data-testid={testId} onInput={(e) => set((e.target as HTMLInputElement).value)} />{" "}
    </label>
  );
  return (
    <div>
      <section>
        <h2>New experiment</h2>
        <p>
          <label>
            App{" "}
            <select data-testid="exp-app" value={app} onChange={(e) => setApp((e.target as HTMLSelectElement).value)}>
              {apps.map((a) => <option value={a.name}>{a.name}</option>)}
            </select>
          </label>{" "}
          <label>
            function path (optional) <input size={10} value={fn} onInput={(e) => setFn((e.target as HTMLInputElement).value)} />
          </label>{" "}
          <label>
            arrivals{" "}
            <select data-testid="exp-arrival" value={arrival} onChange={(e) => setArrival((e.target as HTMLSelectElement).value)}>
              <option value="poisson">Poisson</option>
              <option value="constant">constant</option>
              <option value="burst">bursts</option>
              <option value="trace">trace (req/s per second)</option>
            </select>
          </label>
        </p>
        <p>
          {arrival === "burst" && <>{field("burst of", burst, setBurst, "exp-burst")}{field("every ms", period, setPeriod, "exp-period")}</>}
          {arrival === "trace" && (
            <label>
              req/s for each second{" "}
              <input size={40} value={trace} data-testid="exp-trace" onInput={(e) => setTrace((e.target as HTMLInputElement).value)} />{" "}
            </label>
          )}
          {arrival !== "burst" && arrival !== "trace" && field("rate (req/s)", rate, setRate, "exp-rate")}
          {arrival !== "trace" && field("duration (s, ≤ 120)", duration, setDuration, "exp-duration")}
          {field("connections", connections, setConnections, "exp-connections")}
        </p>
        <textarea rows={2} placeholder="request body" value={body} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} />
        <p>
          <button data-testid="exp-run" disabled={running || !app} onClick={start}>Run</button>{" "}
          <span class="muted">
            The node runs the load against itself (open loop: latency from each request's scheduled time), one
            experiment at a time. A trace file: paste its rates, or `waverless load --trace FILE`.
          </span>
        </p>
        {error && <p class="error">{error}</p>}
      </section>
      <div class="charts">
        <Chart title={`${app}: invocations/s (live)`} testId="chart-exp-rps" series={["req/s"]} data={live.rps} />
        <Chart title={`${app}: function execution time (live, ms)`} testId="chart-exp-latency" series={["p50", "p99"]} data={live.latency} unit=" ms" />
      </div>
      <section>
        <h2>Runs</h2>
        {runs.length === 0 && <p class="muted">No experiments yet.</p>}
        {runs.length > 0 && (
          <table data-testid="exp-runs">
            <thead>
              <tr><th>compare</th><th>#</th><th>target</th><th>load</th><th>state</th><th>ok</th><th>errors</th><th>ok/s</th><th>p50</th><th>p99</th><th>p99.9</th><th>export</th></tr>
            </thead>
            <tbody>
              {runs.map((r) => {
                const d = details[r.id];
                const res = d?.result;
                const errs = res ? Object.values(res.errors).reduce((a, b) => a + b, 0) + res.failed_connections + res.unanswered : null;
                return (
                  <tr data-run={r.id} data-state={r.state}>
                    <td>
                      <input type="checkbox" data-testid={"exp-pick-" + r.id} disabled={!res} checked={picked.includes(r.id)}
                        onChange={(e) => setPicked((p) => (e.target as HTMLInputElement).checked ? [...p, r.id] : p.filter((x) => x !== r.id))} />
                    </td>
                    <td>{r.id}</td>
                    <td>{r.spec.method} {r.spec.path}</td>
                    <td>
                      {r.spec.arrival === "burst" ? `${r.spec.burst} every ${r.spec.period_ms} ms`
                        : r.spec.arrival === "trace" ? "trace" : `${r.spec.arrival} ${r.spec.rate}/s`} · {r.spec.duration_s} s · {r.spec.connections} conns
                    </td>
                    <td class={r.state === "failed" ? "error" : ""}>{r.state}{r.error ? ": " + r.error : ""}</td>
                    <td>{res?.ok ?? ""}</td>
                    <td>{errs ?? ""}</td>
                    <td>{res ? res.throughput.toFixed(1) : ""}</td>
                    <td>{res ? (res.latency_us.p50 / 1000).toFixed(2) + " ms" : ""}</td>
                    <td>{res ? (res.latency_us.p99 / 1000).toFixed(2) + " ms" : ""}</td>
                    <td>{res ? (res.latency_us.p999 / 1000).toFixed(2) + " ms" : ""}</td>
                    <td>
                      {d && res && (
                        <>
                          <button class="link" data-testid={"exp-json-" + r.id} onClick={() => download(`experiment-${r.id}.json`, JSON.stringify(d, null, 1), "application/json")}>JSON</button>
                          <button class="link" onClick={() => download(`experiment-${r.id}.csv`, csv(d), "text/csv")}>CSV</button>
                        </>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h2>Compare</h2>
        <Compare runs={picked.map((id) => details[id]).filter(Boolean)} />
      </section>
    </div>
  );
}
