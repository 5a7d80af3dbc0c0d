// Rust guests: Debian's cargo and rustc, offline, for wasm32-wasi.
#include <string>
#include <vector>

#include "common/process.h"
#include "toolchain/guest_languages.h"

namespace waverless::toolchain::internal {

namespace fs = std::filesystem;

namespace {

// The JSON string value starting at s[at] (just after its opening quote),
// with \" and \\ unescaped; npos in *end when it does not close.
std::string jsonString(std::string_view s, size_t at, size_t* end) {
  std::string out;
  for (size_t i = at; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[++i];
    } else if (s[i] == '"') {
      *end = i + 1;
      return out;
    } else {
      out += s[i];
    }
  }
  *end = std::string_view::npos;
  return out;
}

// The output without cargo's JSON lines: what a person reads (the compiler's
// rendered diagnostics and cargo's own messages).
std::string humanLines(std::string_view output) {
  std::string out;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t eol = output.find('\n', pos);
    if (eol == std::string_view::npos) eol = output.size();
    std::string_view line = output.substr(pos, eol - pos);
    if (!line.starts_with("{\"reason\":")) {
      out.append(line);
      out += '\n';
    }
    pos = eol + 1;
  }
  return out;
}

// p as a TOML basic string.
std::string tomlString(const fs::path& p) {
  std::string out = "\"";
  for (char c : p.string()) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<fs::path> cargoWasmArtifacts(std::string_view output) {
  std::vector<fs::path> out;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t eol = output.find('\n', pos);
    if (eol == std::string_view::npos) eol = output.size();
    std::string_view line = output.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.starts_with("{\"reason\":\"compiler-artifact\"")) continue;
    constexpr std::string_view kFilenames = "\"filenames\":[";
    size_t at = line.find(kFilenames);
    if (at == std::string_view::npos) continue;
    at += kFilenames.size();
    while (at < line.size() && line[at] == '"') {
      size_t end = 0;
      std::string name = jsonString(line, at + 1, &end);
      if (end == std::string_view::npos) break;
      if (name.ends_with(".wasm")) out.emplace_back(name);
      at = end;
      if (at < line.size() && line[at] == ',') ++at;
    }
  }
  return out;
}

absl::Status buildRust(const fs::path& app_dir, const BuildOptions& options) {
  std::error_code ec;
  if (!fs::exists(kCargo, ec) || !fs::exists(kRustc, ec)) {
    return absl::FailedPreconditionError(
        std::string("building Rust apps needs Debian's cargo and rustc (") + kCargo + ", " +
        kRustc + "): apt-get install cargo rustc libstd-rust-dev-wasm32 (scripts/install-deps.sh)");
  }
  if (!fs::is_directory(kRustWasiStd, ec)) {
    return absl::FailedPreconditionError(
        std::string("building Rust apps needs the wasm32-wasi std (") + kRustWasiStd +
        "): apt-get install libstd-rust-dev-wasm32 (scripts/install-deps.sh)");
  }
  if (options.progress) {
    options.progress("compiling Rust crate " + app_dir.string() + " -> app.wasm (cargo)");
  }
  // env(1) sets RUSTC so cargo cannot pick a rustup rustc from PATH, and the
  // target folder so the build output stays with the crate whatever the
  // caller's working directory. The crate names the SDK as a registry
  // dependency (`waverless = "0.1"`) and the build patches it to the SDK's
  // folder: no registry is ever asked (offline, no index needed), and an app
  // folder builds wherever it is copied. A crate that names the SDK by path
  // builds too (the patch then goes unused).
  fs::path manifest = fs::absolute(app_dir / "Cargo.toml", ec);
  fs::path sdk_crate = fs::absolute(options.sdk_dir / "rust" / "waverless", ec);
  std::vector<std::string> argv = {
      "/usr/bin/env",
      std::string("RUSTC=") + kRustc,
      "CARGO_TARGET_DIR=" + fs::absolute(app_dir / "target", ec).string(),
      kCargo,
      "build",
      "--release",
      "--offline",
      "--target",
      "wasm32-wasi",
      "--message-format=json-render-diagnostics",
      "--config",
      "patch.crates-io.waverless.path=" + tomlString(sdk_crate),
      "--manifest-path",
      manifest.string()};
  auto r = runProcess(argv);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InvalidArgumentError("building " + app_dir.string() + " (Rust) failed:\n" +
                                      humanLines(r->output));
  }
  auto wasm = cargoWasmArtifacts(r->output);
  if (wasm.empty()) {
    return absl::InvalidArgumentError(
        app_dir.string() +
        "/Cargo.toml builds no wasm module: a Waverless function crate is a library with\n"
        "  [lib]\n  crate-type = [\"cdylib\"]");
  }
  if (wasm.size() > 1) {
    std::string names;
    for (const auto& w : wasm) names += "\n  " + w.string();
    return absl::InvalidArgumentError(
        app_dir.string() + "/Cargo.toml builds several wasm modules; an app is one:" + names);
  }
  auto tmp = app_dir / "app.wasm.tmp";
  fs::copy_file(wasm[0], tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return absl::InternalError("copying " + wasm[0].string() + ": " + ec.message());
  }
  return installWasm(tmp, app_dir);
}

}  // namespace waverless::toolchain::internal
