;; A wl_init that stores a function in the table which no element segment
;; puts there (declared only, for ref.func): the snapshot works in memory,
;; but its state has no form without addresses, so no snapshot file is
;; written.
(module
  (type $v (func))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (table $t 1 funcref)
  (elem declare func $bump)
  (func $bump (global.set $g (i32.add (global.get $g) (i32.const 1))))
  (func (export "wl_init") (table.set $t (i32.const 0) (ref.func $bump)))
  (func (export "run") (call_indirect (type $v) (i32.const 0))))
