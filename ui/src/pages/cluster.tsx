// The nodes of the cluster (GET /api/nodes, on the page's refresh) with live updates; a dev node
// (no cluster) shows itself from the metrics history.
import { useEffect, useState } from "preact/hooks";
import { humanBytes, NodeInfo } from "../api";
import { history, subscribe, total } from "../history";
import { watch } from "../live";
import { refreshSeconds } from "../refresh";

// A dev node: itself, from the metrics history.
function SingleNode() {
  const [, tick] = useState(0);
  useEffect(() => subscribe(() => tick((x) => x + 1)), []);
  const { samples } = history();
  const last = samples[samples.length - 1];
  return (
    <div data-testid="single-node">
      <p>This node runs alone (<code>waverless dev</code>): meta, master and worker in one process.</p>
      {last && (
        <table>
          <tbody>
            <tr><th>RSS</th><td>{humanBytes(total(last, "wl_process_rss_bytes"))}</td></tr>
            <tr><th>instances</th><td>{total(last, "wl_instances")}</td></tr>
            <tr><th>requests in flight</th><td>{total(last, "wl_requests_inflight")}</td></tr>
            <tr><th>HTTP requests</th><td>{total(last, "wl_http_requests_total")}</td></tr>
          </tbody>
        </table>
      )}
    </div>
  );
}

export function ClusterPage() {
  const [nodes, setNodes] = useState<NodeInfo[] | null>(null);
  const [leader, setLeader] = useState<number | null | undefined>(undefined);
  const [single, setSingle] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => {
    // The answer as last applied: an unchanged one is not rendered again.
    let seen = "";
    const stop = watch({
      params: () => ({ nodes: "1" }),
      take(r, err) {
        if (!r) {
          seen = "";
          return () => setError(err);
        }
        // A dev node has no cluster, and never will: stop asking.
        if (r.nodes === null) return () => (stop(), setSingle(true), setError(""));
        const key = JSON.stringify([r.nodes, r.meta]);
        if (key === seen) return;
        seen = key;
        const { nodes: list, meta } = r;
        // The raft leader of the meta nodes, as this node sees it.
        return () => (setNodes(list), setLeader(meta?.meta ? meta.leader ?? null : undefined), setError(""));
      },
    });
    return stop;
  }, []);
  return (
    <section>
      <h2>Cluster</h2>
      {error && <p class="error">{error}</p>}
      {single && <SingleNode />}
      {nodes && (
        <p data-testid="cluster-summary">
          {nodes.filter((n) => n.alive).length} of {nodes.length} nodes alive
          {leader !== undefined && <> · meta raft leader: {leader === null ? "none (no quorum?)" : "node " + leader}</>}
        </p>
      )}
      {nodes && (
        <table data-testid="nodes-table">
          <thead>
            <tr><th>id</th><th>addr</th><th>roles</th><th>state</th><th>load</th><th>running</th><th>instances</th><th>RSS</th><th>last seen</th></tr>
          </thead>
          <tbody>
            {nodes.map((n) => (
              <tr key={n.id} data-node-id={n.id}>
                <td>{n.id}</td>
                <td>{n.addr}</td>
                <td>
                  {n.roles.join(", ")}
                  {leader === n.id && <strong> (raft leader)</strong>}
                </td>
                <td class={n.alive ? "ok" : "error"}>{n.alive ? "alive" : "down"}</td>
                <td>{n.load}</td>
                <td>{n.running}</td>
                <td>{n.instances}</td>
                <td>{humanBytes(n.rss_bytes)}</td>
                <td>{n.last_seen_ms_ago < 0 ? "never" : n.last_seen_ms_ago + " ms ago"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="muted">Refreshes every {refreshSeconds()} s.</p>
    </section>
  );
}
