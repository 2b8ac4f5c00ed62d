//! `recharge simulate [SCENARIO.toml]`, and the progress bar it shares with
//! `recharge bench`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output;
use recharge_sim::chart;
use recharge_sim::scenario::Scenario;
use recharge_sim::simulate::{PolicyUnderTest, simulate};
use recharge_sim::summary::render_text;

/// `recharge simulate` options.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The scenario (TOML); the embedded default when omitted.
    scenario: Option<PathBuf>,
    /// Run this tenant policy component for every user and agency.
    #[arg(long, value_name = "FILE.wasm")]
    policy: Option<PathBuf>,
    /// Also run this policy component on the same traffic, side by side.
    #[arg(long, value_name = "FILE.wasm")]
    compare: Option<PathBuf>,
    /// Print a JSON report instead of the table.
    #[arg(long)]
    json: bool,
    /// Where to write the SVG chart.
    #[arg(long, value_name = "PATH", default_value = "recharge-simulation.svg")]
    chart: PathBuf,
    /// Override the scenario's seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

/// Run the scenario, write the chart, print the report.
pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::embedded()?,
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let mut policies = vec![read_policy(args.policy.as_deref())?];
    if let Some(compare) = &args.compare {
        policies.push(read_policy(Some(compare))?);
    }
    // Two files of the same name are told apart by their paths.
    if let [first, second] = &mut policies[..]
        && first.label() == second.label()
    {
        for (policy, file) in [(first, &args.policy), (second, &args.compare)] {
            if let (PolicyUnderTest::Component { label, .. }, Some(file)) = (policy, file) {
                *label = file.display().to_string();
            }
        }
    }
    let mut progress = Progress::new("simulating");
    let simulation = simulate(
        &scenario,
        &policies,
        &super::platform,
        &mut |done, total| progress.update(done, total),
    )?;
    progress.finish();

    chart::write(&args.chart, &chart::render(&simulation.chart()))
        .with_context(|| format!("{}: cannot write the chart", args.chart.display()))?;
    let mut report = simulation.report;
    report.chart = Some(args.chart.display().to_string());
    if args.json {
        output::print_json(&report)
    } else {
        output::print_text(&render_text(&report))
    }
}

/// The default policy, or a component read from a file and named after it.
pub fn read_policy(file: Option<&Path>) -> anyhow::Result<PolicyUnderTest> {
    let Some(file) = file else {
        return Ok(PolicyUnderTest::Default);
    };
    let bytes = super::read_component(file, "the policy")?;
    let label = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    Ok(PolicyUnderTest::Component { label, bytes })
}

/// A progress bar on stderr, shown only when stderr is a terminal and the work
/// takes longer than a moment.
pub struct Progress {
    message: &'static str,
    started: Instant,
    bar: Option<ProgressBar>,
}

/// How long work runs before a bar appears.
const MOMENT: Duration = Duration::from_millis(300);

impl Progress {
    /// A bar for work described by `message`, not drawn yet.
    pub fn new(message: &'static str) -> Self {
        Progress {
            message,
            started: Instant::now(),
            bar: None,
        }
    }

    /// `done` of `total` events are through.
    pub fn update(&mut self, done: u64, total: u64) {
        if self.bar.is_none() && self.started.elapsed() >= MOMENT && std::io::stderr().is_terminal()
        {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events, {eta} left")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(self.message);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Remove the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
