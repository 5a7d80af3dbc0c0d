#include <future>

#include "absl/strings/str_cat.h"
#include "wasm/engine_impl.h"

namespace waverless::wasm {

// --- snapshots -------------------------------------------------------------------

bool Engine::Impl::runInitialize(rt::ExecContext& x, Instance* in) {
  if (in->app->initialize == nullptr) return true;
  uint64_t none[1] = {0};
  return rt::guestCall(&x, in->app->initialize->call, in->storage, none, none);
}

// Globals and tables from the template, memory mapped from the image: no
// data segments (nor, with wl_init, _initialize and wl_init).
bool Engine::Impl::restoreFromImage(rt::ExecContext& x, Instance* in, const Snapshot& image) {
  const App::State& app = *in->app;
  in->from_image = true;
  bool ok = rt::guestCall(&x, app.desc->restore_instance, in->storage, image.templateInstance(),
                          &in->env);
  in->env.memory = app.desc->memory(in->storage);
  if (ok && !rt::mapImage(in->env.memory, image.fd(), image.pages(), image.maxPages())) {
    x.requestStop(rt::StopReason::kHostError, "out of address space for a linear memory");
    return false;
  }
  x.mem_base = in->env.memory->data;
  // An image taken after wl_init holds _initialize's effects already.
  return ok && (app.wl_init != nullptr || runInitialize(x, in));
}

bool Engine::Impl::resetToSnapshot(Fiber& f, Instance* in) {
  const Snapshot& image = *in->app->snapshot;
  rt::ExecContext& x = f.exec();
  if (!rt::resetToImage(in->env.memory, image.pages(), &budget, image.view())) return false;
  bool ok = rt::guestCall(&x, in->app->desc->restore_instance, in->storage,
                          image.templateInstance(), &in->env) &&
            (in->app->wl_init != nullptr || runInitialize(x, in));
  x.stop = rt::StopReason::kNone;
  in->pristine = ok;
  return ok;
}

// An app without wl_init gets its image at its first fresh call: fresh
// instances are then reset rather than rebuilt. Apps that never use
// `instance: fresh` keep no image (nor its file descriptor). A failure
// leaves the app as it was: fresh calls then build new instances.
void Engine::Impl::ensureImage(Fiber& f, App::State& app) {
  if (app.wl_init != nullptr || app.desc->restore_instance == nullptr) return;
  // The capture never parks the fiber, so a second caller on this thread
  // cannot be waiting inside call_once.
  std::call_once(app.image_once, [&] {
    InvocationState inv;
    inv.fiber = &f;
    auto created = create(f, app, inv, /*run_initialize=*/false);
    if (!created.ok()) return;
    auto snap = Snapshot::capture(app.desc, (*created)->storage, app.name);
    if (!snap.ok()) {
      destroy(*created);
      return;
    }
    delete *created;  // its struct now belongs to the snapshot
    app.snapshot = std::move(*snap);
    app.image.store(app.snapshot.get(), std::memory_order_release);
  });
}

// Runs on an executor fiber: a template instance, _initialize, wl_init, and
// its state captured. Its charge to the budget stays as the snapshot's.
absl::Status Engine::Impl::initTemplate(Fiber& f, App::State& app,
                                        const std::filesystem::path& files_dir) {
  SnapshotInitHost host;
  InvocationState inv;
  inv.fiber = &f;
  inv.host = &host;
  inv.max_output = options.max_output_bytes;
  inv.max_log = options.max_log_bytes;
  inv.max_value = options.max_value_bytes;
  inv.files_dir = files_dir;
  auto created = create(f, app, inv);
  if (!created.ok()) return created.status();
  Instance* in = *created;
  rt::ExecContext& x = f.exec();
  x.grow_failed = false;
  uint64_t none[1] = {0};
  if (!rt::guestCall(&x, app.wl_init->call, in->storage, none, none)) {
    std::string why = rt::describeStop(x);
    x.stop = rt::StopReason::kNone;
    destroy(in);
    std::string log = inv.log.size() > 2000 ? inv.log.substr(inv.log.size() - 2000) : inv.log;
    return absl::FailedPreconditionError(
        absl::StrCat("app ", app.name, ": wl_init: ", why, log.empty() ? "" : "; its log: ", log));
  }
  auto snap = Snapshot::capture(app.desc, in->storage, app.name);
  if (!snap.ok()) {
    destroy(in);
    return snap.status();
  }
  app.snapshot = std::move(*snap);
  app.image.store(app.snapshot.get(), std::memory_order_release);
  delete in;  // its struct now belongs to the snapshot
  return absl::OkStatus();
}

absl::Status Engine::Impl::takeSnapshot(App::State& app, const std::filesystem::path& files_dir) {
  std::promise<absl::Status> done;
  auto result = done.get_future();
  executor.spawn(Clock::now() + options.init_timeout,
                 [&](Fiber& f) { done.set_value(initTemplate(f, app, files_dir)); }, {});
  return result.get();
}

}  // namespace waverless::wasm
