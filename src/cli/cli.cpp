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

#include "auth/auth.h"
#include "http/http_client.h"
#include "master/package.h"
#include "node/node.h"
#include "toolchain/guest_builder.h"

namespace waverless::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage = R"(usage: waverless <command> [options]

  dev [--addr HOST:PORT] [--data DIR] [--apps DIR] [--fsync] [--max-body BYTES]
      [--cache DIR] [--http-threads N] [--workers N]
        run a whole cluster (meta, master, worker) in this process; HTTP on PORT+1
        (default --addr 127.0.0.1:2500, so http://127.0.0.1:2501)
  node --config cluster.yaml --id N [--data DIR] [--apps DIR] [--cache DIR]
        run node N of a cluster: RPC on its addr, HTTP on port+1
    dev and node also take:
      --token-file PATH             admin token file (default DIR/admin.token; made if
                                    missing, mode 0600; the nodes of a cluster share one)
      --tls-cert FILE --tls-key FILE  serve HTTPS instead of HTTP (PEM)
      --metrics-addr HOST:PORT      serve /metrics there, without a token (then /metrics
                                    on the main port needs the admin token)
      --memory-budget SIZE          linear memory of all instances, running or idle
                                    (default 4GiB; e.g. 512MiB): see docs/limits.md
  build DIR                       compile DIR's C/C++ sources to DIR/app.wasm
  deploy DIR [--name APP]         build if stale, then deploy DIR (app.yaml, app.wasm, files/);
                                  prints a new `auth: key` app's invoke key (shown once)
  invoke APP [FN] [--data TEXT|@FILE] [--key KEY]
                                  call APP's http_app function (or FN) and print the output;
                                  --key (or $WAVERLESS_APP_KEY): an `auth: key` app's key
  apps                            list deployed apps
  logs APP [--limit N]            recent function output of APP
  delete APP                      remove APP and its keys
  key APP                         make a new invoke key for APP (the old one stops working)

  --to URL         node to talk to (default http://127.0.0.1:2501; https:// too)
  --insecure       https: do not verify the node's certificate
  --ca FILE        https: trust this CA certificate (PEM)
  admin token (every command but build and invoke): $WAVERLESS_TOKEN, else the file
  --token-file PATH, else DIR/admin.token with DIR from --data (default waverless-data)
)";

struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
  std::string get(const std::string& k, const std::string& def = "") const {
    for (const auto& [f, v] : flags) {
      if (f == k) return v;
    }
    return def;
  }
  bool has(const std::string& k) const {
    for (const auto& [f, v] : flags) {
      if (f == k) return true;
    }
    return false;
  }
};

Args parse(int argc, char** argv, int from) {
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string s = argv[i];
    if (s.starts_with("--")) {
      auto eq = s.find('=');
      if (eq != std::string::npos) {
        a.flags.emplace_back(s.substr(2, eq - 2), s.substr(eq + 1));
      } else if (s == "--fsync" || s == "--insecure") {
        a.flags.emplace_back(s.substr(2), "1");
      } else if (i + 1 < argc) {
        a.flags.emplace_back(s.substr(2), argv[++i]);
      } else {
        a.flags.emplace_back(s.substr(2), "");
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

int fail(const std::string& msg) {
  fprintf(stderr, "waverless: %s\n", msg.c_str());
  return 1;
}

// Where a client's admin token comes from, and the token.
struct Credentials {
  std::string token;  // empty: none found
  std::string source;
};

Credentials adminCredentials(const Args& a) {
  Credentials c;
  if (const char* env = getenv("WAVERLESS_TOKEN"); env != nullptr && *env != '\0') {
    c.token = env;
    c.source = "$WAVERLESS_TOKEN";
    return c;
  }
  fs::path path = a.has("token-file") ? fs::path(a.get("token-file"))
                                      : fs::path(a.get("data", "waverless-data")) / "admin.token";
  c.source = path.string();
  auto t = auth::AdminToken::read(path);
  if (t.ok()) c.token = std::move(*t);
  return c;
}

// How a client call is made: where to, with which credentials.
struct Client {
  std::string to;
  http::FetchOptions options;
  Credentials admin;
  std::string app_key;  // for invoke

  http::FetchOptions with(const std::string& bearer, const std::string& content_type,
                          std::chrono::milliseconds timeout) const {
    http::FetchOptions o = options;
    o.content_type = content_type;
    o.timeout = timeout;
    if (!bearer.empty()) o.headers.emplace_back("Authorization", "Bearer " + bearer);
    return o;
  }
};

Client clientOf(const Args& a) {
  Client c;
  c.to = a.get("to", "http://127.0.0.1:2501");
  c.options.insecure = a.has("insecure");
  c.options.ca_file = a.get("ca");
  c.admin = adminCredentials(a);
  c.app_key = a.get("key");
  if (const char* env = getenv("WAVERLESS_APP_KEY"); c.app_key.empty() && env != nullptr) {
    c.app_key = env;
  }
  return c;
}

// What to tell the user when the node refused the credentials.
std::string refusal(int status, bool admin, const Client& c) {
  if (admin) {
    if (c.admin.token.empty()) {
      return "the node wants its admin token, and none was found in " + c.admin.source +
             " (set $WAVERLESS_TOKEN, --token-file PATH or --data DIR)";
    }
    return std::string(status == 401 ? "the node wants its admin token" : "the node refused") +
           " the admin token from " + c.admin.source +
           " (a node started with another --data or --token-file has another token)";
  }
  if (c.app_key.empty()) return "this app needs its invoke key: --key KEY or $WAVERLESS_APP_KEY";
  return "the node refused the invoke key given with --key or $WAVERLESS_APP_KEY";
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
  if (colon == std::string::npos) return fail("--addr wants HOST:PORT");
  node::NodeOptions o;
  o.http_address = addr.substr(0, colon);
  int port = std::atoi(addr.c_str() + colon + 1);
  if (port <= 0 || port >= 65535) return fail("--addr: bad port");
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
  if (a.has("max-body")) o.max_body_bytes = std::strtoull(a.get("max-body").c_str(), nullptr, 10);
  serverSecurity(a, o);
  if (!memoryBudget(a, o)) return fail("--memory-budget wants a size of at least 16MiB");
  return serve(o);
}

// One node of a cluster described by cluster.yaml.
int runNode(const Args& a) {
  node::NodeOptions o;
  o.cluster_config = a.get("config");
  if (o.cluster_config.empty() || !a.has("id")) return fail("node --config cluster.yaml --id N");
  o.node_id = static_cast<uint32_t>(std::atoi(a.get("id").c_str()));
  o.data_dir = a.get("data", "waverless-data-" + a.get("id"));
  o.apps_dir = a.get("apps", "");
  o.cache_dir = a.get("cache", "");
  o.fsync_writes = a.has("fsync");
  if (a.has("http-threads")) o.io_threads = std::max(1, std::atoi(a.get("http-threads").c_str()));
  if (a.has("workers")) o.executor_threads = std::max(1, std::atoi(a.get("workers").c_str()));
  serverSecurity(a, o);
  if (!memoryBudget(a, o)) return fail("--memory-budget wants a size of at least 16MiB");
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
  if (a.positional.size() < 2) return fail("deploy DIR");
  fs::path dir = fs::absolute(a.positional[1]).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
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
  if (!r.ok()) return fail(std::string(r.status().message()));
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
  if (!r.ok()) return fail(std::string(r.status().message()));
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
    fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  Args a = parse(argc, argv, 1);
  Client client = clientOf(a);
  if (cmd == "dev") return runDev(a);
  if (cmd == "node") return runNode(a);
  if (cmd == "build") {
    if (a.positional.size() < 2) return fail("build DIR");
    return runBuild(a.positional[1]);
  }
  if (cmd == "deploy") return runDeploy(a, client);
  if (cmd == "invoke") {
    if (a.positional.size() < 2) return fail("invoke APP [FN] [--data TEXT|@FILE]");
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
  if (cmd == "apps") return simple(client, "GET", "/api/apps");
  if (cmd == "logs") {
    if (a.positional.size() < 2) return fail("logs APP");
    return simple(client, "GET",
                  "/api/apps/" + a.positional[1] + "/logs?limit=" + a.get("limit", "200"));
  }
  if (cmd == "delete") {
    if (a.positional.size() < 2) return fail("delete APP");
    return simple(client, "DELETE", "/api/apps/" + a.positional[1]);
  }
  if (cmd == "key") {
    if (a.positional.size() < 2) return fail("key APP");
    auto r = http::fetch(
        "POST", client.to + "/api/apps/" + a.positional[1] + "/key", "",
        client.with(client.admin.token, "application/octet-stream", std::chrono::minutes(5)));
    if (!r.ok()) return fail(std::string(r.status().message()));
    if (r->status == 401 || r->status == 403) return fail(refusal(r->status, true, client));
    if (r->status != 200) return fail("key failed (" + std::to_string(r->status) + "): " + r->body);
    printf("%s\n", r->body.c_str());
    printNewKey(a.positional[1], r->body);
    return 0;
  }
  fputs(kUsage, stderr);
  return 2;
}

}  // namespace waverless::cli
