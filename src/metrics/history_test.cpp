#include "metrics/history.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace waverless::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

HistoryOptions manual(int64_t* now, size_t capacity) {
  HistoryOptions o;
  o.capacity = capacity;
  o.families = {"wl_invocations_total", "wl_invocation_seconds", "wl_rss"};
  o.now_ms = [now] { return *now; };
  return o;
}

TEST(MetricsHistory, SamplesOnlyTheNamedFamiliesWithTheirLabels) {
  Registry r;
  r.counter("wl_invocations_total", "", {{"app", "a\"b"}, {"fn", "f"}}).add(3);
  r.counter("wl_other_total", "").add(9);
  r.gauge("wl_rss", "", [] { return 42.0; });
  r.histogram("wl_invocation_seconds", "", {{"app", "a"}}).observe(0.0003);
  int64_t now = 1000;
  History h(r, manual(&now, 10));
  h.sampleNow();
  std::string j = h.json(0);
  EXPECT_THAT(j, HasSubstr("\"t\":1000"));
  EXPECT_THAT(j, HasSubstr(R"("wl_invocations_total{app=\"a\\\"b\",fn=\"f\"}":3)"));
  EXPECT_THAT(j, HasSubstr("\"wl_rss\":42"));
  EXPECT_THAT(j, Not(HasSubstr("wl_other_total")));
  // 0.0003 s falls in the (0.00025, 0.0005] bucket, the fifth.
  EXPECT_THAT(j, HasSubstr(R"("wl_invocation_seconds{app=\"a\"}":{"b":[0,0,0,0,1,0,)"));
  EXPECT_THAT(j, HasSubstr("\"n\":1"));
}

TEST(MetricsHistory, RingKeepsTheNewestAndAnswersSinceATime) {
  Registry r;
  Counter& c = r.counter("wl_invocations_total", "");
  int64_t now = 0;
  History h(r, manual(&now, 3));
  for (int i = 1; i <= 5; ++i) {
    c.add();
    now = i * 1000;
    h.sampleNow();
  }
  std::string all = h.json(0);
  EXPECT_THAT(all, Not(HasSubstr("\"t\":2000")));  // pushed out by capacity 3
  EXPECT_THAT(all, HasSubstr("\"t\":3000"));
  EXPECT_THAT(all, HasSubstr("\"t\":5000,\"v\":{\"wl_invocations_total\":5}"));
  std::string since = h.json(4000);
  EXPECT_THAT(since, Not(HasSubstr("\"t\":4000")));
  EXPECT_THAT(since, HasSubstr("\"t\":5000"));
  EXPECT_THAT(h.json(5000), HasSubstr("\"samples\":[]"));
}

TEST(MetricsHistory, ThreadSamplesUntilStopped) {
  Registry r;
  r.counter("wl_invocations_total", "").add();
  HistoryOptions o;
  o.interval = std::chrono::milliseconds(5);
  o.families = {"wl_invocations_total"};
  History h(r, o);
  ASSERT_TRUE(h.start().ok());
  EXPECT_FALSE(h.start().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto count = [&h] {
    std::string j = h.json(0);
    size_t n = 0;
    for (size_t at = j.find("\"t\":"); at != std::string::npos; at = j.find("\"t\":", at + 1)) ++n;
    return n;
  };
  while (count() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(count(), 3u);
  h.stop();
  size_t after = count();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(count(), after);
  h.stop();  // idempotent
}

TEST(MetricsHistory, RefusesAZeroInterval) {
  Registry r;
  HistoryOptions o;
  o.interval = std::chrono::milliseconds(0);
  History h(r, o);
  EXPECT_EQ(h.start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace waverless::metrics
