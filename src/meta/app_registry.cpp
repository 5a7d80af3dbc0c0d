#include "meta/app_registry.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "kv/kv_store.h"

namespace waverless::meta {

namespace fs = std::filesystem;

namespace {

absl::StatusOr<std::string> readFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return absl::NotFoundError(p.string() + ": cannot read");
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string shortHash(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 8; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::optional<auth::Digest> readInvokeKey(const fs::path& dir, const app::AppManifest& m) {
  if (m.auth != app::AuthMode::kKey) return std::nullopt;
  auto hex = readFile(dir / kInvokeKeyFile);
  return hex.ok() ? auth::digestFromHex(*hex) : std::nullopt;
}

}  // namespace

absl::Status validateAppName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63;
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    ok = alnum || (i > 0 && (c == '_' || c == '-'));
  }
  if (!ok) {
    return absl::InvalidArgumentError("app name '" + std::string(name) +
                                      "': use 1-63 of [a-z0-9_-], starting with a letter or digit");
  }
  if (name == "api" || name == "healthz" || name == "metrics") {
    return absl::InvalidArgumentError("app name '" + std::string(name) + "' is reserved");
  }
  return absl::OkStatus();
}

AppRegistry::AppRegistry(fs::path apps_dir, wasm::Engine& engine, kv::KvStore& kv)
    : apps_dir_(std::move(apps_dir)), engine_(engine), kv_(kv) {}

absl::StatusOr<std::shared_ptr<DeployedApp>> AppRegistry::loadFolder(const std::string& name,
                                                                     const fs::path& dir) {
  auto yaml = readFile(dir / "app.yaml");
  if (!yaml.ok()) return absl::InvalidArgumentError(name + ": app.yaml is missing");
  auto manifest = app::parseManifest(*yaml, name);
  if (!manifest.ok()) return manifest.status();
  auto wasm = readFile(dir / "app.wasm");
  if (!wasm.ok()) {
    return absl::InvalidArgumentError(name + ": app.wasm is missing (run `waverless build`)");
  }
  wasm::AppLimits limits;
  if (manifest->memory_pages) limits.max_memory_pages = *manifest->memory_pages;
  if (manifest->max_instances) limits.max_instances = *manifest->max_instances;
  wasm::LoadInfo info;
  auto bytes =
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(wasm->data()), wasm->size());
  // wl_init, if the module has one, runs here and may read the app's files/.
  std::error_code files_ec;
  fs::path files = fs::is_directory(dir / "files", files_ec) ? dir / "files" : fs::path();
  auto module = engine_.load(name, bytes, limits, &info, files);
  if (!module.ok()) return module.status();
  absl::Status exports = app::checkExports(*manifest, (*module)->exportNames());
  if (!exports.ok()) return exports;
  auto app = std::make_shared<DeployedApp>();
  app->name = name;
  app->manifest = std::move(*manifest);
  app->module = std::move(*module);
  app->dir = dir;
  std::error_code ec;
  if (fs::is_directory(dir / "files", ec)) app->files_dir = dir / "files";
  app->version = shortHash(*wasm);
  app->compile_ms = info.compile_ms;
  app->object_path = info.object_path;
  app->snapshot_path = info.snapshot_path;
  app->snapshot = info.snapshot == wasm::SnapshotSource::kBuilt   ? "built"
                  : info.snapshot == wasm::SnapshotSource::kCache ? "cache"
                                                                  : "";
  app->from_cache = info.from_cache;
  app->wasm_bytes = wasm->size();
  app->invoke_key = readInvokeKey(dir, app->manifest);
  return app;
}

absl::Status AppRegistry::loadAll() {
  std::error_code ec;
  fs::create_directories(apps_dir_, ec);
  if (ec) return absl::InternalError(apps_dir_.string() + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(apps_dir_, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_directory() || name.starts_with(".")) continue;
    auto app = loadFolder(name, e.path());
    if (!app.ok()) return app.status();
    std::lock_guard lock(mu_);
    apps_[name] = std::move(*app);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const DeployedApp>> AppRegistry::deploy(const std::string& name,
                                                                       const fs::path& src) {
  absl::Status valid = validateAppName(name);
  if (!valid.ok()) return valid;
  std::error_code ec;
  fs::create_directories(apps_dir_, ec);
  // Copy into a staging folder first, validate and compile from there, and
  // only then swap it in: a failed deploy changes nothing.
  fs::path staging = apps_dir_ / (".staging-" + name + "-" + std::to_string(getpid()) + "-" +
                                  std::to_string(staging_seq_.fetch_add(1)));
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  for (const char* f : {"app.yaml", "app.wasm"}) {
    fs::copy_file(src / f, staging / f, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      fs::remove_all(staging, ec);
      return absl::InvalidArgumentError(name + ": " + f + " is missing");
    }
  }
  if (fs::exists(src / kInvokeKeyFile, ec)) {
    fs::copy_file(src / kInvokeKeyFile, staging / kInvokeKeyFile,
                  fs::copy_options::overwrite_existing, ec);
  }
  if (fs::is_directory(src / "files", ec)) {
    fs::copy(src / "files", staging / "files", fs::copy_options::recursive, ec);
    if (ec) {
      fs::remove_all(staging, ec);
      return absl::InternalError(name + ": copying files/: " + ec.message());
    }
  }
  auto app = loadFolder(name, staging);
  if (!app.ok()) {
    fs::remove_all(staging, ec);
    return app.status();
  }
  std::lock_guard deploy_lock(deploy_mu_);
  fs::path final_dir = apps_dir_ / name;
  fs::path old = apps_dir_ / (".old-" + name);
  if (!fs::exists(staging / kInvokeKeyFile, ec) && fs::exists(final_dir / kInvokeKeyFile, ec)) {
    // A redeploy without a key of its own keeps the installed one.
    fs::copy_file(final_dir / kInvokeKeyFile, staging / kInvokeKeyFile, ec);
    (*app)->invoke_key = readInvokeKey(staging, (*app)->manifest);
  }
  fs::remove_all(old, ec);
  if (fs::exists(final_dir)) fs::rename(final_dir, old, ec);
  fs::rename(staging, final_dir, ec);
  if (ec) return absl::InternalError(name + ": installing app folder: " + ec.message());
  fs::remove_all(old, ec);
  (*app)->dir = final_dir;
  if (!(*app)->files_dir.empty()) (*app)->files_dir = final_dir / "files";
  std::shared_ptr<const DeployedApp> installed = std::move(*app);
  std::lock_guard lock(mu_);
  apps_[name] = installed;
  return installed;
}

absl::Status AppRegistry::remove(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    auto it = apps_.find(name);
    if (it == apps_.end()) return absl::NotFoundError("no app named '" + name + "'");
    apps_.erase(it);
  }
  std::lock_guard deploy_lock(deploy_mu_);
  std::error_code ec;
  fs::remove_all(apps_dir_ / name, ec);
  return kv_.dropApp(name);
}

std::shared_ptr<const DeployedApp> AppRegistry::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = apps_.find(name);
  return it == apps_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const DeployedApp>> AppRegistry::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const DeployedApp>> out;
  for (const auto& [n, a] : apps_) out.push_back(a);
  return out;
}

}  // namespace waverless::meta
