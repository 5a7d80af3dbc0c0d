#include "wasm/rt/exec_context.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "wasm/host_abi.h"

namespace waverless::wasm::rt {
namespace {

constexpr size_t kPageBytes = 65536;

thread_local ExecContext* t_current = nullptr;

struct sigaction g_prev_segv;
struct sigaction g_prev_bus;

[[noreturn]] void abortHostBug(const char* what) {
  // Not a guest trap: something on the host side called into the trap path
  // outside guest code. Crash loudly rather than unwind an unknown frame.
  fprintf(stderr, "waverless: host bug: %s outside guest code\n", what);
  abort();
}

[[noreturn]] void jumpOut(ExecContext* ctx) {
  ctx->in_guest = false;
  siglongjmp(ctx->jmp, 1);
}

bool inRange(const void* p, const uint8_t* lo, size_t len) {
  auto a = reinterpret_cast<uintptr_t>(p);
  auto b = reinterpret_cast<uintptr_t>(lo);
  return lo != nullptr && a >= b && a - b < len;
}

void chainOrDefault(int sig, siginfo_t* info, void* uctx, const struct sigaction& prev) {
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, uctx);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    return;
  }
  // Restore the default action and return: the faulting instruction runs
  // again and the process dies with the real signal, as a host bug should.
  signal(sig, SIG_DFL);
}

void onFault(int sig, siginfo_t* info, void* uctx) {
  ExecContext* ctx = t_current;
  if (ctx != nullptr && ctx->in_guest) {
    const void* addr = info->si_addr;
    if (inRange(addr, ctx->mem_base, kReservationBytes)) {
      ctx->stop = StopReason::kTrap;
      ctx->trap = WASM_RT_TRAP_OOB;
      jumpOut(ctx);
    }
    // Modules are built with -fstack-clash-protection, so deep recursion
    // always touches the guard before anything beyond it.
    if (ctx->stack_guard_lo != nullptr &&
        inRange(addr, ctx->stack_guard_lo,
                static_cast<size_t>(ctx->stack_guard_hi - ctx->stack_guard_lo))) {
      ctx->stop = StopReason::kTrap;
      ctx->trap = WASM_RT_TRAP_EXHAUSTION;
      jumpOut(ctx);
    }
  }
  chainOrDefault(sig, info, uctx, sig == SIGBUS ? g_prev_bus : g_prev_segv);
}

void onTimeout(int, siginfo_t*, void*) {
  ExecContext* ctx = t_current;
  if (ctx != nullptr && ctx->in_guest && ctx->interrupted()) {
    ctx->stop = ctx->cancelRequested() ? StopReason::kCancelled : StopReason::kTimeout;
    jumpOut(ctx);
  }
  // In a host call: the import wrapper sees interrupted() on return.
}

// --- linear memory reservations --------------------------------------------

// The address space is process-wide, so is this pool: one process can host
// several engines, and instances are freed from whichever thread evicts them.
class ReservationPool {
 public:
  uint8_t* acquire() {
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        uint8_t* p = free_.back();
        free_.pop_back();
        return p;
      }
    }
    void* p = mmap(nullptr, kReservationBytes, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    std::lock_guard lock(mu_);
    ++mapped_;
    ++created_;
    return static_cast<uint8_t*>(p);
  }

  void release(uint8_t* base, size_t used) {
    // Replacing the used range with a fresh PROT_NONE mapping drops its pages
    // and its permissions in one call; the reservation stays ours.
    if (used > 0 &&
        mmap(base, used, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
             0) == MAP_FAILED) {
      munmap(base, kReservationBytes);
      std::lock_guard lock(mu_);
      --mapped_;
      return;
    }
    std::lock_guard lock(mu_);
    if (free_.size() < kMaxFree) {
      free_.push_back(base);
      return;
    }
    --mapped_;
    munmap(base, kReservationBytes);
  }

  ReservationStats stats() {
    std::lock_guard lock(mu_);
    return {mapped_, free_.size(), created_};
  }

 private:
  static constexpr size_t kMaxFree = 256;
  std::mutex mu_;
  std::vector<uint8_t*> free_;
  uint64_t mapped_ = 0;
  uint64_t created_ = 0;
};

ReservationPool& reservations() {
  static ReservationPool* pool = new ReservationPool();  // never destroyed:
  return *pool;  // instances may be freed during static destruction
}

// --- resetting a memory to its snapshot image ------------------------------

// PAGEMAP_SCAN (Linux 6.7, <linux/fs.h>), declared here for older headers.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsFile = 1 << 2, kPageIsPresent = 1 << 3, kPageIsSwapped = 1 << 4,
                   kPageIsPfnZero = 1 << 5;

int pagemapFd() {
  static int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);  // for the process's life
  return fd;
}

// The pages of [base, base + len) the instance has written are exactly its
// anonymous ones (a write to the MAP_PRIVATE image copies the page; a read
// maps the image's own): one PAGEMAP_SCAN lists them. A few are copied back
// from the image: nothing is unmapped, so the next call takes no page
// faults and no TLB shootdown. A page copied back stays anonymous, so the
// list is every page written since the last drop: past kCopyBackBytes they
// are dropped instead (MADV_DONTNEED on just those ranges), which makes
// them the image's pages again. False when the kernel has no PAGEMAP_SCAN:
// the caller then drops the whole range.
constexpr size_t kCopyBackBytes = size_t{256} << 10;

bool copyBackWrittenPages(uint8_t* base, size_t len, const uint8_t* image) {
  int fd = pagemapFd();
  if (fd < 0) return false;
  std::vector<PageRegion> written;
  size_t total = 0;
  PageRegion regions[64];
  uint64_t start = reinterpret_cast<uint64_t>(base), end = start + len;
  while (start < end) {
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(regions);
    arg.vec_len = 64;
    arg.category_inverted = kPageIsFile | kPageIsPfnZero;
    arg.category_mask = kPageIsFile | kPageIsPfnZero;
    arg.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    arg.return_mask = kPageIsPresent | kPageIsSwapped;
    int n = ioctl(fd, kPagemapScan, &arg);
    if (n < 0 || arg.walk_end <= start) return false;
    for (int i = 0; i < n; ++i) {
      written.push_back(regions[i]);
      total += regions[i].end - regions[i].start;
    }
    start = arg.walk_end;
  }
  for (const PageRegion& r : written) {
    auto* p = reinterpret_cast<uint8_t*>(r.start);
    size_t off = p - base, bytes = r.end - r.start;
    if (total <= kCopyBackBytes) {
      memcpy(p, image + off, bytes);
    } else if (madvise(p, bytes, MADV_DONTNEED) != 0) {
      return false;
    }
  }
  return true;
}

// --- the WlHostApi functions -----------------------------------------------

__attribute__((noreturn)) void apiTrap(wasm_rt_trap_t code) {
  ExecContext* ctx = t_current;
  if (ctx == nullptr || !ctx->in_guest) abortHostBug("wasm_rt_trap");
  ctx->stop = StopReason::kTrap;
  ctx->trap = code;
  jumpOut(ctx);
}

__attribute__((noreturn)) void apiRaisePending() {
  ExecContext* ctx = t_current;
  if (ctx == nullptr || !ctx->in_guest) abortHostBug("raise_pending");
  if (ctx->stop == StopReason::kNone) {
    ctx->stop = ctx->cancelRequested() ? StopReason::kCancelled : StopReason::kTimeout;
  }
  jumpOut(ctx);
}

void apiAllocateMemory(wasm_rt_memory_t* mem, uint32_t initial, uint32_t max) {
  ExecContext* ctx = t_current;
  if (ctx == nullptr || !ctx->in_guest) abortHostBug("wasm_rt_allocate_memory");
  uint32_t limit = max < ctx->memory_limit_pages ? max : ctx->memory_limit_pages;
  if (initial > limit) {
    ctx->requestStop(
        StopReason::kHostError,
        absl::StrCat("module needs ", initial, " initial memory pages; the limit is ", limit));
    jumpOut(ctx);
  }
  size_t bytes = size_t{initial} * kPageBytes;
  if (ctx->budget != nullptr && !ctx->budget->charge(bytes)) {
    ctx->requestStop(StopReason::kHostError,
                     absl::StrCat("the node's memory budget (", ctx->budget->limit >> 20,
                                  " MiB for all instances) has no room for this instance's ",
                                  initial, " initial memory pages"));
    jumpOut(ctx);
  }
  uint8_t* base = reservations().acquire();
  if (base == nullptr || (bytes > 0 && mprotect(base, bytes, PROT_READ | PROT_WRITE) != 0)) {
    if (base != nullptr) reservations().release(base, bytes);
    if (ctx->budget != nullptr) ctx->budget->refund(bytes);
    ctx->requestStop(StopReason::kHostError, "out of address space for a linear memory");
    jumpOut(ctx);
  }
  mem->data = base;
  mem->pages = initial;
  mem->max_pages = limit;
  mem->size = static_cast<uint32_t>(bytes);
}

uint32_t apiGrowMemory(wasm_rt_memory_t* mem, uint32_t delta) {
  uint32_t old = mem->pages;
  uint64_t wanted = uint64_t{old} + delta;
  ExecContext* ctx = t_current;
  auto refuse = [ctx] {
    if (ctx != nullptr) ctx->grow_failed = true;
    return UINT32_MAX;
  };
  if (wanted > mem->max_pages || wanted > 65536) return refuse();
  if (delta == 0) return old;
  size_t old_bytes = size_t{old} * kPageBytes;
  size_t add = size_t{delta} * kPageBytes;
  if (ctx != nullptr && ctx->budget != nullptr && !ctx->budget->charge(add)) return refuse();
  if (mprotect(mem->data + old_bytes, add, PROT_READ | PROT_WRITE) != 0) {
    if (ctx != nullptr && ctx->budget != nullptr) ctx->budget->refund(add);
    return refuse();
  }
  mem->pages = static_cast<uint32_t>(wanted);
  // size is a uint32_t in wasm-rt.h; 65536 pages would overflow it, so the
  // module's own max (<= 65535 in practice for wasm32-wasi) bounds this.
  mem->size = static_cast<uint32_t>(wanted * kPageBytes);
  return old;
}

void apiFreeMemory(wasm_rt_memory_t* mem) {
  if (mem->data == nullptr) return;
  reservations().release(mem->data, size_t{mem->pages} * kPageBytes);
  mem->data = nullptr;
  mem->pages = 0;
  mem->size = 0;
}

}  // namespace

ExecContext* current() { return t_current; }
void setCurrent(ExecContext* ctx) { t_current = ctx; }

int timeoutSignal() { return SIGRTMIN + 3; }

void installSignalHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = onFault;
    // NODEFER: we leave the handler by siglongjmp without restoring the mask.
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
    sigaction(SIGBUS, &sa, &g_prev_bus);
    struct sigaction st {};
    st.sa_sigaction = onTimeout;
    st.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
    sigemptyset(&st.sa_mask);
    sigaction(timeoutSignal(), &st, nullptr);
  });
}

void ensureAltStack() {
  thread_local bool done = false;
  if (done) return;
  stack_t current{};
  if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE) &&
      current.ss_size >= 64 * 1024) {
    done = true;
    return;
  }
  // Freed never: the thread may take a signal until its very last instruction.
  static constexpr size_t kSize = 64 * 1024;
  void* mem = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) == 0) done = true;
}

const WlHostApi* hostApi() {
  static const WlHostApi api = {
      apiTrap, apiRaisePending, apiAllocateMemory, apiGrowMemory, apiFreeMemory, hostImportTable(),
  };
  return &api;
}

__attribute__((noinline)) bool guestCall(ExecContext* ctx, WlTrampoline fn, void* instance,
                                         const uint64_t* args, uint64_t* results) {
  if (sigsetjmp(ctx->jmp, 0) != 0) return false;
  ctx->in_guest = true;
  fn(instance, args, results);
  ctx->in_guest = false;
  return true;
}

__attribute__((noinline)) bool guestCall(ExecContext* ctx, void (*fn)(void*, void*), void* a,
                                         void* b) {
  if (sigsetjmp(ctx->jmp, 0) != 0) return false;
  ctx->in_guest = true;
  fn(a, b);
  ctx->in_guest = false;
  return true;
}

__attribute__((noinline)) bool guestCall(ExecContext* ctx, void (*fn)(void*, const void*, void*),
                                         void* a, const void* b, void* c) {
  if (sigsetjmp(ctx->jmp, 0) != 0) return false;
  ctx->in_guest = true;
  fn(a, b, c);
  ctx->in_guest = false;
  return true;
}

bool mapImage(wasm_rt_memory_t* mem, int fd, uint64_t offset, uint32_t pages, uint32_t max_pages) {
  uint8_t* base = reservations().acquire();
  if (base == nullptr) return false;
  size_t bytes = size_t{pages} * kPageBytes;
  if (bytes > 0 && mmap(base, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
                        static_cast<off_t>(offset)) == MAP_FAILED) {
    reservations().release(base, bytes);
    return false;
  }
  mem->data = base;
  mem->pages = pages;
  mem->max_pages = max_pages;
  mem->size = static_cast<uint32_t>(bytes);
  return true;
}

bool resetToImage(wasm_rt_memory_t* mem, uint32_t pages, MemoryBudget* budget,
                  const uint8_t* image_view) {
  size_t image = size_t{pages} * kPageBytes;
  size_t used = size_t{mem->pages} * kPageBytes;
  if (used > image) {
    if (mmap(mem->data + image, used - image, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) {
      return false;
    }
    if (budget != nullptr) budget->refund(used - image);
  }
  mem->pages = pages;
  mem->size = static_cast<uint32_t>(image);
  if (image == 0) return true;
  if (image_view != nullptr && copyBackWrittenPages(mem->data, image, image_view)) return true;
  return madvise(mem->data, image, MADV_DONTNEED) == 0;
}

void freeMemory(wasm_rt_memory_t* mem) { apiFreeMemory(mem); }

std::string describeStop(const ExecContext& ctx) {
  switch (ctx.stop) {
    case StopReason::kNone:
      return "ok";
    case StopReason::kTimeout:
      return "timed out: the invocation ran past its deadline";
    case StopReason::kExit:
      return absl::StrCat("exited with code ", ctx.exit_code);
    case StopReason::kCancelled:
      return "cancelled: its request ended";
    case StopReason::kHostError:
    case StopReason::kFailed:
      return ctx.message;
    case StopReason::kTrap:
      break;
  }
  switch (ctx.trap) {
    case WASM_RT_TRAP_OOB:
      return "trap: out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW:
      return "trap: integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO:
      return "trap: integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION:
      return "trap: invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE:
      return "trap: unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT:
      return "trap: indirect call to a null or mismatched function";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION:
      return "trap: uncaught exception";
    case WASM_RT_TRAP_EXHAUSTION:
      return "trap: call stack exhausted";
    default:
      return "trap: unknown";
  }
}

ReservationStats reservationStats() { return reservations().stats(); }

}  // namespace waverless::wasm::rt
