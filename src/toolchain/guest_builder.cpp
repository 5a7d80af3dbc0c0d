#include "toolchain/guest_builder.h"

#include <cstdlib>
#include <vector>

#include "common/process.h"

namespace waverless::toolchain {

namespace fs = std::filesystem;

fs::path defaultSdkDir() {
  if (const char* env = std::getenv("WAVERLESS_SDK")) return env;
  return WAVERLESS_SDK_DIR;  // compile-time: <source>/sdk
}

namespace {
std::vector<fs::path> sources(const fs::path& app_dir) {
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
}  // namespace

bool needsBuild(const fs::path& app_dir) {
  std::error_code ec;
  auto wasm = app_dir / "app.wasm";
  if (!fs::exists(wasm, ec)) return true;
  auto built = fs::last_write_time(wasm, ec);
  for (const auto& s : sources(app_dir)) {
    if (fs::last_write_time(s, ec) > built) return true;
  }
  return false;
}

absl::Status buildApp(const fs::path& app_dir, const BuildOptions& options) {
  auto srcs = sources(app_dir);
  if (srcs.empty()) {
    return absl::InvalidArgumentError(app_dir.string() +
                                      ": no C/C++ sources (*.c, *.cc, *.cpp) to build");
  }
  bool cxx = false;
  for (const auto& s : srcs) cxx |= s.extension() != ".c";
  std::vector<std::string> argv = {cxx ? "clang++-14" : "clang-14", "--target=wasm32-wasi", "-O2",
                                   "-mexec-model=reactor"};
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
  std::error_code ec;
  fs::rename(tmp, app_dir / "app.wasm", ec);
  if (ec) return absl::InternalError("rename app.wasm: " + ec.message());
  return absl::OkStatus();
}

}  // namespace waverless::toolchain
