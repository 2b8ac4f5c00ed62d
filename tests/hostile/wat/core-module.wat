;; A core module, not a component: what `cargo build --target wasm32-unknown-unknown`
;; gives. It even exports the right names; the host must still refuse it.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.const 1024))
  (func (export "recharge:policy/policy@0.1.0#usage")
    (param i64 i32 i64 i32 i64 i32 i32 i64 i32 i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#handle") (param i32) (result i32)
    (i32.const 0))
)
