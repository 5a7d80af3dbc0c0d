#include "master/experiments.h"

#include <chrono>
#include <cstdlib>

#include "load/report.h"
#include "load/spec.h"
#include "master/query_param.h"

namespace waverless::master {

namespace {

constexpr double kMaxSeconds = 120;  // a run holds the node's attention; keep it short

http::Response reply(int status, std::string body, bool json = false) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  if (json) {
    r.content_type = "application/json";
  } else {
    r.body += "\n";
  }
  return r;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void Experiments::stop() {
  cancel_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string Experiments::runJson(const Run& r, bool with_result) {
  std::string out = "{\"id\":" + std::to_string(r.id) + ",\"state\":\"" + r.state +
                    "\",\"started_ms\":" + std::to_string(r.started_ms) +
                    ",\"finished_ms\":" + std::to_string(r.finished_ms) +
                    ",\"spec\":" + r.spec_json;
  if (!r.error.empty()) {
    std::string e;
    for (unsigned char c : r.error) {
      if (c == '"' || c == '\\') e += '\\';
      e += c < 0x20 ? ' ' : static_cast<char>(c);
    }
    out += ",\"error\":\"" + e + "\"";
  }
  if (with_result && !r.result_json.empty()) out += ",\"result\":" + r.result_json;
  return out + "}";
}

http::Response Experiments::handle(const http::Request& req) {
  const std::string& p = req.path;
  if (p == "/api/experiments" || p == "/api/experiments/") {
    if (req.method == "POST") return startRun(req);
    if (req.method != "GET") return reply(405, "use GET or POST on /api/experiments");
    std::lock_guard lock(mu_);
    std::string out = "[";
    for (const Run& r : runs_) out += (out.size() > 1 ? "," : "") + runJson(r, false);
    return reply(200, out + "]", true);
  }
  std::string id_text = p.substr(std::string_view("/api/experiments/").size());
  char* end = nullptr;
  uint64_t id = std::strtoull(id_text.c_str(), &end, 10);
  if (id_text.empty() || *end != '\0') return reply(404, "no experiment " + id_text);
  if (req.method != "GET") return reply(405, "use GET on /api/experiments/ID");
  std::lock_guard lock(mu_);
  for (const Run& r : runs_) {
    if (r.id == id) return reply(200, runJson(r, true), true);
  }
  return reply(404, "no experiment " + id_text + " (the last " + std::to_string(keep_) +
                        " are kept, in memory)");
}

http::Response Experiments::startRun(const http::Request& req) {
  load::LoadSpec s;
  std::string app = queryParam(req.query, "app");
  if (app.empty()) return reply(400, "app: which app to load (?app=NAME)");
  std::string fn = queryParam(req.query, "fn");
  s.path = "/" + app + (fn.empty() ? "" : "/" + fn);
  s.body = req.body;
  if (auto m = queryParam(req.query, "method"); !m.empty()) s.method = m;
  if (auto a = queryParam(req.query, "arrival"); !a.empty()) s.arrival = a;
  for (auto [key, field] : {std::pair{"rate", &s.rate}, std::pair{"duration", &s.duration_s},
                            std::pair{"period_ms", &s.period_ms}}) {
    std::string v = queryParam(req.query, key);
    if (v.empty()) continue;
    char* end = nullptr;
    *field = std::strtod(v.c_str(), &end);
    if (*end != '\0') return reply(400, std::string(key) + ": want a number, not '" + v + "'");
  }
  for (auto [key, field] :
       {std::pair{"connections", &s.connections}, std::pair{"burst", &s.burst}}) {
    std::string v = queryParam(req.query, key);
    if (v.empty()) continue;
    char* end = nullptr;
    *field = static_cast<int>(std::strtol(v.c_str(), &end, 10));
    if (*end != '\0')
      return reply(400, std::string(key) + ": want a whole number, not '" + v + "'");
  }
  if (s.arrival == "trace") {
    // ?trace=R1,R2,...: req/s for each second.
    auto rates = load::parseTrace(queryParam(req.query, "trace"));
    if (!rates.ok()) return reply(400, std::string(rates.status().message()));
    s.trace = std::move(*rates);
    s.duration_s = static_cast<double>(s.trace.size());
  }
  // The node's own address as the caller reached it.
  std::string host = req.header("Host");
  auto colon = host.rfind(':');
  int port = colon == std::string::npos ? 80 : std::atoi(host.c_str() + colon + 1);
  host = host.substr(0, colon);
  if (host.starts_with("[")) return reply(400, "experiments need an IPv4 address or name in Host");
  if (host.empty() || port <= 0 || port > 65535) return reply(400, "no usable Host header");
  auto options = load::openLoopOptions(s, host, static_cast<uint16_t>(port), kMaxSeconds);
  if (!options.ok()) return reply(400, std::string(options.status().message()));

  std::lock_guard lock(mu_);
  if (running_) return reply(409, "an experiment is running; one at a time");
  if (thread_.joinable()) thread_.join();  // the finished previous run's thread
  Run r;
  r.id = next_id_++;
  r.spec_json = load::specJson(s);
  r.state = "running";
  r.started_ms = nowMs();
  runs_.push_front(r);
  while (runs_.size() > keep_) runs_.pop_back();
  running_ = true;
  cancel_ = false;
  options->cancel = &cancel_;
  thread_ = std::jthread([this, id = r.id, o = std::move(*options)]() mutable {
    load::OpenLoopResult res = load::runOpenLoop(std::move(o));
    std::string json = res.error.empty() ? load::resultJson(res) : "";
    std::lock_guard l(mu_);
    running_ = false;
    for (Run& run : runs_) {
      if (run.id != id) continue;
      run.finished_ms = nowMs();
      run.state = res.error.empty() ? "done" : "failed";
      run.error = res.error;
      run.result_json = std::move(json);
    }
  });
  return reply(202, runJson(r, false), true);
}

}  // namespace waverless::master
