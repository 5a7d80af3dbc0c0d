#include "load/spec.h"

#include <cstdio>
#include <cstdlib>

#include "load/arrivals.h"
#include "load/http_wire.h"

namespace waverless::load {

namespace {
absl::StatusOr<OpenLoopOptions> optionsOf(const LoadSpec& s, const std::string& host, uint16_t port,
                                          double max_duration_s);
}  // namespace

absl::StatusOr<OpenLoopOptions> openLoopOptions(const LoadSpec& s, const std::string& host,
                                                uint16_t port, double max_duration_s) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError(m); };
  if (s.path.empty() || s.path[0] != '/') return bad("path: want /APP or /APP/FN");
  LoadSpec traced;
  if (s.arrival == "trace") {
    if (s.trace.empty()) return bad("trace: want at least one per-second rate");
    for (double r : s.trace) {
      if (!(r >= 0 && r <= 1e6)) return bad("trace: rates want 0 to 1000000 req/s");
    }
    traced = s;
    traced.duration_s = static_cast<double>(s.trace.size());
  }
  const LoadSpec& spec = s.arrival == "trace" ? traced : s;
  return optionsOf(spec, host, port, max_duration_s);
}

namespace {

absl::StatusOr<OpenLoopOptions> optionsOf(const LoadSpec& s, const std::string& host, uint16_t port,
                                          double max_duration_s) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError(m); };
  if (!(s.duration_s > 0 && s.duration_s <= max_duration_s)) {
    return bad("duration: want more than 0 and at most " + std::to_string(int(max_duration_s)) +
               " seconds");
  }
  if (s.connections < 1 || s.connections > 10000) return bad("connections: want 1 to 10000");
  OpenLoopOptions o;
  o.host = host;
  o.port = port;
  o.connections = s.connections;
  o.duration_ns = static_cast<int64_t>(s.duration_s * 1e9);
  o.drain_ns = 5'000'000'000;
  std::string hostport = host + ":" + std::to_string(port);
  o.requests.push_back(buildRequest(s.method, s.path, hostport, s.body, s.extra_headers));
  if (s.arrival == "trace") {
    o.arrivals = traceArrivals(s.trace, s.seed);
    return o;
  }
  if (s.arrival == "burst") {
    if (s.burst < 1 || s.burst > 100000) return bad("burst: want 1 to 100000 requests");
    if (!(s.period_ms >= 1 && s.period_ms <= 60000)) return bad("period: want 1 to 60000 ms");
    o.arrivals = burstArrivals(s.burst, static_cast<int64_t>(s.period_ms * 1e6));
    return o;
  }
  if (!(s.rate > 0 && s.rate <= 1e6))
    return bad("rate: want more than 0 and at most 1000000 req/s");
  if (s.arrival == "poisson") {
    o.arrivals = poissonArrivals(s.rate, s.seed);
  } else if (s.arrival == "constant") {
    o.arrivals = constantArrivals(s.rate);
  } else {
    return bad("arrival: want poisson, constant, burst or trace, not '" + s.arrival + "'");
  }
  return o;
}

}  // namespace

absl::StatusOr<std::vector<double>> parseTrace(std::string_view text) {
  std::vector<double> out;
  size_t line = 1;
  std::string cur;
  bool comment = false;
  auto flush = [&]() -> absl::Status {
    if (cur.empty()) return absl::OkStatus();
    char* end = nullptr;
    double v = std::strtod(cur.c_str(), &end);
    if (*end != '\0' || !(v >= 0)) {
      return absl::InvalidArgumentError("trace line " + std::to_string(line) + ": '" + cur +
                                        "' is not a rate (req/s)");
    }
    out.push_back(v);
    cur.clear();
    return absl::OkStatus();
  };
  for (char c : text) {
    if (c == '\n' || c == ',' || c == ' ' || c == '\t' || c == '\r') {
      if (auto st = flush(); !st.ok()) return st;
      if (c == '\n') {
        ++line;
        comment = false;
      }
      continue;
    }
    if (c == '#') comment = true;
    if (!comment) cur += c;
  }
  if (auto st = flush(); !st.ok()) return st;
  if (out.empty()) return absl::InvalidArgumentError("trace: no rates in it");
  return out;
}

std::string specJson(const LoadSpec& s) {
  auto esc = [](const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c < 0x20 ? ' ' : static_cast<char>(c);
    }
    return out;
  };
  char nums[200];
  snprintf(nums, sizeof nums,
           "\"rate\":%g,\"duration_s\":%g,\"connections\":%d,\"burst\":%d,\"period_ms\":%g", s.rate,
           s.duration_s, s.connections, s.burst, s.period_ms);
  return "{\"method\":\"" + esc(s.method) + "\",\"path\":\"" + esc(s.path) + "\",\"arrival\":\"" +
         esc(s.arrival) + "\",\"body_bytes\":" + std::to_string(s.body.size()) + "," + nums +
         ",\"trace_seconds\":" + std::to_string(s.trace.size()) + "}";
}

}  // namespace waverless::load
