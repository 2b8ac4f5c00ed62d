//! Host bindings generated from `wit/0.1.0/recharge.wit`, the first contract:
//! a 0.1.0 policy knows no `requires-action` outcome (it sees a decline), no
//! gateway reference or reason, and none of 0.2.0's notices.

use recharge_policy_sdk::model::{ChargeOutcome, Notice, PaymentOutcome};

wasmtime::component::bindgen!({
    world: "recharge-policy",
    path: "../wit/0.1.0",
});

use exports::recharge::policy::policy as exported;
use recharge::policy::types as wit;

/// Contract `recharge:policy@0.1.0`.
pub struct Binding;

/// The contract's export interface.
const POLICY_EXPORT: &str = "recharge:policy/policy@0.1.0";

/// A charge's outcome as 0.1.0 says it: authentication needed is a decline.
fn outcome(outcome: ChargeOutcome) -> wit::ChargeOutcome {
    match outcome {
        ChargeOutcome::Succeeded => wit::ChargeOutcome::Succeeded,
        ChargeOutcome::Declined | ChargeOutcome::RequiresAction => wit::ChargeOutcome::Declined,
        ChargeOutcome::Failed => wit::ChargeOutcome::Failed,
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
    }
}

fn payment_outcome(result: &PaymentOutcome) -> Result<exported::PaymentOutcome, Malformed> {
    Ok(exported::PaymentOutcome {
        key: result.key.clone(),
        outcome: outcome(result.outcome),
        amount: decimal(result.amount)?,
        purpose: purpose(&result.purpose),
        payer: result.payer.clone(),
    })
}

include!("glue.rs");
