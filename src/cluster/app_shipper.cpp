#include "cluster/app_shipper.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "cluster/cluster_util.h"
#include "cluster/peers.h"
#include "common/status_map.h"
#include "master/package.h"
#include "meta/app_record.h"
#include "meta/app_registry.h"
#include "meta/raft_log.h"
#include "wasm/engine.h"

namespace waverless::cluster {

namespace fs = std::filesystem;
namespace pb = net::pb;

// How long a deploy or removal waits for a master: longer than an election.
constexpr std::chrono::seconds kFindMaster{30};

namespace {

// The package's invoke key hash, when it has one, into an app folder.
absl::Status writeInvokeKey(const fs::path& dir, const pb::AppPackage& pkg) {
  if (pkg.invoke_key_sha256().empty()) return absl::OkStatus();
  return writeFileAtomically(dir / meta::kInvokeKeyFile, pkg.invoke_key_sha256());
}

}  // namespace

AppShipper::AppShipper(uint32_t self, AppShipperDeps deps)
    : self_(deps.config.find(self)), deps_(std::move(deps)) {}

AppShipper::~AppShipper() { stop(); }

absl::Status AppShipper::start() {
  if (self_ == nullptr) return absl::InvalidArgumentError("this node's id is not in the cluster");
  if (deps_.raft != nullptr) {
    meta_sync_ = std::jthread([this](std::stop_token st) { metaSyncLoop(st); });
  }
  return absl::OkStatus();
}

void AppShipper::stop() {
  if (!meta_sync_.joinable()) return;
  meta_sync_.request_stop();
  sync_cv_.notify_all();
  meta_sync_.join();
}

// --- deploy once --------------------------------------------------------------------

absl::StatusOr<pb::AppPackage> AppShipper::packageOf(const meta::DeployedApp& app) {
  pb::AppPackage p;
  p.set_name(app.name);
  p.set_version(app.version);
  p.set_app_yaml(readFile(app.dir / "app.yaml"));
  p.set_app_wasm(readFile(app.dir / "app.wasm"));
  p.set_invoke_key_sha256(readFile(app.dir / meta::kInvokeKeyFile));
  if (!app.files_dir.empty()) {
    auto tar = master::packTree(app.files_dir);
    if (!tar.ok()) return tar.status();
    p.set_files_tar(std::move(*tar));
  }
  if (!app.object_path.empty()) {
    p.set_compiled_object(readFile(app.object_path));
    p.set_object_name(app.object_path.filename().string());
  }
  // The wl_init snapshot, so workers map the master's instead of running
  // wl_init each. Without it (unreadable here) a worker runs wl_init.
  if (!app.snapshot_path.empty()) {
    auto snap = wasm::packSnapshot(app.snapshot_path);
    if (snap.ok()) {
      p.set_snapshot(std::move(*snap));
      p.set_snapshot_name(app.snapshot_path.filename().string());
    } else {
      fprintf(stderr, "level=warn app=%s msg=\"snapshot not shipped: %s\"\n", app.name.c_str(),
              std::string(snap.status().message()).c_str());
    }
  }
  return p;
}

absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> AppShipper::installPackage(
    const pb::AppPackage& pkg) {
  std::lock_guard lock(install_mu_);
  // The compiled object goes into our cache under its content key, so the
  // registry's load finds it instead of compiling again. Same machine type
  // and toolchain give the same key; otherwise this node compiles.
  if (!pkg.compiled_object().empty() && !pkg.object_name().empty() &&
      pkg.object_name().find('/') == std::string::npos) {
    std::error_code ec;
    fs::create_directories(deps_.cache_dir, ec);
    fs::path obj = deps_.cache_dir / pkg.object_name();
    if (!fs::exists(obj, ec)) {
      if (auto st = writeFileAtomically(obj, pkg.compiled_object()); !st.ok()) return st;
    }
  }
  // The snapshot too, replacing ours: the load below checks it against the
  // module and the files, and runs wl_init instead if it does not fit.
  if (!pkg.snapshot().empty()) {
    const std::string& n = pkg.snapshot_name();
    absl::Status st =
        n.find('/') != std::string::npos || n.starts_with(".") || !n.ends_with(".snap")
            ? absl::InvalidArgumentError("bad snapshot file name '" + n + "'")
            : wasm::unpackSnapshot(pkg.snapshot(), deps_.cache_dir / n);
    if (!st.ok()) {
      fprintf(stderr, "level=warn app=%s msg=\"shipped snapshot not used: %s\"\n",
              pkg.name().c_str(), std::string(st.message()).c_str());
    }
  }
  fs::path dir = deps_.scratch_dir / absl::StrCat("install-", pkg.name(), "-", install_seq_++);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir / "files", ec);
  absl::Status st = writeFileAtomically(dir / "app.yaml", pkg.app_yaml());
  if (st.ok()) st = writeFileAtomically(dir / "app.wasm", pkg.app_wasm());
  if (st.ok()) st = writeInvokeKey(dir, pkg);
  if (st.ok() && !pkg.files_tar().empty()) st = master::extractTar(pkg.files_tar(), dir / "files");
  if (!st.ok()) {
    fs::remove_all(dir, ec);
    return st;
  }
  if (pkg.files_tar().empty()) fs::remove_all(dir / "files", ec);
  auto app = deps_.registry.deploy(pkg.name(), dir);
  fs::remove_all(dir, ec);
  return app;
}

void AppShipper::distribute(const std::string& name) {
  auto app = deps_.registry.find(name);
  if (!app) return;
  auto pkg = packageOf(*app);
  if (!pkg.ok()) return;
  std::vector<std::future<void>> pushes;
  for (const auto& n : deps_.config.nodes) {
    if (n.id == self_->id) continue;
    if (!deps_.alive(n.id)) {
      fprintf(stderr, "level=info node=%u app=%s msg=\"down: installs it when back\"\n", n.id,
              name.c_str());
      continue;
    }
    net::PeerClient* p = deps_.peers.get(n.id);
    pushes.push_back(std::async(std::launch::async, [p, &pkg, id = n.id, &name] {
      absl::Status st = p->installApp(*pkg, std::chrono::minutes(5));
      if (!st.ok()) {
        // It gets the app from its next heartbeat once it is reachable.
        fprintf(stderr, "level=warn node=%u app=%s msg=\"install deferred: %s\"\n", id,
                name.c_str(), std::string(st.message()).c_str());
      }
    }));
  }
  for (auto& f : pushes) f.wait();
}

absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> AppShipper::deploy(const std::string& name,
                                                                            const fs::path& dir) {
  if (isMaster()) {
    auto app = deps_.registry.deploy(name, dir);  // validates and compiles, once
    if (!app.ok()) return app;
    distribute(name);
    // Then the replicated record: a worker that missed the push installs the
    // version from it.
    if (auto st = recordApp(name, (*app)->version); !st.ok()) {
      fprintf(stderr, "level=warn app=%s msg=\"not recorded in meta: %s\"\n", name.c_str(),
              std::string(st.message()).c_str());
    }
    return app;
  }
  // Not the master: hand the package to it; it compiles and ships it to
  // every node, this one included, before answering.
  pb::AppPackage pkg;
  pkg.set_name(name);
  pkg.set_app_yaml(readFile(dir / "app.yaml"));
  pkg.set_app_wasm(readFile(dir / "app.wasm"));
  pkg.set_invoke_key_sha256(readFile(dir / meta::kInvokeKeyFile));
  std::error_code ec;
  if (fs::is_directory(dir / "files", ec)) {
    auto tar = master::packTree(dir / "files");
    if (!tar.ok()) return tar.status();
    pkg.set_files_tar(std::move(*tar));
  }
  // A compile error is InvalidArgument and ends here.
  auto forwarded = forwardToMaster(
      [&](net::PeerClient& master) { return master.installApp(pkg, std::chrono::minutes(10)); });
  if (!forwarded.ok()) return forwarded.status();
  if (*forwarded == Forwarded::kSelfIsMaster) return deploy(name, dir);
  auto app = deps_.registry.find(name);
  if (app) return app;
  // The master pushes only to the nodes its view has alive, and this one may not be yet (it has
  // just started, or the master has just been elected): fetch what the master deployed.
  if (auto master = deps_.master(); master && *master != self_->id) {
    auto fetched = deps_.peers.get(*master)->fetchApp(name, std::chrono::seconds(30));
    if (fetched.ok()) return installPackage(*fetched);
  }
  return absl::UnavailableError("deployed on the master but not yet installed here");
}

absl::StatusOr<uint32_t> AppShipper::awaitMaster(std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (auto m = deps_.master()) return *m;
    if (std::chrono::steady_clock::now() >= until) {
      return absl::UnavailableError(
          "no master: the meta raft group has no leader (fewer than a majority of its nodes up?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::StatusOr<AppShipper::Forwarded> AppShipper::forwardToMaster(
    const std::function<absl::Status(net::PeerClient&)>& call) {
  absl::Status st;
  auto until = std::chrono::steady_clock::now() + kFindMaster;
  do {
    auto master = awaitMaster(kFindMaster);
    if (!master.ok()) return master.status();
    if (*master == self_->id) return Forwarded::kSelfIsMaster;  // elected meanwhile
    st = call(*deps_.peers.get(*master));
    // Unavailable: it died; FailedPrecondition: it is no longer the master. Either way the next
    // master takes it.
    if (st.code() != absl::StatusCode::kUnavailable &&
        st.code() != absl::StatusCode::kFailedPrecondition)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < until);
  if (!st.ok()) return st;
  return Forwarded::kDone;
}

pb::Ack AppShipper::installApp(const pb::AppPackage& pkg) {
  pb::Ack ack;
  absl::Status st;
  if (pkg.compiled_object().empty() && !isMaster()) {
    // A deploy forwarded to a node that lost the master role meanwhile: the
    // sender tries the next master.
    st = absl::FailedPreconditionError(
        absl::StrCat("node ", self_->id, " is not the master; the master is ",
                     deps_.master() ? std::to_string(*deps_.master()) : "being elected"));
  } else if (pkg.compiled_object().empty()) {
    // A deploy forwarded by another node.
    fs::path dir = deps_.scratch_dir / absl::StrCat("forwarded-", pkg.name(), "-", install_seq_++);
    std::error_code ec;
    fs::create_directories(dir / "files", ec);
    st = writeFileAtomically(dir / "app.yaml", pkg.app_yaml());
    if (st.ok()) st = writeFileAtomically(dir / "app.wasm", pkg.app_wasm());
    if (st.ok()) st = writeInvokeKey(dir, pkg);
    if (st.ok() && !pkg.files_tar().empty())
      st = master::extractTar(pkg.files_tar(), dir / "files");
    if (pkg.files_tar().empty()) fs::remove_all(dir / "files", ec);
    if (st.ok()) st = deploy(pkg.name(), dir).status();
    fs::remove_all(dir, ec);
  } else {
    st = installPackage(pkg).status();
  }
  ack.set_code(common::toWire(st));
  ack.set_message(std::string(st.message()));
  return ack;
}

absl::StatusOr<pb::AppPackage> AppShipper::fetchApp(const std::string& name) {
  auto app = deps_.registry.find(name);
  if (!app) return absl::NotFoundError("no app named '" + name + "'");
  return packageOf(*app);
}

void AppShipper::syncApps(const std::map<std::string, std::string>& wanted) {
  // A worker that was down during a deploy, or joined later, catches up.
  for (const auto& [name, version] : wanted) {
    auto have = deps_.registry.find(name);
    if (have && have->version == version) continue;
    // From the master, or any node that has this version (the master may be
    // the node that is down).
    absl::StatusOr<pb::AppPackage> pkg = absl::NotFoundError(name);
    std::vector<uint32_t> sources;
    if (auto m = deps_.master()) sources.push_back(*m);
    for (const auto& n : deps_.config.nodes) {
      if (n.id != self_->id && n.id != deps_.master()) sources.push_back(n.id);
    }
    for (uint32_t src : sources) {
      if (src == self_->id) continue;
      pkg = deps_.peers.get(src)->fetchApp(name, std::chrono::seconds(30));
      if (pkg.ok() && pkg->version() == version) break;
      if (pkg.ok()) pkg = absl::NotFoundError("stale version at node " + std::to_string(src));
    }
    if (!pkg.ok()) continue;
    auto app = installPackage(*pkg);
    if (!app.ok()) {
      fprintf(stderr, "level=warn app=%s msg=\"sync failed: %s\"\n", name.c_str(),
              std::string(app.status().message()).c_str());
    }
  }
  // Never remove here: an app missing from `wanted` may only be missing from
  // a stale or partial view, and removing an app drops its keys. Removal is
  // an explicit RemoveApp from the master or a committed raft erase.
}

void AppShipper::onMetaApply(const std::string& key, const std::optional<std::string>& value) {
  auto name = meta::appOfRecordKey(key);
  if (!name) return;
  std::lock_guard lock(sync_mu_);
  // Only a committed erase removes an app (and its keys) here: an app
  // merely absent from a partly replayed map must never be dropped.
  if (!value) removals_.insert(*name);
  sync_pending_ = true;
  sync_cv_.notify_one();
}

void AppShipper::onMasterApps(const std::map<std::string, std::string>& wanted) {
  // Nodes in the raft group take the app set from it.
  if (deps_.raft == nullptr) syncApps(wanted);
}

void AppShipper::metaSyncLoop(std::stop_token st) {
  while (!st.stop_requested()) {
    {
      std::unique_lock lock(sync_mu_);
      // Also every few seconds: an install that failed (master briefly
      // unreachable) is retried.
      sync_cv_.wait_for(lock, st, std::chrono::seconds(3), [&] { return sync_pending_; });
      sync_pending_ = false;
    }
    if (st.stop_requested()) return;
    std::set<std::string> removals;
    {
      std::lock_guard lock(sync_mu_);
      removals.swap(removals_);
    }
    for (const auto& name : removals) {
      if (!deps_.raft->get(meta::appRecordKey(name)) && deps_.registry.find(name)) {
        (void)deps_.registry.remove(name);
      }
    }
    syncApps(meta::recordedApps(deps_.raft->snapshot()));
  }
}

absl::Status AppShipper::recordApp(const std::string& name, const std::string& version) {
  if (!deps_.config.hasMeta()) return absl::OkStatus();
  pb::MetaEntry e;
  e.set_key(meta::appRecordKey(name));
  e.set_value(version);
  e.set_erase(version.empty());
  // metaPut forwards to the raft leader itself; a node outside the raft
  // group asks the first meta node.
  const NodeConfig* meta = nullptr;
  for (const auto& n : deps_.config.nodes) {
    if (!meta && n.meta) meta = &n;
  }
  absl::Status st;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (deps_.raft != nullptr) {
      pb::Ack a = metaPut(e);
      st = common::fromWire(a.code(), a.message());
    } else {
      st = deps_.peers.get(meta->id)->metaPut(e, std::chrono::seconds(5));
    }
    if (st.ok()) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // election in progress
  }
  return st;
}

pb::Ack AppShipper::metaPut(const pb::MetaEntry& e) {
  pb::Ack ack;
  absl::Status st;
  meta::RaftLog* raft = deps_.raft;
  if (raft == nullptr) {
    st = absl::FailedPreconditionError(absl::StrCat("node ", self_->id, " is not a meta node"));
  } else if (!raft->isLeader()) {
    auto leader = raft->leader();
    if (leader && leader->id != self_->id) {
      st = deps_.peers.get(static_cast<uint32_t>(leader->id))->metaPut(e, std::chrono::seconds(5));
    } else {
      st = absl::UnavailableError("no raft leader yet");
    }
  } else {
    st = e.erase() ? raft->erase(e.key(), std::chrono::seconds(5))
                   : raft->put(e.key(), e.value(), std::chrono::seconds(5));
  }
  ack.set_code(common::toWire(st));
  ack.set_message(std::string(st.message()));
  return ack;
}

std::string AppShipper::metaJson() {
  if (deps_.raft == nullptr) return "{\"meta\":false}";
  auto leader = deps_.raft->leader();
  std::string out = absl::StrCat(
      "{\"meta\":true,\"leader\":", leader ? std::to_string(leader->id) : "null", ",\"apps\":{");
  bool first = true;
  for (const auto& [name, version] : meta::recordedApps(deps_.raft->snapshot())) {
    absl::StrAppend(&out, first ? "" : ",", "\"", name, "\":\"", version, "\"");
    first = false;
  }
  return out + "}}";
}

absl::Status AppShipper::remove(const std::string& name) {
  if (isMaster()) return removeEverywhere(name);
  auto forwarded = forwardToMaster([&](net::PeerClient& master) {
    return master.removeApp(name, net::Removal::kCluster, std::chrono::seconds(30));
  });
  if (!forwarded.ok()) return forwarded.status();
  if (*forwarded == Forwarded::kSelfIsMaster) return removeEverywhere(name);
  // The master removed it on every node it could reach; this one must not keep it either.
  if (absl::Status here = deps_.registry.remove(name);
      !here.ok() && here.code() != absl::StatusCode::kNotFound) {
    return here;
  }
  return absl::OkStatus();
}

absl::Status AppShipper::removeEverywhere(const std::string& name) {
  absl::Status st = deps_.registry.remove(name);
  if (!st.ok()) return st;
  if (absl::Status rec = recordApp(name, ""); !rec.ok()) {
    fprintf(stderr, "level=warn app=%s msg=\"removal not recorded in meta: %s\"\n", name.c_str(),
            std::string(rec.message()).c_str());
  }
  for (const auto& n : deps_.config.nodes) {
    if (n.id == self_->id) continue;
    absl::Status there =
        deps_.peers.get(n.id)->removeApp(name, net::Removal::kHere, std::chrono::seconds(10));
    if (!there.ok()) {
      // A meta node removes it when it applies the raft erase; a node outside the raft group
      // keeps its copy until a later removal reaches it.
      fprintf(stderr, "level=warn node=%u app=%s msg=\"removal not delivered: %s\"\n", n.id,
              name.c_str(), std::string(there.message()).c_str());
    }
  }
  return absl::OkStatus();
}

pb::Ack AppShipper::removeApp(const std::string& name, net::Removal scope) {
  absl::Status st;
  if (scope == net::Removal::kHere) {
    st = deps_.registry.remove(name);
  } else if (isMaster()) {
    st = removeEverywhere(name);
  } else {
    // A removal forwarded to a node that lost the master role meanwhile: removing only its own
    // copy would leave the app recorded and served elsewhere. The sender tries the next master.
    st = absl::FailedPreconditionError(
        absl::StrCat("node ", self_->id, " is not the master; the master is ",
                     deps_.master() ? std::to_string(*deps_.master()) : "being elected"));
  }
  pb::Ack ack;
  if (!st.ok() && st.code() != absl::StatusCode::kNotFound) {
    ack.set_code(common::toWire(st));
    ack.set_message(std::string(st.message()));
  }
  return ack;
}

}  // namespace waverless::cluster
