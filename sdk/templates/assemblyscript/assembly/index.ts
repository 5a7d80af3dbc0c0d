// @APP_NAME@: a Waverless function in AssemblyScript (docs/languages.md).
//   waverless deploy .                      builds (asc) and deploys
//   curl -d you localhost:2501/@APP_NAME@   hello you from AssemblyScript
import { Args, LOG_INFO, log, output } from "waverless";

export function hello(argv: usize, argc: u32): void {
  const args = Args.take(argv, argc);
  let name = args.text(0).trim();
  if (name.length == 0) name = "world";
  log(LOG_INFO, "greeting " + name);
  output("hello " + name + " from AssemblyScript");
}
