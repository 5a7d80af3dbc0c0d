#include "metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace waverless::metrics {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, CountersRenderWithLabels) {
  Registry r;
  r.counter("wl_invocations_total", "Invocations", {{"app", "hello"}, {"fn", "fn2"}}).add(3);
  r.counter("wl_invocations_total", "Invocations", {{"app", "hello"}, {"fn", "fn2"}}).add();
  std::string text = r.render();
  EXPECT_THAT(text, HasSubstr("# TYPE wl_invocations_total counter"));
  EXPECT_THAT(text, HasSubstr("wl_invocations_total{app=\"hello\",fn=\"fn2\"} 4\n"));
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("wl_latency_seconds", "Latency", {{"app", "a"}});
  h.observe(0.00002);  // second bucket
  h.observe(0.3);      // 0.5 bucket
  h.observe(100);      // +Inf
  std::string text = r.render();
  EXPECT_THAT(text, HasSubstr("wl_latency_seconds_bucket{app=\"a\",le=\"1e-05\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("wl_latency_seconds_bucket{app=\"a\",le=\"5e-05\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wl_latency_seconds_bucket{app=\"a\",le=\"0.5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("wl_latency_seconds_bucket{app=\"a\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("wl_latency_seconds_count{app=\"a\"} 3\n"));
}

TEST(Metrics, UnlabeledHistogramGetsOnlyTheLeLabel) {
  Registry r;
  r.histogram("wl_x_seconds", "x", {}).observe(0.2);
  std::string text = r.render();
  EXPECT_THAT(text, HasSubstr("wl_x_seconds_bucket{le=\"0.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wl_x_seconds_sum 0.2\n"));
  EXPECT_THAT(text, HasSubstr("wl_x_seconds_count 1\n"));
  EXPECT_EQ(r.render(), text);  // a second render (sized from the first) is the same
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(labelText({{"k", "a\"b\\c\nd"}}), "{k=\"a\\\"b\\\\c\\nd\"}");
}

TEST(Metrics, GaugesAreReadAtRenderTime) {
  Registry r;
  double v = 1;
  r.gauge("wl_pool_instances", "Instances", [&] { return v; });
  v = 7;
  EXPECT_THAT(r.render(), HasSubstr("wl_pool_instances 7\n"));
}

}  // namespace
}  // namespace waverless::metrics
