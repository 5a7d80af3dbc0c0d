// Instance snapshots through the real binary: an app exporting wl_init
// (tests/apps/snapshot) deployed with the CLI, invoked over HTTP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "node_suite.h"

namespace waverless::testing {
namespace {

using ::testing::HasSubstr;

// The checksum the app reports for the table its wl_init builds.
std::string initialSum() {
  uint64_t s = 0;
  for (uint32_t i = 0; i < (4u << 20); i += 4096) s += static_cast<uint8_t>(i * 7 + 1);
  return std::to_string(s);
}

class SnapshotE2eTest : public NodeSuite<SnapshotE2eTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path apps = makeRoot("snapshot") / "apps";
    fs::create_directories(apps);
    startNode(apps, {"--cache", WL_TEST_CACHE});
  }

  // A copy of tests/apps/snapshot named `name`, with files/word.txt = word
  // and, unless empty, files/mode = mode.
  fs::path stage(const std::string& name, const std::string& word, const std::string& mode = "") {
    fs::path dir = *root_ / "src" / name;
    fs::remove_all(dir);
    copyApp(fs::path(WL_SOURCE_DIR) / "tests/apps/snapshot",
            fs::path(WL_BUILD_DIR) / "tests/apps/snapshot/app.wasm", dir);
    std::ofstream(dir / "files/word.txt") << word << "\n";
    if (!mode.empty()) std::ofstream(dir / "files/mode") << mode << "\n";
    return dir;
  }
  CommandResult deploy(const fs::path& dir) {
    return runCli({"deploy", dir.string()}, node_->cliArgs());
  }
  std::string expected(const std::string& word, int calls) {
    return "inits=1 calls=" + std::to_string(calls) + " word=" + word + " sum=" + initialSum();
  }
};

TEST_F(SnapshotE2eTest, WlInitStateIsSeenByEveryInstanceAndFreshCallsStartPristine) {
  auto d = deploy(stage("snap", "alpha"));
  ASSERT_EQ(d.exit_code, 0) << d.output;
  // Reuse: the first call sees wl_init's state, the second the first's writes.
  auto first = node_->call("POST", "/snap/touch");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.body, expected("alpha", 1));
  auto second = node_->call("POST", "/snap/touch");
  EXPECT_THAT(second.body, HasSubstr("calls=2 word=scribbled"));
  // Fresh: every call starts from the snapshot, whatever the last one wrote.
  for (int i = 0; i < 3; ++i) {
    auto r = node_->call("POST", "/snap/fresh_touch");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, expected("alpha", 1));
  }
  // A new instance (after evicting the idle ones) starts from it too.
  ASSERT_EQ(node_->call("POST", "/api/apps/snap/evict").status, 200);
  EXPECT_EQ(node_->call("POST", "/snap/touch").body, expected("alpha", 1));
}

TEST_F(SnapshotE2eTest, RedeployRebuildsTheSnapshot) {
  ASSERT_EQ(deploy(stage("redeploy", "before")).exit_code, 0);
  EXPECT_EQ(node_->call("POST", "/redeploy/fresh_touch").body, expected("before", 1));
  auto d = deploy(stage("redeploy", "after"));
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(node_->call("POST", "/redeploy/fresh_touch").body, expected("after", 1));
}

TEST_F(SnapshotE2eTest, TrapInWlInitFailsTheDeployWithItsMessage) {
  ASSERT_EQ(deploy(stage("trapinit", "ok")).exit_code, 0);
  auto d = deploy(stage("trapinit", "ok", "trap"));
  EXPECT_NE(d.exit_code, 0);
  EXPECT_THAT(d.output, HasSubstr("wl_init: trap: unreachable executed"));
  // The running version is untouched.
  EXPECT_EQ(node_->call("POST", "/trapinit/fresh_touch").body, expected("ok", 1));
}

TEST_F(SnapshotE2eTest, WlFailInWlInitFailsTheDeployWithItsMessage) {
  auto d = deploy(stage("failinit", "ok", "fail"));
  EXPECT_NE(d.exit_code, 0);
  EXPECT_THAT(d.output, HasSubstr("word list is corrupt"));
  EXPECT_EQ(node_->call("POST", "/failinit/touch").status, 404);
}

TEST_F(SnapshotE2eTest, KvFromWlInitFailsTheDeployClearly) {
  auto d = deploy(stage("kvinit", "ok", "kv"));
  EXPECT_NE(d.exit_code, 0);
  EXPECT_THAT(d.output, HasSubstr("wl_init called wl_kv_get"));
  EXPECT_THAT(d.output, HasSubstr("must not depend on data that changes"));
}

// wl_init in Rust (a wasm "command" module: no _initialize) and in
// AssemblyScript (its start function exported as _initialize), built from
// source by the CLI's deploy.
TEST_F(SnapshotE2eTest, RustAndAssemblyScriptModulesSnapshotTheirWlInit) {
  for (const char* lang : {"rs", "as"}) {
    std::string name = std::string("snapshot_") + lang;
    fs::path dir = *root_ / "src" / name;
    fs::remove_all(dir);
    fs::copy(fs::path(WL_SOURCE_DIR) / "tests/apps" / name, dir, fs::copy_options::recursive);
    auto d = deploy(dir);
    ASSERT_EQ(d.exit_code, 0) << d.output;
    const std::string initial = "len=1000 sum=500500 calls=1";
    EXPECT_EQ(node_->call("POST", "/" + name + "/probe").body, initial) << lang;
    EXPECT_EQ(node_->call("POST", "/" + name + "/probe").body, "len=0 sum=0 calls=2") << lang;
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(node_->call("POST", "/" + name + "/probe_fresh").body, initial) << lang;
    }
  }
}

// The snapshot is kept in the module cache: a restarted node maps it
// instead of running wl_init again (the number wl_init drew is the same, and
// the app says where its snapshot came from); a redeploy whose files changed
// runs wl_init again.
TEST_F(SnapshotE2eTest, ANodeRestartReadsTheSnapshotInsteadOfRunningWlInit) {
  // A word of its own run: no snapshot file an earlier run left fits it.
  std::string word = "kept-" + std::to_string(getpid());
  ASSERT_EQ(deploy(stage("restart", word)).exit_code, 0);
  EXPECT_THAT(node_->call("GET", "/api/apps/restart").body, HasSubstr("\"snapshot\":\"built\""));
  std::string nonce = node_->call("POST", "/restart/nonce").body;
  ASSERT_EQ(nonce.size(), 16u) << nonce;
  node_->kill(SIGTERM);
  ASSERT_TRUE(node_->start());
  EXPECT_THAT(node_->call("GET", "/api/apps/restart").body, HasSubstr("\"snapshot\":\"cache\""));
  EXPECT_EQ(node_->call("POST", "/restart/nonce").body, nonce);
  EXPECT_EQ(node_->call("POST", "/restart/fresh_touch").body, expected(word, 1));

  auto d = deploy(stage("restart", word + "-changed"));
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_NE(node_->call("POST", "/restart/nonce").body, nonce);
  EXPECT_EQ(node_->call("POST", "/restart/fresh_touch").body, expected(word + "-changed", 1));
}

}  // namespace
}  // namespace waverless::testing
