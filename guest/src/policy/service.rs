//! Service (R9) and the other queries.

use rust_decimal::Decimal;

use super::allocation;
use super::auth::{Action, authorize};
use super::session::{out_of_range, refused};
use super::state::State;
use crate::caps::{Capabilities, Role};
use crate::model::{Answer, PolicyError, QueryKind, Snapshot, Status};

/// R9: an account can take calls when active with a positive balance or any
/// minutes left.
pub(super) fn can_take_calls(subject: &Snapshot) -> bool {
    subject.status == Status::Active && (subject.balance > Decimal::ZERO || subject.has_minutes())
}

/// Answer `actor`'s query about the subject, the subject itself or its parent
/// agency only. Reads, never writes.
pub(super) fn answer(
    actor: &str,
    what: QueryKind,
    caps: &impl Capabilities,
) -> Result<Answer, PolicyError> {
    let subject = caps.snapshot(Role::Subject).map_err(refused)?;
    authorize(Action::Query, actor, &subject)?;
    Ok(match what {
        QueryKind::AutoRecharge => {
            Answer::AutoRecharge(State::decode(&caps.state(Role::Subject)).auto)
        }
        QueryKind::Estimate => {
            let state = State::decode(&caps.state(Role::Subject));
            let estimate = allocation::monthly_estimate(&state, &caps.rates())
                .ok_or_else(|| out_of_range("allocation estimate"))?;
            Answer::Estimate(estimate)
        }
        QueryKind::Service => Answer::Service(can_take_calls(&subject)),
        QueryKind::Balance => Answer::Balance(subject),
    })
}
