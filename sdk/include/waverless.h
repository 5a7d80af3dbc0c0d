/*
 * Waverless host ABI, version 1.
 *
 * The one contract between a guest function (wasm32-wasi) and the platform.
 * Every call returns a wl_status; lengths are explicit; nothing is
 * NUL-terminated. The host bounds-checks every pointer/length pair: a bad one
 * fails the invocation with an error naming the call, it never reads or
 * writes outside the guest's linear memory.
 *
 * Calling convention for a function export:
 *   void <fn>(uint32_t argv, uint32_t argc)
 * argv points to argc (ptr, len) pairs of uint32_t, followed by the argument
 * bytes, in one block the host obtained from the guest's exported
 * wl_alloc(). The block belongs to the guest (WL_FUNCTION frees it).
 * Use the WL_FUNCTION macro rather than writing exports by hand.
 */
#ifndef WAVERLESS_H_
#define WAVERLESS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t wl_status;
#define WL_OK 0
#define WL_ERR_NOT_FOUND 1        /* key or file does not exist */
#define WL_ERR_PERMISSION 2       /* not allowed by the app's kvs list / folder */
#define WL_ERR_INVALID 3          /* malformed argument (bad fd, bad path) */
#define WL_ERR_TOO_LARGE 4        /* value or output over the configured limit */
#define WL_ERR_BUFFER_TOO_SMALL 5 /* *len holds the size needed; call again */
#define WL_ERR_IO 6               /* storage or file system failure */
#define WL_ERR_UNAVAILABLE 7      /* transient: the caller may retry */
#define WL_ERR_TIMEOUT 8          /* the invocation's deadline passed */
#define WL_ERR_FAILED 9           /* a triggered function failed */
#define WL_ERR_CONFLICT 10        /* wl_kv_cas: the current value is not the expected one */

#define WL_LOG_DEBUG 0
#define WL_LOG_INFO 1
#define WL_LOG_WARN 2
#define WL_LOG_ERROR 3

#if defined(__wasm__)
#define WL_IMPORT(name) __attribute__((import_module("waverless"), import_name(#name)))
#define WL_EXPORT(name) __attribute__((export_name(#name)))
#else
#define WL_IMPORT(name)
#define WL_EXPORT(name)
#endif

/* --- key-value store (keys are the app's own; see app.yaml kvs) --- */

/* Reads key into buf. WL_OK: *len = value size (0 for an empty value).
 * WL_ERR_NOT_FOUND: no such key. WL_ERR_BUFFER_TOO_SMALL: *len = size needed;
 * the host keeps the value so the retry with a larger buffer is cheap. */
WL_IMPORT(kv_get)
wl_status wl_kv_get(const char* key, uint32_t key_len, void* buf, uint32_t cap, uint32_t* len);
/* Stores value under key. Once WL_OK returns the value is durable. */
WL_IMPORT(kv_set)
wl_status wl_kv_set(const char* key, uint32_t key_len, const void* value, uint32_t value_len);
/* Deletes key. Deleting a missing key is WL_OK. */
WL_IMPORT(kv_delete)
wl_status wl_kv_delete(const char* key, uint32_t key_len);

/* Atomic read-modify-writes. Each is linearizable against every other write
 * of the same key (set, set_batch, delete, cas, incr). A successful one is a
 * write like wl_kv_set: it needs `set` on the key in the function's kvs list
 * (WL_ERR_PERMISSION otherwise) and it triggers the functions whose kv_set
 * event matches the key, exactly as wl_kv_set does. */

/* Passed as expected_len to wl_kv_cas: "the key must not exist" (expected is
 * then ignored and may be NULL). */
#define WL_KV_ABSENT 0xffffffffu

/* Compare-and-set: stores value under key only if the key currently holds
 * exactly the expected bytes, or, with expected_len == WL_KV_ABSENT, only if
 * the key does not exist (create-only). An empty expected value matches an
 * existing empty value, never a missing key. WL_ERR_CONFLICT: the current
 * value differs (nothing was written; read it again and retry if you like). */
WL_IMPORT(kv_cas)
wl_status wl_kv_cas(const char* key, uint32_t key_len, const void* expected, uint32_t expected_len,
                    const void* value, uint32_t value_len);

/* Adds delta to the integer stored under key and writes the sum to *result.
 * The value is stored as decimal ASCII ("-42"), so wl_kv_get reads it as
 * text; a missing key counts as 0. WL_ERR_INVALID if the current value is
 * not a decimal int64 (optional '-', digits only) or if the sum overflows
 * int64; nothing is written then. */
WL_IMPORT(kv_incr)
wl_status wl_kv_incr(const char* key, uint32_t key_len, int64_t delta, int64_t* result);

/* Entries of a batch or a scan result are packed back to back as
 *   [u32 key_len][key bytes][u32 value_len][value bytes]
 * (little-endian lengths). wl_kv_each() below walks such a buffer. */

/* Stores every pair of the packed buffer in one atomic write, then triggers
 * functions as wl_kv_set does. WL_ERR_INVALID if the buffer is malformed;
 * WL_ERR_PERMISSION if any key is outside the function's kvs list (nothing
 * is written then). */
WL_IMPORT(kv_set_batch)
wl_status wl_kv_set_batch(const void* packed, uint32_t len);

/* Up to `limit` keys of this app starting with prefix, in key order, that
 * this function may `get`, packed into buf. WL_ERR_BUFFER_TOO_SMALL: *len =
 * size needed (the result is kept for the retry, as with wl_kv_get). */
WL_IMPORT(kv_scan)
wl_status wl_kv_scan(const char* prefix, uint32_t prefix_len, uint32_t limit, void* buf,
                     uint32_t cap, uint32_t* len);

/* Blocks (without holding a host thread) until every function this
 * invocation has triggered so far has finished. WL_ERR_FAILED if one failed. */
WL_IMPORT(wait_triggered)
wl_status wl_wait_triggered(void);

/* Ends the invocation as failed with msg; does not return. The request
 * answers with the function's name and msg, and an HTTP status from code:
 * WL_ERR_INVALID 400, WL_ERR_PERMISSION 403, WL_ERR_NOT_FOUND 404,
 * WL_ERR_CONFLICT 409, WL_ERR_TOO_LARGE 429, WL_ERR_UNAVAILABLE 503, WL_ERR_TIMEOUT 504, else 500.
 * A function that fails this way also fails wl_wait_triggered in its caller. */
WL_IMPORT(fail)
__attribute__((noreturn)) void wl_fail(wl_status code, const char* msg, uint32_t len);

/* Suspends the invocation for ms milliseconds without holding a host
 * thread. WL_ERR_TIMEOUT if the invocation's deadline comes first. */
WL_IMPORT(sleep_ms)
wl_status wl_sleep_ms(uint32_t ms);

/* The id of this invocation, as text: "<request id>.<n>" where n counts the
 * invocations of the request's trigger tree (0 is the entry function). In a
 * cluster, request ids start with "<node>-<node start time>-" and the id is
 * unique in the cluster.
 *
 * A function triggered by kv_set of a replicated key is a durable trigger:
 * it runs at least once, and again if the node running it dies (on the key's
 * group's next leader), so it must be idempotent for its writes. Every run
 * of it sees the same id here (and what it triggers, "<id>.<n>"), so it can
 * key its effects by it. A part of a tree another node runs for a request
 * without a durable record is "<request id>~<node-local id>.<n>".
 * WL_ERR_BUFFER_TOO_SMALL: *len = size needed. */
WL_IMPORT(invocation_id)
wl_status wl_invocation_id(char* buf, uint32_t cap, uint32_t* len);

/* --- the request body, for functions declared `body: stream` --- */

/* Reads the next bytes of the request body into buf (up to cap > 0):
 * *nread = 0 at its end. The function runs while the body still arrives;
 * this waits (without holding a host thread) until more is there. Only the
 * entry function of a request, declared with `body: stream` in app.yaml,
 * has a body to read: others get WL_ERR_UNAVAILABLE. WL_ERR_UNAVAILABLE
 * too if the client went away mid-body. */
WL_IMPORT(body_read)
wl_status wl_body_read(void* buf, uint32_t cap, uint32_t* nread);

/* --- output and logs --- */

/* Appends to the invocation's output (the HTTP response body). */
WL_IMPORT(output_write)
wl_status wl_output_write(const void* data, uint32_t len);
/* One structured log line attributed to this invocation. */
WL_IMPORT(log)
wl_status wl_log(int32_t level, const char* msg, uint32_t len);

/* --- the app's read-only data folder (files/) --- */

/* Opens a path relative to the app's data folder. Absolute paths, ".."
 * and symlinks leading out are refused with WL_ERR_PERMISSION. */
WL_IMPORT(file_open)
wl_status wl_file_open(const char* path, uint32_t path_len, int32_t* fd);
WL_IMPORT(file_size)
wl_status wl_file_size(int32_t fd, uint64_t* size);
/* Reads up to cap bytes at offset; *nread = 0 at end of file. */
WL_IMPORT(file_read_at)
wl_status wl_file_read_at(int32_t fd, uint64_t offset, void* buf, uint32_t cap, uint32_t* nread);
WL_IMPORT(file_close)
wl_status wl_file_close(int32_t fd);

/* --- exports every guest provides (the SDK's wl_sdk.c defines them) --- */
WL_EXPORT(wl_alloc) void* wl_alloc(uint32_t size);
WL_EXPORT(wl_free) void wl_free(void* ptr);

/* Walks a packed buffer: call with *pos = 0 until it returns 0. */
static inline int wl_kv_each(const void* packed, uint32_t len, uint32_t* pos, const char** key,
                             uint32_t* key_len, const char** value, uint32_t* value_len) {
  const char* p = (const char*)packed;
  uint32_t at = *pos;
  if (at + 4 > len) return 0;
  __builtin_memcpy(key_len, p + at, 4);
  if (*key_len > len - at - 4) return 0;
  *key = p + at + 4;
  at += 4 + *key_len;
  if (at + 4 > len) return 0;
  __builtin_memcpy(value_len, p + at, 4);
  if (*value_len > len - at - 4) return 0;
  *value = p + at + 4;
  *pos = at + 4 + *value_len;
  return 1;
}

/* One argument of an invocation: the HTTP body or a triggering key. */
typedef struct {
  const char* data;
  uint32_t len;
} wl_arg;

/* Declares a function export. Inside the body, `args` (const wl_arg*) and
 * `argc` (uint32_t) are the invocation's arguments. */
#define WL_FUNCTION(name)                                        \
  static void wl_user_##name(const wl_arg* args, uint32_t argc); \
  WL_EXPORT(name) void name(uint32_t argv, uint32_t argc) {      \
    wl_user_##name((const wl_arg*)(uintptr_t)argv, argc);        \
    wl_free((void*)(uintptr_t)argv);                             \
  }                                                              \
  static void wl_user_##name(const wl_arg* args, uint32_t argc)

/* Declares the module's optional initialiser: `WL_INIT() { ... }`. The
 * platform runs it once when the app is deployed (and when a node loads it),
 * then snapshots the module's memory, globals and tables; every instance
 * starts from that snapshot instead of running the initialisers again, and
 * an `instance: fresh` function is reset to it after each call. Build
 * what every call needs here (a table, a parsed dictionary from files/).
 * It may read the app's files (wl_file_*) but not the KV store or a body:
 * the snapshot is shared for the app's lifetime, so it must not depend on
 * data that changes. A trap, wl_fail or a KV call here fails the deploy
 * with its message. */
#define WL_INIT() WL_EXPORT(wl_init) void wl_init(void)

#ifdef __cplusplus
}
#endif

#endif /* WAVERLESS_H_ */
