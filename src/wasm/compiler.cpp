#include "wasm/compiler.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/process.h"
#include "wabt/binary-reader-ir.h"
#include "wabt/binary-reader.h"
#include "wabt/cast.h"
#include "wabt/error-formatter.h"
#include "wabt/ir.h"
#include "wabt/validator.h"
#include "wasm/host_abi.h"
#include "wasm/rt/module_abi.h"

namespace waverless::wasm {

// The text of rt/module_abi.h, embedded at build time (module_abi_text.cpp).
extern const char* const kModuleAbiHeaderText;

namespace {

std::string sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) absl::StrAppendFormat(&hex, "%02x", md[i]);
  return hex;
}

char typeLetter(wabt::Type t) {
  switch (t) {
    case wabt::Type::I32:
      return 'i';
    case wabt::Type::I64:
      return 'I';
    case wabt::Type::F32:
      return 'f';
    case wabt::Type::F64:
      return 'F';
    default:
      return '?';
  }
}

std::string signatureOf(const wabt::FuncSignature& sig) {
  std::string s;
  for (auto t : sig.param_types) s += typeLetter(t);
  s += ':';
  for (auto t : sig.result_types) s += typeLetter(t);
  return s;
}

const char* cType(char letter) {
  switch (letter) {
    case 'i':
      return "u32";
    case 'I':
      return "u64";
    case 'f':
      return "f32";
    default:
      return "f64";
  }
}

// wasm2c 1.0.32's name mangling: [A-Za-z0-9_] except 'Z' stay, anything else
// becomes Z followed by two hex digits.
std::string mangle(std::string_view name) {
  std::string out;
  for (unsigned char c : name) {
    if ((isalnum(c) && c != 'Z') || c == '_') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "Z%02X", c);
    }
  }
  return out;
}

struct ImportUse {
  std::string module, name, signature;
  size_t host_id;
};
struct ExportUse {
  std::string name, signature;
};
struct ModuleShape {
  std::vector<ImportUse> imports;
  std::vector<std::string> import_modules;  // distinct, any order
  std::vector<ExportUse> exports;
};

// libwabt's reader and validator with the features wasm2c compiles.
absl::Status readAndValidate(std::span<const uint8_t> wasm, wabt::Module* module) {
  wabt::Errors errors;
  wabt::Features features;
  wabt::ReadBinaryOptions read_options(features, nullptr,
                                       /*read_debug_names=*/false,
                                       /*stop_on_first_error=*/true,
                                       /*fail_on_custom_section_error=*/false);
  if (wabt::Failed(wabt::ReadBinaryIr("module.wasm", wasm.data(), wasm.size(), read_options,
                                      &errors, module)) ||
      wabt::Failed(wabt::ValidateModule(module, &errors, wabt::ValidateOptions(features)))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid wasm module: ", wabt::FormatErrorsToString(errors, wabt::Location::Type::Binary)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModuleShape> inspect(const wabt::Module& module) {
  ModuleShape shape;
  std::set<std::string> modules;
  auto host = hostImports();
  for (const wabt::Import* imp : module.imports) {
    std::string what = absl::StrCat(imp->module_name, ".", imp->field_name);
    if (imp->kind() != wabt::ExternalKind::Func) {
      return absl::InvalidArgumentError(
          absl::StrCat("import ", what,
                       ": only function imports are provided (the module must define its "
                       "own memory and tables)"));
    }
    const auto* fimp = wabt::cast<wabt::FuncImport>(imp);
    std::string sig = signatureOf(fimp->func.decl.sig);
    size_t id = host.size();
    for (size_t i = 0; i < host.size(); ++i) {
      if (host[i].module == imp->module_name && host[i].name == imp->field_name) {
        id = i;
        break;
      }
    }
    if (id == host.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("import ", what, " is not provided by the host"));
    }
    if (host[id].signature != sig) {
      return absl::InvalidArgumentError(absl::StrCat("import ", what, " has signature (", sig,
                                                     ") but the host provides (",
                                                     std::string(host[id].signature), ")"));
    }
    shape.imports.push_back({imp->module_name, imp->field_name, sig, id});
    modules.insert(imp->module_name);
  }
  shape.import_modules.assign(modules.begin(), modules.end());
  if (module.memories.size() != 1) {
    return absl::InvalidArgumentError("the module must define exactly one linear memory");
  }
  bool memory_exported = false;
  for (const wabt::Export* exp : module.exports) {
    if (exp->kind == wabt::ExternalKind::Memory && exp->name == "memory") {
      memory_exported = true;
    }
    if (exp->kind != wabt::ExternalKind::Func) continue;
    const wabt::Func* fn = module.GetFunc(exp->var);
    if (fn == nullptr || fn->decl.sig.result_types.size() > 1) continue;
    std::string sig = signatureOf(fn->decl.sig);
    if (sig.find('?') != std::string::npos) continue;  // refs, v128
    shape.exports.push_back({exp->name, sig});
  }
  if (!memory_exported) {
    return absl::InvalidArgumentError("the module must export its linear memory as \"memory\"");
  }
  return shape;
}

// The wasm-rt.h functions every descriptor defines, in three parts so a
// test-only descriptor (spec_entry.cpp) can replace the type registry.
constexpr const char* kRuntimeHead = R"C(
void wasm_rt_init(void) {}
bool wasm_rt_is_initialized(void) { return true; }
void wasm_rt_free(void) {}
void wasm_rt_trap(wasm_rt_trap_t c) { H->trap(c); }
const char* wasm_rt_strerror(wasm_rt_trap_t t) { (void)t; return "trap"; }
void wasm_rt_allocate_memory(wasm_rt_memory_t* m, uint32_t i, uint32_t x) {
  H->allocate_memory(m, i, x);
}
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t* m, uint32_t d) {
  return H->grow_memory(m, d);
}
void wasm_rt_free_memory(wasm_rt_memory_t* m) { H->free_memory(m); }

)C";
constexpr const char* kTypeRegistry =
    R"C(/* Function types are compared only within this module (tables are never
 * shared), so the registry is local; init_module runs once under a lock. */
typedef struct { uint32_t p, r; wasm_rt_type_t t[32]; } FT;
static FT* ft; static uint32_t nft;
uint32_t wasm_rt_register_func_type(uint32_t p, uint32_t r, ...) {
  FT f; memset(&f, 0, sizeof f); f.p = p; f.r = r;
  va_list ap; va_start(ap, r);
  for (uint32_t i = 0; i < p + r && i < 32; ++i) f.t[i] = va_arg(ap, wasm_rt_type_t);
  va_end(ap);
  for (uint32_t i = 0; i < nft; ++i) if (!memcmp(&ft[i], &f, sizeof f)) return i;
  ft = (FT*)realloc(ft, (nft + 1) * sizeof(FT)); ft[nft] = f; return nft++;
}

)C";
constexpr const char* kRuntimeTail =
    R"C(#define WL_TABLE(T, NULLV)                                                    \
  void wasm_rt_allocate_##T##_table(wasm_rt_##T##_table_t* t, uint32_t n,    \
                                    uint32_t max) {                           \
    t->size = n; t->max_size = max;                                           \
    t->data = calloc(n ? n : 1, sizeof(*t->data));                            \
    if (!t->data) H->trap(WASM_RT_TRAP_EXHAUSTION);                           \
  }                                                                           \
  void wasm_rt_free_##T##_table(wasm_rt_##T##_table_t* t) {                   \
    free(t->data); t->data = 0; t->size = 0;                                  \
  }                                                                           \
  uint32_t wasm_rt_grow_##T##_table(wasm_rt_##T##_table_t* t, uint32_t d,    \
                                    wasm_rt_##T##_t init) {                   \
    uint32_t old = t->size; uint64_t n = (uint64_t)old + d;                   \
    if (n > t->max_size || n > (1u << 24)) return UINT32_MAX;                 \
    void* p = realloc(t->data, (n ? n : 1) * sizeof(*t->data));               \
    if (!p) return UINT32_MAX;                                                \
    t->data = p;                                                              \
    for (uint64_t i = old; i < n; ++i) t->data[i] = init;                     \
    t->size = (uint32_t)n; return old;                                        \
  }
WL_TABLE(funcref, wasm_rt_funcref_null_value)
WL_TABLE(externref, wasm_rt_externref_null_value)

/* Exception handling is not enabled in wasm2c; these satisfy the interface. */
static jmp_buf* unwind_target;
uint32_t wasm_rt_register_tag(uint32_t size) { (void)size; return 0; }
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void* v) {
  (void)tag; (void)size; (void)v;
}
void wasm_rt_throw(void) { H->trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION); }
WASM_RT_UNWIND_TARGET* wasm_rt_get_unwind_target(void) { return unwind_target; }
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET* t) { unwind_target = t; }
uint32_t wasm_rt_exception_tag(void) { return 0; }
uint32_t wasm_rt_exception_size(void) { return 0; }
void* wasm_rt_exception(void) { return 0; }

)C";

// The fields of wasm2c's instance struct, read from its module.h: the header
// is the one place that lists them, so reading it keeps the generated
// snapshot code (restore_instance, save_state, load_state) in step with
// wasm2c's layout. Plain values (globals, segment-dropped flags) need no
// fixing up; import envs, the memory header and tables hold pointers. Any
// other pointer field (an imported global, memory or table) makes the
// module unsnapshottable (ok false).
struct InstanceLayout {
  bool ok = false;
  std::vector<std::string> envs, funcref_tables, externref_tables, bools;
  std::string memory;
};

InstanceLayout parseInstance(std::string_view module_h, const std::string& inst) {
  InstanceLayout l;
  std::string open = absl::StrCat("typedef struct ", inst, " {");
  size_t begin = module_h.find(open);
  size_t end = module_h.find(absl::StrCat("} ", inst, ";"));
  if (module_h.empty() || begin == std::string_view::npos || end == std::string_view::npos) {
    return l;
  }
  std::string_view body = module_h.substr(begin + open.size(), end - begin - open.size());
  for (size_t pos = 0; pos < body.size();) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) continue;
    if (line.back() != ';') return l;
    line.remove_suffix(1);
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) return l;
    std::string type(line.substr(0, sp)), name(line.substr(sp + 1));
    if (type.starts_with("struct ") && type.ends_with("_instance_t*")) {
      l.envs.push_back(name);
    } else if (type == "wasm_rt_memory_t" && l.memory.empty()) {
      l.memory = name;
    } else if (type == "wasm_rt_funcref_table_t") {
      l.funcref_tables.push_back(name);
    } else if (type == "wasm_rt_externref_table_t") {
      l.externref_tables.push_back(name);
    } else if (type.find('*') != std::string::npos || type.find('[') != std::string::npos ||
               name.find('[') != std::string::npos || type.starts_with("wasm_rt_")) {
      return l;
    } else if (type == "bool") {
      l.bools.push_back(name);
    }
  }
  l.ok = !l.memory.empty();
  return l;
}

// restore_instance (see module_abi.h).
std::string restoreInstance(const InstanceLayout& l, const std::string& inst) {
  if (!l.ok) return "#define WL_RESTORE 0\n";
  std::ostringstream c;
  c << "#define WL_RESTORE restore_instance\n"
    << "static void restore_instance(void* dst, const void* src, void* env) {\n"
    << "  " << inst << "* d = (" << inst << "*)dst;\n"
    << "  const " << inst << "* s = (const " << inst << "*)src;\n"
    << "  const char* lo = (const char*)s; const char* hi = lo + sizeof *s;\n"
    << "  (void)lo; (void)hi;\n"
    << "  wasm_rt_memory_t mem = d->" << l.memory << ";\n";
  for (const auto& t : l.funcref_tables) c << "  free(d->" << t << ".data);\n";
  for (const auto& t : l.externref_tables) c << "  free(d->" << t << ".data);\n";
  c << "  *d = *s;\n  d->" << l.memory << " = mem;\n";
  for (const auto& e : l.envs) c << "  d->" << e << " = env;\n";
  // A funcref's module_instance is the instance (a function of this module)
  // or the address of its field holding an import's env: both move with it.
  for (const auto& t : l.funcref_tables) {
    c << "  d->" << t << ".data = malloc((s->" << t << ".size ? s->" << t
      << ".size : 1) * sizeof *s->" << t << ".data);\n"
      << "  if (!d->" << t << ".data) H->trap(WASM_RT_TRAP_EXHAUSTION);\n"
      << "  for (uint32_t i = 0; i < s->" << t << ".size; ++i) {\n"
      << "    wasm_rt_funcref_t f = s->" << t << ".data[i];\n"
      << "    const char* m = (const char*)f.module_instance;\n"
      << "    if (m >= lo && m < hi) f.module_instance = (char*)d + (m - lo);\n"
      << "    d->" << t << ".data[i] = f;\n  }\n";
  }
  for (const auto& t : l.externref_tables) {
    c << "  d->" << t << ".data = malloc((s->" << t << ".size ? s->" << t
      << ".size : 1) * sizeof *s->" << t << ".data);\n"
      << "  if (!d->" << t << ".data) H->trap(WASM_RT_TRAP_EXHAUSTION);\n"
      << "  memcpy(d->" << t << ".data, s->" << t << ".data, s->" << t << ".size * sizeof *s->" << t
      << ".data);\n";
  }
  c << "}\n";
  return c.str();
}

// save_state and load_state (see module_abi.h). The saved form is the
// struct's bytes with every pointer field zeroed, then per funcref table
// its size and max and per entry the (table, index) of the same function
// in `fresh`, a just-instantiated instance of the module in the process at
// hand: a function pointer is never written, so a saved state read back
// can only name functions the module itself put in a table; then per
// externref table its size and max (its entries are null: the host hands
// out no externrefs). load_state checks every size and index against
// `fresh` and the length, since the bytes come from disk or a peer.
std::string savedState(const InstanceLayout& l, const std::string& inst) {
  if (!l.ok) return "#define WL_SAVE 0\n#define WL_LOAD 0\n";
  std::ostringstream c;
  c << "#define WL_SAVE save_state\n#define WL_LOAD load_state\n"
    << "static int wl_same(const wasm_rt_funcref_table_t* t, uint32_t j, wasm_rt_funcref_t e,\n"
    << "                   ptrdiff_t off, const void* f) {\n"
    << "  if (j >= t->size) return 0;\n"
    << "  wasm_rt_funcref_t g = t->data[j];\n"
    << "  return g.func == e.func && g.func_type == e.func_type &&\n"
    << "         (const char*)g.module_instance - (const char*)f == off;\n}\n"
    << "static void wl_put32(uint8_t* o, uint64_t cap, uint64_t* n, uint32_t v) {\n"
    << "  if (*n + 4 <= cap) memcpy(o + *n, &v, 4); *n += 4;\n}\n"
    // fresh's tables, in struct order, for the (table, index) lookups.
    << "static uint32_t wl_tables(const " << inst << "* f, const wasm_rt_funcref_table_t** out) {\n"
    << "  uint32_t n = 0; (void)f; (void)out;\n";
  for (const auto& t : l.funcref_tables) c << "  out[n++] = &f->" << t << ";\n";
  c << "  return n;\n}\n"
    << "static uint64_t save_state(const void* src, const void* fresh, uint8_t* out, uint64_t "
       "cap) {\n"
    << "  const " << inst << "* s = (const " << inst << "*)src;\n"
    << "  const " << inst << "* f = (const " << inst << "*)fresh;\n"
    << "  const wasm_rt_funcref_table_t* ft[" << l.funcref_tables.size() + 1 << "];\n"
    << "  uint32_t nft = wl_tables(f, ft); (void)nft;\n"
    << "  uint64_t n = sizeof *s;\n"
    << "  if (n <= cap) {\n    " << inst << " z = *s;\n    memset(&z." << l.memory
    << ", 0, sizeof z." << l.memory << ");\n";
  for (const auto& e : l.envs) c << "    z." << e << " = 0;\n";
  for (const auto& t : l.funcref_tables) c << "    z." << t << ".data = 0;\n";
  for (const auto& t : l.externref_tables) c << "    z." << t << ".data = 0;\n";
  c << "    memcpy(out, &z, sizeof z);\n  }\n";
  for (const auto& t : l.funcref_tables) {
    c << "  wl_put32(out, cap, &n, s->" << t << ".size); wl_put32(out, cap, &n, s->" << t
      << ".max_size);\n"
      << "  for (uint32_t i = 0; i < s->" << t << ".size; ++i) {\n"
      << "    wasm_rt_funcref_t e = s->" << t << ".data[i];\n"
      << "    uint32_t tt = UINT32_MAX, ti = UINT32_MAX;\n"
      << "    if (e.func != 0) {\n"
      << "      ptrdiff_t off = (const char*)e.module_instance - (const char*)s;\n"
      // Most entries are where init_tables put them: that index first.
      << "      for (uint32_t k = 0; k < nft && tt == UINT32_MAX; ++k)\n"
      << "        if (wl_same(ft[k], i, e, off, f)) { tt = k; ti = i; }\n"
      << "      for (uint32_t k = 0; k < nft && tt == UINT32_MAX; ++k)\n"
      << "        for (uint32_t j = 0; j < ft[k]->size && tt == UINT32_MAX; ++j)\n"
      << "          if (wl_same(ft[k], j, e, off, f)) { tt = k; ti = j; }\n"
      << "      if (tt == UINT32_MAX) return 0;\n    }\n"
      << "    wl_put32(out, cap, &n, tt); wl_put32(out, cap, &n, ti);\n  }\n";
  }
  for (const auto& t : l.externref_tables) {
    c << "  for (uint32_t i = 0; i < s->" << t << ".size; ++i) if (s->" << t
      << ".data[i]) return 0;\n"
      << "  wl_put32(out, cap, &n, s->" << t << ".size); wl_put32(out, cap, &n, s->" << t
      << ".max_size);\n";
  }
  c << "  return n;\n}\n";
  c << "static int wl_get32(const uint8_t* in, uint64_t len, uint64_t* n, uint32_t* v) {\n"
    << "  if (*n + 4 > len) return 0; memcpy(v, in + *n, 4); *n += 4; return 1;\n}\n"
    << "static int32_t load_state(void* dst, const void* fresh, const uint8_t* in, uint64_t len,"
       " void* env) {\n"
    << "  " << inst << "* d = (" << inst << "*)dst;\n"
    << "  const " << inst << "* f = (const " << inst << "*)fresh;\n"
    << "  const wasm_rt_funcref_table_t* ft[" << l.funcref_tables.size() + 1 << "];\n"
    << "  uint32_t nft = wl_tables(f, ft); (void)nft;\n"
    << "  uint64_t n = sizeof *d; uint32_t size, max, tt, ti;\n"
    << "  if (len < n) return -1;\n"
    << "  memcpy(d, in, sizeof *d);\n  memset(&d->" << l.memory << ", 0, sizeof d->" << l.memory
    << ");\n";
  for (const auto& e : l.envs) c << "  d->" << e << " = env;\n";
  // Read through a byte: a bool holding anything but 0 or 1 is undefined.
  for (const auto& b : l.bools) {
    c << "  { unsigned char v; memcpy(&v, &d->" << b << ", 1); v = v != 0; memcpy(&d->" << b
      << ", &v, 1); }\n";
  }
  for (const auto& t : l.funcref_tables) c << "  d->" << t << ".data = 0;\n";
  for (const auto& t : l.externref_tables) c << "  d->" << t << ".data = 0;\n";
  // On an error the tables allocated so far stay in d: free_instance frees them.
  for (const auto& t : l.funcref_tables) {
    c << "  if (!wl_get32(in, len, &n, &size) || !wl_get32(in, len, &n, &max)) return -1;\n"
      << "  if (max != f->" << t << ".max_size || size > max || size > (1u << 24) ||\n"
      << "      (uint64_t)size * 8 > len - n) return -1;\n"
      << "  d->" << t << ".data = calloc(size ? size : 1, sizeof *d->" << t << ".data);\n"
      << "  if (!d->" << t << ".data) return -1;\n"
      << "  d->" << t << ".size = size; d->" << t << ".max_size = max;\n"
      << "  for (uint32_t i = 0; i < size; ++i) {\n"
      << "    wl_get32(in, len, &n, &tt); wl_get32(in, len, &n, &ti);\n"
      << "    if (tt == UINT32_MAX && ti == UINT32_MAX) continue;\n"
      << "    if (tt >= nft || ti >= ft[tt]->size || ft[tt]->data[ti].func == 0) return -1;\n"
      << "    wasm_rt_funcref_t g = ft[tt]->data[ti];\n"
      << "    const char* m = (const char*)g.module_instance;\n"
      << "    if (m < (const char*)f || m >= (const char*)f + sizeof *f) return -1;\n"
      << "    g.module_instance = (char*)d + (m - (const char*)f);\n"
      << "    d->" << t << ".data[i] = g;\n  }\n";
  }
  for (const auto& t : l.externref_tables) {
    c << "  if (!wl_get32(in, len, &n, &size) || !wl_get32(in, len, &n, &max)) return -1;\n"
      << "  if (max != f->" << t << ".max_size || size > max || size > (1u << 24)) return -1;\n"
      << "  d->" << t << ".data = calloc(size ? size : 1, sizeof *d->" << t << ".data);\n"
      << "  if (!d->" << t << ".data) return -1;\n"
      << "  d->" << t << ".size = size; d->" << t << ".max_size = max;\n";
  }
  c << "  return n == len ? 0 : -1;\n}\n";
  return c.str();
}

// The per-module descriptor: the only C code that knows wasm2c's names.
std::string generateDescriptor(const ModuleShape& shape, std::string_view mod,
                               std::string_view build_key, std::string_view module_h) {
  std::ostringstream c;
  std::string inst = absl::StrCat("Z_", std::string(mod), "_instance_t");
  c << "#include <stdarg.h>\n#include <stddef.h>\n#include <stdlib.h>\n#include <string.h>\n"
    << "#include \"module_abi.h\"\n#include \"module.h\"\n\n"
    << "static const WlHostApi* H;\n"
    << kRuntimeHead << kTypeRegistry << kRuntimeTail;
  // Import thunks: forward to the host table; unwind only after it returned.
  for (const auto& imp : shape.imports) {
    auto colon = imp.signature.find(':');
    std::string params = imp.signature.substr(0, colon);
    std::string results = imp.signature.substr(colon + 1);
    c << (results.empty() ? "void" : cType(results[0])) << " Z_" << mangle(imp.module) << "Z_"
      << mangle(imp.name) << "(struct Z_" << mangle(imp.module) << "_instance_t* env";
    for (size_t i = 0; i < params.size(); ++i) {
      c << ", " << cType(params[i]) << " a" << i;
    }
    c << ") {\n  uint64_t a[" << (params.empty() ? 1 : params.size())
      << "] = {0}; uint64_t r = 0;\n";
    for (size_t i = 0; i < params.size(); ++i) {
      c << "  memcpy(&a[" << i << "], &a" << i << ", sizeof a" << i << ");\n";
    }
    // env, or (called through a table) the instance field holding env.
    c << "  if (H->imports[" << imp.host_id << "](*(void**)env, a, &r)) "
      << "H->raise_pending();\n";
    if (!results.empty()) {
      c << "  " << cType(results[0]) << " v; memcpy(&v, &r, sizeof v); "
        << "return v;\n";
    }
    c << "}\n";
  }
  // Export trampolines.
  for (size_t k = 0; k < shape.exports.size(); ++k) {
    const auto& exp = shape.exports[k];
    auto colon = exp.signature.find(':');
    std::string params = exp.signature.substr(0, colon);
    std::string results = exp.signature.substr(colon + 1);
    c << "static void T" << k << "(void* inst, const uint64_t* a, uint64_t* r) {\n";
    for (size_t i = 0; i < params.size(); ++i) {
      c << "  " << cType(params[i]) << " a" << i << "; memcpy(&a" << i << ", &a[" << i
        << "], sizeof a" << i << ");\n";
    }
    c << "  ";
    if (!results.empty()) c << cType(results[0]) << " v = ";
    c << "Z_" << mod << "Z_" << mangle(exp.name) << "((" << inst << "*)inst";
    for (size_t i = 0; i < params.size(); ++i) c << ", a" << i;
    c << ");\n";
    if (!results.empty())
      c << "  r[0] = 0; memcpy(r, &v, sizeof v);\n";
    else
      c << "  (void)r;\n";
    c << "}\n";
  }
  c << "static const WlExport EXPORTS[] = {\n";
  for (size_t k = 0; k < shape.exports.size(); ++k) {
    // Export names are arbitrary bytes; emit them as escaped C strings.
    c << "  {\"";
    for (unsigned char ch : shape.exports[k].name) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\%03o", ch);
      c << buf;
    }
    c << "\", \"" << shape.exports[k].signature << "\", T" << k << "},\n";
  }
  if (shape.exports.empty()) c << "  {0, 0, 0},\n";
  c << "};\n";
  // instantiate takes one instance pointer per imported module; all of them
  // are the same env, so their order does not matter.
  c << "static void instantiate(void* i, void* env) {\n  ((void (*)(" << inst << "*";
  for (size_t i = 0; i < shape.import_modules.size(); ++i) c << ", void*";
  c << "))Z_" << mod << "_instantiate)((" << inst << "*)i";
  for (size_t i = 0; i < shape.import_modules.size(); ++i) c << ", env";
  c << ");\n}\n";
  InstanceLayout layout = parseInstance(module_h, inst);
  c << restoreInstance(layout, inst) << savedState(layout, inst);
  c << "static void free_instance(void* i) { Z_" << mod << "_free((" << inst << "*)i); }\n";
  c << "static wasm_rt_memory_t* memory(void* i) { return Z_" << mod << "Z_memory((" << inst
    << "*)i); }\n";
  c << "static const WlModuleDescriptor DESC = {WL_MODULE_ABI_VERSION, \"" << build_key
    << "\", sizeof(" << inst << "), Z_" << mod
    << "_init_module, instantiate, free_instance, memory, " << shape.exports.size()
    << ", EXPORTS, WL_RESTORE, WL_SAVE, WL_LOAD};\n";
  c << "__attribute__((visibility(\"default\"))) const WlModuleDescriptor* " << WL_MODULE_ENTRY
    << "(const WlHostApi* h) { H = h; return &DESC; }\n";
  return c.str();
}

absl::Status writeFile(const std::filesystem::path& p, std::string_view data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", p.string()));
  return absl::OkStatus();
}

absl::Status run(const std::vector<std::string>& argv, std::string_view step) {
  auto r = runProcess(argv);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    std::string out = r->output.substr(0, 4000);
    return absl::InternalError(
        absl::StrCat(std::string(step), " failed (exit ", r->exit_code, "): ", out));
  }
  return absl::OkStatus();
}

// Compiled thunks call host imports by index: a build is valid only for the
// exact table it was built against.
std::string importTableId() {
  std::string all;
  for (const auto& s : hostImports()) {
    absl::StrAppend(&all, std::string(s.module), ".", std::string(s.name), "(",
                    std::string(s.signature), ");");
  }
  return sha256Hex(all).substr(0, 16);
}

}  // namespace

std::string descriptorRuntime(bool with_type_registry) {
  return absl::StrCat(kRuntimeHead, with_type_registry ? kTypeRegistry : "", kRuntimeTail);
}

std::string wasm2cMangle(std::string_view name) { return mangle(name); }

ModuleCompiler::ModuleCompiler(CompilerOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::string> ModuleCompiler::toolchainId() {
  std::lock_guard lock(mu_);
  if (!toolchain_id_.empty()) return toolchain_id_;
  auto cc = runProcess({options_.cc, "--version"});
  if (!cc.ok()) return cc.status();
  auto w2c = runProcess({options_.wasm2c, "--version"});
  if (!w2c.ok()) return w2c.status();
  std::string cc_line = cc->output.substr(0, cc->output.find('\n'));
  std::string w2c_line = w2c->output.substr(0, w2c->output.find('\n'));
  toolchain_id_ =
      absl::StrCat(cc_line, "|wasm2c ", w2c_line, "|abi ", WL_MODULE_ABI_VERSION, "|O",
                   options_.opt_level, "|", sha256Hex(kModuleAbiHeaderText), "|", importTableId());
  return toolchain_id_;
}

absl::StatusOr<CompiledObject> ModuleCompiler::compile(std::span<const uint8_t> wasm) {
  return build(wasm, "",
               [](const wabt::Module& module, std::string_view mod, std::string_view key,
                  std::string_view module_h) -> absl::StatusOr<std::string> {
                 auto shape = inspect(module);
                 if (!shape.ok()) return shape.status();
                 return generateDescriptor(*shape, mod, key, module_h);
               });
}

absl::StatusOr<CompiledObject> ModuleCompiler::compileWithDescriptor(std::span<const uint8_t> wasm,
                                                                     std::string_view flavour,
                                                                     const DescriptorFn& describe) {
  return build(wasm, flavour, describe);
}

absl::StatusOr<CompiledObject> ModuleCompiler::build(std::span<const uint8_t> wasm,
                                                     std::string_view flavour,
                                                     const DescriptorFn& describe) {
  wabt::Module module;
  if (absl::Status st = readAndValidate(wasm, &module); !st.ok()) return st;
  auto toolchain = toolchainId();
  if (!toolchain.ok()) return toolchain.status();

  std::string_view bytes(reinterpret_cast<const char*>(wasm.data()), wasm.size());
  std::string key =
      sha256Hex(absl::StrCat(sha256Hex(bytes), "|", *toolchain, std::string(flavour)));
  std::string mod = absl::StrCat("wl", key.substr(0, 16));
  // The policy checks run before the cache lookup, so a refused module is
  // refused even when an object for its bytes exists. wasm2c's header is
  // known only after it ran; the production descriptor does not need it.
  if (flavour.empty()) {
    auto checked = describe(module, mod, key, "");
    if (!checked.ok()) return checked.status();
  }
  CompiledObject out;
  out.build_key = key;
  out.wasm_bytes = wasm.size();
  out.path = options_.cache_dir / (key.substr(0, 32) + ".so");
  std::error_code ec;
  std::filesystem::create_directories(options_.cache_dir, ec);
  if (std::filesystem::exists(out.path, ec)) {
    out.from_cache = true;
    return out;
  }

  auto start = std::chrono::steady_clock::now();
  std::string tmpl = (options_.cache_dir / "build-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp in ", options_.cache_dir.string()));
  }
  std::filesystem::path dir = tmpl;
  // The symbol prefix (mod) makes every module and every version distinct
  // even in one address space; hidden visibility is a second line of defence.
  absl::Status st = writeFile(dir / "module.wasm", bytes);
  if (st.ok()) st = writeFile(dir / "module_abi.h", kModuleAbiHeaderText);
  if (st.ok()) {
    st = run({options_.wasm2c, "-n", mod, (dir / "module.wasm").string(), "-o",
              (dir / "module.c").string()},
             "wasm2c");
  }
  if (st.ok()) {
    std::ifstream h(dir / "module.h");
    std::string module_h((std::istreambuf_iterator<char>(h)), std::istreambuf_iterator<char>());
    auto descriptor = describe(module, mod, key, module_h);
    st = descriptor.ok() ? writeFile(dir / "descriptor.c", *descriptor) : descriptor.status();
  }
  std::filesystem::path tmp_so = dir / "module.so";
  if (st.ok()) {
    st = run({options_.cc, absl::StrCat("-O", options_.opt_level), "-fPIC", "-shared",
              "-fvisibility=hidden", "-fno-strict-aliasing", "-fstack-clash-protection",
              // Wasm semantics the C compiler must not optimise away: a call
              // is a call (recursion turned into a loop never exhausts the
              // stack, so it would run to the deadline or even return), and
              // arithmetic quiets a signalling NaN (x*1.0 is not x).
              "-fno-optimize-sibling-calls", "-fsignaling-nans", "-w", "-I", dir.string(),
              (dir / "module.c").string(), (dir / "descriptor.c").string(), "-o", tmp_so.string()},
             "cc");
  }
  if (st.ok()) {
    // rename() is atomic: a concurrent compile of the same bytes or a reader
    // never sees a half-written object.
    std::filesystem::rename(tmp_so, out.path, ec);
    if (ec) st = absl::InternalError(absl::StrCat("rename: ", ec.message()));
  }
  std::filesystem::remove_all(dir, ec);
  if (!st.ok()) return st;
  out.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void ModuleCompiler::evict(const CompiledObject& object) {
  std::error_code ec;
  std::filesystem::remove(object.path, ec);
}

}  // namespace waverless::wasm
