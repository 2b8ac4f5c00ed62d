//! The default recharge billing policy, and the kit to write others.
//!
//! The rules (SPEC.md R1–R9) live in a pure core, [`policy`], that talks to the
//! host only through the small [`Capabilities`] trait. On `wasm32` the crate also
//! exports the `recharge:policy/policy@0.1.0` interface through thin bindings over
//! that core; natively it is an ordinary library, so the host can run the very same
//! core as a speed baseline.
//!
//! Tenant policies depend on this crate with `default-features = false` (which
//! leaves out the default policy's export), implement [`PolicyRules`] and call
//! [`export_policy!`]: see [`sdk`].
#![cfg_attr(target_arch = "wasm32", no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod caps;
#[cfg(any(test, target_arch = "wasm32"))]
mod heap;
pub mod model;
pub mod money;
pub mod policy;
pub mod sdk;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings;

pub use caps::{Capabilities, Role};
pub use policy::DefaultPolicy;
pub use sdk::PolicyRules;
