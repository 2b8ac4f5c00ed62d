//! Who may do what. Checked before anything else: a request from the wrong actor
//! is `forbidden`, whatever else is wrong with it.

use alloc::format;

use crate::model::{AccountKind, PolicyError, Snapshot};

/// Something an actor asks to do to the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Save auto-recharge settings: the account itself only (R1).
    SaveAutoRecharge,
    /// Save a monthly allocation: the parent agency of a sub-account only (R7).
    SaveAllocation,
    /// A manual top-up: the account itself only (R8).
    TopUp,
    /// Any query: the account itself or its parent agency.
    Query,
}

impl Action {
    fn describe(self) -> &'static str {
        match self {
            Action::SaveAutoRecharge => "save the auto-recharge settings of",
            Action::SaveAllocation => "save a monthly allocation for",
            Action::TopUp => "top up",
            Action::Query => "query",
        }
    }
}

/// `Ok` when `actor` may do `action` to `subject`, `Forbidden` otherwise.
pub(super) fn authorize(
    action: Action,
    actor: &str,
    subject: &Snapshot,
) -> Result<(), PolicyError> {
    let is_self = actor == subject.id;
    let is_parent = subject.parent.as_deref() == Some(actor);
    let allowed = match action {
        Action::SaveAutoRecharge | Action::TopUp => is_self,
        Action::SaveAllocation => is_parent && subject.kind == AccountKind::SubAccount,
        Action::Query => is_self || is_parent,
    };
    if allowed {
        Ok(())
    } else {
        Err(PolicyError::Forbidden(format!(
            "{actor} may not {} {}",
            action.describe(),
            subject.id
        )))
    }
}
