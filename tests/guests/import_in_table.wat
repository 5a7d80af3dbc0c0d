;; A host import called through a table (call_indirect): wasm2c 1.0.32 then
;; passes the import the address of the instance field holding its env.
(module
  (import "waverless" "output_write" (func $out (param i32 i32) (result i32)))
  (type $t (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "via table")
  (table 1 funcref)
  (elem (i32.const 0) $out)
  (func (export "run")
    (drop (call_indirect (type $t) (i32.const 16) (i32.const 9) (i32.const 0)))))
