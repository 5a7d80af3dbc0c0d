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
#include "absl/functional/any_invocable.h"
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
  // What to do once the work turns out to be long (it parked, or went to a
  // background thread): the HTTP server then starts watching for the client
  // going away, which a short request never needs. Set by the owner before
  // it first shares the scope; reset() keeps it, so a scope reused for the
  // next request of the same owner costs no new hook.
  void onLong(absl::AnyInvocable<void()> hook) {
    long_.store(false, std::memory_order_relaxed);
    long_hook_ = std::move(hook);
  }
  // Runs the hook, once, on the calling thread (it must not block).
  void markLong() {
    if (long_.load(std::memory_order_relaxed) || long_.exchange(true)) return;
    if (long_hook_) long_hook_();  // only the caller that flipped long_ gets here
  }
  // Makes the scope new again (the onLong hook stays), for its owner to
  // reuse it once nobody else holds it (shared_ptr::use_count() == 1): saves
  // an allocation per request. A scope never cancelled has an OK reason, so
  // the common case takes no lock.
  void reset() {
    if (cancelled_.load(std::memory_order_acquire)) {
      std::lock_guard lock(mu_);
      reason_ = absl::OkStatus();
      cancelled_.store(false, std::memory_order_release);
    }
    long_.store(false, std::memory_order_relaxed);
  }

 private:
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> long_{false};
  // Written by the owner before sharing; run by the one markLong that flips long_.
  absl::AnyInvocable<void()> long_hook_;
  mutable std::mutex mu_;
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace waverless::common
