// Everything an open page shows live comes from one request per refresh,
// GET /api/console: each part of the page (the metrics history, the node
// list, an app's logs) says what it wants in the query and takes its slice
// of the answer. Compared with a request per part, that is one wake-up of
// the network stack on both sides per refresh, whatever the page shows.
import { apiJson, NodeInfo } from "./api";
import { every, runSoon } from "./refresh";

export interface HistoryResponse {
  interval_ms: number;
  bounds: number[];
  samples: import("./history").Sample[];
}
export interface LiveResponse {
  history: HistoryResponse | null;  // null unless since= was asked
  nodes: NodeInfo[] | null;
  meta: { meta: boolean; leader?: number | null } | null;
  logs: string | null;
  logs_error?: string;
}

export interface LivePart {
  // Query parameters this part needs (since, nodes, logs, limit).
  params(): Record<string, string>;
  // The answer, or null and why the request failed; returns what to
  // apply to the page (in the one render of this refresh), or nothing.
  take(r: LiveResponse | null, error: string): (() => void) | void;
}

const parts = new Set<LivePart>();
let stop: (() => void) | undefined;

async function refresh(): Promise<(() => void) | void> {
  const q = new URLSearchParams();
  for (const p of parts) for (const [k, v] of Object.entries(p.params())) q.set(k, v);
  let r: LiveResponse | null = null;
  let error = "";
  try {
    r = await apiJson<LiveResponse>("/api/console?" + q.toString());
  } catch (e) {
    error = String((e as Error).message ?? e);
  }
  const applies: (() => void)[] = [];
  for (const p of parts) {
    const a = p.take(r, error);
    if (a) applies.push(a);
  }
  if (applies.length) return () => applies.forEach((a) => a());
}

// Adds a part to the page's refresh; it gets an answer at once.
export function watch(part: LivePart): () => void {
  parts.add(part);
  if (!stop) stop = every(refresh);
  else runSoon(refresh);
  return () => {
    parts.delete(part);
    if (parts.size === 0 && stop) {
      stop();
      stop = undefined;
    }
  };
}
