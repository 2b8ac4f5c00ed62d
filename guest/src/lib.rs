//! The default recharge billing policy (SPEC.md R1–R9).
//!
//! The rules live in a pure core, [`policy`], that talks to the host only through
//! the SDK's [`Capabilities`](recharge_policy_sdk::Capabilities). On `wasm32` the
//! crate exports the `recharge:policy/policy@0.2.0` interface through the SDK's
//! adapter; natively it is an ordinary library, so the host can run the very same
//! core as a speed baseline and as its fallback.
//!
//! Tenant policies do not depend on this crate: they depend on
//! `recharge-policy-sdk`.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod policy;

use recharge_policy_sdk::{PolicyRules, caps, model, money};

pub use policy::DefaultPolicy;

recharge_policy_sdk::export_policy!(DefaultPolicy);
