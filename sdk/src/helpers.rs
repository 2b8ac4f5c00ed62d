//! The idioms of a policy, over any [`Capabilities`]: who the actor is, typed
//! state, idempotency keys. Bring them in with `use recharge_policy_sdk::Helpers`.

use alloc::format;
use alloc::string::String;

use crate::caps::{Capabilities, Role};
use crate::model::{PolicyError, Refusal};
use crate::state::PolicyState;

/// Who is asking, relative to the subject of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The subject account itself.
    Subject,
    /// The subject's parent agency.
    Agency,
    /// Anyone else.
    Other,
}

/// Helpers every policy wants, for every [`Capabilities`].
pub trait Helpers: Capabilities {
    /// Whether `actor` is the subject, its parent agency, or someone else.
    fn actor(&self, actor: &str) -> Result<Actor, Refusal> {
        let subject = self.snapshot(Role::Subject)?;
        Ok(if actor == subject.id {
            Actor::Subject
        } else if subject.parent.as_deref() == Some(actor) {
            Actor::Agency
        } else {
            Actor::Other
        })
    }

    /// The policy's state for the account: the default when none was saved.
    /// Bytes that cannot be read are an error, not a silent reset.
    fn load_state<S: PolicyState>(&self, who: Role) -> Result<S, PolicyError> {
        let bytes = self.state(who);
        if bytes.is_empty() {
            return Ok(S::default());
        }
        S::decode(&bytes).ok_or_else(|| PolicyError::Refused("policy state unreadable".into()))
    }

    /// Replace the policy's state for the account, committed with the event.
    fn save_state<S: PolicyState>(&mut self, who: Role, state: &S) -> Result<(), Refusal> {
        self.set_state(who, state.encode())
    }

    /// An idempotency key for the policy's `sequence`-th charge of a `kind`
    /// (`"refill"`, `"top-up"`). Keys need only be unique among this policy's
    /// charges for one payer: the host scopes them to the payer and the policy.
    fn charge_key(&self, kind: &str, sequence: u64) -> String {
        format!("{kind}/{sequence}")
    }
}

impl<C: Capabilities + ?Sized> Helpers for C {}
