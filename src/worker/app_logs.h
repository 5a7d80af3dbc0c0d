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

// Bounded per app by entries and by bytes: the oldest go first. One entry's
// text is cut to a quarter of the byte bound, so one noisy call cannot
// evict everything else.
class AppLogs {
 public:
  explicit AppLogs(size_t per_app = 2000, size_t bytes_per_app = size_t{8} << 20)
      : per_app_(per_app), bytes_per_app_(bytes_per_app) {}
  void append(const std::string& app, LogEntry entry);
  std::vector<LogEntry> recent(const std::string& app, size_t limit) const;
  void drop(const std::string& app);

 private:
  struct Ring {
    std::deque<LogEntry> entries;
    size_t bytes = 0;
  };
  size_t per_app_;
  size_t bytes_per_app_;
  mutable std::mutex mu_;
  std::map<std::string, Ring> logs_;  // guarded by mu_
};

}  // namespace waverless::worker
