// Keeps a console page open and auto-refreshing in headless Chromium until
// killed: for measuring what an open console costs the node (issue 12's
// "console overhead"). Signs in with the token file's token.
//
//   node ui/tests/open_console.mjs http://127.0.0.1:2501 waverless-data/admin.token [PAGE...]
//
// PAGE: metrics (default), apps/hello, cluster, ...; each in a tab of its own,
// all polling at once (bench/console/run.sh opens metrics and apps/hello).
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
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "wl-console-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.WL_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // every tab keeps polling as a visible one would
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows"],
});
const token = fs.readFileSync(tokenFile, "utf8").trim();
// The token lives in each tab's sessionStorage: every tab signs in.
for (const [i, page] of pages.entries()) {
  const tab = (i === 0 && browser.pages()[0]) || (await browser.newPage());
  await tab.goto(base + "/ui/");
  await tab.fill("input[name=token]", token);
  await tab.click("button[type=submit]");
  await tab.goto(base + "/ui/#/" + page);
}
console.log(`console open at ${pages.map((p) => `${base}/ui/#/${p}`).join(", ")}; Ctrl-C to close`);
const close = async () => {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGINT", close);
process.on("SIGTERM", close);
await new Promise(() => {});
