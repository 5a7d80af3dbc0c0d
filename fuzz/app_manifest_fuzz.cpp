// Fuzzes app.yaml parsing and validation (app::parseManifest): any bytes
// must give a manifest or an InvalidArgument error naming file and line,
// never a crash, an exception or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "app/app_manifest.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    __builtin_printf("app_manifest_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto m = waverless::app::parseManifest(yaml, "fuzzapp");
  if (!m.ok()) {
    check(m.status().code() == absl::StatusCode::kInvalidArgument, "error is not InvalidArgument");
    check(std::string(m.status().message()).starts_with("app.yaml"),
          "error does not name the file");
    return 0;
  }
  // A valid manifest answers every question about itself.
  std::vector<std::string> exports;
  for (const auto& fn : m->fns) {
    check(m->find(fn.name) == &fn, "find() misses a declared function");
    exports.push_back(fn.name);
    for (const auto& kv : fn.kvs) {
      const std::string& key = kv.pattern.text();
      (void)m->allowed(fn, waverless::app::KvOp::kGet, key);
      (void)m->triggeredBy(key);
      (void)kv.pattern.bind(key);
    }
    for (const auto& ev : fn.events) {
      if (ev.kind == waverless::app::EventSpec::Kind::kHttp) {
        check(m->httpFn(ev.method == "ANY" ? "GET" : ev.method, ev.path) != nullptr,
              "an http trigger does not route to any function");
      }
    }
  }
  (void)m->httpAppFn();
  check(waverless::app::checkExports(*m, exports).ok(), "checkExports rejects its own functions");
  return 0;
}
