// Trap boundary, signal handling and linear-memory reservations: the host half
// of the wasm-rt.h interface that wasm2c-generated code runs against.
//
// Owns: per-execution trap state (ExecContext), the process's SIGSEGV/SIGBUS and
// timeout signal handlers, and the pool of guard-page memory reservations.
// Must not: know about apps, KV, or HTTP. It only turns faults into traps.
#pragma once

#include <atomic>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "wasm/rt/module_abi.h"

namespace waverless::wasm::rt {

// Codes beyond wasm_rt_trap_t for ways an invocation stops early.
enum class StopReason : int {
  kNone = 0,
  kTrap,       // a wasm trap; ExecContext::trap holds which
  kTimeout,    // deadline passed while in guest code or a host call
  kExit,       // WASI proc_exit; exit_code holds the code
  kHostError,  // a host call rejected the guest's arguments (message set)
  kFailed,     // the guest called wl_fail (message and fail_code set)
  kCancelled,  // the request it works for was cancelled (deadline, limit, client gone)
};

// Per-thread slot the watchdog reads to interrupt whatever runs there.
struct ThreadSlot {
  std::atomic<uint64_t> running_token{0};  // token of the context on the CPU
  std::atomic<int64_t> deadline_ns{0};     // its deadline, steady clock
  std::atomic<uint64_t> interrupt_token{0};
  pthread_t thread{};
};

// The bytes of linear memory a set of instances (one engine's) may commit,
// running or idle. allocate_memory and memory.grow charge it; the owner
// refunds when it frees an instance. A charge that does not fit asks
// `reclaim` (free idle instances) once, then is refused: memory.grow
// returns -1 (malloc gets NULL), instantiation fails.
struct MemoryBudget {
  size_t limit = 0;
  std::atomic<size_t> used{0};
  std::function<void(size_t need)> reclaim;  // may be empty

  bool charge(size_t bytes) {
    if (tryCharge(bytes)) return true;
    if (reclaim) reclaim(used.load() + bytes - limit);
    return tryCharge(bytes);
  }
  void refund(size_t bytes) { used.fetch_sub(bytes); }

 private:
  bool tryCharge(size_t bytes) {
    size_t before = used.fetch_add(bytes);
    if (before + bytes <= limit) return true;
    used.fetch_sub(bytes);
    return false;
  }
};

// Trap state of one execution (one invocation's fiber). Trap state follows
// the execution context, not the thread: the current context is switched
// together with the fiber.
struct ExecContext {
  sigjmp_buf jmp;
  volatile bool in_guest = false;
  StopReason stop = StopReason::kNone;
  wasm_rt_trap_t trap = WASM_RT_TRAP_NONE;
  int32_t exit_code = 0;
  int32_t fail_code = 0;  // WL_ERR_* given to wl_fail
  std::string message;    // for kHostError

  uint64_t token = 0;  // unique per context, for the watchdog
  ThreadSlot* slot = nullptr;

  // Linear memory of the instance being called, for fault classification.
  const uint8_t* mem_base = nullptr;
  // Guard pages below the fiber stack; a fault there is stack exhaustion.
  const uint8_t* stack_guard_lo = nullptr;
  const uint8_t* stack_guard_hi = nullptr;

  uint32_t memory_limit_pages = 65536;
  MemoryBudget* budget = nullptr;  // charged for this execution's linear memory
  // Set when a memory.grow was refused (cap or node budget): the guest's
  // allocator may be left out of memory, so the instance is not reused.
  bool grow_failed = false;

  // The request's cancel flag (common::CancelScope::flag), if it has one;
  // owned by whoever owns this context and outlives it.
  const std::atomic<bool>* cancelled = nullptr;

  bool interrupted() const {
    return slot != nullptr && token != 0 &&
           slot->interrupt_token.load(std::memory_order_relaxed) == token;
  }
  bool cancelRequested() const {
    return cancelled != nullptr && cancelled->load(std::memory_order_relaxed);
  }
  // Stops the execution at the next host-call return (used by host calls).
  void requestStop(StopReason r, std::string msg = {}) {
    if (stop == StopReason::kNone) {
      stop = r;
      message = std::move(msg);
    }
  }
};

// Installs the process signal handlers once; later calls are no-ops.
void installSignalHandlers();
// Gives the calling thread an alternate signal stack (needed for stack
// overflow to be handled); idempotent per thread.
void ensureAltStack();
int timeoutSignal();

ExecContext* current();
void setCurrent(ExecContext* ctx);

// The host function table handed to every loaded module.
const WlHostApi* hostApi();

// Calls fn inside the trap boundary of ctx (which must be current()).
// Returns true when fn returned normally; false when it trapped or was
// stopped, with ctx->stop describing why.
bool guestCall(ExecContext* ctx, WlTrampoline fn, void* instance, const uint64_t* args,
               uint64_t* results);
// Same for instantiate()/free() style calls with one pointer argument.
bool guestCall(ExecContext* ctx, void (*fn)(void*, void*), void* a, void* b);

// Same for a snapshot restore (WlModuleDescriptor::restore_instance).
bool guestCall(ExecContext* ctx, void (*fn)(void*, const void*, void*), void* a, const void* b,
               void* c);

std::string describeStop(const ExecContext& ctx);

// --- snapshot images (see wasm/snapshot.h) ---------------------------------
// Gives mem a reservation whose first `pages` pages map `fd` from `offset`
// on (a snapshot image) MAP_PRIVATE: reads share the image's pages, the first write to a
// page copies it. Growth past the image is anonymous memory as usual. The
// image's pages are not charged to any budget here (the snapshot is charged
// once); false when no reservation or mapping could be had.
bool mapImage(wasm_rt_memory_t* mem, int fd, uint64_t offset, uint32_t pages, uint32_t max_pages);
// Puts mem back to the image's state: growth past it is unmapped (and
// refunded to budget), and the pages the last call wrote are made the
// image's again: copied back from image_view (a read-only view of the
// image) where the kernel can list them (PAGEMAP_SCAN), else dropped with
// MADV_DONTNEED (the next read maps the image's page again). Costs about
// the pages written, not the memory's size.
bool resetToImage(wasm_rt_memory_t* mem, uint32_t pages, MemoryBudget* budget,
                  const uint8_t* image_view);
// Frees mem's reservation (the memory of a template instance, once copied
// into its image) without charging or refunding anything.
void freeMemory(wasm_rt_memory_t* mem);

// Size of the address-space reservation behind one linear memory: 4 GiB of
// addressable memory plus 4 GiB of guard for the largest static offset, so
// wasm2c's code needs no bounds checks.
inline constexpr size_t kReservationBytes = size_t{8} << 30;

// Reservations recycled instead of mmapped per instance; visible for tests.
struct ReservationStats {
  uint64_t mapped = 0;   // reservations currently mapped (live + free)
  uint64_t free = 0;     // ready for reuse
  uint64_t created = 0;  // mmap calls over the process lifetime
};
ReservationStats reservationStats();

}  // namespace waverless::wasm::rt
