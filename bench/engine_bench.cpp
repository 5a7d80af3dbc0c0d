// Engine micro-benchmarks (issue #2). Plain harness: prints a Markdown table
// that bench/RESULTS.md records. Each number is the median of several runs.
//
//   build/bench/engine_bench [--quick]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <vector>

#include "../bench/kernel/kernel.h"
#include "wasm/engine.h"

using namespace waverless::wasm;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<uint8_t> readGuest(const std::string& name) {
  std::ifstream f(std::string(WL_GUEST_DIR) + "/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

long rssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return 0;
}

// Parks every invocation in kv_get until released, to hold N instances.
class ParkingHost : public HostServices {
 public:
  absl::StatusOr<std::optional<std::string>> kvGet(Fiber& f, std::string_view) override {
    auto st = f.wait([this](Resumer r) {
      std::lock_guard l(mu);
      parked.push_back(r);
    });
    if (!st.ok()) return st;
    return std::optional<std::string>("v");
  }
  absl::Status kvSet(Fiber&, std::string_view, std::string_view) override {
    return absl::OkStatus();
  }
  absl::Status kvDelete(Fiber&, std::string_view) override { return absl::OkStatus(); }
  absl::Status waitTriggered(Fiber&) override { return absl::OkStatus(); }
  std::mutex mu;
  std::vector<Resumer> parked;
};

void row(const char* what, double value, const char* unit, const char* target) {
  printf("| %s | %.2f %s | %s |\n", what, value, unit, target);
  fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int reps = quick ? 3 : 7;
  auto cache = std::filesystem::temp_directory_path() / ("wl-bench-" + std::to_string(getpid()));
  EngineOptions o;
  o.cache_dir = cache;
  o.executor.threads = 2;
  Engine engine(o);
  if (!engine.start().ok()) return 1;
  auto basic = engine.load("basic", readGuest("basic.wasm"), AppLimits{});
  auto kernel = engine.load("kernel", readGuest("kernel.wasm"), AppLimits{});
  if (!basic.ok() || !kernel.ok()) {
    fprintf(stderr, "load failed\n");
    return 1;
  }
  printf("| case | result | target |\n|---|---|---|\n");

  // 1. Warm call of a trivial export through the whole API: throughput with
  //    many invocations in flight (per-call engine cost), and one-at-a-time
  //    latency from an outside thread (adds a cross-thread wake-up).
  {
    InvocationRequest noop;
    noop.function = "noop";
    int n = quick ? 100000 : 400000;
    std::vector<double> per;
    // A window of 64 invocations in flight, as a busy node would have.
    constexpr int kWindow = 64;
    for (int r = 0; r < reps; ++r) {
      std::atomic<int> submitted{0}, done{0};
      std::promise<void> all;
      std::function<void()> submit = [&] {
        if (submitted.fetch_add(1) >= n) return;
        engine.invoke(*basic, noop, [&](InvocationResult) {
          if (++done == n) all.set_value();
          submit();
        });
      };
      auto t0 = Clock::now();
      for (int i = 0; i < kWindow; ++i) submit();
      all.get_future().wait();
      per.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n);
    }
    row("warm call, trivial export, 64 in flight (per call)", median(per), "µs", "≤ 2 µs");
    std::vector<double> lat;
    for (int r = 0; r < reps; ++r) {
      int m = quick ? 5000 : 20000;
      auto t0 = Clock::now();
      for (int i = 0; i < m; ++i) engine.invokeSync(*basic, noop);
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / m);
    }
    row("warm call, trivial export, synchronous round trip", median(lat), "µs", "(info)");
  }

  // 2. New instance from an already-loaded module: cold call minus warm call.
  {
    InvocationRequest noop;
    noop.function = "noop";
    std::vector<double> cold;
    int m = quick ? 300 : 2000;
    for (int r = 0; r < reps; ++r) {
      double sum = 0;
      for (int i = 0; i < m; ++i) {
        (*basic)->evictIdle();
        auto res = engine.invokeSync(*basic, noop);
        sum += std::chrono::duration<double, std::micro>(res.duration).count();
      }
      cold.push_back(sum / m);
    }
    std::vector<double> warm;
    for (int r = 0; r < reps; ++r) {
      double sum = 0;
      for (int i = 0; i < m; ++i) {
        sum += std::chrono::duration<double, std::micro>(engine.invokeSync(*basic, noop).duration)
                   .count();
      }
      warm.push_back(sum / m);
    }
    row("new instance (instantiate + _initialize), cold minus warm", median(cold) - median(warm),
        "µs", "≤ 100 µs");
  }

  // 3. Compute kernel: wasm vs the same C natively (same compiler, -O2).
  {
    uint32_t n = quick ? 200000 : 1000000, rounds = 20;
    InvocationRequest req;
    req.function = "kernel";
    req.args = {std::to_string(n) + " " + std::to_string(rounds)};
    std::vector<double> w, nat;
    std::string wasm_out;
    char native_out[32];
    for (int r = 0; r < reps; ++r) {
      auto res = engine.invokeSync(*kernel, req);
      wasm_out = res.output;
      w.push_back(std::chrono::duration<double, std::milli>(res.duration).count());
      auto t0 = Clock::now();
      uint64_t v = kernel_run(n, rounds);
      nat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      snprintf(native_out, sizeof native_out, "%016llx", static_cast<unsigned long long>(v));
    }
    if (wasm_out != native_out) {
      fprintf(stderr, "kernel mismatch: wasm %s native %s\n", wasm_out.c_str(), native_out);
      return 1;
    }
    row("compute kernel (sort + SHA-256), wasm", median(w), "ms", "");
    row("compute kernel, native", median(nat), "ms", "");
    row("compute kernel, wasm / native", median(w) / median(nat), "×", "≤ 1.3×");
  }

  // 4. Compile time per MB of wasm at -O1 and -O2 (fresh cache each time).
  for (int opt : {1, 2}) {
    std::vector<double> per_mb;
    for (const char* g : {"kernel.wasm", "basic.wasm"}) {
      auto bytes = readGuest(g);
      auto dir = cache / ("opt" + std::to_string(opt) + g);
      EngineOptions co = o;
      co.cache_dir = dir;
      co.opt_level = opt;
      Engine ce(co);
      LoadInfo info;
      auto app = ce.load(g, bytes, AppLimits{}, &info);
      if (app.ok()) per_mb.push_back(info.compile_ms / (bytes.size() / 1048576.0));
    }
    char what[64];
    snprintf(what, sizeof what, "AOT compile time per MB of wasm, -O%d", opt);
    row(what, median(per_mb) / 1000.0, "s/MB", "(info)");
  }

  // 5. Memory per idle pooled instance.
  {
    ParkingHost host;
    int n = quick ? 200 : 1000;
    auto app = engine.load("idle", readGuest("basic.wasm"), AppLimits{});
    long before = rssKb();
    std::atomic<int> done{0};
    for (int i = 0; i < n; ++i) {
      InvocationRequest req;
      req.function = "slow_get";
      req.args = {"k"};
      req.host = &host;
      engine.invoke(*app, req, [&](InvocationResult) { done++; });
    }
    while (true) {
      std::lock_guard l(host.mu);
      if (static_cast<int>(host.parked.size()) == n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    long parked_rss = rssKb();
    for (auto& r : host.parked) r.resume(absl::OkStatus());
    while (done < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    long after = rssKb();
    row("RSS per idle pooled instance", double(after - before) / n, "KiB", "(info)");
    row("RSS per suspended invocation (instance + fiber)", double(parked_rss - before) / n, "KiB",
        "(info)");
  }
  engine.stop();
  std::filesystem::remove_all(cache);
  return 0;
}
