//! Payment gateways: the trait the outbox submits charges through, and a
//! simulated gateway with the card behaviours of scenario scripts (SPEC §7).
//!
//! A submission is idempotent by key: the same key never charges twice, and
//! submitting it again is how the host asks what became of it. The answer is
//! final (succeeded, declined, requires action), transient (failed: the policy
//! may try again under a new key), pending (the outcome comes later, by webhook,
//! through [`crate::Platform::deliver_outcome`]), or not known at all
//! ([`Unknown`]: a timeout, a reset connection, a 5xx), which the host resolves
//! by asking again with the same key, never by a new attempt.

mod behavior;
mod simulated;

use recharge_policy_sdk::model::{ChargeOutcome, Timestamp};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::account::AccountId;

pub use self::behavior::{BadBehavior, CardBehavior};
pub use self::simulated::{CardCharge, GATEWAY_STREAM, SimulatedGateway, Webhook};

/// A charge as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayCharge<'a> {
    /// The idempotency key: the same key never charges twice.
    pub key: &'a str,
    /// The card holder.
    pub payer: &'a AccountId,
    /// The card.
    pub card: &'a str,
    /// The amount in USD, whole cents.
    pub amount: Decimal,
    /// When the host submits it (the host's clock).
    pub at: Timestamp,
    /// How often the host submitted it or asked about it before: 0 for its
    /// first submission, more when it asks again about an answer it never
    /// got or a charge still pending.
    pub asked: u32,
}

/// How a charge ended, as far as the gateway says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The outcome.
    pub outcome: ChargeOutcome,
    /// The gateway's own id of the charge, when it gave one.
    pub reference: Option<String>,
    /// The gateway's reason for a decline or failure, when it gave one.
    pub reason: Option<String>,
}

/// What a gateway answered about a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayAnswer {
    /// The charge ended: succeeded, declined, failed transiently, or needs the
    /// customer's authentication.
    Settled(Settlement),
    /// Accepted; the outcome comes later (a webhook to
    /// [`crate::Platform::deliver_outcome`]).
    Pending {
        /// The gateway's own id of the charge, when it gave one.
        reference: Option<String>,
    },
}

/// The gateway could not say what became of a charge: a timeout, a reset
/// connection, a 5xx. The card may or may not have been charged; the host asks
/// again with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("gateway outcome unknown: {0}")]
pub struct Unknown(pub String);

/// Something that charges cards. It must be idempotent by key: a key seen
/// before is not charged again, and its answer says what became of it.
pub trait Gateway: Send + Sync {
    /// Submit a charge, or ask about one submitted before under the same key.
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown>;
}
