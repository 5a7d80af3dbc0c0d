// Prometheus-style metrics: counters, gauges and latency histograms with
// labels, rendered in the text exposition format for GET /metrics.
//
// Owns: the values. Must not: know what is measured (callers name metrics).
// Hot-path cost: a counter/histogram handle is looked up once and then
// updated with relaxed atomics, no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace waverless::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Latency histogram with fixed buckets in seconds (Prometheus le=).
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {
      0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,    0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    5.0};
  void observe(double seconds);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  friend class Registry;
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

class Registry {
 public:
  // Returned references stay valid for the registry's lifetime.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {});
  // A value read at render time (pool sizes, RSS, ...).
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);
  // Several labelled values read at render time (e.g. pool size per app).
  using Samples = std::vector<std::pair<Labels, double>>;
  void gauges(const std::string& name, const std::string& help, std::function<Samples()> read);

  std::string render() const;

  // The current values of the named families, for the console's history
  // ring: counters and gauges as one number per series, histograms as
  // their per-bucket counts. A series is named `family{labels}`.
  struct HistogramValue {
    std::array<uint64_t, Histogram::kBounds.size() + 1> buckets{};  // not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  struct Snapshot {
    std::vector<std::pair<std::string, double>> values;
    std::vector<std::pair<std::string, HistogramValue>> histograms;
  };
  Snapshot snapshot(const std::vector<std::string>& families) const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;      // by label text
    std::map<std::string, std::unique_ptr<Histogram>> histograms;  // by label text
    std::vector<std::function<Samples()>> gauges;
  };
  Family& family(const std::string& name, const std::string& help, const char* type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_
  mutable size_t last_render_bytes_ = 0;    // guarded by mu_: sizes the next render
};

std::string labelText(const Labels& labels);

}  // namespace waverless::metrics
