//! What each fuzz target checks, as plain functions: the libFuzzer targets in
//! `fuzz_targets/` call them, and the project's `cargo test` (`tests/all/fuzz_smoke.rs`)
//! includes `script.rs`, `scenario.rs` and `load.rs` to run them over the seed
//! corpus without libFuzzer.

pub mod component;
pub mod load;
pub mod scenario;
pub mod script;
