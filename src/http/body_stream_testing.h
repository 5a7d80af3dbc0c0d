// Test helpers: threads that wait on a BodyStream the way a parked fiber
// does, through its callbacks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include "http/body_stream.h"

namespace waverless::http::testing {

// A callback to register, and a wait for it to have run.
class OneShot {
 public:
  absl::AnyInvocable<void() &&> callback() {
    return [this] {
      std::lock_guard<std::mutex> l(mu_);
      fired_ = true;
      cv_.notify_one();
    };
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return fired_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool fired_ = false;
};

// Reads s to its end or error (counted in *errors when given).
inline std::string drainBlocking(BodyStream& s, std::atomic<int>* errors = nullptr) {
  std::string out;
  std::string buf(50000, '\0');
  for (;;) {
    auto r = s.tryRead(buf.data(), buf.size());
    if (r.kind == BodyStream::ReadResult::kData) {
      out.append(buf.data(), r.bytes);
      continue;
    }
    if (r.kind != BodyStream::ReadResult::kWait) {
      if (r.kind == BodyStream::ReadResult::kError && errors != nullptr) ++*errors;
      return out;
    }
    OneShot ready;
    s.onReadable(ready.callback());
    ready.wait();
  }
}

}  // namespace waverless::http::testing
