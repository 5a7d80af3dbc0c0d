#include "load/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace waverless::load {

double percentile(const std::vector<uint32_t>& sorted_us, double q) {
  if (sorted_us.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted_us.size())));
  return sorted_us[std::clamp<size_t>(rank, 1, sorted_us.size()) - 1];
}

Summary summarize(std::vector<uint32_t>& samples_us) {
  Summary s;
  s.n = samples_us.size();
  if (s.n == 0) return s;
  std::sort(samples_us.begin(), samples_us.end());
  double sum = 0;
  for (uint32_t v : samples_us) sum += v;
  s.min_us = samples_us.front();
  s.max_us = samples_us.back();
  s.mean_us = sum / static_cast<double>(s.n);
  s.p50_us = percentile(samples_us, 0.50);
  s.p90_us = percentile(samples_us, 0.90);
  s.p99_us = percentile(samples_us, 0.99);
  s.p999_us = percentile(samples_us, 0.999);
  return s;
}

std::string toJson(const Summary& s) {
  char buf[320];
  snprintf(buf, sizeof buf,
           "{\"n\":%zu,\"min\":%.0f,\"mean\":%.1f,\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,"
           "\"p999\":%.0f,\"max\":%.0f}",
           s.n, s.min_us, s.mean_us, s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us);
  return buf;
}

bool writeCdf(const std::vector<uint32_t>& sorted_us, const std::string& path) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  fprintf(f, "# latency_us percentile inv_tail\n");
  if (!sorted_us.empty()) {
    // Evenly spaced in log10(1/(1-q)): as many points between p99 and
    // p99.9 as between p0 and p90. Stop where samples run out.
    double max_nines = std::log10(static_cast<double>(sorted_us.size()));
    for (double x = 0; x <= max_nines + 1e-9; x += 0.02) {
      double q = 1 - std::pow(10, -x);
      fprintf(f, "%.0f %.6f %.3f\n", percentile(sorted_us, q), q, 1 / (1 - q));
    }
    fprintf(f, "%u 1.0 %.3f\n", sorted_us.back(), static_cast<double>(sorted_us.size()));
  }
  return fclose(f) == 0;
}

}  // namespace waverless::load
