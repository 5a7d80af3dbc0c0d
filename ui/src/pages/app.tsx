// One app: its trigger graph with live per-function numbers, recent logs
// (follow, filter) and an invoke console.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, apiJson, ApiError, AppGraph, AppInfo, LogEntry, parseLogs } from "../api";
import { buildGraph, GEdge, GNode } from "../graph";
import { fmtMs, histDelta, history, quantile, Sample, subscribe, total } from "../history";
import { watch } from "../live";

const W = 190, H = 54, GX = 300, GY = 80;

interface FnStats {
  calls: number;
  errors: number;
  p50: number | null;
  p99: number | null;
}

// Calls and errors since start; latency over the last minute.
function fnStats(app: string, fn: string, samples: Sample[], bounds: number[]): FnStats {
  const last = samples[samples.length - 1];
  if (!last) return { calls: 0, errors: 0, p50: null, p99: null };
  const ago = samples.find((s) => s.t >= last.t - 60000);
  const base = ago === last ? undefined : ago;
  const d = histDelta(base, last, "wl_invocation_seconds", { app, fn });
  return {
    calls: total(last, "wl_invocations_total", { app, fn }),
    errors: total(last, "wl_invocations_total", { app, fn, result: "error" }),
    p50: quantile(d, 0.5, bounds),
    p99: quantile(d, 0.99, bounds),
  };
}

// What does not change while the page is open: the graph's boxes, arrows
// and where its labels go, as vnodes Preact finds unchanged and skips.
function layoutOf(app: string, graph: AppGraph) {
  const { nodes, edges } = buildGraph(app, graph);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const pos = (n: GNode) => ({ x: 10 + n.layer * GX, y: 10 + n.row * GY });
  const width = 20 + (Math.max(...nodes.map((n) => n.layer)) + 1) * GX;
  const height = 20 + Math.max(...nodes.map((n) => n.row + 1)) * GY + H;
  const edgePath = (e: GEdge) => {
    const a = pos(byId.get(e.from)!), b = pos(byId.get(e.to)!);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    if (x2 > x1) return `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`;
    // Back to an earlier layer (a trigger cycle): loop below.
    const low = Math.max(y1, y2) + H;
    return `M${x1},${y1} C${x1 + 60},${low} ${x2 - 60},${low} ${x2},${y2}`;
  };
  const edgeShapes = edges.map((e) => {
    const a = pos(byId.get(e.from)!), b = pos(byId.get(e.to)!);
    // Forward edges are labelled above their middle; edges back to an
    // earlier layer at the bottom of their loop.
    const back = b.x <= a.x + W;
    return {
      e,
      // A trigger edge carries the count of the function it triggers.
      countOf: e.kind === "access" ? undefined : byId.get(e.to)!.label,
      lx: (a.x + W + b.x) / 2,
      ly: back ? Math.max(a.y, b.y) + H + H * 0.75 - 2 : (a.y + b.y) / 2 + H / 2 - 6,
      path: (
        <path d={edgePath(e)} fill="none" stroke={e.kind === "trigger" ? "#9333ea" : "#64748b"}
          stroke-dasharray={e.kind === "access" ? "4 3" : undefined} marker-end="url(#arrow)" />
      ),
    };
  });
  const nodeShapes = nodes.map((n) => {
    const fill = n.kind === "http" ? "#dbeafe" : n.kind === "fn" ? "#fef3c7" : "#ede9fe";
    return {
      n,
      transform: `translate(${pos(n).x},${pos(n).y})`,
      box: (
        <>
          <rect width={W} height={H} rx={n.kind === "kv" ? 20 : 6} fill={fill} stroke="#94a3b8" />
          <text x={10} y={20} font-weight="600">{n.label.length > 26 ? n.label.slice(0, 25) + "…" : n.label}</text>
          {n.kind === "kv" && <text x={10} y={40} fill="#6b21a8">key pattern</text>}
          {n.kind === "http" && <text x={10} y={40} fill="#1e40af">HTTP entry</text>}
        </>
      ),
    };
  });
  const fns = nodes.filter((n) => n.kind === "fn").map((n) => n.label);
  return { width, height, edgeShapes, nodeShapes, fns };
}

function statsOf(app: string, fns: string[]): Map<string, FnStats> {
  const { samples, bounds } = history();
  return new Map(fns.map((fn) => [fn, fnStats(app, fn, samples, bounds)]));
}

function Graph(props: { app: string; graph: AppGraph }) {
  const layout = useMemo(() => layoutOf(props.app, props.graph), [props.app, props.graph]);
  const [stats, setStats] = useState(() => statsOf(props.app, layout.fns));
  useEffect(() => {
    // Renders only when a number on the graph changed, not on every sample.
    let shown = "";
    const update = () => {
      const next = statsOf(props.app, layout.fns);
      const key = JSON.stringify(Array.from(next));
      if (key !== shown) {
        shown = key;
        setStats(next);
      }
    };
    update();
    return subscribe(update);
  }, [layout]);
  return (
    <div class="graph">
      <svg width={layout.width} height={layout.height + 40} data-testid="trigger-graph">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" fill="#64748b" />
          </marker>
        </defs>
        {layout.edgeShapes.map(({ e, countOf, lx, ly, path }) => {
          const count = countOf === undefined ? undefined : stats.get(countOf)?.calls;
          const label = [e.label, count !== undefined ? String(count) : ""].filter(Boolean).join(" · ");
          return (
            <g key={e.from + "->" + e.to} data-edge={`${e.from}->${e.to}`} data-kind={e.kind}>
              {path}
              <text x={lx} y={ly} text-anchor="middle" fill="#475569">
                {label}
              </text>
            </g>
          );
        })}
        {layout.nodeShapes.map(({ n, transform, box }) => {
          const s = n.kind === "fn" ? stats.get(n.label) : undefined;
          return (
            <g key={n.id} data-node={n.id} transform={transform}>
              {box}
              {s && (
                <text x={10} y={40} fill={s.errors ? "#b91c1c" : "#334155"} data-stats={n.label}>
                  {`${s.calls} calls · ${s.errors} err · ${fmtMs(s.p50)}/${fmtMs(s.p99)}`}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <p class="muted">
        Function boxes: invocations and errors since the node started, p50/p99 latency over the last minute. Dashed:
        the function's access to a key pattern; purple: a kv_set trigger (with the triggered function's count).
      </p>
    </div>
  );
}

function Logs(props: { app: string }) {
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [follow, setFollow] = useState(true);
  const [filter, setFilter] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    // The text as last shown: an unchanged one is neither parsed nor rendered.
    let shown: string | undefined;
    const take = (body: string | null | undefined, err: string) => {
      if (body === null || body === undefined) {
        shown = undefined;
        return () => setError(err);
      }
      if (body === shown) return;
      shown = body;
      const parsed = parseLogs(body);
      return () => (setEntries(parsed), setError(""));
    };
    if (follow) {
      return watch({
        params: () => ({ logs: props.app, limit: "200" }),
        take: (r, err) => take(r?.logs, r ? r.logs_error ?? "" : err),
      });
    }
    // Not following: the logs as they are now, once.
    api(`/api/apps/${encodeURIComponent(props.app)}/logs?limit=200`)
      .then((r) => r.text())
      .then((body) => take(body, ""), (e) => take(null, (e as ApiError).message))
      .then((apply) => apply && apply());
  }, [props.app, follow]);
  const f = filter.toLowerCase();
  const shown = entries.filter((e) => !f || (e.text + " " + e.fn + " " + e.requestId).toLowerCase().includes(f));
  const seen = new Map<string, number>();
  const keys = shown.map((e) => {
    const k = e.unixMs + " " + e.requestId + " " + e.fn;
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    return k + " " + n;
  });
  return (
    <section>
      <h2>Recent logs</h2>
      <p>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> follow
        </label>{" "}
        <input placeholder="filter (text, function, request id)" value={filter} data-testid="log-filter"
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)} size={36} />{" "}
        <span class="muted">{shown.length} of {entries.length}</span>
      </p>
      {error && <p class="error">{error}</p>}
      <div class="logs" data-testid="logs">
        {shown.length === 0 && <span class="muted">no log entries</span>}
        {shown.map((e, i) => (
          // Keyed: when new lines push old ones out, the kept lines' DOM stays.
          <div key={keys[i]}>
            {new Date(e.unixMs).toISOString().slice(11, 23)} <span class="req">{e.requestId}</span>{" "}
            <span class="fn">{e.fn}</span> {e.text}
          </div>
        ))}
      </div>
    </section>
  );
}

function Invoke(props: { app: string; graph: AppGraph }) {
  const routes: { label: string; method: string; path: string }[] = [];
  for (const fn of props.graph.fns) {
    for (const ev of fn.events) {
      if (ev.kind === "http_app") routes.push({ label: `POST /${props.app} (${fn.name})`, method: "POST", path: "/" + props.app });
      if (ev.kind === "http") {
        const m = ev.method === "ANY" ? "POST" : ev.method!;
        routes.push({ label: `${m} /${props.app}${ev.path} (${fn.name})`, method: m, path: `/${props.app}${ev.path}` });
      }
    }
  }
  const [route, setRoute] = useState(0);
  const [body, setBody] = useState("");
  const [key, setKey] = useState("");
  const [result, setResult] = useState<{ status: number; requestId: string; ms: number; output: string } | null>(null);
  const [busy, setBusy] = useState(false);
  if (routes.length === 0) return <section><h2>Invoke</h2><p class="muted">This app has no HTTP function.</p></section>;
  const run = async () => {
    const r = routes[route];
    setBusy(true);
    const t0 = performance.now();
    try {
      const headers: Record<string, string> = {};
      if (key) headers["Authorization"] = "Bearer " + key;
      const resp = await fetch(r.path, { method: r.method, body: r.method === "GET" ? undefined : body, headers });
      const output = await resp.text();
      setResult({ status: resp.status, requestId: resp.headers.get("X-Request-Id") ?? "", ms: performance.now() - t0, output });
    } catch (e) {
      setResult({ status: 0, requestId: "", ms: performance.now() - t0, output: "the node does not answer: " + String(e) });
    }
    setBusy(false);
  };
  return (
    <section>
      <h2>Invoke</h2>
      <p>
        <select data-testid="invoke-route" onChange={(e) => setRoute(Number((e.target as HTMLSelectElement).value))}>
          {routes.map((r, i) => <option value={i}>{r.label}</option>)}
        </select>{" "}
        <input placeholder="invoke key (auth: key apps)" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
      </p>
      <textarea rows={4} placeholder="request body" data-testid="invoke-body" value={body}
        onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} />
      <p><button data-testid="invoke-button" disabled={busy} onClick={run}>Invoke</button></p>
      {result && (
        <div data-testid="invoke-result">
          <p class={result.status === 200 ? "ok" : "error"}>
            HTTP <span data-testid="invoke-status">{result.status}</span> · {result.ms.toFixed(1)} ms
            {result.requestId && <> · request <code>{result.requestId}</code></>}
          </p>
          <pre data-testid="invoke-output">{result.output}</pre>
        </div>
      )}
    </section>
  );
}

export function AppPage(props: { name: string }) {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [graph, setGraph] = useState<AppGraph | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const base = "/api/apps/" + encodeURIComponent(props.name);
    Promise.all([apiJson<AppInfo>(base), apiJson<AppGraph>(base + "/graph")])
      .then(([i, g]) => (setInfo(i), setGraph(g)))
      .catch((e) => setError((e as ApiError).message));
  }, [props.name]);
  return (
    <div>
      <p><a href="#/apps">← Apps</a></p>
      <section>
        <h2>{props.name}</h2>
        {error && <p class="error">{error}</p>}
        {info && (
          <p class="muted">
            version <code>{info.version.slice(0, 12)}</code> · {info.functions.length} functions · wasm {info.wasm_bytes} bytes ·
            compile {info.from_cache ? "cached" : info.compile_ms + " ms"}
            {info.warnings.map((w) => <div class="error">{w}</div>)}
          </p>
        )}
        {graph && <Graph app={props.name} graph={graph} />}
      </section>
      {graph && <Invoke app={props.name} graph={graph} />}
      <Logs app={props.name} />
    </div>
  );
}
