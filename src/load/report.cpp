#include "load/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

#include "load/stats.h"

namespace waverless::load {

namespace {

std::string num(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string resultJson(const OpenLoopResult& r) {
  std::vector<uint32_t> ok_us;
  std::map<int, uint64_t> errors;
  uint64_t failed = 0;
  std::map<int64_t, std::vector<uint32_t>> ok_by_second;
  std::map<int64_t, uint64_t> due_by_second;
  for (const Sample& s : r.samples) {
    int64_t sec = s.due_ns / 1'000'000'000;
    ++due_by_second[sec];
    if (s.status == 200) {
      ok_us.push_back(s.latency_us);
      ok_by_second[sec].push_back(s.latency_us);
    } else if (s.status == 0) {
      ++failed;
    } else {
      ++errors[s.status];
    }
  }
  double seconds = r.measured_ns / 1e9;
  Summary sum = summarize(ok_us);  // sorts ok_us
  std::string out = "{\"scheduled\":" + std::to_string(r.scheduled) +
                    ",\"answered\":" + std::to_string(r.samples.size() - failed) +
                    ",\"ok\":" + std::to_string(ok_us.size()) + ",\"errors\":{";
  bool first = true;
  for (const auto& [status, n] : errors) {
    out += (first ? "\"" : ",\"") + std::to_string(status) + "\":" + std::to_string(n);
    first = false;
  }
  out += "},\"failed_connections\":" + std::to_string(failed) +
         ",\"unanswered\":" + std::to_string(r.unfinished) + ",\"seconds\":" + num(seconds) +
         ",\"throughput\":" + num(seconds > 0 ? ok_us.size() / seconds : 0) +
         ",\"latency_us\":" + toJson(sum) + ",\"timeline\":[";
  first = true;
  for (auto& [sec, due] : due_by_second) {
    auto& v = ok_by_second[sec];
    std::sort(v.begin(), v.end());
    out += std::string(first ? "" : ",") + "{\"s\":" + std::to_string(sec) +
           ",\"due\":" + std::to_string(due) + ",\"ok\":" + std::to_string(v.size()) +
           ",\"p50_us\":" + num(v.empty() ? 0 : percentile(v, 0.5)) +
           ",\"p99_us\":" + num(v.empty() ? 0 : percentile(v, 0.99)) + "}";
    first = false;
  }
  // The CDF, dense in the tail: percentiles 1 - 10^(-k/10), then the max.
  out += "],\"cdf\":[";
  if (!ok_us.empty()) {
    for (int k = 0; k <= 40; ++k) {
      double q = 1 - std::pow(10.0, -k / 10.0);
      if (k > 0 && q * ok_us.size() > ok_us.size() - 1) break;
      out += (k ? "," : "") + std::string("[") + num(percentile(ok_us, q)) + "," + num(q) + "]";
    }
    out += ",[" + num(ok_us.back()) + ",1]";
  }
  return out + "]}";
}

}  // namespace waverless::load
