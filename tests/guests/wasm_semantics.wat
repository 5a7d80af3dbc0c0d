;; Wasm semantics the C compiler must keep (compiler.cpp's cc flags).
(module
  (memory (export "memory") 1)
  (global $snan (mut i32) (i32.const 0x7fa00000))
  ;; Unbounded recursion: must trap with call stack exhaustion, not be
  ;; turned into a loop that runs to the deadline.
  (func $recurse (export "recurse") (call $recurse))
  ;; x * 1.0 of a signalling NaN is a quiet NaN: the quiet bit must be set.
  (func (export "quiet_nan")
    (if (i32.eqz (i32.and (i32.reinterpret_f32
                            (f32.mul (f32.reinterpret_i32 (global.get $snan)) (f32.const 1)))
                          (i32.const 0x00400000)))
      (then unreachable))))
