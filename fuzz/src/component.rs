//! The component target: every mode of [`crate::load`], plus generated core
//! modules (wasm-smith) wrapped in a component that instantiates them.

use std::sync::OnceLock;

use arbitrary::Unstructured;
use recharge_host::{Limits, PolicyEngine};
use wasm_encoder::{Component, ComponentSectionId, RawSection};

use crate::load::{Mode, candidate, check_bytes};

/// One engine for the whole fuzzing process, with the default limits.
fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::new(Limits::default(), None).expect("engine"))
}

/// A wasm-smith core module, embedded in a component with no imports or exports.
fn generated(data: &[u8]) -> Option<Vec<u8>> {
    let mut input = Unstructured::new(data);
    let mut config: wasm_smith::Config = input.arbitrary().ok()?;
    config.max_memory32_bytes = 1 << 24;
    config.max_table_elements = 20_000;
    let module = wasm_smith::Module::new(config, &mut input).ok()?;
    let mut component = Component::new();
    component.section(&RawSection {
        id: ComponentSectionId::CoreModule as u8,
        data: &module.to_bytes(),
    });
    Some(component.finish())
}

/// Decode an input into a candidate component and check it.
pub fn check_input(data: &[u8]) {
    let bytes = match data.first().map(|&mode| Mode::of(mode)) {
        Some(Mode::Generated) => generated(&data[1..]),
        _ => candidate(data),
    };
    if let Some(bytes) = bytes {
        check_bytes(engine(), &bytes);
    }
}
