// A small in-memory ring of metric samples, for the web console's charts of
// the last minutes (GET /api/metrics/history). Every interval it copies the
// values of a fixed list of families from the Registry; Prometheus stays
// the long-term store.
//
// Owns: the ring and its sampling thread. Must not: add work to the request
// path: it reads the same relaxed atomics /metrics renders, once per
// interval, whether or not a console is open.
//
// Threading: start()/stop() from one thread; json() and sampleNow() from
// any (the ring is guarded by mu_).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "metrics/metrics.h"

namespace waverless::metrics {

struct HistoryOptions {
  std::chrono::milliseconds interval{1000};
  size_t capacity = 300;  // 5 minutes at 1 s
  // The families sampled; missing ones are skipped.
  std::vector<std::string> families = {"wl_http_requests_total",
                                       "wl_http_errors_total",
                                       "wl_invocations_total",
                                       "wl_cold_starts_total",
                                       "wl_invocation_seconds",
                                       "wl_kv_bytes",
                                       "wl_kv_ops",
                                       "wl_process_rss_bytes",
                                       "wl_instances",
                                       "wl_requests_inflight",
                                       "wl_node_up",
                                       "wl_node_running",
                                       "wl_node_rss_bytes"};
  // Sample timestamps (unix ms); injectable for tests.
  std::function<int64_t()> now_ms;
};

class History {
 public:
  History(const Registry& registry, HistoryOptions options);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // Starts the sampling thread (a sample at once, then one per interval).
  absl::Status start();
  // Idempotent; no sample is taken after it returns.
  void stop();
  // Takes one sample now (what the thread does each interval).
  void sampleNow();

  // The samples taken after since_ms (unix ms), oldest first:
  // {"interval_ms":N,"samples":[{"t":MS,"v":{"series":value,...},
  //  "h":{"series":{"b":[per-bucket counts],"n":count,"s":sum_seconds}}}],
  //  "bounds":[bucket upper bounds in seconds]}. Cumulative values, as in
  // /metrics: a chart takes differences between samples.
  std::string json(int64_t since_ms) const;

 private:
  struct Sample {
    int64_t t_ms;
    std::string json;  // the sample's object, rendered once when taken
  };

  const Registry& registry_;
  const HistoryOptions options_;
  mutable std::mutex mu_;
  std::deque<Sample> ring_ ABSL_GUARDED_BY(mu_);
  std::jthread thread_;
};

}  // namespace waverless::metrics
