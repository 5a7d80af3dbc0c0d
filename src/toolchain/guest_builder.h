// Builds an app folder's sources into app.wasm with the Waverless SDK:
// clang-14 --target=wasm32-wasi -mexec-model=reactor, wasi-libc, and for C++
// libc++ with -fno-exceptions. The same flags as cmake/WaverlessGuest.cmake.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace waverless::toolchain {

struct BuildOptions {
  std::filesystem::path sdk_dir;                     // holds include/waverless.h and src/wl_sdk.c
  std::function<void(const std::string&)> progress;  // may be empty
};

// The SDK next to this binary's sources, or $WAVERLESS_SDK.
std::filesystem::path defaultSdkDir();

// True when app.wasm is missing or older than any source in the folder.
bool needsBuild(const std::filesystem::path& app_dir);

// Compiles every *.c / *.cc / *.cpp directly in app_dir (and app_dir/src)
// into app_dir/app.wasm. Errors carry the compiler's message.
absl::Status buildApp(const std::filesystem::path& app_dir, const BuildOptions& options);

}  // namespace waverless::toolchain
