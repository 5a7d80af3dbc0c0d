// Builds an app folder's sources into app.wasm with the Waverless SDK, for
// each guest language the platform supports:
//   C, C++          clang-14 --target=wasm32-wasi -mexec-model=reactor, wasi-libc,
//                   libc++ with -fno-exceptions (the flags of cmake/WaverlessGuest.cmake)
//   Rust            Debian's /usr/bin/cargo and /usr/bin/rustc (never a rustup
//                   toolchain), --target wasm32-wasi --release --offline;
//                   the crate depends on sdk/rust/waverless by path
//   AssemblyScript  the asc pinned in sdk/assemblyscript/package-lock.json
//                   (installed there by `npm ci` on first use) with the SDK's
//                   runtime entry (wl_alloc, the abort handler)
// It runs compilers and writes app.wasm; it never deploys anything.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace waverless::toolchain {

struct BuildOptions {
  std::filesystem::path sdk_dir;                     // holds include/, src/, rust/, assemblyscript/
  std::function<void(const std::string&)> progress;  // may be empty
};

enum class GuestLanguage { kC, kCxx, kRust, kAssemblyScript };

std::string_view languageName(GuestLanguage language);

// $WAVERLESS_SDK, else an installed SDK (<bin>/../share/waverless/sdk), else
// the SDK next to this binary's sources.
std::filesystem::path defaultSdkDir();

// What the folder is written in, from the files that mark a project:
// Cargo.toml (Rust); asconfig.json, or package.json with assembly/index.ts
// (AssemblyScript); else *.c (C) or *.cc / *.cpp (C++) directly in the
// folder or in src/. InvalidArgument when there is nothing to build or the
// markers of two languages are both there.
absl::StatusOr<GuestLanguage> detectLanguage(const std::filesystem::path& app_dir);

// True when app.wasm is missing or older than any of the app's inputs: its
// sources (for Rust and AssemblyScript every file of the project outside
// build output, node_modules and files/) and, for those two, the SDK they
// compile against. An app.wasm with no sources next to it (a prebuilt
// module) never needs a build.
bool needsBuild(const std::filesystem::path& app_dir,
                const std::filesystem::path& sdk_dir = defaultSdkDir());

// Builds app_dir into app_dir/app.wasm (written whole, or not at all).
// Errors carry the compiler's message; a missing toolchain says which
// Debian packages provide it.
absl::Status buildApp(const std::filesystem::path& app_dir, const BuildOptions& options);

}  // namespace waverless::toolchain
