// End-to-end tests of a single node: the real `waverless dev` binary with
// real RocksDB in a temp folder, driven only over HTTP and the CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include "node_suite.h"

namespace waverless::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class PlatformTest : public NodeSuite<PlatformTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path apps = makeRoot("platform") / "apps";
    copyTestApps(apps);
    startNode(apps, {"--cache", WL_TEST_CACHE, "--max-body", std::to_string(8 << 20)});
  }
};

TEST_F(PlatformTest, HelloOverHttpAndCli) {
  auto r = node_->call("GET", "/hello");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello world");
  auto cli = runCli({"invoke", "hello"}, node_->cliArgs());
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_THAT(cli.output, HasSubstr("hello world"));
  auto apps = runCli({"apps", "--output", "json"}, node_->cliArgs());
  EXPECT_THAT(apps.output, HasSubstr("\"name\":\"word_count\""));
}

TEST_F(PlatformTest, WordCountMatchesNativeCountOnMultiMegabyteText) {
  std::string text = generateText(5u << 20, 7);
  auto r = node_->call("POST", "/word_count", text);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, nativeWordCount(text));
}

TEST_F(PlatformTest, WordCountReadsTheAppsFilesWhenBodyIsEmpty) {
  std::ifstream f(fs::path(WL_SOURCE_DIR) / "apps/word_count/files/input.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto r = node_->call("POST", "/word_count", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, nativeWordCount(text));
}

TEST_F(PlatformTest, LongChainRunsOneHundredHops) {
  std::string data = "Hello, Waverless! zz";
  auto r = node_->call("POST", "/longchain", data);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"hops\":100,\"final\":\"" + rotate(data, 100) + "\"}");
}

TEST_F(PlatformTest, KvAccessOutsideTheDeclaredPatternsIsRefusedAndLogged) {
  auto r = node_->call("POST", "/testkit/perm", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "forbidden=2 allowed=0");
  auto logs = runCli({"logs", "testkit"}, node_->cliArgs());
  EXPECT_THAT(logs.output, HasSubstr("may not set key 'forbidden_1'"));
}

TEST_F(PlatformTest, BatchSetIsAtomicAndScanListsOnlyTheAppsKeys) {
  auto r = node_->call("POST", "/testkit/batch", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "refused=2 stored=0: store_b1=one store_b2=two store_b3=");
}

TEST_F(PlatformTest, TrapInTriggeredFunctionFailsTheRequestNamingIt) {
  auto r = node_->call("POST", "/testkit/boom", "");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("function boom"));
  EXPECT_THAT(r.body, HasSubstr("integer divide by zero"));
}

TEST_F(PlatformTest, GuestFailureMapsToItsHttpStatus) {
  auto r = node_->call("POST", "/testkit/refuse", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("function refuse of app testkit: failed: bad input"));
}

TEST_F(PlatformTest, TimeoutGives504AndTheNodeKeepsServing) {
  auto r = node_->call("POST", "/testkit/spin", "");
  EXPECT_EQ(r.status, 504);
  EXPECT_THAT(r.body, HasSubstr("timed out"));
  EXPECT_EQ(node_->call("GET", "/hello").body, "hello world");
}

// What testkit's body_sum computes, natively.
std::string bodySum(const std::string& body) {
  unsigned long long sum = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    sum += static_cast<unsigned char>(body[i]) * (i % 251 + 1);
  }
  return "bytes=" + std::to_string(body.size()) + " sum=" + std::to_string(sum);
}

TEST_F(PlatformTest, StreamedBodyReachesTheFunctionWholeAtAnySize) {
  // 6 MB arrives while the function runs (over the 4 MiB the node holds
  // unread); 100 bytes arrive whole first and are read the same way.
  for (size_t n : {size_t{6} << 20, size_t{100}, size_t{0}}) {
    std::string body = generateText(n, 11);
    body.resize(n);
    auto r = node_->call("POST", "/testkit/body_sum", body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, bodySum(body)) << n << " bytes";
  }
}

TEST_F(PlatformTest, CppSdkReadsStreamedBodies) {
  std::string big = generateText(3u << 20, 3);
  auto r = node_->call("POST", "/cppkit/body_stats", big);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "1 " + std::to_string(big.size()) + " " + big.front() + big.back());
  r = node_->call("POST", "/cppkit/body_stats", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "0 0");
}

TEST_F(PlatformTest, StreamingFunctionMayAnswerWithoutReadingItsBody) {
  auto r = node_->call("POST", "/testkit/body_skip", std::string(6 << 20, 'x'));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "skipped");
  EXPECT_EQ(node_->call("GET", "/hello").body, "hello world");
}

TEST_F(PlatformTest, BufferedFunctionHasNoBodyToStream) {
  auto r = node_->call("POST", "/testkit/body_none", "abc");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "status=7");  // WL_ERR_UNAVAILABLE
}

TEST_F(PlatformTest, BadRequestsGetClearErrors) {
  EXPECT_EQ(node_->call("POST", "/hello", std::string(9 << 20, 'x')).status, 413);
  EXPECT_EQ(node_->call("GET", "/no_such_app").status, 404);
  EXPECT_EQ(node_->call("POST", "/testkit/no_such_fn").status, 404);
  EXPECT_EQ(node_->call("POST", "/api/apps?name=bad", "not a tar").status, 400);
  EXPECT_EQ(node_->call("GET", "/hello").status, 200);
}

TEST_F(PlatformTest, MalformedAppYamlIsRejectedWithItsLine) {
  fs::path bad = *root_ / "bad_app";
  copyApp(fs::path(WL_SOURCE_DIR) / "apps/hello", fs::path(WL_BUILD_DIR) / "apps/hello/app.wasm",
          bad);
  std::ofstream(bad / "app.yaml") << "fns:\n  fn2:\n    event:\n    - http_app:\n    colour: red\n";
  auto r = runCli({"deploy", bad.string()}, node_->cliArgs());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("app.yaml:5"));
  EXPECT_THAT(r.output, HasSubstr("colour"));
  // The running apps are untouched.
  EXPECT_EQ(node_->call("GET", "/hello").body, "hello world");
}

TEST_F(PlatformTest, DeployListDeleteThroughTheCli) {
  fs::path src = *root_ / "hello2";
  copyApp(fs::path(WL_SOURCE_DIR) / "apps/hello", fs::path(WL_BUILD_DIR) / "apps/hello/app.wasm",
          src);
  auto d = runCli({"deploy", src.string()}, node_->cliArgs());
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(node_->call("GET", "/hello2").body, "hello world");
  auto del = runCli({"delete", "hello2"}, node_->cliArgs());
  EXPECT_EQ(del.exit_code, 0) << del.output;
  EXPECT_EQ(node_->call("GET", "/hello2").status, 404);
}

TEST_F(PlatformTest, MetricsArePrometheusText) {
  node_->call("GET", "/hello");
  auto m = node_->call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_THAT(m.body, HasSubstr("wl_invocations_total{app=\"hello\",fn=\"fn2\",result=\"ok\"}"));
  EXPECT_THAT(m.body, HasSubstr("wl_invocation_seconds_bucket{app=\"hello\",fn=\"fn2\",le="));
  EXPECT_THAT(m.body, HasSubstr("wl_kv_ops{op=\"set\"}"));
  EXPECT_THAT(m.body, HasSubstr("wl_instances_idle"));
}

// With dedicated HTTP threads (--http-threads) a streamed body crosses
// threads: the connection's I/O thread fills it, an executor fiber reads it.
TEST(PlatformHttpThreadsTest, StreamedBodyAndWordCountAcrossThreads) {
  fs::path root = tempDir("httpthreads");
  fs::path apps = root / "apps";
  copyTestApps(apps);
  DevNode node(
      root / "data", apps,
      {"--cache", WL_TEST_CACHE, "--http-threads", "2", "--max-body", std::to_string(16 << 20)});
  ASSERT_TRUE(node.start()) << "see " << (root / "data.log");
  std::string body = generateText(9u << 20, 5);
  auto r = node.call("POST", "/testkit/body_sum", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, bodySum(body));
  auto wc = node.call("POST", "/word_count", body);
  ASSERT_EQ(wc.status, 200) << wc.body.substr(0, 300);
  EXPECT_EQ(wc.body, nativeWordCount(body));
  EXPECT_EQ(node.call("GET", "/hello").body, "hello world");
  node.kill(SIGKILL);
  fs::remove_all(root);
}

// Acknowledged kv_sets survive kill -9 of the node.
TEST(PlatformCrashTest, AcknowledgedWritesSurviveKillNine) {
  fs::path root = tempDir("crash");
  fs::path apps = root / "apps";
  copyApp(fs::path(WL_SOURCE_DIR) / "tests/apps/testkit",
          fs::path(WL_BUILD_DIR) / "tests/apps/testkit/app.wasm", apps / "testkit");
  int acknowledged = 0;
  {
    DevNode node(root / "data", apps, {"--cache", WL_TEST_CACHE});
    ASSERT_TRUE(node.start());
    for (int i = 0; i < 300; ++i) {
      auto r =
          node.call("POST", "/testkit/put", "k" + std::to_string(i) + "=v" + std::to_string(i));
      ASSERT_EQ(r.body, "ok");
      acknowledged++;
    }
    node.kill(SIGKILL);
  }
  DevNode again(root / "data", "", {"--cache", WL_TEST_CACHE});
  ASSERT_TRUE(again.start());
  for (int i = 0; i < acknowledged; ++i) {
    auto r = again.call("POST", "/testkit/get", "k" + std::to_string(i));
    ASSERT_EQ(r.body, "v" + std::to_string(i)) << "key k" << i;
  }
  EXPECT_EQ(again.call("POST", "/testkit/get", "never").body, "missing");
  again.kill(SIGTERM);
  fs::remove_all(root);
}

// The register app (tests/apps/register) uses wl_kv_cas, wl_kv_incr and wl_invocation_id.
TEST_F(PlatformTest, CasAndIncrThroughAGuestAreAtomicWritesThatTrigger) {
  auto call = [&](const std::string& fn, const std::string& body) {
    return node_->call("POST", "/register/" + fn, body);
  };
  EXPECT_EQ(call("get", "pk").body, "absent");
  auto created = call("cas", "pk\ntok1\n!\nfirst");
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.body, "stored");
  EXPECT_EQ(call("cas", "pk\ntok2\n!\nagain").body, "conflict");  // create-only, and it exists
  EXPECT_EQ(call("cas", "pk\ntok3\n=wrong\nx").body, "conflict");
  EXPECT_EQ(call("cas", "pk\ntok4\n=first\nsecond").body, "stored");
  EXPECT_EQ(call("get", "pk").body, "=second");
  // Only the stored ones wrote their event key, and each event's trigger ran.
  EXPECT_EQ(call("probe", "tok1\ntok2\ntok3\ntok4").body, "11\n00\n00\n11\n");

  EXPECT_EQ(call("incr", "pn\n5").body, "5");
  EXPECT_EQ(call("incr", "pn\n-8").body, "-3");
  EXPECT_EQ(call("incr", "pbig\n9223372036854775807").body, "9223372036854775807");
  auto over = call("incr", "pbig\n1");
  EXPECT_EQ(over.status, 400) << over.body;
  EXPECT_THAT(over.body, HasSubstr("kv_incr failed"));
  auto logs = runCli({"logs", "register"}, node_->cliArgs());
  EXPECT_THAT(logs.output, HasSubstr("overflows a 64-bit integer"));

  // Outside the kvs list, or with only `get` on the key: refused, nothing written.
  auto denied = call("denied", "");
  EXPECT_EQ(denied.body, "cas=2 incr=2 get_only_cas=2");
  EXPECT_EQ(call("get", "1").body, "absent");
}

TEST_F(PlatformTest, InvocationIdsAreDistinctAndNameTheRequest) {
  auto a = node_->call("POST", "/register/whoami", "");
  auto b = node_->call("POST", "/register/whoami", "");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_THAT(a.body, ::testing::MatchesRegex("r[0-9a-f]+\\.0"));
  EXPECT_NE(a.body, b.body);
}

}  // namespace
}  // namespace waverless::testing
