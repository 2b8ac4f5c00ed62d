//! Host bindings generated from `wit/recharge.wit`.

wasmtime::component::bindgen!({
    world: "recharge-policy",
    path: "../wit",
});

pub use exports::recharge::policy::policy as exported;
pub use recharge::policy::types as wit;
