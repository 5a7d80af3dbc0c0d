// The node-level defence against misbehaving tenants (docs/limits.md), end
// to end against the real binary: tests/apps/tenants provides the offenders,
// apps/hello the bystander that must keep being served.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "node_suite.h"

namespace waverless::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// User + system CPU time of a process, in seconds.
double cpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

uint64_t rssBytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The value of one Prometheus sample whose line starts with `prefix`.
double metric(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(prefix)) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return 0;
}

// Calls GET /hello in a loop on its own thread while a test misbehaves.
class Bystander {
 public:
  explicit Bystander(const DevNode& node) : node_(node) {
    thread_ = std::thread([this] {
      while (!stop_) {
        auto t0 = Clock::now();
        auto r = node_.request("GET", "/hello", "", {});
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
        std::lock_guard lock(mu_);
        (r.status == 200 && r.body == "hello world" ? ok_ : failed_)++;
        latencies_.push_back(us.count());
      }
    });
  }
  ~Bystander() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  int64_t p99us() {
    std::sort(latencies_.begin(), latencies_.end());
    return latencies_.empty() ? 0 : latencies_[latencies_.size() * 99 / 100];
  }

 private:
  const DevNode& node_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int ok_ = 0, failed_ = 0;
  std::vector<int64_t> latencies_;
  std::thread thread_;
};

class LimitsTest : public NodeSuite<LimitsTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path apps = makeRoot("limits") / "apps";
    copyApp(fs::path(WL_SOURCE_DIR) / "apps/hello", fs::path(WL_BUILD_DIR) / "apps/hello/app.wasm",
            apps / "hello");
    fs::path tenants = fs::path(WL_SOURCE_DIR) / "tests/apps/tenants";
    fs::path wasm = fs::path(WL_BUILD_DIR) / "tests/apps/tenants/app.wasm";
    copyApp(tenants, wasm, apps / "tenants");
    // The same functions under tight limits.
    copyApp(tenants, wasm, apps / "tight");
    std::ifstream in(apps / "tight/app.yaml");
    std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    yaml = yaml.substr(0, yaml.find("limits:")) +
           "limits:\n  trigger_depth: 10\n  app_concurrency: 4\n";
    std::ofstream(apps / "tight/app.yaml") << yaml;
    startNode(apps, {"--cache", WL_TEST_CACHE, "--memory-budget", "256MiB"});
  }
};

TEST_F(LimitsTest, ExponentialFanOutFailsByItsLimitWhileHelloKeepsAnswering) {
  Bystander hello(*node_);
  uint64_t peak_rss = 0;
  std::atomic<bool> done{false};
  std::thread rss([&] {
    while (!done) {
      peak_rss = std::max(peak_rss, rssBytes(node_->pid()));
      std::this_thread::sleep_for(10ms);
    }
  });
  auto t0 = Clock::now();
  auto r = node_->request("POST", "/tenants/bomb", "", {});
  auto took = Clock::now() - t0;
  std::this_thread::sleep_for(500ms);  // and after it
  done = true;
  rss.join();
  hello.finish();
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_THAT(r.body, HasSubstr("limits.request_"));
  EXPECT_THAT(r.body, HasSubstr("function bomb"));
  EXPECT_LT(took, 10s);
  EXPECT_LT(peak_rss, uint64_t{1} << 30) << "the node's RSS grew past 1 GiB";
  EXPECT_EQ(hello.failed(), 0);
  EXPECT_GT(hello.ok(), 10);
  EXPECT_EQ(node_->request("GET", "/hello", "", {}).body, "hello world");
}

TEST_F(LimitsTest, ChainPastItsDeadlineAnswers504OnTimeAndStopsBurningCpu) {
  auto t0 = Clock::now();
  auto r = node_->request("POST", "/tenants/chain", "", {});
  auto took = Clock::now() - t0;
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_THAT(r.body, HasSubstr("passed its deadline (1000 ms)"));
  EXPECT_THAT(r.body, HasSubstr("function loop"));
  EXPECT_GE(took, 1000ms);
  EXPECT_LT(took, 1000ms + 300ms) << "answered long after the deadline";
  // Nothing of that request runs any more: the node is idle.
  std::this_thread::sleep_for(200ms);
  double before = cpuSeconds(node_->pid());
  std::this_thread::sleep_for(5s);
  double used = cpuSeconds(node_->pid()) - before;
  EXPECT_LT(used, 0.25) << "the node burnt " << used << " s of CPU in 5 s after the request ended";
}

TEST_F(LimitsTest, TriggerDepthLimitNamesTheLimitAndTheFunction) {
  auto r = node_->request("POST", "/tight/chain", "", {});
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_THAT(r.body, HasSubstr("exceeded limits.trigger_depth (10): function loop would run at "
                                "depth 11"));
}

TEST_F(LimitsTest, AppOverItsQuotaGets429WithRetryAfter) {
  std::vector<std::thread> clients;
  std::mutex mu;
  int ok = 0, limited = 0, other = 0;
  std::string retry_after, unexpected;
  for (int i = 0; i < 12; ++i) {
    clients.emplace_back([&] {
      auto r = node_->request("POST", "/tight/sleep", "1000", {});
      std::lock_guard lock(mu);
      if (r.status == 200) {
        ok++;
      } else if (r.status == 429) {
        limited++;
        retry_after = r.header("Retry-After");
      } else {
        other++;
        unexpected = std::to_string(r.status) + " " + r.body;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(other, 0) << unexpected;
  EXPECT_GE(ok, 4);
  EXPECT_GE(limited, 1);
  EXPECT_EQ(retry_after, "1");
  // Another app is not affected.
  EXPECT_EQ(node_->request("POST", "/tenants/sleep", "1", {}).status, 200);
}

TEST_F(LimitsTest, PoisonedInstanceIsNeverReused) {
  auto first = node_->request("POST", "/tenants/hog", "", {});
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_GT(std::stol(first.body), 50);
  // A reused instance would have a full heap: malloc would fail at once.
  for (int i = 0; i < 3; ++i) {
    auto again = node_->request("POST", "/tenants/hog", "", {});
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(again.body, first.body);
  }
  auto m = node_->call("GET", "/metrics");
  EXPECT_GE(metric(m.body, "wl_instances_discarded_total"), 4);
}

// Four hogs at once would take 4 x 128 MiB; the node's budget is 256 MiB.
TEST_F(LimitsTest, ConcurrentHogsStayWithinTheNodesMemoryBudget) {
  std::atomic<bool> done{false};
  uint64_t peak_rss = 0;
  std::thread rss([&] {
    while (!done) {
      peak_rss = std::max(peak_rss, rssBytes(node_->pid()));
      std::this_thread::sleep_for(5ms);
    }
  });
  std::vector<std::thread> hogs;
  std::mutex mu;
  long blocks = 0;
  int failed = 0;
  for (int i = 0; i < 4; ++i) {
    hogs.emplace_back([&] {
      auto r = node_->request("POST", "/tenants/hog", "300", {});
      std::lock_guard lock(mu);
      if (r.status == 200) {
        blocks += std::stol(r.body);
      } else {
        failed++;
      }
    });
  }
  for (auto& h : hogs) h.join();
  done = true;
  rss.join();
  fprintf(stderr, "4 hogs under a 256 MiB budget: %ld MiB allocated, peak RSS %lu MiB\n", blocks,
          static_cast<unsigned long>(peak_rss >> 20));
  EXPECT_EQ(failed, 0);
  EXPECT_LE(blocks, 256);
  // The budget plus the documented overhead (binary, RocksDB, stacks).
  EXPECT_LT(peak_rss, (uint64_t{256} + 160) << 20) << "peak RSS " << (peak_rss >> 20) << " MiB";
  EXPECT_EQ(node_->request("GET", "/hello", "", {}).body, "hello world");
}

TEST_F(LimitsTest, FreshInstanceStartsPristineEveryCall) {
  for (int i = 0; i < 3; ++i) {
    auto r = node_->request("POST", "/tenants/fresh_count", "", {});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "1");
  }
  auto a = node_->request("POST", "/tenants/count", "", {});
  auto b = node_->request("POST", "/tenants/count", "", {});
  EXPECT_EQ(std::stol(b.body), std::stol(a.body) + 1) << "a warm instance keeps its globals";
}

TEST_F(LimitsTest, ClientThatGoesAwayCancelsItsInvocation) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(node_->httpPort());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string req = "POST /tenants/sleep HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n30000";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(300ms);
  const std::string failed = "wl_invocations_total{app=\"tenants\",fn=\"sleep\",result=\"error\"}";
  double before = metric(node_->call("GET", "/metrics").body, failed);
  close(fd);
  // The sleeping invocation ends at once, not after its 30 s.
  auto until = Clock::now() + 3s;
  double after = before;
  while (Clock::now() < until && after == before) {
    std::this_thread::sleep_for(50ms);
    after = metric(node_->call("GET", "/metrics").body, failed);
  }
  EXPECT_EQ(after, before + 1);
}

// Many CPU-bound calls of one app; hello, another app, keeps being served.
TEST_F(LimitsTest, CpuFloodOfOneAppDoesNotStarveAnother) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> flood;
  for (int i = 0; i < 16; ++i) {
    flood.emplace_back([&] {
      while (!stop) node_->request("POST", "/tenants/spin", "20", {});
    });
  }
  std::this_thread::sleep_for(500ms);  // the flood's entries are known as heavy by now
  Bystander hello(*node_);
  std::this_thread::sleep_for(3s);
  hello.finish();
  stop = true;
  for (auto& t : flood) t.join();
  EXPECT_EQ(hello.failed(), 0);
  EXPECT_GT(hello.ok(), 100);
  // Far below the seconds a FIFO would cost; the 10 ms target is measured
  // in bench/ (this machine is shared while tests run).
  EXPECT_LT(hello.p99us(), 100000);
  fprintf(stderr, "hello under a CPU flood: %d calls in 3 s, p99 %ld us\n", hello.ok(),
          static_cast<long>(hello.p99us()));
}

}  // namespace
}  // namespace waverless::testing
