// Ahead-of-time compilation: wasm bytes -> validated -> wasm2c -> cc -> .so,
// cached on disk by content hash. Private to src/wasm.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace wabt {
struct Module;
}

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

  // Test-only (wasm/spec_entry.h): the same validation, wasm2c, cc and cache,
  // but the descriptor comes from `describe` (given the validated module,
  // wasm2c's symbol prefix, the build key and wasm2c's header) instead of
  // the production one and its import/memory policy. `flavour` keeps the
  // two kinds of object apart in the cache.
  using DescriptorFn = std::function<absl::StatusOr<std::string>(
      const wabt::Module&, std::string_view mod, std::string_view build_key,
      std::string_view module_h)>;
  absl::StatusOr<CompiledObject> compileWithDescriptor(std::span<const uint8_t> wasm,
                                                       std::string_view flavour,
                                                       const DescriptorFn& describe);

  // Drops a cached object that failed to load (e.g. a stale ABI).
  void evict(const CompiledObject& object);

  const CompilerOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::string> toolchainId();
  absl::StatusOr<CompiledObject> build(std::span<const uint8_t> wasm, std::string_view flavour,
                                       const DescriptorFn& describe);

  CompilerOptions options_;
  std::mutex mu_;
  std::string toolchain_id_;  // guarded by mu_
};

// Test-only (spec_entry.cpp): the wasm-rt.h functions every descriptor
// defines (traps and memories forwarded to WlHostApi, tables, exceptions),
// optionally without the module-local function type registry; and wasm2c's
// name mangling.
std::string descriptorRuntime(bool with_type_registry);
std::string wasm2cMangle(std::string_view name);

}  // namespace waverless::wasm
