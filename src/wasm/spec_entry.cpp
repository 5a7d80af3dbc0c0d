#include "wasm/spec_entry.h"

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "wabt/cast.h"
#include "wabt/ir.h"

namespace waverless::wasm::spec {

extern const char* const kSpecAbiHeaderText;

namespace {

// Letters of rt/spec_abi.h; 0 for a type the spec ABI cannot carry (v128).
char letter(wabt::Type t) {
  switch (t) {
    case wabt::Type::I32:
      return 'i';
    case wabt::Type::I64:
      return 'I';
    case wabt::Type::F32:
      return 'f';
    case wabt::Type::F64:
      return 'F';
    case wabt::Type::FuncRef:
      return 'r';
    case wabt::Type::ExternRef:
      return 'e';
    default:
      return 0;
  }
}

const char* cType(char l) {
  switch (l) {
    case 'i':
      return "u32";
    case 'I':
      return "u64";
    case 'f':
      return "f32";
    case 'F':
      return "f64";
    case 'r':
      return "wasm_rt_funcref_t";
    default:
      return "wasm_rt_externref_t";
  }
}

// wasm2c's letter for a type in the name of a multi-value result struct.
char multiLetter(char l) {
  switch (l) {
    case 'I':
      return 'j';
    case 'F':
      return 'd';
    default:
      return l;
  }
}

struct Sig {
  std::string params, results;
};

absl::StatusOr<Sig> sigOf(const wabt::FuncSignature& s) {
  Sig out;
  for (auto t : s.param_types) {
    if (!letter(t)) return absl::UnimplementedError("v128 (SIMD) values");
    out.params += letter(t);
  }
  for (auto t : s.result_types) {
    if (!letter(t)) return absl::UnimplementedError("v128 (SIMD) values");
    out.results += letter(t);
  }
  return out;
}

std::string retType(const Sig& s) {
  if (s.results.empty()) return "void";
  if (s.results.size() == 1) return cType(s.results[0]);
  std::string n = "struct wasm_multi_";
  for (char l : s.results) n += multiLetter(l);
  return n;
}

std::string field(const Sig& s, size_t i) {
  return absl::StrCat(std::string(1, multiLetter(s.results[i])), i);
}

std::string cString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    char buf[8];
    snprintf(buf, sizeof buf, "\\%03o", ch);
    out += buf;
  }
  return out + "\"";
}

std::string limitsOf(const wabt::Limits& l) {
  return absl::StrCat(l.initial, "ull, ", l.has_max ? absl::StrCat(l.max, "ull") : "UINT64_MAX");
}

// The wasm-rt.h memory field of the instance struct, from wasm2c's header:
// "wasm_rt_memory_t w2c_M0;" (own) or "wasm_rt_memory_t *Z_..;" (imported).
std::string memoryExpr(std::string_view module_h, const std::string& inst) {
  size_t start = module_h.find(absl::StrCat("typedef struct ", inst, " {"));
  size_t end = module_h.find(absl::StrCat("} ", inst, ";"), start);
  if (start == std::string_view::npos || end == std::string_view::npos) return "0";
  std::string_view body = module_h.substr(start, end - start);
  size_t at = body.find("wasm_rt_memory_t ");
  if (at == std::string_view::npos) return "0";
  size_t name_at = at + strlen("wasm_rt_memory_t ");
  size_t semi = body.find(';', name_at);
  std::string name(body.substr(name_at, semi - name_at));
  std::string self = absl::StrCat("((", inst, "*)i)->");
  if (name[0] == '*') return self + name.substr(1);
  return "&" + self + name;
}

absl::StatusOr<std::string> describe(const wabt::Module& m, std::string_view mod_name,
                                     std::string_view key, std::string_view module_h) {
  std::string mod(mod_name);
  std::ostringstream c;
  std::string inst = absl::StrCat("Z_", mod, "_instance_t");
  std::string prefix = absl::StrCat("Z_", mod, "Z_");
  c << "#include <stdarg.h>\n#include <stdlib.h>\n#include <string.h>\n"
    << "#include \"module_abi.h\"\n#include \"module.h\"\n"
    << kSpecAbiHeaderText << "\nstatic const WlHostApi* H;\n"
    << descriptorRuntime(/*with_type_registry=*/false) << R"C(
static WlSpecRegisterType REG;
uint32_t wasm_rt_register_func_type(uint32_t p, uint32_t r, ...) {
  static const char L[] = "iIfFre";
  char s[80]; uint32_t n = 0;
  va_list ap; va_start(ap, r);
  for (uint32_t i = 0; i < p + r && n < 70; ++i) {
    if (i == p) s[n++] = ':';
    s[n++] = L[va_arg(ap, wasm_rt_type_t)];
  }
  if (r == 0) s[n++] = ':';
  va_end(ap); s[n] = 0;
  return REG(s);
}
#define E(e) (*(const WlSpecImports* const*)(e)) /* env, or the field holding it */
static uint64_t wl_fslot(wasm_rt_funcref_t v) { return (uint64_t)(uintptr_t)v.func; }
static wasm_rt_funcref_t wl_fval(uint64_t s) {
  if (s) H->trap(WASM_RT_TRAP_CALL_INDIRECT);
  return wasm_rt_funcref_null_value;
}
)C";
  auto pack = [](char l, const std::string& v) -> std::string {
    if (l == 'r') return absl::StrCat("wl_fslot(", v, ")");
    if (l == 'e') return absl::StrCat("(uint64_t)(uintptr_t)", v);
    return "";
  };
  // Emits: slot[i] = value, or value = slot[i].
  auto store = [&](std::ostringstream& o, char l, const std::string& slot, const std::string& v) {
    if (l == 'r' || l == 'e') {
      o << "  " << slot << " = " << pack(l, v) << ";\n";
    } else {
      o << "  " << slot << " = 0; memcpy(&" << slot << ", &" << v << ", sizeof " << v << ");\n";
    }
  };
  auto load = [&](std::ostringstream& o, char l, const std::string& v, const std::string& slot) {
    o << "  " << cType(l) << " " << v << ";";
    if (l == 'r') {
      o << " " << v << " = wl_fval(" << slot << ");\n";
    } else if (l == 'e') {
      o << " " << v << " = (wasm_rt_externref_t)(uintptr_t)" << slot << ";\n";
    } else {
      o << " memcpy(&" << v << ", &" << slot << ", sizeof " << v << ");\n";
    }
  };

  std::vector<std::string> import_modules;
  std::set<std::string> defined;
  std::ostringstream table;
  uint32_t nf = 0, ng = 0, nm = 0, nt[2] = {0, 0};
  for (const wabt::Import* imp : m.imports) {
    std::string mm = wasm2cMangle(imp->module_name);
    std::string sym = absl::StrCat("Z_", mm, "Z_", wasm2cMangle(imp->field_name));
    std::string env = absl::StrCat("struct Z_", mm, "_instance_t* e");
    bool seen = false;
    for (auto& x : import_modules) seen |= x == imp->module_name;
    if (!seen) import_modules.push_back(imp->module_name);
    std::string type;
    std::string kind;
    std::string limits = "0, 0";
    // The same import twice is one symbol to wasm2c: define it once.
    bool dup = !defined.insert(sym).second;
    std::ostringstream unused;
    std::ostringstream& o = dup ? unused : c;
    switch (imp->kind()) {
      case wabt::ExternalKind::Func: {
        auto sig = sigOf(wabt::cast<wabt::FuncImport>(imp)->func.decl.sig);
        if (!sig.ok()) return sig.status();
        kind = "WL_SPEC_FUNC";
        type = sig->params + ":" + sig->results;
        o << retType(*sig) << " " << sym << "(" << env;
        for (size_t i = 0; i < sig->params.size(); ++i) {
          o << ", " << cType(sig->params[i]) << " a" << i;
        }
        o << ") {\n  uint64_t a[" << sig->params.size() + 1 << "], r[" << sig->results.size() + 1
          << "];\n";
        for (size_t i = 0; i < sig->params.size(); ++i) {
          store(o, sig->params[i], absl::StrCat("a[", i, "]"), absl::StrCat("a", i));
        }
        o << "  E(e)->funcs[" << nf << "].call(E(e)->funcs[" << nf << "].instance, a, r);\n";
        if (sig->results.size() == 1) {
          load(o, sig->results[0], "v", "r[0]");
          o << "  return v;\n";
        } else if (sig->results.size() > 1) {
          o << "  " << retType(*sig) << " v;\n";
          for (size_t i = 0; i < sig->results.size(); ++i) {
            load(o, sig->results[i], absl::StrCat("v", i), absl::StrCat("r[", i, "]"));
            o << "  v." << field(*sig, i) << " = v" << i << ";\n";
          }
          o << "  return v;\n";
        }
        o << "}\n";
        ++nf;
        break;
      }
      case wabt::ExternalKind::Global: {
        const auto& g = wabt::cast<wabt::GlobalImport>(imp)->global;
        char l = letter(g.type);
        if (!l) return absl::UnimplementedError("v128 (SIMD) globals");
        kind = "WL_SPEC_GLOBAL";
        type = std::string(1, l) + (g.mutable_ ? "m" : "");
        o << cType(l) << "* " << sym << "(" << env << ") { return (" << cType(l)
          << "*)E(e)->globals[" << ng++ << "]; }\n";
        break;
      }
      case wabt::ExternalKind::Memory: {
        kind = "WL_SPEC_MEMORY";
        limits = limitsOf(wabt::cast<wabt::MemoryImport>(imp)->memory.page_limits);
        o << "wasm_rt_memory_t* " << sym << "(" << env << ") { return E(e)->memories[" << nm++
          << "]; }\n";
        break;
      }
      case wabt::ExternalKind::Table: {
        const auto& t = wabt::cast<wabt::TableImport>(imp)->table;
        bool fun = t.elem_type == wabt::Type::FuncRef;
        kind = "WL_SPEC_TABLE";
        type = fun ? "r" : "e";
        limits = limitsOf(t.elem_limits);
        o << "wasm_rt_" << (fun ? "funcref" : "externref") << "_table_t* " << sym << "(" << env
          << ") { return E(e)->" << (fun ? "funcref" : "externref") << "_tables["
          << nt[fun ? 0 : 1]++ << "]; }\n";
        break;
      }
      default:
        return absl::UnimplementedError("tag imports (exception handling)");
    }
    table << "  {" << cString(imp->module_name) << ", " << cString(imp->field_name) << ", "
          << imp->field_name.size() << ", " << kind << ", \"" << type << "\", " << limits
          << ", 0, 0},\n";
  }
  c << "static const WlSpecExtern IMPORTS[] = {\n" << table.str() << "  {0}};\n";

  std::ostringstream exports;
  size_t k = 0;
  for (const wabt::Export* exp : m.exports) {
    std::string sym = prefix + wasm2cMangle(exp->name);
    std::string kind, type, limits = "0, 0", call = "0", get = "0";
    switch (exp->kind) {
      case wabt::ExternalKind::Func: {
        const wabt::Func* fn = m.GetFunc(exp->var);
        auto sig = sigOf(fn->decl.sig);
        if (!sig.ok()) return sig.status();
        kind = "WL_SPEC_FUNC";
        type = sig->params + ":" + sig->results;
        call = absl::StrCat("T", k);
        c << "static void T" << k << "(void* inst, const uint64_t* a, uint64_t* r) {\n";
        for (size_t i = 0; i < sig->params.size(); ++i) {
          load(c, sig->params[i], absl::StrCat("a", i), absl::StrCat("a[", i, "]"));
        }
        c << "  ";
        if (!sig->results.empty()) c << retType(*sig) << " v = ";
        c << sym << "((" << inst << "*)inst";
        for (size_t i = 0; i < sig->params.size(); ++i) c << ", a" << i;
        c << ");\n";
        if (sig->results.size() == 1) {
          store(c, sig->results[0], "r[0]", "v");
        } else {
          for (size_t i = 0; i < sig->results.size(); ++i) {
            std::string v = absl::StrCat("v.", field(*sig, i));
            store(c, sig->results[i], absl::StrCat("r[", i, "]"), v);
          }
        }
        c << "  (void)r;\n}\n";
        break;
      }
      case wabt::ExternalKind::Global: {
        const wabt::Global* g = m.GetGlobal(exp->var);
        char l = letter(g->type);
        if (!l) return absl::UnimplementedError("v128 (SIMD) globals");
        kind = "WL_SPEC_GLOBAL";
        type = std::string(1, l) + (g->mutable_ ? "m" : "");
        break;
      }
      case wabt::ExternalKind::Memory:
        kind = "WL_SPEC_MEMORY";
        limits = limitsOf(m.GetMemory(exp->var)->page_limits);
        break;
      case wabt::ExternalKind::Table: {
        const wabt::Table* t = m.GetTable(exp->var);
        kind = "WL_SPEC_TABLE";
        type = t->elem_type == wabt::Type::FuncRef ? "r" : "e";
        limits = limitsOf(t->elem_limits);
        break;
      }
      default:
        return absl::UnimplementedError("tag exports (exception handling)");
    }
    if (exp->kind != wabt::ExternalKind::Func) {
      get = absl::StrCat("G", k);
      c << "static void* G" << k << "(void* i) { return (void*)" << sym << "((" << inst
        << "*)i); }\n";
    }
    exports << "  {0, " << cString(exp->name) << ", " << exp->name.size() << ", " << kind << ", \""
            << type << "\", " << limits << ", " << call << ", " << get << "},\n";
    ++k;
  }
  c << "static const WlSpecExtern EXPORTS[] = {\n" << exports.str() << "  {0}};\n";
  c << "static const WlSpecModule SPEC = {" << m.imports.size() << ", IMPORTS, " << k
    << ", EXPORTS};\n";
  c << "static const WlExport NO_EXPORT[] = {{0, 0, 0}};\n";
  c << "static void instantiate(void* i, void* env) {\n  ((void (*)(" << inst << "*";
  for (size_t i = 0; i < import_modules.size(); ++i) c << ", void*";
  c << "))Z_" << mod << "_instantiate)((" << inst << "*)i";
  for (size_t i = 0; i < import_modules.size(); ++i) c << ", env";
  c << ");\n}\n";
  c << "static void free_instance(void* i) { Z_" << mod << "_free((" << inst << "*)i); }\n";
  c << "static wasm_rt_memory_t* memory(void* i) { (void)i; return " << memoryExpr(module_h, inst)
    << "; }\n";
  c << "static const WlModuleDescriptor DESC = {WL_MODULE_ABI_VERSION, \"" << key << "\", sizeof("
    << inst << "), Z_" << mod
    << "_init_module, instantiate, free_instance, memory, 0, NO_EXPORT};\n";
  c << "__attribute__((visibility(\"default\"))) const WlModuleDescriptor* " << WL_MODULE_ENTRY
    << "(const WlHostApi* h) { H = h; return &DESC; }\n";
  c << "__attribute__((visibility(\"default\"))) const WlSpecModule* " << WL_SPEC_ENTRY
    << "(WlSpecRegisterType r) { REG = r; return &SPEC; }\n";
  return c.str();
}

}  // namespace

absl::StatusOr<CompiledObject> compileSpecModule(ModuleCompiler& compiler,
                                                 std::span<const uint8_t> wasm) {
  return compiler.compileWithDescriptor(
      wasm, absl::StrCat("|spec2|", std::hash<std::string_view>{}(kSpecAbiHeaderText)), describe);
}

}  // namespace waverless::wasm::spec
