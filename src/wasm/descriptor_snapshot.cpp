#include "wasm/descriptor_snapshot.h"

#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace waverless::wasm {

namespace {

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

}  // namespace

std::string snapshotFunctions(std::string_view module_h, const std::string& inst) {
  InstanceLayout layout = parseInstance(module_h, inst);
  return restoreInstance(layout, inst) + savedState(layout, inst);
}

}  // namespace waverless::wasm
