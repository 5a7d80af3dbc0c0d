/* Guest for host_abi_fuzz: its `run` export reads its argument (the fuzz
 * input) as a program of host calls whose pointers, lengths and values come
 * from the input, so the host sees every combination a hostile module could
 * make: in-bounds, out of bounds, overlapping its own stack, wrapping.
 *
 * Program: a sequence of ops, each one opcode byte then its operands.
 *   ptr operand: 1 byte selector s, then
 *     s < 0x80: 2 bytes, an offset into `scratch` (always valid),
 *     s >= 0x80: 4 bytes, a raw address (anything).
 *   len operand: 1 byte selector, then 1 byte (small) or 4 bytes (raw).
 *   u32/i32 operand: 4 bytes little-endian; u64: 8 bytes.
 * A truncated operand reads as zero bytes; the program ends at its end. */
#include <stdint.h>
#include <string.h>
#include <wasi/api.h>

#include "waverless.h"

#define SCRATCH 65536
static char scratch[SCRATCH];

typedef struct {
  const uint8_t* p;
  uint32_t n;
} reader;

static uint8_t u8(reader* r) {
  if (r->n == 0) return 0;
  r->n--;
  return *r->p++;
}
static uint32_t u32le(reader* r) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= (uint32_t)u8(r) << (8 * i);
  return v;
}
static uint64_t u64le(reader* r) {
  uint64_t lo = u32le(r);
  return lo | ((uint64_t)u32le(r) << 32);
}
static uint32_t ptr(reader* r) {
  uint8_t s = u8(r);
  if (s >= 0x80) return u32le(r);
  uint32_t off = (uint32_t)u8(r) | ((uint32_t)u8(r) << 8);
  return (uint32_t)(uintptr_t)scratch + (off % SCRATCH);
}
static uint32_t len(reader* r) {
  uint8_t s = u8(r);
  if (s >= 0x80) return u32le(r);
  return u8(r);
}
#define P(x) ((void*)(uintptr_t)(x))

static void run_program(const uint8_t* prog, uint32_t n) {
  reader r = {prog, n};
  char status[16];
  while (r.n > 0) {
    uint8_t op = u8(&r);
    int32_t s = 0;
    /* Opcodes 250-252 came with later imports; they take bytes that used to mean ops 0-2. */
    if (op >= 250 && op <= 252) {
      if (op == 250) { /* kv_cas(key, key_len, expected, expected_len, value, value_len) */
        uint32_t k = ptr(&r), kl = len(&r), e = ptr(&r), el = len(&r), v = ptr(&r), vl = len(&r);
        if (u8(&r) & 1) el = WL_KV_ABSENT; /* create-only: expected is not read */
        s = wl_kv_cas(P(k), kl, P(e), el, P(v), vl);
      } else if (op == 251) { /* kv_incr(key, key_len, delta, result*) */
        uint32_t k = ptr(&r), kl = len(&r);
        int64_t delta = (int64_t)u64le(&r);
        s = wl_kv_incr(P(k), kl, delta, P(ptr(&r)));
      } else { /* invocation_id(buf, cap, len*) */
        uint32_t b = ptr(&r), c = len(&r), l = ptr(&r);
        s = wl_invocation_id(P(b), c, P(l));
      }
      status[0] = (char)('0' + (s & 0x3f));
      wl_output_write(status, 1);
      continue;
    }
    switch (op % 25) {
      case 0: { /* kv_get(key, key_len, buf, cap, len*) */
        uint32_t k = ptr(&r), kl = len(&r), b = ptr(&r), c = len(&r), l = ptr(&r);
        s = wl_kv_get(P(k), kl, P(b), c, P(l));
        break;
      }
      case 1: {
        uint32_t k = ptr(&r), kl = len(&r), v = ptr(&r), vl = len(&r);
        s = wl_kv_set(P(k), kl, P(v), vl);
        break;
      }
      case 2: {
        uint32_t k = ptr(&r), kl = len(&r);
        s = wl_kv_delete(P(k), kl);
        break;
      }
      case 3: { /* kv_scan(prefix, prefix_len, limit, buf, cap, len*) */
        uint32_t k = ptr(&r), kl = len(&r), lim = u32le(&r), b = ptr(&r), c = len(&r), l = ptr(&r);
        s = wl_kv_scan(P(k), kl, lim, P(b), c, P(l));
        break;
      }
      case 4: {
        uint32_t b = ptr(&r), bl = len(&r);
        s = wl_kv_set_batch(P(b), bl);
        break;
      }
      case 5: {
        uint32_t b = ptr(&r), bl = len(&r);
        s = wl_output_write(P(b), bl);
        break;
      }
      case 6: {
        int32_t level = (int32_t)u32le(&r);
        uint32_t b = ptr(&r), bl = len(&r);
        s = wl_log(level, P(b), bl);
        break;
      }
      case 7: {
        uint32_t b = ptr(&r), bl = len(&r), fd = ptr(&r);
        s = wl_file_open(P(b), bl, P(fd));
        break;
      }
      case 8: {
        int32_t fd = (int32_t)u32le(&r);
        uint32_t sz = ptr(&r);
        s = wl_file_size(fd, P(sz));
        break;
      }
      case 9: {
        int32_t fd = (int32_t)u32le(&r);
        uint64_t off = u64le(&r);
        uint32_t b = ptr(&r), c = len(&r), nr = ptr(&r);
        s = wl_file_read_at(fd, off, P(b), c, P(nr));
        break;
      }
      case 10:
        s = wl_file_close((int32_t)u32le(&r));
        break;
      case 11: {
        uint32_t b = ptr(&r), c = len(&r), nr = ptr(&r);
        s = wl_body_read(P(b), c, P(nr));
        break;
      }
      case 12: {
        int32_t code = (int32_t)u32le(&r);
        uint32_t b = ptr(&r), bl = len(&r);
        wl_fail(code, P(b), bl);
      }
      case 13: { /* fd_write(fd, iovs, iovs_len, nwritten*) */
        int32_t fd = (int32_t)u32le(&r);
        uint32_t iov = ptr(&r), cnt = len(&r), nw = ptr(&r);
        s = __wasi_fd_write(fd, P(iov), cnt, P(nw));
        break;
      }
      case 14:
        s = wl_wait_triggered();
        break;
      case 15:
        s = wl_sleep_ms(u8(&r) % 4);
        break;
      case 16: { /* copy the next bytes of the program into scratch */
        uint32_t off = ((uint32_t)u8(&r) | ((uint32_t)u8(&r) << 8)) % SCRATCH;
        uint32_t cnt = u8(&r);
        if (cnt > r.n) cnt = r.n;
        if (cnt > SCRATCH - off) cnt = SCRATCH - off;
        memcpy(scratch + off, r.p, cnt);
        r.p += cnt;
        r.n -= cnt;
        break;
      }
      case 17: { /* store a ptr operand (e.g. an iovec's buffer) into scratch */
        uint32_t off = ((uint32_t)u8(&r) | ((uint32_t)u8(&r) << 8)) % (SCRATCH - 4);
        uint32_t v = ptr(&r);
        memcpy(scratch + off, &v, 4);
        break;
      }
      case 18: {
        uint32_t b = ptr(&r), bl = len(&r);
        s = __wasi_random_get(P(b), bl);
        break;
      }
      case 19: {
        uint32_t id = u32le(&r), out = ptr(&r);
        s = __wasi_clock_time_get(id, u64le(&r), P(out));
        break;
      }
      case 20: {
        int32_t fd = (int32_t)u32le(&r);
        int64_t off = (int64_t)u64le(&r);
        uint32_t whence = u8(&r), out = ptr(&r);
        s = __wasi_fd_seek(fd, off, whence, P(out));
        break;
      }
      case 21: {
        int32_t fd = (int32_t)u32le(&r);
        uint32_t out = ptr(&r);
        s = __wasi_fd_fdstat_get(fd, P(out));
        break;
      }
      case 22:
        if (u8(&r) == 0x5a) __wasi_proc_exit(u32le(&r));
        break;
      case 23: /* grow memory by a few pages */
        __builtin_wasm_memory_grow(0, u8(&r) % 8);
        break;
      case 24: /* the guest itself reads an address (out of bounds: a trap) */
        s = *(volatile uint8_t*)P(ptr(&r));
        break;
    }
    status[0] = (char)('0' + (s & 0x3f));
    wl_output_write(status, 1);
  }
}

WL_FUNCTION(run) {
  if (argc > 0) run_program((const uint8_t*)args[0].data, args[0].len);
}

/* The good call the harness makes after every input. */
WL_FUNCTION(ping) {
  static const char key[] = "ping";
  char buf[8];
  uint32_t n = 0;
  if (wl_kv_set(key, 4, "pong", 4) != WL_OK || wl_kv_get(key, 4, buf, sizeof buf, &n) != WL_OK ||
      n != 4) {
    wl_fail(WL_ERR_FAILED, "kv round trip failed", 20);
  }
  wl_output_write(buf, n);
}
