//! Background work on the system clock: every [`TICK`], the work due by now
//! runs (policies' wake-ups, charges submitted or asked about again, outcomes
//! offered again, the simulated gateway's webhooks); every [`RETENTION_EVERY`],
//! what is kept only for a window is forgotten (rated call ids, responses
//! kept under idempotency keys). Timers and outbox work are
//! claimed with leases, so nodes sharing a database never do one twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::service::Service;

/// How often due work is looked for.
pub const TICK: Duration = Duration::from_secs(1);
/// How often retention is applied.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Run due work until `stop` turns true; the piece of work under way when it
/// does is finished first.
pub async fn run(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut retention_due = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        let prune = Instant::now() >= retention_due;
        if prune {
            retention_due = Instant::now() + RETENTION_EVERY;
        }
        let worker = Arc::clone(&service);
        let done = tokio::task::spawn_blocking(move || {
            let report = worker.run_due_work()?;
            if prune {
                worker.platform.apply_retention()?;
                let window = crate::IDEMPOTENCY_WINDOW.as_millis() as i64;
                let before = worker.platform.now().saturating_sub(window);
                worker
                    .store
                    .prune_responses(before)
                    .map_err(recharge_host::HostError::from)?;
            }
            Ok::<_, recharge_host::HostError>(report)
        })
        .await;
        match done {
            Ok(Ok(report)) if report != Default::default() => tracing::info!(
                "due work: {} timers fired, {} charges queued, {} notices",
                report.fired.len(),
                report.charges.len(),
                report.notices.len()
            ),
            Ok(Ok(_)) => {}
            // Tried again at the next tick: nothing committed is lost.
            Ok(Err(err)) => tracing::warn!("due work failed: {err}"),
            Err(err) => tracing::error!("due work stopped: {err}"),
        }
    }
}
