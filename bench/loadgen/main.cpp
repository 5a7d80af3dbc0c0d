// wl-loadgen: an open-loop HTTP/1.1 load generator for the benchmark suite
// (bench/run). Constant, Poisson, burst or per-second trace arrivals, to one
// path or to many apps by a Zipf law; latency from each request's scheduled
// time. Also a script mode for timing single requests in sequence.
// Prints one JSON object on stdout.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "load/arrivals.h"
#include "load/http_wire.h"
#include "load/open_loop.h"
#include "load/stats.h"
#include "script.h"

namespace {

constexpr const char* kUsage = R"(usage: loadgen --target HOST:PORT [options]

open loop (default):
  --rate R                 offered requests per second
  --arrival poisson|const|burst   arrival process (default poisson)
  --burst N --period-ms P  burst: N requests at once every P ms (rate = N*1000/P)
  --trace FILE             per-second rates, one number per line (replaces --rate/--duration);
                           Poisson arrivals within each second
  --duration S             schedule length in seconds
  --warmup S               requests due in the first S seconds are sent but not recorded
  --drain S                after the schedule, wait up to S s for answers (default 5)
  --conns N                keep-alive connections, one request in flight each (default 64)
  --path P                 request path (default /)
  --apps PREFIX --napps N [--zipf S]
                           request PREFIX<i>, i in [0,N) by a Zipf law of exponent S (default 1)
  --method M --body TEXT|@FILE   (default GET, empty body)
  --seed N                 random seed (default 1)
  --spin-us U              poll instead of sleeping for the last U us before a due time
                           (timer wake-ups on a VM are late; use when loadgen has its own core)
  --cdf FILE               write the latency distribution (for plots)
  --timeline FILE          write per-second stats: second due ok p50_us p99_us
script mode:
  --script FILE [--samples FILE] [--header "NAME: VALUE"]   see script.h
)";

struct Flags {
  std::map<std::string, std::string> values;
  bool has(const std::string& k) const { return values.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
  double num(const std::string& k, double def) const {
    return has(k) ? std::strtod(get(k).c_str(), nullptr) : def;
  }
};

int usage(const char* why) {
  fprintf(stderr, "loadgen: %s\n%s", why, kUsage);
  return 2;
}

// Per-second stats by due time, for plotting a trace replay over time.
void writeTimeline(const waverless::load::OpenLoopResult& r, const std::string& path) {
  std::map<int64_t, std::vector<uint32_t>> ok_by_second;
  std::map<int64_t, uint64_t> due_by_second;
  for (const auto& s : r.samples) {
    int64_t sec = s.due_ns / 1'000'000'000;
    ++due_by_second[sec];
    if (s.status >= 200 && s.status < 300) ok_by_second[sec].push_back(s.latency_us);
  }
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) return;
  fprintf(f, "# second due ok p50_us p99_us\n");
  for (auto& [sec, due] : due_by_second) {
    auto& v = ok_by_second[sec];
    waverless::load::Summary s = waverless::load::summarize(v);
    fprintf(f, "%lld %llu %zu %.0f %.0f\n", static_cast<long long>(sec),
            static_cast<unsigned long long>(due), s.n, s.p50_us, s.p99_us);
  }
  fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (!a.starts_with("--") || i + 1 >= argc) return usage(("bad argument " + a).c_str());
    flags.values[a.substr(2)] = argv[++i];
  }
  std::string target = flags.get("target");
  auto colon = target.rfind(':');
  if (colon == std::string::npos) return usage("--target HOST:PORT is required");
  std::string host = target.substr(0, colon);
  auto port = static_cast<uint16_t>(std::atoi(target.c_str() + colon + 1));

  // Many connections need many descriptors; take what the hard limit allows.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);

  // Wake-ups are what the schedule is made of: without this the kernel may
  // defer each timer by its default 50 us slack, and every request with it.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  if (flags.has("script")) {
    return wlbench::runScript(
        {host, port, flags.get("script"), flags.get("samples"), flags.get("header")});
  }

  waverless::load::OpenLoopOptions o;
  o.host = host;
  o.port = port;
  o.connections = static_cast<int>(flags.num("conns", 64));
  o.warmup_ns = static_cast<int64_t>(flags.num("warmup", 0) * 1e9);
  o.drain_ns = static_cast<int64_t>(flags.num("drain", 5) * 1e9);
  o.spin_ns = static_cast<int64_t>(flags.num("spin-us", 0) * 1e3);
  auto seed = static_cast<uint64_t>(flags.num("seed", 1));

  std::string body = flags.get("body");
  if (body.starts_with("@")) {
    std::ifstream f(body.substr(1), std::ios::binary);
    if (!f) return usage(("cannot read " + body.substr(1)).c_str());
    body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::string method = flags.get("method", "GET");
  if (flags.has("apps")) {
    auto n = static_cast<size_t>(flags.num("napps", 0));
    if (n == 0) return usage("--apps needs --napps N");
    for (size_t i = 0; i < n; ++i) {
      o.requests.push_back(waverless::load::buildRequest(
          method, flags.get("apps") + std::to_string(i), target, body));
    }
    o.picker = waverless::load::TargetPicker::zipf(n, flags.num("zipf", 1.0), seed + 1);
  } else {
    o.requests.push_back(
        waverless::load::buildRequest(method, flags.get("path", "/"), target, body));
  }

  double offered = 0;  // req/s over the recorded part of the schedule
  if (flags.has("trace")) {
    std::ifstream f(flags.get("trace"));
    if (!f) return usage("cannot read --trace file");
    std::vector<double> rates;
    for (std::string line; std::getline(f, line);) {
      if (!line.empty() && line[0] != '#') rates.push_back(std::strtod(line.c_str(), nullptr));
    }
    o.duration_ns = static_cast<int64_t>(rates.size()) * 1'000'000'000;
    double total = 0;
    for (size_t s = static_cast<size_t>(o.warmup_ns / 1'000'000'000); s < rates.size(); ++s) {
      total += rates[s];
    }
    offered = total / (static_cast<double>(o.duration_ns - o.warmup_ns) / 1e9);
    o.arrivals = waverless::load::traceArrivals(std::move(rates), seed);
  } else {
    o.duration_ns = static_cast<int64_t>(flags.num("duration", 10) * 1e9);
    std::string arrival = flags.get("arrival", "poisson");
    if (arrival == "burst") {
      int size = static_cast<int>(flags.num("burst", 0));
      double period_ms = flags.num("period-ms", 0);
      if (size <= 0 || period_ms <= 0) return usage("burst needs --burst N --period-ms P");
      o.arrivals = waverless::load::burstArrivals(size, static_cast<int64_t>(period_ms * 1e6));
      offered = size * 1000.0 / period_ms;
    } else {
      offered = flags.num("rate", 0);
      if (offered <= 0) return usage("--rate R is required");
      if (arrival == "const") {
        o.arrivals = waverless::load::constantArrivals(offered);
      } else if (arrival == "poisson") {
        o.arrivals = waverless::load::poissonArrivals(offered, seed);
      } else {
        return usage("--arrival must be poisson, const or burst");
      }
    }
  }

  waverless::load::OpenLoopResult r = waverless::load::runOpenLoop(std::move(o));
  if (!r.error.empty()) {
    fprintf(stderr, "loadgen: %s\n", r.error.c_str());
    return 1;
  }
  std::vector<uint32_t> ok_us, lag_us;
  uint64_t errors = 0;
  std::set<uint32_t> targets;
  for (const auto& s : r.samples) {
    lag_us.push_back(s.send_lag_us);
    targets.insert(s.target);
    if (s.status >= 200 && s.status < 300) {
      ok_us.push_back(s.latency_us);
    } else {
      ++errors;
    }
  }
  waverless::load::Summary lat = waverless::load::summarize(ok_us);
  waverless::load::Summary lag = waverless::load::summarize(lag_us);
  if (flags.has("cdf")) waverless::load::writeCdf(ok_us, flags.get("cdf"));
  if (flags.has("timeline")) writeTimeline(r, flags.get("timeline"));
  double measured_s = static_cast<double>(r.measured_ns) / 1e9;
  printf(
      "{\"mode\":\"open\",\"offered_rps\":%.1f,\"achieved_rps\":%.1f,\"scheduled\":%llu,"
      "\"ok\":%zu,\"errors\":%llu,\"unfinished\":%llu,\"measured_s\":%.3f,"
      "\"peak_in_flight\":%d,\"reconnects\":%llu,\"targets_hit\":%zu,\"latency_us\":%s,"
      "\"send_lag_us\":%s}\n",
      offered, static_cast<double>(lat.n) / measured_s,
      static_cast<unsigned long long>(r.scheduled), lat.n, static_cast<unsigned long long>(errors),
      static_cast<unsigned long long>(r.unfinished), measured_s, r.peak_in_flight,
      static_cast<unsigned long long>(r.reconnects), targets.size(),
      waverless::load::toJson(lat).c_str(), waverless::load::toJson(lag).c_str());
  return 0;
}
