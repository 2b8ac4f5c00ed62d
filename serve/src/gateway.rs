//! `--gateway webhook:URL`: charges go to the platform's own payment stack.
//!
//! Each submission is a `POST URL` with the charge as JSON and its key in
//! `Idempotency-Key`:
//!
//! ```json
//! {"key": "...", "payer": "u", "card": "visa", "amount": "10.00",
//!  "at": "2026-12-03T07:00:00Z", "asked": 0}
//! ```
//!
//! `asked` is 0 for the first submission and more when the host asks again
//! about a charge whose answer it never got, or that is still pending: the
//! platform must charge a key at most once and answer a repeat with what
//! became of it. A 2xx answer carries the outcome as in
//! `POST /v1/payment-outcomes` (`{"outcome": "succeeded"}`, or `pending`
//! when the outcome will come later through that endpoint). Anything else
//! (no answer within the timeout, a refused connection, another status, a
//! body that does not read) leaves the outcome unknown: the host asks again
//! later with the same key, and never makes a new attempt of its own.

use recharge_host::{Gateway, GatewayAnswer, GatewayCharge, Unknown, money};
use recharge_sim::report::time;
use serde_json::{Value, json};

use crate::outbound::{Client, Endpoint};
use crate::request;

/// A gateway that forwards charges to the platform's URL.
pub struct WebhookGateway {
    endpoint: Endpoint,
    client: Client,
}

impl WebhookGateway {
    /// Charges go to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        WebhookGateway {
            endpoint,
            client: Client::default(),
        }
    }
}

/// The JSON a charge is sent as.
pub fn charge_json(charge: &GatewayCharge<'_>) -> Value {
    json!({
        "key": charge.key,
        "payer": charge.payer.0,
        "card": charge.card,
        "amount": money(charge.amount),
        "at": time(charge.at),
        "asked": charge.asked,
    })
}

impl Gateway for WebhookGateway {
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        let body = charge_json(charge).to_string();
        let reply = self
            .client
            .post_json(&self.endpoint, &[("Idempotency-Key", charge.key)], &body)
            .map_err(|why| Unknown(format!("{}: {why}", self.endpoint)))?;
        if !(200..300).contains(&reply.status) {
            return Err(Unknown(format!(
                "{} answered {}",
                self.endpoint, reply.status
            )));
        }
        let fields = request::object(reply.body.as_bytes())
            .map_err(|problem| Unknown(format!("{}: {}", self.endpoint, problem.detail)))?;
        // The platform may echo the charge's own fields beside the outcome.
        crate::outcome::answer_of(&fields, &["key", "payer", "card", "amount", "at", "asked"])
            .map_err(|problem| Unknown(format!("{}: {}", self.endpoint, problem.detail)))
    }
}
