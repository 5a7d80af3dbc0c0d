// The WebAssembly engine: the only part of Waverless that knows how wasm runs.
//
// load() validates a wasm32-wasi module, AOT-compiles it (WABT wasm2c + the
// system C compiler, cached on disk) and returns an App with its own instance
// pool. invoke() runs one export on a fiber of the executor with the
// invocation's arguments and host services, and reports output or a clear
// error. Traps, timeouts and bad pointers fail only that invocation.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "wasm/executor.h"

namespace waverless::wasm {

class App;
class Engine;

// What a guest's host calls reach: implemented by the platform, one object
// per invocation. Runs on the invocation's fiber; an implementation that
// must wait calls fiber.wait() instead of blocking the thread.
class HostServices {
 public:
  virtual ~HostServices() = default;
  // nullopt: the key does not exist (distinct from an empty value).
  virtual absl::StatusOr<std::optional<std::string>> kvGet(Fiber& fiber, std::string_view key) = 0;
  virtual absl::Status kvSet(Fiber& fiber, std::string_view key, std::string_view value) = 0;
  virtual absl::Status kvDelete(Fiber& fiber, std::string_view key) = 0;
  // Waits for every function this invocation triggered so far.
  virtual absl::Status waitTriggered(Fiber& fiber) = 0;
  // Stores all pairs atomically (then triggers, as kvSet does).
  virtual absl::Status kvSetBatch(Fiber&, const std::vector<std::pair<std::string, std::string>>&) {
    return absl::UnimplementedError("batch set is not available here");
  }
  // The next bytes of the request body of a function declared `body:
  // stream`, copied into dst: the count, 0 at the end of the body, or an
  // error (the client went away). Waits (parks) while none have arrived.
  virtual absl::StatusOr<size_t> bodyRead(Fiber&, char* /*dst*/, size_t /*cap*/) {
    return absl::UnimplementedError("no streamed request body here");
  }
  // The app's keys starting with prefix that this function may read.
  virtual absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kvScan(
      Fiber&, std::string_view /*prefix*/, size_t /*limit*/) {
    return absl::UnimplementedError("scan is not available here");
  }
  // Atomic compare-and-set (kv::KvStore::cas): true stored, false the
  // current value did not match (expected nullopt: the key had to be
  // absent). Triggers like kvSet when it stores.
  virtual absl::StatusOr<bool> kvCas(Fiber&, std::string_view /*key*/,
                                     std::optional<std::string_view> /*expected*/,
                                     std::string_view /*value*/) {
    return absl::UnimplementedError("cas is not available here");
  }
  // Atomic add to a decimal int64 (kv::KvStore::incr): the new value.
  // Triggers like kvSet.
  virtual absl::StatusOr<int64_t> kvIncr(Fiber&, std::string_view /*key*/, int64_t /*delta*/) {
    return absl::UnimplementedError("incr is not available here");
  }
  // This invocation's id (wl_invocation_id); empty: none here.
  virtual std::string invocationId() { return {}; }
};

// Per-app limits, settable from app.yaml.
struct AppLimits {
  uint32_t max_memory_pages = 16384;  // 1 GiB of linear memory per instance
  size_t max_instances = 1000;        // concurrent instances of this app
};

struct InvocationRequest {
  std::string function;           // export name
  std::vector<std::string> args;  // passed through wl_alloc'd argv
  HostServices* host = nullptr;   // may be null: KV calls then fail cleanly
  std::chrono::milliseconds timeout{30000};
  std::filesystem::path files_dir;  // the app's data folder; empty: none
  // Run on the calling thread when it is an executor thread (an HTTP request
  // served there): no hand-off. Triggered work leaves it false to spread.
  bool run_on_caller_thread = false;
  // Queue it for the background threads, served round-robin across apps
  // (see SpawnOptions::background); run_on_caller_thread is then ignored.
  bool background = false;
  // The request's scope: once cancelled, this invocation does not start, or
  // stops (status: the scope's reason).
  std::shared_ptr<common::CancelScope> cancel;
  // A pristine instance for this call (instance: fresh): one no call has run
  // in, reset to the app's image after the call (see snapshot.h).
  bool fresh_instance = false;
};

struct InvocationResult {
  absl::Status status;  // ok, or what went wrong (trap text, timeout, ...)
  std::string output;   // wl_output_write bytes
  std::string log;      // stdout/stderr and wl_log lines
  int exit_code = 0;    // WASI proc_exit code, if the guest called it
  bool cold_start = false;
  std::chrono::nanoseconds duration{0};  // wall time, parked time included
  std::chrono::nanoseconds run_time{0};  // on a CPU only
};

struct EngineOptions {
  std::filesystem::path cache_dir;  // compiled objects, keyed by content hash
  int opt_level = 2;
  ExecutorOptions executor;
  size_t memory_budget_bytes = size_t{4} << 30;  // all instances, node-wide
  std::chrono::seconds idle_ttl{60};             // idle instances freed after
  size_t max_value_bytes = size_t{16} << 20;     // KV values
  size_t max_output_bytes = size_t{64} << 20;
  size_t max_log_bytes = size_t{1} << 20;  // further log bytes are dropped
  // An instance whose linear memory grew past this is freed after its call
  // instead of going back to the pool: one large call must not pin the
  // memory for every later one.
  size_t max_pooled_instance_bytes = size_t{256} << 20;
  // How long a module's wl_init may run at load before the load fails.
  std::chrono::milliseconds init_timeout{30000};
};

// Where a module's wl_init snapshot came from at load.
enum class SnapshotSource {
  kNone,   // no wl_init
  kBuilt,  // wl_init ran here
  kCache,  // read from its snapshot file (written here, or shipped)
};

struct LoadInfo {
  std::filesystem::path object_path;  // the compiled object in the cache
  bool from_cache = false;
  double compile_ms = 0;
  size_t wasm_bytes = 0;
  SnapshotSource snapshot = SnapshotSource::kNone;
  // The snapshot file in the cache (set with wl_init, once it exists).
  std::filesystem::path snapshot_path;
  // Why a snapshot file was not used or not written, if one was not.
  std::string snapshot_note;
  double snapshot_ms = 0;  // wl_init and capture, or reading the file
};

// Deploy-once shipping of a snapshot file (LoadInfo::snapshot_path): its
// wire form (the zero pages left out), checked as a load checks it; and
// back into a file, checked and written atomically. A load then still
// checks it against its module and files.
absl::StatusOr<std::string> packSnapshot(const std::filesystem::path& file);
absl::Status unpackSnapshot(std::string_view packed, const std::filesystem::path& file);

struct EngineStats {
  uint64_t instances_live = 0;
  uint64_t instances_idle = 0;
  uint64_t instance_bytes = 0;  // committed linear memory + instance structs
  uint64_t evictions = 0;
  uint64_t discarded = 0;  // instances freed after a call instead of pooled
  uint64_t reservations_mapped = 0;
  ExecutorStats executor;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  absl::Status start();
  void stop();  // idempotent

  // Compiles (or finds in the cache) and loads a module. Blocking and
  // thread-safe: call it from a deploy thread, never from an invocation.
  // A module that exports wl_init has it run here, once (it may read
  // files_dir, not the KV store), and its state snapshotted (see
  // snapshot.h): a trap or a refused call in wl_init fails the load with
  // its message. The snapshot is also written to the cache (snapshot_file.h)
  // and read back from there instead of running wl_init again, as long as
  // the module and the files wl_init opened are the same; a file that fails
  // a check is rebuilt. The engine must be started.
  absl::StatusOr<std::shared_ptr<App>> load(std::string name, std::span<const uint8_t> wasm,
                                            AppLimits limits, LoadInfo* info = nullptr,
                                            const std::filesystem::path& files_dir = {});

  // Runs request on an executor fiber; done is called exactly once, from an
  // executor thread.
  void invoke(std::shared_ptr<App> app, InvocationRequest request,
              absl::AnyInvocable<void(InvocationResult)> done);
  // Convenience for callers outside the executor (tests, CLI).
  InvocationResult invokeSync(std::shared_ptr<App> app, InvocationRequest request);

  EngineStats stats();

  // The executor threads' I/O contexts (see Executor::ioContexts).
  std::vector<boost::asio::io_context*> ioContexts();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A loaded module with its instance pool. Shared by in-flight invocations;
// freed when the last one finishes after the app was replaced or removed.
class App {
 public:
  ~App();
  const std::string& name() const;
  bool hasExport(std::string_view name) const;
  std::vector<std::string> exportNames() const;
  // Frees all idle instances now (e.g. to measure a cold start).
  void evictIdle();

  struct State;
  explicit App(std::unique_ptr<State> state);
  State& state() { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

}  // namespace waverless::wasm
