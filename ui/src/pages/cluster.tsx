// The nodes of the cluster (GET /api/nodes) with live updates; a dev node
// (no cluster) shows itself from the metrics history.
import { useEffect, useState } from "preact/hooks";
import { apiJson, ApiError, humanBytes, NodeInfo } from "../api";
import { history, subscribe, total } from "../history";

export function ClusterPage() {
  const [nodes, setNodes] = useState<NodeInfo[] | null>(null);
  const [leader, setLeader] = useState<number | null | undefined>(undefined);
  const [single, setSingle] = useState(false);
  const [error, setError] = useState("");
  const [, tick] = useState(0);
  useEffect(() => {
    const load = async () => {
      try {
        setNodes(await apiJson<NodeInfo[]>("/api/nodes"));
        // The raft leader of the meta nodes, as this node sees it.
        const meta = await apiJson<{ meta: boolean; leader?: number | null }>("/api/meta");
        setLeader(meta.meta ? meta.leader ?? null : undefined);
        setError("");
      } catch (e) {
        if ((e as ApiError).status === 404) setSingle(true);
        else setError((e as ApiError).message);
      }
    };
    void load();
    const t = window.setInterval(load, 2000);
    const unsub = subscribe(() => tick((x) => x + 1));
    return () => (window.clearInterval(t), unsub());
  }, []);
  const last = history().samples.slice(-1)[0];
  return (
    <section>
      <h2>Cluster</h2>
      {error && <p class="error">{error}</p>}
      {single && (
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
      )}
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
              <tr data-node-id={n.id}>
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
      <p class="muted">Refreshes every 2 s.</p>
    </section>
  );
}
