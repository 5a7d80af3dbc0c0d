// The node's metrics history, fetched on the page's refresh (live.ts, GET
// /api/console) with since= so each refresh carries only the new
// sample(s). Samples never change once taken, so what the charts derive
// from one (a family's total, a histogram's buckets) is computed once per
// sample and kept with it: a refresh costs the new samples, not the window.
import { LivePart, watch } from "./live";

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

const KEEP = 300;

let samples: Sample[] = [];
let bounds: number[] = [];
let error = "";
let stopWatching: (() => void) | undefined;
const listeners = new Set<() => void>();

const part: LivePart = {
  params: () => ({ since: String(samples.length ? samples[samples.length - 1].t : 0) }),
  take(r, err) {
    // Only samples after the newest held: two answers may overlap.
    const newest = samples.length ? samples[samples.length - 1].t : 0;
    // (No history in an answer to a request sent before this part joined.)
    const h = r?.history;
    if (r && !h) return;
    const fresh = h ? h.samples.filter((s) => s.t > newest) : [];
    // Nothing new (a refresh faster than the node's sampling): no render.
    if (fresh.length === 0 && err === error) return;
    return () => {
      if (h) bounds = h.bounds;
      error = err;
      if (fresh.length) {
        // A new array: what pages memoize on the samples sees the change.
        const drop = Math.max(0, samples.length + fresh.length - KEEP);
        samples = samples.slice(drop).concat(fresh);
      }
      listeners.forEach((f) => f());
    };
  },
};

// Subscribes a page; the history refreshes while at least one is subscribed.
export function subscribe(f: () => void): () => void {
  listeners.add(f);
  if (!stopWatching) stopWatching = watch(part);
  return () => {
    listeners.delete(f);
    if (listeners.size === 0 && stopWatching) {
      stopWatching();
      stopWatching = undefined;
    }
  };
}

export function history() {
  return { samples, bounds, error };
}

// `name{a="x",b="y"}` -> name and labels. A sample holds the same few dozen
// series names as the one before: each is parsed once.
const parsed = new Map<string, { name: string; labels: Record<string, string> }>();
export function parseSeries(key: string): { name: string; labels: Record<string, string> } {
  let p = parsed.get(key);
  if (p) return p;
  const brace = key.indexOf("{");
  const labels: Record<string, string> = {};
  if (brace >= 0) {
    const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(key.slice(brace)))) labels[m[1]] = m[2].replace(/\\(.)/g, "$1");
  }
  p = { name: brace < 0 ? key : key.slice(0, brace), labels };
  if (parsed.size > 10000) parsed.clear();  // series come and go with apps
  parsed.set(key, p);
  return p;
}

export type Match = Record<string, string | undefined>;

function matches(key: string, name: string, want: Match): boolean {
  const s = parseSeries(key);
  if (s.name !== name) return false;
  for (const k in want) {
    const v = want[k];
    if (v !== undefined && s.labels[k] !== v) return false;
  }
  return true;
}

function queryKey(name: string, want: Match): string {
  let k = name;
  for (const l of Object.keys(want).sort()) if (want[l] !== undefined) k += "\0" + l + "=" + want[l];
  return k;
}

// Per sample: the totals and summed histograms asked of it so far.
const derived = new WeakMap<Sample, Map<string, number | number[]>>();
function memo<T extends number | number[]>(sample: Sample, key: string, f: () => T): T {
  let m = derived.get(sample);
  if (!m) derived.set(sample, (m = new Map()));
  let v = m.get(key) as T | undefined;
  if (v === undefined) m.set(key, (v = f()));
  return v;
}

// Sum of the matching series in one sample.
export function total(sample: Sample, name: string, want: Match = {}): number {
  return memo(sample, "v\0" + queryKey(name, want), () => {
    let sum = 0;
    for (const k in sample.v) if (matches(k, name, want)) sum += sample.v[k];
    return sum;
  });
}

// Bucket counts of the matching histograms in one sample, summed.
function buckets(sample: Sample, name: string, want: Match): number[] {
  return memo(sample, "h\0" + queryKey(name, want), () => {
    const out: number[] = [];
    for (const k in sample.h) {
      if (!matches(k, name, want)) continue;
      sample.h[k].b.forEach((c, i) => (out[i] = (out[i] ?? 0) + c));
    }
    return out;
  });
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
  const after = buckets(to, name, want);
  if (!from) return after.slice();
  const before = buckets(from, name, want);
  // A series gone since (its app removed) would count negative.
  return after.map((c, i) => Math.max(0, c - (before[i] ?? 0)));
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
