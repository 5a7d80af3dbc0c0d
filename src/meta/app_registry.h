// The deployed apps of a node: validated manifest + loaded module + data
// folder, persisted under <data>/apps/<name>/ so a restart serves the same
// apps without recompiling (the engine's object cache is keyed by content).
//
// Owns: the app folders on disk and the name -> app map. Must not: run
// functions or route requests.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "app/app_manifest.h"
#include "auth/auth.h"
#include "wasm/engine.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::meta {

struct DeployedApp {
  std::string name;
  app::AppManifest manifest;
  std::shared_ptr<wasm::App> module;
  std::filesystem::path dir;            // <data>/apps/<name>
  std::filesystem::path files_dir;      // dir/files, empty when the app has none
  std::string version;                  // sha256 prefix of app.wasm
  std::filesystem::path object_path;    // compiled module in the engine cache
  std::filesystem::path snapshot_path;  // its wl_init snapshot there, if any
  // Where this node got that snapshot at load: "built" (it ran wl_init),
  // "cache" (read from the file: an earlier load here, or shipped), or "".
  std::string snapshot;
  double compile_ms = 0;
  bool from_cache = false;
  size_t wasm_bytes = 0;
  // An `auth: key` app's invoke key, as its sha256 (the file kInvokeKeyFile
  // of its folder). Unset for other apps, and for an `auth: key` app that
  // has no key yet (deployed from --apps): it then serves no one.
  std::optional<auth::Digest> invoke_key;
};

// The file of an app folder that holds its invoke key's sha256 (hex). A
// deploy whose folder has none keeps the installed version's: a redeploy
// keeps the key its clients use.
inline constexpr const char* kInvokeKeyFile = "invoke_key.sha256";

class AppRegistry {
 public:
  AppRegistry(std::filesystem::path apps_dir, wasm::Engine& engine, kv::KvStore& kv);

  // Loads every app previously deployed on this node.
  absl::Status loadAll();

  // Deploys the folder src (app.yaml, app.wasm, optional files/) as `name`.
  // Validation and compilation happen before anything is replaced: a bad
  // deploy leaves the running version untouched.
  absl::StatusOr<std::shared_ptr<const DeployedApp>> deploy(const std::string& name,
                                                            const std::filesystem::path& src);
  // Removes the app, its folder and all of its keys.
  absl::Status remove(const std::string& name);

  std::shared_ptr<const DeployedApp> find(std::string_view name) const;
  std::vector<std::shared_ptr<const DeployedApp>> list() const;

 private:
  absl::StatusOr<std::shared_ptr<DeployedApp>> loadFolder(const std::string& name,
                                                          const std::filesystem::path& dir);

  std::filesystem::path apps_dir_;
  wasm::Engine& engine_;
  kv::KvStore& kv_;
  std::atomic<uint64_t> staging_seq_{0};
  std::mutex deploy_mu_;  // one folder swap at a time (compiles run in parallel)
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const DeployedApp>, std::less<>> apps_;  // guarded by mu_
};

// [a-z0-9][a-z0-9_-]{0,62}, not a reserved path ("api", "healthz", "metrics").
absl::Status validateAppName(std::string_view name);

}  // namespace waverless::meta
