#include "cluster/cpu_load.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace waverless::cluster {
namespace {

using Clock = std::chrono::steady_clock;

// Busy for a second on one thread, then idle for a second: the average rises toward one core
// and falls back. Bounds are loose: the machine is shared.
TEST(CpuLoad, FollowsTheProcesssCpuTimeUpAndDown) {
  CpuLoad load;
  std::atomic<bool> stop{false};
  std::thread spin([&] {
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  for (auto end = Clock::now() + std::chrono::milliseconds(1500); Clock::now() < end;) {
    load.cores();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double busy = load.cores();
  stop = true;
  spin.join();
  EXPECT_GT(busy, 0.3) << "one thread spun for 1.5 s";
  for (auto end = Clock::now() + std::chrono::milliseconds(2500); Clock::now() < end;) {
    load.cores();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double idle = load.cores();
  EXPECT_LT(idle, busy / 2) << "nothing ran for 2.5 s";
}

TEST(CpuLoad, ANewMeterReadsZeroUntilItsFirstSample) {
  CpuLoad load;
  EXPECT_EQ(load.cores(), 0.0);
}

}  // namespace
}  // namespace waverless::cluster
