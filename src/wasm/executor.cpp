#include "wasm/executor.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/context/fiber.hpp>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <unordered_map>

namespace waverless::wasm {

namespace ctx = boost::context;

struct WaitState {
  FiberTask* task;
  Executor* executor;
  Clock::time_point deadline;
  bool is_sleep = false;                        // deadline is a wake-up time, not a failure
  std::shared_ptr<common::CancelScope> cancel;  // the task's, if any
  std::atomic<bool> fired{false};
  absl::Status status;
};

struct FiberTask {
  ctx::fiber fiber;   // the invocation's own context
  ctx::fiber caller;  // the worker loop, while the fiber runs
  absl::AnyInvocable<void(Fiber&)> job;
  rt::ExecContext exec;
  Clock::time_point deadline;
  Executor::Worker* owner = nullptr;  // null while queued for a background thread
  const void* tenant = nullptr;
  std::shared_ptr<common::CancelScope> cancel;
  Clock::time_point slice_start;
  std::chrono::nanoseconds run_time{0};  // of the slices before the current one
  bool finished = false;
  std::shared_ptr<WaitState> pending_wait;
  absl::AnyInvocable<void(Resumer)> pending_arm;
};

// A worker thread runs its io_context: fiber slices are handlers posted to
// it, and so are the I/O handlers of whatever shares it (HTTP sessions).
struct Executor::Worker {
  std::jthread thread;
  boost::asio::io_context ioc{1};  // one thread runs it
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  rt::ThreadSlot slot;
  bool background = false;
  std::atomic<bool> pull_posted{false};  // background: a pull() is queued on ioc
  // The cancel scope of the fiber on the CPU, for the watchdog, set and
  // cleared around each slice. The watchdog raises `reading` before it
  // loads the pointer; the worker, after clearing the pointer, waits while
  // `reading` is up before the task (and its scope) may be freed. Both
  // sides use sequentially consistent operations, so either the watchdog
  // sees null or the worker sees it reading.
  std::atomic<const common::CancelScope*> running_cancel{nullptr};
  std::atomic<bool> reading{false};
  // Foreground: slices run so far, for the watchdog to tell a busy
  // foreground from an idle one. Background: the thread's id, to renice it.
  std::atomic<uint64_t> slices{0};
  std::atomic<pid_t> tid{0};
};

// Background tasks not started yet, one lane per tenant; pop() takes the
// oldest task of the next tenant in turn.
class Executor::FairQueue {
 public:
  void push(FiberTask* t) {
    std::lock_guard lock(mu_);
    auto& lane = lanes_[t->tenant];
    if (lane.empty()) ring_.push_back(t->tenant);
    lane.push_back(t);
    size_++;
  }
  FiberTask* pop() {
    std::lock_guard lock(mu_);
    if (ring_.empty()) return nullptr;
    const void* tenant = ring_.front();
    ring_.pop_front();
    auto it = lanes_.find(tenant);
    FiberTask* t = it->second.front();
    it->second.pop_front();
    if (it->second.empty()) {
      lanes_.erase(it);
    } else {
      ring_.push_back(tenant);
    }
    size_--;
    return t;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return size_;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<const void*, std::deque<FiberTask*>> lanes_;  // guarded by mu_
  std::deque<const void*> ring_;  // tenants with queued tasks; guarded by mu_
  size_t size_ = 0;               // guarded by mu_
};

namespace {
// Which executor worker, if any, the current thread is.
thread_local const void* t_executor = nullptr;
thread_local Executor::Worker* t_worker = nullptr;
}  // namespace

// Fiber stacks with a guard region below, recycled rather than mmapped per
// invocation.
class Executor::StackPool {
 public:
  static constexpr size_t kGuard = 64 * 1024;
  explicit StackPool(size_t bytes) : bytes_(bytes) {}
  ~StackPool() {
    for (auto& s : free_) munmap(static_cast<char*>(s.sp) - s.size, s.size);
  }
  ctx::stack_context allocate() {
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        auto s = free_.back();
        free_.pop_back();
        return s;
      }
    }
    size_t total = bytes_ + kGuard;
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();  // programmer-visible OOM
    mprotect(p, kGuard, PROT_NONE);
    ctx::stack_context s;
    s.size = total;
    s.sp = static_cast<char*>(p) + total;
    return s;
  }
  void deallocate(ctx::stack_context& s) {
    std::lock_guard lock(mu_);
    if (free_.size() < 1024) {
      free_.push_back(s);
      return;
    }
    munmap(static_cast<char*>(s.sp) - s.size, s.size);
  }
  size_t pooled() {
    std::lock_guard lock(mu_);
    return free_.size();
  }

 private:
  size_t bytes_;
  std::mutex mu_;
  std::vector<ctx::stack_context> free_;
};

namespace {
struct PooledStack {
  Executor::StackPool* pool;
  rt::ExecContext* exec;  // learns where its guard is
  ctx::stack_context allocate() {
    ctx::stack_context s = pool->allocate();
    exec->stack_guard_lo = static_cast<const uint8_t*>(s.sp) - s.size;
    exec->stack_guard_hi = exec->stack_guard_lo + Executor::StackPool::kGuard;
    return s;
  }
  void deallocate(ctx::stack_context& s) noexcept { pool->deallocate(s); }
};

int64_t toNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

// --- Resumer / Fiber ---------------------------------------------------------

void Resumer::resume(absl::Status status) const {
  if (!state_ || state_->fired.exchange(true)) return;
  state_->status = std::move(status);
  state_->executor->post(state_->task);
}

rt::ExecContext& Fiber::exec() { return task_->exec; }
Clock::time_point Fiber::deadline() const { return task_->deadline; }
std::chrono::nanoseconds Fiber::runTime(Clock::time_point now) const {
  return task_->run_time + (now - task_->slice_start);
}

absl::Status Fiber::sleepFor(std::chrono::nanoseconds d) {
  auto wake = Clock::now() + d;
  if (wake >= task_->deadline) {
    return wait([](Resumer) {});  // ends with DeadlineExceeded
  }
  auto ws = std::make_shared<WaitState>();
  ws->task = task_;
  ws->deadline = wake;
  ws->is_sleep = true;
  ws->cancel = task_->cancel;
  task_->pending_wait = ws;
  task_->pending_arm = [](Resumer) {};
  task_->caller = std::move(task_->caller).resume();
  return ws->status;
}

absl::Status Fiber::wait(absl::AnyInvocable<void(Resumer)> arm) {
  auto ws = std::make_shared<WaitState>();
  ws->task = task_;
  ws->deadline = task_->deadline;
  ws->executor = nullptr;  // set by the worker when it parks us
  ws->cancel = task_->cancel;
  task_->pending_wait = ws;
  task_->pending_arm = std::move(arm);
  task_->caller = std::move(task_->caller).resume();
  // Past the deadline (or once its request is cancelled) the invocation is
  // over, whatever the guest does next: it stops when the host call returns.
  if (task_->exec.cancelRequested()) {
    task_->exec.requestStop(rt::StopReason::kCancelled);
  } else if (Clock::now() >= task_->deadline) {
    task_->exec.requestStop(rt::StopReason::kTimeout);
  }
  return ws->status;
}

// --- Executor ----------------------------------------------------------------

Executor::Executor(ExecutorOptions options) : options_(options) {
  if (options_.threads <= 0) {
    options_.threads = std::max(2u, std::thread::hardware_concurrency());
  }
  if (options_.background_threads <= 0) options_.background_threads = options_.threads;
  stacks_ = std::make_unique<StackPool>(options_.stack_bytes);
  fair_ = std::make_unique<FairQueue>();
}

Executor::~Executor() { stop(); }

absl::Status Executor::start() {
  if (started_) return absl::OkStatus();
  rt::installSignalHandlers();
  for (int i = 0; i < options_.threads; ++i) {
    workers_.push_back(std::make_unique<Worker>());
  }
  for (int i = 0; i < options_.background_threads; ++i) {
    background_.push_back(std::make_unique<Worker>());
    background_.back()->background = true;
  }
  for (auto* pool : {&workers_, &background_}) {
    for (auto& w : *pool) {
      Worker* wp = w.get();
      w->guard.emplace(boost::asio::make_work_guard(w->ioc));
      w->thread = std::jthread([this, wp] { workerLoop(*wp); });
      w->slot.thread = w->thread.native_handle();
    }
  }
  errno = 0;
  int base = getpriority(PRIO_PROCESS, 0);  // the starting thread's; threads inherit it
  base_nice_ = errno == 0 ? base : 0;
  background_nice_now_.store(std::max(0, options_.background_nice));
  watchdog_ = std::jthread([this](std::stop_token st) { watchdogLoop(st); });
  started_ = true;
  return absl::OkStatus();
}

void Executor::stop() {
  if (!started_) return;
  started_ = false;
  // Parked fibers hold guest frames; they must finish, never be unwound.
  {
    std::lock_guard lock(waits_mu_);
    for (auto& w : waits_) Resumer(w).resume(absl::CancelledError("node stopping"));
    waits_.clear();
  }
  auto give_up = Clock::now() + std::chrono::seconds(10);
  while (live_.load() > 0 && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (live_.load() > 0) {
    fprintf(stderr, "waverless: executor stopping with %llu fibers still live\n",
            static_cast<unsigned long long>(live_.load()));
  }
  watchdog_.request_stop();
  if (watchdog_.joinable()) watchdog_.join();
  for (auto* pool : {&workers_, &background_}) {
    for (auto& w : *pool) {
      w->guard.reset();
      w->ioc.stop();
    }
  }
  for (auto* pool : {&workers_, &background_}) {
    for (auto& w : *pool) {
      if (w->thread.joinable()) w->thread.join();
    }
  }
  workers_.clear();
  background_.clear();
}

void Executor::spawn(Clock::time_point deadline, absl::AnyInvocable<void(Fiber&)> job,
                     SpawnOptions options) {
  auto* task = new FiberTask();
  task->job = std::move(job);
  task->deadline = deadline;
  task->exec.token = next_token_.fetch_add(1);
  task->tenant = options.tenant;
  task->cancel = std::move(options.cancel);
  if (task->cancel) task->exec.cancelled = &task->cancel->flag();
  live_.fetch_add(1);
  if (options.background) {
    if (task->cancel) task->cancel->markLong();
    fair_->push(task);  // its thread is the first background one free
    wakeBackground();
    return;
  }
  task->owner = options.prefer_caller && t_executor == this && !t_worker->background
                    ? t_worker
                    : workers_[next_worker_.fetch_add(1) % workers_.size()].get();
  task->exec.slot = &task->owner->slot;
  post(task);
}

void Executor::wakeBackground() {
  for (auto& w : background_) {
    Worker* wp = w.get();
    if (!wp->pull_posted.exchange(true)) {
      boost::asio::post(wp->ioc, [this, wp] { pull(*wp); });
    }
  }
}

// One background task per turn, then the thread serves whatever else was
// posted meanwhile (resumed fibers) before taking the next.
void Executor::pull(Worker& w) {
  w.pull_posted.store(false);
  FiberTask* task = fair_->pop();
  if (task == nullptr) return;
  task->owner = &w;
  task->exec.slot = &w.slot;
  runSlice(w, task);
  if (fair_->size() > 0 && !w.pull_posted.exchange(true)) {
    boost::asio::post(w.ioc, [this, wp = &w] { pull(*wp); });
  }
}

void Executor::post(FiberTask* task) {
  Worker* w = task->owner;
  boost::asio::post(w->ioc, [this, w, task] { runSlice(*w, task); });
}

void Executor::workerLoop(Worker& w) {
  rt::ensureAltStack();
  w.tid.store(gettid());
  if (w.background && options_.background_nice > 0) {
    // Per thread on Linux; lowering one's own priority needs no privilege.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), base_nice_ + options_.background_nice);
  }
  t_executor = this;
  t_worker = &w;
  w.ioc.run();
  t_executor = nullptr;
  t_worker = nullptr;
}

std::vector<boost::asio::io_context*> Executor::ioContexts() {
  std::vector<boost::asio::io_context*> out;
  for (auto& w : workers_) out.push_back(&w->ioc);
  return out;
}

void Executor::runSlice(Worker& w, FiberTask* task) {
  if (!task->fiber) {
    task->fiber = ctx::fiber(std::allocator_arg, PooledStack{stacks_.get(), &task->exec},
                             [task](ctx::fiber&& caller) {
                               task->caller = std::move(caller);
                               Fiber f(task);
                               task->job(f);
                               task->job = nullptr;
                               task->finished = true;
                               return std::move(task->caller);
                             });
  }
  rt::setCurrent(&task->exec);
  if (task->cancel) w.running_cancel.store(task->cancel.get());
  w.slot.deadline_ns.store(toNs(task->deadline), std::memory_order_relaxed);
  w.slot.running_token.store(task->exec.token, std::memory_order_release);
  if (!w.background) w.slices.fetch_add(1, std::memory_order_relaxed);
  task->slice_start = Clock::now();
  task->fiber = std::move(task->fiber).resume();
  if (!task->finished) task->run_time += Clock::now() - task->slice_start;
  w.slot.running_token.store(0, std::memory_order_release);
  if (task->cancel) {
    w.running_cancel.store(nullptr);
    // The watchdog is between loading the pointer and reading the flag: a
    // few instructions, unless it was descheduled right there.
    while (w.reading.load()) std::this_thread::yield();
  }
  rt::setCurrent(nullptr);

  if (task->finished) {
    delete task;
    live_.fetch_sub(1);
    return;
  }
  if (task->pending_wait) {
    if (task->cancel) task->cancel->markLong();  // it parked: not answering right away
    std::shared_ptr<WaitState> ws = std::move(task->pending_wait);
    auto arm = std::move(task->pending_arm);
    ws->executor = this;
    if (!started_) {
      Resumer(ws).resume(absl::CancelledError("node stopping"));
    } else {
      registerWait(ws);
    }
    arm(Resumer(ws));
  }
}

void Executor::registerWait(std::shared_ptr<WaitState> w) {
  std::lock_guard lock(waits_mu_);
  waits_.push_back(std::move(w));
}

// The background threads' nice value exists to let foreground work (short
// requests) win the CPU from them inside the node. Against other processes
// it only loses: with one busy neighbour on its core, a background thread
// at nice 5 gets about a quarter of it, and a long computation takes twice
// as long as at nice 0. So it applies only while the foreground is busy: a
// foreground slice in the last tick demotes the background threads at
// once; kIdleTicks quiet ticks in a row promote them back to the nice of
// the rest of the process (values here are relative to it).
// Promoting needs CAP_SYS_NICE (or RLIMIT_NICE); without it the first
// refusal leaves them at background_nice for good, as before.
void Executor::adjustBackgroundNice(uint64_t& seen_slices, int& idle_ticks) {
  constexpr int kIdleTicks = 5;
  uint64_t slices = 0;
  for (auto& w : workers_) slices += w->slices.load(std::memory_order_relaxed);
  bool busy = slices != seen_slices;
  seen_slices = slices;
  idle_ticks = busy ? 0 : idle_ticks + 1;
  int want = busy                       ? options_.background_nice
             : idle_ticks >= kIdleTicks ? 0
                                        : background_nice_now_.load();
  if (want == background_nice_now_.load() || !can_promote_) return;
  for (auto& w : background_) {
    pid_t tid = w->tid.load();
    if (tid != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(tid), base_nice_ + want) != 0) {
      can_promote_ = false;  // no privilege to go back down; stay demoted
      want = options_.background_nice;
      for (auto& b : background_) {
        if (pid_t t = b->tid.load(); t != 0) {
          setpriority(PRIO_PROCESS, static_cast<id_t>(t), base_nice_ + want);
        }
      }
      break;
    }
  }
  background_nice_now_.store(want);
}

void Executor::watchdogLoop(std::stop_token st) {
  const int sig = rt::timeoutSignal();
  uint64_t seen_slices = 0;
  int idle_ticks = 0;
  while (!st.stop_requested()) {
    std::this_thread::sleep_for(options_.tick);
    if (options_.background_nice > 0) adjustBackgroundNice(seen_slices, idle_ticks);
    auto now = Clock::now();
    int64_t now_ns = toNs(now);
    for (auto* pool : {&workers_, &background_}) {
      for (auto& w : *pool) {
        uint64_t tok = w->slot.running_token.load(std::memory_order_acquire);
        if (tok == 0) continue;
        bool stop = w->slot.deadline_ns.load(std::memory_order_relaxed) < now_ns;
        if (!stop) {
          w->reading.store(true);
          const common::CancelScope* scope = w->running_cancel.load();
          stop = scope != nullptr && scope->cancelled() &&
                 w->slot.running_token.load(std::memory_order_acquire) == tok;
          w->reading.store(false);
        }
        if (stop) {
          w->slot.interrupt_token.store(tok, std::memory_order_relaxed);
          pthread_kill(w->slot.thread, sig);
        }
      }
    }
    std::vector<std::shared_ptr<WaitState>> expired;
    {
      std::lock_guard lock(waits_mu_);
      std::erase_if(waits_, [&](const std::shared_ptr<WaitState>& ws) {
        if (ws->fired.load()) return true;
        if (ws->deadline < now || (ws->cancel && ws->cancel->cancelled())) {
          expired.push_back(ws);
          return true;
        }
        return false;
      });
    }
    for (auto& ws : expired) {
      if (ws->cancel && ws->cancel->cancelled()) {
        Resumer(ws).resume(ws->cancel->reason());
      } else {
        Resumer(ws).resume(ws->is_sleep
                               ? absl::OkStatus()
                               : absl::DeadlineExceededError(
                                     "the invocation's deadline passed while it was waiting"));
      }
    }
  }
}

ExecutorStats Executor::stats() const {
  ExecutorStats s;
  s.live_fibers = live_.load();
  s.threads = workers_.size() + background_.size();
  s.background_nice = background_nice_now_.load();
  s.queued_background = fair_->size();
  s.pooled_stacks = stacks_->pooled();
  std::lock_guard lock(waits_mu_);
  s.parked_fibers = waits_.size();
  return s;
}

}  // namespace waverless::wasm
