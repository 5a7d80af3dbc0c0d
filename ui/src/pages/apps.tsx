// Apps: what is deployed, deploying a folder or a tar chosen in the
// browser (with upload progress, and a validation error shown at its
// app.yaml line), and deleting with a confirmation.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, AppInfo, token } from "../api";
import { every } from "../refresh";
import { readTar, TarFile, writeTar } from "../tar";

type DeployState =
  | { phase: "idle" }
  | { phase: "uploading"; sent: number; total: number }
  | { phase: "compiling" }
  | { phase: "done"; message: string }
  | { phase: "failed"; message: string; yaml?: string; line?: number };

// POST /api/apps?name= with upload progress (fetch has none for uploads).
function upload(name: string, body: Blob, onProgress: (sent: number, total: number) => void) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", "/api/apps?name=" + encodeURIComponent(name));
    x.setRequestHeader("Authorization", "Bearer " + token());
    x.setRequestHeader("Content-Type", "application/x-tar");
    x.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    x.onload = () => resolve({ status: x.status, text: x.responseText });
    x.onerror = () => reject(new Error("the node does not answer"));
    x.send(body);
  });
}

async function folderFiles(list: FileList): Promise<TarFile[]> {
  const out: TarFile[] = [];
  for (const f of Array.from(list)) {
    // webkitRelativePath is "<chosen folder>/<path>": the package holds <path>.
    const rel = f.webkitRelativePath.split("/").slice(1).join("/") || f.name;
    out.push({ path: rel, data: new Uint8Array(await f.arrayBuffer()) });
  }
  return out;
}

function Deploy(props: { onDeployed: () => void }) {
  const [name, setName] = useState("");
  const [files, setFiles] = useState<TarFile[] | null>(null);
  const [tar, setTar] = useState<Blob | null>(null);
  const [state, setState] = useState<DeployState>({ phase: "idle" });

  const choose = async (list: FileList | null, isTar: boolean) => {
    if (!list || list.length === 0) return;
    setState({ phase: "idle" });
    if (isTar) {
      const f = list[0];
      const buf = new Uint8Array(await f.arrayBuffer());
      setTar(f);
      setFiles(readTar(buf).map((e) => ({ ...e, path: e.path.replace(/^\.\//, "") })));
      if (!name) setName(f.name.replace(/\.tar$/, ""));
    } else {
      const fs = await folderFiles(list);
      setFiles(fs);
      setTar(null);
      if (!name) setName(list[0].webkitRelativePath.split("/")[0]);
    }
  };

  const deploy = async () => {
    if (!files) return;
    const yaml = files.find((f) => f.path === "app.yaml");
    const yamlText = yaml ? new TextDecoder().decode(yaml.data) : undefined;
    // The node compiles app.wasm; building sources is the CLI's job.
    if (!yaml || !files.some((f) => f.path === "app.wasm")) {
      setState({
        phase: "failed",
        message:
          "the package needs app.yaml and app.wasm at its top level" +
          (yaml ? ": build app.wasm first (waverless build DIR)" : ""),
      });
      return;
    }
    let body: Blob;
    try {
      body = tar ?? writeTar(files);
    } catch (e) {
      setState({ phase: "failed", message: String((e as Error).message) });
      return;
    }
    setState({ phase: "uploading", sent: 0, total: body.size });
    try {
      const r = await upload(name, body, (sent, total) =>
        setState(sent < total ? { phase: "uploading", sent, total } : { phase: "compiling" }),
      );
      if (r.status === 200) {
        setState({ phase: "done", message: "deployed " + name });
        props.onDeployed();
      } else {
        const m = /app\.yaml:(\d+)/.exec(r.text);
        setState({
          phase: "failed",
          message: `deploy failed (HTTP ${r.status}): ${r.text.trim()}`,
          yaml: yamlText,
          line: m ? Number(m[1]) : undefined,
        });
      }
    } catch (e) {
      setState({ phase: "failed", message: String((e as Error).message) });
    }
  };

  return (
    <section>
      <h2>Deploy an app</h2>
      <div class="row">
        <label>
          Folder (with app.yaml and a built app.wasm):{" "}
          <input
            type="file"
            data-testid="deploy-folder"
            {...{ webkitdirectory: true }}
            onChange={(e) => choose((e.target as HTMLInputElement).files, false)}
          />
        </label>
        <label>
          or a tar of it:{" "}
          <input
            type="file"
            accept=".tar,application/x-tar"
            data-testid="deploy-tar"
            onChange={(e) => choose((e.target as HTMLInputElement).files, true)}
          />
        </label>
      </div>
      <p>
        Name:{" "}
        <input data-testid="deploy-name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />{" "}
        <button data-testid="deploy-button" disabled={!files || !name || state.phase === "uploading" || state.phase === "compiling"} onClick={deploy}>
          Deploy
        </button>{" "}
        {files && <span class="muted">{files.length} files</span>}
      </p>
      {state.phase === "uploading" && (
        <p>
          Uploading <progress value={state.sent} max={state.total} /> {Math.round((100 * state.sent) / Math.max(1, state.total))}%
        </p>
      )}
      {state.phase === "compiling" && <p data-testid="deploy-status">Uploaded; compiling on the node…</p>}
      {state.phase === "done" && <p class="ok" data-testid="deploy-status">{state.message}</p>}
      {state.phase === "failed" && (
        <div data-testid="deploy-error">
          <p class="error">{state.message}</p>
          {state.yaml && state.line && (
            <pre data-testid="deploy-error-yaml">
              {state.yaml.split("\n").map((l, i) => (
                <span class={i + 1 === state.line ? "hl" : ""} data-line={i + 1}>
                  {String(i + 1).padStart(3) + "  " + l + "\n"}
                </span>
              ))}
            </pre>
          )}
        </div>
      )}
    </section>
  );
}

export function AppsPage() {
  const [apps, setApps] = useState<AppInfo[] | null>(null);
  const [error, setError] = useState("");
  const [confirm, setConfirm] = useState("");
  // The list as last shown: an unchanged one is neither parsed nor rendered.
  const shown = useRef<string | undefined>(undefined);
  const fetchList = async () => {
    try {
      const body = await (await api("/api/apps")).text();
      if (body === shown.current) return;
      shown.current = body;
      const list = JSON.parse(body) as AppInfo[];
      return () => (setApps(list), setError(""));
    } catch (e) {
      shown.current = undefined;
      return () => setError((e as ApiError).message);
    }
  };
  const load = async () => {
    const apply = await fetchList();
    if (apply) apply();
  };
  // The list changes only by deploys and deletes: every 5 s is enough.
  useEffect(() => every(fetchList, 5000), []);
  const remove = async (name: string) => {
    try {
      await api("/api/apps/" + encodeURIComponent(name), { method: "DELETE" });
      setConfirm("");
      await load();
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  return (
    <div>
      <section>
        <h2>Apps</h2>
        {error && <p class="error">{error}</p>}
        {apps && apps.length === 0 && <p class="muted">No apps deployed.</p>}
        {apps && apps.length > 0 && (
          <table data-testid="apps-table">
            <thead>
              <tr>
                <th>name</th>
                <th>version</th>
                <th>functions</th>
                <th>compile</th>
                <th>warnings</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {apps.map((a) => (
                <tr data-app={a.name}>
                  <td>
                    <a href={"#/apps/" + encodeURIComponent(a.name)}>{a.name}</a>
                  </td>
                  <td>
                    <code>{a.version.slice(0, 12)}</code>
                  </td>
                  <td>{a.functions.join(", ")}</td>
                  <td>{a.from_cache ? "cached" : a.compile_ms + " ms"}</td>
                  <td class={a.warnings.length ? "error" : "muted"}>{a.warnings.join("\n") || "-"}</td>
                  <td>
                    {confirm === a.name ? (
                      <span>
                        Delete {a.name} and all its keys?{" "}
                        <button class="danger" data-testid="confirm-delete" onClick={() => remove(a.name)}>
                          Delete
                        </button>{" "}
                        <button onClick={() => setConfirm("")}>Cancel</button>
                      </span>
                    ) : (
                      <button data-testid={"delete-" + a.name} onClick={() => setConfirm(a.name)}>
                        Delete…
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <Deploy onDeployed={load} />
    </div>
  );
}
