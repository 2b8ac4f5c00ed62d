//! `GET /metrics`: the service's counters in the Prometheus text format
//! (version 0.0.4), written by hand: a few counters, one histogram and two
//! gauges do not need a metrics crate.
//!
//! - `recharge_http_requests_total{route,method,status}`: requests answered,
//!   by route template (`/v1/accounts/{id}`; `unmatched` for no route);
//! - `recharge_http_request_duration_seconds{route}`: their latency;
//! - `recharge_events_total{kind}`: commands carried out (`open`, `usage`,
//!   `top_up`, ...) and timers fired (`timer`);
//! - `recharge_policy_decisions_total{kind}`, `recharge_policy_fuel_total{kind}`:
//!   the decisions policies made and the fuel they burnt, by the kind of event
//!   (`background` for the work of the workers: timers, payment outcomes);
//! - `recharge_charges_queued_total`, `recharge_notices_total{kind}`;
//! - `recharge_policy_faults_total`, `recharge_policy_quarantines_total`:
//!   the `policy_fault` and `policy_quarantined` notices sent;
//! - `recharge_webhook_deliveries_total`, `recharge_webhook_retries_total`:
//!   notices delivered to the notice webhook, and attempts that failed (each
//!   is tried again, later);
//! - `recharge_outbox_depth`, `recharge_inbox_depth`: read from the store at
//!   each scrape, so they are the database's, shared by every node.
//!
//! The counters are this process's since it started, as Prometheus expects.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use recharge_host::EventReport;

/// The upper bounds of the latency buckets, in milliseconds.
const BUCKETS_MS: [u64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

/// The content type of the exposition.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    events: BTreeMap<&'static str, u64>,
    decisions: BTreeMap<&'static str, u64>,
    fuel: BTreeMap<&'static str, u64>,
    charges_queued: u64,
    notices: BTreeMap<String, u64>,
    webhook_deliveries: u64,
    webhook_retries: u64,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    micros: u64,
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A request answered.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut counts = self.counts();
        *counts
            .requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let histogram = counts.latency.entry(route.to_owned()).or_default();
        let millis = took.as_millis();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS_MS) {
            if millis <= u128::from(bound) {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.micros = histogram
            .micros
            .saturating_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// An event of `kind` carried out, and what it did.
    pub fn event(&self, kind: &'static str, report: &EventReport) {
        *self.counts().events.entry(kind).or_default() += 1;
        self.tally(kind, report);
    }

    /// What background work did: the timers it fired, the decisions, fuel,
    /// charges and notices it committed.
    pub fn report(&self, report: &EventReport) {
        self.tally("background", report);
    }

    fn tally(&self, kind: &'static str, report: &EventReport) {
        let mut counts = self.counts();
        if report.decisions > 0 {
            *counts.decisions.entry(kind).or_default() += report.decisions;
        }
        if report.fuel > 0 {
            *counts.fuel.entry(kind).or_default() += report.fuel;
        }
        if !report.fired.is_empty() {
            *counts.events.entry("timer").or_default() += report.fired.len() as u64;
        }
        counts.charges_queued += report.charges.len() as u64;
        for notice in &report.notices {
            *counts.notices.entry(notice.kind.clone()).or_default() += 1;
        }
    }

    /// A round of notice webhook deliveries: `delivered` notices accepted by
    /// the receiver, and whether the round ended on a failed attempt (to be
    /// tried again).
    pub fn webhook(&self, delivered: u64, failed: bool) {
        let mut counts = self.counts();
        counts.webhook_deliveries += delivered;
        counts.webhook_retries += u64::from(failed);
    }

    /// The exposition, with the store's outbox and inbox depths.
    pub fn render(&self, outbox: usize, inbox: usize) -> String {
        let counts = self.counts();
        let mut out = String::new();
        family(
            &mut out,
            "recharge_http_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
        );
        for ((route, method, status), count) in &counts.requests {
            let _ = writeln!(
                out,
                "recharge_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                escape(route),
                escape(method)
            );
        }
        family(
            &mut out,
            "recharge_http_request_duration_seconds",
            "histogram",
            "How long requests took to answer, by route template.",
        );
        for (route, histogram) in &counts.latency {
            let route = escape(route);
            let name = "recharge_http_request_duration_seconds";
            for (count, bound) in histogram.buckets.iter().zip(BUCKETS_MS) {
                let le = seconds(bound * 1000);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {count}"
                );
            }
            let count = histogram.count;
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let sum = seconds(histogram.micros);
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {count}");
        }
        family(
            &mut out,
            "recharge_events_total",
            "counter",
            "Events carried out: commands by kind, and timers fired.",
        );
        for (kind, count) in &counts.events {
            let _ = writeln!(out, "recharge_events_total{{kind=\"{kind}\"}} {count}");
        }
        for (name, help, values) in [
            (
                "recharge_policy_decisions_total",
                "Policy decisions made, by the kind of event (background: the workers').",
                &counts.decisions,
            ),
            (
                "recharge_policy_fuel_total",
                "Fuel burnt by policies, by the kind of event (background: the workers').",
                &counts.fuel,
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (kind, value) in values {
                let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {value}");
            }
        }
        let mut single = |name: &str, kind: &str, help: &str, value: u64| {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        };
        let notices = |kind: &str| counts.notices.get(kind).copied().unwrap_or(0);
        single(
            "recharge_charges_queued_total",
            "counter",
            "Charges committed to the outbox.",
            counts.charges_queued,
        );
        single(
            "recharge_policy_faults_total",
            "counter",
            "Events a policy faulted on (policy_fault notices).",
            notices("policy_fault"),
        );
        single(
            "recharge_policy_quarantines_total",
            "counter",
            "Accounts told their policy was quarantined (policy_quarantined notices).",
            notices("policy_quarantined"),
        );
        single(
            "recharge_webhook_deliveries_total",
            "counter",
            "Notices the notice webhook's receiver accepted.",
            counts.webhook_deliveries,
        );
        single(
            "recharge_webhook_retries_total",
            "counter",
            "Notice webhook attempts that failed and will be tried again.",
            counts.webhook_retries,
        );
        single(
            "recharge_outbox_depth",
            "gauge",
            "Charges waiting in the store's outbox.",
            outbox as u64,
        );
        single(
            "recharge_inbox_depth",
            "gauge",
            "Payment outcomes waiting in the store's inbox.",
            inbox as u64,
        );
        family(
            &mut out,
            "recharge_notices_total",
            "counter",
            "Notices sent, by kind.",
        );
        for (kind, count) in &counts.notices {
            let _ = writeln!(
                out,
                "recharge_notices_total{{kind=\"{}\"}} {count}",
                escape(kind)
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Microseconds as decimal seconds, without a float.
fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A label value escaped as the text format asks.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_falls_in_every_bucket_from_its_own() {
        let metrics = Metrics::default();
        metrics.request("/v1/usage", "POST", 200, Duration::from_millis(30));
        let text = metrics.render(2, 0);
        assert!(text.contains(
            "recharge_http_requests_total{route=\"/v1/usage\",method=\"POST\",status=\"200\"} 1"
        ));
        let bucket = |le: &str| {
            format!(
                "recharge_http_request_duration_seconds_bucket{{route=\"/v1/usage\",le=\"{le}\"}}"
            )
        };
        assert!(
            text.contains(&format!("{} 0", bucket("0.025000"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1", bucket("0.050000"))),
            "{text}"
        );
        assert!(text.contains(&format!("{} 1", bucket("+Inf"))), "{text}");
        assert!(
            text.contains(
                "recharge_http_request_duration_seconds_sum{route=\"/v1/usage\"} 0.030000"
            )
        );
        assert!(text.contains("recharge_outbox_depth 2"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
