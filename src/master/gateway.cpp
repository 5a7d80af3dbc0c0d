#include "master/gateway.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "master/package.h"

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

std::string jsonEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string queryParam(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string_view kv(query.data() + pos, amp - pos);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key)
      return eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
    pos = amp + 1;
  }
  return "";
}

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
                      ",\"from_cache\":", a.from_cache ? "true" : "false", ",\"functions\":[", fns,
                      "],\"warnings\":[", warnings, "]}");
}

}  // namespace

Gateway::Gateway(meta::AppRegistry& registry, Dispatcher& dispatcher, Deployer& deployer,
                 worker::AppLogs& logs, metrics::Registry& metrics, fs::path scratch_dir)
    : registry_(registry),
      dispatcher_(dispatcher),
      app_deployer_(deployer),
      logs_(logs),
      metrics_(metrics),
      scratch_dir_(std::move(scratch_dir)) {
  http_requests_ = &metrics_.counter("wl_http_requests_total", "HTTP requests received");
  http_errors_ = &metrics_.counter("wl_http_errors_total", "HTTP responses with status >= 400");
}

Gateway::~Gateway() { stop(); }

void Gateway::start() {
  deploys_.start();
  control_.start();
}

void Gateway::stop() {
  deploys_.stop();
  control_.stop();
}

void Gateway::handle(http::Request req, http::Responder respond) {
  http_requests_->add();
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
    // Rendering takes milliseconds with many apps: not on an I/O thread.
    control_.post([this, reply = std::make_shared<decltype(reply)>(std::move(reply))] {
      http::Response r = text(200, metrics_.render());
      r.content_type = "text/plain; version=0.0.4";
      (*reply)(std::move(r));
    });
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
                    : text(worker::httpStatus(st), std::string(st.message())));
      return;
    }
    if (sub.empty() && req.method == "GET") {
      auto app = registry_.find(name);
      reply(app ? json(200, appJson(*app)) : text(404, "no app named '" + name + "'"));
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
      std::string body;
      for (const auto& e : logs_.recent(name, limit)) {
        body += absl::StrCat(e.unix_ms, " req=", e.request_id, " fn=", e.fn, " | ");
        std::string t = e.text;
        while (!t.empty() && t.back() == '\n') t.pop_back();
        for (size_t i = 0; i < t.size(); ++i) {
          body += t[i];
          if (t[i] == '\n') body += "    ";
        }
        body += '\n';
      }
      reply(text(200, body));
      return;
    }
    reply(text(404, "unknown API path " + p));
    return;
  }
  // /<app> or /<app>/<path>
  if (p.size() < 2 || p[0] != '/') {
    reply(text(404, "usage: /<app> invokes an app; /api/apps lists them"));
    return;
  }
  invoke(std::move(req), std::move(reply));
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
    std::move(respond)(std::move(route.error));
    return;
  }
  auto done = [respond = std::move(respond)](worker::RequestOutcome o) mutable {
    http::Response r;
    r.status = o.http_status;
    r.body = std::move(o.body);
    if (o.http_status != 200)
      r.content_type = "text/plain; charset=utf-8";
    else
      r.content_type = "application/octet-stream";
    r.headers.emplace_back("X-Request-Id", o.request_id);
    std::move(respond)(std::move(r));
  };
  if (req.body_stream) {
    dispatcher_.dispatchStream(std::move(route.app), *route.fn, std::move(req.body_stream),
                               std::move(done));
  } else {
    dispatcher_.dispatch(std::move(route.app), *route.fn, std::move(req.body), std::move(done));
  }
}

void Gateway::deploy(http::Request req, http::Responder respond) {
  std::string name = queryParam(req.query, "name");
  absl::Status valid = meta::validateAppName(name);
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
    http::Response r;
    if (st.ok()) {
      auto app = app_deployer_.deploy(name, dir);
      if (app.ok()) {
        r = json(200, appJson(**app));
      } else {
        r = text(worker::httpStatus(app.status()), std::string(app.status().message()));
      }
    } else {
      r = text(400, std::string(st.message()));
    }
    fs::remove_all(dir, ec);
    std::move (*respond)(std::move(r));
  });
}

}  // namespace waverless::master
