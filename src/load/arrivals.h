// When requests are scheduled (arrival processes) and where they go (target
// choice). The schedule is fixed in advance of any response: that is what
// makes the load open-loop, and latency is measured from these times.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace waverless::load {

// Yields scheduled send times in ns from the start of the run, ascending.
class Arrivals {
 public:
  virtual ~Arrivals() = default;
  // Next scheduled time; >= duration means the schedule is over.
  virtual int64_t next() = 0;
};

// Evenly spaced: rate requests per second.
std::unique_ptr<Arrivals> constantArrivals(double rate);
// Poisson process: exponential gaps with mean 1/rate.
std::unique_ptr<Arrivals> poissonArrivals(double rate, uint64_t seed);
// `size` requests at once every `period_ns` (the first burst at t = 0).
std::unique_ptr<Arrivals> burstArrivals(int size, int64_t period_ns);
// A trace: rates[k] req/s during second k, Poisson within each second.
// Past the last second the schedule ends.
std::unique_ptr<Arrivals> traceArrivals(std::vector<double> rates, uint64_t seed);

// Picks the target of each request: a single one, or one of n by a Zipf law
// of exponent s over popularity ranks. Ranks map to targets through a seeded
// shuffle, so the hot targets are not simply the first names.
class TargetPicker {
 public:
  static TargetPicker single() { return TargetPicker(); }
  static TargetPicker zipf(size_t n, double s, uint64_t seed);

  size_t pick();
  size_t size() const { return targets_; }

 private:
  TargetPicker() = default;
  size_t targets_ = 1;
  std::vector<double> cdf_;  // by rank
  std::vector<uint32_t> rank_to_target_;
  std::mt19937_64 rng_;
};

}  // namespace waverless::load
