//! `recharge check FILE.wasm`.

use std::path::Path;

use anyhow::Context;
use recharge_host::check::check_component;

use super::output;

/// Check the component and print what was found, or fail with the reason.
pub fn run(file: &Path) -> anyhow::Result<()> {
    let bytes = super::read_component(file, "the component")?;
    let report = check_component(&bytes, super::platform())
        .with_context(|| format!("{}: rejected", file.display()))?;
    output::print_text(&format!(
        "{}: ok\n  size      {} bytes\n  policy    {}\n  profile   {}\n  compile   {:.2} s (or the cache)\n  imports   {}\n  exports   {}\n  smoke     {} decisions, at most {} fuel per call (limit {})\n",
        file.display(),
        report.size,
        report.name,
        report.profile,
        report.compile_time.as_secs_f64(),
        report.imports.join(", "),
        report.exports.join(", "),
        report.decisions,
        report.max_fuel,
        report.fuel_limit
    ))
}
