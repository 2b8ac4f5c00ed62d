//! Response bodies: what a command did (the charges it queued, the notices it
//! sent), and pages of the output document's lists, in the JSON shapes of
//! the replay document ([`recharge_sim::report`]).

use recharge_host::{ChargeRequest, EventReport, money};
use recharge_sim::report::{notification_out, purpose_name, time};
use serde::Serialize;
use serde_json::{Value, json};

/// What one command did: the charges it queued (their outcomes are in
/// `GET /v1/charges` once settled) and the notices it sent, with those of
/// the payment outcomes it led to.
pub fn report_json(report: &EventReport) -> Value {
    json!({
        "charges": report.charges.iter().map(queued_json).collect::<Vec<_>>(),
        "notices": report.notices.iter().map(notification_out).collect::<Vec<_>>(),
    })
}

fn queued_json(request: &ChargeRequest) -> Value {
    json!({
        "key": request.key,
        "payer": request.payer.0,
        "card": request.card,
        "amount": money(request.amount),
        "purpose": purpose_name(&request.purpose),
        "beneficiary": request.beneficiary().0,
        "requested_at": time(request.requested_at),
    })
}

/// One page of a list numbered by the store: the items, each with its
/// cursor, and the cursor to ask from next (the last one seen, or `after`
/// when the page is empty), with whether the page was full.
pub fn page<T: Serialize>(after: u64, limit: usize, items: Vec<(u64, T)>) -> Value {
    let next = items.last().map_or(after, |(seq, _)| *seq);
    let full = items.len() == limit;
    let items: Vec<Value> = items
        .into_iter()
        .map(|(seq, item)| {
            let mut value = serde_json::to_value(item).unwrap_or(Value::Null);
            if let Value::Object(fields) = &mut value {
                fields.insert("cursor".into(), Value::String(seq.to_string()));
            }
            value
        })
        .collect();
    json!({ "items": items, "next_after": next.to_string(), "more": full })
}
