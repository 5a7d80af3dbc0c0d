#include "wasm/engine.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <future>
#include <list>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "common/status_map.h"
#include "wasm/engine_impl.h"
#include "wasm/rt/exec_context.h"
#include "wasm/snapshot.h"

namespace waverless::wasm {

// --- App -----------------------------------------------------------------------

App::App(std::unique_ptr<State> state) : state_(std::move(state)) {}

App::~App() {
  evictIdle();
  // Busy instances hold a shared_ptr to us, so none is left here.
  if (state_->snapshot != nullptr) {
    size_t charged = state_->snapshot->imageBytes() + state_->desc->instance_size;
    state_->snapshot.reset();  // runs the module's code: before dlclose
    state_->engine->budget.refund(charged);
  }
  if (state_->dl != nullptr) dlclose(state_->dl);
}

const std::string& App::name() const { return state_->name; }

bool App::hasExport(std::string_view name) const {
  return state_->exports.contains(std::string(name));
}

std::vector<std::string> App::exportNames() const {
  std::vector<std::string> out;
  for (const auto& [n, e] : state_->exports) out.push_back(n);
  return out;
}

void App::evictIdle() {
  Engine::Impl* e = state_->engine;
  std::vector<Instance*> victims;
  {
    std::lock_guard lock(e->pool_mu);
    victims = e->takeIdleLocked(state_.get(), Clock::time_point::max(), 0);
  }
  for (Instance* in : victims) e->destroy(in);
}

// --- pool ----------------------------------------------------------------------

// Removes idle instances (of one app, or of any when only is null) that were
// last used before `older`, oldest first; with need_bytes > 0, stops once that
// much would be freed. Caller frees them after dropping the lock.
std::vector<Instance*> Engine::Impl::takeIdleLocked(App::State* only, Clock::time_point older,
                                                    size_t need_bytes) {
  std::vector<Instance*> out;
  size_t freed = 0;
  for (auto it = lru.end(); it != lru.begin();) {
    --it;
    Instance* in = *it;
    if (only != nullptr && in->app != only) continue;
    if (in->last_used >= older) continue;
    if (need_bytes > 0 && freed >= need_bytes) break;
    auto& idle = in->app->idle;
    idle.erase(std::find(idle.begin(), idle.end(), in));
    it = lru.erase(it);
    in->app->total--;
    freed += in->bytes;
    live--;
    out.push_back(in);
  }
  return out;
}

// What an instance is charged to the budget: its struct and its memory,
// except the pages of its app's image (charged once, with the snapshot).
size_t Engine::Impl::chargedBytes(const Instance* in) const {
  const WlModuleDescriptor* desc = in->app->desc;
  size_t pages = desc->memory(in->storage)->pages;
  // from_image: the app's snapshot was set before this instance was made.
  if (in->from_image) pages -= std::min<size_t>(pages, in->app->snapshot->pages());
  return desc->instance_size + pages * kPageBytes;
}

void Engine::Impl::destroy(Instance* in) {
  // The memory a partly built instance got, if any (its struct was zeroed).
  size_t charged = chargedBytes(in);
  in->app->desc->free_instance(in->storage);
  free(in->storage);
  budget.refund(charged);
  delete in;
}

// Called when a charge does not fit, from the guest's memory.grow or an
// instantiation: frees least recently used idle instances of any app.
void Engine::Impl::evictForBudget(size_t need) {
  std::vector<Instance*> victims;
  {
    std::lock_guard lock(pool_mu);
    victims = takeIdleLocked(nullptr, Clock::time_point::max(), need);
    evictions += victims.size();
  }
  for (Instance* v : victims) destroy(v);
}

absl::StatusOr<Instance*> Engine::Impl::acquire(Fiber& f, const std::shared_ptr<App>& app_ptr,
                                                InvocationState& inv, bool fresh, bool* cold) {
  App::State& app = app_ptr->state();
  for (;;) {
    std::unique_lock lock(pool_mu);
    // A fresh call takes only an instance no call has run in yet (a reset
    // one); any other takes the warmest used one, leaving pristine ones to
    // fresh calls, else the warmest.
    auto pick = app.idle.end();
    for (auto it = app.idle.end(); it != app.idle.begin();) {
      --it;
      if ((*it)->pristine == fresh) {
        pick = it;
        break;
      }
    }
    if (pick == app.idle.end() && !fresh && !app.idle.empty()) pick = app.idle.end() - 1;
    if (pick != app.idle.end()) {
      Instance* in = *pick;
      app.idle.erase(pick);
      lru.erase(in->lru_pos);
      *cold = false;
      return in;
    }
    if (fresh && !app.idle.empty() && app.total >= app.limits.max_instances) {
      // At the cap with only used instances idle: free the oldest to make
      // room for a pristine one, rather than wait for a release.
      Instance* old = app.idle.front();
      app.idle.erase(app.idle.begin());
      lru.erase(old->lru_pos);
      app.total--;
      live--;
      lock.unlock();
      destroy(old);
      continue;
    }
    if (app.total < app.limits.max_instances) {
      app.total++;
      live++;
      // Make room under the node-wide budget by evicting the least recently
      // used idle instances of any app.
      size_t estimate =
          app.typical_bytes != 0 ? app.typical_bytes : app.desc->instance_size + kPageBytes * 2;
      std::vector<Instance*> victims;
      size_t used = budget.used.load();
      if (used + estimate > budget.limit) {
        victims = takeIdleLocked(nullptr, Clock::time_point::max(), used + estimate - budget.limit);
        evictions += victims.size();
      }
      lock.unlock();
      for (Instance* v : victims) destroy(v);
      auto in = create(f, app, inv);
      if (!in.ok()) {
        std::lock_guard relock(pool_mu);
        app.total--;
        live--;
        if (!app.waiters.empty()) {
          app.waiters.front().resume(absl::OkStatus());
          app.waiters.pop_front();
        }
        return in.status();
      }
      *cold = true;
      return *in;
    }
    lock.unlock();
    absl::Status st = f.wait([this, &app](Resumer r) {
      std::lock_guard relock(pool_mu);
      if (!app.idle.empty() || app.total < app.limits.max_instances) {
        r.resume(absl::OkStatus());
      } else {
        app.waiters.push_back(std::move(r));
      }
    });
    if (!st.ok()) {
      return absl::DeadlineExceededError(
          absl::StrCat("app ", app.name, ": no instance became free before the deadline (limit ",
                       app.limits.max_instances, " concurrent instances)"));
    }
  }
}

absl::StatusOr<Instance*> Engine::Impl::create(Fiber& f, App::State& app, InvocationState& inv,
                                               bool run_initialize) {
  rt::ExecContext& x = f.exec();
  if (!budget.charge(app.desc->instance_size)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("app ", app.name, ": the node's memory budget (", budget.limit >> 20,
                     " MiB for all instances) is exhausted"));
  }
  size_t size = (app.desc->instance_size + 63) / 64 * 64;
  void* storage = aligned_alloc(64, size);
  if (storage == nullptr) {
    budget.refund(app.desc->instance_size);
    return absl::ResourceExhaustedError("out of memory");
  }
  memset(storage, 0, size);
  auto* in = new Instance();
  in->app = &app;
  in->storage = storage;
  in->env.exec = &x;
  in->env.inv = &inv;
  x.memory_limit_pages = app.limits.max_memory_pages;
  x.budget = &budget;
  x.mem_base = nullptr;
  bool ok;
  if (const Snapshot* image = app.image.load(std::memory_order_acquire); image != nullptr) {
    ok = restoreFromImage(x, in, *image);
  } else {
    ok = rt::guestCall(&x, app.desc->instantiate, storage, &in->env);
    if (ok) {
      in->env.memory = app.desc->memory(storage);
      x.mem_base = in->env.memory->data;
      ok = !run_initialize || runInitialize(x, in);
    }
  }
  if (!ok) {
    std::string why = rt::describeStop(x);
    destroy(in);  // free_instance copes with a partly built instance
    x.stop = rt::StopReason::kNone;
    return absl::InternalError(absl::StrCat("app ", app.name, ": instantiation failed: ", why));
  }
  return in;
}

void Engine::Impl::release(Instance* in, bool healthy) {
  in->env.inv = nullptr;
  in->env.exec = nullptr;
  App::State& app = *in->app;
  if (!healthy) {
    // A trapped instance may hold broken invariants: never reuse it.
    {
      std::lock_guard lock(pool_mu);
      app.total--;
      live--;
      if (!app.waiters.empty()) {
        app.waiters.front().resume(absl::OkStatus());
        app.waiters.pop_front();
      }
    }
    destroy(in);
    return;
  }
  size_t now_bytes = chargedBytes(in);
  std::lock_guard lock(pool_mu);
  in->bytes = now_bytes;
  app.typical_bytes = now_bytes;
  in->last_used = Clock::now();
  app.idle.push_back(in);
  lru.push_front(in);
  in->lru_pos = lru.begin();
  if (!app.waiters.empty()) {
    app.waiters.front().resume(absl::OkStatus());
    app.waiters.pop_front();
  }
}

void Engine::Impl::reapLoop(std::stop_token st) {
  while (!st.stop_requested()) {
    std::mutex m;
    std::unique_lock l(m);
    std::condition_variable_any cv;
    cv.wait_for(l, st, std::chrono::seconds(1), [] { return false; });
    std::vector<Instance*> victims;
    {
      std::lock_guard lock(pool_mu);
      victims = takeIdleLocked(nullptr, Clock::now() - options.idle_ttl, 0);
    }
    for (Instance* in : victims) destroy(in);
  }
}

// --- invocation ------------------------------------------------------------------

void Engine::Impl::run(Fiber& f, const std::shared_ptr<App>& app_ptr, InvocationRequest& req,
                       InvocationResult& res) {
  App::State& app = app_ptr->state();
  rt::ExecContext& x = f.exec();
  auto fn_it = app.exports.find(req.function);
  if (fn_it == app.exports.end()) {
    res.status = absl::NotFoundError(
        absl::StrCat("app ", app.name, " has no function '", req.function, "'"));
    return;
  }
  const WlExport* fn = fn_it->second;
  bool takes_args = std::strcmp(fn->signature, "ii:") == 0;
  if (!takes_args && std::strcmp(fn->signature, ":") != 0) {
    res.status = absl::InvalidArgumentError(
        absl::StrCat("app ", app.name, ": export '", req.function, "' has signature (",
                     fn->signature, "); functions take (argv i32, argc i32) or nothing"));
    return;
  }
  if (takes_args && !req.args.empty() && app.alloc == nullptr) {
    res.status = absl::InvalidArgumentError(
        absl::StrCat("app ", app.name, " does not export wl_alloc (link the Waverless SDK)"));
    return;
  }

  if (req.cancel && req.cancel->cancelled()) {
    res.status = req.cancel->reason();  // queued when its request ended: never starts
    return;
  }
  InvocationState inv;
  inv.fiber = &f;
  inv.host = req.host;
  inv.max_output = options.max_output_bytes;
  inv.max_log = options.max_log_bytes;
  inv.max_value = options.max_value_bytes;
  inv.files_dir = req.files_dir;

  if (req.fresh_instance) ensureImage(f, app);
  auto acquired = acquire(f, app_ptr, inv, req.fresh_instance, &res.cold_start);
  if (!acquired.ok()) {
    res.status = acquired.status();
    return;
  }
  Instance* in = *acquired;
  in->pristine = false;
  in->env.exec = &x;
  in->env.inv = &inv;
  x.mem_base = in->env.memory->data;
  x.grow_failed = false;
  x.budget = &budget;

  uint64_t args[2] = {0, 0};
  uint64_t ret[1] = {0};
  bool ok = true;
  if (takes_args && !req.args.empty()) {
    uint64_t total = 8 * req.args.size();
    for (const auto& a : req.args) total += a.size();
    if (total > UINT32_MAX / 2) {
      release(in, true);
      res.status = absl::ResourceExhaustedError("arguments too large");
      return;
    }
    uint64_t size_arg[1] = {total};
    ok = rt::guestCall(&x, app.alloc->call, in->storage, size_arg, ret);
    if (ok) {
      uint64_t ptr = static_cast<uint32_t>(ret[0]);
      wasm_rt_memory_t* mem = in->env.memory;
      if (ptr == 0 || ptr + total > mem->size) {
        release(in, false);
        res.status = absl::ResourceExhaustedError(
            absl::StrCat("app ", app.name, ": wl_alloc(", total, ") returned no usable memory"));
        return;
      }
      uint8_t* base = mem->data + ptr;
      uint64_t data = ptr + 8 * req.args.size();
      for (size_t i = 0; i < req.args.size(); ++i) {
        uint32_t p = static_cast<uint32_t>(data), l = static_cast<uint32_t>(req.args[i].size());
        memcpy(base + 8 * i, &p, 4);
        memcpy(base + 8 * i + 4, &l, 4);
        memcpy(mem->data + data, req.args[i].data(), l);
        data += l;
      }
      args[0] = ptr;
      args[1] = req.args.size();
    }
  }
  if (ok) ok = rt::guestCall(&x, fn->call, in->storage, args, ret);

  bool clean_exit = !ok && x.stop == rt::StopReason::kExit && x.exit_code == 0;
  if (ok || clean_exit) {
    res.status = absl::OkStatus();
  } else {
    std::string why =
        absl::StrCat("function ", req.function, " of app ", app.name, ": ", rt::describeStop(x));
    switch (x.stop) {
      case rt::StopReason::kCancelled:
        res.status = req.cancel ? req.cancel->reason() : absl::CancelledError(why);
        break;
      case rt::StopReason::kTimeout:
        res.status =
            absl::DeadlineExceededError(absl::StrCat(why, " (", req.timeout.count(), " ms)"));
        break;
      case rt::StopReason::kFailed:
        res.status = absl::Status(common::fromGuestFail(x.fail_code), why);
        break;
      default:
        res.status = absl::InternalError(why);
    }
  }
  res.exit_code = x.exit_code;
  // Only a healthy instance goes back to the pool. Not one that trapped or
  // exited (broken invariants; proc_exit ran the C runtime's exit path),
  // nor one whose allocator was refused memory (its heap may be full and
  // stay so), nor one that grew large (it would pin that memory while idle),
  // nor any under instance: fresh.
  // Under instance: fresh, an instance restored from a snapshot is reset to
  // it (only the pages this call touched cost anything) and reused.
  bool reset = ok && req.fresh_instance && in->from_image && resetToSnapshot(f, in);
  bool grew_large = size_t{in->env.memory->pages} * kPageBytes > options.max_pooled_instance_bytes;
  bool healthy = reset || (ok && !x.grow_failed && !grew_large && !req.fresh_instance);
  if (!healthy && ok) {
    std::lock_guard lock(pool_mu);
    discarded++;
  }
  release(in, healthy);
  res.output = std::move(inv.output);
  res.log = std::move(inv.log);
}

// --- Engine --------------------------------------------------------------------

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Engine::~Engine() { stop(); }

absl::Status Engine::start() {
  if (impl_->started) return absl::OkStatus();
  absl::Status st = impl_->executor.start();
  if (!st.ok()) return st;
  impl_->reaper = std::jthread([this](std::stop_token t) { impl_->reapLoop(t); });
  impl_->started = true;
  return absl::OkStatus();
}

void Engine::stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->executor.stop();
  impl_->reaper.request_stop();
  if (impl_->reaper.joinable()) impl_->reaper.join();
}

absl::StatusOr<std::shared_ptr<App>> Engine::load(std::string name, std::span<const uint8_t> wasm,
                                                  AppLimits limits, LoadInfo* info,
                                                  const std::filesystem::path& files_dir) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto obj = impl_->compiler.compile(wasm);
    if (!obj.ok()) {
      return absl::Status(obj.status().code(),
                          absl::StrCat("app ", name, ": ", obj.status().message()));
    }
    std::lock_guard lock(impl_->load_mu);
    void* dl = dlopen(obj->path.c_str(), RTLD_NOW | RTLD_LOCAL);
    const WlModuleDescriptor* desc = nullptr;
    if (dl != nullptr) {
      auto entry = reinterpret_cast<WlModuleEntryFn>(dlsym(dl, WL_MODULE_ENTRY));
      if (entry != nullptr) desc = entry(rt::hostApi());
    }
    if (desc == nullptr || desc->abi_version != WL_MODULE_ABI_VERSION ||
        obj->build_key != desc->build_key) {
      // Stale or damaged cache entry: rebuild once from the wasm bytes.
      std::string err = dl == nullptr ? dlerror() : "version mismatch";
      if (dl != nullptr) dlclose(dl);
      impl_->compiler.evict(*obj);
      if (attempt == 1) {
        return absl::InternalError(
            absl::StrCat("app ", name, ": cannot load compiled module: ", err));
      }
      continue;
    }
    desc->init_module();
    auto state = std::make_unique<App::State>();
    state->name = std::move(name);
    state->engine = impl_.get();
    state->dl = dl;
    state->desc = desc;
    state->limits = limits;
    for (uint32_t i = 0; i < desc->export_count; ++i) {
      const WlExport* e = &desc->exports[i];
      state->exports.emplace(e->name, e);
    }
    if (auto it = state->exports.find("wl_alloc");
        it != state->exports.end() && std::strcmp(it->second->signature, "i:i") == 0) {
      state->alloc = it->second;
    }
    if (auto it = state->exports.find("_initialize");
        it != state->exports.end() && std::strcmp(it->second->signature, ":") == 0) {
      state->initialize = it->second;
      state->exports.erase(it);  // runs once per instance, not callable
    }
    if (auto it = state->exports.find("wl_init"); it != state->exports.end()) {
      if (std::strcmp(it->second->signature, ":") != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("app ", state->name, ": wl_init has signature (", it->second->signature,
                         "); it takes nothing"));
      }
      state->wl_init = it->second;
      state->exports.erase(it);  // runs once, at load, not callable
    }
    LoadInfo local;
    if (info == nullptr) info = &local;
    info->from_cache = obj->from_cache;
    info->object_path = obj->path;
    info->compile_ms = obj->compile_ms;
    info->wasm_bytes = obj->wasm_bytes;
    auto app = std::make_shared<App>(std::move(state));
    if (app->state().wl_init != nullptr) {
      absl::Status st = impl_->takeSnapshot(app->state(), files_dir, *info);
      if (!st.ok()) return st;
    }
    return app;
  }
  return absl::InternalError("unreachable");
}

void Engine::invoke(std::shared_ptr<App> app, InvocationRequest request,
                    absl::AnyInvocable<void(InvocationResult)> done) {
  auto deadline = Clock::now() + request.timeout;
  SpawnOptions spawn;
  spawn.prefer_caller = request.run_on_caller_thread;
  spawn.background = request.background;
  spawn.tenant = app.get();
  spawn.cancel = request.cancel;
  impl_->executor.spawn(
      deadline,
      [impl = impl_.get(), app = std::move(app), req = std::move(request),
       done = std::move(done)](Fiber& f) mutable {
        auto start = Clock::now();
        InvocationResult res;
        impl->run(f, app, req, res);
        auto end = Clock::now();
        res.duration = end - start;
        res.run_time = f.runTime(end);
        done(std::move(res));
      },
      std::move(spawn));
}

InvocationResult Engine::invokeSync(std::shared_ptr<App> app, InvocationRequest request) {
  std::promise<InvocationResult> p;
  auto fut = p.get_future();
  invoke(std::move(app), std::move(request),
         [&p](InvocationResult r) { p.set_value(std::move(r)); });
  return fut.get();
}

std::vector<boost::asio::io_context*> Engine::ioContexts() { return impl_->executor.ioContexts(); }

EngineStats Engine::stats() {
  EngineStats s;
  {
    std::lock_guard lock(impl_->pool_mu);
    s.instances_live = impl_->live;
    s.instances_idle = impl_->lru.size();
    s.instance_bytes = impl_->budget.used.load();
    s.evictions = impl_->evictions;
    s.discarded = impl_->discarded;
  }
  s.reservations_mapped = rt::reservationStats().mapped;
  s.executor = impl_->executor.stats();
  return s;
}

absl::StatusOr<std::string> packSnapshot(const std::filesystem::path& file) {
  return packSnapshotFile(file);
}

absl::Status unpackSnapshot(std::string_view packed, const std::filesystem::path& file) {
  return unpackSnapshotFile(packed, file);
}

}  // namespace waverless::wasm
