//! `recharge`: replay scenario scripts, simulate months of traffic, measure decision
//! speed and check tenant policy components.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("recharge: {err:#}");
            ExitCode::from(2)
        }
    }
}
