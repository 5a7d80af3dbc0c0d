// Instance snapshots (issue 11, part 3), side by side in one run: a 64 MiB
// table built by wl_init and snapshotted, against the same app building it
// in each new instance. Prints a Markdown table for bench/RESULTS.md.
//
//   bench/snapshot/run.sh [--quick]
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
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wasm/engine.h"

using namespace waverless::wasm;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<uint8_t> readWasm(const std::string& name) {
  std::ifstream f(std::string(WL_SNAPSHOT_GUEST_DIR) + "/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double us(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// Rss, Pss and Private_Dirty of this process, in KiB (smaps_rollup): Pss
// divides a page mapped N times among its mappings, so shared image pages
// count once in total however many instances map them.
std::map<std::string, long> memoryKb() {
  std::map<std::string, long> out;
  std::ifstream f("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos || line.find("kB") == std::string::npos) continue;
    out[line.substr(0, colon)] = std::stol(line.substr(colon + 1));
  }
  return out;
}

// Parks every invocation's kv_get until released: holds N instances at once.
class ParkingHost : public HostServices {
 public:
  absl::StatusOr<std::optional<std::string>> kvGet(Fiber& f, std::string_view) override {
    auto st = f.wait([this](Resumer r) {
      std::lock_guard l(mu_);
      parked_.push_back(std::move(r));
    });
    if (!st.ok()) return st;
    return std::optional<std::string>("v");
  }
  absl::Status kvSet(Fiber&, std::string_view, std::string_view) override {
    return absl::OkStatus();
  }
  absl::Status kvDelete(Fiber&, std::string_view) override { return absl::OkStatus(); }
  absl::Status waitTriggered(Fiber&) override { return absl::OkStatus(); }
  size_t parked() {
    std::lock_guard l(mu_);
    return parked_.size();
  }
  void releaseAll() {
    std::vector<Resumer> p;
    {
      std::lock_guard l(mu_);
      p.swap(parked_);
    }
    for (auto& r : p) r.resume(absl::OkStatus());
  }

 private:
  std::mutex mu_;
  std::vector<Resumer> parked_;
};

void row(const std::string& what, double value, const char* unit, const char* target) {
  printf("| %s | %.2f %s | %s |\n", what.c_str(), value, unit, target);
  fflush(stdout);
}

InvocationRequest request(const char* fn, bool fresh, std::vector<std::string> args = {}) {
  InvocationRequest r;
  r.function = fn;
  r.fresh_instance = fresh;
  r.args = std::move(args);
  return r;
}

// Cold call (a new instance) and warm call of lookup, medians in µs.
std::pair<double, double> coldAndWarm(Engine& engine, const std::shared_ptr<App>& app, int m) {
  std::vector<double> cold, warm;
  for (int i = 0; i < m; ++i) {
    app->evictIdle();
    auto c = engine.invokeSync(app, request("lookup", false, {std::to_string(i * 7919)}));
    auto w = engine.invokeSync(app, request("lookup", false, {std::to_string(i * 104729)}));
    if (!c.status.ok() || !w.status.ok() || !c.cold_start || w.cold_start) {
      fprintf(stderr, "lookup failed: %s %s\n", c.status.ToString().c_str(),
              w.status.ToString().c_str());
      exit(1);
    }
    cold.push_back(us(c.duration));
    warm.push_back(us(w.duration));
  }
  return {median(cold), median(warm)};
}

// Engine-side time per hello call (acquire, call, release or reset; the
// cross-thread hand-off of invokeSync is left out, it swamps the rest on a
// busy machine), median over m calls, for reuse and fresh alternately so
// that drift hits both alike. Returns {reuse, fresh} in µs.
std::pair<double, double> helloCalls(Engine& engine, const std::shared_ptr<App>& app, int m,
                                     int reps) {
  std::vector<double> reuse, fresh;
  for (int r = 0; r < reps; ++r) {
    for (bool f : {false, true}) {
      auto& out = f ? fresh : reuse;
      for (int i = 0; i < m; ++i) {
        auto res = engine.invokeSync(app, request("hello", f));
        if (!res.status.ok() || res.output != "hello world") {
          fprintf(stderr, "hello failed: %s\n", res.status.ToString().c_str());
          exit(1);
        }
        out.push_back(us(res.duration));
      }
    }
  }
  return {median(reuse), median(fresh)};
}

// Calls per second of hello with 64 invocations in flight (as a busy node
// has them), reuse and fresh alternately, median of reps. {reuse, fresh}.
std::pair<double, double> helloThroughput(Engine& engine, const std::shared_ptr<App>& app, int n,
                                          int reps) {
  std::vector<double> reuse, fresh;
  for (int r = 0; r < reps; ++r) {
    for (bool f : {false, true}) {
      std::atomic<int> submitted{0}, done{0}, failed{0};
      std::promise<void> all;
      std::function<void()> submit = [&] {
        if (submitted.fetch_add(1) >= n) return;
        engine.invoke(app, request("hello", f), [&](InvocationResult res) {
          if (!res.status.ok()) failed++;
          // Submit before counting: once the last call is counted the loop moves on and
          // `submit` goes out of scope, so no callback may still be about to call it.
          submit();
          if (++done == n) all.set_value();
        });
      };
      auto t0 = Clock::now();
      for (int i = 0; i < 64; ++i) submit();
      all.get_future().wait();
      if (failed.load() > 0) {
        fprintf(stderr, "hello failed %d times\n", failed.load());
        exit(1);
      }
      (f ? fresh : reuse).push_back(n / (us(Clock::now() - t0) / 1e6));
    }
  }
  return {median(reuse), median(fresh)};
}

// Memory added per idle instance: n instances served `park` at once, then
// went idle. Returns {rss, pss, private dirty} per instance, in KiB.
std::vector<double> perIdleInstance(Engine& engine, const std::shared_ptr<App>& app, int n) {
  app->evictIdle();
  auto before = memoryKb();
  ParkingHost host;
  std::atomic<int> done{0};
  for (int i = 0; i < n; ++i) {
    auto req = request("park", false);
    req.host = &host;
    engine.invoke(app, std::move(req), [&done](InvocationResult r) {
      if (!r.status.ok()) fprintf(stderr, "park failed: %s\n", r.status.ToString().c_str());
      done++;
    });
  }
  while (host.parked() < static_cast<size_t>(n)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  host.releaseAll();
  while (done.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto after = memoryKb();
  if (engine.stats().instances_idle < static_cast<uint64_t>(n)) {
    fprintf(stderr, "expected %d idle instances, have %llu\n", n,
            static_cast<unsigned long long>(engine.stats().instances_idle));
  }
  std::vector<double> out;
  for (const char* k : {"Rss", "Pss", "Private_Dirty"}) {
    out.push_back(static_cast<double>(after[k] - before[k]) / n);
  }
  app->evictIdle();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int reps = quick ? 3 : 7;
  auto cache =
      std::filesystem::temp_directory_path() / ("wl-snap-bench-" + std::to_string(getpid()));
  EngineOptions o;
  o.cache_dir = cache;
  o.executor.threads = 2;
  Engine engine(o);
  if (!engine.start().ok()) return 1;
  auto snap_bytes = readWasm("table_snap.wasm");
  auto lazy_bytes = readWasm("table_lazy.wasm");
  // Compile both first, so the load time below is wl_init + capture only.
  for (auto* b : {&snap_bytes, &lazy_bytes}) {
    auto warmup = engine.load("compile", *b, AppLimits{});
    if (!warmup.ok()) {
      fprintf(stderr, "%s\n", warmup.status().ToString().c_str());
      return 1;
    }
  }
  auto t0 = Clock::now();
  auto snap = engine.load("table_snap", snap_bytes, AppLimits{});
  double load_ms = us(Clock::now() - t0) / 1000;
  auto lazy = engine.load("table_lazy", lazy_bytes, AppLimits{});
  if (!snap.ok() || !lazy.ok()) {
    fprintf(stderr, "load failed\n");
    return 1;
  }
  // Same answers from both.
  for (const char* idx : {"0", "12345", "16777215"}) {
    auto a = engine.invokeSync(*snap, request("lookup", false, {idx}));
    auto b = engine.invokeSync(*lazy, request("lookup", false, {idx}));
    if (a.output != b.output || !a.status.ok()) {
      fprintf(stderr, "lookup %s differs: %s vs %s\n", idx, a.output.c_str(), b.output.c_str());
      return 1;
    }
  }
  printf("| case | result | target |\n|---|---|---|\n");
  row("load with wl_init: build the 64 MiB table + capture the image (once per deploy)", load_ms,
      "ms", "(info)");

  auto [snap_cold, snap_warm] = coldAndWarm(engine, *snap, quick ? 30 : 300);
  auto [lazy_cold, lazy_warm] = coldAndWarm(engine, *lazy, quick ? 3 : 10);
  row("cold start, 64 MiB table, with the snapshot (new instance + lookup)", snap_cold / 1000, "ms",
      "≤ 1 ms");
  row("cold start, 64 MiB table, without (new instance builds it + lookup)", lazy_cold / 1000, "ms",
      "(baseline)");
  row("  cold minus warm, with the snapshot", (snap_cold - snap_warm) / 1000, "ms", "(info)");
  row("  cold minus warm, without", (lazy_cold - lazy_warm) / 1000, "ms", "(info)");

  int m = quick ? 2000 : 20000;
  auto [reuse, fresh] = helloCalls(engine, *snap, m, reps);
  auto [plain_reuse, plain_fresh] = helloCalls(engine, *lazy, m, reps);
  row("warm hello, reuse: engine time per call", reuse, "µs", "(info)");
  row("warm hello, fresh, reset to the 64 MiB snapshot: engine time per call", fresh, "µs",
      "(info)");
  row("warm hello, fresh, app without wl_init (reset to its instantiated image)", plain_fresh, "µs",
      "(info)");
  (void)plain_reuse;
  int n = quick ? 50000 : 400000;
  auto [reuse_tp, fresh_tp] = helloThroughput(engine, *snap, n, reps);
  auto [plain_reuse_tp, plain_fresh_tp] = helloThroughput(engine, *lazy, n, reps);
  row("warm hello, 64 in flight, reuse", reuse_tp / 1000, "k calls/s", "(info)");
  row("warm hello, 64 in flight, fresh (64 MiB snapshot)", fresh_tp / 1000, "k calls/s", "(info)");
  row("  fresh as a fraction of reuse (64 MiB snapshot)", fresh_tp / reuse_tp, "×", "≥ 0.8×");
  row("  fresh as a fraction of reuse (app without wl_init)", plain_fresh_tp / plain_reuse_tp, "×",
      "≥ 0.8×");

  int n_snap = quick ? 8 : 32, n_lazy = quick ? 2 : 4;
  auto s = perIdleInstance(engine, *snap, n_snap);
  auto l = perIdleInstance(engine, *lazy, n_lazy);
  char what[160];
  snprintf(what, sizeof what,
           "idle instance with the 64 MiB snapshot (%d instances): RSS / PSS / private dirty",
           n_snap);
  printf("| %s | %.0f / %.0f / %.0f KiB | shared pages counted once |\n", what, s[0], s[1], s[2]);
  snprintf(what, sizeof what,
           "idle instance without (%d instances, each built the table): RSS / PSS / private dirty",
           n_lazy);
  printf("| %s | %.0f / %.0f / %.0f KiB | (baseline) |\n", what, l[0], l[1], l[2]);
  // A node restart loads its installed apps again: the module from the
  // cache either way; the snapshot from its file, or by running wl_init
  // again when there is none (it is then written). The file was just
  // written, so it is in the page cache, as after a process restart (not a
  // reboot).
  {
    std::vector<double> rerun, cached;
    double cold_after = 0;
    std::filesystem::path file;
    for (int i = 0; i < 2 * reps; ++i) {
      bool from_file = i % 2 == 1;  // a load without the file writes it for the next
      if (!from_file && !file.empty()) std::filesystem::remove(file);
      LoadInfo info;
      auto start = Clock::now();
      auto app = engine.load("table_restart", snap_bytes, AppLimits{}, &info);
      double ms = us(Clock::now() - start) / 1000;
      bool want = info.snapshot == (from_file ? SnapshotSource::kCache : SnapshotSource::kBuilt);
      if (!app.ok() || !want) {
        fprintf(stderr, "restart load: %s %s\n", app.status().ToString().c_str(),
                info.snapshot_note.c_str());
        return 1;
      }
      file = info.snapshot_path;
      (from_file ? cached : rerun).push_back(ms);
      if (from_file) {
        auto c = Clock::now();
        auto r = engine.invokeSync(*app, request("lookup", false, {"12345"}));
        cold_after = us(Clock::now() - c) / 1000;
        if (!r.status.ok()) return 1;
      }
    }
    row("node restart, 64 MiB app: load running wl_init again (+ writing its snapshot file)",
        median(rerun), "ms", "(baseline)");
    row("node restart, 64 MiB app: **load from the snapshot file** (checks + checksum + map)",
        median(cached), "ms", "(info)");
    row("first call after that load (new instance + lookup)", cold_after, "ms", "≤ 1 ms");
  }

  printf("\nengine budget charged with both apps loaded and idle: %.1f MiB\n",
         engine.stats().instance_bytes / 1048576.0);
  engine.stop();
  std::error_code ec;
  std::filesystem::remove_all(cache, ec);
  return 0;
}
