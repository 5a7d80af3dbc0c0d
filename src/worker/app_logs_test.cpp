#include "worker/app_logs.h"

#include <gtest/gtest.h>

namespace waverless::worker {
namespace {

LogEntry entry(std::string text) { return LogEntry{0, "r1", "f", std::move(text)}; }

TEST(AppLogs, KeepsTheNewestEntriesPerApp) {
  AppLogs logs(3);
  for (int i = 0; i < 5; ++i) logs.append("a", entry(std::to_string(i)));
  logs.append("b", entry("other app"));
  auto recent = logs.recent("a", 10);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent.front().text, "2");
  EXPECT_EQ(recent.back().text, "4");
  EXPECT_EQ(logs.recent("a", 1).front().text, "4");
  EXPECT_EQ(logs.recent("b", 10).size(), 1u);
  logs.drop("a");
  EXPECT_TRUE(logs.recent("a", 10).empty());
}

TEST(AppLogs, BoundedByBytesAndOneEntryCannotTakeAll) {
  AppLogs logs(1000, 4000);
  for (int i = 0; i < 100; ++i) logs.append("a", entry(std::string(100, 'x')));
  size_t bytes = 0;
  for (const auto& e : logs.recent("a", 1000)) bytes += e.text.size();
  EXPECT_LE(bytes, 4000u);
  EXPECT_GE(bytes, 3900u);
  logs.append("a", entry(std::string(1 << 20, 'y')));
  auto last = logs.recent("a", 1).front().text;
  EXPECT_LT(last.size(), 1100u);
  EXPECT_NE(last.find("[log cut: over 1000 bytes]"), std::string::npos);
  EXPECT_GT(logs.recent("a", 1000).size(), 1u) << "one huge entry evicted everything";
}

}  // namespace
}  // namespace waverless::worker
