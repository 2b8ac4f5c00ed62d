//! Host bindings generated from `wit/0.1.0/recharge.wit`.

wasmtime::component::bindgen!({
    world: "recharge-policy",
    path: "../wit/0.1.0",
});

pub use exports::recharge::policy::policy as exported;
pub use recharge::policy::types as wit;
