//! Host bindings, one module per released version of the contract (`wit/X.Y.Z/`),
//! the version a component declares, and the [`Contract`] every version's
//! bindings implement, so the sandbox runs any of them the same way.

use recharge_policy_sdk::model::{AccountView, Answer, Event, PolicyError, QueryKind, Usage};
use rust_decimal::Decimal;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};

use super::{SandboxState, Warm};

pub mod v0_1;
pub mod v0_2;

/// A usage event with what the hot path hands over beside it.
#[derive(Debug, Clone, Copy)]
pub struct UsageCall<'a> {
    /// The rated call.
    pub usage: &'a Usage,
    /// The subject's balance after it.
    pub balance: Decimal,
    /// The subject's watermark.
    pub watermark: Option<Decimal>,
    /// Whether the subject has a parent agency.
    pub has_parent: bool,
}

/// One version of the contract as the host drives it: its imports in the
/// linker, its exports found once per component, and each export called with
/// the model's types (converted to and from that version's).
pub trait Contract: Send + Sync + 'static {
    /// Where a component's exports are.
    type Exports: Send + Sync + 'static;
    /// An instance's exports, loaded on first use.
    type Bound: Default + Send + 'static;

    /// Add this version's imports (the host's capabilities) to the linker.
    fn add_to_linker(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()>;
    /// Find the exports of a linked component.
    fn exports(pre: &InstancePre<SandboxState>) -> wasmtime::Result<Self::Exports>;
    /// Call `usage`.
    fn usage(
        warm: &mut Warm<Self::Bound>,
        exports: &Self::Exports,
        call: UsageCall<'_>,
    ) -> wasmtime::Result<Result<(), PolicyError>>;
    /// Call `handle` with the subject (and its parent, if any).
    fn handle(
        warm: &mut Warm<Self::Bound>,
        exports: &Self::Exports,
        event: &Event,
        has_parent: bool,
    ) -> wasmtime::Result<Result<(), PolicyError>>;
    /// Call `query`.
    fn query(
        warm: &mut Warm<Self::Bound>,
        exports: &Self::Exports,
        actor: &str,
        what: QueryKind,
        has_parent: bool,
    ) -> wasmtime::Result<Result<Answer, PolicyError>>;
    /// Call `describe`.
    fn describe(
        warm: &mut Warm<Self::Bound>,
        exports: &Self::Exports,
    ) -> wasmtime::Result<AccountView>;
}

/// The contract's package, whose `policy` export names the version.
const PACKAGE: &str = "recharge:policy/policy@";

/// A version of the contract this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// `recharge:policy@0.1.0`.
    V0_1,
    /// `recharge:policy@0.2.0`: the payment lifecycle (`requires-action`).
    V0_2,
}

impl ContractVersion {
    /// Every version this host runs, oldest first.
    pub const SUPPORTED: [ContractVersion; 2] = [ContractVersion::V0_1, ContractVersion::V0_2];

    /// The version's number, as in the package name.
    pub fn number(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }

    /// The version of the contract `component` exports, if it exports one this
    /// host runs; otherwise what it declares (or that it declares none).
    pub fn of(engine: &Engine, component: &Component) -> Result<ContractVersion, String> {
        let declared: Vec<String> = component
            .component_type()
            .exports(engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
            .filter_map(|(name, _)| name.strip_prefix(PACKAGE).map(str::to_owned))
            .collect();
        for version in Self::SUPPORTED {
            if declared.iter().any(|number| number == version.number()) {
                return Ok(version);
            }
        }
        let supported: Vec<_> = Self::SUPPORTED.iter().map(|v| v.number()).collect();
        Err(match declared.first() {
            Some(number) => format!(
                "it declares recharge:policy@{number}; this host runs {}",
                supported.join(", ")
            ),
            None => format!(
                "it exports no recharge:policy/policy interface (this host runs {})",
                supported.join(", ")
            ),
        })
    }
}

/// Every version's imports, in one linker: a component links against the
/// version it declares.
pub fn add_to_linker(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    <v0_1::Binding as Contract>::add_to_linker(linker)?;
    <v0_2::Binding as Contract>::add_to_linker(linker)
}
