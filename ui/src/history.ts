// The node's metrics history (GET /api/metrics/history), polled once every
// two seconds by whichever pages are open, with ?since= so each poll carries
// only the new sample(s): the console's whole cost to the node is one small
// JSON per refresh.
import { apiJson } from "./api";

export interface Hist {
  b: number[];
  n: number;
  s: number;
}
export interface Sample {
  t: number;
  v: Record<string, number>;
  h: Record<string, Hist>;
}
interface HistoryResponse {
  interval_ms: number;
  bounds: number[];
  samples: Sample[];
}

const KEEP = 300;
export const POLL_MS = 2000;

let samples: Sample[] = [];
let bounds: number[] = [];
let error = "";
let timer: number | undefined;
const listeners = new Set<() => void>();

async function poll() {
  const since = samples.length ? samples[samples.length - 1].t : 0;
  try {
    const r = await apiJson<HistoryResponse>("/api/metrics/history?since=" + since);
    bounds = r.bounds;
    samples = samples.concat(r.samples).slice(-KEEP);
    error = "";
  } catch (e) {
    error = String((e as Error).message ?? e);
  }
  listeners.forEach((f) => f());
}

// Subscribes a page; polling runs while at least one is subscribed.
export function subscribe(f: () => void): () => void {
  listeners.add(f);
  if (timer === undefined) {
    void poll();
    timer = window.setInterval(poll, POLL_MS);
  }
  return () => {
    listeners.delete(f);
    if (listeners.size === 0 && timer !== undefined) {
      window.clearInterval(timer);
      timer = undefined;
    }
  };
}

export function history() {
  return { samples, bounds, error };
}

// `name{a="x",b="y"}` -> name and labels.
export function parseSeries(key: string): { name: string; labels: Record<string, string> } {
  const brace = key.indexOf("{");
  if (brace < 0) return { name: key, labels: {} };
  const labels: Record<string, string> = {};
  const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(key.slice(brace)))) labels[m[1]] = m[2].replace(/\\(.)/g, "$1");
  return { name: key.slice(0, brace), labels };
}

export type Match = Record<string, string | undefined>;

function matches(key: string, name: string, want: Match): boolean {
  const s = parseSeries(key);
  if (s.name !== name) return false;
  for (const [k, v] of Object.entries(want)) {
    if (v !== undefined && s.labels[k] !== v) return false;
  }
  return true;
}

// Sum of the matching series in one sample.
export function total(sample: Sample, name: string, want: Match = {}): number {
  let sum = 0;
  for (const [k, v] of Object.entries(sample.v)) if (matches(k, name, want)) sum += v;
  return sum;
}

// Per-second rate of a counter between consecutive samples: [t (s), rate].
export function rates(list: Sample[], name: string, want: Match = {}): [number[], number[]] {
  const ts: number[] = [];
  const vs: number[] = [];
  for (let i = 1; i < list.length; i++) {
    const dt = (list[i].t - list[i - 1].t) / 1000;
    if (dt <= 0) continue;
    ts.push(list[i].t / 1000);
    vs.push(Math.max(0, (total(list[i], name, want) - total(list[i - 1], name, want)) / dt));
  }
  return [ts, vs];
}

// A gauge over time: [t (s), value].
export function values(list: Sample[], name: string, want: Match = {}): [number[], number[]] {
  return [list.map((s) => s.t / 1000), list.map((s) => total(s, name, want))];
}

// Bucket counts observed between two samples, summed over matching series.
export function histDelta(from: Sample | undefined, to: Sample, name: string, want: Match = {}) {
  const out: number[] = [];
  for (const [k, h] of Object.entries(to.h)) {
    if (!matches(k, name, want)) continue;
    const before = from?.h[k];
    h.b.forEach((c, i) => (out[i] = (out[i] ?? 0) + c - (before?.b[i] ?? 0)));
  }
  return out;
}

// The q-quantile (0..1) of bucket counts, in seconds: linear within the
// bucket it falls in (the last bucket, unbounded, reports its lower edge).
export function quantile(counts: number[], q: number, bucketBounds: number[]): number | null {
  const n = counts.reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  let rank = q * n;
  for (let i = 0; i < counts.length; i++) {
    if (rank <= counts[i] && counts[i] > 0) {
      const lo = i === 0 ? 0 : bucketBounds[i - 1];
      const hi = i < bucketBounds.length ? bucketBounds[i] : lo;
      return lo + (hi - lo) * (rank / counts[i]);
    }
    rank -= counts[i];
  }
  return bucketBounds[bucketBounds.length - 1];
}

// Latency quantiles per sample interval: [t (s), p50 ms, p99 ms].
export function latencySeries(list: Sample[], want: Match = {}): [number[], (number | null)[], (number | null)[]] {
  const ts: number[] = [];
  const p50: (number | null)[] = [];
  const p99: (number | null)[] = [];
  for (let i = 1; i < list.length; i++) {
    const d = histDelta(list[i - 1], list[i], "wl_invocation_seconds", want);
    ts.push(list[i].t / 1000);
    const a = quantile(d, 0.5, bounds);
    const b = quantile(d, 0.99, bounds);
    p50.push(a === null ? null : a * 1000);
    p99.push(b === null ? null : b * 1000);
  }
  return [ts, p50, p99];
}

export function fmtMs(seconds: number | null): string {
  if (seconds === null) return "-";
  const ms = seconds * 1000;
  return ms < 1 ? (ms * 1000).toFixed(0) + " µs" : ms.toFixed(ms < 10 ? 2 : 0) + " ms";
}
