// The Waverless web console: Apps, one app's trigger graph / logs / invoke
// console, Metrics, Cluster and Experiments. Routes live in the URL hash so the node
// serves one index.html.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { onRefused, setToken, token } from "./api";
import { AppsPage } from "./pages/apps";
import { AppPage } from "./pages/app";
import { MetricsPage } from "./pages/metrics";
import { ClusterPage } from "./pages/cluster";
import { ExperimentsPage } from "./pages/experiments";
import "./style.css";

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/apps");
  useEffect(() => {
    const f = () => setHash(location.hash || "#/apps");
    window.addEventListener("hashchange", f);
    return () => window.removeEventListener("hashchange", f);
  }, []);
  return hash;
}

function Login(props: { refused: boolean; onDone: () => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        props.onDone();
      }}
    >
      <h2>Waverless console</h2>
      <p>
        The console calls the node's control API, which needs its admin token: the file
        <code> admin.token</code> in the node's data folder (or its <code>--token-file</code>). It
        is kept in this tab only (sessionStorage).
      </p>
      {props.refused && <p class="error">The node refused that token.</p>}
      <input
        type="password"
        name="token"
        placeholder="admin token"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        autoFocus
      />
      <button type="submit">Sign in</button>
    </form>
  );
}

function Shell() {
  const hash = useHash();
  const [signedIn, setSignedIn] = useState(token() !== "");
  const [refused, setRefused] = useState(false);
  useEffect(
    () =>
      onRefused(() => {
        setToken("");
        setRefused(true);
        setSignedIn(false);
      }),
    [],
  );
  if (!signedIn) return <Login refused={refused} onDone={() => (setRefused(false), setSignedIn(true))} />;
  const [, page, arg] = hash.split("/");
  const nav = (href: string, label: string) => (
    <a href={href} class={hash.startsWith(href) ? "active" : ""}>
      {label}
    </a>
  );
  return (
    <div>
      <header>
        <strong>Waverless</strong>
        {nav("#/apps", "Apps")}
        {nav("#/metrics", "Metrics")}
        {nav("#/cluster", "Cluster")}
        {nav("#/experiments", "Experiments")}
        <button
          class="link"
          onClick={() => {
            setToken("");
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {page === "apps" && !arg && <AppsPage />}
        {page === "apps" && arg && <AppPage name={decodeURIComponent(arg)} />}
        {page === "metrics" && <MetricsPage />}
        {page === "cluster" && <ClusterPage />}
        {page === "experiments" && <ExperimentsPage />}
      </main>
    </div>
  );
}

render(<Shell />, document.getElementById("root")!);
