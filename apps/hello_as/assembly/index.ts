// hello_as: POST /hello_as with a name answers
//   hello <name> from AssemblyScript (greeting <n>)
// where n counts this name's greetings in the KV store (key greetings_<name>).
import { Args, ERR_INVALID, fail, kv, output } from "waverless";

export function hello(argv: usize, argc: u32): void {
  const args = Args.take(argv, argc);
  let name = args.text(0).trim();
  if (name.length == 0) name = "world";
  // A key segment is [A-Za-z0-9._-] (app.yaml key patterns).
  for (let i = 0; i < name.length; ++i) {
    const c = name.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
      c == 46 || c == 95 || c == 45;
    if (!ok) fail(ERR_INVALID, "hello_as: a name is letters, digits, '.', '_' or '-'");
  }
  const key = "greetings_" + name;
  const seen = kv.getText(key);
  const n = (seen == null ? 0 : I32.parseInt(seen)) + 1;
  const st = kv.setText(key, n.toString());
  if (st != 0) fail(st, "hello_as: storing " + key + ": status " + st.toString());
  output("hello " + name + " from AssemblyScript (greeting " + n.toString() + ")");
}
