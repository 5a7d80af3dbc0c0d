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
#include <unordered_map>

#include "absl/functional/any_invocable.h"
#include "app/app_manifest.h"
#include "http/body_stream.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "wasm/engine.h"
#include "worker/app_logs.h"
#include "worker/cluster_hooks.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::worker {

struct RequestOutcome {
  absl::Status status;  // of the entry function, or of the first failed trigger
  int http_status = 200;
  std::string body;
  std::string request_id;
};

// absl status -> HTTP status, the one mapping used at the edge.
int httpStatus(const absl::Status& status);

class RequestRunner {
 public:
  RequestRunner(wasm::Engine& engine, kv::KvStore& kv, metrics::Registry& metrics, AppLogs& logs);
  ~RequestRunner();

  // Runs fn (which the app's manifest declares) with the HTTP body. A
  // function declared `body: stream` reads it with wl_body_read: from
  // `stream` while it still arrives, else from http_text.
  void run(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
           std::string http_text, absl::AnyInvocable<void(RequestOutcome)> done,
           std::shared_ptr<http::BodyStream> stream = nullptr);

  // Runs fn with args on this node as part of a request owned by another
  // node; done when fn and everything it triggered have finished.
  void runTriggered(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                    std::vector<std::string> args, std::string request_id,
                    absl::AnyInvocable<void(RequestOutcome)> done);

  // Cluster mode: set once before serving; null on a single node.
  void setCluster(ClusterHooks* cluster) { cluster_ = cluster; }

  uint64_t inflight() const { return inflight_.load(); }

  struct Request;
  struct Invocation;
  class Host;

 private:
  struct FnMetrics {
    metrics::Counter* ok;
    metrics::Counter* failed;
    metrics::Counter* cold;
    metrics::Histogram* latency;
  };
  FnMetrics& fnMetrics(const std::string& app, const std::string& fn);
  void start(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
             std::vector<std::string> args, std::string request_id,
             absl::AnyInvocable<void(RequestOutcome)> done,
             std::shared_ptr<http::BodyStream> body = nullptr);
  void launch(const std::shared_ptr<Request>& req, Invocation* parent, const app::FnSpec& fn,
              std::vector<std::string> args, std::string_view key = {});
  // ran_here: false for a remote outcome (the node that ran it counted it).
  void onDone(const std::shared_ptr<Request>& req, Invocation* inv, wasm::InvocationResult r,
              bool ran_here = true);
  void complete(const std::shared_ptr<Request>& req);

  wasm::Engine& engine_;
  kv::KvStore& kv_;
  metrics::Registry& metrics_;
  AppLogs& logs_;
  ClusterHooks* cluster_ = nullptr;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> inflight_{0};
  metrics::Counter* permission_denials_;
  std::mutex metrics_mu_;
  std::unordered_map<std::string, std::unique_ptr<FnMetrics>> fn_metrics_;  // by metrics_mu_
};

}  // namespace waverless::worker
