#include <cstdio>
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
  if (ok &&
      !rt::mapImage(in->env.memory, image.fd(), image.offset(), image.pages(), image.maxPages())) {
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
// opened: every path wl_init passed to wl_file_open.
absl::Status Engine::Impl::initTemplate(Fiber& f, App::State& app,
                                        const std::filesystem::path& files_dir,
                                        std::vector<std::string>* opened) {
  SnapshotInitHost host;
  InvocationState inv;
  inv.fiber = &f;
  inv.host = &host;
  inv.max_output = options.max_output_bytes;
  inv.max_log = options.max_log_bytes;
  inv.max_value = options.max_value_bytes;
  inv.files_dir = files_dir;
  inv.opened_files = opened;
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

std::filesystem::path Engine::Impl::snapshotPath(const App::State& app) const {
  return options.cache_dir /
         absl::StrCat(std::string(app.desc->build_key).substr(0, 32), ".", app.name, ".snap");
}

// The snapshot file, if it is there and still valid for this module, app
// limits and files: a template built by the module's load_state. fresh: a
// just-instantiated instance (load_state takes table entries from it).
absl::Status Engine::Impl::loadSnapshot(App::State& app, const Instance& fresh,
                                        const std::filesystem::path& files_dir) {
  if (app.desc->load_state == nullptr) {
    return absl::FailedPreconditionError("the module's state cannot be kept outside the process");
  }
  auto file = SnapshotFile::open(snapshotPath(app), app.desc->build_key);
  if (!file.ok()) return file.status();
  for (const InitFileUse& use : file->files()) {
    if (fingerprintAppFile(files_dir, use.path) != use) {
      return absl::FailedPreconditionError(
          absl::StrCat("files/", use.path, ", which wl_init opened, is not the same"));
    }
  }
  const wasm_rt_memory_t* mem = app.desc->memory(fresh.storage);
  if (file->pages() < mem->pages || file->pages() > mem->max_pages) {
    return absl::FailedPreconditionError(absl::StrCat("its ", file->pages(),
                                                      " memory pages do not fit this module's ",
                                                      mem->pages, "..", mem->max_pages));
  }
  size_t charge = file->pages() * kPageBytes + app.desc->instance_size;
  if (!budget.charge(charge)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("app ", app.name, ": the node's memory budget has no room for its snapshot"));
  }
  size_t size = (app.desc->instance_size + 63) / 64 * 64;
  void* storage = aligned_alloc(64, size);
  if (storage != nullptr) memset(storage, 0, size);
  const std::string& state = file->state();
  if (storage == nullptr ||
      app.desc->load_state(storage, fresh.storage, reinterpret_cast<const uint8_t*>(state.data()),
                           state.size(), nullptr) != 0) {
    if (storage != nullptr) {
      app.desc->free_instance(storage);  // the tables it got; its memory header is zero
      free(storage);
    }
    budget.refund(charge);
    return absl::DataLossError("its instance state does not fit the module");
  }
  app.snapshot = Snapshot::fromFile(app.desc, storage, std::move(*file), mem->max_pages);
  app.image.store(app.snapshot.get(), std::memory_order_release);
  return absl::OkStatus();
}

// Writes app's just-captured snapshot to its file, and removes the app's
// files of other module builds.
absl::Status Engine::Impl::saveSnapshot(App::State& app, const Instance& fresh,
                                        const std::filesystem::path& files_dir,
                                        const std::vector<std::string>& opened) {
  const Snapshot& snap = *app.snapshot;
  if (app.desc->save_state == nullptr) {
    return absl::FailedPreconditionError("the module's state cannot be kept outside the process");
  }
  uint64_t n = app.desc->save_state(snap.templateInstance(), fresh.storage, nullptr, 0);
  if (n == 0) {
    return absl::FailedPreconditionError(
        "wl_init left a table entry the module does not put there itself");
  }
  std::string state(n, '\0');
  app.desc->save_state(snap.templateInstance(), fresh.storage,
                       reinterpret_cast<uint8_t*>(state.data()), n);
  std::vector<InitFileUse> files;
  for (const std::string& p : opened) {
    bool seen = false;
    for (const auto& u : files) seen = seen || u.path == p;
    if (!seen) files.push_back(fingerprintAppFile(files_dir, p));
  }
  std::filesystem::path path = snapshotPath(app);
  absl::Status st =
      writeSnapshotFile(path, app.desc->build_key, state, files, snap.view(), snap.pages());
  if (!st.ok()) return st;
  std::string mine = absl::StrCat(".", app.name, ".snap");
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options.cache_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.ends_with(mine) && name.size() == 32 + mine.size() && e.path() != path) {
      std::filesystem::remove(e.path(), ec);
    }
  }
  return absl::OkStatus();
}

namespace {
void warnSnapshot(const App::State& app, const std::string& note) {
  fprintf(stderr, "level=warn app=%s msg=\"%s\"\n", app.name.c_str(), note.c_str());
}
}  // namespace

// On an executor fiber: the snapshot from its file when it is valid, else
// from wl_init (and then written to the file).
absl::Status Engine::Impl::prepareSnapshot(Fiber& f, App::State& app,
                                           const std::filesystem::path& files_dir, LoadInfo& info) {
  auto start = Clock::now();
  SnapshotInitHost host;
  InvocationState inv;
  inv.fiber = &f;
  inv.host = &host;
  auto fresh = create(f, app, inv, /*run_initialize=*/false);
  if (!fresh.ok()) return fresh.status();
  info.snapshot_path = snapshotPath(app);
  absl::Status loaded = loadSnapshot(app, **fresh, files_dir);
  absl::Status st = absl::OkStatus();
  if (loaded.ok()) {
    info.snapshot = SnapshotSource::kCache;
  } else {
    if (!absl::IsNotFound(loaded)) {
      info.snapshot_note = absl::StrCat("snapshot file not used: ", loaded.message());
      // A stale file (the module or a file wl_init read changed) is the
      // normal reason to rebuild; a damaged one is worth a line.
      if (!absl::IsFailedPrecondition(loaded)) warnSnapshot(app, info.snapshot_note);
    }
    std::vector<std::string> opened;
    st = initTemplate(f, app, files_dir, &opened);
    if (st.ok()) {
      info.snapshot = SnapshotSource::kBuilt;
      if (absl::Status saved = saveSnapshot(app, **fresh, files_dir, opened); !saved.ok()) {
        info.snapshot_note = absl::StrCat("snapshot not written: ", saved.message());
        info.snapshot_path.clear();
        warnSnapshot(app, info.snapshot_note);  // the app runs; its next load is slower
      }
    }
  }
  destroy(*fresh);
  info.snapshot_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return st;
}

absl::Status Engine::Impl::takeSnapshot(App::State& app, const std::filesystem::path& files_dir,
                                        LoadInfo& info) {
  std::promise<absl::Status> done;
  auto result = done.get_future();
  executor.spawn(Clock::now() + options.init_timeout,
                 [&](Fiber& f) { done.set_value(prepareSnapshot(f, app, files_dir, info)); }, {});
  return result.get();
}

}  // namespace waverless::wasm
