#include <future>

#include "absl/strings/str_cat.h"
#include "wasm/engine_impl.h"

namespace waverless::wasm {

// --- snapshots -------------------------------------------------------------------

bool Engine::Impl::resetToSnapshot(Fiber& f, Instance* in) {
  App::State& app = *in->app;
  rt::ExecContext& x = f.exec();
  if (!rt::resetToImage(in->env.memory, app.snapshot->pages(), &budget, app.snapshot->view())) {
    return false;
  }
  bool ok = rt::guestCall(&x, app.desc->restore_instance, in->storage,
                          app.snapshot->templateInstance(), &in->env);
  x.stop = rt::StopReason::kNone;
  in->pristine = ok;
  return ok;
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
