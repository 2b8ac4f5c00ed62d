//! One event's working set: the capabilities, the subject's snapshot and the
//! decoded state, written back once at the end if it changed.

use alloc::{string::String, vec::Vec};
use rust_decimal::Decimal;

use super::state::State;
use crate::caps::{Capabilities, Role, describe_refusal};
use crate::model::{Notice, PolicyError, Purpose, Rates, Refusal, Snapshot, Status, Timestamp};

/// A capability refusal the policy cannot work around.
pub(super) fn refused(refusal: Refusal) -> PolicyError {
    PolicyError::Refused(describe_refusal(&refusal))
}

/// A value that does not fit its type: the event is rejected rather than wrapped.
pub(super) fn out_of_range(what: &str) -> PolicyError {
    PolicyError::Refused(alloc::format!("{what} out of range"))
}

/// The working set of one event; every change to the world goes through it.
pub(super) struct Session<'c, C: Capabilities> {
    caps: &'c mut C,
    /// Whether the subject's parent agency was handed to the event.
    pub has_parent: bool,
    /// The subject as the event began (its status kept up to date).
    pub subject: Snapshot,
    /// The policy's state for the subject.
    pub state: State,
    loaded: Vec<u8>,
}

impl<'c, C: Capabilities> Session<'c, C> {
    /// Read the subject's state and snapshot.
    pub fn open(caps: &'c mut C, has_parent: bool) -> Result<Self, PolicyError> {
        let loaded = caps.state(Role::Subject);
        Session::with_state(caps, has_parent, loaded)
    }

    /// Like [`Session::open`], with state bytes already read.
    pub fn with_state(
        caps: &'c mut C,
        has_parent: bool,
        loaded: Vec<u8>,
    ) -> Result<Self, PolicyError> {
        let subject = caps.snapshot(Role::Subject).map_err(refused)?;
        Ok(Session {
            state: State::decode(&loaded),
            caps,
            has_parent,
            subject,
            loaded,
        })
    }

    /// Write the state back if the event changed it.
    pub fn commit(self) -> Result<(), PolicyError> {
        // A fresh state that stayed fresh is not worth writing.
        if self.loaded.is_empty() && self.state == State::default() {
            return Ok(());
        }
        let bytes = self.state.encode();
        if bytes == self.loaded {
            return Ok(());
        }
        self.caps.set_state(Role::Subject, bytes).map_err(refused)
    }

    pub fn now(&self) -> Timestamp {
        self.caps.now()
    }

    pub fn rates(&self) -> Rates {
        self.caps.rates()
    }

    /// Whether `card` is a saved card of the subject or, with `Role::Parent`, of
    /// its parent agency (never when the parent was not handed over).
    pub fn has_card(&self, who: Role, card: &str) -> bool {
        (who == Role::Subject || self.has_parent) && self.caps.has_card(who, card)
    }

    /// The next sequence number for a key.
    pub fn take_seq(&mut self) -> Result<u32, PolicyError> {
        self.state.seq = self
            .state
            .seq
            .checked_add(1)
            .ok_or_else(|| out_of_range("key sequence"))?;
        Ok(self.state.seq)
    }

    /// Ask for a charge; the refusal is returned as is, for the caller to decide.
    pub fn charge(
        &mut self,
        payer: Role,
        card: &str,
        amount: Decimal,
        purpose: Purpose,
        key: &str,
    ) -> Result<(), Refusal> {
        if payer == Role::Parent && !self.has_parent {
            return Err(Refusal::ForeignAccount);
        }
        self.caps.request_charge(payer, card, amount, purpose, key)
    }

    /// Ask for a timer event on the subject.
    pub fn wake_at(&mut self, at: Timestamp, tag: u64) -> Result<(), PolicyError> {
        self.caps.wake_at(Role::Subject, at, tag).map_err(refused)
    }

    /// Send a notice to the subject.
    pub fn notify(&mut self, kind: Notice, message: &str) -> Result<(), PolicyError> {
        self.caps
            .notify(Role::Subject, kind, message)
            .map_err(refused)
    }

    /// Send a notice to the parent agency, if it was handed over.
    pub fn notify_parent(&mut self, kind: Notice, message: &str) -> Result<(), PolicyError> {
        if !self.has_parent {
            return Ok(());
        }
        self.caps
            .notify(Role::Parent, kind, message)
            .map_err(refused)
    }

    /// Pause the subject (R5), noticing it once.
    pub fn pause(&mut self, reason: &str) -> Result<(), PolicyError> {
        if self.subject.status == Status::Paused {
            return Ok(());
        }
        self.set_status(Status::Paused)?;
        let message = alloc::format!("account paused: {reason}");
        self.notify(Notice::AccountPaused, &message)
    }

    /// A payment of the subject succeeded (R6): the suspension ends and a paused
    /// account resumes.
    pub fn payment_succeeded(&mut self, what: &str) -> Result<(), PolicyError> {
        self.state.suspended = false;
        if self.subject.status != Status::Paused {
            return Ok(());
        }
        self.set_status(Status::Active)?;
        let message = alloc::format!("account resumed: {what} succeeded");
        self.notify(Notice::AccountResumed, &message)
    }

    fn set_status(&mut self, status: Status) -> Result<(), PolicyError> {
        self.caps
            .set_status(Role::Subject, status)
            .map_err(refused)?;
        self.subject.status = status;
        Ok(())
    }

    /// The subject's id, for keys and messages.
    pub fn subject_id(&self) -> String {
        self.subject.id.clone()
    }
}
