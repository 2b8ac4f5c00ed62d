//! `recharge bench [--policy FILE] [--events N] [--fresh-instances] [--json]`.

use std::path::PathBuf;

use recharge_host::Limits;
use recharge_sim::bench::{BenchOptions, BenchReport, MAX_EVENTS, SpeedReport, bench};

use super::output;
use super::simulate::{Progress, read_policy};

/// `recharge bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Measure this policy component instead of the default policy.
    #[arg(long, value_name = "FILE.wasm")]
    policy: Option<PathBuf>,
    /// Usage events to time.
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().events)]
    events: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Instantiate a fresh sandbox for every call instead of reusing warm
    /// instances (the difference is what an instantiation costs).
    #[arg(long)]
    fresh_instances: bool,
}

/// Time the events and print the figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !(1..=MAX_EVENTS).contains(&args.events) {
        anyhow::bail!(
            "--events: {} is not between 1 and {MAX_EVENTS}",
            args.events
        );
    }
    let policy = read_policy(args.policy.as_deref())?;
    let options = BenchOptions {
        events: args.events,
        ..BenchOptions::default()
    };
    let mut progress = Progress::new("benchmarking");
    let fresh = args.fresh_instances;
    let builder = move || {
        super::platform().limits(Limits {
            fresh_instance_per_call: fresh,
            ..Limits::default()
        })
    };
    let report = bench(&policy, options, &builder, &mut |done, total| {
        progress.update(done, total)
    })?;
    progress.finish();
    if args.json {
        output::print_json(&report)
    } else {
        output::print_text(&text(&report))
    }
}

fn text(report: &BenchReport) -> String {
    let mut out = format!(
        "recharge bench: {} usage events over {} users on auto-recharge, one at a time\n\n",
        report.events, report.users
    );
    out.push_str(&format!(
        "{:<16} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
        "policy", "events/s", "median µs", "p99 µs", "fuel median", "fuel p99"
    ));
    for speed in std::iter::once(&report.policy).chain(&report.native) {
        out.push_str(&row(speed));
    }
    out.push_str(&row(&report.saves));
    if let Some(ratio) = report.wasm_over_native {
        out.push_str(&format!(
            "\nwasm_over_native {ratio:.2} (median time per event, sandboxed over native)\n"
        ));
    }
    out
}

fn row(speed: &SpeedReport) -> String {
    let micros = |nanos: u64| nanos as f64 / 1_000.0;
    format!(
        "{:<16} {:>12.0} {:>12.2} {:>12.2} {:>12} {:>12}\n",
        speed.policy,
        speed.events_per_second,
        micros(speed.median_ns),
        micros(speed.p99_ns),
        speed.fuel_per_event.median,
        speed.fuel_per_event.p99
    )
}
