/*
 * Test-only (tests/spec): the extra contract of a module built for the
 * WebAssembly spec testsuite (wasm/spec_entry.h). The production descriptor
 * (module_abi.h) refuses what the testsuite needs: imports of memories,
 * tables and globals from any module, modules without a memory, exports of
 * every type. A spec build keeps module_abi.h's WlModuleDescriptor and the
 * same WlHostApi (traps, memories: the production runtime) and adds this.
 *
 * Value slots: i32/i64/f32/f64 by bits in one uint64_t; externref as its
 * pointer; funcref as its function pointer (0 for null; a non-null funcref
 * argument cannot be rebuilt from it and traps).
 *
 * Plain C: it is compiled into every spec module by the system C compiler.
 */
#ifndef WAVERLESS_WASM_RT_SPEC_ABI_H_
#define WAVERLESS_WASM_RT_SPEC_ABI_H_

#include <stdint.h>

#include "module_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WL_SPEC_ENTRY "waverless_spec_entry"

/* A function import: a trampoline and the instance it is bound to (another
 * module's export, or a host function of the harness). */
typedef struct WlSpecFunc {
  WlTrampoline call;
  void* instance;
} WlSpecFunc;

/* The env every import module of a spec module receives, indexed by the
 * position of the import among the module's imports of that kind. */
typedef struct WlSpecImports {
  const void* self; /* points at this struct (see InstanceEnv::self) */
  const WlSpecFunc* funcs;
  void* const* globals; /* points at the global's value */
  wasm_rt_memory_t* const* memories;
  wasm_rt_funcref_table_t* const* funcref_tables;
  wasm_rt_externref_table_t* const* externref_tables;
} WlSpecImports;

typedef enum WlSpecKind {
  WL_SPEC_FUNC = 0,
  WL_SPEC_TABLE = 1,
  WL_SPEC_MEMORY = 2,
  WL_SPEC_GLOBAL = 3
} WlSpecKind;

/* One import or export. type: functions "params:results" in the letters of
 * WlExport plus r (funcref) and e (externref); globals one letter, then 'm'
 * when mutable; tables "r" or "e"; memories "". min/max: limits of tables
 * and memories (max UINT64_MAX when absent). */
typedef struct WlSpecExtern {
  const char* module; /* imports only */
  const char* name;
  uint32_t name_len; /* names may hold NUL bytes */
  uint32_t kind;     /* WlSpecKind */
  const char* type;
  uint64_t min, max;
  WlTrampoline call;        /* exported functions */
  void* (*get)(void* inst); /* exported tables, memories, globals */
} WlSpecExtern;

/* Function types are registered process-wide (the harness's registry), so
 * funcrefs in a table shared between modules compare equal by type. */
typedef uint32_t (*WlSpecRegisterType)(const char* signature);

typedef struct WlSpecModule {
  uint32_t import_count;
  const WlSpecExtern* imports;
  uint32_t export_count;
  const WlSpecExtern* exports;
} WlSpecModule;

typedef const WlSpecModule* (*WlSpecEntryFn)(WlSpecRegisterType register_type);

#ifdef __cplusplus
}
#endif

#endif /* WAVERLESS_WASM_RT_SPEC_ABI_H_ */
