// The functions a guest may import: Waverless's own ABI (sdk/include/
// waverless.h) and the WASI preview1 subset. Private to src/wasm.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "wasm/rt/module_abi.h"

namespace waverless::wasm {

struct HostImportSpec {
  std::string_view module;
  std::string_view name;
  std::string_view signature;  // same letters as WlExport::signature
  WlImportFn fn;
};

// Index in this span is the import id compiled into each module.
std::span<const HostImportSpec> hostImports();

// The WASI preview1 part of the table (wasi.cpp), in table order.
std::vector<HostImportSpec> wasiImports();

// Opens path beneath the app's files folder exactly as wl_file_open does
// for a guest (no absolute paths, no "..", no symlinks out, regular files
// only): WL_OK with *fd set, or the WL_ERR_* code the guest would get.
// *dir_fd caches the folder's descriptor (-1: not opened yet; the caller
// closes it).
int32_t openAppFile(const std::filesystem::path& files_dir, int* dir_fd, std::string_view path,
                    int* fd);

}  // namespace waverless::wasm

namespace waverless::wasm::rt {
// The fn column of hostImports(), as the module ABI wants it.
const WlImportFn* hostImportTable();
}  // namespace waverless::wasm::rt
