//! `recharge replay SCRIPT [--db URL]`.

use std::path::Path;

use anyhow::Context;
use recharge_host::Database;
use recharge_sim::replay::{replay_file, replay_file_in};

use super::output;

/// Replay the script (in memory, or continuing on a database) and print the
/// document.
pub fn run(script: &Path, db: Option<&Database>) -> anyhow::Result<()> {
    let document = match db {
        None => replay_file(script, super::platform())?,
        Some(db) => {
            let store = db.open().with_context(|| format!("cannot open {db}"))?;
            replay_file_in(script, super::platform(), store)?
        }
    };
    output::print_json(&document)
}
