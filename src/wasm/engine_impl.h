// The engine's private state: instances, apps' pools, Engine::Impl. Shared
// by engine.cpp (pool, invocation) and engine_snapshot.cpp (wl_init and
// snapshot restores). Private to src/wasm.
#pragma once

#include <atomic>
#include <deque>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "wasm/compiler.h"
#include "wasm/engine.h"
#include "wasm/instance.h"
#include "wasm/rt/exec_context.h"
#include "wasm/snapshot.h"

namespace waverless::wasm {

inline constexpr size_t kPageBytes = 65536;

// One live instance of an app: serves one invocation at a time.
struct Instance {
  App::State* app = nullptr;
  void* storage = nullptr;  // the module's instance struct
  InstanceEnv env;
  Clock::time_point last_used;
  std::list<Instance*>::iterator lru_pos;  // valid while idle
  size_t bytes = 0;                        // its size when last released (for eviction)
  bool from_image = false;                 // maps its app's snapshot image
  bool pristine = true;                    // no call has run in it since created or reset
};

struct App::State {
  std::string name;
  Engine::Impl* engine = nullptr;
  void* dl = nullptr;
  const WlModuleDescriptor* desc = nullptr;
  std::unordered_map<std::string, const WlExport*> exports;
  const WlExport* alloc = nullptr;       // wl_alloc, if exported
  const WlExport* initialize = nullptr;  // _initialize (reactor), if exported
  const WlExport* wl_init = nullptr;     // wl_init, if exported: run once, snapshotted
  // New instances restore this instead of instantiating. With wl_init: taken
  // at load, after _initialize and wl_init. Without: taken at the first
  // `instance: fresh` call, right after instantiation (data segments,
  // globals, tables), and _initialize still runs in every instance, so
  // behaviour is as without it. Charged to the budget once (image +
  // template struct). Written once (load, or under image_once), then read
  // through `image` by any thread.
  std::unique_ptr<Snapshot> snapshot;
  std::atomic<const Snapshot*> image{nullptr};
  std::once_flag image_once;
  AppLimits limits;
  size_t typical_bytes = 0;  // size of the last released instance
  // Pool, guarded by Engine::Impl::pool_mu.
  std::vector<Instance*> idle;  // back = most recently used
  size_t total = 0;
  std::deque<Resumer> waiters;
};

struct Engine::Impl {
  explicit Impl(EngineOptions o)
      : options(std::move(o)),
        compiler(CompilerOptions{options.cache_dir, options.opt_level}),
        executor(options.executor) {
    budget.limit = options.memory_budget_bytes;
    budget.reclaim = [this](size_t need) { evictForBudget(need); };
  }

  EngineOptions options;
  ModuleCompiler compiler;
  Executor executor;
  std::mutex load_mu;  // serialises dlopen + module init

  // Every instance's linear memory and instance struct, running or idle.
  rt::MemoryBudget budget;

  std::mutex pool_mu;
  std::list<Instance*> lru;  // idle instances of all apps; front = newest
  uint64_t live = 0;
  uint64_t evictions = 0;
  uint64_t discarded = 0;

  std::jthread reaper;
  bool started = false;

  absl::StatusOr<Instance*> acquire(Fiber& f, const std::shared_ptr<App>& app, InvocationState& inv,
                                    bool fresh, bool* cold);
  absl::StatusOr<Instance*> create(Fiber& f, App::State& app, InvocationState& inv,
                                   bool run_initialize = true);
  bool restoreFromImage(rt::ExecContext& x, Instance* in, const Snapshot& image);
  bool runInitialize(rt::ExecContext& x, Instance* in);
  void ensureImage(Fiber& f, App::State& app);
  absl::Status takeSnapshot(App::State& app, const std::filesystem::path& files_dir,
                            LoadInfo& info);
  absl::Status prepareSnapshot(Fiber& f, App::State& app, const std::filesystem::path& files_dir,
                               LoadInfo& info);
  absl::Status initTemplate(Fiber& f, App::State& app, const std::filesystem::path& files_dir,
                            std::vector<std::string>* opened);
  std::filesystem::path snapshotPath(const App::State& app) const;
  absl::Status loadSnapshot(App::State& app, const Instance& fresh,
                            const std::filesystem::path& files_dir);
  absl::Status saveSnapshot(App::State& app, const Instance& fresh,
                            const std::filesystem::path& files_dir,
                            const std::vector<std::string>& opened);
  bool resetToSnapshot(Fiber& f, Instance* in);
  size_t chargedBytes(const Instance* in) const;
  void release(Instance* in, bool healthy);
  void destroy(Instance* in);
  void evictForBudget(size_t need);
  std::vector<Instance*> takeIdleLocked(App::State* only, Clock::time_point older,
                                        size_t need_bytes);
  void run(Fiber& f, const std::shared_ptr<App>& app, InvocationRequest& req,
           InvocationResult& res);
  void reapLoop(std::stop_token st);
};

}  // namespace waverless::wasm
