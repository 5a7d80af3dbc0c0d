// The HTTP face of a node: routes /<app>[/<path>] to the app's function,
// and serves the control API (/api/apps, /healthz, /metrics).
//
// Owns: routing and the deploy queue. Must not: execute functions (the
// RequestRunner does) or parse app.yaml (the registry does).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "http/http_server.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "worker/app_logs.h"
#include "worker/request_runner.h"

namespace waverless::master {

class Gateway : public http::Handler {
 public:
  Gateway(meta::AppRegistry& registry, worker::RequestRunner& runner, worker::AppLogs& logs,
          metrics::Registry& metrics, std::filesystem::path scratch_dir);
  ~Gateway() override;

  void start();
  void stop();
  void setServing(bool serving) { serving_ = serving; }

  void handle(http::Request request, http::Responder respond) override;

 private:
  void invoke(const std::string& app_name, const std::string& sub_path, http::Request req,
              http::Responder respond);
  void deploy(http::Request req, http::Responder respond);
  void deployLoop(std::stop_token st);

  meta::AppRegistry& registry_;
  worker::RequestRunner& runner_;
  worker::AppLogs& logs_;
  metrics::Registry& metrics_;
  std::filesystem::path scratch_dir_;
  std::atomic<bool> serving_{false};
  metrics::Counter* http_requests_;
  metrics::Counter* http_errors_;

  // Deploys run one at a time on their own thread, never on an I/O thread.
  std::mutex deploy_mu_;
  std::condition_variable_any deploy_cv_;
  std::deque<std::function<void()>> deploy_jobs_;  // guarded by deploy_mu_
  std::jthread deployer_;
  std::atomic<uint64_t> deploy_seq_{0};
};

// Extracts a tar archive (plain or gzip) into dir; refuses absolute paths,
// "..", links and device files.
absl::Status extractTar(const std::string& archive, const std::filesystem::path& dir);

}  // namespace waverless::master
