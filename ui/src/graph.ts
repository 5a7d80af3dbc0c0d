// The trigger graph of an app, from its parsed app.yaml
// (GET /api/apps/APP/graph): HTTP entry -> function -> key pattern (with
// the function's access modes) -> function its kv_set event triggers.
import { AppGraph } from "./api";

export interface GNode {
  id: string; // "http:<route>", "fn:<name>", "kv:<pattern>"
  kind: "http" | "fn" | "kv";
  label: string;
  layer: number;
  row: number;
}
export interface GEdge {
  from: string;
  to: string;
  label: string;
  kind: "http" | "access" | "trigger";
}

export function buildGraph(app: string, g: AppGraph): { nodes: GNode[]; edges: GEdge[] } {
  const nodes = new Map<string, GNode>();
  const edges: GEdge[] = [];
  const add = (id: string, kind: GNode["kind"], label: string) => {
    if (!nodes.has(id)) nodes.set(id, { id, kind, label, layer: -1, row: 0 });
  };
  for (const fn of g.fns) {
    add("fn:" + fn.name, "fn", fn.name);
    for (const ev of fn.events) {
      if (ev.kind === "http_app") {
        add("http:/" + app, "http", "GET|POST /" + app);
        edges.push({ from: "http:/" + app, to: "fn:" + fn.name, label: "", kind: "http" });
      } else if (ev.kind === "http") {
        const route = `${ev.method} /${app}${ev.path}`;
        add("http:" + route, "http", route);
        edges.push({ from: "http:" + route, to: "fn:" + fn.name, label: "", kind: "http" });
      } else if (ev.pattern) {
        add("kv:" + ev.pattern, "kv", ev.pattern);
        edges.push({ from: "kv:" + ev.pattern, to: "fn:" + fn.name, label: "kv_set", kind: "trigger" });
      }
    }
    for (const kv of fn.kvs) {
      add("kv:" + kv.pattern, "kv", kv.pattern);
      const modes = [kv.get && "get", kv.set && "set", kv.delete && "delete"].filter(Boolean).join(", ");
      edges.push({ from: "fn:" + fn.name, to: "kv:" + kv.pattern, label: modes, kind: "access" });
    }
  }
  // Layers by breadth-first distance from the HTTP entries; what no entry
  // reaches goes after them.
  const queue: GNode[] = [];
  for (const n of nodes.values()) {
    if (n.kind === "http") {
      n.layer = 0;
      queue.push(n);
    }
  }
  while (queue.length) {
    const n = queue.shift()!;
    for (const e of edges) {
      if (e.from !== n.id) continue;
      const t = nodes.get(e.to)!;
      if (t.layer < 0) {
        t.layer = n.layer + 1;
        queue.push(t);
      }
    }
  }
  const maxLayer = Math.max(0, ...Array.from(nodes.values(), (n) => n.layer));
  const rows = new Map<number, number>();
  for (const n of nodes.values()) {
    if (n.layer < 0) n.layer = maxLayer + 1;
    n.row = rows.get(n.layer) ?? 0;
    rows.set(n.layer, n.row + 1);
  }
  return { nodes: Array.from(nodes.values()), edges };
}
