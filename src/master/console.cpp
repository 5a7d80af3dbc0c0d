#include "master/console.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "common/json_text.h"
#include "master/query_param.h"

namespace waverless::master {

namespace fs = std::filesystem;

namespace {

http::Response plain(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body) + "\n";
  return r;
}

std::string contentType(const fs::path& file) {
  std::string ext = file.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".json") return "application/json";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

void appendString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c < 0x20 ? ' ' : static_cast<char>(c);
  }
  out += '"';
}

bool hasIndex(const fs::path& dir) {
  std::error_code ec;
  return !dir.empty() && fs::is_regular_file(dir / "index.html", ec);
}

}  // namespace

fs::path uiDir() {
  if (const char* env = getenv("WAVERLESS_UI_DIR"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const fs::path& candidate :
       {exe.parent_path() / "ui", exe.parent_path().parent_path() / "share/waverless/ui"}) {
    if (hasIndex(candidate)) return candidate;
  }
  return {};
}

std::string appGraphJson(const app::AppManifest& manifest) {
  std::string out = "{\"fns\":[";
  for (size_t i = 0; i < manifest.fns.size(); ++i) {
    const app::FnSpec& fn = manifest.fns[i];
    if (i) out += ',';
    out += "{\"name\":";
    appendString(out, fn.name);
    out += ",\"line\":" + std::to_string(fn.line) + ",\"events\":[";
    for (size_t e = 0; e < fn.events.size(); ++e) {
      const app::EventSpec& ev = fn.events[e];
      if (e) out += ',';
      switch (ev.kind) {
        case app::EventSpec::Kind::kHttpApp:
          out += "{\"kind\":\"http_app\"}";
          break;
        case app::EventSpec::Kind::kHttp:
          out += "{\"kind\":\"http\",\"method\":";
          appendString(out, ev.method);
          out += ",\"path\":";
          appendString(out, ev.path);
          out += '}';
          break;
        case app::EventSpec::Kind::kKvSet:
          out += "{\"kind\":\"kv_set\",\"pattern\":";
          appendString(out, ev.kv_index < fn.kvs.size() ? fn.kvs[ev.kv_index].pattern.text() : "");
          out += '}';
          break;
      }
    }
    out += "],\"kvs\":[";
    for (size_t k = 0; k < fn.kvs.size(); ++k) {
      const app::KvAccess& kv = fn.kvs[k];
      if (k) out += ',';
      out += "{\"pattern\":";
      appendString(out, kv.pattern.text());
      out += std::string(",\"get\":") + (kv.get ? "true" : "false") +
             ",\"set\":" + (kv.set ? "true" : "false") +
             ",\"delete\":" + (kv.del ? "true" : "false") + "}";
    }
    out += "]}";
  }
  return out + "]}";
}

Console::Console(const metrics::Registry& metrics, fs::path ui_dir)
    : ui_dir_(std::move(ui_dir)), history_(metrics, metrics::HistoryOptions{}) {}

http::Response Console::serveUi(const http::Request& req) const {
  if (req.method != "GET" && req.method != "HEAD") return plain(405, "use GET on /ui/");
  if (req.path == "/ui") {
    http::Response r = plain(308, "the console is at /ui/");
    r.headers.emplace_back("Location", "/ui/");
    return r;
  }
  if (!hasIndex(ui_dir_)) {
    return plain(404,
                 "the web console is not built: scripts/build.sh builds it when Node.js and npm "
                 "are installed (scripts/install-deps.sh installs them), or set "
                 "$WAVERLESS_UI_DIR to a built console");
  }
  fs::path rel = fs::path(req.path.substr(4)).lexically_normal();
  if (rel.empty() || rel == ".") rel = "index.html";
  // A path that leaves the folder (.., an absolute part) is not a file of it.
  if (rel.is_absolute() || (!rel.empty() && *rel.begin() == "..")) {
    return plain(404, "no such file in the console");
  }
  fs::path file = ui_dir_ / rel;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    if (rel.has_extension()) return plain(404, "no such file in the console: " + rel.string());
    file = ui_dir_ / "index.html";
  }
  std::ifstream f(file, std::ios::binary);
  if (!f) return plain(500, "cannot read " + file.string());
  http::Response r;
  r.content_type = contentType(file);
  r.body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  // Vite names assets by content hash: they never change under one name.
  bool hashed = rel.begin() != rel.end() && *rel.begin() == "assets";
  r.headers.emplace_back("Cache-Control", hashed ? "max-age=31536000, immutable" : "no-cache");
  return r;
}

namespace {

// since=<unix ms>: only newer samples, so a console polling every two
// seconds gets two samples, not the whole ring. Absent: all of them.
absl::StatusOr<int64_t> sinceOf(std::string_view query) {
  if (!hasParam(query, "since")) return 0;
  std::string v = queryParam(query, "since");
  char* end = nullptr;
  int64_t since = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') {
    return absl::InvalidArgumentError("since wants a time in unix milliseconds");
  }
  return since;
}

}  // namespace

http::Response Console::history(const http::Request& req) const {
  if (req.method != "GET") return plain(405, "use GET on /api/metrics/history");
  absl::StatusOr<int64_t> since = sinceOf(req.query);
  if (!since.ok()) return plain(400, std::string(since.status().message()));
  http::Response r;
  r.content_type = "application/json";
  r.body = history_.json(*since);
  return r;
}

http::Response Console::live(const http::Request& req, const LiveSources& sources) const {
  if (req.method != "GET") return plain(405, "use GET on /api/console");
  absl::StatusOr<int64_t> since = sinceOf(req.query);
  if (!since.ok()) return plain(400, std::string(since.status().message()));
  std::string app = queryParam(req.query, "logs");
  size_t limit = 200;
  if (std::string l = queryParam(req.query, "limit"); !l.empty()) {
    char* end = nullptr;
    unsigned long n = std::strtoul(l.c_str(), &end, 10);
    if (*end != '\0' || n == 0 || n > 10000) {
      return plain(400, "limit wants a number of log entries, 1 to 10000");
    }
    limit = n;
  }
  bool nodes = queryParam(req.query, "nodes") == "1";
  std::string out = "{\"history\":";
  out += hasParam(req.query, "since") ? history_.json(*since) : "null";
  out += ",\"nodes\":";
  out += nodes && sources.nodes ? sources.nodes() : "null";
  out += ",\"meta\":";
  out += nodes && sources.meta ? sources.meta() : "null";
  out += ",\"logs\":";
  if (app.empty()) {
    out += "null";
  } else if (absl::StatusOr<std::string> text = sources.logs(app, limit); text.ok()) {
    out += '"' + common::jsonEscape(*text) + '"';
  } else {
    out +=
        "null,\"logs_error\":\"" + common::jsonEscape(std::string(text.status().message())) + '"';
  }
  http::Response r;
  r.content_type = "application/json";
  r.body = out + "}";
  return r;
}

}  // namespace waverless::master
