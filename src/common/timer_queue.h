// TimerQueue: callbacks run at a point in time, on one thread of its own.
//
// For the few deadlines that no running code would notice by itself (a
// request whose entry has returned while what it triggered still runs).
// Callbacks run on the queue's thread in deadline order and must not block;
// cancel() of a timer that has not fired guarantees it never fires.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"

namespace waverless::common {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;

  TimerQueue() = default;
  ~TimerQueue() { stop(); }
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  void start();
  void stop();  // idempotent; timers not yet fired never fire

  // Runs fn at `at` (at once if it has passed). The id cancels it.
  TimerId schedule(Clock::time_point at, absl::AnyInvocable<void()> fn);
  // True if the timer was pending and now never fires.
  bool cancel(TimerId id);
  size_t pending() const;

 private:
  void loop(std::stop_token st);

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::pair<Clock::time_point, TimerId>, absl::AnyInvocable<void()>> timers_
      ABSL_GUARDED_BY(mu_);
  std::map<TimerId, Clock::time_point> deadlines_ ABSL_GUARDED_BY(mu_);
  std::jthread thread_;
};

}  // namespace waverless::common
