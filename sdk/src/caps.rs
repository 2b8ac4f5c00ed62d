//! The capabilities the host lends the policy core for one event.

use alloc::{string::String, vec::Vec};
use rust_decimal::Decimal;

use crate::model::{Notice, Purpose, Rates, Refusal, Snapshot, Status, Timestamp};

/// Which of the accounts handed to the event a call is about.
///
/// The core can name no other account: this is guardrail H1 seen from inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The account the event is about.
    Subject,
    /// The subject's parent agency (sub-accounts only).
    Parent,
}

/// What the host supplies to the policy for one event: balance, payment, clock and
/// notify. The wasm bindings and the native host both implement it.
pub trait Capabilities {
    /// The account's id, kind, balance, minute buckets and status.
    fn snapshot(&self, who: Role) -> Result<Snapshot, Refusal>;
    /// The account's wallet balance. The policy reads it on every usage event, so
    /// an implementation may answer it without building a whole [`Snapshot`].
    fn balance(&self, who: Role) -> Result<Decimal, Refusal> {
        self.snapshot(who).map(|snapshot| snapshot.balance)
    }
    /// The account's id. The policy puts it in every charge's key, so an
    /// implementation may answer it without building a whole [`Snapshot`].
    fn id(&self, who: Role) -> Result<String, Refusal> {
        self.snapshot(who).map(|snapshot| snapshot.id)
    }
    /// Whether the account is serving. The policy reads it after every payment,
    /// so an implementation may answer it without building a whole [`Snapshot`].
    fn status(&self, who: Role) -> Result<Status, Refusal> {
        self.snapshot(who).map(|snapshot| snapshot.status)
    }
    /// Whether the account has a saved card with this id.
    fn has_card(&self, who: Role, card: &str) -> bool;
    /// The policy's own state for the account (empty when none was saved).
    fn state(&self, who: Role) -> Vec<u8>;
    /// Replace the policy's own state for the account.
    fn set_state(&mut self, who: Role, state: Vec<u8>) -> Result<(), Refusal>;
    /// The balance the policy keeps beside its state for the usage hot path (see
    /// [`Capabilities::set_watermark`]), if it set one. A wasm host hands the
    /// subject's with every usage event, so reading it there costs nothing.
    fn watermark(&self, who: Role) -> Option<Decimal>;
    /// Keep `watermark` for the account, committed with the event like the state:
    /// usage events bring it back, so a policy can decide on the balance alone.
    fn set_watermark(&mut self, who: Role, watermark: Option<Decimal>) -> Result<(), Refusal>;
    /// Pause or resume the account.
    fn set_status(&mut self, who: Role, status: Status) -> Result<(), Refusal>;
    /// The current time.
    fn now(&self) -> Timestamp;
    /// The rates in force now.
    fn rates(&self) -> Rates;
    /// Ask for one charge, executed by the host after the event commits.
    fn request_charge(
        &mut self,
        payer: Role,
        card: &str,
        amount: Decimal,
        purpose: Purpose,
        key: &str,
    ) -> Result<(), Refusal>;
    /// Ask for a `Timer(tag)` event for the account at `at`.
    fn wake_at(&mut self, who: Role, at: Timestamp, tag: u64) -> Result<(), Refusal>;
    /// Send a notice to the account.
    fn notify(&mut self, who: Role, kind: Notice, message: &str) -> Result<(), Refusal>;
}

/// A message for a refused capability call, kept for error reports.
pub fn describe_refusal(refusal: &Refusal) -> String {
    use alloc::format;
    match refusal {
        Refusal::ForeignAccount => "account not handed to this event".into(),
        Refusal::UnknownCard => "card is not a saved card of the payer".into(),
        Refusal::BadAmount(why) => format!("bad amount: {why}"),
        Refusal::PriceMismatch => "allocation price differs from the amount".into(),
        Refusal::TooManyCharges => "too many charges".into(),
        Refusal::DuplicateKey => "idempotency key already used".into(),
        Refusal::Invalid(why) => format!("invalid request: {why}"),
    }
}
