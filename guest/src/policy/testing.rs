//! An in-memory host for the rule tests: it records every charge, timer, notice
//! and status change, credits succeeded charges like the real host (H2), and
//! checks charge requests like the real host (H3), so tests read like the spec.

use alloc::{
    collections::BTreeSet,
    string::{String, ToString},
    vec::Vec,
};
use core::cell::Cell;
use core::str::FromStr;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;

use super::state::State;
use crate::caps::{Capabilities, Role};
use crate::model::{
    AccountKind, AllocationSettings, AutoRechargeSettings, ChargeOutcome, Event, Mode, Notice,
    PaymentOutcome, PolicyError, Purpose, Rates, Refusal, Snapshot, Status, Timestamp, Usage,
};
use crate::money::{allocation_price, is_whole_cents};

/// A decimal from text.
pub fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// Milliseconds of a UTC time written `2027-01-31 10:30`.
pub fn at(text: &str) -> Timestamp {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

/// One minute in milliseconds.
pub const MINUTE: Timestamp = 60_000;

/// Enabled fixed-mode settings on `card`.
pub fn fixed(threshold: &str, amount: &str, card: &str) -> AutoRechargeSettings {
    AutoRechargeSettings {
        enabled: true,
        threshold: d(threshold),
        amount: d(amount),
        card: card.into(),
        mode: Mode::Fixed,
        monthly_limit: None,
    }
}

/// An account of the fake host.
#[derive(Debug, Clone)]
pub struct Account {
    pub snapshot: Snapshot,
    pub cards: Vec<String>,
    pub state: Vec<u8>,
    pub watermark: Option<Decimal>,
}

impl Account {
    fn new(id: &str, kind: AccountKind, parent: Option<&str>) -> Account {
        Account {
            snapshot: Snapshot {
                id: id.into(),
                kind,
                parent: parent.map(String::from),
                balance: Decimal::ZERO,
                included_basic_seconds: 0,
                included_premium_seconds: 0,
                basic_seconds: 0,
                premium_seconds: 0,
                status: Status::Active,
            },
            cards: Vec::new(),
            state: Vec::new(),
            watermark: None,
        }
    }
}

/// A charge the policy requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub at: Timestamp,
    pub payer: Role,
    pub card: String,
    pub amount: Decimal,
    pub purpose: Purpose,
    pub key: String,
    pub outcome: Option<ChargeOutcome>,
}

/// A timer the policy asked for and that has not fired yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub at: Timestamp,
    pub tag: u64,
}

/// A notice the policy sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub at: Timestamp,
    pub to: Role,
    pub kind: Notice,
    pub message: String,
}

/// The fake host: a subject, maybe its parent, a clock and everything recorded.
#[derive(Debug, Clone)]
pub struct FakeHost {
    pub subject: Account,
    pub parent: Option<Account>,
    pub now: Timestamp,
    pub rates: Rates,
    pub charges: Vec<Charge>,
    pub timers: Vec<Timer>,
    pub notices: Vec<Sent>,
    pub statuses: Vec<Status>,
    pub used_keys: BTreeSet<String>,
    pub set_state_calls: usize,
    /// How many capability calls the policy made that a wasm policy would make
    /// back to the host, for the hot-path test.
    pub calls: Cell<usize>,
    /// A usage event is being handled: the subject's balance and watermark came
    /// with it, as the wasm contract hands them over.
    in_usage: bool,
    /// Refuse every charge request with this.
    pub refuse_charges: Option<Refusal>,
    /// The host's per-charge cap (H3).
    pub charge_cap: Decimal,
    /// The host's cap on auto-recharges per account per UTC day (H3), if any.
    pub daily_auto_recharges: Option<usize>,
}

impl FakeHost {
    fn with(subject: Account, parent: Option<Account>) -> FakeHost {
        FakeHost {
            subject,
            parent,
            now: at("2027-01-15 12:00"),
            rates: Rates {
                basic: d("0.09"),
                premium: d("0.16"),
            },
            charges: Vec::new(),
            timers: Vec::new(),
            notices: Vec::new(),
            statuses: Vec::new(),
            used_keys: BTreeSet::new(),
            set_state_calls: 0,
            calls: Cell::new(0),
            in_usage: false,
            refuse_charges: None,
            charge_cap: d("1000"),
            daily_auto_recharges: None,
        }
    }

    /// A user account `id` with card `card`.
    pub fn user(id: &str) -> FakeHost {
        let mut user = Account::new(id, AccountKind::User, None);
        user.cards.push("card".into());
        FakeHost::with(user, None)
    }

    /// Sub-account `id` of agency `parent`; the agency has card `agency-card`.
    pub fn sub_account(id: &str, parent: &str) -> FakeHost {
        let mut agency = Account::new(parent, AccountKind::Agency, None);
        agency.cards.push("agency-card".into());
        let mut sub = Account::new(id, AccountKind::SubAccount, Some(parent));
        sub.cards.push("card".into());
        FakeHost::with(sub, Some(agency))
    }

    /// An agency account `id` with cards `card` and `agency-card`.
    pub fn agency(id: &str) -> FakeHost {
        let mut agency = Account::new(id, AccountKind::Agency, None);
        agency.cards.push("card".into());
        agency.cards.push("agency-card".into());
        FakeHost::with(agency, None)
    }

    pub fn id(&self) -> String {
        self.subject.snapshot.id.clone()
    }

    pub fn balance(&self) -> Decimal {
        self.subject.snapshot.balance
    }

    pub fn set_balance(&mut self, balance: &str) {
        self.subject.snapshot.balance = d(balance);
    }

    pub fn status(&self) -> Status {
        self.subject.snapshot.status
    }

    /// The policy's state for the subject, decoded.
    pub fn state(&self) -> State {
        State::decode(&self.subject.state)
    }

    pub fn handle(&mut self, event: Event) -> Result<(), PolicyError> {
        let has_parent = self.parent.is_some();
        super::handle(&event, has_parent, self)
    }

    pub fn query(
        &self,
        actor: &str,
        what: crate::model::QueryKind,
    ) -> Result<crate::model::Answer, PolicyError> {
        super::query(actor, what, self.parent.is_some(), self)
    }

    /// A call whose wallet part cost `cost`.
    pub fn usage(&mut self, cost: &str) -> Result<(), PolicyError> {
        let cost = d(cost);
        self.subject.snapshot.balance -= cost;
        self.in_usage = true;
        let result = self.handle(Event::Usage(Usage {
            seconds: 60,
            minute_type: crate::model::MinuteType::Basic,
            wallet_cost: cost,
        }));
        self.in_usage = false;
        result
    }

    pub fn save_auto(
        &mut self,
        actor: &str,
        settings: AutoRechargeSettings,
    ) -> Result<(), PolicyError> {
        self.handle(Event::SaveAutoRecharge {
            actor: actor.into(),
            settings,
        })
    }

    pub fn save_allocation(
        &mut self,
        actor: &str,
        basic: i64,
        premium: i64,
        card: &str,
    ) -> Result<(), PolicyError> {
        self.handle(Event::SaveAllocation {
            actor: actor.into(),
            settings: AllocationSettings {
                basic_minutes: basic,
                premium_minutes: premium,
                card: card.into(),
            },
        })
    }

    pub fn top_up(&mut self, actor: &str, card: &str, amount: &str) -> Result<(), PolicyError> {
        self.handle(Event::TopUp {
            actor: actor.into(),
            card: card.into(),
            amount: d(amount),
        })
    }

    /// The charges still waiting for their outcome.
    pub fn pending(&self) -> Vec<&Charge> {
        self.charges
            .iter()
            .filter(|charge| charge.outcome.is_none())
            .collect()
    }

    /// End the charge `index` like the gateway would: a success is credited by
    /// purpose first, then the policy hears of it.
    pub fn settle(&mut self, index: usize, outcome: ChargeOutcome) -> Result<(), PolicyError> {
        let charge = &mut self.charges[index];
        assert_eq!(charge.outcome, None, "charge {} settled twice", charge.key);
        charge.outcome = Some(outcome);
        let charge = charge.clone();
        if outcome == ChargeOutcome::Succeeded {
            match &charge.purpose {
                Purpose::AutoRecharge | Purpose::TopUp => {
                    self.subject.snapshot.balance += charge.amount
                }
                Purpose::Allocation(bought) => {
                    self.subject.snapshot.basic_seconds += bought.basic_minutes * 60;
                    self.subject.snapshot.premium_seconds += bought.premium_minutes * 60;
                }
            }
        }
        let payer = match charge.payer {
            Role::Subject => self.id(),
            Role::Parent => self.parent.as_ref().unwrap().snapshot.id.clone(),
        };
        self.handle(Event::PaymentOutcome(PaymentOutcome {
            key: charge.key,
            outcome,
            amount: charge.amount,
            purpose: charge.purpose,
            payer,
            reference: None,
            reason: None,
        }))
    }

    /// End the last requested charge.
    pub fn settle_last(&mut self, outcome: ChargeOutcome) -> Result<(), PolicyError> {
        self.settle(self.charges.len() - 1, outcome)
    }

    /// Move the clock to `until`, firing every timer due by then in time order,
    /// each at its own due time (past timers at once).
    pub fn advance_to(&mut self, until: Timestamp) -> Result<(), PolicyError> {
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, timer)| timer.at <= until)
                .min_by_key(|(index, timer)| (timer.at, *index))
                .map(|(index, _)| index);
            let Some(index) = due else { break };
            let timer = self.timers.remove(index);
            self.now = self.now.max(timer.at);
            self.handle(Event::Timer(timer.tag))?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    pub fn advance(&mut self, by: Timestamp) -> Result<(), PolicyError> {
        self.advance_to(self.now + by)
    }

    /// The kinds of the notices sent to `to`, in order.
    pub fn notice_kinds(&self, to: Role) -> Vec<Notice> {
        self.notices
            .iter()
            .filter(|sent| sent.to == to)
            .map(|sent| sent.kind)
            .collect()
    }

    fn account(&self, who: Role) -> Result<&Account, Refusal> {
        match who {
            Role::Subject => Ok(&self.subject),
            Role::Parent => self.parent.as_ref().ok_or(Refusal::ForeignAccount),
        }
    }

    fn account_mut(&mut self, who: Role) -> Result<&mut Account, Refusal> {
        match who {
            Role::Subject => Ok(&mut self.subject),
            Role::Parent => self.parent.as_mut().ok_or(Refusal::ForeignAccount),
        }
    }

    fn count(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

impl Capabilities for FakeHost {
    fn snapshot(&self, who: Role) -> Result<Snapshot, Refusal> {
        self.count();
        self.account(who).map(|account| account.snapshot.clone())
    }

    fn balance(&self, who: Role) -> Result<Decimal, Refusal> {
        if !(self.in_usage && who == Role::Subject) {
            self.count();
        }
        self.account(who).map(|account| account.snapshot.balance)
    }

    fn watermark(&self, who: Role) -> Option<Decimal> {
        if !(self.in_usage && who == Role::Subject) {
            self.count();
        }
        self.account(who).ok().and_then(|account| account.watermark)
    }

    fn set_watermark(&mut self, who: Role, watermark: Option<Decimal>) -> Result<(), Refusal> {
        self.count();
        self.account_mut(who)?.watermark = watermark;
        Ok(())
    }

    fn has_card(&self, who: Role, card: &str) -> bool {
        self.count();
        self.account(who)
            .is_ok_and(|account| account.cards.iter().any(|saved| saved == card))
    }

    fn state(&self, who: Role) -> Vec<u8> {
        self.count();
        self.account(who)
            .map(|account| account.state.clone())
            .unwrap_or_default()
    }

    fn set_state(&mut self, who: Role, state: Vec<u8>) -> Result<(), Refusal> {
        self.count();
        self.set_state_calls += 1;
        self.account_mut(who)?.state = state;
        Ok(())
    }

    fn set_status(&mut self, who: Role, status: Status) -> Result<(), Refusal> {
        self.count();
        self.account_mut(who)?.snapshot.status = status;
        self.statuses.push(status);
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.count();
        self.now
    }

    fn rates(&self) -> Rates {
        self.count();
        self.rates
    }

    fn request_charge(
        &mut self,
        payer: Role,
        card: &str,
        amount: Decimal,
        purpose: Purpose,
        key: &str,
    ) -> Result<(), Refusal> {
        self.count();
        if let Some(refusal) = &self.refuse_charges {
            return Err(refusal.clone());
        }
        if !self.account(payer)?.cards.iter().any(|saved| saved == card) {
            return Err(Refusal::UnknownCard);
        }
        if amount <= Decimal::ZERO || !is_whole_cents(amount) || amount > self.charge_cap {
            return Err(Refusal::BadAmount(amount.to_string()));
        }
        if let Purpose::Allocation(bought) = &purpose
            && allocation_price(bought.basic_minutes, bought.premium_minutes, &self.rates)
                != Some(amount)
        {
            return Err(Refusal::PriceMismatch);
        }
        if key.is_empty() {
            return Err(Refusal::Invalid("empty key".into()));
        }
        let day = self.now.div_euclid(24 * 60 * MINUTE);
        let today = self
            .charges
            .iter()
            .filter(|charge| {
                charge.purpose == Purpose::AutoRecharge
                    && charge.at.div_euclid(24 * 60 * MINUTE) == day
            })
            .count();
        if purpose == Purpose::AutoRecharge
            && self.daily_auto_recharges.is_some_and(|cap| today >= cap)
        {
            return Err(Refusal::TooManyCharges);
        }
        if !self.used_keys.insert(key.into()) {
            return Err(Refusal::DuplicateKey);
        }
        self.charges.push(Charge {
            at: self.now,
            payer,
            card: card.into(),
            amount,
            purpose,
            key: key.into(),
            outcome: None,
        });
        Ok(())
    }

    fn wake_at(&mut self, who: Role, at: Timestamp, tag: u64) -> Result<(), Refusal> {
        self.count();
        assert_eq!(
            who,
            Role::Subject,
            "the default policy wakes only its subject"
        );
        self.timers.push(Timer { at, tag });
        Ok(())
    }

    fn notify(&mut self, who: Role, kind: Notice, message: &str) -> Result<(), Refusal> {
        self.count();
        self.account(who)?;
        self.notices.push(Sent {
            at: self.now,
            to: who,
            kind,
            message: message.into(),
        });
        Ok(())
    }
}
