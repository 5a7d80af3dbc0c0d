#include "common/timer_queue.h"

namespace waverless::common {

void TimerQueue::start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token st) { loop(st); });
}

void TimerQueue::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
  std::lock_guard lock(mu_);
  timers_.clear();
  deadlines_.clear();
}

TimerQueue::TimerId TimerQueue::schedule(Clock::time_point at, absl::AnyInvocable<void()> fn) {
  TimerId id;
  bool earliest;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    earliest = timers_.empty() || at < timers_.begin()->first.first;
    timers_.emplace(std::make_pair(at, id), std::move(fn));
    deadlines_.emplace(id, at);
  }
  if (earliest) cv_.notify_all();
  return id;
}

bool TimerQueue::cancel(TimerId id) {
  std::lock_guard lock(mu_);
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return false;
  timers_.erase({it->second, id});
  deadlines_.erase(it);
  return true;
}

size_t TimerQueue::pending() const {
  std::lock_guard lock(mu_);
  return timers_.size();
}

void TimerQueue::loop(std::stop_token st) {
  std::unique_lock lock(mu_);
  while (!st.stop_requested()) {
    if (timers_.empty()) {
      cv_.wait(lock, st, [&] { return !timers_.empty(); });
      continue;
    }
    auto first = timers_.begin();
    Clock::time_point at = first->first.first;
    if (Clock::now() < at) {
      cv_.wait_until(lock, st, at,
                     [&] { return !timers_.empty() && timers_.begin()->first.first < at; });
      continue;
    }
    auto fn = std::move(first->second);
    deadlines_.erase(first->first.second);
    timers_.erase(first);
    lock.unlock();
    fn();  // outside the lock: it may schedule or cancel timers
    lock.lock();
  }
}

}  // namespace waverless::common
