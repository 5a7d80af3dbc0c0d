// Test-only: builds a module of the WebAssembly spec testsuite (tests/spec)
// through the production pipeline (libwabt validation, wasm2c, cc, the
// compile cache) with a descriptor that also exposes imports and exports of
// memories, tables and globals (rt/spec_abi.h). The object runs on the
// production runtime: the same WlHostApi, ExecContext and executor.
// Not linked into the platform (library wl_wasm_spec).
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "wasm/compiler.h"
#include "wasm/rt/spec_abi.h"

namespace waverless::wasm::spec {

absl::StatusOr<CompiledObject> compileSpecModule(ModuleCompiler& compiler,
                                                 std::span<const uint8_t> wasm);

}  // namespace waverless::wasm::spec
