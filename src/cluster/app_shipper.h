// Deploy once: the master (the meta raft leader, see membership.h) validates
// and AOT-compiles an app, then ships the package with its compiled object to
// every other node (any meta node may be the next master); a worker installs it into
// its module cache under the same content key and loads it without
// compiling. The version the cluster serves is recorded in the meta raft
// group (meta/app_record.h); a node that missed a push (down, partitioned,
// joined later) installs the recorded version, or, outside the raft group,
// the one in the master's heartbeat reply, fetching the package from the
// master or any node that has it.
//
// Removal is explicit only (RemoveApp from the master, or a committed raft
// erase): an app merely absent from a stale view is never dropped, since
// removing an app drops its keys. Like a deploy, a removal asked of a node
// that is not the master goes to the master, and one forwarded to a node
// that has lost the role is refused and sent to the next master.
//
// Threads: deploy()/remove() on the gateway's threads; the peer handlers on
// gRPC threads; syncApps on the heartbeat thread or this object's meta sync
// thread. Installs are serialized by install_mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "cluster/cluster_config.h"
#include "master/gateway.h"
#include "net/peer.h"
#include "net/waverless.pb.h"

namespace waverless::meta {
class AppRegistry;
class RaftLog;
struct DeployedApp;
}  // namespace waverless::meta

namespace waverless::cluster {

class Peers;

struct AppShipperDeps {
  const ClusterConfig& config;
  Peers& peers;
  meta::AppRegistry& registry;
  meta::RaftLog* raft;  // the meta raft group; null on nodes outside it
  std::filesystem::path scratch_dir;
  std::filesystem::path cache_dir;  // the engine's compiled-object cache
  // The node holding the master role now (Membership::master()).
  std::function<std::optional<uint32_t>()> master;
  // Whether the membership view has the node alive: a push to a dead or
  // paused node would only hold the deploy up; it syncs when it is back.
  std::function<bool(uint32_t)> alive;
};

class AppShipper : public master::Deployer {
 public:
  AppShipper(uint32_t self, AppShipperDeps deps);
  ~AppShipper() override;

  // A meta worker starts installing what the raft log records.
  absl::Status start();
  void stop();  // idempotent

  // master::Deployer: on the master, compile, ship, record; elsewhere, hand
  // the package to the master and wait until it is installed here too.
  absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> deploy(
      const std::string& name, const std::filesystem::path& dir) override;
  absl::Status remove(const std::string& name) override;

  // The RPCs other nodes send (net::PeerHandler's).
  net::pb::Ack installApp(const net::pb::AppPackage& package);
  absl::StatusOr<net::pb::AppPackage> fetchApp(const std::string& name);
  net::pb::Ack removeApp(const std::string& name, net::Removal scope);
  net::pb::Ack metaPut(const net::pb::MetaEntry& entry);

  // The raft log applied a change (RaftLog::onApply: the loop thread; must
  // not block).
  void onMetaApply(const std::string& key, const std::optional<std::string>& value);
  // The app versions in the master's heartbeat reply; ignored by nodes that
  // take them from the raft log.
  void onMasterApps(const std::map<std::string, std::string>& wanted);

  // The replicated metadata (meta nodes): {"leader":..,"apps":{name:version}}.
  std::string metaJson();

 private:
  bool isMaster() const { return deps_.master() == self_->id; }
  // The master, waited for while there is none (an election takes a second
  // or two). Unavailable after `limit`.
  absl::StatusOr<uint32_t> awaitMaster(std::chrono::milliseconds limit) const;
  // Hands a deploy or removal to the master with `call`, and to the next master while the one it
  // reached has died (Unavailable) or lost the role (FailedPrecondition), for up to 30 s. Any other
  // error is the master's answer.
  enum class Forwarded { kDone, kSelfIsMaster };  // the latter: elected meanwhile, do it here
  absl::StatusOr<Forwarded> forwardToMaster(
      const std::function<absl::Status(net::PeerClient&)>& call);
  // Installs every wanted version this node does not have.
  void syncApps(const std::map<std::string, std::string>& wanted);
  void metaSyncLoop(std::stop_token st);
  // Records the desired version of an app (empty: removed) in the raft map,
  // through the leader. A no-op when the cluster has no meta nodes.
  absl::Status recordApp(const std::string& name, const std::string& version);
  absl::StatusOr<net::pb::AppPackage> packageOf(const meta::DeployedApp& app);
  absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> installPackage(
      const net::pb::AppPackage& package);
  void distribute(const std::string& name);
  // The master's part of a removal: here, in the raft record, then on every other node.
  absl::Status removeEverywhere(const std::string& name);

  const NodeConfig* self_;
  AppShipperDeps deps_;
  std::atomic<uint64_t> install_seq_{0};
  std::mutex install_mu_;  // one app install at a time

  std::mutex sync_mu_;
  std::condition_variable_any sync_cv_;
  bool sync_pending_ ABSL_GUARDED_BY(sync_mu_) = false;
  std::set<std::string> removals_ ABSL_GUARDED_BY(sync_mu_);  // committed erases
  std::jthread meta_sync_;
};

}  // namespace waverless::cluster
