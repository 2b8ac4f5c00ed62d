//! The component-loading target's input decoding and check, shared by libFuzzer
//! and `cargo test`.
//!
//! The first byte of an input picks how the rest becomes a candidate component:
//! raw bytes; raw bytes behind a component header (to get past the magic check);
//! edits of the default policy (so the candidate is mostly a real component); or,
//! in the fuzz crate only, a generated core module wrapped in a component.

use std::sync::Arc;

use recharge_host::check::{CheckError, check_component};
use recharge_host::{DEFAULT_POLICY, NativePolicy, Platform, PolicyEngine};

/// The header of a component binary: magic, then version 0x0d and layer 1.
pub const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";

/// How an input's first byte decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The rest, as is.
    Raw,
    /// A component header, then the rest.
    Headed,
    /// The default policy with the rest read as edits.
    Mutated,
    /// A generated core module in a component (decoded by the fuzz crate).
    Generated,
}

impl Mode {
    /// The mode an input's first byte selects.
    pub fn of(byte: u8) -> Mode {
        match byte % 4 {
            0 => Mode::Raw,
            1 => Mode::Headed,
            2 => Mode::Mutated,
            _ => Mode::Generated,
        }
    }
}

/// The default policy with `edits` applied: each 5 bytes are an offset (u32, LE,
/// modulo the length) and a byte to xor there; a trailing 1–4 bytes truncate the
/// component to that offset instead.
pub fn mutate(edits: &[u8]) -> Vec<u8> {
    let mut bytes = DEFAULT_POLICY.to_vec();
    let mut chunks = edits.chunks_exact(5);
    for edit in &mut chunks {
        let offset = u32::from_le_bytes([edit[0], edit[1], edit[2], edit[3]]) as usize;
        let at = offset % bytes.len();
        bytes[at] ^= edit[4].max(1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut offset = [0u8; 4];
        offset[..rest.len()].copy_from_slice(rest);
        let cut = u32::from_le_bytes(offset) as usize % bytes.len();
        bytes.truncate(cut);
    }
    bytes
}

/// The candidate component of an input in the raw, headed and mutated modes;
/// `None` for the generated mode and for empty input.
pub fn candidate(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    match Mode::of(mode) {
        Mode::Raw => Some(rest.to_vec()),
        Mode::Headed => Some(COMPONENT_HEADER.iter().chain(rest).copied().collect()),
        Mode::Mutated => Some(mutate(rest)),
        Mode::Generated => None,
    }
}

/// Load `bytes`; if it loads, run the host's check (a smoke workload under the
/// sandbox's limits) with it as a tenant's policy. Panics (the finding) only on
/// an outcome the host must never give: the check's own host failing.
pub fn check_bytes(engine: &PolicyEngine, bytes: &[u8]) {
    if engine.load(bytes).is_err() {
        return;
    }
    let builder = Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::new(NativePolicy));
    match check_component(bytes, builder) {
        Ok(report) => assert!(report.max_fuel <= report.fuel_limit),
        Err(CheckError::Load(_) | CheckError::Faulted(_)) => {}
        Err(CheckError::Host(error)) => panic!("the check's host failed: {error}"),
        Err(other) => panic!("an outcome of the check this target does not know: {other}"),
    }
}
