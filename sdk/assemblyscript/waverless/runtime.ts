// What the host expects of every guest, added by `waverless build` as an
// extra entry file (its exports become the module's): the allocator for
// argument blocks, and the handler AssemblyScript's `abort` is pointed at
// (`--use abort=...`), since the host provides no `env.abort` import.
import { fail, ERR_FAILED } from "waverless";

/** The host copies an invocation's arguments into a block from here;
 *  Args.take frees it. Raw heap memory: the GC neither moves nor frees it. */
export function wl_alloc(size: u32): usize {
  const n: usize = size > 0 ? <usize>size : 1;
  return heap.alloc(n);
}

export function wl_free(ptr: usize): void {
  if (ptr != 0) heap.free(ptr);
}

/** `abort` (an assertion, an out-of-range access, an explicit throw): fails
 *  the invocation (HTTP 500: a bug in the function) with the message and
 *  where it happened, instead of a bare "unreachable" trap. */
function wlAbort(msg: string | null, file: string | null, line: u32, column: u32): void {
  const what = msg != null ? msg : "abort";
  const where = file != null ? file : "?";
  fail(ERR_FAILED, "AssemblyScript abort: " + what + " at " + where + ":" + line.toString() + ":" + column.toString());
}
