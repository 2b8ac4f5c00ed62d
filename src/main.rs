//! `recharge`: replay scenario scripts, simulate months of traffic, measure decision
//! speed and check tenant policy components.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away (`| head`): stop quietly.
        Err(err) if cli::output::is_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever the error's sources print; stderr failing
            // too leaves nothing else to tell.
            let message = format!("{err:#}");
            let one_line: Vec<&str> = message
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect();
            let _ = writeln!(std::io::stderr(), "recharge: {}", one_line.join(" "));
            ExitCode::from(2)
        }
    }
}
