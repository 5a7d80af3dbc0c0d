(module
  (import "waverless" "kv_get" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1))
