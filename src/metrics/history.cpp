#include "metrics/history.h"

#include <condition_variable>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace waverless::metrics {

namespace {

int64_t systemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Series names are `family{label="value",...}`: quotes and backslashes in
// them need escaping inside a JSON string.
void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  out += '"';
}

void appendNumber(std::string& out, double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.9g", v);
  out += buf;
}

}  // namespace

History::History(const Registry& registry, HistoryOptions options)
    : registry_(registry), options_(std::move(options)) {}

History::~History() { stop(); }

absl::Status History::start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("metrics history already started");
  if (options_.interval.count() <= 0 || options_.capacity == 0) {
    return absl::InvalidArgumentError("metrics history wants a positive interval and capacity");
  }
  thread_ = std::jthread([this](std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    while (!stop.stop_requested()) {
      sampleNow();
      cv.wait_for(lock, stop, options_.interval, [] { return false; });
    }
  });
  return absl::OkStatus();
}

void History::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void History::sampleNow() {
  int64_t t = options_.now_ms ? options_.now_ms() : systemNowMs();
  Registry::Snapshot snap = registry_.snapshot(options_.families);
  std::string out = absl::StrCat("{\"t\":", t, ",\"v\":{");
  for (size_t i = 0; i < snap.values.size(); ++i) {
    if (i) out += ',';
    appendJsonString(out, snap.values[i].first);
    out += ':';
    appendNumber(out, snap.values[i].second);
  }
  out += "},\"h\":{";
  for (size_t i = 0; i < snap.histograms.size(); ++i) {
    const auto& [name, h] = snap.histograms[i];
    if (i) out += ',';
    appendJsonString(out, name);
    out += ":{\"b\":[";
    for (size_t b = 0; b < h.buckets.size(); ++b) {
      if (b) out += ',';
      absl::StrAppend(&out, h.buckets[b]);
    }
    absl::StrAppend(&out, "],\"n\":", h.count, ",\"s\":");
    appendNumber(out, h.sum_seconds);
    out += '}';
  }
  out += "}}";
  std::lock_guard lock(mu_);
  ring_.push_back({t, std::move(out)});
  while (ring_.size() > options_.capacity) ring_.pop_front();
}

std::string History::json(int64_t since_ms) const {
  std::string out = absl::StrCat("{\"interval_ms\":", options_.interval.count(), ",\"bounds\":[");
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    if (i) out += ',';
    appendNumber(out, Histogram::kBounds[i]);
  }
  out += "],\"samples\":[";
  std::lock_guard lock(mu_);
  bool first = true;
  for (const auto& s : ring_) {
    if (s.t_ms <= since_ms) continue;
    if (!first) out += ',';
    first = false;
    out += s.json;
  }
  return out + "]}";
}

}  // namespace waverless::metrics
