;; A loop in the host's reply handling: `cabi_realloc`, which the host calls to
;; copy the event's strings into the guest before `handle` runs, never returns.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (loop $spin (br $spin))
    unreachable)
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
