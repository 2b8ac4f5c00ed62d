;; A reply outside memory: `usage` (and `handle`) returns a result pointer past
;; the end of its one page of linear memory.
(module
  (import "host" "drop-account" (func $drop-account (param i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $bump) (i32.const 15)) (i32.const -16)))
    (global.set $bump (i32.add (local.get $at) (local.get $size)))
    (local.get $at))
  (func (export "recharge:policy/policy@0.1.0#usage")
    (param i64 i32 i64 i32 i64 i32 i32 i64 i32 i32) (result i32)
    ;; No handle to drop: a rated call lends none.
    (i32.const -16))
  (func (export "recharge:policy/policy@0.1.0#handle") (param i32) (result i32)
    ;; Done with the subject (the tenant is a user: there is no parent).
    (call $drop-account (i32.const 1))
    (i32.const -16))
  (func (export "recharge:policy/policy@0.1.0#query") (param i32 i32 i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "recharge:policy/policy@0.1.0#describe") (param i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#estimate") (param i64 i64 i64 i32 i64 i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#minutes-for") (param i64 i32 i64 i32 i64 i32) (result i32)
    (i32.const 0))
)
