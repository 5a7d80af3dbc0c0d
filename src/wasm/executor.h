// Executor: runs each invocation on its own fiber (Boost.Context) over a small
// fixed set of threads, so a host call that waits parks the fiber instead of
// pinning a thread. A watchdog thread enforces deadlines: it interrupts a
// fiber running guest code past its deadline (signal to that thread, which
// traps only inside guest code) and wakes parked fibers whose deadline passed.
//
// Fibers never migrate: one is always resumed on the thread that started it,
// so thread-local state seen by host code stays consistent.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "common/cancel_scope.h"
#include "wasm/rt/exec_context.h"

namespace boost::asio {
class io_context;
}

namespace waverless::wasm {

using Clock = std::chrono::steady_clock;

struct FiberTask;
struct WaitState;
class Executor;

// Wakes one parked fiber. Copyable; the first resume() (or the deadline)
// wins, later ones are ignored.
class Resumer {
 public:
  Resumer() = default;
  void resume(absl::Status status) const;

 private:
  friend class Fiber;
  friend class Executor;
  explicit Resumer(std::shared_ptr<WaitState> s) : state_(std::move(s)) {}
  std::shared_ptr<WaitState> state_;
};

// The execution context of one invocation, handed to the job it runs.
class Fiber {
 public:
  rt::ExecContext& exec();
  Clock::time_point deadline() const;
  // Time this fiber has spent on a CPU so far (its slices), not parked.
  std::chrono::nanoseconds runTime(Clock::time_point now = Clock::now()) const;

  // Parks this fiber. `arm` runs after the fiber is parked and receives the
  // Resumer to hand to whoever completes the wait. Returns the status given
  // to resume(), or DeadlineExceeded when the invocation's deadline passes.
  absl::Status wait(absl::AnyInvocable<void(Resumer)> arm);

  // Parks this fiber for d (at the watchdog's resolution). DeadlineExceeded
  // if the invocation's deadline comes first.
  absl::Status sleepFor(std::chrono::nanoseconds d);

 private:
  friend class Executor;
  explicit Fiber(FiberTask* t) : task_(t) {}
  FiberTask* task_;
};

struct ExecutorOptions {
  int threads = 0;  // 0: one per core, at least 2
  // Threads for background work (see SpawnOptions::background); 0: as many
  // as `threads`. They compete with the foreground threads for the cores,
  // so the kernel's scheduler shares the CPU between the two kinds, with
  // this nice value on the background ones while the foreground is busy:
  // at 5, a busy foreground thread gets ~3/4 of a core against a busy
  // background one, so short requests keep flowing while long ones compute.
  // While the foreground is idle (10 ms without a slice) the background
  // threads go back to the process's nice, when it may (CAP_SYS_NICE): nice
  // 5 would only hand the CPU to other processes. Relative to the process's
  // nice at start().
  int background_threads = 0;
  int background_nice = 5;
  size_t stack_bytes = size_t{1} << 20;  // per fiber, plus a guard
  std::chrono::milliseconds tick{2};     // watchdog resolution
};

struct ExecutorStats {
  uint64_t live_fibers = 0;
  uint64_t parked_fibers = 0;
  uint64_t threads = 0;  // foreground + background
  uint64_t pooled_stacks = 0;
  uint64_t queued_background = 0;  // not started yet
  int background_nice = 0;         // the background threads' nice now, over the process's
};

struct SpawnOptions {
  // A caller that is itself a foreground executor thread (e.g. an HTTP
  // handler running on one) keeps the job: no hand-off to another thread.
  bool prefer_caller = false;
  // Background jobs (triggered work, heavy entries) wait in a queue served
  // round-robin across tenants by the background threads, so one tenant's
  // flood delays only itself. Foreground jobs run on the foreground threads
  // in arrival order.
  bool background = false;
  const void* tenant = nullptr;  // fairness key (an app); any stable address
  // Cancelled: a job not started yet never runs its guest code (the job
  // still runs, to report); a parked one is woken with the scope's reason;
  // guest code is stopped at its next host call or by the timeout signal.
  std::shared_ptr<common::CancelScope> cancel;
};

class Executor {
 public:
  struct Worker;
  class StackPool;
  class FairQueue;

  explicit Executor(ExecutorOptions options);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  absl::Status start();
  void stop();  // idempotent; waits for running fibers to park or finish

  // Runs job on a new fiber; the job must finish (or park) on its own.
  void spawn(Clock::time_point deadline, absl::AnyInvocable<void(Fiber&)> job,
             SpawnOptions options = {});

  // Each foreground thread runs one of these; other components (the HTTP
  // server) may run their I/O on them too, so a request is parsed, run and
  // answered on one thread.
  std::vector<boost::asio::io_context*> ioContexts();

  ExecutorStats stats() const;

 private:
  friend class Fiber;
  friend class Resumer;

  void post(FiberTask* task);
  void wakeBackground();
  void pull(Worker& w);
  void workerLoop(Worker& w);
  void runSlice(Worker& w, FiberTask* task);
  void watchdogLoop(std::stop_token st);
  void adjustBackgroundNice(uint64_t& seen_slices, int& idle_ticks);  // watchdog thread
  void registerWait(std::shared_ptr<WaitState> w);

  ExecutorOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;     // foreground
  std::vector<std::unique_ptr<Worker>> background_;  // serve fair_
  std::unique_ptr<StackPool> stacks_;
  std::unique_ptr<FairQueue> fair_;
  std::atomic<uint64_t> next_worker_{0};
  std::atomic<uint64_t> next_token_{1};
  std::atomic<uint64_t> live_{0};

  mutable std::mutex waits_mu_;
  std::vector<std::shared_ptr<WaitState>> waits_;  // guarded by waits_mu_

  std::jthread watchdog_;
  std::atomic<int> background_nice_now_{0};  // written by the watchdog (and start)
  bool can_promote_ = true;                  // watchdog thread only
  int base_nice_ = 0;                        // the process's, at start()
  bool started_ = false;
};

}  // namespace waverless::wasm
