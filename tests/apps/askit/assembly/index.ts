// askit: one function per binding of the AssemblyScript SDK, each answering
// with what it observed so languages_test can compare it to what the host did.
import { Args, body, files as appFiles, invocationId, kv, output, outputBytes, text, utf8 } from "waverless";

function show(v: ArrayBuffer | null): string {
  return v == null ? "null" : "'" + text(v) + "'";
}

export function kvops(argv: usize, argc: u32): void {
  Args.take(argv, argc);
  const entries = [
    new kv.Entry("as_b", utf8("two")),
    new kv.Entry("as_a", utf8("one")),
    new kv.Entry("as_empty", new ArrayBuffer(0)),
  ];
  const batched = kv.batch(entries);
  const set = kv.setText("as_c", "three");
  const scanned = kv.scan("as_", 10);
  let list = "";
  for (let i = 0; i < scanned.length; ++i) {
    if (i > 0) list += ",";
    list += scanned[i].key + "=" + text(scanned[i].value);
  }
  // Longer than the SDK's first read buffer: the retry path.
  const big = "y".repeat(3000);
  kv.setText("as_big", big);
  const bigOk = kv.getText("as_big") == big;
  const deleted = kv.del("as_c");
  const outside = kv.setText("other", "x");
  output("batch=" + batched.toString() + " set=" + set.toString() + " scan=[" + list +
    "] missing=" + show(kv.get("as_missing")) + " empty=" + show(kv.get("as_empty")) +
    " big=" + (bigOk ? "true" : "false") + " del=" + deleted.toString() + " deleted=" +
    show(kv.get("as_c")) + " outside=" + outside.toString());
}

export function files(argv: usize, argc: u32): void {
  Args.take(argv, argc);
  const data = appFiles.read("data.txt");
  const missing = appFiles.read("nope.txt");
  output("data=" + show(data) + " missing=" + show(missing));
}

/** A streamed body, read in small pieces, back as the output. */
export function echo(argv: usize, argc: u32): void {
  Args.take(argv, argc);
  for (;;) {
    const piece = body.read(1000);
    if (piece.byteLength == 0) break;
    outputBytes(piece);
  }
}

export function aborts(argv: usize, argc: u32): void {
  const args = Args.take(argv, argc);
  assert(args.length > 100, "askit asserted on purpose");
}

/** cas (create-only, a conflict, a match, a stale expectation), incr, and
 *  the invocation id, which keys this call's own keys. */
export function atomics(argv: usize, argc: u32): void {
  Args.take(argv, argc);
  const id = invocationId();
  const key = "as_cas_" + id;
  const cas = kv.casText(key, null, "v1").toString() + "," +
    kv.casText(key, null, "v2").toString() + "," +
    kv.casText(key, "v1", "v3").toString() + "," +
    kv.casText(key, "v1", "v4").toString();
  const ctr = "as_ctr_" + id;
  const a = kv.incr(ctr, 5);
  const b = kv.incr(ctr, -7);
  const bad = kv.incr(key, 1);
  output("cas=" + cas + " value=" + show(kv.get(key)) + " incr=" + a.value.toString() + "," +
    b.value.toString() + " stored=" + show(kv.get(ctr)) + " bad=" + bad.status.toString() +
    " id=" + id);
}
