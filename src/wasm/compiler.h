// Ahead-of-time compilation: wasm bytes -> validated -> wasm2c -> cc -> .so,
// cached on disk by content hash. Private to src/wasm.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace waverless::wasm {

struct CompilerOptions {
  std::filesystem::path cache_dir;
  int opt_level = 2;
  std::string cc = "cc";
  std::string wasm2c = "wasm2c";
};

struct CompiledObject {
  std::filesystem::path path;  // the shared object
  std::string build_key;       // must match the descriptor's on load
  bool from_cache = false;
  double compile_ms = 0;  // 0 when from cache
  size_t wasm_bytes = 0;
};

class ModuleCompiler {
 public:
  explicit ModuleCompiler(CompilerOptions options);

  // Validates the module and its imports, then returns the cached object or
  // builds it. Thread-safe; two calls for different modules run in parallel.
  absl::StatusOr<CompiledObject> compile(std::span<const uint8_t> wasm);

  // Drops a cached object that failed to load (e.g. a stale ABI).
  void evict(const CompiledObject& object);

  const CompilerOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::string> toolchainId();

  CompilerOptions options_;
  std::mutex mu_;
  std::string toolchain_id_;  // guarded by mu_
};

}  // namespace waverless::wasm
