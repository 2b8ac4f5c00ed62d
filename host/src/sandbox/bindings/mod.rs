//! Host bindings, one module per released version of the contract (`wit/X.Y.Z/`),
//! and the version a component declares.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

pub mod v0_1;

/// The contract's package, whose `policy` export names the version.
const PACKAGE: &str = "recharge:policy/policy@";

/// A version of the contract this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// `recharge:policy@0.1.0`.
    V0_1,
}

impl ContractVersion {
    /// Every version this host runs, oldest first.
    pub const SUPPORTED: [ContractVersion; 1] = [ContractVersion::V0_1];

    /// The version's number, as in the package name.
    pub fn number(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
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
