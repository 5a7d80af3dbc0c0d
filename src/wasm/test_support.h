// Shared helpers for the engine tests.
#pragma once

#include <dirent.h>

#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "wasm/engine.h"

namespace waverless::wasm::testing {

inline std::vector<uint8_t> readGuest(const std::string& name) {
  std::ifstream f(std::string(WL_GUEST_DIR) + "/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline int threadCount() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// An in-memory KV. Keys starting with "slow" park the invocation until the
// test calls resumeAll().
class TestHost : public HostServices {
 public:
  absl::StatusOr<std::optional<std::string>> kvGet(Fiber& fiber, std::string_view key) override {
    if (key.starts_with("slow")) {
      std::string k(key);
      absl::Status st = fiber.wait([this, k](Resumer r) {
        std::lock_guard lock(mu_);
        parked_.emplace_back(k, std::move(r));
      });
      if (!st.ok()) return st;
    }
    std::lock_guard lock(mu_);
    auto it = kv_.find(std::string(key));
    if (it == kv_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::Status kvSet(Fiber&, std::string_view key, std::string_view value) override {
    std::lock_guard lock(mu_);
    kv_[std::string(key)] = std::string(value);
    return absl::OkStatus();
  }
  absl::Status kvDelete(Fiber&, std::string_view key) override {
    std::lock_guard lock(mu_);
    kv_.erase(std::string(key));
    return absl::OkStatus();
  }
  absl::Status waitTriggered(Fiber&) override { return absl::OkStatus(); }
  // The real semantics live in kv::KvStore (and its tests); these are enough
  // to see each import's arguments and results cross the ABI.
  absl::StatusOr<bool> kvCas(Fiber&, std::string_view key, std::optional<std::string_view> expected,
                             std::string_view value) override {
    std::lock_guard lock(mu_);
    auto it = kv_.find(std::string(key));
    bool matches = expected ? (it != kv_.end() && it->second == *expected) : it == kv_.end();
    if (matches) kv_[std::string(key)] = std::string(value);
    return matches;
  }
  absl::StatusOr<int64_t> kvIncr(Fiber&, std::string_view key, int64_t delta) override {
    std::lock_guard lock(mu_);
    std::string& v = kv_[std::string(key)];
    int64_t base = 0, sum = 0;
    if (!v.empty() && !absl::SimpleAtoi(v, &base)) {
      return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not an integer"));
    }
    if (__builtin_add_overflow(base, delta, &sum)) return absl::OutOfRangeError("overflow");
    v = absl::StrCat(sum);
    return sum;
  }
  std::string invocationId() override { return "test-id.0"; }

  size_t parked() {
    std::lock_guard lock(mu_);
    return parked_.size();
  }
  // Gives every parked key the value "v:<key>" and wakes its invocation.
  void resumeAll() {
    std::vector<std::pair<std::string, Resumer>> p;
    {
      std::lock_guard lock(mu_);
      p.swap(parked_);
      for (auto& [k, r] : p) kv_[k] = "v:" + k;
    }
    for (auto& [k, r] : p) r.resume(absl::OkStatus());
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> kv_;
  std::vector<std::pair<std::string, Resumer>> parked_;
};

}  // namespace waverless::wasm::testing
