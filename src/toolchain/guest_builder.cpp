#include "toolchain/guest_builder.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "common/process.h"
#include "toolchain/guest_languages.h"

namespace waverless::toolchain {

namespace fs = std::filesystem;

fs::path defaultSdkDir() {
  if (const char* env = std::getenv("WAVERLESS_SDK")) return env;
  // An installed binary (the .deb: /usr/bin/waverless) has its SDK in
  // ../share/waverless/sdk; the source tree it was built from is gone.
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "share/waverless/sdk";
    if (fs::is_regular_file(installed / "include/waverless.h", ec)) return installed;
  }
  return WAVERLESS_SDK_DIR;  // compile-time: <source>/sdk
}

std::string_view languageName(GuestLanguage language) {
  switch (language) {
    case GuestLanguage::kC:
      return "C";
    case GuestLanguage::kCxx:
      return "C++";
    case GuestLanguage::kRust:
      return "Rust";
    case GuestLanguage::kAssemblyScript:
      return "AssemblyScript";
  }
  return "?";
}

namespace {

std::vector<fs::path> cSources(const fs::path& app_dir) {
  std::vector<fs::path> out;
  for (const auto& dir : {app_dir, app_dir / "src"}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".c" || ext == ".cc" || ext == ".cpp")) {
        out.push_back(e.path());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool isFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool isAssemblyScript(const fs::path& app_dir) {
  return isFile(app_dir / "asconfig.json") ||
         (isFile(app_dir / "package.json") && isFile(app_dir / "assembly" / "index.ts"));
}

absl::Status buildC(const fs::path& app_dir, const std::vector<fs::path>& srcs,
                    const BuildOptions& options) {
  bool cxx = false;
  for (const auto& s : srcs) cxx |= s.extension() != ".c";
  // A loop with a constant trip count is unrolled in full up to a much
  // larger size than clang's default (150). Natively that buys little; in
  // wasm it removes the index arithmetic: wasm addresses are 32-bit and
  // wrap, so the AOT C compiler cannot turn base + 4*i into a pointer
  // increment, and each indexed access costs a zero-extension, an add and,
  // under register pressure, reloads of the memory base (docs/engine.md,
  // "Compute parity"). Unrolled, every index is a constant offset folded
  // into the load. The kernel's SHA-256 rounds: 1.258x native instructions
  // -> 0.971x. Loops without a constant count are untouched.
  std::vector<std::string> argv = {
      cxx ? "clang++-14" : "clang-14", "--target=wasm32-wasi", "-O2", "-mllvm",
      "-unroll-threshold=5000",        "-mexec-model=reactor"};
  if (cxx) {
    argv.insert(argv.end(), {"-fno-exceptions", "-fno-rtti", "-std=c++20"});
  }
  argv.push_back("-I" + (options.sdk_dir / "include").string());
  for (const auto& s : srcs) argv.push_back(s.string());
  // wl_sdk.c is valid C++; say so, rather than have clang++ warn about it.
  if (cxx) argv.insert(argv.end(), {"-x", "c++"});
  argv.push_back((options.sdk_dir / "src" / "wl_sdk.c").string());
  if (cxx) argv.insert(argv.end(), {"-x", "none"});
  auto tmp = app_dir / "app.wasm.tmp";
  argv.insert(argv.end(), {"-o", tmp.string()});
  if (options.progress) {
    options.progress("compiling " + std::to_string(srcs.size()) + " source(s) in " +
                     app_dir.string() + " -> app.wasm");
  }
  auto r = runProcess(argv);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return absl::InvalidArgumentError("building " + app_dir.string() + " failed:\n" + r->output);
  }
  return internal::installWasm(tmp, app_dir);
}

}  // namespace

absl::StatusOr<GuestLanguage> detectLanguage(const fs::path& app_dir) {
  bool rust = isFile(app_dir / "Cargo.toml");
  bool as = isAssemblyScript(app_dir);
  if (rust && as) {
    return absl::InvalidArgumentError(
        app_dir.string() +
        ": both Cargo.toml (Rust) and an AssemblyScript project (asconfig.json or package.json "
        "with assembly/index.ts); keep one language per app folder");
  }
  if (rust) return GuestLanguage::kRust;
  if (as) return GuestLanguage::kAssemblyScript;
  auto srcs = cSources(app_dir);
  if (srcs.empty()) {
    return absl::InvalidArgumentError(
        app_dir.string() +
        ": nothing to build: no C/C++ sources (*.c, *.cc, *.cpp, also in src/), no Cargo.toml "
        "(Rust), no asconfig.json or package.json with assembly/index.ts (AssemblyScript)");
  }
  for (const auto& s : srcs) {
    if (s.extension() != ".c") return GuestLanguage::kCxx;
  }
  return GuestLanguage::kC;
}

bool needsBuild(const fs::path& app_dir, const fs::path& sdk_dir) {
  std::error_code ec;
  auto wasm = app_dir / "app.wasm";
  if (!fs::exists(wasm, ec)) return true;
  // A prebuilt app.wasm without sources (or with an ambiguous mix) has
  // nothing to be rebuilt from: it is deployed as it is.
  auto language = detectLanguage(app_dir);
  if (!language.ok()) return false;
  std::vector<fs::path> inputs;
  switch (*language) {
    case GuestLanguage::kC:
    case GuestLanguage::kCxx:
      inputs = cSources(app_dir);
      break;
    case GuestLanguage::kRust:
      inputs = internal::projectFiles(app_dir);
      for (auto& p : internal::projectFiles(sdk_dir / "rust")) inputs.push_back(std::move(p));
      break;
    case GuestLanguage::kAssemblyScript:
      inputs = internal::projectFiles(app_dir);
      for (auto& p : internal::projectFiles(sdk_dir / "assemblyscript")) {
        inputs.push_back(std::move(p));
      }
      break;
  }
  auto built = fs::last_write_time(wasm, ec);
  if (ec) return true;
  for (const auto& s : inputs) {
    auto t = fs::last_write_time(s, ec);
    if (ec || t > built) return true;
  }
  return false;
}

absl::Status buildApp(const fs::path& app_dir, const BuildOptions& options) {
  auto language = detectLanguage(app_dir);
  if (!language.ok()) return language.status();
  switch (*language) {
    case GuestLanguage::kC:
    case GuestLanguage::kCxx:
      return buildC(app_dir, cSources(app_dir), options);
    case GuestLanguage::kRust:
      return internal::buildRust(app_dir, options);
    case GuestLanguage::kAssemblyScript:
      return internal::buildAssemblyScript(app_dir, options);
  }
  return absl::InternalError("unknown guest language");
}

namespace internal {

std::vector<fs::path> projectFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    bool top = it.depth() == 0;
    if (name.starts_with(".") || name == "node_modules" || name == "target" ||
        (top &&
         (name == "files" || name == "app.yaml" || name == "app.wasm" || name == "app.wasm.tmp"))) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status installWasm(const fs::path& tmp, const fs::path& app_dir) {
  std::error_code ec;
  fs::rename(tmp, app_dir / "app.wasm", ec);
  if (ec) {
    fs::remove(tmp, ec);
    return absl::InternalError("installing " + (app_dir / "app.wasm").string() + ": " +
                               ec.message());
  }
  return absl::OkStatus();
}

}  // namespace internal

}  // namespace waverless::toolchain
