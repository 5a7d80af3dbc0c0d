// The open-loop engine: one thread, epoll, a pool of keep-alive HTTP/1.1
// connections with at most one request in flight each (no pipelining).
//
// Requests are due at the times Arrivals yields, whatever the server does.
// A due request goes out on an idle connection; when none is idle it waits
// in a queue here, as in a client whose connection pool is exhausted. Its
// latency is always taken from the scheduled time, so a slow server is
// charged for the requests it delayed (no coordinated omission).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "load/arrivals.h"

namespace waverless::load {

struct OpenLoopOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::vector<std::string> requests;  // wire bytes per target, picked by `picker`
  std::unique_ptr<Arrivals> arrivals;
  TargetPicker picker = TargetPicker::single();
  int64_t duration_ns = 0;  // schedule length
  int64_t warmup_ns = 0;    // requests due before this are sent, not recorded
  int64_t drain_ns = 0;     // after the schedule, wait this long for answers
  int connections = 64;
  // Wake this long before a due time and poll the rest of the way: timer
  // wake-ups on a VM land tens of us late. Costs CPU; use it only when the
  // load generator has a core of its own.
  int64_t spin_ns = 0;
  // Set from another thread to end the run early (what was answered by
  // then is the result); checked at least every 100 ms.
  const std::atomic<bool>* cancel = nullptr;
};

struct Sample {
  int64_t due_ns;        // scheduled time, from the start of the run
  uint32_t latency_us;   // from due time to the end of the response
  uint32_t send_lag_us;  // from due time to the first byte written
  uint32_t target;
  uint16_t status;  // HTTP status, 0 for a connection failure
};

struct OpenLoopResult {
  std::vector<Sample> samples;  // recorded (past warmup), in completion order
  uint64_t scheduled = 0;       // recorded requests due
  uint64_t unfinished = 0;      // recorded requests without an answer at the end
  int64_t measured_ns = 0;      // from the end of warmup to the last answer (>= schedule)
  int peak_in_flight = 0;
  uint64_t reconnects = 0;
  std::string error;  // setup failure; empty on success
};

OpenLoopResult runOpenLoop(OpenLoopOptions options);

}  // namespace waverless::load
