//! Host bindings generated from `wit/0.2.0/recharge.wit`: the payment
//! lifecycle's contract (`requires-action`, the gateway's reference and reason,
//! `payment-action-required` and `recharge-deferred`).

use recharge_policy_sdk::model::{ChargeOutcome, Notice, PaymentOutcome};

wasmtime::component::bindgen!({
    world: "recharge-policy",
    path: "../wit/0.2.0",
});

use exports::recharge::policy::policy as exported;
use recharge::policy::types as wit;

/// Contract `recharge:policy@0.2.0`.
pub struct Binding;

/// The contract's export interface.
const POLICY_EXPORT: &str = "recharge:policy/policy@0.2.0";

fn outcome(outcome: ChargeOutcome) -> wit::ChargeOutcome {
    match outcome {
        ChargeOutcome::Succeeded => wit::ChargeOutcome::Succeeded,
        ChargeOutcome::Declined => wit::ChargeOutcome::Declined,
        ChargeOutcome::Failed => wit::ChargeOutcome::Failed,
        ChargeOutcome::RequiresAction => wit::ChargeOutcome::RequiresAction,
    }
}

fn notice(kind: wit::NoticeKind) -> Notice {
    match kind {
        wit::NoticeKind::RechargeSucceeded => Notice::RechargeSucceeded,
        wit::NoticeKind::RechargeFailed => Notice::RechargeFailed,
        wit::NoticeKind::RechargeLimitReached => Notice::RechargeLimitReached,
        wit::NoticeKind::AccountPaused => Notice::AccountPaused,
        wit::NoticeKind::AccountResumed => Notice::AccountResumed,
        wit::NoticeKind::AllocationSucceeded => Notice::AllocationSucceeded,
        wit::NoticeKind::AllocationFailed => Notice::AllocationFailed,
        wit::NoticeKind::TopUpFailed => Notice::TopUpFailed,
        wit::NoticeKind::PaymentActionRequired => Notice::PaymentActionRequired,
        wit::NoticeKind::RechargeDeferred => Notice::RechargeDeferred,
    }
}

fn payment_outcome(result: &PaymentOutcome) -> Result<exported::PaymentOutcome, Malformed> {
    Ok(exported::PaymentOutcome {
        key: result.key.clone(),
        outcome: outcome(result.outcome),
        amount: decimal(result.amount)?,
        purpose: purpose(&result.purpose),
        payer: result.payer.clone(),
        reference: result.reference.clone(),
        reason: result.reason.clone(),
    })
}

include!("glue.rs");
