#include "load/arrivals.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace waverless::load {

namespace {

constexpr double kNsPerS = 1e9;

class Constant : public Arrivals {
 public:
  explicit Constant(double rate) : gap_ns_(kNsPerS / rate) {}
  int64_t next() override { return static_cast<int64_t>(gap_ns_ * static_cast<double>(i_++)); }

 private:
  double gap_ns_;
  uint64_t i_ = 0;
};

class Poisson : public Arrivals {
 public:
  Poisson(double rate, uint64_t seed) : gap_(rate / kNsPerS), rng_(seed) {}
  int64_t next() override {
    int64_t t = static_cast<int64_t>(t_);
    t_ += gap_(rng_);
    return t;
  }

 private:
  std::exponential_distribution<double> gap_;  // in ns
  std::mt19937_64 rng_;
  double t_ = 0;
};

class Burst : public Arrivals {
 public:
  Burst(int size, int64_t period_ns) : size_(size), period_ns_(period_ns) {}
  int64_t next() override {
    int64_t t = (i_ / size_) * period_ns_;
    ++i_;
    return t;
  }

 private:
  int64_t size_;
  int64_t period_ns_;
  int64_t i_ = 0;
};

class Trace : public Arrivals {
 public:
  Trace(std::vector<double> rates, uint64_t seed) : rates_(std::move(rates)), rng_(seed) {}
  int64_t next() override {
    // The exponential is memoryless, so on crossing into a second with a
    // different rate we may simply redraw from the boundary.
    while (second_ < rates_.size()) {
      double rate = rates_[second_];
      double end = static_cast<double>(second_ + 1) * kNsPerS;
      if (rate > 0) {
        double t = t_ + std::exponential_distribution<double>(rate / kNsPerS)(rng_);
        if (t < end) {
          t_ = t;
          return static_cast<int64_t>(t);
        }
      }
      t_ = end;
      ++second_;
    }
    return INT64_MAX;
  }

 private:
  std::vector<double> rates_;
  std::mt19937_64 rng_;
  size_t second_ = 0;
  double t_ = 0;
};

}  // namespace

std::unique_ptr<Arrivals> constantArrivals(double rate) { return std::make_unique<Constant>(rate); }
std::unique_ptr<Arrivals> poissonArrivals(double rate, uint64_t seed) {
  return std::make_unique<Poisson>(rate, seed);
}
std::unique_ptr<Arrivals> burstArrivals(int size, int64_t period_ns) {
  return std::make_unique<Burst>(size, period_ns);
}
std::unique_ptr<Arrivals> traceArrivals(std::vector<double> rates, uint64_t seed) {
  return std::make_unique<Trace>(std::move(rates), seed);
}

TargetPicker TargetPicker::zipf(size_t n, double s, uint64_t seed) {
  TargetPicker p;
  p.targets_ = n;
  p.rng_.seed(seed);
  p.cdf_.resize(n);
  double sum = 0;
  for (size_t k = 0; k < n; ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
    p.cdf_[k] = sum;
  }
  for (double& c : p.cdf_) c /= sum;
  p.rank_to_target_.resize(n);
  std::iota(p.rank_to_target_.begin(), p.rank_to_target_.end(), 0);
  std::shuffle(p.rank_to_target_.begin(), p.rank_to_target_.end(), p.rng_);
  return p;
}

size_t TargetPicker::pick() {
  if (targets_ == 1) return 0;
  double u = std::uniform_real_distribution<double>(0, 1)(rng_);
  size_t rank = std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
  return rank_to_target_[std::min(rank, targets_ - 1)];
}

}  // namespace waverless::load
