#include "metrics/metrics.h"

#include <cstdio>

namespace waverless::metrics {

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

std::string labelText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

Registry::Family& Registry::family(const std::string& name, const std::string& help,
                                   const char* type) {
  Family& f = families_[name];
  if (f.type.empty()) {
    f.help = help;
    f.type = type;
  }
  return f;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = family(name, help, "counter").counters[labelText(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = family(name, help, "histogram").histograms[labelText(labels)];
  if (!slot) slot = std::make_unique<Histogram>();
  return *slot;
}

void Registry::gauge(const std::string& name, const std::string& help,
                     std::function<double()> read) {
  std::lock_guard lock(mu_);
  family(name, help, "gauge").gauges.push_back([read = std::move(read)] {
    return Samples{{Labels{}, read()}};
  });
}

void Registry::gauges(const std::string& name, const std::string& help,
                      std::function<Samples()> read) {
  std::lock_guard lock(mu_);
  family(name, help, "gauge").gauges.push_back(std::move(read));
}

namespace {
// Inserts le="..." into an existing label text.
std::string withLe(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}
std::string num(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += name + labels + " " + std::to_string(c->value()) + "\n";
    }
    for (const auto& g : f.gauges) {
      for (const auto& [labels, v] : g()) out += name + labelText(labels) + " " + num(v) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cum = 0;
      for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
        cum += h->buckets_[i].load(std::memory_order_relaxed);
        out += name + "_bucket" + withLe(labels, num(Histogram::kBounds[i])) + " " +
               std::to_string(cum) + "\n";
      }
      cum += h->buckets_[Histogram::kBounds.size()].load(std::memory_order_relaxed);
      out += name + "_bucket" + withLe(labels, "+Inf") + " " + std::to_string(cum) + "\n";
      out += name + "_sum" + labels + " " + num(h->sum_ns_.load(std::memory_order_relaxed) / 1e9) +
             "\n";
      out += name + "_count" + labels + " " + std::to_string(h->count()) + "\n";
    }
  }
  return out;
}

}  // namespace waverless::metrics
