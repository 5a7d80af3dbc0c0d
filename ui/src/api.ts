// Talking to the node: every /api/* call carries the admin token the user
// typed in, kept in sessionStorage (gone when the tab closes, never in a
// cookie the node would have to check).
const TOKEN_KEY = "waverless.adminToken";

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}
export function setToken(t: string) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

// Listeners told when the node refuses the token, so the page asks again.
const refusedListeners = new Set<() => void>();
export function onRefused(f: () => void) {
  refusedListeners.add(f);
  return () => refusedListeners.delete(f);
}

export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", "Bearer " + token());
  let r: Response;
  try {
    r = await fetch(path, { ...init, headers });
  } catch (e) {
    throw new ApiError(0, "the node does not answer (" + String(e) + ")");
  }
  if (r.status === 401 || r.status === 403) {
    refusedListeners.forEach((f) => f());
    throw new ApiError(r.status, (await r.text()).trim());
  }
  if (!r.ok) throw new ApiError(r.status, (await r.text()).trim() || "HTTP " + r.status);
  return r;
}

export async function apiJson<T>(path: string): Promise<T> {
  return (await api(path)).json() as Promise<T>;
}

export interface AppInfo {
  name: string;
  version: string;
  wasm_bytes: number;
  compile_ms: number;
  from_cache: boolean;
  functions: string[];
  warnings: string[];
}

export interface GraphEvent {
  kind: "http_app" | "http" | "kv_set";
  method?: string;
  path?: string;
  pattern?: string;
}
export interface GraphKv {
  pattern: string;
  get: boolean;
  set: boolean;
  delete: boolean;
}
export interface GraphFn {
  name: string;
  line: number;
  events: GraphEvent[];
  kvs: GraphKv[];
}
export interface AppGraph {
  fns: GraphFn[];
}

export interface NodeInfo {
  id: number;
  addr: string;
  roles: string[];
  alive: boolean;
  load: number;
  running: number;
  instances: number;
  rss_bytes: number;
  cpu_seconds: number;
  last_seen_ms_ago: number;
}

// One entry of GET /api/apps/APP/logs ("<ms> req=<id> fn=<fn> | <text>",
// further lines of the text indented by four spaces).
export interface LogEntry {
  unixMs: number;
  requestId: string;
  fn: string;
  text: string;
}

export function parseLogs(body: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of body.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("    ") && out.length > 0) {
      out[out.length - 1].text += "\n" + line.slice(4);
      continue;
    }
    const m = /^(\d+) req=(\S*) fn=(\S*) \| ?(.*)$/.exec(line);
    if (m) out.push({ unixMs: Number(m[1]), requestId: m[2], fn: m[3], text: m[4] });
  }
  return out;
}

export function humanBytes(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let u = 0;
  while (b >= 1024 && u < units.length - 1) {
    b /= 1024;
    u++;
  }
  return (u === 0 ? b.toFixed(0) : b.toFixed(1)) + " " + units[u];
}
