#include "wasm/executor.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
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

// One tenant with a long backlog delays another's work by one turn, not by
// the backlog: the background queue serves tenants round-robin.
TEST(Executor, BackgroundQueueServesTenantsInTurn) {
  Executor ex({.threads = 1, .background_threads = 1});
  ASSERT_TRUE(ex.start().ok());
  int flood_tenant = 0, quiet_tenant = 0;
  std::mutex mu;
  std::vector<int> order;  // 0: flood, 1: quiet
  std::promise<void> all;
  constexpr int kFlood = 200;
  auto job = [&](int who) {
    return [&, who](Fiber&) {
      auto until = Clock::now() + std::chrono::microseconds(200);
      while (Clock::now() < until) {
      }
      std::lock_guard lock(mu);
      order.push_back(who);
      if (order.size() == kFlood + 1) all.set_value();
    };
  };
  auto deadline = Clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < kFlood; ++i) {
    ex.spawn(deadline, job(0), {.background = true, .tenant = &flood_tenant});
  }
  ex.spawn(deadline, job(1), {.background = true, .tenant = &quiet_tenant});
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto pos = std::find(order.begin(), order.end(), 1) - order.begin();
  EXPECT_LT(pos, 10) << "the quiet tenant waited behind the flood";
}

// How many of the process's threads run at this nice value (from /proc).
int backgroundNiceOnProc(int threads_at_nice) {
  int found = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream f(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string v;
    for (int i = 3; i <= 19; ++i) fields >> v;  // field 19: nice
    if (std::stoi(v) == threads_at_nice) found++;
  }
  return found;
}

int baseNice() { return getpriority(PRIO_PROCESS, 0); }

bool canRaisePriority() {
  bool ok = false;
  int base = baseNice();
  std::thread([&ok, base] {
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), base + 5);
    ok = setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), base) == 0;
  }).join();
  return ok;
}

template <class F>
bool waitFor(F cond, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

// Nice 5 is for sharing the node's cores with its own foreground work; with
// the foreground idle it would only hand the CPU to other processes.
TEST(Executor, BackgroundThreadsAreDemotedOnlyWhileTheForegroundIsBusy) {
  Executor ex({.threads = 1, .background_threads = 2});
  ASSERT_TRUE(ex.start().ok());
  const int idle_nice = canRaisePriority() ? 0 : 5;
  EXPECT_TRUE(waitFor([&] { return ex.stats().background_nice == idle_nice; }));
  if (idle_nice == 5) EXPECT_EQ(backgroundNiceOnProc(baseNice() + 5), 2);

  std::atomic<bool> stop{false};
  std::thread load([&] {  // a stream of short foreground calls
    while (!stop) {
      std::promise<void> done;
      ex.spawn(Clock::now() + std::chrono::seconds(5), [&](Fiber&) { done.set_value(); });
      done.get_future().wait();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  EXPECT_TRUE(waitFor([&] { return ex.stats().background_nice == 5; }));
  EXPECT_TRUE(waitFor([&] { return backgroundNiceOnProc(baseNice() + 5) == 2; }));
  stop = true;
  load.join();
  EXPECT_TRUE(waitFor([&] { return ex.stats().background_nice == idle_nice; }));
  ex.stop();
}

TEST(Executor, RunTimeCountsSlicesNotParkedTime) {
  Executor ex({.threads = 1});
  ASSERT_TRUE(ex.start().ok());
  std::promise<std::chrono::nanoseconds> got;
  ex.spawn(Clock::now() + std::chrono::seconds(30), [&](Fiber& f) {
    auto until = Clock::now() + std::chrono::milliseconds(20);
    while (Clock::now() < until) {
    }
    EXPECT_TRUE(f.sleepFor(std::chrono::milliseconds(100)).ok());
    got.set_value(f.runTime());
  });
  auto t = got.get_future().get();
  EXPECT_GE(t, std::chrono::milliseconds(20));
  EXPECT_LT(t, std::chrono::milliseconds(80));
}

TEST(Executor, CancelledScopeWakesParkedFiberWithItsReason) {
  Executor ex({.threads = 1});
  ASSERT_TRUE(ex.start().ok());
  auto scope = std::make_shared<common::CancelScope>();
  std::promise<absl::Status> got;
  ex.spawn(Clock::now() + std::chrono::seconds(30),
           [&](Fiber& f) { got.set_value(f.wait([](Resumer) {})); }, {.cancel = scope});
  for (int i = 0; i < 1000 && ex.stats().parked_fibers < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  scope->cancel(absl::AbortedError("client went away"));
  auto fut = got.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(fut.get().message(), "client went away");
}

}  // namespace
}  // namespace waverless::wasm
