#include "master/gateway.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/json_text.h"
#include "common/status_map.h"
#include "master/package.h"
#include "master/query_param.h"

namespace waverless::master {

namespace fs = std::filesystem;

namespace {

http::Response text(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  if (!r.body.empty() && r.body.back() != '\n') r.body += '\n';
  return r;
}

http::Response json(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

using common::jsonEscape;

std::string appJson(const meta::DeployedApp& a) {
  std::string fns;
  for (const auto& f : a.manifest.fns) {
    if (!fns.empty()) fns += ',';
    fns += "\"" + jsonEscape(f.name) + "\"";
  }
  std::string warnings;
  for (const auto& w : a.manifest.warnings) {
    if (!warnings.empty()) warnings += ',';
    warnings += "\"" + jsonEscape(w) + "\"";
  }
  return absl::StrCat("{\"name\":\"", jsonEscape(a.name), "\",\"version\":\"", a.version,
                      "\",\"wasm_bytes\":", a.wasm_bytes, ",\"compile_ms\":", a.compile_ms,
                      ",\"from_cache\":", a.from_cache ? "true" : "false", ",\"snapshot\":\"",
                      a.snapshot, "\",\"functions\":[", fns, "],\"warnings\":[", warnings, "]}");
}

// 401 asks for credentials (RFC 6750: with a Bearer challenge); 403 refuses
// the ones given.
http::Response denied(auth::Check check, const std::string& what) {
  if (check == auth::Check::kMissing) {
    http::Response r = text(401, "this needs `Authorization: Bearer <" + what + ">`");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  http::Response r = text(403, "wrong " + what);
  return r;
}

// An app folder's invoke key file, holding the key's sha256.
absl::Status writeKeyHash(const fs::path& dir, const std::string& key) {
  std::ofstream f(dir / meta::kInvokeKeyFile, std::ios::trunc);
  f << auth::hexOf(auth::digestOf(key)) << '\n';
  f.close();
  if (!f) return absl::InternalError("cannot write " + (dir / meta::kInvokeKeyFile).string());
  return absl::OkStatus();
}

// A deploy answer with the new invoke key in it: shown this once.
std::string withKey(std::string json_object, const std::string& key) {
  json_object.pop_back();  // '}'
  return json_object + ",\"invoke_key\":\"" + key + "\"}";
}

// GET /api/apps/APP/logs: "<unix ms> req=<id> fn=<fn> | <text>" a line,
// further lines of one entry's text indented by four spaces.
std::string logsText(const std::vector<worker::LogEntry>& entries) {
  std::string body;
  for (const auto& e : entries) {
    body += absl::StrCat(e.unix_ms, " req=", e.request_id, " fn=", e.fn, " | ");
    std::string_view t = e.text;
    while (!t.empty() && t.back() == '\n') t.remove_suffix(1);
    for (char c : t) {
      body += c;
      if (c == '\n') body += "    ";
    }
    body += '\n';
  }
  return body;
}

// Paths the node itself serves; every other /<app>... invokes an app.
// Compared as string_views: their lengths first, no strlen per literal.
bool isNodePath(std::string_view p) {
  return p == "/healthz" || p == "/metrics" || Console::isUiPath(p) || p == "/api" ||
         p.starts_with("/api/");
}

}  // namespace

Gateway::Gateway(meta::AppRegistry& registry, Dispatcher& dispatcher, Deployer& deployer,
                 worker::AppLogs& logs, metrics::Registry& metrics, fs::path scratch_dir,
                 auth::Digest admin_token)
    : registry_(registry),
      dispatcher_(dispatcher),
      app_deployer_(deployer),
      logs_(logs),
      metrics_(metrics),
      scratch_dir_(std::move(scratch_dir)),
      admin_token_(admin_token) {
  http_requests_ = &metrics_.counter("wl_http_requests_total", "HTTP requests received");
  http_errors_ = &metrics_.counter("wl_http_errors_total", "HTTP responses with status >= 400");
  console_ = std::make_unique<Console>(metrics_, uiDir());
}

Gateway::~Gateway() { stop(); }

void Gateway::start() {
  deploys_.start();
  control_.start();
  // Fails only when started twice; the node serves on without charts.
  if (absl::Status st = console_->start(); !st.ok()) {
    fprintf(stderr, "level=warn msg=\"metrics history not sampling: %s\"\n",
            std::string(st.message()).c_str());
  }
}

void Gateway::stop() {
  // First: its sampling reads gauges of objects the node stops next.
  console_->stop();
  deploys_.stop();
  control_.stop();
}

void Gateway::handle(http::Request req, http::Responder respond) {
  http_requests_->add();
  if (req.path.size() >= 2 && req.path[0] == '/' && !isNodePath(req.path)) {
    // The hot path goes straight to invoke(), which counts its own errors:
    // no wrapper around respond, no walk through the control paths.
    invoke(std::move(req), std::move(respond));
    return;
  }
  auto reply = [this, respond = std::move(respond)](http::Response r) mutable {
    if (r.status >= 400) http_errors_->add();
    std::move(respond)(std::move(r));
  };
  const std::string& p = req.path;
  if (p == "/healthz") {
    reply(serving_ ? text(200, "ok") : text(503, "starting"));
    return;
  }
  if (p == "/metrics") {
    if (metrics_need_token_) {
      if (auto d = deniedAdmin(req)) {
        reply(std::move(*d));
        return;
      }
    }
    serveMetrics(std::move(reply));
    return;
  }
  if (Console::isUiPath(p)) {
    reply(console_->serveUi(req));
    return;
  }
  if (p == "/api" || p.starts_with("/api/")) {
    if (auto d = deniedAdmin(req)) {
      reply(std::move(*d));
      return;
    }
  }
  if (p == Console::kHistoryPath) {
    reply(console_->history(req));
    return;
  }
  if (p == Console::kLivePath) {
    auto logs = [this](const std::string& app, size_t limit) -> absl::StatusOr<std::string> {
      if (!registry_.find(app)) return absl::NotFoundError("no app named '" + app + "'");
      return logsText(logs_.recent(app, limit));
    };
    reply(console_->live(req, {nodes_view_, meta_view_, logs}));
    return;
  }
  if (Console::isExperimentsPath(p)) {
    reply(console_->experiments(req));
    return;
  }
  if (p == "/api/meta") {
    reply(meta_view_ ? json(200, meta_view_()) : text(404, "not a cluster node"));
    return;
  }
  if (p == "/api/nodes") {
    reply(nodes_view_ ? json(200, nodes_view_()) : text(404, "not a cluster node"));
    return;
  }
  if (p == "/api/apps" || p == "/api/apps/") {
    if (req.method == "POST") {
      deploy(std::move(req), std::move(reply));
      return;
    }
    if (req.method != "GET") {
      reply(text(405, "use GET or POST on /api/apps"));
      return;
    }
    std::string body = "[";
    for (const auto& a : registry_.list()) {
      if (body.size() > 1) body += ',';
      body += appJson(*a);
    }
    reply(json(200, body + "]"));
    return;
  }
  if (p.starts_with("/api/apps/")) {
    std::string rest = p.substr(10);
    auto slash = rest.find('/');
    std::string name = rest.substr(0, slash);
    std::string sub = slash == std::string::npos ? "" : rest.substr(slash);
    if (sub.empty() && req.method == "DELETE") {
      absl::Status st = app_deployer_.remove(name);
      if (st.ok()) logs_.drop(name);
      reply(st.ok() ? text(200, "deleted " + name)
                    : text(common::httpStatus(st), std::string(st.message())));
      return;
    }
    if (sub.empty() && req.method == "GET") {
      auto app = registry_.find(name);
      reply(app ? json(200, appJson(*app)) : text(404, "no app named '" + name + "'"));
      return;
    }
    if (sub == "/graph" && req.method == "GET") {
      auto app = registry_.find(name);
      reply(app ? json(200, appGraphJson(app->manifest))
                : text(404, "no app named '" + name + "'"));
      return;
    }
    if (sub == "/key" && req.method == "POST") {
      rotateKey(name, std::move(reply));
      return;
    }
    if (sub == "/evict" && req.method == "POST") {
      // Frees the app's idle instances: the next call is a cold start.
      auto app = registry_.find(name);
      if (!app) {
        reply(text(404, "no app named '" + name + "'"));
        return;
      }
      app->module->evictIdle();
      reply(text(200, "evicted idle instances of " + name));
      return;
    }
    if (sub == "/logs" && req.method == "GET") {
      if (!registry_.find(name)) {
        reply(text(404, "no app named '" + name + "'"));
        return;
      }
      size_t limit = 200;
      if (auto l = queryParam(req.query, "limit"); !l.empty())
        limit = std::strtoul(l.c_str(), nullptr, 10);
      reply(text(200, logsText(logs_.recent(name, limit))));
      return;
    }
    reply(text(404, "unknown API path " + p));
    return;
  }
  // What is left is not /<app>...: the app paths went to invoke() above.
  reply(text(404, "usage: /<app> invokes an app; /api/apps lists them"));
}

void Gateway::serveMetrics(http::Responder respond) {
  // Rendering takes milliseconds with many apps: not on an I/O thread.
  control_.post([this, respond = std::make_shared<http::Responder>(std::move(respond))] {
    http::Response r = text(200, metrics_.render());
    r.content_type = "text/plain; version=0.0.4";
    std::move (*respond)(std::move(r));
  });
}

http::Handler& Gateway::metricsHandler() {
  if (!metrics_only_) metrics_only_ = std::make_unique<MetricsOnly>(*this);
  metrics_need_token_ = true;
  return *metrics_only_;
}

void Gateway::MetricsOnly::handle(http::Request request, http::Responder respond) {
  if (request.path != "/metrics") {
    std::move(respond)(text(404, "this listener serves /metrics only"));
    return;
  }
  gateway_.serveMetrics(std::move(respond));
}

std::optional<http::Response> Gateway::deniedAdmin(const http::Request& req) const {
  auth::Check c = auth::checkBearer(req.header("Authorization"), admin_token_);
  if (c == auth::Check::kOk) return std::nullopt;
  return denied(c, "admin token");
}

std::optional<http::Response> Gateway::deniedInvoke(const http::Request& req,
                                                    const meta::DeployedApp& app) {
  if (app.manifest.auth != app::AuthMode::kKey) return std::nullopt;
  if (!app.invoke_key) {
    return text(403, "app '" + app.name + "' has no invoke key yet: make one with POST /api/apps/" +
                         app.name + "/key");
  }
  auth::Check c = auth::checkBearer(req.header("Authorization"), *app.invoke_key);
  if (c == auth::Check::kOk) return std::nullopt;
  return denied(c, "invoke key of app '" + app.name + "'");
}

bool Gateway::streamBody(const http::Request& head) {
  if (!dispatcher_.canStream() || head.path.size() < 2 || head.path[0] != '/' ||
      head.path.starts_with("/api/")) {
    return false;
  }
  Route r = route(head.method, head.path);
  return r.fn != nullptr && r.fn->stream_body;
}

Gateway::Route Gateway::route(const std::string& method, const std::string& path) const {
  Route r;
  std::string rest = path.substr(1);
  auto slash = rest.find('/');
  std::string name = rest.substr(0, slash);
  std::string sub = slash == std::string::npos ? "" : rest.substr(slash);
  r.app = registry_.find(name);
  if (!r.app) {
    r.error = text(404, "no app named '" + name + "'");
    return r;
  }
  const app::FnSpec* fn = nullptr;
  if (sub.empty() || sub == "/") {
    fn = r.app->manifest.httpAppFn();
    if (fn == nullptr) {
      r.error = text(404, "app '" + name + "' has no http_app function");
      return r;
    }
    if (method != "GET" && method != "POST") {
      r.error = text(405, "use GET or POST on /" + name);
      return r;
    }
  } else {
    const app::AppManifest& manifest = r.app->manifest;
    fn = manifest.httpFn(method, sub);
    if (fn == nullptr) {
      // /<app>/<fn> also reaches a function with an explicit http trigger.
      const app::FnSpec* named = manifest.find(sub.substr(1));
      if (named != nullptr) {
        for (const auto& e : named->events) {
          if (e.kind == app::EventSpec::Kind::kHttp && (e.method == "ANY" || e.method == method)) {
            fn = named;
          }
        }
      }
    }
    if (fn == nullptr) {
      r.error = text(404, "app '" + name + "' has no function for " + method + " " + sub);
      return r;
    }
  }
  r.fn = fn;
  return r;
}

void Gateway::invoke(http::Request req, http::Responder respond) {
  Route route = this->route(req.method, req.path);
  if (route.fn == nullptr) {
    http_errors_->add();
    std::move(respond)(std::move(*route.error));
    return;
  }
  if (auto d = deniedInvoke(req, *route.app)) {
    http_errors_->add();
    std::move(respond)(std::move(*d));
    return;
  }
  auto done = [this, respond = std::move(respond)](worker::RequestOutcome o) mutable {
    if (o.http_status >= 400) http_errors_->add();
    http::Response r;
    r.status = o.http_status;
    r.body = std::move(o.body);
    if (o.http_status != 200)
      r.content_type = "text/plain; charset=utf-8";
    else
      r.content_type = "application/octet-stream";
    r.headers.emplace_back("X-Request-Id", o.request_id);
    if (o.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(o.retry_after_s));
    std::move(respond)(std::move(r));
  };
  if (req.body_stream) {
    dispatcher_.dispatchStream(std::move(route.app), *route.fn, std::move(req.body_stream),
                               std::move(done), std::move(req.cancel));
  } else {
    dispatcher_.dispatch(std::move(route.app), *route.fn, std::move(req.body), std::move(done),
                         std::move(req.cancel));
  }
}

void Gateway::deploy(http::Request req, http::Responder respond) {
  std::string name = queryParam(req.query, "name");
  absl::Status valid = meta::validateAppName(name);
  // /ui is the console's: an app of that name could never be invoked.
  if (valid.ok() && name == "ui") {
    valid = absl::InvalidArgumentError("the app name 'ui' is taken by the web console at /ui/");
  }
  if (!valid.ok()) {
    std::move(respond)(text(400, std::string(valid.message()) + " (POST /api/apps?name=<app>)"));
    return;
  }
  deploys_.post([this, name, body = std::move(req.body),
                 respond = std::make_shared<http::Responder>(std::move(respond))] {
    fs::path dir = scratch_dir_ / absl::StrCat("upload-", name, "-", deploy_seq_.fetch_add(1));
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    absl::Status st = extractTar(body, dir);
    // An invoke key is made at the first deploy and kept by redeploys (the
    // registry keeps the installed one when the folder has none). Made for
    // every app that has none, it is shown only if the app is `auth: key`.
    std::error_code rm_ec;
    fs::remove(dir / meta::kInvokeKeyFile, rm_ec);  // never the uploader's
    std::string new_key;
    auto previous = registry_.find(name);
    if (st.ok() && !(previous && previous->invoke_key)) {
      auto key = auth::newSecret();
      st = key.ok() ? writeKeyHash(dir, *key) : key.status();
      if (key.ok()) new_key = std::move(*key);
    }
    http::Response r;
    if (st.ok()) {
      auto app = app_deployer_.deploy(name, dir);
      if (app.ok()) {
        bool shows_key = !new_key.empty() && (*app)->manifest.auth == app::AuthMode::kKey;
        r = json(200, shows_key ? withKey(appJson(**app), new_key) : appJson(**app));
      } else {
        r = text(common::httpStatus(app.status()), std::string(app.status().message()));
      }
    } else {
      r = text(400, std::string(st.message()));
    }
    fs::remove_all(dir, ec);
    std::move (*respond)(std::move(r));
  });
}

}  // namespace waverless::master

namespace waverless::master {

void Gateway::rotateKey(const std::string& name, http::Responder respond) {
  // A redeploy of the installed folder with a new key: in a cluster it
  // reaches every node like any deploy (the compile is cached by content).
  deploys_.post([this, name, respond = std::make_shared<http::Responder>(std::move(respond))] {
    auto app = registry_.find(name);
    if (!app) {
      std::move (*respond)(text(404, "no app named '" + name + "'"));
      return;
    }
    if (app->manifest.auth != app::AuthMode::kKey) {
      std::move (*respond)(
          text(400, "app '" + name + "' is not declared `auth: key` in its app.yaml"));
      return;
    }
    fs::path dir = scratch_dir_ / absl::StrCat("rekey-", name, "-", deploy_seq_.fetch_add(1));
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    absl::Status st;
    for (const char* f : {"app.yaml", "app.wasm"}) {
      if (!ec) fs::copy_file(app->dir / f, dir / f, ec);
    }
    if (!ec && !app->files_dir.empty()) {
      fs::copy(app->files_dir, dir / "files", fs::copy_options::recursive, ec);
    }
    if (ec) st = absl::InternalError("copying the app folder of " + name + ": " + ec.message());
    auto key = auth::newSecret();
    if (st.ok()) st = key.ok() ? writeKeyHash(dir, *key) : key.status();
    http::Response r;
    if (st.ok()) {
      auto deployed = app_deployer_.deploy(name, dir);
      st = deployed.status();
    }
    if (st.ok()) {
      r = json(200,
               absl::StrCat("{\"name\":\"", jsonEscape(name), "\",\"invoke_key\":\"", *key, "\"}"));
    } else {
      r = text(common::httpStatus(st), std::string(st.message()));
    }
    fs::remove_all(dir, ec);
    std::move (*respond)(std::move(r));
  });
}

}  // namespace waverless::master
