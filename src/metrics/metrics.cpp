#include "metrics/metrics.h"

#include <charconv>
#include <cstdio>
#include <string_view>

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

std::string num(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// One sample line: name, suffix, labels (with le="..." inserted when given), value.
void appendLine(std::string& out, const std::string& name, std::string_view suffix,
                const std::string& labels, std::string_view le, std::string_view value) {
  out += name;
  out += suffix;
  if (!le.empty()) {
    if (labels.empty()) {
      out += "{le=\"";
    } else {
      out.append(labels, 0, labels.size() - 1);
      out += ",le=\"";
    }
    out += le;
    out += "\"}";
  } else {
    out += labels;
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

// A scrape with a thousand apps is ~20,000 lines: written straight into one
// buffer (no temporaries per line, bucket bounds formatted once).
std::string Registry::render() const {
  static const std::array<std::string, Histogram::kBounds.size()> kBoundText = [] {
    std::array<std::string, Histogram::kBounds.size()> t;
    for (size_t i = 0; i < t.size(); ++i) t[i] = num(Histogram::kBounds[i]);
    return t;
  }();
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(last_render_bytes_ + last_render_bytes_ / 8);
  char value[32];
  auto uintText = [&value](uint64_t v) {
    return std::string_view(value, std::to_chars(value, value + sizeof value, v).ptr - value);
  };
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      appendLine(out, name, "", labels, "", uintText(c->value()));
    }
    for (const auto& g : f.gauges) {
      for (const auto& [labels, v] : g()) appendLine(out, name, "", labelText(labels), "", num(v));
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cum = 0;
      for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
        cum += h->buckets_[i].load(std::memory_order_relaxed);
        appendLine(out, name, "_bucket", labels, kBoundText[i], uintText(cum));
      }
      cum += h->buckets_[Histogram::kBounds.size()].load(std::memory_order_relaxed);
      appendLine(out, name, "_bucket", labels, "+Inf", uintText(cum));
      appendLine(out, name, "_sum", labels, "",
                 num(h->sum_ns_.load(std::memory_order_relaxed) / 1e9));
      appendLine(out, name, "_count", labels, "", uintText(h->count()));
    }
  }
  last_render_bytes_ = out.size();
  return out;
}

Registry::Snapshot Registry::snapshot(const std::vector<std::string>& families) const {
  Snapshot out;
  std::lock_guard lock(mu_);
  for (const auto& name : families) {
    auto it = families_.find(name);
    if (it == families_.end()) continue;
    const Family& f = it->second;
    for (const auto& [labels, c] : f.counters) {
      out.values.emplace_back(name + labels, static_cast<double>(c->value()));
    }
    for (const auto& g : f.gauges) {
      for (const auto& [labels, v] : g()) out.values.emplace_back(name + labelText(labels), v);
    }
    for (const auto& [labels, h] : f.histograms) {
      HistogramValue v;
      for (size_t i = 0; i < v.buckets.size(); ++i) {
        v.buckets[i] = h->buckets_[i].load(std::memory_order_relaxed);
      }
      v.count = h->count();
      v.sum_seconds = h->sum_ns_.load(std::memory_order_relaxed) / 1e9;
      out.histograms.emplace_back(name + labels, v);
    }
  }
  return out;
}

}  // namespace waverless::metrics
