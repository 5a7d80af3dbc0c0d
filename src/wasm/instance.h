// State shared between the engine and the host functions during one
// invocation. Private to src/wasm.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "wasm/engine.h"
#include "wasm/rt/exec_context.h"

namespace waverless::wasm {

struct InvocationState {
  Fiber* fiber = nullptr;
  HostServices* host = nullptr;
  std::string output;
  std::string log;
  size_t max_output = 0;
  size_t max_log = 0;
  size_t max_value = 0;
  std::filesystem::path files_dir;
  int dir_fd = -1;               // files_dir, opened on first use
  std::map<int32_t, int> files;  // guest fd -> host fd
  int32_t next_fd = 3;
  // kv_get with a too-small buffer keeps the value for the retry.
  std::string stash_key;
  std::optional<std::string> stash_value;
  // Set while wl_init runs: every path it passes to wl_file_open, so its
  // snapshot is kept only as long as those files stay the same.
  std::vector<std::string>* opened_files = nullptr;

  ~InvocationState();
  void appendLog(std::string_view text);
};

// The env pointer every import receives; one per instance, lives with it.
struct InstanceEnv {
  InstanceEnv() = default;
  InstanceEnv(const InstanceEnv&) = delete;
  InstanceEnv& operator=(const InstanceEnv&) = delete;
  // First, and pointing at itself: wasm2c 1.0.32 passes an import either
  // this env (a direct call) or the address of the instance field holding
  // it (a call through a table), so import thunks take *(void**)arg, which
  // is this env either way (see the descriptor's import thunks).
  InstanceEnv* self = this;
  wasm_rt_memory_t* memory = nullptr;
  rt::ExecContext* exec = nullptr;  // set for each call
  InvocationState* inv = nullptr;   // set for each call
};

}  // namespace waverless::wasm
