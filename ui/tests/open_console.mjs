// Keeps console pages open and auto-refreshing in headless Chromium until
// killed: for measuring what an open console costs (issue 12's "console
// overhead"; bench/console/run.sh, bench/console/browser_cpu.sh). Signs in
// with the token file's token.
//
//   node ui/tests/open_console.mjs http://127.0.0.1:2501 waverless-data/admin.token [PAGE...]
//
// PAGE: metrics (default), apps/hello, cluster, ...; each in a tab of its own,
// all polling at once (bench/console/run.sh opens metrics and apps/hello).
//
// Chromium is started here and driven over the DevTools protocol only to
// sign in and open the pages; then the protocol connection is dropped, so
// the browser runs as a user's does: no automation watching (and copying
// to this process) every request it makes. Chromium inherits this
// process's CPU affinity, niceness and scheduling policy (taskset, nice,
// chrt -i). Killing this process (SIGTERM/SIGINT) closes the browser.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, tokenFile, ...pageArgs] = process.argv.slice(2);
const pages = pageArgs.length > 0 ? pageArgs : ["metrics"];
if (!base || !tokenFile) {
  console.error("usage: open_console.mjs BASE_URL TOKEN_FILE [PAGE...]");
  process.exit(2);
}
const token = fs.readFileSync(tokenFile, "utf8").trim();
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "wl-console-"));
const proc = spawn(process.env.WL_CHROMIUM ?? "/usr/bin/chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // every tab keeps polling as a visible one would
  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
  // the DevTools endpoint on loopback, port picked by the kernel
  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
  "--user-data-dir=" + profile, "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });
let closing = false;
const close = (code) => {
  closing = true;
  proc.kill();
  // Chromium still writes to the profile as it exits.
  setTimeout(() => (fs.rmSync(profile, { recursive: true, force: true }), process.exit(code)), 500);
};
process.on("SIGINT", () => close(0));
process.on("SIGTERM", () => close(0));
proc.on("exit", (code) => {
  if (closing) return;
  console.error(`chromium exited (${code})`);
  close(1);
});

let stderr = "";
const endpoint = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error("chromium did not start: " + stderr)), 30000);
  proc.stderr.on("data", (d) => {
    stderr += d;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
    if (m) (clearTimeout(t), resolve(m[1]));
  });
});
const browser = await chromium.connectOverCDP(endpoint);
const context = browser.contexts()[0];
// Each page in a window of its own: a page refreshes only while visible,
// and a background tab is not. The token lives in each tab's
// sessionStorage: every tab signs in.
const cdp = await browser.newBrowserCDPSession();
for (const [i, page] of pages.entries()) {
  let tab = context.pages()[0];
  if (i > 0) {
    const opened = context.waitForEvent("page");
    await cdp.send("Target.createTarget", { url: "about:blank", newWindow: true });
    tab = await opened;
  }
  await tab.goto(base + "/ui/");
  await tab.fill("input[name=token]", token);
  await tab.click("button[type=submit]");
  await tab.goto(base + "/ui/#/" + page);
}
const hidden = [];
for (const tab of context.pages()) {
  if ((await tab.evaluate(() => document.visibilityState)) !== "visible") hidden.push(tab.url());
}
if (hidden.length) {
  console.error("pages not visible (they would not refresh): " + hidden.join(", "));
  close(1);
  await new Promise(() => {});
}
// Over CDP, close() only disconnects: the browser and its tabs go on.
await browser.close();
console.log(`console open at ${pages.map((p) => `${base}/ui/#/${p}`).join(", ")} (chromium pid ${proc.pid}); Ctrl-C to close`);
await new Promise(() => {});
