//! `recharge check FILE.wasm`.

use std::path::Path;

use anyhow::Context;
use recharge_host::check::check_component;

/// Check the component and print what was found, or fail with the reason.
pub fn run(file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let report = check_component(&bytes, super::platform())
        .with_context(|| format!("{}: rejected", file.display()))?;
    println!("{}: ok", file.display());
    println!("  size      {} bytes", report.size);
    println!("  policy    {}", report.name);
    println!("  imports   {}", report.imports.join(", "));
    println!("  exports   {}", report.exports.join(", "));
    println!(
        "  smoke     {} decisions, at most {} fuel per call (limit {})",
        report.decisions, report.max_fuel, report.fuel_limit
    );
    Ok(())
}
