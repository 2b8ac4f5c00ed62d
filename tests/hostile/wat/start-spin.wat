;; A start function that never returns: instantiation itself runs out of budget,
;; on every event, until the tenant is quarantined.
(module
  (memory (export "memory") 1)
  (func $spin (loop $forever (br $forever)))
  (start $spin)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.const 1024))
  (func (export "recharge:policy/policy@0.1.0#handle") (param i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#query") (param i32 i32 i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "recharge:policy/policy@0.1.0#describe") (param i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#estimate") (param i64 i64 i64 i32 i64 i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#minutes-for") (param i64 i32 i64 i32 i64 i32) (result i32)
    (i32.const 0))
)
