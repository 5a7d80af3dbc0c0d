// The snapshot part of a module's descriptor (see rt/module_abi.h):
// restore_instance, save_state and load_state, generated as C from the
// instance struct in wasm2c's module.h. Private to src/wasm.
#pragma once

#include <string>
#include <string_view>

namespace waverless::wasm {

// The C text defining WL_RESTORE, WL_SAVE and WL_LOAD for the instance type
// `inst` (each 0 when the module cannot be snapshotted). The descriptor
// defines H (the WlHostApi) before it and includes stddef, stdlib, string.
std::string snapshotFunctions(std::string_view module_h, const std::string& inst);

}  // namespace waverless::wasm
