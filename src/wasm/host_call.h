// What every host function is built from: checked guest-memory access and
// the thunk that brackets a host call. Private to src/wasm.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "wasm/instance.h"
#include "wasm/rt/exec_context.h"

namespace waverless::wasm::host {

using rt::StopReason;

// Checked access to guest memory. A failed check stops the invocation with
// a message naming the call and the argument.
struct Guest {
  InstanceEnv& env;
  const char* call;

  bool check(uint64_t ptr, uint64_t len, const char* what) {
    uint64_t size = env.memory->size;
    if (ptr <= size && len <= size - ptr) return true;
    env.exec->requestStop(StopReason::kHostError,
                          absl::StrCat(call, ": ", what, " [", ptr, ", +", len,
                                       ") is outside the guest's ", size, "-byte memory"));
    return false;
  }
  uint8_t* at(uint64_t ptr) { return env.memory->data + ptr; }
  std::string_view view(uint64_t ptr, uint64_t len) {
    return {reinterpret_cast<const char*>(at(ptr)), static_cast<size_t>(len)};
  }
  template <typename T>
  bool store(uint64_t ptr, T value, const char* what) {
    if (!check(ptr, sizeof(T), what)) return false;
    memcpy(at(ptr), &value, sizeof(T));  // wasm is little-endian, as is x86
    return true;
  }
};

inline uint32_t u32(const uint64_t* a, int i) { return static_cast<uint32_t>(a[i]); }

using Impl = void (*)(InstanceEnv&, const uint64_t*, uint64_t*);

// The only shape a host function has towards the module: switch the
// in-guest flag off for the host's duration, and report whether the
// invocation must stop (including a timeout that fired meanwhile).
template <Impl F>
int32_t thunk(void* env, const uint64_t* a, uint64_t* r) {
  auto& e = *static_cast<InstanceEnv*>(env);
  rt::ExecContext* x = e.exec;
  x->in_guest = false;
  F(e, a, r);
  x->in_guest = true;
  if (x->cancelRequested()) x->requestStop(StopReason::kCancelled);
  return (x->stop != StopReason::kNone || x->interrupted()) ? 1 : 0;
}

}  // namespace waverless::wasm::host
