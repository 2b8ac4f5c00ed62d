;; A component that imports WASI's stdout, outside the contract (what a policy
;; that prints asks for). A whole component, not a core module for the shell.
(component
  (import "wasi:cli/stdout@0.2.6" (instance $stdout
    (export "get-stdout" (func (result u32)))))
  (core module $main
    (func (export "run")))
  (core instance (instantiate $main))
)
