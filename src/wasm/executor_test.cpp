#include "wasm/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace waverless::wasm {
namespace {

TEST(Executor, FibersParkWithoutHoldingThreads) {
  Executor ex({.threads = 2});
  ASSERT_TRUE(ex.start().ok());
  constexpr int kN = 1000;
  std::mutex mu;
  std::vector<Resumer> parked;
  std::atomic<int> finished{0};
  for (int i = 0; i < kN; ++i) {
    ex.spawn(Clock::now() + std::chrono::seconds(30), [&](Fiber& f) {
      auto st = f.wait([&](Resumer r) {
        std::lock_guard lock(mu);
        parked.push_back(r);
      });
      EXPECT_TRUE(st.ok());
      finished++;
    });
  }
  for (int i = 0; i < 2000; ++i) {
    {
      std::lock_guard lock(mu);
      if (parked.size() == kN) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(ex.stats().parked_fibers, static_cast<uint64_t>(kN));
  EXPECT_EQ(finished.load(), 0);
  for (auto& r : parked) {
    r.resume(absl::OkStatus());
    r.resume(absl::InternalError("second resume is ignored"));
  }
  for (int i = 0; i < 2000 && finished < kN; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(finished.load(), kN);
  ex.stop();
}

TEST(Executor, DeadlineWakesParkedFiber) {
  Executor ex({.threads = 1});
  ASSERT_TRUE(ex.start().ok());
  std::promise<absl::Status> p;
  ex.spawn(Clock::now() + std::chrono::milliseconds(50),
           [&](Fiber& f) { p.set_value(f.wait([](Resumer) {})); });
  auto st = p.get_future().get();
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded);
  ex.stop();
}

TEST(Executor, FiberResumesOnTheThreadThatStartedIt) {
  Executor ex({.threads = 2});
  ASSERT_TRUE(ex.start().ok());
  std::atomic<int> same{0}, done{0};
  for (int i = 0; i < 50; ++i) {
    ex.spawn(Clock::now() + std::chrono::seconds(10), [&](Fiber& f) {
      auto before = std::this_thread::get_id();
      (void)f.wait([](Resumer r) { std::thread([r] { r.resume(absl::OkStatus()); }).detach(); });
      same += before == std::this_thread::get_id();
      done++;
    });
  }
  for (int i = 0; i < 1000 && done < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(same.load(), 50);
  ex.stop();
}

TEST(Executor, StopWakesParkedFibersWithCancelled) {
  Executor ex({.threads = 1});
  ASSERT_TRUE(ex.start().ok());
  std::atomic<int> cancelled{0};
  for (int i = 0; i < 10; ++i) {
    ex.spawn(Clock::now() + std::chrono::seconds(30), [&](Fiber& f) {
      cancelled += f.wait([](Resumer) {}).code() == absl::StatusCode::kCancelled;
    });
  }
  for (int i = 0; i < 1000 && ex.stats().parked_fibers < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ex.stop();
  EXPECT_EQ(cancelled.load(), 10);
}

}  // namespace
}  // namespace waverless::wasm
