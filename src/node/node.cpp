#include "node/node.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "auth/auth.h"
#include "cluster/cluster.h"
#include "cluster/cluster_config.h"
#include "http/http_server.h"
#include "kv/kv_store.h"
#include "master/gateway.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "toolchain/guest_builder.h"
#include "wasm/engine.h"
#include "worker/app_logs.h"
#include "worker/request_runner.h"

namespace waverless::node {

namespace fs = std::filesystem;

struct Node::Impl {
  NodeOptions options;
  metrics::Registry metrics;
  worker::AppLogs logs;
  std::unique_ptr<kv::KvStore> kv;
  std::unique_ptr<wasm::Engine> engine;
  std::unique_ptr<meta::AppRegistry> registry;
  std::unique_ptr<worker::RequestRunner> runner;
  std::unique_ptr<master::Dispatcher> dispatcher;
  std::unique_ptr<master::Deployer> deployer;
  std::unique_ptr<cluster::Cluster> cluster;
  std::unique_ptr<master::Gateway> gateway;
  std::unique_ptr<http::HttpServer> server;
  std::unique_ptr<http::HttpServer> metrics_server;
  bool started = false;
  master::Deployer* deployer_for_apps = nullptr;

  void registerGauges();
  absl::StatusOr<auth::AdminToken> adminToken();
  absl::Status deployAppsDir();
};

void Node::Impl::registerGauges() {
  metrics.gauge("wl_instances", "Live wasm instances (busy + idle)",
                [this] { return double(engine->stats().instances_live); });
  metrics.gauge("wl_instances_idle", "Idle pooled wasm instances",
                [this] { return double(engine->stats().instances_idle); });
  metrics.gauge("wl_instance_bytes", "Linear memory + instance state of all instances",
                [this] { return double(engine->stats().instance_bytes); });
  metrics.gauge("wl_instance_evictions", "Idle instances evicted for the memory budget",
                [this] { return double(engine->stats().evictions); });
  metrics.gauge("wl_instances_discarded_total",
                "Instances freed after a call instead of pooled (allocation refused, grew "
                "large, instance: fresh)",
                [this] { return double(engine->stats().discarded); });
  metrics.gauge("wl_background_queued", "Triggered or heavy invocations waiting for a thread",
                [this] { return double(engine->stats().executor.queued_background); });
  metrics.gauge("wl_fibers_parked", "Invocations waiting in a host call",
                [this] { return double(engine->stats().executor.parked_fibers); });
  metrics.gauge("wl_requests_inflight", "HTTP requests being executed",
                [this] { return double(runner->inflight()); });
  metrics.gauges("wl_kv_ops", "KV operations since start", [this] {
    auto s = kv->stats();
    return metrics::Registry::Samples{{{{"op", "get"}}, double(s.gets)},
                                      {{{"op", "set"}}, double(s.sets)},
                                      {{{"op", "delete"}}, double(s.deletes)},
                                      {{{"op", "scan"}}, double(s.scans)}};
  });
  metrics.gauges("wl_kv_bytes", "KV value bytes since start", [this] {
    auto s = kv->stats();
    return metrics::Registry::Samples{{{{"dir", "read"}}, double(s.bytes_read)},
                                      {{{"dir", "written"}}, double(s.bytes_written)}};
  });
  metrics.gauges("wl_app_compile_ms", "AOT compile time of each deployed app (0: from cache)",
                 [this] {
                   metrics::Registry::Samples out;
                   for (const auto& a : registry->list()) {
                     out.push_back({{{"app", a->name}}, a->compile_ms});
                   }
                   return out;
                 });
  metrics.gauge("wl_process_rss_bytes", "Resident memory of the node", [] {
    std::ifstream f("/proc/self/statm");
    long pages = 0, rss = 0;
    f >> pages >> rss;
    return double(rss) * 4096;
  });
}

// The token is shown once, when it is made, on stderr (the terminal of the
// user who started the node); afterwards only its path is.
absl::StatusOr<auth::AdminToken> Node::Impl::adminToken() {
  fs::path path =
      options.token_file.empty() ? options.data_dir / "admin.token" : options.token_file;
  bool created = false;
  auto token = auth::AdminToken::loadOrCreate(path, &created);
  if (!token.ok()) return token.status();
  if (created && isatty(STDERR_FILENO)) {
    fprintf(stderr, "admin token written to %s: %s\n", path.c_str(), token->secret().c_str());
  } else if (created) {
    // Not a terminal: a log file, which may be readable by others.
    fprintf(stderr, "admin token written to %s (read it there)\n", path.c_str());
  } else {
    fprintf(stderr, "level=info msg=\"admin token from %s\"\n", path.c_str());
  }
  return token;
}

absl::Status Node::Impl::deployAppsDir() {
  if (options.apps_dir.empty()) return absl::OkStatus();
  std::error_code ec;
  if (!fs::is_directory(options.apps_dir, ec)) {
    return absl::NotFoundError("--apps " + options.apps_dir.string() + " is not a folder");
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(options.apps_dir, ec)) {
    if (e.is_directory() && fs::exists(e.path() / "app.yaml")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  toolchain::BuildOptions build;
  build.sdk_dir = toolchain::defaultSdkDir();
  build.progress = [](const std::string& s) {
    fprintf(stderr, "level=info msg=\"%s\"\n", s.c_str());
  };
  for (const auto& d : dirs) {
    std::string name = d.filename().string();
    if (toolchain::needsBuild(d)) {
      absl::Status st = toolchain::buildApp(d, build);
      if (!st.ok()) return st;
    }
    fprintf(stderr, "level=info app=%s msg=\"deploying\"\n", name.c_str());
    auto app = deployer_for_apps->deploy(name, d);
    if (!app.ok()) return app.status();
    for (const auto& w : (*app)->manifest.warnings) {
      fprintf(stderr, "level=warn app=%s msg=\"%s\"\n", name.c_str(), w.c_str());
    }
    fprintf(stderr, "level=info app=%s version=%s compile_ms=%.0f msg=\"deployed\"\n", name.c_str(),
            (*app)->version.c_str(), (*app)->compile_ms);
  }
  return absl::OkStatus();
}

Node::Node(NodeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Node::~Node() { stop(); }

absl::Status Node::start() {
  Impl& m = *impl_;
  std::error_code ec;
  fs::create_directories(m.options.data_dir, ec);
  if (ec) return absl::InternalError(m.options.data_dir.string() + ": " + ec.message());

  auto admin = m.adminToken();
  if (!admin.ok()) return admin.status();

  kv::KvOptions kvo;
  kvo.dir = m.options.data_dir / "kv";
  kvo.durability =
      m.options.fsync_writes ? kv::Durability::kPowerLoss : kv::Durability::kProcessCrash;
  auto kv = kv::KvStore::open(kvo);
  if (!kv.ok()) return kv.status();
  m.kv = std::move(*kv);

  wasm::EngineOptions eo;
  eo.cache_dir =
      m.options.cache_dir.empty() ? m.options.data_dir / "module-cache" : m.options.cache_dir;
  eo.executor.threads = m.options.executor_threads;
  eo.memory_budget_bytes = m.options.memory_budget_bytes;
  m.engine = std::make_unique<wasm::Engine>(eo);
  if (auto st = m.engine->start(); !st.ok()) return st;

  m.registry = std::make_unique<meta::AppRegistry>(m.options.data_dir / "apps", *m.engine, *m.kv);
  if (auto st = m.registry->loadAll(); !st.ok()) return st;
  m.runner = std::make_unique<worker::RequestRunner>(*m.engine, *m.kv, m.metrics, m.logs);
  if (auto st = m.runner->start(); !st.ok()) return st;
  master::Dispatcher* dispatcher;
  master::Deployer* deployer;
  http::ServerOptions so;
  so.address = m.options.http_address;
  so.port = m.options.http_port;
  if (!m.options.cluster_config.empty()) {
    std::ifstream f(m.options.cluster_config);
    if (!f) return absl::NotFoundError("cannot read " + m.options.cluster_config.string());
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto cfg = cluster::parseClusterConfig(text, m.options.cluster_config.filename().string());
    if (!cfg.ok()) return cfg.status();
    const cluster::NodeConfig* self = cfg->find(m.options.node_id);
    if (self == nullptr) {
      return absl::InvalidArgumentError("--id " + std::to_string(m.options.node_id) +
                                        " is not in " + m.options.cluster_config.string());
    }
    auto http = self->httpBind();
    so.address = http.substr(0, http.rfind(':'));
    so.port = static_cast<uint16_t>(std::atoi(http.c_str() + http.rfind(':') + 1));
    fs::create_directories(m.options.data_dir / "tmp", ec);
    m.cluster = std::make_unique<cluster::Cluster>(
        std::move(*cfg), m.options.node_id,
        cluster::ClusterDeps{
            *m.registry, *m.runner, *m.kv, *m.engine, m.metrics, m.options.data_dir / "tmp",
            eo.cache_dir,
            // The nodes of a cluster share the admin token file; the raft ports prove a
            // secret derived from it (domain-separated, so neither reveals the other).
            auth::hexOf(auth::digestOf("waverless cluster secret v1:" + admin->secret()))});
    m.runner->setCluster(&m.cluster->dispatcher(), &m.cluster->kv());
    if (auto st = m.cluster->start(); !st.ok()) return st;
    dispatcher = &m.cluster->dispatcher();
    deployer = &m.cluster->shipper();
  } else {
    m.dispatcher = std::make_unique<master::LocalDispatcher>(*m.runner);
    m.deployer = std::make_unique<master::LocalDeployer>(*m.registry);
    dispatcher = m.dispatcher.get();
    deployer = m.deployer.get();
  }
  m.deployer_for_apps = deployer;
  m.gateway =
      std::make_unique<master::Gateway>(*m.registry, *dispatcher, *deployer, m.logs, m.metrics,
                                        m.options.data_dir / "tmp", admin->digest());
  if (m.cluster) {
    m.gateway->setNodesView([c = m.cluster.get()] { return c->membership().nodesJson(); });
    m.gateway->setMetaView([c = m.cluster.get()] { return c->shipper().metaJson(); });
  }
  m.gateway->start();
  m.registerGauges();

  so.max_body_bytes = m.options.max_body_bytes;
  so.io_threads = m.options.io_threads;
  if (m.options.share_io_threads) so.shared_contexts = m.engine->ioContexts();
  so.tls_cert_file = m.options.tls_cert_file.string();
  so.tls_key_file = m.options.tls_key_file.string();
  // First: once it exists, /metrics on the main listener needs the token.
  if (!m.options.metrics_address.empty()) {
    const std::string& a = m.options.metrics_address;
    auto colon = a.rfind(':');
    int port = colon == std::string::npos ? -1 : std::atoi(a.c_str() + colon + 1);
    if (port < 0 || port > 65535) {
      return absl::InvalidArgumentError("--metrics-addr " + a + ": want HOST:PORT");
    }
    http::ServerOptions mo;
    mo.address = a.substr(0, colon);
    mo.port = static_cast<uint16_t>(port);
    mo.max_body_bytes = 4096;
    mo.io_threads = 1;
    m.metrics_server = std::make_unique<http::HttpServer>(mo, m.gateway->metricsHandler());
    if (auto st = m.metrics_server->start(); !st.ok()) return st;
  }
  m.server = std::make_unique<http::HttpServer>(so, *m.gateway);
  if (auto st = m.server->start(); !st.ok()) return st;
  m.started = true;
  if (auto st = m.deployAppsDir(); !st.ok()) return st;
  m.gateway->setServing(true);
  return absl::OkStatus();
}

void Node::stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.started = false;
  m.gateway->setServing(false);
  m.server->stop();  // no new requests
  if (m.metrics_server) m.metrics_server->stop();
  m.gateway->stop();  // no deploys
  if (m.cluster) m.cluster->stop();
  m.engine->stop();  // finishes or cancels running invocations
  m.runner->stop();  // request deadlines: none can fire any more
}

uint16_t Node::httpPort() const { return impl_->server ? impl_->server->port() : 0; }

uint16_t Node::metricsPort() const {
  return impl_->metrics_server ? impl_->metrics_server->port() : 0;
}

}  // namespace waverless::node
