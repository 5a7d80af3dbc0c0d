// AssemblyScript guests: the asc pinned in sdk/assemblyscript, run by node.
#include <string>
#include <vector>

#include "common/process.h"
#include "toolchain/guest_languages.h"

namespace waverless::toolchain::internal {

namespace fs = std::filesystem;

namespace {

constexpr char kAsc[] = "node_modules/assemblyscript/bin/asc.js";
constexpr char kRuntimeEntry[] = "waverless/runtime.ts";

bool onPath(const char* program) {
  auto r = runProcess({"/bin/sh", "-c", std::string("command -v ") + program});
  return r.ok() && r->exit_code == 0;
}

// Installs the pinned compiler from package-lock.json (npm's cache makes
// later installs work offline).
absl::Status installCompiler(const fs::path& as_sdk, const BuildOptions& options) {
  if (!onPath("npm")) {
    return absl::FailedPreconditionError(
        "building AssemblyScript apps installs the pinned compiler with npm, which is missing: "
        "apt-get install nodejs npm (scripts/install-deps.sh)");
  }
  if (options.progress) {
    options.progress("installing the AssemblyScript compiler pinned in " +
                     (as_sdk / "package-lock.json").string() + " (npm ci)");
  }
  auto r = runProcess(
      {"npm", "ci", "--prefix", as_sdk.string(), "--no-audit", "--no-fund", "--prefer-offline"});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::UnavailableError("npm ci in " + as_sdk.string() + " failed:\n" + r->output);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status buildAssemblyScript(const fs::path& app_dir, const BuildOptions& options) {
  std::error_code ec;
  fs::path dir = fs::absolute(app_dir, ec);
  fs::path entry = dir / "assembly" / "index.ts";
  if (!fs::is_regular_file(entry, ec)) {
    return absl::InvalidArgumentError(entry.string() +
                                      " is missing: an AssemblyScript app's entry file, whose "
                                      "exported functions are the app's functions");
  }
  if (!onPath("node")) {
    return absl::FailedPreconditionError(
        "building AssemblyScript apps needs node: apt-get install nodejs npm "
        "(scripts/install-deps.sh)");
  }
  fs::path as_sdk = fs::absolute(options.sdk_dir / "assemblyscript", ec);
  if (!fs::exists(as_sdk / kAsc, ec)) {
    absl::Status installed = installCompiler(as_sdk, options);
    if (!installed.ok()) return installed;
  }
  if (options.progress) {
    options.progress("compiling AssemblyScript " + entry.string() + " -> app.wasm (asc)");
  }
  // asc runs in the app folder, so its messages and abort locations name
  // the app's files as the author knows them (assembly/index.ts:3:5).
  // `import ... from "waverless"` resolves through --path to the SDK; the
  // SDK's runtime entry adds wl_alloc/wl_free to the exports, and abort is
  // pointed at its handler by the name asc gives it: the entry's path
  // relative to the working folder, without extension, then the function.
  fs::path runtime = fs::relative(as_sdk / kRuntimeEntry, dir, ec);
  if (ec || runtime.empty()) {
    return absl::InternalError("cannot reach " + (as_sdk / kRuntimeEntry).string() + " from " +
                               dir.string());
  }
  fs::path abort_handler = runtime;
  abort_handler.replace_extension();
  fs::path tmp = dir / "app.wasm.tmp";
  // --exportStart: the engine runs _initialize once per instance, as for a
  // WASI reactor.
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "-C",
                                   dir.string(),
                                   "node",
                                   (as_sdk / kAsc).string(),
                                   "assembly/index.ts",
                                   runtime.string(),
                                   "--path",
                                   as_sdk.string(),
                                   "--exportStart",
                                   "_initialize",
                                   "--use",
                                   "abort=" + abort_handler.string() + "/wlAbort",
                                   "--outFile",
                                   tmp.string()};
  if (fs::is_regular_file(dir / "asconfig.json", ec)) {
    // The app's options (memory, runtime, optimisation) apply; the flags
    // above, which the platform needs, take precedence.
    argv.insert(argv.end(), {"--config", "asconfig.json"});
  } else {
    // Assertions stay: a failed one fails the invocation with its message.
    argv.push_back("-O3");
  }
  auto r = runProcess(argv);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0 || !fs::exists(tmp, ec)) {
    fs::remove(tmp, ec);
    return absl::InvalidArgumentError("building " + app_dir.string() +
                                      " (AssemblyScript) failed:\n" + r->output);
  }
  return installWasm(tmp, app_dir);
}

}  // namespace waverless::toolchain::internal
