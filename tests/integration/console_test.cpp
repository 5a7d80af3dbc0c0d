// The node's console API over the real binary: /ui/, the metrics history,
// app graphs and experiments (a load run by the node against itself).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "node_suite.h"

namespace waverless::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

class ConsoleApiTest : public NodeSuite<ConsoleApiTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path apps = makeRoot("console") / "apps";
    copyTestApps(apps);
    startNode(apps, {"--cache", WL_TEST_CACHE});
  }
  // Polls GET path until its body has `want` (or 30 s pass).
  static std::string waitFor(const std::string& path, const std::string& want) {
    std::string body;
    for (int i = 0; i < 300; ++i) {
      body = node_->call("GET", path).body;
      if (body.find(want) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return body;
  }
};

TEST_F(ConsoleApiTest, HistoryAndGraphNeedTheAdminToken) {
  EXPECT_EQ(node_->request("GET", "/api/metrics/history", "", {}).status, 401);
  EXPECT_EQ(node_->request("GET", "/api/apps/word_count/graph", "", {}).status, 401);
  EXPECT_EQ(node_->request("GET", "/api/experiments", "", {}).status, 401);
  auto g = node_->call("GET", "/api/apps/word_count/graph");
  EXPECT_EQ(g.status, 200);
  EXPECT_THAT(g.body, HasSubstr(R"({"kind":"kv_set","pattern":"wordcount_slice_{}_{}"})"));
  EXPECT_EQ(node_->call("GET", "/api/apps/nope/graph").status, 404);
}

TEST_F(ConsoleApiTest, HistoryShowsRequestsAsTheyHappen) {
  for (int i = 0; i < 5; ++i) ASSERT_EQ(node_->call("GET", "/hello").status, 200);
  std::string h = waitFor("/api/metrics/history", R"("wl_invocations_total{app=\"hello\")");
  EXPECT_THAT(h,
              AllOf(HasSubstr(R"("wl_invocations_total{app=\"hello\",fn=\"fn2\",result=\"ok\"}")"),
                    HasSubstr(R"("wl_invocation_seconds{app=\"hello\",fn=\"fn2\"}":{"b":[)")));
  EXPECT_EQ(node_->call("GET", "/api/metrics/history?since=soon").status, 400);
}

TEST_F(ConsoleApiTest, OneLiveRequestCarriesEveryPartOfAPage) {
  EXPECT_EQ(node_->request("GET", "/api/console", "", {}).status, 401);
  ASSERT_EQ(node_->call("GET", "/hello").status, 200);
  std::string live = waitFor("/api/console?since=0&nodes=1&logs=hello&limit=5",
                             R"("wl_invocations_total{app=\"hello\")");
  EXPECT_THAT(live, AllOf(HasSubstr(R"({"history":{"interval_ms":)"),
                          // a dev node is no cluster: no nodes, no meta
                          HasSubstr(R"("nodes":null,"meta":null,"logs":")")));
  EXPECT_THAT(node_->call("GET", "/api/console?logs=nope").body,
              HasSubstr(R"("logs":null,"logs_error":"no app named 'nope'")"));
  EXPECT_EQ(node_->call("GET", "/api/console?logs=hello&limit=x").status, 400);
}

TEST_F(ConsoleApiTest, UiIsServedOrSaysHowToBuildIt) {
  auto r = node_->request("GET", "/ui/", "", {});
  if (fs::exists(fs::path(WL_BUILD_DIR) / "ui" / "index.html")) {
    EXPECT_EQ(r.status, 200);
    EXPECT_THAT(r.body, HasSubstr("<div id=\"root\">"));
  } else {
    EXPECT_EQ(r.status, 404);
    EXPECT_THAT(r.body, HasSubstr("scripts/build.sh"));
  }
  EXPECT_EQ(node_->call("POST", "/api/apps?name=ui", "x").status, 400);
}

TEST_F(ConsoleApiTest, ExperimentRunsALoadAndKeepsItsResult) {
  auto bad = node_->call("POST", "/api/experiments?app=hello&arrival=zipf");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("arrival: want poisson, constant, burst or trace"));
  auto bad_trace = node_->call("POST", "/api/experiments?app=hello&arrival=trace&trace=5,x");
  EXPECT_EQ(bad_trace.status, 400);
  EXPECT_THAT(bad_trace.body, HasSubstr("'x' is not a rate"));
  EXPECT_EQ(node_->call("POST", "/api/experiments?app=hello&duration=9999").status, 400);
  EXPECT_EQ(node_->call("POST", "/api/experiments?rate=5").status, 400);

  auto started =
      node_->call("POST", "/api/experiments?app=hello&arrival=constant&rate=100&duration=2");
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_THAT(started.body, HasSubstr("\"state\":\"running\""));
  // One at a time.
  EXPECT_EQ(node_->call("POST", "/api/experiments?app=hello&duration=1").status, 409);
  std::string id = started.body.substr(6, started.body.find(',') - 6);
  std::string done = waitFor("/api/experiments/" + id, "\"state\":\"done\"");
  EXPECT_THAT(done, AllOf(HasSubstr("\"state\":\"done\""),
                          HasSubstr("\"scheduled\":200,\"answered\":200,\"ok\":200"),
                          HasSubstr("\"cdf\":[["), HasSubstr("\"timeline\":[{\"s\":0,")));
  // A trace of two seconds runs two seconds.
  auto traced = node_->call("POST", "/api/experiments?app=hello&arrival=trace&trace=50,100");
  ASSERT_EQ(traced.status, 202) << traced.body;
  EXPECT_THAT(traced.body, AllOf(HasSubstr("\"duration_s\":2,"), HasSubstr("\"trace_seconds\":2")));
  std::string tid = traced.body.substr(6, traced.body.find(',') - 6);
  EXPECT_THAT(waitFor("/api/experiments/" + tid, "\"state\":\"done\""),
              HasSubstr("\"timeline\":[{\"s\":0,"));
  auto list = node_->call("GET", "/api/experiments");
  EXPECT_THAT(list.body, AllOf(HasSubstr("\"id\":" + id), ::testing::Not(HasSubstr("\"cdf\""))));
  EXPECT_EQ(node_->call("GET", "/api/experiments/999").status, 404);
}

}  // namespace
}  // namespace waverless::testing
