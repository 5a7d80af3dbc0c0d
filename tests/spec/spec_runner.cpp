// Runs the WebAssembly spec testsuite (core .wast files) through the
// production path: libwabt validation -> wasm2c -> cc (the engine's compile
// cache) -> dlopen -> instantiate -> call an export, on the engine's own
// runtime (rt/exec_context: traps, memories, signals) and executor fibers.
//
//   spec_runner --suite DIR --work DIR --cache DIR [--jobs N] [--only NAME]
//               [--report FILE.md]
//
// Exit codes: 0 all applicable commands passed, 1 a failure, 77 the suite
// folder is absent (ctest SKIP_RETURN_CODE).
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/process.h"
#include "json.h"
#include "wasm/compiler.h"
#include "wasm/executor.h"
#include "wasm/rt/exec_context.h"
#include "wasm/spec_entry.h"

namespace waverless::spec {
namespace {

namespace fs = std::filesystem;
using wasm::CompiledObject;
using wasm::Fiber;
namespace rt = wasm::rt;

std::string readAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// --- function types, process-wide ------------------------------------------

std::mutex g_types_mu;
std::map<std::string, uint32_t> g_types;
uint32_t registerType(const char* sig) {
  std::lock_guard lock(g_types_mu);
  return g_types.emplace(sig, static_cast<uint32_t>(g_types.size())).first->second;
}

// --- results ---------------------------------------------------------------

enum class Outcome { kPass, kFail, kSkip };
struct Tally {
  uint64_t pass = 0, fail = 0, skip = 0;
  void add(Outcome o) { (o == Outcome::kPass ? pass : o == Outcome::kFail ? fail : skip)++; }
};

// Why commands are skipped; each reason is stated once in the report.
const char* const kSkipSimd =
    "SIMD proposal: WABT 1.0.32's wasm2c cannot compile v128 (it aborts on any SIMD "
    "instruction)";
const char* const kSkipText =
    "text-format module (`module quote`): a test of the .wat parser; the engine loads "
    "only binary modules";

// --- a loaded object and its instances --------------------------------------

struct Object {
  void* dl = nullptr;
  const WlModuleDescriptor* desc = nullptr;
  const WlSpecModule* spec = nullptr;
};

struct Extern {
  uint32_t kind = 0;
  std::string type;
  WlSpecFunc func{};
  void* ptr = nullptr;  // global value, memory or table
};

struct Instance {
  const Object* object = nullptr;
  void* storage = nullptr;
  WlSpecImports env{};
  std::vector<WlSpecFunc> funcs;
  std::vector<void*> globals;
  std::vector<wasm_rt_memory_t*> memories;
  std::vector<wasm_rt_funcref_table_t*> ftables;
  std::vector<wasm_rt_externref_table_t*> etables;
  std::map<std::string, Extern> exports;
  wasm_rt_memory_t* memory = nullptr;
  bool instantiated = false;
  ~Instance() {
    if (storage != nullptr) {
      if (instantiated) object->desc->free_instance(storage);
      free(storage);
    }
  }
};

// The "spectest" module every script may import from.
struct SpecTest {
  uint32_t g_i32 = 666;
  uint64_t g_i64 = 666;
  float g_f32 = 666.6f;
  double g_f64 = 666.6;
  wasm_rt_memory_t memory{};
  wasm_rt_funcref_table_t table{};
  std::map<std::string, Extern> exports;
  ~SpecTest() {
    rt::hostApi()->free_memory(&memory);
    free(table.data);
  }
};

void printNothing(void*, const uint64_t*, uint64_t*) {}

// --- running on the executor -----------------------------------------------

// Runs fn on an executor fiber inside the production trap boundary.
struct Runner {
  wasm::Executor executor;
  Runner() : executor(wasm::ExecutorOptions{1, 1}) {}

  // Returns "" when fn returned, or the stop description; trap gets the code.
  std::string call(Instance* in, WlTrampoline fn, void* self, const uint64_t* args, uint64_t* res,
                   wasm_rt_trap_t* trap) {
    std::promise<std::string> p;
    auto fut = p.get_future();
    executor.spawn(wasm::Clock::now() + std::chrono::seconds(20), [&](Fiber& f) {
      rt::ExecContext& x = f.exec();
      x.mem_base = in != nullptr && in->memory != nullptr ? in->memory->data : nullptr;
      bool ok = rt::guestCall(&x, fn, self, args, res);
      *trap = x.trap;
      p.set_value(ok ? "" : rt::describeStop(x));
      x.stop = rt::StopReason::kNone;
      x.trap = WASM_RT_TRAP_NONE;
    });
    return fut.get();
  }
  std::string call2(void (*fn)(void*, void*), void* a, void* b, wasm_rt_trap_t* trap) {
    std::promise<std::string> p;
    auto fut = p.get_future();
    executor.spawn(wasm::Clock::now() + std::chrono::seconds(20), [&](Fiber& f) {
      rt::ExecContext& x = f.exec();
      x.mem_base = nullptr;
      bool ok = rt::guestCall(&x, fn, a, b);
      *trap = x.trap;
      p.set_value(ok ? "" : rt::describeStop(x));
      x.stop = rt::StopReason::kNone;
      x.trap = WASM_RT_TRAP_NONE;
    });
    return fut.get();
  }
};

// Our trap codes and the spec texts each one stands for. wasm2c 1.0.32 has
// one code for every out-of-bounds access (memory and table) and one for
// every failed call_indirect (index out of the table, null entry, type).
bool trapMatches(wasm_rt_trap_t t, const std::string& text) {
  std::vector<const char*> ok;
  switch (t) {
    case WASM_RT_TRAP_OOB:
      ok = {"out of bounds memory access", "out of bounds table access", "undefined element",
            "out of bounds"};
      break;
    case WASM_RT_TRAP_INT_OVERFLOW:
      ok = {"integer overflow"};
      break;
    case WASM_RT_TRAP_DIV_BY_ZERO:
      ok = {"integer divide by zero"};
      break;
    case WASM_RT_TRAP_INVALID_CONVERSION:
      ok = {"invalid conversion to integer"};
      break;
    case WASM_RT_TRAP_UNREACHABLE:
      ok = {"unreachable"};
      break;
    case WASM_RT_TRAP_CALL_INDIRECT:
      ok = {"indirect call type mismatch", "uninitialized element", "undefined element",
            "uninitialized"};
      break;
    case WASM_RT_TRAP_EXHAUSTION:
      ok = {"call stack exhausted"};
      break;
    default:
      break;
  }
  for (const char* o : ok) {
    if (text.starts_with(o)) return true;
  }
  return false;
}

// --- values ----------------------------------------------------------------

char letterOf(const std::string& type) {
  if (type == "i32") return 'i';
  if (type == "i64") return 'I';
  if (type == "f32") return 'f';
  if (type == "f64") return 'F';
  if (type == "funcref") return 'r';
  if (type == "externref") return 'e';
  return 0;
}

// The slot for an argument; externref n is the pointer n+1 (0 is null).
bool argSlot(const Json& v, uint64_t* slot, std::string* err) {
  std::string type = v.str("type"), val = v.str("value");
  char l = letterOf(type);
  if (l == 0) {
    *err = "argument of type " + type;
    return false;
  }
  if (l == 'r' || l == 'e') {
    *slot = val == "null" ? 0 : std::stoull(val) + 1;
    if (l == 'r' && *slot != 0) {
      *err = "non-null funcref argument";
      return false;
    }
    return true;
  }
  *slot = std::stoull(val);
  return true;
}

bool isCanonicalNan(uint64_t bits, bool f32) {
  return f32 ? (bits & 0x7fffffffu) == 0x7fc00000u
             : (bits & 0x7fffffffffffffffull) == 0x7ff8000000000000ull;
}
bool isArithmeticNan(uint64_t bits, bool f32) {
  return f32 ? (bits & 0x7fc00000u) == 0x7fc00000u
             : (bits & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
}

// Compares one result slot against an expected value (with the NaN rules).
bool resultMatches(const Json& e, uint64_t slot, char l, std::string* got) {
  std::string type = e.str("type"), val = e.str("value");
  *got = absl::StrCat(type, ":", slot);
  if (letterOf(type) != l) return false;
  switch (l) {
    case 'i':
      return static_cast<uint32_t>(slot) == static_cast<uint32_t>(std::stoull(val));
    case 'I':
      return slot == std::stoull(val);
    case 'f':
    case 'F': {
      bool f32 = l == 'f';
      uint64_t bits = f32 ? static_cast<uint32_t>(slot) : slot;
      if (val == "nan:canonical") return isCanonicalNan(bits, f32);
      if (val == "nan:arithmetic") return isArithmeticNan(bits, f32);
      return bits == std::stoull(val);
    }
    case 'e':
      return val == "null" ? slot == 0 : slot == std::stoull(val) + 1;
    case 'r':
      // wast2json writes ref.func results as a non-null funcref without a value.
      return val == "null" ? slot == 0 : slot != 0;
    default:
      return false;
  }
}

std::string letters(const std::string& type, size_t from, size_t to) {
  return type.substr(from, to - from);
}

// --- one script --------------------------------------------------------------

struct Compiled {
  absl::StatusOr<CompiledObject> object = absl::UnknownError("not compiled");
};

class Script {
 public:
  Script(std::string name, fs::path dir, Runner& runner,
         std::map<std::string, std::shared_ptr<Compiled>>& compiled)
      : name_(std::move(name)), dir_(std::move(dir)), runner_(runner), compiled_(compiled) {
    simd_ = name_.starts_with("simd_");
  }

  std::map<std::string, Tally> by_type;
  Tally total;
  std::map<std::string, uint64_t> skip_reasons;
  std::vector<std::string> failures;
  std::vector<std::string> late_refusals;

  void run(const Json& commands) {
    setUpSpecTest();
    for (const Json& c : commands.items) command(c);
  }

 private:
  void record(const std::string& type, Outcome o, int line, const std::string& why,
              const char* skip_reason = nullptr) {
    by_type[type].add(o);
    total.add(o);
    if (o == Outcome::kSkip) skip_reasons[skip_reason != nullptr ? skip_reason : why]++;
    if (o == Outcome::kFail)
      failures.push_back(absl::StrCat(name_, ":", line, " ", type, ": ", why));
  }

  void setUpSpecTest() {
    st_ = std::make_unique<SpecTest>();
    wasm_rt_trap_t trap;
    std::string err = runner_.call2(
        [](void* m, void*) {
          rt::hostApi()->allocate_memory(static_cast<wasm_rt_memory_t*>(m), 1, 2);
        },
        &st_->memory, nullptr, &trap);
    if (!err.empty()) failures.push_back(name_ + ": spectest memory: " + err);
    st_->table.size = 10;
    st_->table.max_size = 20;
    st_->table.data = static_cast<wasm_rt_funcref_t*>(calloc(10, sizeof(wasm_rt_funcref_t)));
    auto fn = [&](const char* n, const char* sig) {
      Extern e{WL_SPEC_FUNC, sig, {printNothing, nullptr}, nullptr};
      st_->exports[n] = e;
    };
    fn("print", ":");
    fn("print_i32", "i:");
    fn("print_i64", "I:");
    fn("print_f32", "f:");
    fn("print_f64", "F:");
    fn("print_i32_f32", "if:");
    fn("print_f64_f64", "FF:");
    st_->exports["global_i32"] = {WL_SPEC_GLOBAL, "i", {}, &st_->g_i32};
    st_->exports["global_i64"] = {WL_SPEC_GLOBAL, "I", {}, &st_->g_i64};
    st_->exports["global_f32"] = {WL_SPEC_GLOBAL, "f", {}, &st_->g_f32};
    st_->exports["global_f64"] = {WL_SPEC_GLOBAL, "F", {}, &st_->g_f64};
    st_->exports["memory"] = {WL_SPEC_MEMORY, "", {}, &st_->memory};
    st_->exports["table"] = {WL_SPEC_TABLE, "r", {}, &st_->table};
    registry_["spectest"] = &st_->exports;
  }

  absl::StatusOr<Object*> load(const std::string& file) {
    auto it = compiled_.find(dir_.string() + "/" + file);
    if (it == compiled_.end()) return absl::InternalError("module was not compiled");
    const auto& obj = it->second->object;
    if (!obj.ok()) return obj.status();
    auto& slot = objects_[obj->path.string()];
    if (slot) return slot.get();
    auto o = std::make_unique<Object>();
    o->dl = dlopen(obj->path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (o->dl == nullptr) return absl::InternalError(absl::StrCat("dlopen: ", dlerror()));
    auto entry = reinterpret_cast<WlModuleEntryFn>(dlsym(o->dl, WL_MODULE_ENTRY));
    auto spec = reinterpret_cast<WlSpecEntryFn>(dlsym(o->dl, WL_SPEC_ENTRY));
    if (entry == nullptr || spec == nullptr) return absl::InternalError("no entry symbols");
    o->desc = entry(rt::hostApi());
    o->spec = spec(registerType);
    if (o->desc->abi_version != WL_MODULE_ABI_VERSION || obj->build_key != o->desc->build_key) {
      return absl::InternalError("stale object");
    }
    o->desc->init_module();
    slot = std::move(o);
    return slot.get();
  }

  // Resolves imports: "unknown import" / "incompatible import type".
  absl::Status link(Instance& in) {
    const WlSpecModule* s = in.object->spec;
    for (uint32_t i = 0; i < s->import_count; ++i) {
      const WlSpecExtern& imp = s->imports[i];
      std::string what = absl::StrCat(imp.module, ".", imp.name);
      auto mod = registry_.find(imp.module);
      if (mod == registry_.end()) return absl::NotFoundError("unknown import: module " + what);
      auto ex = mod->second->find(std::string(imp.name, imp.name_len));
      if (ex == mod->second->end()) return absl::NotFoundError("unknown import: " + what);
      const Extern& e = ex->second;
      if (e.kind != imp.kind || e.type != imp.type) {
        return absl::InvalidArgumentError("incompatible import type: " + what);
      }
      uint64_t cur = 0, max = UINT64_MAX;
      switch (imp.kind) {
        case WL_SPEC_FUNC:
          in.funcs.push_back(e.func);
          break;
        case WL_SPEC_GLOBAL:
          in.globals.push_back(e.ptr);
          break;
        case WL_SPEC_MEMORY: {
          auto* m = static_cast<wasm_rt_memory_t*>(e.ptr);
          cur = m->pages;
          max = m->max_pages == UINT32_MAX || m->max_pages == 65536 ? UINT64_MAX : m->max_pages;
          in.memories.push_back(m);
          in.memory = m;
          break;
        }
        case WL_SPEC_TABLE:
          if (std::string(imp.type) == "r") {
            auto* t = static_cast<wasm_rt_funcref_table_t*>(e.ptr);
            cur = t->size;
            max = t->max_size == UINT32_MAX ? UINT64_MAX : t->max_size;
            in.ftables.push_back(t);
          } else {
            auto* t = static_cast<wasm_rt_externref_table_t*>(e.ptr);
            cur = t->size;
            max = t->max_size == UINT32_MAX ? UINT64_MAX : t->max_size;
            in.etables.push_back(t);
          }
          break;
      }
      if ((imp.kind == WL_SPEC_MEMORY || imp.kind == WL_SPEC_TABLE) &&
          (cur < imp.min || (imp.max != UINT64_MAX && max > imp.max))) {
        return absl::InvalidArgumentError("incompatible import type: limits of " + what);
      }
    }
    in.env = {&in.env,           in.funcs.data(),  in.globals.data(), in.memories.data(),
              in.ftables.data(), in.etables.data()};
    return absl::OkStatus();
  }

  // Links and instantiates; the error says which step refused.
  absl::StatusOr<std::unique_ptr<Instance>> instantiate(Object* o, bool* link_failed,
                                                        wasm_rt_trap_t* trap) {
    auto in = std::make_unique<Instance>();
    in->object = o;
    *link_failed = false;
    if (absl::Status st = link(*in); !st.ok()) {
      *link_failed = true;
      return st;
    }
    size_t size = (o->desc->instance_size + 63) / 64 * 64;
    in->storage = aligned_alloc(64, size);
    memset(in->storage, 0, size);
    std::string err = runner_.call2(o->desc->instantiate, in->storage, &in->env, trap);
    in->instantiated = true;  // free_instance copes with a partly built one
    if (!err.empty()) return absl::AbortedError(err);
    if (in->memory == nullptr) in->memory = o->desc->memory(in->storage);
    for (uint32_t i = 0; i < o->spec->export_count; ++i) {
      const WlSpecExtern& x = o->spec->exports[i];
      Extern e{x.kind, x.type, {x.call, in->storage}, nullptr};
      if (x.get != nullptr) e.ptr = x.get(in->storage);
      in->exports[std::string(x.name, x.name_len)] = e;
    }
    return in;
  }

  Instance* target(const Json& action) {
    std::string m = action.str("module");
    if (m.empty()) return current_;
    auto it = named_.find(m);
    return it == named_.end() ? nullptr : it->second;
  }

  // Runs an action; returns "" or the failure, with results and trap.
  struct ActionResult {
    bool trapped = false;
    wasm_rt_trap_t trap = WASM_RT_TRAP_NONE;
    std::string stop;
    std::vector<uint64_t> slots;
    std::string result_letters;
  };
  absl::StatusOr<ActionResult> act(const Json& action) {
    Instance* in = target(action);
    if (in == nullptr) return absl::FailedPreconditionError("no module instance");
    auto it = in->exports.find(action.str("field"));
    if (it == in->exports.end()) return absl::NotFoundError("no export " + action.str("field"));
    const Extern& e = it->second;
    ActionResult r;
    if (action.str("type") == "get") {
      if (e.kind != WL_SPEC_GLOBAL) return absl::InvalidArgumentError("not a global");
      char l = e.type[0];
      uint64_t v = 0;
      if (l == 'i' || l == 'f') {
        memcpy(&v, e.ptr, 4);
      } else if (l == 'I' || l == 'F' || l == 'e') {
        memcpy(&v, e.ptr, 8);
      } else {
        v = reinterpret_cast<uintptr_t>(static_cast<wasm_rt_funcref_t*>(e.ptr)->func);
      }
      r.slots.push_back(v);
      r.result_letters = std::string(1, l);
      return r;
    }
    if (e.kind != WL_SPEC_FUNC) return absl::InvalidArgumentError("not a function");
    size_t colon = e.type.find(':');
    const Json* args = action.get("args");
    std::vector<uint64_t> a(std::max<size_t>(1, args ? args->items.size() : 0));
    if (args != nullptr) {
      if (args->items.size() != colon) return absl::InvalidArgumentError("argument count");
      for (size_t i = 0; i < args->items.size(); ++i) {
        std::string err;
        if (!argSlot(args->items[i], &a[i], &err)) return absl::UnimplementedError(err);
      }
    }
    r.result_letters = letters(e.type, colon + 1, e.type.size());
    r.slots.assign(r.result_letters.size() + 1, 0);
    r.stop = runner_.call(in, e.func.call, e.func.instance, a.data(), r.slots.data(), &r.trap);
    r.trapped = !r.stop.empty();
    r.slots.resize(r.result_letters.size());
    return r;
  }

  void command(const Json& c) {
    std::string type = c.str("type");
    int line = std::stoi(c.str("line"));
    std::string file = c.str("filename");
    bool text = c.str("module_type") == "text";

    if (type == "assert_invalid" || type == "assert_malformed") {
      if (text) return record(type, Outcome::kSkip, line, "", kSkipText);
      auto it = compiled_.find(dir_.string() + "/" + file);
      const auto& obj = it->second->object;
      if (obj.ok()) return record(type, Outcome::kFail, line, "loaded, expected: " + c.str("text"));
      // Validation let it through and wasm2c aborted on its SIMD code: not a real refusal.
      if (obj.status().code() == absl::StatusCode::kUnimplemented) {
        return record(type, Outcome::kSkip, line, "", kSkipSimd);
      }
      // Refused at load: by libwabt's validation, or (a few WABT 1.0.32
      // misses, see docs/engine.md) by wasm2c or cc right after it.
      if (obj.status().message().find("invalid wasm module") == std::string::npos) {
        late_refusals.push_back(absl::StrCat(name_, ":", line, " ", type, " (", c.str("text"),
                                             "): ", obj.status().message().substr(0, 60)));
      }
      return record(type, Outcome::kPass, line, "");
    }
    if (simd_ && type != "register") {
      if (type == "module") current_ = nullptr;
      return record(type, Outcome::kSkip, line, "", kSkipSimd);
    }
    if (type == "module" || type == "assert_unlinkable" || type == "assert_uninstantiable" ||
        (type == "assert_trap" && !file.empty())) {
      bool is_module = type == "module";
      if (is_module) current_ = nullptr;
      auto o = load(file);
      if (!o.ok()) {
        if (o.status().code() == absl::StatusCode::kUnimplemented) {
          return record(type, Outcome::kSkip, line, "", kSkipSimd);
        }
        if (type == "assert_unlinkable") {  // refused at load: wasm2c cannot link it either
          late_refusals.push_back(absl::StrCat(name_, ":", line, " ", type, " (", c.str("text"),
                                               "): ", o.status().message().substr(0, 60)));
          return record(type, Outcome::kPass, line, "");
        }
        return record(type, Outcome::kFail, line, std::string(o.status().message()));
      }
      bool link_failed = false;
      wasm_rt_trap_t trap = WASM_RT_TRAP_NONE;
      auto in = instantiate(*o, &link_failed, &trap);
      if (is_module) {
        if (!in.ok()) return record(type, Outcome::kFail, line, std::string(in.status().message()));
        current_ = in->get();
        if (!c.str("name").empty()) named_[c.str("name")] = current_;
        instances_.push_back(std::move(*in));
        return record(type, Outcome::kPass, line, "");
      }
      if (in.ok()) {
        instances_.push_back(std::move(*in));  // it may have written into shared state
        return record(type, Outcome::kFail, line, "instantiated, expected: " + c.str("text"));
      }
      if (type == "assert_unlinkable") {
        return record(type, link_failed ? Outcome::kPass : Outcome::kFail, line,
                      std::string(in.status().message()));
      }
      if (link_failed)
        return record(type, Outcome::kFail, line, std::string(in.status().message()));
      if (type == "assert_trap" && !trapMatches(trap, c.str("text"))) {
        return record(type, Outcome::kFail, line,
                      absl::StrCat(in.status().message(), ", expected: ", c.str("text")));
      }
      return record(type, Outcome::kPass, line, "");
    }
    if (type == "register") {
      Instance* in = c.str("name").empty() ? current_ : named_[c.str("name")];
      if (in == nullptr) return record(type, Outcome::kFail, line, "no instance to register");
      registry_[c.str("as")] = &in->exports;
      return record(type, Outcome::kPass, line, "");
    }
    const Json* action = c.get("action");
    if (action == nullptr) return record(type, Outcome::kFail, line, "unknown command");
    auto r = act(*action);
    if (!r.ok()) {
      return record(type, Outcome::kFail, line, std::string(r.status().message()));
    }
    if (type == "action") {
      return record(type, r->trapped ? Outcome::kFail : Outcome::kPass, line, r->stop);
    }
    if (type == "assert_trap" || type == "assert_exhaustion") {
      if (!r->trapped) return record(type, Outcome::kFail, line, "returned, expected a trap");
      bool ok = trapMatches(r->trap, c.str("text")) &&
                (type != "assert_exhaustion" || r->trap == WASM_RT_TRAP_EXHAUSTION);
      return record(type, ok ? Outcome::kPass : Outcome::kFail, line,
                    r->stop + ", expected: " + c.str("text"));
    }
    if (type == "assert_return") {
      if (r->trapped) return record(type, Outcome::kFail, line, r->stop);
      const Json* expected = c.get("expected");
      if (expected == nullptr || expected->items.size() != r->slots.size()) {
        return record(type, Outcome::kFail, line, "result count");
      }
      for (size_t i = 0; i < r->slots.size(); ++i) {
        std::string got;
        if (!resultMatches(expected->items[i], r->slots[i], r->result_letters[i], &got)) {
          return record(type, Outcome::kFail, line,
                        absl::StrCat(action->str("field"), ": result ", i, " is ", got,
                                     ", expected ", expected->items[i].str("value")));
        }
      }
      return record(type, Outcome::kPass, line, "");
    }
    record(type, Outcome::kFail, line, "unknown command");
  }

  std::string name_;
  fs::path dir_;
  Runner& runner_;
  std::map<std::string, std::shared_ptr<Compiled>>& compiled_;
  bool simd_ = false;
  std::unique_ptr<SpecTest> st_;
  std::map<std::string, std::unique_ptr<Object>> objects_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::map<std::string, Instance*> named_;
  std::map<std::string, std::map<std::string, Extern>*> registry_;
  Instance* current_ = nullptr;
};

bool objectCurrent(const CompiledObject& obj) {
  void* dl = dlopen(obj.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) return false;
  auto entry = reinterpret_cast<WlModuleEntryFn>(dlsym(dl, WL_MODULE_ENTRY));
  const WlModuleDescriptor* d = entry != nullptr ? entry(rt::hostApi()) : nullptr;
  bool ok =
      d != nullptr && d->abi_version == WL_MODULE_ABI_VERSION && obj.build_key == d->build_key;
  dlclose(dl);
  return ok;
}

struct Options {
  fs::path suite, work, cache, report;
  int jobs = 2;
  std::string only;
};

int run(const Options& opt) {
  auto t0 = std::chrono::steady_clock::now();
  if (!fs::is_directory(opt.suite)) {
    printf("SKIP: the spec testsuite folder %s is absent; nothing to run\n", opt.suite.c_str());
    return 77;
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(opt.suite)) {
    if (e.path().extension() == ".wast" &&
        (opt.only.empty() || e.path().stem().string() == opt.only)) {
      names.push_back(e.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  rt::installSignalHandlers();

  // 1. wast2json (kept while the .wast is unchanged) and the module list.
  std::vector<Json> scripts(names.size());
  std::map<std::string, std::shared_ptr<Compiled>> compiled;
  std::vector<std::pair<std::string, bool>> to_compile;  // path, simd
  for (size_t i = 0; i < names.size(); ++i) {
    fs::path dir = opt.work / names[i];
    fs::path json = dir / (names[i] + ".json");
    fs::path wast = opt.suite / (names[i] + ".wast");
    std::error_code ec;
    if (!fs::exists(json) || fs::last_write_time(json) < fs::last_write_time(wast)) {
      fs::create_directories(dir, ec);
      auto r = runProcess({"wast2json", wast.string(), "-o", json.string()});
      if (!r.ok() || r->exit_code != 0) {
        fprintf(stderr, "wast2json %s failed\n", wast.c_str());
        return 1;
      }
    }
    if (!JsonReader(readAll(json)).parse(&scripts[i])) {
      fprintf(stderr, "cannot parse %s\n", json.c_str());
      return 1;
    }
    for (const Json& c : scripts[i].get("commands")->items) {
      std::string f = c.str("filename");
      if (f.empty() || c.str("module_type") == "text") continue;
      std::string path = (dir / f).string();
      if (compiled.emplace(path, std::make_shared<Compiled>()).second) {
        to_compile.emplace_back(path, names[i].starts_with("simd_"));
      }
    }
  }

  // 2. Compile every binary module, jobs at a time (cached by content).
  wasm::ModuleCompiler compiler(wasm::CompilerOptions{opt.cache, 2});
  std::atomic<size_t> next{0}, built{0};
  {
    std::vector<std::jthread> pool;
    for (int j = 0; j < opt.jobs; ++j) {
      pool.emplace_back([&] {
        for (size_t k; (k = next++) < to_compile.size();) {
          const auto& [path, simd] = to_compile[k];
          std::string bytes = readAll(path);
          std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size());
          auto r = wasm::spec::compileSpecModule(compiler, span);
          // A cached object of an older ABI is rebuilt, as Engine::load does.
          if (r.ok() && r->from_cache && !objectCurrent(*r)) {
            compiler.evict(*r);
            r = wasm::spec::compileSpecModule(compiler, span);
          }
          // wasm2c aborts on SIMD; those modules are the proposal's skip.
          if (!r.ok() && simd &&
              r.status().message().find("invalid wasm module") == std::string::npos) {
            r = absl::UnimplementedError("SIMD");
          }
          if (r.ok() && !r->from_cache) built++;
          compiled[path]->object = std::move(r);
        }
      });
    }
  }
  auto t1 = std::chrono::steady_clock::now();

  // 3. Run each script's commands in order.
  Runner runner;
  if (!runner.executor.start().ok()) return 1;
  std::map<std::string, Tally> by_type;
  std::map<std::string, uint64_t> skips;
  Tally total;
  std::string table;
  std::vector<std::string> failures, late;
  for (size_t i = 0; i < names.size(); ++i) {
    Script s(names[i], opt.work / names[i], runner, compiled);
    s.run(*scripts[i].get("commands"));
    for (auto& [t, n] : s.by_type) {
      by_type[t].pass += n.pass;
      by_type[t].fail += n.fail;
      by_type[t].skip += n.skip;
    }
    for (auto& [r, n] : s.skip_reasons) skips[r] += n;
    total.pass += s.total.pass;
    total.fail += s.total.fail;
    total.skip += s.total.skip;
    absl::StrAppend(&table, "| ", names[i], " | ", s.total.pass, " | ", s.total.fail, " | ",
                    s.total.skip, " |\n");
    failures.insert(failures.end(), s.failures.begin(), s.failures.end());
    late.insert(late.end(), s.late_refusals.begin(), s.late_refusals.end());
  }
  runner.executor.stop();
  auto t2 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };

  std::string report = absl::StrCat("| command | passed | failed | skipped |\n|---|---|---|---|\n");
  for (auto& [t, n] : by_type) {
    absl::StrAppend(&report, "| ", t, " | ", n.pass, " | ", n.fail, " | ", n.skip, " |\n");
  }
  absl::StrAppend(&report, "| **all** | ", total.pass, " | ", total.fail, " | ", total.skip,
                  " |\n\nSkipped:\n\n");
  for (auto& [r, n] : skips) absl::StrAppend(&report, "- ", n, ": ", r, "\n");
  absl::StrAppend(&report, "\n| file | passed | failed | skipped |\n|---|---|---|---|\n", table);
  absl::StrAppendFormat(
      &report,
      "\n%zu modules, %zu compiled now (the rest from the cache): %.1f s; commands run: %.1f s\n",
      to_compile.size(), built.load(), secs(t0, t1), secs(t1, t2));
  absl::StrAppend(&report, "\nRefused after validation (by wasm2c or cc):\n\n");
  for (const auto& l : late) absl::StrAppend(&report, "- ", l, "\n");
  for (const auto& f : failures) printf("FAIL %s\n", f.c_str());
  printf("%s", report.c_str());
  if (!opt.report.empty()) std::ofstream(opt.report) << report;
  return total.fail == 0 ? 0 : 1;
}

}  // namespace
}  // namespace waverless::spec

int main(int argc, char** argv) {
  waverless::spec::Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--suite")
      opt.suite = v;
    else if (k == "--work")
      opt.work = v;
    else if (k == "--cache")
      opt.cache = v;
    else if (k == "--report")
      opt.report = v;
    else if (k == "--jobs")
      opt.jobs = std::max(1, std::stoi(v));
    else if (k == "--only")
      opt.only = v;
  }
  if (opt.suite.empty() || opt.work.empty() || opt.cache.empty()) {
    fprintf(stderr,
            "usage: spec_runner --suite DIR --work DIR --cache DIR [--jobs N] [--only NAME] "
            "[--report FILE]\n");
    return 2;
  }
  return waverless::spec::run(opt);
}
