//! The simulated card network beside a platform: as the clock runs, the
//! gateway's webhooks are delivered at their due times, in time order with the
//! platform's own work (wake-ups, charges asked about again).

use recharge_host::{EventReport, GatewayAnswer, HostError, Platform, SimulatedGateway};
use recharge_policy_sdk::model::Timestamp;

/// Move the platform's clock to `at`, delivering every webhook due by then at
/// its own time (each of the gateway's duplicates too: the platform applies an
/// outcome once).
pub fn advance(
    platform: &Platform,
    gateway: &SimulatedGateway,
    at: Timestamp,
) -> Result<EventReport, HostError> {
    let mut report = EventReport::default();
    loop {
        let webhook = gateway.next_webhook().filter(|due| *due <= at);
        let work = platform.next_due(at)?;
        // Step to the earliest of both: the platform's work at that instant
        // runs first, and may queue webhooks of its own for later.
        let Some(step) = [webhook, work].into_iter().flatten().min() else {
            break;
        };
        report.add(platform.advance_to(step)?);
        for hook in gateway.take_webhooks(step)? {
            platform.deliver_outcome(&hook.key, GatewayAnswer::Settled(hook.settlement))?;
        }
    }
    report.add(platform.advance_to(at)?);
    Ok(report)
}
