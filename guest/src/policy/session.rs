//! One event's working set: the capabilities, what was read of the subject
//! (each piece on first need: the snapshot is the dearest read), and the decoded
//! state, written back once at the end if it changed.

use alloc::{borrow::Cow, vec::Vec};
use rust_decimal::Decimal;

use super::state::{State, recharge_gate};
use super::text::{Message, concat};
use crate::caps::{Capabilities, Role, describe_refusal};
use crate::model::{Notice, PolicyError, Purpose, Rates, Refusal, Snapshot, Status, Timestamp};

/// A capability refusal the policy cannot work around.
pub(super) fn refused(refusal: Refusal) -> PolicyError {
    PolicyError::Refused(describe_refusal(&refusal))
}

/// Why the host refused a charge, for a notice that says no card was charged.
pub(super) fn refusal_reason(refusal: &Refusal) -> Cow<'static, str> {
    match refusal {
        Refusal::BadAmount(_) => Cow::Borrowed("as over its per-charge cap"),
        Refusal::TooManyCharges => Cow::Borrowed("as over its count of charges"),
        other => Cow::Owned(concat(&["(", &describe_refusal(other), ")"])),
    }
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
    /// The subject's wallet balance as the event began, once read.
    balance: Option<Decimal>,
    /// The subject's status, kept up to date, once read.
    status: Option<Status>,
    /// The subject as the event began (its status kept up to date), once read.
    subject: Option<Snapshot>,
    /// The policy's state for the subject.
    pub state: State,
    loaded: Vec<u8>,
}

impl<'c, C: Capabilities> Session<'c, C> {
    /// Run `rules` over the subject's state, then write the state back if it
    /// changed; on an error nothing is written. The subject itself is read when
    /// a rule first needs it.
    pub fn run(
        caps: &'c mut C,
        has_parent: bool,
        rules: impl FnOnce(&mut Self) -> Result<(), PolicyError>,
    ) -> Result<(), PolicyError> {
        let loaded = caps.state(Role::Subject);
        Session::run_with(caps, has_parent, loaded, None, rules)
    }

    /// [`Session::run`] for a usage event, which has read the state bytes and
    /// the balance already (the snapshot is the dearest read of the usage hot
    /// path, and the trigger needs only the balance and the id).
    pub fn run_usage(
        caps: &'c mut C,
        has_parent: bool,
        loaded: Vec<u8>,
        balance: Decimal,
        rules: impl FnOnce(&mut Self) -> Result<(), PolicyError>,
    ) -> Result<(), PolicyError> {
        Session::run_with(caps, has_parent, loaded, Some(balance), rules)
    }

    // The session stays where it is built, its state decoded in place: it is a
    // few hundred bytes, and a wasm policy pays a unit of fuel for every byte it
    // moves.
    fn run_with(
        caps: &'c mut C,
        has_parent: bool,
        loaded: Vec<u8>,
        balance: Option<Decimal>,
        rules: impl FnOnce(&mut Self) -> Result<(), PolicyError>,
    ) -> Result<(), PolicyError> {
        let mut session = Session {
            balance,
            status: None,
            subject: None,
            state: State::default(),
            caps,
            has_parent,
            loaded,
        };
        session.state.load(&session.loaded);
        rules(&mut session)?;
        session.commit()
    }

    /// The subject's wallet balance as the event began: an event changes no
    /// balance (charges run after it commits).
    pub fn balance(&mut self) -> Result<Decimal, PolicyError> {
        if let Some(balance) = self.balance {
            return Ok(balance);
        }
        let balance = match &self.subject {
            Some(subject) => subject.balance,
            None => self.caps.balance(Role::Subject).map_err(refused)?,
        };
        self.balance = Some(balance);
        Ok(balance)
    }

    /// The subject's status, kept up to date.
    fn status(&mut self) -> Result<Status, PolicyError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = match &self.subject {
            Some(subject) => subject.status,
            None => self.caps.status(Role::Subject).map_err(refused)?,
        };
        self.status = Some(status);
        Ok(status)
    }

    /// The subject as the event began, its status kept up to date.
    pub fn subject(&mut self) -> Result<&Snapshot, PolicyError> {
        match &mut self.subject {
            Some(subject) => Ok(subject),
            unread @ None => {
                let mut subject = self.caps.snapshot(Role::Subject).map_err(refused)?;
                if let Some(status) = self.status {
                    subject.status = status;
                }
                Ok(unread.insert(subject))
            }
        }
    }

    /// The subject's id, for keys and messages: borrowed from the snapshot once
    /// read, else asked for alone.
    pub fn subject_id(&self) -> Result<Cow<'_, str>, PolicyError> {
        match &self.subject {
            Some(subject) => Ok(Cow::Borrowed(&subject.id)),
            None => self.caps.id(Role::Subject).map(Cow::Owned).map_err(refused),
        }
    }

    /// Write the state back if the event changed it, and the watermark with it
    /// when the state's usage gate moved: the watermark is always the gate of
    /// the state the host holds.
    fn commit(&mut self) -> Result<(), PolicyError> {
        // A fresh state that stayed fresh is not worth writing.
        if self.loaded.is_empty() && self.state == State::default() {
            return Ok(());
        }
        let bytes = self.state.encode();
        if bytes == self.loaded {
            return Ok(());
        }
        let gate = recharge_gate(&bytes);
        if gate != recharge_gate(&self.loaded) {
            self.caps
                .set_watermark(Role::Subject, gate)
                .map_err(refused)?;
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

    /// Whether the host would refuse a charge of `amount` as over its per-charge
    /// cap, asked without making one: the probe carries an empty key, which the
    /// contract makes `invalid`, and the host judges the amount before the key,
    /// so `bad-amount` answers the question and nothing is recorded. Refused
    /// requests do not count towards the host's caps on charges.
    pub fn over_cap(&mut self, payer: Role, card: &str, amount: Decimal, purpose: Purpose) -> bool {
        matches!(
            self.charge(payer, card, amount, purpose, ""),
            Err(Refusal::BadAmount(_))
        )
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
        if self.status()? == Status::Paused {
            return Ok(());
        }
        self.set_status(Status::Paused)?;
        let message = concat(&["account paused: ", reason]);
        self.notify(Notice::AccountPaused, &message)
    }

    /// A payment of the subject succeeded (R6): the suspension ends, so does a
    /// hold after a refusal (the balance moved), and a paused account resumes. `what` writes what the payment was, should a notice
    /// need it.
    pub fn payment_succeeded(
        &mut self,
        what: impl FnOnce(Message) -> Message,
    ) -> Result<(), PolicyError> {
        self.state.suspended = false;
        self.state.refused = false;
        if self.status()? != Status::Paused {
            return Ok(());
        }
        self.set_status(Status::Active)?;
        let message = what(Message::new().text("account resumed: "))
            .text(" succeeded")
            .finish();
        self.notify(Notice::AccountResumed, &message)
    }

    fn set_status(&mut self, status: Status) -> Result<(), PolicyError> {
        self.caps
            .set_status(Role::Subject, status)
            .map_err(refused)?;
        self.status = Some(status);
        if let Some(subject) = &mut self.subject {
            subject.status = status;
        }
        Ok(())
    }
}
