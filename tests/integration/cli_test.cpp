// The `waverless` command as its users meet it (issue 12, CLI polish): exit
// codes, a reason for every failure, templates, listings as tables and
// JSON, logs --follow, status and bash completion. The real binary against
// a real `waverless dev` node.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "node_suite.h"

namespace waverless::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class CliTest : public NodeSuite<CliTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path apps = makeRoot("cli") / "apps";
    copyTestApps(apps);
    startNode(apps, {"--cache", WL_TEST_CACHE});
  }
  // Runs a bash script with the binary as $W; stdout+stderr.
  static CommandResult shell(const std::string& line) {
    fs::path script = *root_ / "line.sh";
    std::ofstream(script) << "W='" << WL_BINARY << "'\n" << line << "\n";
    std::string cmd = "bash '" + script.string() + "' 2>&1";
    CommandResult r;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }
};

TEST_F(CliTest, BadMaxBodyExitsTwoAndSaysSo) {
  for (const char* bad : {"0", "64M", "-5", ""}) {
    auto dev = runCli({"dev", "--max-body", bad});
    EXPECT_EQ(dev.exit_code, 2) << bad;
    EXPECT_THAT(dev.output, HasSubstr("--max-body wants a number of bytes")) << bad;
    auto node = runCli({"node", "--config", "none.yaml", "--id", "2", "--max-body", bad});
    EXPECT_EQ(node.exit_code, 2) << bad;
    EXPECT_THAT(node.output, HasSubstr("--max-body wants a number of bytes")) << bad;
  }
}

TEST_F(CliTest, UnknownCommandExitsTwoAndSaysSo) {
  auto r = runCli({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("unknown command 'frobnicate'"));
  auto missing = runCli({"logs"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("logs APP"));
  auto bad_output = runCli({"apps", "--output", "yaml"}, node_->cliArgs());
  EXPECT_EQ(bad_output.exit_code, 2);
  EXPECT_THAT(bad_output.output, HasSubstr("--output wants table, json or name"));
}

TEST_F(CliTest, NoNodeRunningSaysWhy) {
  std::string nowhere = "http://127.0.0.1:" + std::to_string(freePortPair());
  for (const char* cmd : {"apps", "status"}) {
    auto r = runCli({cmd, "--to", nowhere});
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_THAT(r.output, AllOf(HasSubstr("no node answers at " + nowhere),
                                HasSubstr("Connection refused"), HasSubstr("waverless dev")))
        << cmd;
  }
  auto logs = runCli({"logs", "hello", "--follow", "--to", nowhere});
  EXPECT_EQ(logs.exit_code, 1);
  EXPECT_THAT(logs.output, HasSubstr("no node answers"));
}

TEST_F(CliTest, MissingFolderIsNamedNotReportedAsHavingNoSources) {
  fs::path gone = *root_ / "no-such-app";
  for (const char* cmd : {"build", "deploy"}) {
    auto r = runCli({cmd, gone.string()}, node_->cliArgs());
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_THAT(r.output, HasSubstr("no such folder: " + gone.string())) << cmd;
    EXPECT_THAT(r.output, Not(HasSubstr("sources"))) << cmd;
  }
}

TEST_F(CliTest, NewFromEachTemplateBuildsDeploysAndRuns) {
  auto list = runCli({"new", "--list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_THAT(list.output, AllOf(HasSubstr("c\n"), HasSubstr("cpp\n")));
  for (std::string tmpl : {"c", "cpp"}) {
    std::string app = "greet_" + tmpl;
    fs::path dir = *root_ / "new" / app;
    auto made = runCli({"new", tmpl, dir.string()});
    ASSERT_EQ(made.exit_code, 0) << made.output;
    std::ifstream yaml(dir / "app.yaml");
    std::string first;
    std::getline(yaml, first);
    EXPECT_THAT(first, StartsWith("# " + app + ":"));  // {{app}} replaced
    EXPECT_FALSE(fs::exists(dir / "template.txt"));
    auto d = runCli({"deploy", dir.string()}, node_->cliArgs());
    ASSERT_EQ(d.exit_code, 0) << d.output;
    auto one = runCli({"invoke", app, "--data", "ada"}, node_->cliArgs());
    EXPECT_EQ(one.exit_code, 0) << one.output;
    EXPECT_THAT(one.output, HasSubstr("hello ada (call 1)"));
    auto two = runCli({"invoke", app, "--data", "ada"}, node_->cliArgs());
    EXPECT_THAT(two.output, HasSubstr("hello ada (call 2)"));
    // A second `new` into the same folder refuses to overwrite it.
    auto again = runCli({"new", tmpl, dir.string()});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_THAT(again.output, HasSubstr("exists and is not empty"));
  }
  auto unknown = runCli({"new", "cobol", (*root_ / "x").string()});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, AllOf(HasSubstr("no template named 'cobol'"), HasSubstr("cpp")));
  auto bad_name = runCli({"new", "c", (*root_ / "bad name!").string()});
  EXPECT_EQ(bad_name.exit_code, 2) << bad_name.output;
  // /ui is the web console's path: no app may take it.
  fs::path ui = *root_ / "new" / "greet_c";
  auto taken = runCli({"deploy", ui.string(), "--name", "ui"}, node_->cliArgs());
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_THAT(taken.output, HasSubstr("the app name 'ui' is taken by the web console"));
}

TEST_F(CliTest, AppsAsTableJsonAndNames) {
  auto table = runCli({"apps"}, node_->cliArgs());
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_THAT(table.output, StartsWith("NAME "));
  EXPECT_THAT(table.output, AllOf(HasSubstr("FUNCTIONS"), HasSubstr("\nhello "),
                                  HasSubstr("count_slice, split_file")));
  auto json = runCli({"apps", "--output", "json"}, node_->cliArgs());
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_THAT(json.output, AllOf(StartsWith("["), HasSubstr("\"name\":\"hello\"")));
  auto names = runCli({"apps", "-o", "name"}, node_->cliArgs());
  EXPECT_THAT(names.output, AllOf(HasSubstr("hello\n"), HasSubstr("word_count\n")));
  EXPECT_THAT(names.output, Not(HasSubstr("NAME")));
}

TEST_F(CliTest, LogsAsJsonAndFollowPrintsNewEntriesOnce) {
  ASSERT_EQ(node_->call("POST", "/testkit/perm", "").status, 200);
  auto json = runCli({"logs", "testkit", "--output", "json"}, node_->cliArgs());
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_THAT(json.output, AllOf(StartsWith("[{\"unix_ms\":"), HasSubstr("\"fn\":\"perm\""),
                                 HasSubstr("may not set key 'forbidden_1'")));
  // --follow for a few seconds while new entries arrive.
  std::string args;
  for (const auto& a : node_->cliArgs()) args += " '" + a + "'";
  std::atomic<bool> stop{false};
  std::thread caller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    node_->call("POST", "/testkit/perm", "");
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    node_->call("POST", "/testkit/perm", "");
  });
  auto follow = shell("timeout 5 $W logs testkit --follow --limit 1 -o json" + args);
  caller.join();
  EXPECT_EQ(follow.exit_code, 124) << follow.output;  // still following when stopped
  // One old entry (--limit 1), then the two new requests' entries, each
  // once although every poll sees them again: JSON Lines.
  std::set<std::string> requests;
  size_t lines = 0;
  std::istringstream in(follow.output);
  std::string line;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_THAT(line, AllOf(StartsWith("{\"unix_ms\":"), HasSubstr("forbidden_1'")));
    requests.insert(line.substr(line.find("\"request_id\""), 30));
  }
  EXPECT_EQ(lines, 3u) << follow.output;
  EXPECT_EQ(requests.size(), 3u) << follow.output;
}

TEST_F(CliTest, LoadRunsAnOpenLoopAndReportsLatency) {
  auto table = runCli({"load", "hello", "--rate", "200", "--duration", "1"}, node_->cliArgs());
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_THAT(table.output, AllOf(HasSubstr("errors: none"), HasSubstr("latency   p50 "),
                                  HasSubstr("0 failed connections")));
  auto json = runCli(
      {"load", "hello", "--rate", "100", "--duration", "1", "--arrival", "constant", "-o", "json"},
      node_->cliArgs());
  ASSERT_EQ(json.exit_code, 0) << json.output;
  // Constant arrivals at 100/s for 1 s: exactly 100 scheduled, all answered.
  EXPECT_THAT(json.output, AllOf(HasSubstr("\"arrival\":\"constant\""),
                                 HasSubstr("\"scheduled\":100,\"answered\":100,\"ok\":100"),
                                 HasSubstr("\"timeline\":[{\"s\":0,\"due\":100,\"ok\":100"),
                                 HasSubstr("\"cdf\":[[")));
  // A trace: Poisson at 50 req/s, then 150 req/s; the run lasts its 2 seconds.
  fs::path trace = *root_ / "trace.txt";
  std::ofstream(trace) << "# req/s per second\n50\n150\n";
  auto traced =
      runCli({"load", "hello", "--trace", trace.string(), "-o", "json"}, node_->cliArgs());
  ASSERT_EQ(traced.exit_code, 0) << traced.output;
  EXPECT_THAT(traced.output,
              AllOf(HasSubstr("\"arrival\":\"trace\""), HasSubstr("\"duration_s\":2,"),
                    HasSubstr("\"trace_seconds\":2"), HasSubstr("{\"s\":1,")));
  std::ofstream(trace) << "50\nlots\n";
  auto bad_trace = runCli({"load", "hello", "--trace", trace.string()}, node_->cliArgs());
  EXPECT_EQ(bad_trace.exit_code, 1);
  EXPECT_THAT(bad_trace.output, HasSubstr("trace line 2: 'lots' is not a rate"));
  auto bad = runCli({"load", "hello", "--arrival", "zipf"}, node_->cliArgs());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("arrival: want poisson, constant, burst or trace"));
  auto tls = runCli({"load", "hello", "--to", "https://127.0.0.1:1"});
  EXPECT_EQ(tls.exit_code, 2);
  EXPECT_THAT(tls.output, HasSubstr("plain HTTP"));
  std::string nowhere = "http://127.0.0.1:" + std::to_string(freePortPair());
  auto none = runCli({"load", "hello", "--duration", "1", "--to", nowhere});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.output, HasSubstr("no node answers at " + nowhere));
}

TEST_F(CliTest, StatusShowsTheNodeAtAGlance) {
  auto s = runCli({"status"}, node_->cliArgs());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_THAT(s.output, AllOf(HasSubstr("serving"), HasSubstr("hello"),
                              HasSubstr("cluster  none: a single node")));
  auto j = runCli({"status", "--output", "json"}, node_->cliArgs());
  EXPECT_THAT(j.output, AllOf(HasSubstr("\"serving\":true"), HasSubstr("\"nodes\":null"),
                              HasSubstr("\"name\":\"word_count\"")));
}

TEST_F(CliTest, BashCompletionCompletesCommandsFlagsAppsAndTemplates) {
  std::string to = node_->base(), tf = node_->tokenFile().string();
  auto complete = [&](const std::string& words, int cword) {
    return shell("source <($W completion bash) && COMP_WORDS=(" + words + ") && COMP_CWORD=" +
                 std::to_string(cword) + " && _waverless && echo \"${COMPREPLY[*]}\"")
        .output;
  };
  EXPECT_EQ(complete("$W de", 1), "dev deploy delete\n");
  EXPECT_EQ(complete("$W logs --fo", 2), "--follow\n");
  EXPECT_EQ(complete("$W new c", 2), "c cpp\n");
  EXPECT_EQ(complete("$W invoke --to " + to + " --token-file " + tf + " word", 6), "word_count\n");
  auto bad = runCli({"completion", "fish"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("there is bash"));
}

// `status` against a 3-node cluster: every node with its roles, the raft
// leader, and a killed node shown DOWN with exit status 1.
TEST(CliClusterTest, StatusShowsEveryNodeTheLeaderAndANodeDown) {
  fs::path root = tempDir("cli-cluster");
  uint16_t ports[3];
  for (int i = 0; i < 3; ++i) {
    bool clash;
    do {
      ports[i] = freePortPair();
      clash = false;
      for (int j = 0; j < i; ++j) clash |= ports[i] == ports[j];
    } while (clash);
  }
  std::ofstream(root / "cluster.yaml")
      << "nodes:\n"
      << "  1: {addr: 127.0.0.1:" << ports[0] << ", spec: [meta, master]}\n"
      << "  2: {addr: 127.0.0.1:" << ports[1] << ", spec: [meta, worker]}\n"
      << "  3: {addr: 127.0.0.1:" << ports[2] << ", spec: [meta, worker]}\n";
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (int i = 0; i < 3; ++i) {
    std::string id = std::to_string(i + 1);
    nodes.push_back(std::make_unique<NodeProcess>(
        std::vector<std::string>{"node", "--config", (root / "cluster.yaml").string(), "--id", id,
                                 "--data", (root / ("data" + id)).string(), "--cache",
                                 WL_TEST_CACHE, "--token-file", (root / "cluster.token").string()},
        static_cast<uint16_t>(ports[i] + 1), (root / ("node" + id + ".log")).string()));
  }
  ASSERT_TRUE(nodes[1]->start());
  ASSERT_TRUE(nodes[2]->start());
  ASSERT_TRUE(nodes[0]->start()) << "see " << (root / "node1.log");
  auto statusUntil = [&](const std::function<bool(const CommandResult&)>& done) {
    CommandResult r;
    for (int i = 0; i < 200; ++i) {
      r = runCli({"status"}, nodes[0]->cliArgs());
      if (done(r)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  };
  auto all = statusUntil([](const CommandResult& r) {
    return r.exit_code == 0 && r.output.find("3 nodes, 3 alive") != std::string::npos &&
           r.output.find("raft leader: node") != std::string::npos;
  });
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_THAT(all.output,
              AllOf(HasSubstr("3 nodes, 3 alive"), HasSubstr("raft leader: node"),
                    HasSubstr("meta,master"), HasSubstr("meta,worker"), HasSubstr("ID  ADDR")));
  auto json = runCli({"status", "-o", "json"}, nodes[0]->cliArgs());
  EXPECT_THAT(json.output, AllOf(HasSubstr("\"nodes\":[{\"id\":1"), HasSubstr("\"meta\":{")));
  nodes[2]->kill(SIGKILL);
  auto down = statusUntil([](const CommandResult& r) { return r.exit_code == 1; });
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_THAT(down.output, AllOf(HasSubstr("3 nodes, 2 alive"), HasSubstr("DOWN")));
  nodes.clear();
  fs::remove_all(root);
}

}  // namespace
}  // namespace waverless::testing
