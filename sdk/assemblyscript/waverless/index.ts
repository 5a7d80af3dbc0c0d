// The Waverless host ABI for AssemblyScript guests: the same contract as
// sdk/include/waverless.h, with strings and buffers in and out of linear
// memory.
//
// A function is an exported `(argv: usize, argc: u32) => void`; the first
// thing it does is `const args = Args.take(argv, argc)`, which copies the
// arguments the host wrote (through wl_alloc, in runtime.ts) and frees
// their block.
//
// AssemblyScript has no exceptions, so the helpers here return what a caller
// can act on (null for a missing key, a status code) and end the invocation
// with `fail` for what it cannot: the code picks the HTTP status, as
// wl_fail does in C. An `abort` (a failed assertion, an out-of-bounds array
// access) fails the invocation with its message too (runtime.ts).

// --- status codes (WL_ERR_* in waverless.h) ---
export const OK: i32 = 0;
export const ERR_NOT_FOUND: i32 = 1;
export const ERR_PERMISSION: i32 = 2;
export const ERR_INVALID: i32 = 3;
export const ERR_TOO_LARGE: i32 = 4;
export const ERR_BUFFER_TOO_SMALL: i32 = 5;
export const ERR_IO: i32 = 6;
export const ERR_UNAVAILABLE: i32 = 7;
export const ERR_TIMEOUT: i32 = 8;
export const ERR_FAILED: i32 = 9;
export const ERR_CONFLICT: i32 = 10; // kv.cas: the value is not the expected one

export const LOG_DEBUG: i32 = 0;
export const LOG_INFO: i32 = 1;
export const LOG_WARN: i32 = 2;
export const LOG_ERROR: i32 = 3;

// --- the raw host imports, one to one with waverless.h ---
export namespace raw {
  // @ts-ignore: decorator
  @external("waverless", "kv_get")
  export declare function kv_get(key: usize, key_len: u32, buf: usize, cap: u32, len: usize): i32;
  // @ts-ignore: decorator
  @external("waverless", "kv_set")
  export declare function kv_set(key: usize, key_len: u32, value: usize, value_len: u32): i32;
  // @ts-ignore: decorator
  @external("waverless", "kv_delete")
  export declare function kv_delete(key: usize, key_len: u32): i32;
  // @ts-ignore: decorator
  @external("waverless", "kv_set_batch")
  export declare function kv_set_batch(packed: usize, len: u32): i32;
  // @ts-ignore: decorator
  @external("waverless", "kv_scan")
  export declare function kv_scan(prefix: usize, prefix_len: u32, limit: u32, buf: usize, cap: u32, len: usize): i32;
  // @ts-ignore: decorator
  @external("waverless", "kv_cas")
  export declare function kv_cas(key: usize, key_len: u32, expected: usize, expected_len: u32, value: usize, value_len: u32): i32;

  @external("waverless", "kv_incr")
  export declare function kv_incr(key: usize, key_len: u32, delta: i64, result: usize): i32;

  @external("waverless", "invocation_id")
  export declare function invocation_id(buf: usize, cap: u32, len: usize): i32;

  @external("waverless", "wait_triggered")
  export declare function wait_triggered(): i32;
  // @ts-ignore: decorator
  @external("waverless", "fail")
  export declare function fail(code: i32, msg: usize, len: u32): void;
  // @ts-ignore: decorator
  @external("waverless", "sleep_ms")
  export declare function sleep_ms(ms: u32): i32;
  // @ts-ignore: decorator
  @external("waverless", "body_read")
  export declare function body_read(buf: usize, cap: u32, nread: usize): i32;
  // @ts-ignore: decorator
  @external("waverless", "output_write")
  export declare function output_write(data: usize, len: u32): i32;
  // @ts-ignore: decorator
  @external("waverless", "log")
  export declare function log(level: i32, msg: usize, len: u32): i32;
  // @ts-ignore: decorator
  @external("waverless", "file_open")
  export declare function file_open(path: usize, path_len: u32, fd: usize): i32;
  // @ts-ignore: decorator
  @external("waverless", "file_size")
  export declare function file_size(fd: i32, size: usize): i32;
  // @ts-ignore: decorator
  @external("waverless", "file_read_at")
  export declare function file_read_at(fd: i32, offset: u64, buf: usize, cap: u32, nread: usize): i32;
  // @ts-ignore: decorator
  @external("waverless", "file_close")
  export declare function file_close(fd: i32): i32;
}

// --- bytes and strings ---

/** UTF-8 bytes of a string (AssemblyScript strings are UTF-16). */
export function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

/** A string from UTF-8 bytes. */
export function text(b: ArrayBuffer): string {
  return String.UTF8.decode(b);
}

function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

function len(b: ArrayBuffer): u32 {
  return <u32>b.byteLength;
}

// --- control flow and output ---

/** Ends the invocation as failed with msg; the HTTP status follows code. */
export function fail(code: i32, msg: string): void {
  const m = utf8(msg);
  raw.fail(code, ptr(m), len(m));
  unreachable(); // the host does not return from fail
}

/** Appends to the invocation's output (the HTTP response body). */
export function output(data: string): void {
  outputBytes(utf8(data));
}

export function outputBytes(data: ArrayBuffer): void {
  const st = raw.output_write(ptr(data), len(data));
  if (st != OK) fail(st, "output: status " + st.toString());
}

/** One structured log line attributed to this invocation. */
export function log(level: i32, msg: string): void {
  const m = utf8(msg);
  raw.log(level, ptr(m), len(m));
}

/** Parks until what this invocation triggered has finished: OK or ERR_FAILED. */
export function waitTriggered(): i32 {
  return raw.wait_triggered();
}

/** This invocation's id, as in the node's logs ("<request id>.<n>"); with
 *  durable triggers a re-run of a triggered function keeps it, so it can
 *  key idempotent writes. */
export function invocationId(): string {
  const id = readGrown("invocation_id", (buf: usize, cap: u32, lenp: usize): i32 =>
    raw.invocation_id(buf, cap, lenp));
  return id == null ? "" : text(id);
}

/** Suspends the invocation without holding a host thread: OK or ERR_TIMEOUT. */
export function sleepMs(ms: u32): i32 {
  return raw.sleep_ms(ms);
}

// --- arguments ---

/** An invocation's arguments: the HTTP body of a `buffer` function, or the
 *  key that triggered a `kv_set` function. */
export class Args {
  constructor(public items: ArrayBuffer[]) {}

  /** Copies the host's argument block at argv and frees it. */
  static take(argv: usize, argc: u32): Args {
    const items = new Array<ArrayBuffer>(<i32>argc);
    for (let i: u32 = 0; i < argc; ++i) {
      const p = load<u32>(argv + 8 * i);
      const n = load<u32>(argv + 8 * i + 4);
      const b = new ArrayBuffer(<i32>n);
      memory.copy(changetype<usize>(b), <usize>p, <usize>n);
      items[i] = b;
    }
    if (argv != 0) heap.free(argv);
    return new Args(items);
  }

  get length(): i32 {
    return this.items.length;
  }

  /** Argument i as bytes (empty past the end). */
  bytes(i: i32): ArrayBuffer {
    return i < this.items.length ? this.items[i] : new ArrayBuffer(0);
  }

  /** Argument i as text (empty past the end). */
  text(i: i32): string {
    return text(this.bytes(i));
  }
}

// --- key-value store ---

/** Calls read(buf, cap, lenPtr) until the buffer is large enough. */
function readGrown(call: string, read: (buf: usize, cap: u32, lenp: usize) => i32): ArrayBuffer | null {
  let buf = new ArrayBuffer(256);
  const lenp = heap.alloc(4);
  for (;;) {
    const st = read(ptr(buf), len(buf), lenp);
    const n = load<u32>(lenp);
    if (st == ERR_BUFFER_TOO_SMALL && n > len(buf)) {
      buf = new ArrayBuffer(<i32>n);
      continue;
    }
    heap.free(lenp);
    if (st == ERR_NOT_FOUND) return null;
    if (st != OK) fail(st, call + ": status " + st.toString());
    return buf.slice(0, <i32>n);
  }
}

// Closures cannot capture locals in AssemblyScript: the key of the current
// read goes through a global.
let readKey: ArrayBuffer = new ArrayBuffer(0);
let scanLimit: u32 = 0;

export namespace kv {
  /** The value of key, or null when it does not exist. Other errors fail
   *  the invocation. */
  export function get(key: string): ArrayBuffer | null {
    readKey = utf8(key);
    return readGrown("kv.get(" + key + ")", (buf: usize, cap: u32, lenp: usize): i32 =>
      raw.kv_get(changetype<usize>(readKey), <u32>readKey.byteLength, buf, cap, lenp));
  }

  /** The value of key as text, or null. */
  export function getText(key: string): string | null {
    const v = get(key);
    return v == null ? null : text(v);
  }

  /** Stores value under key: OK, or the status (ERR_PERMISSION when the
   *  function's kvs list does not allow it, ERR_TOO_LARGE, ...). */
  export function set(key: string, value: ArrayBuffer): i32 {
    const k = utf8(key);
    return raw.kv_set(ptr(k), len(k), ptr(value), len(value));
  }

  export function setText(key: string, value: string): i32 {
    return set(key, utf8(value));
  }

  /** Compare-and-set: stores value under key only if the key holds exactly
   *  expected now, or, with expected null, only if it does not exist
   *  (create-only). OK when stored; ERR_CONFLICT when the current value
   *  differs (nothing written: read it again and retry if you like); else
   *  the status (ERR_PERMISSION, ...). A store triggers as set does. */
  export function cas(key: string, expected: ArrayBuffer | null, value: ArrayBuffer): i32 {
    const k = utf8(key);
    // WL_KV_ABSENT (0xffffffff) as the expected length: must not exist.
    const ep: usize = expected == null ? 0 : ptr(expected);
    const el: u32 = expected == null ? 0xffffffff : len(expected);
    return raw.kv_cas(ptr(k), len(k), ep, el, ptr(value), len(value));
  }

  export function casText(key: string, expected: string | null, value: string): i32 {
    return cas(key, expected == null ? null : utf8(expected), utf8(value));
  }

  /** What incr did: status OK and the new value, or the status
   *  (ERR_INVALID: the value is not a decimal i64, or the sum overflows;
   *  nothing written then). */
  export class Counted {
    constructor(public status: i32, public value: i64) {}
  }

  /** Adds delta to the decimal integer under key (missing: 0), atomically. */
  export function incr(key: string, delta: i64): Counted {
    const k = utf8(key);
    const out = heap.alloc(8);
    const st = raw.kv_incr(ptr(k), len(k), delta, out);
    const v = load<i64>(out);
    heap.free(out);
    return new Counted(st, st == OK ? v : 0);
  }

  /** Deletes key (a missing key is OK). */
  export function del(key: string): i32 {
    const k = utf8(key);
    return raw.kv_delete(ptr(k), len(k));
  }

  /** A (key, value) pair of a scan or a batch. */
  export class Entry {
    constructor(public key: string, public value: ArrayBuffer) {}
  }

  /** Up to limit entries whose key starts with prefix, in key order. */
  export function scan(prefix: string, limit: u32): Entry[] {
    readKey = utf8(prefix);
    scanLimit = limit;
    const packed = readGrown("kv.scan(" + prefix + ")", (buf: usize, cap: u32, lenp: usize): i32 =>
      raw.kv_scan(changetype<usize>(readKey), <u32>readKey.byteLength, scanLimit, buf, cap, lenp));
    const out = new Array<Entry>();
    if (packed == null) return out;
    const p = ptr(packed);
    const end = p + <usize>len(packed);
    let at = p;
    while (at + 4 <= end) {
      const kl = <usize>load<u32>(at);
      const k = new ArrayBuffer(<i32>kl);
      memory.copy(ptr(k), at + 4, kl);
      at += 4 + kl;
      const vl = <usize>load<u32>(at);
      const v = new ArrayBuffer(<i32>vl);
      memory.copy(ptr(v), at + 4, vl);
      at += 4 + vl;
      out.push(new Entry(text(k), v));
    }
    return out;
  }

  /** Stores every entry in one atomic write: OK or the status (nothing is
   *  written if any key is not allowed). */
  export function batch(entries: Entry[]): i32 {
    let total: i32 = 0;
    const keys = new Array<ArrayBuffer>(entries.length);
    for (let i = 0; i < entries.length; ++i) {
      keys[i] = utf8(entries[i].key);
      total += 8 + keys[i].byteLength + entries[i].value.byteLength;
    }
    const packed = new ArrayBuffer(total);
    let at = ptr(packed);
    for (let i = 0; i < entries.length; ++i) {
      const k = keys[i], v = entries[i].value;
      store<u32>(at, len(k));
      memory.copy(at + 4, ptr(k), <usize>len(k));
      at += 4 + <usize>len(k);
      store<u32>(at, len(v));
      memory.copy(at + 4, ptr(v), <usize>len(v));
      at += 4 + <usize>len(v);
    }
    return raw.kv_set_batch(ptr(packed), len(packed));
  }
}

// --- the request body of a `body: stream` function ---
export namespace body {
  /** The next bytes of the body (at most max), empty at its end. Parks
   *  while the client is still uploading. Errors fail the invocation. */
  export function read(max: u32 = 1 << 20): ArrayBuffer {
    const buf = new ArrayBuffer(<i32>max);
    const got = heap.alloc(4);
    const st = raw.body_read(ptr(buf), max, got);
    const n = load<u32>(got);
    heap.free(got);
    if (st != OK) fail(st, "body.read: status " + st.toString());
    return buf.slice(0, <i32>n);
  }

  /** The whole body (waits for the upload to finish). */
  export function readAll(): ArrayBuffer {
    const parts = new Array<ArrayBuffer>();
    let total: i32 = 0;
    for (;;) {
      const b = read();
      if (b.byteLength == 0) break;
      parts.push(b);
      total += b.byteLength;
    }
    const out = new ArrayBuffer(total);
    let at = ptr(out);
    for (let i = 0; i < parts.length; ++i) {
      memory.copy(at, ptr(parts[i]), <usize>parts[i].byteLength);
      at += <usize>parts[i].byteLength;
    }
    return out;
  }
}

// --- the app's read-only files/ folder ---
export namespace files {
  /** The whole contents of a file of the app's data folder, or null if it
   *  does not exist; other errors fail the invocation. */
  export function read(path: string): ArrayBuffer | null {
    const p = utf8(path);
    const scratch = heap.alloc(8);
    let st = raw.file_open(ptr(p), len(p), scratch);
    if (st == ERR_NOT_FOUND) {
      heap.free(scratch);
      return null;
    }
    if (st != OK) fail(st, "files.read(" + path + "): status " + st.toString());
    const fd = load<i32>(scratch);
    st = raw.file_size(fd, scratch);
    if (st != OK) fail(st, "files.read(" + path + "): size: status " + st.toString());
    const size = load<u64>(scratch);
    const out = new ArrayBuffer(<i32>size);
    let at: u64 = 0;
    while (at < size) {
      st = raw.file_read_at(fd, at, ptr(out) + <usize>at, <u32>(size - at), scratch);
      if (st != OK) fail(st, "files.read(" + path + "): status " + st.toString());
      const got = load<u32>(scratch);
      if (got == 0) break;
      at += got;
    }
    raw.file_close(fd);
    heap.free(scratch);
    return out.slice(0, <i32>at);
  }
}
