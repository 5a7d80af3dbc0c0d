#include "worker/app_logs.h"

namespace waverless::worker {

void AppLogs::append(const std::string& app, LogEntry entry) {
  const size_t max_text = bytes_per_app_ / 4;
  if (entry.text.size() > max_text) {
    entry.text.resize(max_text);
    entry.text += "\n[log cut: over " + std::to_string(max_text) + " bytes]\n";
  }
  std::lock_guard lock(mu_);
  Ring& r = logs_[app];
  r.bytes += entry.text.size();
  r.entries.push_back(std::move(entry));
  while (r.entries.size() > per_app_ || r.bytes > bytes_per_app_) {
    r.bytes -= r.entries.front().text.size();
    r.entries.pop_front();
  }
}

std::vector<LogEntry> AppLogs::recent(const std::string& app, size_t limit) const {
  std::lock_guard lock(mu_);
  auto it = logs_.find(app);
  if (it == logs_.end()) return {};
  const auto& q = it->second.entries;
  size_t n = std::min(limit, q.size());
  return {q.end() - static_cast<std::ptrdiff_t>(n), q.end()};
}

void AppLogs::drop(const std::string& app) {
  std::lock_guard lock(mu_);
  logs_.erase(app);
}

}  // namespace waverless::worker
