// Private to src/toolchain: one builder per guest language beyond C/C++,
// and the pieces of them unit tests reach.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "toolchain/guest_builder.h"

namespace waverless::toolchain::internal {

// Debian's, by absolute path: a rustup toolchain earlier on PATH (as on
// developer machines) must not be the one that builds guests.
inline constexpr char kCargo[] = "/usr/bin/cargo";
inline constexpr char kRustc[] = "/usr/bin/rustc";
// Where Debian's libstd-rust-dev-wasm32 puts the wasm32-wasi std.
inline constexpr char kRustWasiStd[] = "/usr/lib/rustlib/wasm32-wasi/lib";

// `cargo build --release --target wasm32-wasi --offline` in app_dir, then
// the crate's cdylib copied to app_dir/app.wasm.
absl::Status buildRust(const std::filesystem::path& app_dir, const BuildOptions& options);

// The .wasm files among the compiler-artifact lines of cargo's
// --message-format=json output (other lines are skipped).
std::vector<std::filesystem::path> cargoWasmArtifacts(std::string_view output);

// asc on app_dir/assembly/index.ts plus the SDK's runtime entry; runs
// `npm ci` in the SDK first when its pinned compiler is not installed.
absl::Status buildAssemblyScript(const std::filesystem::path& app_dir, const BuildOptions& options);

// Every regular file under dir, except build output (target/, node_modules/,
// app.wasm), the app's data (files/) and hidden entries.
std::vector<std::filesystem::path> projectFiles(const std::filesystem::path& dir);

// Writes tmp over app_dir/app.wasm.
absl::Status installWasm(const std::filesystem::path& tmp, const std::filesystem::path& app_dir);

}  // namespace waverless::toolchain::internal
