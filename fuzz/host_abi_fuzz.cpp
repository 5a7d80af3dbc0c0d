// Fuzzes the host ABI (src/wasm/host_abi.cpp, wasi.cpp) from the guest's
// side. guest/host_abi_guest.c interprets the input as a program of host
// calls with pointers, lengths and values taken from it; the real engine
// loads that module once and runs the program on every input. A call may
// fail (bad pointer, trap, proc_exit, timeout) but the process must not,
// and the engine must answer a good call on the same app afterwards.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "wasm/engine.h"

namespace fs = std::filesystem;
namespace wasm = waverless::wasm;

namespace {

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "host_abi_fuzz: %s\n", what.c_str());
    std::abort();
  }
}

// An in-memory store (cleared per input, so runs are reproducible) and a
// small streamed body.
class MapHost final : public wasm::HostServices {
 public:
  absl::StatusOr<std::optional<std::string>> kvGet(wasm::Fiber&, std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = kv_.find(std::string(key));
    if (it == kv_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::Status kvSet(wasm::Fiber&, std::string_view key, std::string_view value) override {
    std::lock_guard lock(mu_);
    if (key.starts_with("deny")) return absl::PermissionDeniedError("not in kvs");
    if (kv_.size() >= 1000) return absl::ResourceExhaustedError("store full");
    kv_[std::string(key)] = std::string(value);
    return absl::OkStatus();
  }
  absl::Status kvDelete(wasm::Fiber&, std::string_view key) override {
    std::lock_guard lock(mu_);
    kv_.erase(std::string(key));
    return absl::OkStatus();
  }
  absl::Status waitTriggered(wasm::Fiber&) override { return absl::OkStatus(); }
  absl::Status kvSetBatch(wasm::Fiber&,
                          const std::vector<std::pair<std::string, std::string>>& pairs) override {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : pairs) kv_[k] = v;
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> bodyRead(wasm::Fiber&, char* dst, size_t cap) override {
    size_t n = std::min(cap, body_.size() - body_pos_);
    std::copy_n(body_.data() + body_pos_, n, dst);
    body_pos_ += n;
    return n;
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kvScan(wasm::Fiber&,
                                                                          std::string_view prefix,
                                                                          size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = kv_.lower_bound(std::string(prefix));
         it != kv_.end() && it->first.starts_with(prefix) && out.size() < limit; ++it) {
      out.push_back(*it);
    }
    return out;
  }
  absl::StatusOr<bool> kvCas(wasm::Fiber&, std::string_view key,
                             std::optional<std::string_view> expected,
                             std::string_view value) override {
    std::lock_guard lock(mu_);
    if (key.starts_with("deny")) return absl::PermissionDeniedError("not in kvs");
    auto it = kv_.find(std::string(key));
    bool matches = expected ? (it != kv_.end() && it->second == *expected) : it == kv_.end();
    if (matches && kv_.size() >= 1000) return absl::ResourceExhaustedError("store full");
    if (matches) kv_[std::string(key)] = std::string(value);
    return matches;
  }
  absl::StatusOr<int64_t> kvIncr(wasm::Fiber&, std::string_view key, int64_t delta) override {
    std::lock_guard lock(mu_);
    if (kv_.size() >= 1000) return absl::ResourceExhaustedError("store full");
    int64_t base = 0, sum = 0;
    auto it = kv_.find(std::string(key));
    if (it != kv_.end() && !absl::SimpleAtoi(it->second, &base)) {
      return absl::InvalidArgumentError("not an integer");
    }
    if (__builtin_add_overflow(base, delta, &sum)) return absl::OutOfRangeError("overflow");
    kv_[std::string(key)] = absl::StrCat(sum);
    return sum;
  }
  std::string invocationId() override { return "fuzz.0"; }
  void reset() {
    std::lock_guard lock(mu_);
    kv_ = {{"a", "apple"}, {"ab", ""}, {"b", std::string(300, 'b')}};
    body_pos_ = 0;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> kv_;  // guarded by mu_
  const std::string body_ = "a streamed request body, in pieces";
  size_t body_pos_ = 0;  // one invocation at a time reads it
};

fs::path g_dir;  // <tmp>/wl-fuzz-host-abi-<pid>: files/ for wl_file_*
wasm::Engine* g_engine;
std::shared_ptr<wasm::App>* g_app;
MapHost* g_host;

wasm::InvocationResult call(const std::string& fn, std::vector<std::string> args) {
  wasm::InvocationRequest req;
  req.function = fn;
  req.args = std::move(args);
  req.host = g_host;
  req.timeout = std::chrono::milliseconds(2000);
  req.files_dir = g_dir / "files";
  return g_engine->invokeSync(*g_app, std::move(req));
}

void cleanup() {
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

// Runs on the first input, not in LLVMFuzzerInitialize: libFuzzer installs
// its SIGSEGV handler after that, over the engine's, and guest traps (memory
// faults) would then kill the process. Started later, the engine's handler
// is the one in place and chains real crashes on to libFuzzer's.
void setUp() {
  g_dir = fs::temp_directory_path() / ("wl-fuzz-host-abi-" + std::to_string(getpid()));
  fs::remove_all(g_dir);
  fs::create_directories(g_dir / "files" / "sub");
  std::ofstream(g_dir / "files" / "data.txt") << "file contents\n";
  std::ofstream(g_dir / "files" / "sub" / "x") << "x";
  std::ofstream(g_dir / "secret") << "outside the data folder";
  fs::create_symlink("../secret", g_dir / "files" / "link");
  std::atexit(cleanup);

  wasm::EngineOptions options;
  options.cache_dir = WL_FUZZ_CACHE;
  options.executor.threads = 1;
  options.executor.background_threads = 1;
  options.max_value_bytes = 64 << 10;
  options.max_output_bytes = 1 << 20;
  options.max_log_bytes = 64 << 10;
  options.memory_budget_bytes = size_t{256} << 20;
  g_engine = new wasm::Engine(options);
  check(g_engine->start().ok(), "engine start");
  std::ifstream f(WL_FUZZ_GUEST, std::ios::binary);
  std::vector<uint8_t> wasm_bytes{std::istreambuf_iterator<char>(f),
                                  std::istreambuf_iterator<char>()};
  check(!wasm_bytes.empty(), "cannot read " WL_FUZZ_GUEST);
  wasm::AppLimits limits;
  limits.max_memory_pages = 64;  // 4 MiB: memory.grow and huge lengths hit the limit
  limits.max_instances = 4;
  auto app = g_engine->load("fuzz", wasm_bytes, limits);
  check(app.ok(), "load: " + app.status().ToString());
  g_app = new std::shared_ptr<wasm::App>(*app);
  g_host = new MapHost;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool started = (setUp(), true);
  (void)started;
  g_host->reset();
  auto r = call("run", {std::string(reinterpret_cast<const char*>(data), size)});
  check(r.output.size() <= (1 << 20), "output over its limit");
  auto good = call("ping", {});
  check(good.status.ok() && good.output == "pong",
        "the engine no longer runs a good call: " + good.status.ToString() + " " + good.output);
  return 0;
}
