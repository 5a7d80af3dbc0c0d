// wl_init in AssemblyScript (tests/integration/snapshot_test.cpp): it fills a
// table every instance starts with; each call reports it, then empties it.
import { output } from "waverless";

let table: Array<i32> = new Array<i32>(0);
let calls: i32 = 0;

export function wl_init(): void {
  for (let i = 1; i <= 1000; ++i) table.push(i);
}

function report(): void {
  calls++;
  let s: i32 = 0;
  for (let i = 0; i < table.length; ++i) s += table[i];
  output("len=" + table.length.toString() + " sum=" + s.toString() + " calls=" + calls.toString());
  table = new Array<i32>(0);
}

export function probe(argv: usize, argc: u32): void { report(); }
export function probe_fresh(argv: usize, argc: u32): void { report(); }
