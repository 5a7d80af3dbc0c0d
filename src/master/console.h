// The web console's side of a node: the built console assets under /ui/,
// the metrics history its charts read (GET /api/metrics/history) and its
// experiments (experiments.h).
//
// The assets are plain files built by scripts/build.sh (ui/, Vite) into a
// folder the node finds at start (uiDir()); the node never runs Node.js.
// They are served without a token: they hold no data. Everything the
// console shows comes from /api/*, which needs the admin token; the page
// asks for it and sends it as `Authorization: Bearer`.
//
// Owns: the metrics history ring. Must not: add work to requests that are
// not its own (the ring samples on its own thread, once a second).
//
// An open page refreshes through GET /api/console (live()): one request
// per refresh carrying every part the page shows, the history as the
// samples it has not seen yet.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "app/app_manifest.h"
#include "http/http_server.h"
#include "master/experiments.h"
#include "metrics/history.h"

namespace waverless::master {

// Where the console's built assets are: $WAVERLESS_UI_DIR, else `ui/` next
// to the running binary (the build folder), else `../share/waverless/ui`
// from it (an install). Empty when none holds an index.html.
std::filesystem::path uiDir();

// GET /api/apps/APP/graph: what the console draws the trigger graph from,
// app.yaml as parsed: {"fns":[{"name","line","events":[{"kind":"http_app"|
// "http"|"kv_set","method","path","pattern"}],"kvs":[{"pattern","get",
// "set","delete"}]}]}. A kv_set event names the pattern of the kvs entry it
// points at, so an edge fn -> pattern -> fn needs no index arithmetic.
std::string appGraphJson(const app::AppManifest& manifest);

// What GET /api/console reads beyond the console's own history: the
// gateway's views. An empty nodes/meta is a node outside a cluster.
struct LiveSources {
  const std::function<std::string()>& nodes;
  const std::function<std::string()>& meta;
  // APP's last `limit` log entries as GET /api/apps/APP/logs prints them,
  // or NotFound for an app that is not deployed.
  absl::FunctionRef<absl::StatusOr<std::string>(const std::string& app, size_t limit)> logs;
};

class Console {
 public:
  Console(const metrics::Registry& metrics, std::filesystem::path ui_dir);

  absl::Status start() { return history_.start(); }
  void stop() {
    experiments_.stop();
    history_.stop();
  }

  static bool isUiPath(std::string_view path) { return path == "/ui" || path.starts_with("/ui/"); }
  static constexpr const char* kHistoryPath = "/api/metrics/history";
  static constexpr const char* kLivePath = "/api/console";
  static bool isExperimentsPath(const std::string& path) {
    return path == "/api/experiments" || path.starts_with("/api/experiments/");
  }

  // GET /ui/...: a file of the built console. Paths without a file
  // extension get index.html (the page routes them itself).
  http::Response serveUi(const http::Request& req) const;
  // GET /api/metrics/history[?since=UNIX_MS]: the samples after `since`.
  http::Response history(const http::Request& req) const;
  // GET /api/console?[since=UNIX_MS][&nodes=1][&logs=APP[&limit=N]]: all
  // a console page refreshes, in one answer, so an open page costs the node
  // (and the browser) one request per refresh whatever it shows:
  // {"history":<GET /api/metrics/history?since=>,"nodes":<GET /api/nodes>,
  //  "meta":<GET /api/meta>,"logs":"<GET /api/apps/APP/logs?limit=N>"}.
  // A part not asked for (no since: no history), or that the node does not
  // have (nodes and meta outside a cluster), is null; an app that is not
  // deployed gives "logs":null and "logs_error":"<why>". 400 on a bad
  // since or limit.
  http::Response live(const http::Request& req, const LiveSources& sources) const;
  // /api/experiments[/ID] (experiments.h).
  http::Response experiments(const http::Request& req) { return experiments_.handle(req); }

 private:
  std::filesystem::path ui_dir_;
  metrics::History history_;
  Experiments experiments_;
};

}  // namespace waverless::master
