;; Table growth: `usage` (and `handle`) grows its table 1,000 elements at a time
;; until the host refuses (the limit is 10,000 elements), then traps. Were the
;; growth allowed past the limit, it would spin instead, and the fault would be
;; fuel, not a trap.
(module
  (memory (export "memory") 1)
  (table $table 1 funcref)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $bump) (i32.const 15)) (i32.const -16)))
    (global.set $bump (i32.add (local.get $at) (local.get $size)))
    (local.get $at))
  (func $grow (result i32)
    (block $refused
      (loop $grow
        (br_if $refused
          (i32.eq (table.grow $table (ref.null func) (i32.const 1000)) (i32.const -1)))
        (br $grow)))
    (if (i32.gt_u (table.size $table) (i32.const 10000))
      (then (loop $spin (br $spin))))
    unreachable)
  (func (export "recharge:policy/policy@0.1.0#usage")
    (param i64 i32 i64 i32 i64 i32 i32 i64 i32 i32) (result i32)
    (call $grow))
  (func (export "recharge:policy/policy@0.1.0#handle") (param i32) (result i32)
    (call $grow))
  (func (export "recharge:policy/policy@0.1.0#query") (param i32 i32 i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "recharge:policy/policy@0.1.0#describe") (param i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#estimate") (param i64 i64 i64 i32 i64 i32) (result i32)
    (i32.const 0))
  (func (export "recharge:policy/policy@0.1.0#minutes-for") (param i64 i32 i64 i32 i64 i32) (result i32)
    (i32.const 0))
)
