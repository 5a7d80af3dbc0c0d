#include "master/console.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/property_tree/json_parser.hpp>
#include <fstream>
#include <sstream>

namespace waverless::master {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

http::Request get(const std::string& path, const std::string& query = "") {
  http::Request r;
  r.method = "GET";
  r.path = path;
  r.query = query;
  return r;
}

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wl-console-" + std::to_string(getpid()));
    fs::create_directories(dir_ / "ui/assets");
    std::ofstream(dir_ / "ui/index.html") << "<html>console</html>";
    std::ofstream(dir_ / "ui/assets/app-1234.js") << "console.log(1)";
    std::ofstream(dir_ / "secret.txt") << "not for the browser";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  metrics::Registry metrics_;
};

TEST_F(ConsoleTest, ServesBuiltFilesWithTheirTypes) {
  Console c(metrics_, dir_ / "ui");
  auto index = c.serveUi(get("/ui/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<html>console</html>");
  EXPECT_THAT(index.content_type, HasSubstr("text/html"));
  auto js = c.serveUi(get("/ui/assets/app-1234.js"));
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(js.content_type, HasSubstr("javascript"));
  ASSERT_FALSE(js.headers.empty());
  EXPECT_THAT(js.headers[0].second, HasSubstr("immutable"));
  // A page route (no extension) is the page itself; a missing file is 404.
  EXPECT_EQ(c.serveUi(get("/ui/apps/word_count")).body, "<html>console</html>");
  EXPECT_EQ(c.serveUi(get("/ui/assets/gone.js")).status, 404);
  auto bare = c.serveUi(get("/ui"));
  EXPECT_EQ(bare.status, 308);
}

TEST_F(ConsoleTest, NothingOutsideTheFolderIsServed) {
  Console c(metrics_, dir_ / "ui");
  for (const char* p : {"/ui/../secret.txt", "/ui/assets/../../secret.txt", "/ui//etc/passwd"}) {
    auto r = c.serveUi(get(p));
    EXPECT_NE(r.body, "not for the browser") << p;
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("root:"))) << p;
  }
  EXPECT_EQ(c.serveUi(get("/ui/../secret.txt")).status, 404);
}

TEST_F(ConsoleTest, UnbuiltConsoleSaysHowToBuildIt) {
  Console c(metrics_, dir_ / "nowhere");
  auto r = c.serveUi(get("/ui/"));
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("scripts/build.sh"));
}

TEST_F(ConsoleTest, HistoryAnswersJsonAndRefusesABadSince) {
  metrics_.counter("wl_http_requests_total", "").add(7);
  Console c(metrics_, dir_ / "ui");
  ASSERT_TRUE(c.start().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  http::Response r;
  do {
    r = c.history(get(Console::kHistoryPath));
  } while (r.body.find("\"t\":") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  c.stop();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_THAT(r.body, HasSubstr("\"wl_http_requests_total\":7"));
  EXPECT_THAT(c.history(get(Console::kHistoryPath, "since=99999999999999")).body,
              HasSubstr("\"samples\":[]"));
  EXPECT_EQ(c.history(get(Console::kHistoryPath, "since=yesterday")).status, 400);
}

TEST_F(ConsoleTest, LiveAnswersThePartsAskedForInOneJson) {
  metrics_.counter("wl_http_requests_total", "").add(3);
  Console c(metrics_, dir_ / "ui");
  ASSERT_TRUE(c.start().ok());
  std::function<std::string()> nodes = [] { return std::string(R"([{"id":1}])"); };
  std::function<std::string()> meta = [] { return std::string(R"({"meta":true,"leader":1})"); };
  std::function<std::string()> none;
  auto logs = [](const std::string& app, size_t limit) -> absl::StatusOr<std::string> {
    if (app != "wc") return absl::NotFoundError("no app named '" + app + "'");
    return "1 req=a fn=f | said \"hi\"\n    and\tmore\n" + std::to_string(limit);
  };
  LiveSources cluster{nodes, meta, logs};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  http::Response r;
  do {
    r = c.live(get(Console::kLivePath, "since=0&nodes=1&logs=wc&limit=5"), cluster);
  } while (r.body.find("\"t\":") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  c.stop();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_THAT(r.body, HasSubstr("\"wl_http_requests_total\":3"));
  EXPECT_THAT(r.body, HasSubstr(R"(,"nodes":[{"id":1}],"meta":{"meta":true,"leader":1},)"));
  // The log text survives as one JSON string: quotes, newlines, tabs escaped.
  EXPECT_THAT(r.body, HasSubstr(R"("logs":"1 req=a fn=f | said \"hi\"\n    and\tmore\n5"})"));
  boost::property_tree::ptree tree;
  std::istringstream in(r.body);
  EXPECT_NO_THROW(boost::property_tree::read_json(in, tree)) << r.body;

  // What is not asked for is null, and so are nodes and meta outside a cluster.
  EXPECT_THAT(
      c.live(get(Console::kLivePath, "since=99999999999999"), cluster).body,
      AllOf(HasSubstr(R"("samples":[])"), HasSubstr(R"("nodes":null,"meta":null,"logs":null})")));
  EXPECT_EQ(c.live(get(Console::kLivePath, "nodes=1"), {none, none, logs}).body,
            R"({"history":null,"nodes":null,"meta":null,"logs":null})");
  EXPECT_THAT(c.live(get(Console::kLivePath, "logs=nope"), cluster).body,
              HasSubstr(R"("logs":null,"logs_error":"no app named 'nope'"})"));

  for (const char* bad :
       {"since=soon", "since=", "logs=wc&limit=lots", "logs=wc&limit=0", "logs=wc&limit=-1"}) {
    auto b = c.live(get(Console::kLivePath, bad), cluster);
    EXPECT_EQ(b.status, 400) << bad;
    EXPECT_THAT(b.body, ::testing::AnyOf(HasSubstr("since wants"), HasSubstr("limit wants")))
        << bad;
  }
  http::Request post = get(Console::kLivePath);
  post.method = "POST";
  EXPECT_EQ(c.live(post, cluster).status, 405);
}

TEST(AppGraph, NamesTheTriggeringPatternAndTheAccessModes) {
  auto m = app::parseManifest(R"(
fns:
  split:
    event:
    - http_app:
    kvs:
      part_{}: [set, delete]
  count:
    event:
    - kv_set: 0
    args: [kv_key(0)]
    kvs:
      part_{}: [get]
)",
                              "wc");
  ASSERT_TRUE(m.ok()) << m.status();
  std::string j = appGraphJson(*m);
  EXPECT_THAT(
      j, HasSubstr(R"({"name":"count","line":8,"events":[{"kind":"kv_set","pattern":"part_{}"}],)"
                   R"("kvs":[{"pattern":"part_{}","get":true,"set":false,"delete":false}]})"));
  EXPECT_THAT(
      j,
      HasSubstr(
          R"("events":[{"kind":"http_app"}],"kvs":[{"pattern":"part_{}","get":false,"set":true,"delete":true}])"));
}

}  // namespace
}  // namespace waverless::master
