#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod account;
mod capabilities;
pub mod check;
mod codec;
mod database;
mod error;
mod gateway;
mod hooked;
pub mod input;
mod ledger;
mod platform;
mod policy;
mod postgres;
mod rating;
mod sandbox;
mod sqlite;
mod store;
mod tenants;

pub use account::{Account, AccountId, PolicyId, kind_name, status_name};
pub use capabilities::{EventContext, Guardrails};
pub use database::{BadDatabase, Database, POSTGRES_POOL};
pub use error::{HostError, InvalidCommand};
pub use gateway::{
    BadBehavior, CardBehavior, CardCharge, GATEWAY_STREAM, Gateway, GatewayAnswer, GatewayCharge,
    Settlement, SimulatedGateway, Unknown, Webhook,
};
pub use hooked::{HookedStore, StoreHooks, StoreRead};
pub use ledger::{Cause, LedgerEntry, Totals};
pub use platform::{
    CONFIG_STREAM, DEFAULT_LEASE, DEFAULT_NODE, DEFAULT_RETENTION, EventReport, Platform,
    PlatformBuilder, default_rates, money, sha256_hex,
};
pub use policy::{NativePolicy, Policy, PolicyFault, Verdict};
pub use postgres::PostgresStore;
pub use rating::{Rated, RatingError, rate_call};
pub use sandbox::{
    ContractVersion, Interfaces, Limits, LoadError, PolicyEngine, Profile, WasmPolicy,
};
pub use sqlite::SqliteStore;
pub use store::{
    Batch, ChargeRecord, ChargeRequest, InboxItem, KeptResponse, Lease, MemoryStore, Notification,
    OutboxEntry, OutboxState, Pruned, RatedCall, StateChange, Store, StoreError, StoredInbox,
    StoredTimer, Timer, utc_day,
};
pub use tenants::QUARANTINE_AFTER;

/// The policy core's data types (events, settings, answers), shared with policies.
pub use recharge_policy_sdk::model;

/// The default policy component, built from `guest/` for `wasm32-wasip2` at build time.
pub const DEFAULT_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/recharge_guest.wasm"));
