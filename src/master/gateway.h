// The HTTP face of a node: routes /<app>[/<path>] to the app's function,
// and serves the control API (/api/apps, /healthz, /metrics) and the web
// console (/ui/, console.h).
//
// Authentication: every /api/* call needs `Authorization: Bearer <admin
// token>` (401 without, 403 with another); an `auth: key` app's routes need
// its invoke key the same way. /healthz is open, and /metrics too unless a
// separate metrics listener serves it (metricsHandler()).
//
// Owns: routing and the deploy queue. Must not: execute functions (the
// RequestRunner does) or parse app.yaml (the registry does).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "auth/auth.h"
#include "http/http_server.h"
#include "master/console.h"
#include "master/job_queue.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "worker/app_logs.h"
#include "worker/request_runner.h"

namespace waverless::master {

// Where an HTTP request's function runs: here (single node) or on the node a
// cluster's scheduler picks.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // cancel: the caller's scope (the client went away); may be null.
  virtual void dispatch(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                        std::string body, absl::AnyInvocable<void(worker::RequestOutcome)> done,
                        std::shared_ptr<common::CancelScope> cancel = nullptr) = 0;
  // Whether dispatchStream may be used: the function would run on this node
  // and can take its body while it still arrives.
  virtual bool canStream() const { return false; }
  virtual void dispatchStream(std::shared_ptr<const meta::DeployedApp> /*app*/,
                              const app::FnSpec& /*fn*/, std::shared_ptr<http::BodyStream> /*body*/,
                              absl::AnyInvocable<void(worker::RequestOutcome)> done,
                              std::shared_ptr<common::CancelScope> /*cancel*/ = nullptr) {
    worker::RequestOutcome o;
    o.status = absl::InternalError("this dispatcher cannot stream request bodies");
    o.http_status = 500;
    done(std::move(o));
  }
};

// How a deploy reaches the nodes: this registry only, or the whole cluster.
class Deployer {
 public:
  virtual ~Deployer() = default;
  virtual absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> deploy(
      const std::string& name, const std::filesystem::path& dir) = 0;
  virtual absl::Status remove(const std::string& name) = 0;
};

// The single-node versions.
class LocalDispatcher : public Dispatcher {
 public:
  explicit LocalDispatcher(worker::RequestRunner& runner) : runner_(runner) {}
  void dispatch(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                std::string body, absl::AnyInvocable<void(worker::RequestOutcome)> done,
                std::shared_ptr<common::CancelScope> cancel = nullptr) override {
    runner_.run(std::move(app), fn, std::move(body), std::move(done), nullptr, std::move(cancel));
  }
  bool canStream() const override { return true; }
  void dispatchStream(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                      std::shared_ptr<http::BodyStream> body,
                      absl::AnyInvocable<void(worker::RequestOutcome)> done,
                      std::shared_ptr<common::CancelScope> cancel = nullptr) override {
    runner_.run(std::move(app), fn, "", std::move(done), std::move(body), std::move(cancel));
  }

 private:
  worker::RequestRunner& runner_;
};

class LocalDeployer : public Deployer {
 public:
  explicit LocalDeployer(meta::AppRegistry& registry) : registry_(registry) {}
  absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> deploy(
      const std::string& name, const std::filesystem::path& dir) override {
    return registry_.deploy(name, dir);
  }
  absl::Status remove(const std::string& name) override { return registry_.remove(name); }

 private:
  meta::AppRegistry& registry_;
};

class Gateway : public http::Handler {
 public:
  Gateway(meta::AppRegistry& registry, Dispatcher& dispatcher, Deployer& deployer,
          worker::AppLogs& logs, metrics::Registry& metrics, std::filesystem::path scratch_dir,
          auth::Digest admin_token);

  // Cluster mode: GET /api/nodes answers with this (JSON).
  void setNodesView(std::function<std::string()> view) { nodes_view_ = std::move(view); }
  // Cluster mode: GET /api/meta answers with this (JSON).
  void setMetaView(std::function<std::string()> view) { meta_view_ = std::move(view); }
  ~Gateway() override;

  void start();
  void stop();
  void setServing(bool serving) { serving_ = serving; }
  // Serves /metrics only, without a token: for a listener of its own
  // (--metrics-addr). Once asked for, /metrics on this handler needs the
  // admin token like /api/*.
  http::Handler& metricsHandler();

  void handle(http::Request request, http::Responder respond) override;
  // A large body for a function declared `body: stream` that runs here.
  bool streamBody(const http::Request& head) override;

 private:
  // The function a request path reaches, or the error to answer (made
  // only when there is one: a Response allocates its content type).
  struct Route {
    std::shared_ptr<const meta::DeployedApp> app;
    const app::FnSpec* fn = nullptr;
    std::optional<http::Response> error;
  };
  Route route(const std::string& method, const std::string& path) const;
  void invoke(http::Request req, http::Responder respond);
  void deploy(http::Request req, http::Responder respond);
  void rotateKey(const std::string& name, http::Responder respond);
  void serveMetrics(http::Responder respond);
  // The answer to a request without the admin token, or nullopt when it has it.
  std::optional<http::Response> deniedAdmin(const http::Request& req) const;
  // The same for an `auth: key` app's invoke key.
  static std::optional<http::Response> deniedInvoke(const http::Request& req,
                                                    const meta::DeployedApp& app);

  class MetricsOnly : public http::Handler {
   public:
    explicit MetricsOnly(Gateway& g) : gateway_(g) {}
    void handle(http::Request request, http::Responder respond) override;

   private:
    Gateway& gateway_;
  };

  meta::AppRegistry& registry_;
  Dispatcher& dispatcher_;
  Deployer& app_deployer_;
  std::function<std::string()> nodes_view_;
  std::function<std::string()> meta_view_;
  worker::AppLogs& logs_;
  metrics::Registry& metrics_;
  std::filesystem::path scratch_dir_;
  std::atomic<bool> serving_{false};
  const auth::Digest admin_token_;
  std::atomic<bool> metrics_need_token_{false};
  std::unique_ptr<MetricsOnly> metrics_only_;
  metrics::Counter* http_requests_;
  metrics::Counter* http_errors_;
  // /ui/ and /api/metrics/history (console.h).
  std::unique_ptr<Console> console_;

  // Deploys run one at a time on their own thread; quick control work
  // (/metrics, deletes) on another, so neither blocks an I/O thread nor
  // waits behind a compile.
  JobQueue deploys_;
  JobQueue control_;
  std::atomic<uint64_t> deploy_seq_{0};
};

}  // namespace waverless::master
