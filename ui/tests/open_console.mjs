// Keeps a console page open and auto-refreshing in headless Chromium until
// killed: for measuring what an open console costs the node (issue 12's
// "console overhead"). Signs in with the token file's token.
//
//   node ui/tests/open_console.mjs http://127.0.0.1:2501 waverless-data/admin.token [metrics|apps/hello|cluster]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, tokenFile, page = "metrics"] = process.argv.slice(2);
if (!base || !tokenFile) {
  console.error("usage: open_console.mjs BASE_URL TOKEN_FILE [PAGE]");
  process.exit(2);
}
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "wl-console-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.WL_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const tab = browser.pages()[0] ?? (await browser.newPage());
await tab.goto(base + "/ui/");
await tab.fill("input[name=token]", fs.readFileSync(tokenFile, "utf8").trim());
await tab.click("button[type=submit]");
await tab.goto(base + "/ui/#/" + page);
console.log(`console open at ${base}/ui/#/${page}; Ctrl-C to close`);
const close = async () => {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGINT", close);
process.on("SIGTERM", close);
await new Promise(() => {});
