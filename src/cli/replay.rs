//! `recharge replay SCRIPT`.

use std::path::Path;

use recharge_sim::replay::replay_file;

use super::output;

/// Replay the script and print the document.
pub fn run(script: &Path) -> anyhow::Result<()> {
    let document = replay_file(script, super::platform())?;
    output::print_json(&document)
}
