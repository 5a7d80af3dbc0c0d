// Latency summaries. Every sample is kept (a 60 s run at 20k req/s is 1.2M
// samples, 5 MB), so percentiles are exact rather than bucketed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace waverless::load {

struct Summary {
  size_t n = 0;
  double min_us = 0, mean_us = 0, p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};

// Sorts samples in place.
Summary summarize(std::vector<uint32_t>& samples_us);
// Nearest-rank percentile of sorted samples; q in [0, 1].
double percentile(const std::vector<uint32_t>& sorted_us, double q);

std::string toJson(const Summary& s);

// Writes the latency distribution of sorted samples as
// "<latency_us> <percentile> <1/(1-percentile)>" lines, dense in the tail
// (HdrHistogram's percentile-distribution shape), for CDF plots.
bool writeCdf(const std::vector<uint32_t>& sorted_us, const std::string& path);

}  // namespace waverless::load
