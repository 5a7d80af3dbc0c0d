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
#include "wasm/descriptor_snapshot.h"
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
  c << snapshotFunctions(module_h, inst);
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
