// `waverless load APP [FN]`: an open-loop load against a node (src/load/),
// with a summary for people or the whole result as JSON.
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cli/cli_common.h"
#include "load/report.h"
#include "load/spec.h"

namespace waverless::cli {

namespace {

// http://HOST:PORT[/...] -> host and port; the load generator speaks plain
// HTTP only.
bool hostPort(const std::string& url, std::string& host, uint16_t& port) {
  constexpr std::string_view kHttp = "http://";
  if (!url.starts_with(kHttp)) return false;
  std::string rest = url.substr(kHttp.size());
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  host = colon == std::string::npos ? rest : rest.substr(0, colon);
  int p = colon == std::string::npos ? 80 : std::atoi(rest.c_str() + colon + 1);
  if (host.empty() || p <= 0 || p > 65535) return false;
  port = static_cast<uint16_t>(p);
  return true;
}

double number(const Args& a, const std::string& k, double def, bool& ok) {
  if (!a.has(k)) return def;
  std::string v = a.get(k);
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') ok = false;
  return d;
}

}  // namespace

int runLoad(const Args& a, const Client& c) {
  if (a.positional.size() < 2) {
    return usageError(
        "load APP [FN] [--rate R] [--duration S] [--arrival poisson|constant|burst] [--trace "
        "FILE]");
  }
  Output out;
  if (!outputOf(a, out)) return kUsage;
  if (out == Output::kName) return usageError("load has no --output name");
  std::string host;
  uint16_t port = 0;
  if (!hostPort(c.to, host, port)) {
    return usageError("load speaks plain HTTP: --to http://HOST:PORT, not " + c.to);
  }
  load::LoadSpec s;
  s.path = "/" + a.positional[1] + (a.positional.size() > 2 ? "/" + a.positional[2] : "");
  s.method = a.get("method", "POST");
  s.arrival = a.get("arrival", "poisson");
  bool ok = true;
  s.rate = number(a, "rate", s.rate, ok);
  s.duration_s = number(a, "duration", s.duration_s, ok);
  s.connections = static_cast<int>(number(a, "connections", s.connections, ok));
  s.burst = static_cast<int>(number(a, "burst", s.burst, ok));
  s.period_ms = number(a, "period-ms", s.period_ms, ok);
  if (!ok)
    return usageError("--rate, --duration, --connections, --burst and --period-ms want numbers");
  std::string data = a.get("data");
  if (data.starts_with("@")) {
    std::ifstream f(data.substr(1), std::ios::binary);
    if (!f) return fail("cannot read " + data.substr(1));
    data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  s.body = data;
  if (a.has("trace")) {
    std::ifstream f(a.get("trace"));
    if (!f) return fail("cannot read the trace " + a.get("trace"));
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto rates = load::parseTrace(text);
    if (!rates.ok()) return fail(a.get("trace") + ": " + std::string(rates.status().message()));
    s.arrival = "trace";
    s.trace = std::move(*rates);
    s.duration_s = static_cast<double>(s.trace.size());
  }
  if (!c.app_key.empty()) s.extra_headers = "Authorization: Bearer " + c.app_key + "\r\n";
  auto options = load::openLoopOptions(s, host, port, 3600);
  if (!options.ok()) return usageError(std::string(options.status().message()));
  if (out == Output::kTable) {
    fprintf(stderr, "load: %s %s%s, %s arrivals, %g req/s for %g s over %d connections...\n",
            s.method.c_str(), c.to.c_str(), s.path.c_str(), s.arrival.c_str(),
            s.arrival == "burst"   ? s.burst * 1000 / s.period_ms
            : s.arrival == "trace" ? 0
                                   : s.rate,
            s.duration_s, s.connections);
  }
  load::OpenLoopResult r = load::runOpenLoop(std::move(*options));
  if (!r.error.empty()) {
    return fail("no node answers at " + c.to + ": " + r.error +
                " (start one with `waverless dev`, or point --to at a running node)");
  }
  std::string json = load::resultJson(r);
  namespace pt = boost::property_tree;
  pt::ptree t;
  std::istringstream in(json);
  pt::read_json(in, t);
  uint64_t answered = t.get<uint64_t>("answered", 0);
  if (out == Output::kJson) {
    printf("{\"spec\":%s,\"target\":\"%s\",\"result\":%s}\n", load::specJson(s).c_str(),
           jsonEscape(c.to).c_str(), json.c_str());
  } else {
    std::string errors;
    for (const auto& [status, n] : t.get_child("errors")) {
      errors += " " + n.get_value<std::string>() + "x" + status;
    }
    printf("requests  %s scheduled, %s ok, errors:%s, %s failed connections, %s unanswered\n",
           t.get<std::string>("scheduled").c_str(), t.get<std::string>("ok").c_str(),
           errors.empty() ? " none" : errors.c_str(),
           t.get<std::string>("failed_connections").c_str(),
           t.get<std::string>("unanswered").c_str());
    printf("rate      %.1f ok/s over %.1f s\n", t.get<double>("throughput"),
           t.get<double>("seconds"));
    auto ms = [&](const char* k) {
      return t.get<double>(std::string("latency_us.") + k, 0) / 1000;
    };
    printf("latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
           ms("p50"), ms("p90"), ms("p99"), ms("p999"), ms("max"));
  }
  if (answered == 0) {
    return fail("no request was answered: is a node serving at " + c.to + "? (waverless status)");
  }
  return 0;
}

}  // namespace waverless::cli
