// Browser test of the web console: a real `waverless dev` node, Debian's
// chromium driven headless by playwright-core. Deploys an app from the
// page, checks the list and the trigger graph (nodes and edges), invokes
// from the console, watches the req/s chart move, sees the cluster page and
// deletes the app; saves a screenshot of each page.
//
//   node ui/tests/console.test.mjs WAVERLESS_BINARY SOURCE_DIR BUILD_DIR MODULE_CACHE [SCREENSHOT_DIR]
//
// Exit 77 (skipped) without chromium or a built console.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [binary, sourceDir, buildDir, cacheDir, shotsArg] = process.argv.slice(2);
const CHROMIUM = process.env.WL_CHROMIUM ?? "/usr/bin/chromium";
if (!binary || !sourceDir || !buildDir) {
  console.error("usage: console.test.mjs WAVERLESS_BINARY SOURCE_DIR BUILD_DIR MODULE_CACHE [SCREENSHOT_DIR]");
  process.exit(2);
}
if (!fs.existsSync(CHROMIUM)) {
  console.log(`skipped: no chromium at ${CHROMIUM} (apt-get install chromium)`);
  process.exit(77);
}
if (!fs.existsSync(path.join(path.dirname(binary), "ui", "index.html"))) {
  console.log("skipped: the console is not built next to the binary (scripts/build.sh builds it)");
  process.exit(77);
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), "wl-ui-"));
const shots = shotsArg ?? path.join(root, "shots");
fs.mkdirSync(shots, { recursive: true });
let node, browser;
const clusterNodes = [];
let failures = 0;

function check(cond, what) {
  if (cond) {
    console.log("ok   " + what);
  } else {
    failures++;
    console.log("FAIL " + what);
  }
}

function bindable(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function freePortPair() {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + 4 * Math.floor(Math.random() * 3000);
    if ((await bindable(p)) && (await bindable(p + 1)) && (await bindable(p + 2))) return p;
  }
  throw new Error("no free ports");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An app folder as the user has it (sources, app.yaml, built app.wasm), tarred.
function appTar(name, files) {
  const dir = path.join(root, "pkg", name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, from] of Object.entries(files)) {
    if (typeof from === "string" && fs.existsSync(from)) fs.copyFileSync(from, path.join(dir, f));
    else fs.writeFileSync(path.join(dir, f), from);
  }
  const tar = path.join(root, name + ".tar");
  execFileSync("tar", ["-cf", tar, "-C", dir, "."]);
  return tar;
}

async function main() {
  const port = await freePortPair();
  const base = `http://127.0.0.1:${port + 1}`;
  const data = path.join(root, "data");
  const args = ["dev", "--addr", `127.0.0.1:${port}`, "--data", data];
  if (cacheDir) args.push("--cache", cacheDir);
  node = spawn(binary, args, { stdio: ["ignore", "ignore", fs.openSync(path.join(root, "node.log"), "a")] });
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(base + "/healthz")).ok) break;
    } catch {}
    await sleep(100);
  }
  const token = fs.readFileSync(path.join(data, "admin.token"), "utf8").trim();
  const admin = { Authorization: "Bearer " + token };

  const hello = appTar("hello_ui", {
    "app.yaml": path.join(sourceDir, "apps/hello/app.yaml"),
    "hello.c": path.join(sourceDir, "apps/hello/hello.c"),
    "app.wasm": path.join(buildDir, "apps/hello/app.wasm"),
  });
  const badYaml = "# an app.yaml with a mistake on line 4\nfns:\n  fn2:\n    evnt:\n    - http_app:\n";
  const bad = appTar("bad_ui", {
    "app.yaml": badYaml,
    "app.wasm": path.join(buildDir, "apps/hello/app.wasm"),
  });
  // word_count, for a graph with key patterns and triggers: deployed over the API.
  const wc = appTar("word_count", {
    "app.yaml": path.join(sourceDir, "apps/word_count/app.yaml"),
    "app.wasm": path.join(buildDir, "apps/word_count/app.wasm"),
  });
  const wr = await fetch(base + "/api/apps?name=word_count", { method: "POST", headers: admin, body: fs.readFileSync(wc) });
  check(wr.status === 200, "word_count deployed over the API (" + wr.status + ")");

  // A fresh profile (--user-data-dir) for every run.
  browser = await chromium.launchPersistentContext(path.join(root, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(30000);

  // Sign in with the admin token.
  await page.goto(base + "/ui/");
  await page.fill("input[name=token]", "not-the-token");
  await page.click("button[type=submit]");
  await page.waitForSelector("text=The node refused that token.");
  check(true, "a wrong token is refused and asked again");
  await page.fill("input[name=token]", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=apps-table]");

  // Deploy from the page (a tar chosen in the file picker).
  // The page reads the chosen file, then names the app after it.
  const named = (n) => page.waitForFunction((n) => document.querySelector("[data-testid=deploy-name]")?.value === n, n);
  await page.setInputFiles("[data-testid=deploy-tar]", hello);
  await named("hello_ui");
  check(true, "the name comes from the tar");
  await page.click("[data-testid=deploy-button]");
  await page.waitForSelector("[data-testid=deploy-status]:has-text('deployed hello_ui')");
  await page.waitForSelector("tr[data-app=hello_ui]");
  check(true, "hello_ui deployed from the page and listed");
  const row = await page.textContent("tr[data-app=hello_ui]");
  check(row.includes("fn2"), "its row lists function fn2");
  await page.screenshot({ path: path.join(shots, "apps.png"), fullPage: true });

  // A validation error is shown at its app.yaml line.
  await page.fill("[data-testid=deploy-name]", "");
  await page.setInputFiles("[data-testid=deploy-tar]", bad);
  await named("bad_ui");
  await page.click("[data-testid=deploy-button]");
  await page.waitForSelector("[data-testid=deploy-error]");
  const err = await page.textContent("[data-testid=deploy-error] .error");
  check(/app\.yaml:4/.test(err), "the node's error names app.yaml:4: " + err.trim());
  const hl = await page.getAttribute("[data-testid=deploy-error-yaml] .hl", "data-line");
  check(hl === "4", "line 4 of app.yaml is highlighted (" + hl + ")");
  await page.screenshot({ path: path.join(shots, "deploy-error.png"), fullPage: true });

  // A folder chosen in the browser is tarred by the page and deployed.
  await page.fill("[data-testid=deploy-name]", "");
  await page.setInputFiles("[data-testid=deploy-folder]", path.join(root, "pkg", "hello_ui"));
  await named("hello_ui");
  await page.fill("[data-testid=deploy-name]", "hello_dir");
  await page.click("[data-testid=deploy-button]");
  await page.waitForSelector("[data-testid=deploy-status]:has-text('deployed hello_dir')");
  const viaDir = await fetch(base + "/hello_dir");
  check(viaDir.status === 200 && (await viaDir.text()) === "hello world", "the app deployed from a folder answers");

  // The trigger graph of word_count: entry -> split_file -> slices -> count_slice.
  await page.goto(base + "/ui/#/apps/word_count");
  await page.waitForSelector("[data-testid=trigger-graph]");
  const nodes = await page.$$eval("[data-node]", (els) => els.map((e) => e.getAttribute("data-node")).sort());
  const wantNodes = ["fn:count_slice", "fn:split_file", "http:/word_count", "kv:wordcount_part_{}_{}", "kv:wordcount_slice_{}_{}"];
  check(JSON.stringify(nodes) === JSON.stringify(wantNodes), "graph nodes " + JSON.stringify(nodes));
  const edges = await page.$$eval("[data-edge]", (els) =>
    els.map((e) => e.getAttribute("data-edge") + " " + e.getAttribute("data-kind") + " " + e.textContent));
  for (const want of [
    "http:/word_count->fn:split_file http",
    "fn:split_file->kv:wordcount_slice_{}_{} access set, delete",
    "kv:wordcount_slice_{}_{}->fn:count_slice trigger kv_set",
    "fn:count_slice->kv:wordcount_part_{}_{} access set",
    "fn:split_file->kv:wordcount_part_{}_{} access get, delete",
  ]) {
    check(edges.some((e) => e.startsWith(want)), "edge " + want);
  }

  // Invoke console.
  await page.fill("[data-testid=invoke-body]", "the cat and the hat");
  await page.click("[data-testid=invoke-button]");
  await page.waitForSelector("[data-testid=invoke-result]");
  check((await page.textContent("[data-testid=invoke-status]")) === "200", "invoke answered 200");
  const out = await page.textContent("[data-testid=invoke-output]");
  check(out === '{"and":1,"cat":1,"hat":1,"the":2}', "invoke output " + out);
  // The graph's live numbers catch up with the call (history polls every 2 s).
  await page.waitForFunction(() => {
    const t = document.querySelector("[data-stats=count_slice]")?.textContent ?? "";
    return /^[1-9]\d* calls/.test(t);
  });
  check(true, "count_slice's box shows its calls");
  await page.waitForFunction(() => (document.querySelector("[data-testid=logs]")?.textContent ?? "").length > 0);
  await page.screenshot({ path: path.join(shots, "app.png"), fullPage: true });

  // Metrics: the req/s chart moves under load.
  await page.goto(base + "/ui/#/metrics");
  await page.waitForSelector("[data-testid=chart-rps]");
  let stop = false;
  const load = (async () => {
    while (!stop) await Promise.all(Array.from({ length: 10 }, () => fetch(base + "/hello_ui").then((r) => r.text())));
  })();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-rps]")?.getAttribute("data-last") || 0) > 10, null, { timeout: 30000 });
  const rps = await page.getAttribute("[data-testid=chart-rps]", "data-last");
  check(Number(rps) > 10, "the req/s chart moved to " + Number(rps).toFixed(0) + " req/s");
  await sleep(2500);
  stop = true;
  await load;
  await page.screenshot({ path: path.join(shots, "metrics.png"), fullPage: true });

  // The page refreshes with one /api/console a refresh, none while hidden,
  // and at once when shown again.
  const seen = [];
  page.on("request", (r) => {
    const p = new URL(r.url()).pathname;
    if (p.startsWith("/api/")) seen.push(p);
  });
  await sleep(5000);
  check(seen.length >= 2 && seen.length <= 4 && seen.every((p) => p === "/api/console"),
    "the metrics page refreshes with one /api/console every 2 s: " + JSON.stringify(seen));
  const setVisibility = (v) => page.evaluate((v) => {
    Object.defineProperty(document, "visibilityState", { value: v, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, v);
  await setVisibility("hidden");
  await sleep(500);
  seen.length = 0;
  await sleep(4500);
  check(seen.length === 0, "a hidden page does not refresh: " + JSON.stringify(seen));
  await setVisibility("visible");
  await sleep(500);
  check(seen.length === 1, "shown again, it refreshes at once: " + JSON.stringify(seen));

  // Cluster: a dev node is a single node.
  await page.goto(base + "/ui/#/cluster");
  await page.waitForSelector("[data-testid=single-node] table");
  check(true, "the cluster page shows the single dev node");
  await page.screenshot({ path: path.join(shots, "cluster-dev.png"), fullPage: true });

  // Experiments: a 10-second load run by the node, then a short one; their
  // CDFs compared.
  await page.goto(base + "/ui/#/experiments");
  await page.waitForSelector("[data-testid=exp-app] option[value=hello_ui]", { state: "attached" });
  await page.selectOption("[data-testid=exp-app]", "hello_ui");
  await page.selectOption("[data-testid=exp-arrival]", "constant");
  await page.fill("[data-testid=exp-rate]", "50");
  await page.fill("[data-testid=exp-duration]", "10");
  await page.click("[data-testid=exp-run]");
  await page.waitForSelector("tr[data-run='1'][data-state=running]");
  check(true, "experiment 1 runs");
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-exp-rps]")?.getAttribute("data-last") || 0) > 20,
    null, { timeout: 20000 });
  check(true, "the live invocations/s chart follows the experiment");
  await page.waitForSelector("tr[data-run='1'][data-state=done]", { timeout: 40000 });
  const run1 = await page.textContent("tr[data-run='1']");
  check(run1.includes("500") && run1.includes("constant 50/s"), "experiment 1: 500 ok of a 10 s constant 50/s load: " + run1);
  await page.fill("[data-testid=exp-rate]", "200");
  await page.fill("[data-testid=exp-duration]", "2");
  await page.click("[data-testid=exp-run]");
  await page.waitForSelector("tr[data-run='2'][data-state=done]", { timeout: 40000 });
  await page.waitForSelector("[data-testid=exp-json-2]");
  await page.check("[data-testid=exp-pick-1]");
  await page.check("[data-testid=exp-pick-2]");
  await page.waitForSelector("[data-testid=chart-cdf]");
  const cdfLast = await page.getAttribute("[data-testid=chart-cdf]", "data-last");
  const legend = await page.textContent("[data-testid=chart-cdf]");
  check(Number(cdfLast) > 0 && legend.includes("#1 constant 50/s") && legend.includes("#2 constant 200/s"),
    "the CDFs of both runs are drawn (run 1 max " + cdfLast + " ms)");
  const download = page.waitForEvent("download");
  await page.click("[data-testid=exp-json-1]");
  const file = await (await download).path();
  const exported = JSON.parse(fs.readFileSync(file, "utf8"));
  check(exported.result?.ok === 500 && exported.result.cdf.length > 5, "JSON export holds the run's result and CDF");
  await page.screenshot({ path: path.join(shots, "experiments.png"), fullPage: true });

  // Delete, with a confirmation.
  await page.goto(base + "/ui/#/apps");
  await page.click("[data-testid=delete-hello_ui]");
  await page.click("[data-testid=confirm-delete]");
  await page.waitForSelector("tr[data-app=hello_ui]", { state: "detached" });
  const gone = await fetch(base + "/api/apps/hello_ui", { headers: admin });
  check(gone.status === 404, "hello_ui is gone from the node (" + gone.status + ")");

  await clusterPage(page);
}

// A 3-node cluster: the page lists the nodes with roles and the raft leader,
// and shows a killed node go down without a reload.
async function clusterPage(page) {
  const ports = [];
  while (ports.length < 3) {
    const p = await freePortPair();
    if (!ports.includes(p)) ports.push(p);
  }
  const yaml = path.join(root, "cluster.yaml");
  fs.writeFileSync(yaml, "nodes:\n" + ports.map((p, i) =>
    `  ${i + 1}: {addr: 127.0.0.1:${p}, spec: [meta, ${i === 0 ? "master" : "worker"}]}\n`).join(""));
  const tokenFile = path.join(root, "cluster.token");
  for (let i = 0; i < 3; i++) {
    const args = ["node", "--config", yaml, "--id", String(i + 1), "--data", path.join(root, "cdata" + (i + 1)),
      "--token-file", tokenFile];
    if (cacheDir) args.push("--cache", cacheDir);
    clusterNodes.push(spawn(binary, args, { stdio: ["ignore", "ignore", fs.openSync(path.join(root, `cnode${i + 1}.log`), "a")] }));
  }
  const base = `http://127.0.0.1:${ports[0] + 1}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(base + "/healthz")).ok) break;
    } catch {}
    await sleep(100);
  }
  const token = fs.readFileSync(tokenFile, "utf8").trim();
  await page.goto(base + "/ui/");
  await page.fill("input[name=token]", token);
  await page.click("button[type=submit]");
  await page.goto(base + "/ui/#/cluster");
  await page.waitForFunction(() => /3 of 3 nodes alive · meta raft leader: node \d/.test(
    document.querySelector("[data-testid=cluster-summary]")?.textContent ?? ""), null, { timeout: 60000 });
  const rows = await page.$$eval("[data-testid=nodes-table] tbody tr", (trs) => trs.map((t) => t.textContent));
  // The master role is the meta raft leader's, wherever it is: exactly one row has both.
  const masters = rows.filter((r) => r.includes("master") && r.includes("(raft leader)"));
  check(rows.length === 3 && rows.every((r) => r.includes("meta")) &&
    rows.filter((r) => r.includes("worker")).length === 2 && masters.length === 1 &&
    rows.filter((r) => r.includes("master")).length === 1,
    "three nodes with their roles, the raft leader the master: " + JSON.stringify(rows));
  check(rows.some((r) => r.includes("(raft leader)")), "the raft leader is marked");
  await page.screenshot({ path: path.join(shots, "cluster.png"), fullPage: true });
  clusterNodes[2].kill("SIGKILL");
  await page.waitForFunction(() => (document.querySelector("tr[data-node-id='3']")?.textContent ?? "").includes("down"),
    null, { timeout: 60000 });
  check(true, "node 3 shows as down after it was killed, without a reload");
}

try {
  await main();
} catch (e) {
  failures++;
  console.log("FAIL " + (e.stack ?? e));
  try {
    console.log(fs.readFileSync(path.join(root, "node.log"), "utf8").slice(-2000));
  } catch {}
} finally {
  await browser?.close().catch(() => {});
  node?.kill("SIGTERM");
  for (const n of clusterNodes) n.kill("SIGKILL");
}
console.log(failures ? `${failures} check(s) failed` : "all checks passed");
if (!failures && !shotsArg) fs.rmSync(root, { recursive: true, force: true });
process.exit(failures ? 1 : 0);
