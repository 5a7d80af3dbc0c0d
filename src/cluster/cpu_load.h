// How much CPU this process uses, in cores, averaged over about the last second: the load a
// node reports and places work by (Cluster::localLoad). CPU time, not invocations in flight: an
// invocation parked on a KV round trip uses none, and the node's own raft, RPC and HTTP work
// count as much as its guests'.
//
// Threading: thread-safe and cheap (a clock read and two atomics; a sample at most every
// 100 ms), so a placement decision per request may read it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace waverless::cluster {

class CpuLoad {
 public:
  CpuLoad();
  // Cores' worth of CPU time per second of wall time, exponentially averaged (time constant 1 s).
  double cores();

 private:
  static constexpr int64_t kSampleNs = 100'000'000;
  std::atomic<int64_t> last_wall_ns_;
  std::atomic<int64_t> last_cpu_ns_;
  std::atomic<double> average_{0};
  std::atomic<bool> sampling_{false};
};

}  // namespace waverless::cluster
