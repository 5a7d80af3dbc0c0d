// Recent function output per app (stdout/stderr/wl_log, errors), with the
// request id and function that produced it; served by GET /api/apps/<app>/logs.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace waverless::worker {

struct LogEntry {
  int64_t unix_ms = 0;
  std::string request_id;
  std::string fn;
  std::string text;
};

class AppLogs {
 public:
  explicit AppLogs(size_t per_app = 2000) : per_app_(per_app) {}
  void append(const std::string& app, LogEntry entry);
  std::vector<LogEntry> recent(const std::string& app, size_t limit) const;
  void drop(const std::string& app);

 private:
  size_t per_app_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<LogEntry>> logs_;  // guarded by mu_
};

}  // namespace waverless::worker
