// {{app}}: greets the name in the request body and counts the calls per name
// in the KV store (key calls_<name>, allowed by app.yaml's kvs list).
//   waverless deploy .                    builds (asc) and deploys
//   curl -d you localhost:2501/{{app}}    hello you (call 1)
// The AssemblyScript SDK: docs/languages.md.
import { Args, ERR_INVALID, OK, fail, kv, output } from "waverless";

export function greet(argv: usize, argc: u32): void {
  const args = Args.take(argv, argc);
  let name = args.text(0).trim();
  if (name.length == 0) name = "world";
  // A key segment is [A-Za-z0-9._-]: anything else would be refused.
  for (let i = 0; i < name.length; ++i) {
    const c = name.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
      c == 46 || c == 95 || c == 45;
    if (!ok) fail(ERR_INVALID, "a name is letters, digits, '.', '_' or '-'");
  }
  const key = "calls_" + name;
  const seen = kv.getText(key);
  const calls = (seen == null ? 0 : I32.parseInt(seen)) + 1;
  const st = kv.setText(key, calls.toString());
  if (st != OK) fail(st, "storing " + key + ": status " + st.toString());
  output("hello " + name + " (call " + calls.toString() + ")");
}
