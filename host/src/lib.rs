//! # recharge-host
//!
//! The host side of recharge: it owns accounts, the ledger, cards, usage rating,
//! payment execution, timers and notices, and runs billing **policies** — the
//! embedded default or a tenant's own WebAssembly component — inside a wasmtime
//! sandbox that cannot mint credit, reach foreign accounts or outlive its fuel,
//! time or memory.
//!
//! The key types:
//! - [`Platform`], built with [`Platform::builder`]: the front door. Every command
//!   (usage, settings, top-up, card update, timers, payment outcomes) is one atomic
//!   event.
//! - [`Store`] and [`MemoryStore`]: where accounts, the outbox, timers and notices live.
//! - [`Gateway`] and [`SimulatedGateway`]: where charges go, idempotent by key.
//! - [`PolicyEngine`], [`WasmPolicy`], [`NativePolicy`]: the [`Policy`] implementations.
//! - [`Limits`] (H5) and [`Guardrails`] (H3): what a policy may use and ask for.
//!
//! ## Embedding
//!
//! ```
//! use std::sync::Arc;
//! use recharge_host::{AccountId, Platform, SimulatedGateway};
//! use recharge_host::model::{AccountKind, AutoRechargeSettings, MinuteType, Mode};
//! use rust_decimal::Decimal;
//!
//! # fn main() -> Result<(), recharge_host::HostError> {
//! let gateway = Arc::new(SimulatedGateway::new());
//! let platform = Platform::builder()
//!     .gateway(gateway.clone())
//!     .simulated_clock(1_767_225_600_000) // 2026-01-01T00:00:00Z
//!     .build()?;
//!
//! let alice = AccountId::from("alice");
//! platform.open_account(alice.clone(), AccountKind::User, None)?;
//! platform.add_card(&alice, "visa")?;
//! platform.save_auto_recharge(&alice, &alice, AutoRechargeSettings {
//!     enabled: true,
//!     threshold: Decimal::new(10_00, 2),
//!     amount: Decimal::new(25_00, 2),
//!     card: "visa".into(),
//!     mode: Mode::Fixed,
//!     monthly_limit: None,
//! })?;
//!
//! // Below the threshold at once: one charge of 25.00, credited after commit.
//! assert_eq!(platform.account(&alice)?.balance, Decimal::new(25_00, 2));
//!
//! // A 20-minute premium call costs 3.20; the balance stays above 10.00.
//! platform.record_usage(&alice, "call-1", 20 * 60, MinuteType::Premium)?;
//! assert_eq!(platform.account(&alice)?.balance, Decimal::new(21_80, 2));
//! assert_eq!(platform.charges()?.len(), 1);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod account;
mod capabilities;
pub mod check;
mod error;
mod gateway;
mod platform;
mod policy;
mod rating;
mod sandbox;
mod store;
mod tenants;

pub use account::{Account, AccountId, PolicyId, kind_name, status_name};
pub use capabilities::{EventContext, Guardrails};
pub use error::{HostError, InvalidCommand};
pub use gateway::{BadBehavior, CardBehavior, Gateway, GatewayCharge, SimulatedGateway};
pub use platform::{EventReport, Platform, PlatformBuilder, default_rates, money};
pub use policy::{NativePolicy, Policy, PolicyFault, Verdict};
pub use rating::{Rated, RatingError, rate_call};
pub use sandbox::{Limits, LoadError, PolicyEngine, WasmPolicy};
pub use store::{
    Batch, ChargeRecord, ChargeRequest, MemoryStore, Notification, Store, StoreError, StoredTimer,
    Timer, utc_day,
};
pub use tenants::QUARANTINE_AFTER;

/// The policy core's data types (events, settings, answers), shared with policies.
pub use recharge_policy_sdk::model;

/// The default policy component, built from `guest/` for `wasm32-wasip2` at build time.
pub const DEFAULT_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/recharge_guest.wasm"));
