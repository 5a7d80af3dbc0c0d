// The console's experiments: a load (src/load/) run from this node against
// itself, one at a time, with the last results kept in memory.
//
//   POST /api/experiments?app=APP[&fn=FN][&method=M][&arrival=poisson|constant|burst|trace]
//        [&rate=R][&duration=S][&connections=N][&burst=N&period_ms=P][&trace=R1,R2,...]
//        body: the request body
//   GET  /api/experiments          the runs, newest first, without their samples
//   GET  /api/experiments/ID       one run: spec, state and its result (load/report.h)
//
// The load goes to the address the caller used (its Host header), so it
// takes the same path as the browser's requests; plain HTTP only.
//
// Owns: the runner thread and the kept results. Must not: run two loads at
// once (409), or outlive stop() (a running load is cancelled).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "http/http_server.h"

namespace waverless::master {

class Experiments {
 public:
  explicit Experiments(size_t keep = 20) : keep_(keep) {}
  ~Experiments() { stop(); }
  Experiments(const Experiments&) = delete;
  Experiments& operator=(const Experiments&) = delete;

  // Cancels a running load and waits for its thread. Idempotent.
  void stop();

  // Serves /api/experiments[/ID].
  http::Response handle(const http::Request& req);

 private:
  struct Run {
    uint64_t id = 0;
    std::string spec_json;
    std::string state;  // running | done | failed
    int64_t started_ms = 0, finished_ms = 0;
    std::string result_json;  // when done
    std::string error;        // when failed
  };
  http::Response startRun(const http::Request& req);
  static std::string runJson(const Run& r, bool with_result);

  const size_t keep_;
  mutable std::mutex mu_;
  std::deque<Run> runs_ ABSL_GUARDED_BY(mu_);  // newest first
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancel_{false};
  std::jthread thread_;  // the last run's; joined before the next starts
};

}  // namespace waverless::master
