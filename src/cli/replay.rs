//! `recharge replay SCRIPT`.

use std::path::Path;

use anyhow::Context;
use recharge_sim::replay::replay_file;

/// Replay the script and print the document.
pub fn run(script: &Path) -> anyhow::Result<()> {
    let document = replay_file(script, super::platform())?;
    let text = serde_json::to_string_pretty(&document).context("cannot print the document")?;
    println!("{text}");
    Ok(())
}
