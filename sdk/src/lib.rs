//! # recharge-policy-sdk
//!
//! What a Rust author of a recharge billing policy depends on, and nothing else:
//! the model the host and the policy share ([`model`]), exact money helpers
//! ([`money`]), the [`Capabilities`] the host lends a policy for one call, the
//! [`PolicyRules`] trait a policy implements, and [`export_policy!`], which makes
//! the crate a `recharge:policy@0.1.0` component when it is built for
//! `wasm32-wasip2`.
//!
//! On `wasm32` the crate is `no_std` and brings the thin bindings adapter, the
//! allocator and the panic handler, so the component imports nothing but the
//! contract (no WASI). Natively it is an ordinary library: a policy's rules can be
//! unit-tested with plain `cargo test`, and the host runs native policies as its
//! speed baseline.
//!
//! [`Helpers`] brings the idioms (who the actor is, typed [`PolicyState`],
//! idempotency keys), and `?` works on a refused capability call in a function
//! returning [`model::PolicyError`]. A wake-up asked for again with the same tag
//! replaces the earlier one. See [`rules`] for a complete policy.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod caps;
#[cfg(any(test, target_arch = "wasm32"))]
mod heap;
mod helpers;
pub mod model;
pub mod money;
pub mod rules;
pub mod state;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings;

pub use caps::{Capabilities, Role};
pub use helpers::{Actor, Helpers};
pub use rules::PolicyRules;
pub use state::PolicyState;
