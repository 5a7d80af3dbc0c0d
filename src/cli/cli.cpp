#include "cli/cli.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "http/http_client.h"
#include "master/package.h"
#include "node/node.h"
#include "toolchain/guest_builder.h"

namespace waverless::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* kHelp = R"(usage: waverless <command> [options]

  dev [--addr HOST:PORT] [--data DIR] [--apps DIR] [--fsync] [--max-body BYTES]
      [--cache DIR] [--http-threads N] [--workers N]
        run a whole cluster (meta, master, worker) in this process; HTTP on PORT+1
        (default --addr 127.0.0.1:2500, so http://127.0.0.1:2501)
  node --config cluster.yaml --id N [--data DIR] [--apps DIR] [--cache DIR] [--max-body BYTES]
        run node N of a cluster: RPC on its addr, HTTP on port+1
    dev and node also take:
      --token-file PATH             admin token file (default DIR/admin.token; made if
                                    missing, mode 0600; the nodes of a cluster share one)
      --tls-cert FILE --tls-key FILE  serve HTTPS instead of HTTP (PEM)
      --metrics-addr HOST:PORT      serve /metrics there, without a token (then /metrics
                                    on the main port needs the admin token)
      --memory-budget SIZE          linear memory of all instances, running or idle
                                    (default 4GiB; e.g. 512MiB): see docs/limits.md
  new TEMPLATE DIR [--name APP]   start an app in DIR from a template (`waverless new`
                                  lists them: c, cpp, ...)
  build DIR                       compile DIR's C/C++ sources to DIR/app.wasm
  deploy DIR [--name APP]         build if stale, then deploy DIR (app.yaml, app.wasm, files/);
                                  prints a new `auth: key` app's invoke key (shown once)
  invoke APP [FN] [--data TEXT|@FILE] [--key KEY]
                                  call APP's http_app function (or FN) and print the output;
                                  --key (or $WAVERLESS_APP_KEY): an `auth: key` app's key
  apps [--output table|json|name] list deployed apps
  logs APP [--limit N] [--follow] [--output json]
                                  recent function output of APP; --follow (-f) keeps
                                  printing new entries (JSON Lines with --output json)
  status [--output json]          the node and, in a cluster, every node at a glance
                                  (exits 1 when a node is down)
  delete APP                      remove APP and its keys
  key APP                         make a new invoke key for APP (the old one stops working)
  load APP [FN] [--rate R] [--duration S] [--arrival poisson|constant|burst]
       [--burst N --period-ms P] [--trace FILE] [--connections N] [--data TEXT|@FILE] [--method M]
       [--key KEY] [--output json]
                                  an open-loop load (latency from each request's scheduled
                                  time); prints counts, throughput and latency percentiles,
                                  or with --output json also the per-second timeline and CDF;
                                  --trace: req/s per second, one number a line
  completion bash                 shell completion: source <(waverless completion bash)

  --to URL         node to talk to (default http://127.0.0.1:2501; https:// too)
  --insecure       https: do not verify the node's certificate
  --ca FILE        https: trust this CA certificate (PEM)
  admin token (every command but new, build and invoke): $WAVERLESS_TOKEN, else the
  file --token-file PATH, else DIR/admin.token with DIR from --data (default waverless-data)
  exit status: 0 done, 1 failed (the reason is printed), 2 wrong usage
)";

// A folder the user named that is not there: said plainly, before the
// toolchain would report it as "no C/C++ sources".
int missingFolder(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return 0;
  if (fs::exists(dir, ec)) return fail(dir.string() + " is not a folder");
  return fail("no such folder: " + dir.string());
}

// Runs a node until SIGINT/SIGTERM.
int serve(const node::NodeOptions& o) {
  // The signals are taken by sigwait below, on this thread only; block them
  // before any other thread exists so none of them receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  node::Node n(o);
  absl::Status st = n.start();
  if (!st.ok()) {
    n.stop();
    return fail(std::string(st.message()));
  }
  fprintf(stderr, "level=info msg=\"serving\" node=%u http=%s:%u data=%s\n", o.node_id,
          o.cluster_config.empty() ? o.http_address.c_str() : "*", n.httpPort(),
          o.data_dir.c_str());
  int sig = 0;
  sigwait(&set, &sig);
  fprintf(stderr, "level=info msg=\"stopping\" signal=%d\n", sig);
  n.stop();
  return 0;
}

// The flags dev and node share: token file, TLS, metrics listener.
void serverSecurity(const Args& a, node::NodeOptions& o) {
  o.token_file = a.get("token-file");
  o.tls_cert_file = a.get("tls-cert");
  o.tls_key_file = a.get("tls-key");
  o.metrics_address = a.get("metrics-addr");
}

// --max-body: bytes, > 0. False on a bad value (strtoull alone would make "64M" a 64-byte limit).
bool maxBody(const Args& a, node::NodeOptions& o) {
  if (!a.has("max-body")) return true;
  std::string v = a.get("max-body");
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end != '\0' || n == 0) return false;
  o.max_body_bytes = static_cast<size_t>(n);
  return true;
}

// --memory-budget: bytes, or a number with MiB/GiB. False on a bad value.
bool memoryBudget(const Args& a, node::NodeOptions& o) {
  if (!a.has("memory-budget")) return true;
  std::string v = a.get("memory-budget");
  size_t unit = 1;
  if (v.ends_with("MiB")) unit = size_t{1} << 20;
  if (v.ends_with("GiB")) unit = size_t{1} << 30;
  if (unit != 1) v.resize(v.size() - 3);
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n == 0 || n > (size_t{1} << 50) / unit) return false;
  o.memory_budget_bytes = static_cast<size_t>(n) * unit;
  return o.memory_budget_bytes >= (size_t{16} << 20);
}

int runDev(const Args& a) {
  std::string addr = a.get("addr", "127.0.0.1:2500");
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return usageError("--addr wants HOST:PORT");
  node::NodeOptions o;
  o.http_address = addr.substr(0, colon);
  int port = std::atoi(addr.c_str() + colon + 1);
  if (port <= 0 || port >= 65535) return usageError("--addr: bad port");
  o.http_port = static_cast<uint16_t>(port + 1);
  o.data_dir = a.get("data", "waverless-data");
  o.apps_dir = a.get("apps", "");
  o.cache_dir = a.get("cache", "");
  o.fsync_writes = a.has("fsync");
  if (a.has("http-threads")) {
    // Dedicated HTTP threads instead of serving on the executor's.
    o.io_threads = std::max(1, std::atoi(a.get("http-threads").c_str()));
    o.share_io_threads = false;
  }
  if (a.has("workers")) o.executor_threads = std::max(1, std::atoi(a.get("workers").c_str()));
  if (!maxBody(a, o)) return usageError("--max-body wants a number of bytes greater than 0");
  serverSecurity(a, o);
  if (!memoryBudget(a, o)) return usageError("--memory-budget wants a size of at least 16MiB");
  return serve(o);
}

// One node of a cluster described by cluster.yaml.
int runNode(const Args& a) {
  node::NodeOptions o;
  o.cluster_config = a.get("config");
  if (o.cluster_config.empty() || !a.has("id"))
    return usageError("node --config cluster.yaml --id N");
  o.node_id = static_cast<uint32_t>(std::atoi(a.get("id").c_str()));
  o.data_dir = a.get("data", "waverless-data-" + a.get("id"));
  o.apps_dir = a.get("apps", "");
  o.cache_dir = a.get("cache", "");
  o.fsync_writes = a.has("fsync");
  if (a.has("http-threads")) o.io_threads = std::max(1, std::atoi(a.get("http-threads").c_str()));
  if (a.has("workers")) o.executor_threads = std::max(1, std::atoi(a.get("workers").c_str()));
  if (!maxBody(a, o)) return usageError("--max-body wants a number of bytes greater than 0");
  serverSecurity(a, o);
  if (!memoryBudget(a, o)) return usageError("--memory-budget wants a size of at least 16MiB");
  return serve(o);
}

// A deploy or key rotation answer's new invoke key, pointed out: it is not
// shown again.
void printNewKey(const std::string& app, const std::string& json) {
  constexpr std::string_view kField = "\"invoke_key\":\"";
  auto at = json.find(kField);
  if (at == std::string::npos) return;
  auto from = at + kField.size();
  auto end = json.find('"', from);
  if (end == std::string::npos) return;
  fprintf(stderr,
          "invoke key of %s (shown once; send it as `Authorization: Bearer <key>` or "
          "`waverless invoke %s --key <key>`):\n%s\n",
          app.c_str(), app.c_str(), json.substr(from, end - from).c_str());
}

int runBuild(const fs::path& dir) {
  if (int rc = missingFolder(dir); rc != 0) return rc;
  toolchain::BuildOptions b;
  b.sdk_dir = toolchain::defaultSdkDir();
  b.progress = [](const std::string& s) { fprintf(stderr, "%s\n", s.c_str()); };
  absl::Status st = toolchain::buildApp(dir, b);
  if (!st.ok()) return fail(std::string(st.message()));
  fprintf(stderr, "built %s\n", (dir / "app.wasm").c_str());
  return 0;
}

int runDeploy(const Args& a, const Client& c) {
  const std::string& to = c.to;
  if (a.positional.size() < 2) return usageError("deploy DIR [--name APP]");
  fs::path dir = fs::absolute(a.positional[1]).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  if (int rc = missingFolder(dir); rc != 0) return rc;
  std::string name = a.get("name", dir.filename().string());
  if (toolchain::needsBuild(dir)) {
    if (int rc = runBuild(dir); rc != 0) return rc;
  }
  auto tar = master::packApp(dir);
  if (!tar.ok()) return fail(std::string(tar.status().message()));
  fprintf(stderr, "deploying %s (%zu bytes) to %s; compiling on the node...\n", name.c_str(),
          tar->size(), to.c_str());
  auto r = http::fetch("POST", to + "/api/apps?name=" + name, *tar,
                       c.with(c.admin.token, "application/x-tar", std::chrono::minutes(10)));
  if (!r.ok()) return fail(unreachable(c, r.status()));
  if (r->status == 401 || r->status == 403) return fail(refusal(r->status, true, c));
  if (r->status != 200)
    return fail("deploy failed (" + std::to_string(r->status) + "): " + r->body);
  printf("%s\n", r->body.c_str());
  printNewKey(name, r->body);
  return 0;
}

int simple(const Client& c, const std::string& method, const std::string& path,
           const std::string& body = "", bool admin = true) {
  auto r = http::fetch(method, c.to + path, body,
                       c.with(admin ? c.admin.token : c.app_key, "application/octet-stream",
                              std::chrono::seconds(120)));
  if (!r.ok()) return fail(unreachable(c, r.status()));
  if (r->status == 401 || r->status == 403) {
    fprintf(stderr, "%s", r->body.c_str());
    return fail(refusal(r->status, admin, c) + " (HTTP " + std::to_string(r->status) + ")");
  }
  fwrite(r->body.data(), 1, r->body.size(), r->status == 200 ? stdout : stderr);
  if (!r->body.empty() && r->body.back() != '\n' && r->status == 200) printf("\n");
  return r->status == 200 ? 0 : (fprintf(stderr, "(HTTP %d)\n", r->status), 1);
}

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
    fputs(kHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? kUsage : 0;
  }
  std::string cmd = argv[1];
  Args a = parse(argc, argv, 1);
  Client client = clientOf(a);
  if (cmd == "dev") return runDev(a);
  if (cmd == "node") return runNode(a);
  if (cmd == "new") return runNew(a);
  if (cmd == "completion") return runCompletion(a);
  if (cmd == "build") {
    if (a.positional.size() < 2) return usageError("build DIR");
    return runBuild(a.positional[1]);
  }
  if (cmd == "deploy") return runDeploy(a, client);
  if (cmd == "invoke") {
    if (a.positional.size() < 2) return usageError("invoke APP [FN] [--data TEXT|@FILE]");
    std::string data = a.get("data");
    if (data.starts_with("@")) {
      std::ifstream f(data.substr(1), std::ios::binary);
      if (!f) return fail("cannot read " + data.substr(1));
      data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    std::string path = "/" + a.positional[1];
    if (a.positional.size() > 2) path += "/" + a.positional[2];
    return simple(client, "POST", path, data, /*admin=*/false);
  }
  if (cmd == "apps") return runApps(a, client);
  if (cmd == "logs") return runLogs(a, client);
  if (cmd == "status") return runStatus(a, client);
  if (cmd == "load") return runLoad(a, client);
  if (cmd == "delete") {
    if (a.positional.size() < 2) return usageError("delete APP");
    return simple(client, "DELETE", "/api/apps/" + a.positional[1]);
  }
  if (cmd == "key") {
    if (a.positional.size() < 2) return usageError("key APP");
    auto r = http::fetch(
        "POST", client.to + "/api/apps/" + a.positional[1] + "/key", "",
        client.with(client.admin.token, "application/octet-stream", std::chrono::minutes(5)));
    if (!r.ok()) return fail(unreachable(client, r.status()));
    if (r->status == 401 || r->status == 403) return fail(refusal(r->status, true, client));
    if (r->status != 200) return fail("key failed (" + std::to_string(r->status) + "): " + r->body);
    printf("%s\n", r->body.c_str());
    printNewKey(a.positional[1], r->body);
    return 0;
  }
  return usageError("unknown command '" + cmd + "'");
}

}  // namespace waverless::cli
