#include "worker/app_logs.h"

namespace waverless::worker {

void AppLogs::append(const std::string& app, LogEntry entry) {
  std::lock_guard lock(mu_);
  auto& q = logs_[app];
  q.push_back(std::move(entry));
  while (q.size() > per_app_) q.pop_front();
}

std::vector<LogEntry> AppLogs::recent(const std::string& app, size_t limit) const {
  std::lock_guard lock(mu_);
  auto it = logs_.find(app);
  if (it == logs_.end()) return {};
  size_t n = std::min(limit, it->second.size());
  return {it->second.end() - static_cast<std::ptrdiff_t>(n), it->second.end()};
}

void AppLogs::drop(const std::string& app) {
  std::lock_guard lock(mu_);
  logs_.erase(app);
}

}  // namespace waverless::worker
