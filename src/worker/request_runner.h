// Runs one request of an app: its entry function and, transitively, every
// function a kv_set triggers (the original's "sub waiters"). The request
// completes when all of them have finished; any failure fails it.
//
// Owns: per-request trigger trees and the HostServices guests talk to (KV
// access checks, triggers, wait_triggered). Must not: parse HTTP or route.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/functional/any_invocable.h"
#include "app/app_manifest.h"
#include "common/cancel_scope.h"
#include "common/timer_queue.h"
#include "http/body_stream.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "wasm/engine.h"
#include "worker/app_logs.h"
#include "worker/cluster_hooks.h"
#include "worker/cluster_kv.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::worker {

struct RequestOutcome {
  absl::Status status;  // of the entry function, or of the first failed trigger
  int http_status = 200;
  std::string body;
  std::string request_id;
  int retry_after_s = 0;  // > 0: the app is over its quota; answer Retry-After
};

// The arguments of fn when a set of key triggers it.
std::vector<std::string> triggerArgs(const app::FnSpec& fn, std::string_view key);

class RequestRunner {
 public:
  RequestRunner(wasm::Engine& engine, kv::KvStore& kv, metrics::Registry& metrics, AppLogs& logs);
  ~RequestRunner();

  // Runs fn (which the app's manifest declares) with the HTTP body. A
  // function declared `body: stream` reads it with wl_body_read: from
  // `stream` while it still arrives, else from http_text.
  //
  // done is called exactly once: when the tree has finished, or at once
  // when the request ends early (its deadline, a limit, the entry failing,
  // `scope` cancelled by the caller, e.g. because the client went away).
  // Ending early cancels the rest of the tree: nothing of it starts later.
  void run(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
           std::string http_text, absl::AnyInvocable<void(RequestOutcome)> done,
           std::shared_ptr<http::BodyStream> stream = nullptr,
           std::shared_ptr<common::CancelScope> scope = nullptr);

  // Runs fn with args on this node as part of a request owned by another
  // node; done when fn and everything it triggered have finished, or when
  // `deadline` (what is left of that request's) passes. invocation_id: a
  // durable trigger's id, which fn reads as its wl_invocation_id and which
  // prefixes the ids of what it triggers, so that every run of the record
  // sees the same ids. depth: fn's in the whole tree, which its limits count.
  void runTriggered(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                    std::vector<std::string> args, std::string request_id,
                    absl::AnyInvocable<void(RequestOutcome)> done,
                    std::chrono::milliseconds deadline, std::string invocation_id = {},
                    uint32_t depth = 0);

  // Cluster mode: set once before serving; both null on a single node.
  void setCluster(ClusterHooks* cluster, ClusterKv* kv) {
    cluster_ = cluster;
    cluster_kv_ = kv;
    id_prefix_ = cluster != nullptr ? cluster->requestIdPrefix() : std::string();
  }

  uint64_t inflight() const { return inflight_.load(); }

  absl::Status start();  // the deadline timer
  void stop();           // idempotent

  struct Request;
  struct Invocation;
  class Host;

 private:
  // This app's invocations queued or running on this node, all requests.
  struct AppLoad {
    std::atomic<int64_t> in_flight{0};
  };
  struct FnMetrics {
    metrics::Counter* ok;
    metrics::Counter* failed;
    metrics::Counter* cold;
    metrics::Histogram* latency;
    AppLoad* load;
    // Moving average of its time on a CPU per call: an entry that computes
    // for long runs on the background threads, so it cannot hold up other
    // apps' requests served on the same connection thread.
    std::atomic<int64_t> avg_ns{0};
  };
  FnMetrics& fnMetrics(const std::string& app, const std::string& fn);
  void start(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
             std::vector<std::string> args, std::string request_id,
             absl::AnyInvocable<void(RequestOutcome)> done,
             std::shared_ptr<http::BodyStream> body = nullptr,
             std::shared_ptr<common::CancelScope> scope = nullptr,
             std::optional<std::chrono::milliseconds> deadline = std::nullopt,
             std::string tree_id = {}, std::string root_id = {}, uint32_t depth = 0);
  // Starts fn as part of req; an error (a limit hit, the request over) means
  // it was not started and the request has been failed.
  absl::Status launch(const std::shared_ptr<Request>& req, Invocation* parent,
                      const app::FnSpec& fn, std::vector<std::string> args,
                      std::string_view key = {});
  // launch()'s first half: checks req's limits and enters fn in its tree.
  absl::StatusOr<Invocation*> admit(const std::shared_ptr<Request>& req, Invocation* parent,
                                    const app::FnSpec& fn);
  // Durable triggers (request_host.cpp): the functions a set of a replicated
  // key fires are admitted, and their ids chosen, before the write is
  // proposed with their records; once it has committed they run through the
  // cluster, else they are withdrawn.
  struct Durable {
    Invocation* inv;
    TriggerRecord record;
  };
  absl::StatusOr<std::vector<Durable>> admitTriggered(const std::shared_ptr<Request>& req,
                                                      Invocation* parent, std::string_view key);
  void startTriggered(const std::shared_ptr<Request>& req, std::vector<Durable> fired,
                      bool committed);
  // The guest-facing services of one invocation (request_host.cpp).
  std::unique_ptr<wasm::HostServices> makeHost(const std::shared_ptr<Request>& req,
                                               Invocation* inv);
  // ran_here: false for a remote outcome (the node that ran it counted it).
  void onDone(const std::shared_ptr<Request>& req, Invocation* inv, wasm::InvocationResult r,
              bool ran_here = true);
  void complete(const std::shared_ptr<Request>& req);
  // Ends the request now with `why`: cancels what is left of its tree and
  // answers, unless it has answered already.
  void fail(const std::shared_ptr<Request>& req, absl::Status why);
  void answer(const std::shared_ptr<Request>& req, RequestOutcome out);
  void logError(const Request& req, const std::string& fn, const std::string& msg);

  wasm::Engine& engine_;
  kv::KvStore& kv_;
  metrics::Registry& metrics_;
  AppLogs& logs_;
  ClusterHooks* cluster_ = nullptr;
  ClusterKv* cluster_kv_ = nullptr;
  std::string id_prefix_;  // of request ids: ClusterHooks::requestIdPrefix
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> inflight_{0};
  metrics::Counter* permission_denials_;
  metrics::Counter* deadline_cancels_;
  metrics::Counter* limit_failures_;
  metrics::Counter* quota_rejections_;
  common::TimerQueue deadlines_;
  std::mutex metrics_mu_;
  // Looked up by string_view on every invocation: no key is built.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using ByName = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
  struct AppEntry {
    std::unique_ptr<AppLoad> load = std::make_unique<AppLoad>();
    ByName<std::unique_ptr<FnMetrics>> fns;
  };
  ByName<AppEntry> apps_;  // by metrics_mu_
  std::mutex log_mu_;
  struct LogBudget {
    int64_t window_start_ms = 0;
    uint32_t lines = 0;
    uint64_t suppressed = 0;
  };
  std::unordered_map<std::string, LogBudget> log_budget_;  // by log_mu_
};

}  // namespace waverless::worker
