#include "cluster/cpu_load.h"

#include <time.h>

#include <cmath>

namespace waverless::cluster {

namespace {

int64_t nowNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

CpuLoad::CpuLoad()
    : last_wall_ns_(nowNs(CLOCK_MONOTONIC)), last_cpu_ns_(nowNs(CLOCK_PROCESS_CPUTIME_ID)) {}

double CpuLoad::cores() {
  const int64_t wall = nowNs(CLOCK_MONOTONIC);
  const int64_t since = wall - last_wall_ns_.load(std::memory_order_relaxed);
  // One caller samples; the others read the average it leaves.
  if (since >= kSampleNs && !sampling_.exchange(true, std::memory_order_acquire)) {
    const int64_t cpu = nowNs(CLOCK_PROCESS_CPUTIME_ID);
    const double used = double(cpu - last_cpu_ns_.load(std::memory_order_relaxed)) / double(since);
    const double alpha = 1.0 - std::exp(-double(since) / 1e9);
    const double avg = average_.load(std::memory_order_relaxed);
    average_.store(avg + alpha * (used - avg), std::memory_order_relaxed);
    last_cpu_ns_.store(cpu, std::memory_order_relaxed);
    last_wall_ns_.store(wall, std::memory_order_relaxed);
    sampling_.store(false, std::memory_order_release);
  }
  return average_.load(std::memory_order_relaxed);
}

}  // namespace waverless::cluster
