// One thread running queued jobs in order: keeps slow control work (deploys,
// rendering /metrics) off the HTTP I/O threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace waverless::master {

class JobQueue {
 public:
  JobQueue() = default;
  ~JobQueue() { stop(); }
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  void start() {
    thread_ = std::jthread([this](std::stop_token st) { loop(st); });
  }
  // Jobs still queued are dropped; the running one finishes.
  void stop() {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop(std::stop_token st) {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, st, [&] { return !jobs_.empty(); });
        if (st.stop_requested()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  std::jthread thread_;
};

}  // namespace waverless::master
