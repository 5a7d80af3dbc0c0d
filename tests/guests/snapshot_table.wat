;; A snapshot of a module whose table holds one of its own functions and a
;; host import: a restored instance's funcrefs must name that instance (and
;; its env), not the template they were copied from.
(module
  (import "waverless" "output_write" (func $out (param i32 i32) (result i32)))
  (type $v (func))
  (type $o (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (table 2 funcref)
  (elem (i32.const 0) $bump $out)
  (func $bump (global.set $g (i32.add (global.get $g) (i32.const 1))))
  (func (export "wl_init") (global.set $g (i32.const 40)))
  ;; Bumps $g through the table, then outputs the digit g - 40 through it.
  (func (export "run")
    (call_indirect (type $v) (i32.const 0))
    (i32.store8 (i32.const 100) (i32.add (i32.const 8) (global.get $g)))
    (drop (call_indirect (type $o) (i32.const 100) (i32.const 1) (i32.const 1)))))
