// CancelScope: one flag shared by everything done on behalf of one request
// (its whole trigger tree), so that a single cancel() stops all of it.
//
// Whoever ends a request early (its deadline, a limit, a failure, the client
// going away) cancels the scope once; everything that runs work for it polls
// cancelled() at its checkpoints: the executor before a queued invocation
// starts and whenever a fiber runs or parks, the watchdog for guest code that
// computes without calling the host. The first reason given wins.
#pragma once

#include <atomic>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"

namespace waverless::common {

class CancelScope {
 public:
  // Returns true for the call that cancelled the scope; later calls (and
  // their reasons) are ignored. `why` must not be OK.
  bool cancel(absl::Status why) {
    std::lock_guard lock(mu_);
    if (cancelled_.load(std::memory_order_relaxed)) return false;
    reason_ = why.ok() ? absl::CancelledError("cancelled") : std::move(why);
    cancelled_.store(true, std::memory_order_release);
    return true;
  }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // OK until cancelled; then the first reason.
  absl::Status reason() const {
    std::lock_guard lock(mu_);
    return reason_;
  }
  // For code that can only hold a plain flag (the wasm runtime's context).
  const std::atomic<bool>& flag() const { return cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace waverless::common
