//! Host invariants H1–H4 under a policy that makes random capability calls.
//!
//! A family of tenant accounts runs the corpus's `chaos` policy (charges with
//! random payers, cards, amounts, purposes, beneficiaries and keys; state,
//! status, wake-ups and notices; then success, an error or a trap), beside a
//! bystander family on the default policy. Random sequences of commands run
//! against both; every policy call and every committed batch is logged, and:
//!
//! - H1: a committed event touches only the accounts handed to it;
//! - H2: every balance and minute bucket equals a model that credits only
//!   succeeded charges (by purpose) and debits only rated usage;
//! - H3: every committed charge is positive, whole cents, at most 1,000.00, on a
//!   saved card of the payer, at most 4 per event, an allocation at its price,
//!   and at most 25 auto-recharges per payer per day;
//! - H4: a committed event is exactly what its policy call asked for (with the
//!   call it reacts to, for usage), a failed one commits nothing of its own (the
//!   host still records the call and its fault notice), and every other batch is
//!   one of the host's own kinds (rating, timer, settlement), moving money and
//!   minutes only;
//! - and the bystanders end exactly as they do on a platform of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use recharge_host::model::{
    AccountKind, AccountView, Answer, ChargeOutcome, Event, MinuteType, Purpose, QueryKind,
};
use recharge_host::{
    Account, Batch, ChargeRecord, ChargeRequest, EventContext, HostError, MemoryStore, Policy,
    PolicyFault, StoreError, Verdict, rate_call, utc_day,
};
use rust_decimal::{Decimal, RoundingStrategy};

use recharge_host::{HookedStore, StoreHooks};

use super::*;

/// What the host did, in order: policy calls and committed batches.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A policy handled an event.
    Decided {
        /// The accounts handed to it, subject first.
        handed: Vec<AccountId>,
        /// Whether it succeeded (else it returned an error or faulted).
        succeeded: bool,
        /// Whether it faulted.
        faulted: bool,
        /// What it asked for, as the batch the host would commit.
        asked: Batch,
    },
    /// The store committed a batch.
    Committed(Batch),
}

/// The log of a platform's decisions and commits.
pub type Log = Arc<Mutex<Vec<Entry>>>;

/// Hooks that log every committed batch, and fail commits once more than a
/// budget of timers have fired (so a clock that cannot get past an instant is
/// an error, not a hung test).
pub struct Recording {
    log: Log,
    fired: AtomicUsize,
    timer_budget: usize,
}

impl StoreHooks for Recording {
    fn before_commit(&self, _batch: &Batch) -> Result<(), StoreError> {
        if self.fired.load(Ordering::SeqCst) > self.timer_budget {
            return Err(StoreError::Backend(format!(
                "over {} timers fired",
                self.timer_budget
            )));
        }
        Ok(())
    }

    fn after_commit(&self, batch: &Batch) -> Result<(), StoreError> {
        self.fired.fetch_add(batch.fired.len(), Ordering::SeqCst);
        self.log
            .lock()
            .unwrap()
            .push(Entry::Committed(batch.clone()));
        Ok(())
    }
}

/// A memory store logging to `log`, failing after `timer_budget` timers.
pub fn recording_store(log: Log, timer_budget: usize) -> HookedStore<Recording> {
    let hooks = Recording {
        log,
        fired: AtomicUsize::new(0),
        timer_budget,
    };
    HookedStore::new(Arc::new(MemoryStore::new()), hooks)
}

/// A policy that logs each decision of the policy it wraps.
struct Spy {
    inner: Arc<dyn Policy>,
    log: Log,
}

impl Policy for Spy {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        let verdict = self.inner.handle(event, ctx);
        let handed = [
            recharge_policy_sdk::Role::Subject,
            recharge_policy_sdk::Role::Parent,
        ]
        .into_iter()
        .filter_map(|role| ctx.account(role).map(|account| account.id.clone()))
        .collect();
        self.log.lock().unwrap().push(Entry::Decided {
            handed,
            succeeded: matches!(verdict, Ok(Ok(()))),
            faulted: verdict.is_err(),
            asked: ctx.as_batch(),
        });
        verdict
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        self.inner.query(actor, what, ctx)
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        self.inner.describe(ctx)
    }
}

/// The accounts of the test: a chaos family and a calm one.
const ACCOUNTS: [(&str, AccountKind, Option<&str>); 7] = [
    ("chaos-user", AccountKind::User, None),
    ("chaos-agency", AccountKind::Agency, None),
    ("chaos-sub-1", AccountKind::SubAccount, Some("chaos-agency")),
    ("chaos-sub-2", AccountKind::SubAccount, Some("chaos-agency")),
    ("calm", AccountKind::User, None),
    ("calm-agency", AccountKind::Agency, None),
    ("calm-sub", AccountKind::SubAccount, Some("calm-agency")),
];

fn is_calm(name: &str) -> bool {
    name.starts_with("calm")
}

/// One command.
#[derive(Debug, Clone)]
enum Op {
    Usage {
        who: usize,
        seconds: i64,
        premium: bool,
    },
    TopUp {
        who: usize,
        cents: i64,
    },
    AutoRecharge {
        who: usize,
        threshold: i64,
        amount: i64,
        card: bool,
    },
    Allocate {
        who: usize,
        basic: i64,
        premium: i64,
    },
    CardUpdated {
        who: usize,
    },
    Advance {
        minutes: i64,
    },
}

impl Op {
    fn account(&self) -> Option<&'static str> {
        match self {
            Op::Usage { who, .. }
            | Op::TopUp { who, .. }
            | Op::AutoRecharge { who, .. }
            | Op::Allocate { who, .. }
            | Op::CardUpdated { who } => Some(ACCOUNTS[*who].0),
            Op::Advance { .. } => None,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..ACCOUNTS.len();
    prop_oneof![
        4 => (who.clone(), 1i64..4_000, any::<bool>())
            .prop_map(|(who, seconds, premium)| Op::Usage { who, seconds, premium }),
        1 => (who.clone(), 1i64..20_000).prop_map(|(who, cents)| Op::TopUp { who, cents }),
        1 => (who.clone(), 0i64..3_000, 1i64..5_000, any::<bool>()).prop_map(
            |(who, threshold, amount, card)| Op::AutoRecharge { who, threshold, amount, card }
        ),
        1 => (who.clone(), 0i64..200, 0i64..100)
            .prop_map(|(who, basic, premium)| Op::Allocate { who, basic, premium }),
        1 => who.prop_map(|who| Op::CardUpdated { who }),
        2 => (1i64..4_000).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

/// The chaos policy, loaded once.
fn chaos() -> Arc<dyn Policy> {
    static CHAOS: OnceLock<Arc<dyn Policy>> = OnceLock::new();
    Arc::clone(CHAOS.get_or_init(|| {
        let (engine, _) = shared();
        Arc::new(engine.load(super::hostile::rogue()).expect("rogue loads"))
    }))
}

/// A platform of the given accounts, its decisions logged; the chaos family
/// runs the chaos policy (spied), everyone else the default one (spied too).
struct World {
    platform: Platform,
    log: Log,
}

impl World {
    fn new(names: &[&str]) -> World {
        let (engine, default) = shared();
        let log: Log = Arc::default();
        let gateway = Arc::new(SimulatedGateway::new());
        let platform = Platform::builder()
            .engine(engine.clone())
            .default_policy(Arc::new(Spy {
                inner: Arc::clone(default),
                log: Arc::clone(&log),
            }))
            .gateway(gateway.clone())
            .store(Arc::new(recording_store(Arc::clone(&log), 100_000)))
            .simulated_clock(JAN_1)
            .build()
            .unwrap();
        for (name, kind, parent) in ACCOUNTS {
            if !names.contains(&name) {
                continue;
            }
            let account = id(name);
            platform
                .open_account(account.clone(), kind, parent.map(id))
                .unwrap();
            platform.add_card(&account, "visa").unwrap();
            if kind != AccountKind::SubAccount {
                platform.add_card(&account, "amex").unwrap();
                let behavior = if kind == AccountKind::User {
                    "fail:2"
                } else {
                    "decline"
                };
                gateway
                    .set_behavior(&account, "amex", behavior.parse().unwrap())
                    .unwrap();
            }
        }
        let spied = Arc::new(Spy {
            inner: chaos(),
            log: Arc::clone(&log),
        });
        for owner in ["chaos-user", "chaos-agency"] {
            if names.contains(&owner) {
                platform
                    .set_policy_object(&id(owner), spied.clone())
                    .unwrap();
            }
        }
        log.lock().unwrap().clear();
        World { platform, log }
    }

    /// Run the `index`th command of a sequence (the index names its call).
    fn run(&self, index: usize, op: &Op) -> Result<(), HostError> {
        let platform = &self.platform;
        let result = match op {
            Op::Usage {
                who,
                seconds,
                premium,
            } => {
                let kind = if *premium {
                    MinuteType::Premium
                } else {
                    MinuteType::Basic
                };
                let call = format!("call-{index}");
                platform
                    .record_usage(&id(ACCOUNTS[*who].0), &call, *seconds, kind)
                    .map(drop)
            }
            Op::TopUp { who, cents } => {
                let account = id(ACCOUNTS[*who].0);
                platform
                    .top_up(&account, &account, "visa", Decimal::new(*cents, 2))
                    .map(drop)
            }
            Op::AutoRecharge {
                who,
                threshold,
                amount,
                card,
            } => {
                let account = id(ACCOUNTS[*who].0);
                let settings = recharge_host::model::AutoRechargeSettings {
                    threshold: Decimal::new(*threshold, 2),
                    amount: Decimal::new(*amount, 2),
                    card: if *card { "amex" } else { "visa" }.into(),
                    ..fixed("0", "1")
                };
                platform
                    .save_auto_recharge(&account, &account, settings)
                    .map(drop)
            }
            Op::Allocate {
                who,
                basic,
                premium,
            } => {
                let (name, _, parent) = ACCOUNTS[*who];
                let actor = id(parent.unwrap_or(name));
                let settings = recharge_host::model::AllocationSettings {
                    basic_minutes: *basic,
                    premium_minutes: *premium,
                    card: "visa".into(),
                };
                platform
                    .save_allocation(&actor, &id(name), settings)
                    .map(drop)
            }
            Op::CardUpdated { who } => platform
                .update_card(&id(ACCOUNTS[*who].0), "visa")
                .map(drop),
            Op::Advance { minutes } => platform
                .advance_to(platform.now() + minutes * MINUTE)
                .map(drop),
        };
        match result {
            Ok(()) | Err(HostError::Rejected(_) | HostError::Fault(_) | HostError::Invalid(_)) => {
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    fn accounts(&self) -> BTreeMap<AccountId, Account> {
        let platform = &self.platform;
        platform
            .account_ids()
            .unwrap()
            .into_iter()
            .map(|id| {
                let record = platform.account(&id).unwrap();
                (id, record)
            })
            .collect()
    }
}

/// Everything of an account record but its money, minutes and version: what only
/// a policy's decision may change.
type Decided = (
    AccountKind,
    Option<AccountId>,
    recharge_host::model::Status,
    Vec<String>,
    Vec<(String, Vec<u8>)>,
    Vec<(String, Decimal)>,
);

fn money_aside(account: &Account) -> Decided {
    (
        account.kind,
        account.parent.clone(),
        account.status,
        account.cards.clone(),
        account
            .policy_states()
            .map(|(policy, state)| (policy.to_owned(), state.to_vec()))
            .collect(),
        account
            .watermarks()
            .map(|(policy, watermark)| (policy.to_owned(), watermark))
            .collect(),
    )
}

fn price(basic: i64, premium: i64) -> Option<Decimal> {
    let rates = recharge_host::default_rates();
    let total = Decimal::from(basic).checked_mul(rates.basic)?
        + Decimal::from(premium).checked_mul(rates.premium)?;
    Some(total.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
}

/// H3 for one committed charge request.
fn check_charge(charge: &ChargeRequest, accounts: &BTreeMap<AccountId, Account>) {
    let amount = charge.amount;
    assert!(amount > Decimal::ZERO, "not positive: {charge:?}");
    assert_eq!(amount, amount.round_dp(2), "not whole cents: {charge:?}");
    assert!(amount <= Decimal::from(1_000), "over the cap: {charge:?}");
    let payer = &accounts[&charge.payer];
    assert!(
        payer.has_card(&charge.card),
        "not a saved card of the payer: {charge:?}"
    );
    if let Purpose::Allocation(purchase) = &charge.purpose {
        let beneficiary = &accounts[&id(&purchase.beneficiary)];
        assert_eq!(beneficiary.parent.as_ref(), Some(&payer.id), "{charge:?}");
        assert_eq!(
            price(purchase.basic_minutes, purchase.premium_minutes),
            Some(amount),
            "an allocation not at its price: {charge:?}"
        );
    }
}

/// H1, H3 and H4 over the whole log; `accounts` as they were when it started.
fn check_log(log: &[Entry], accounts: &BTreeMap<AccountId, Account>) {
    let mut auto_recharges: BTreeMap<(AccountId, i64), u32> = BTreeMap::new();
    let mut current = accounts.clone();
    let mut index = 0;
    while index < log.len() {
        match &log[index] {
            Entry::Decided {
                handed,
                succeeded: true,
                asked,
                ..
            } => {
                let Some(Entry::Committed(committed)) = log.get(index + 1) else {
                    panic!("a successful event was not committed: {asked:?}");
                };
                // The host commits its own records of the step (a rated call, a
                // fired timer, a settled charge, a handled inbox item) with the
                // policy's reaction to it.
                let decided = Batch {
                    rated_calls: Vec::new(),
                    fired: Vec::new(),
                    settled: Vec::new(),
                    inbox_done: Vec::new(),
                    ..committed.clone()
                };
                assert_eq!(&decided, asked, "H4: committed is not what was asked");
                assert!(committed.rated_calls.len() <= 1);
                for rated in &committed.rated_calls {
                    assert_eq!(rated.account, handed[0], "a call rated for another account");
                }
                let handed: BTreeSet<_> = handed.iter().collect();
                for account in &committed.updated {
                    assert!(handed.contains(&account.id), "H1: {account:?}");
                    current.insert(account.id.clone(), account.clone());
                }
                for charge in &committed.charges {
                    assert!(handed.contains(&charge.payer), "H1: {charge:?}");
                    assert!(handed.contains(&charge.beneficiary()), "H1: {charge:?}");
                    check_charge(charge, accounts);
                    if charge.purpose == Purpose::AutoRecharge {
                        let day = utc_day(charge.requested_at);
                        *auto_recharges
                            .entry((charge.payer.clone(), day))
                            .or_default() += 1;
                    }
                }
                assert!(committed.charges.len() <= 4, "H3: {committed:?}");
                for timer in &committed.timers {
                    assert!(handed.contains(&timer.account), "H1: {timer:?}");
                }
                for notice in &committed.notifications {
                    assert!(handed.contains(&notice.account), "H1: {notice:?}");
                }
                assert!(committed.created.is_empty() && committed.settled.len() <= 1);
                index += 2;
            }
            Entry::Decided {
                handed, faulted, ..
            } => {
                // Nothing of a failed event: at most the host's own records and
                // its fault notice, checked as a host batch next.
                if *faulted
                    && let Some(Entry::Committed(batch)) = log.get(index + 1)
                    && let Some(notice) = batch
                        .notifications
                        .iter()
                        .find(|notice| notice.kind == "policy_fault")
                {
                    assert_eq!(notice.account, handed[0]);
                }
                index += 1;
            }
            Entry::Committed(batch) => {
                assert!(
                    is_host_batch(batch),
                    "H4: a batch no successful event asked for: {batch:?}"
                );
                // The host's own batches move money and minutes only, never what
                // a policy decides (status, state, cards).
                for account in &batch.updated {
                    let before = &current[&account.id];
                    assert_eq!(
                        money_aside(account),
                        money_aside(before),
                        "H4: a host batch carries a policy's changes"
                    );
                    current.insert(account.id.clone(), account.clone());
                }
                index += 1;
            }
        }
    }
    for ((payer, day), count) in auto_recharges {
        assert!(
            count <= 25,
            "H3: {count} auto-recharges of {payer} on day {day}"
        );
    }
}

/// The host's own batches: a call's rating, a timer firing, a charge
/// submitted or settled with its credit, an outcome kept for later or handled,
/// and the notices of a fault. Whatever accounts they carry are checked to
/// change money and minutes only.
fn is_host_batch(batch: &Batch) -> bool {
    let host_only = Batch {
        updated: batch.updated.clone(),
        rated_calls: batch.rated_calls.clone(),
        fired: batch.fired.clone(),
        settled: batch.settled.clone(),
        submitted: batch.submitted.clone(),
        inbox: batch.inbox.clone(),
        inbox_done: batch.inbox_done.clone(),
        notifications: batch.notifications.clone(),
        ledger: batch.ledger.clone(),
        ..Batch::default()
    };
    *batch == host_only
        && batch.settled.len() <= 1
        && batch.rated_calls.len() <= 1
        && batch
            .notifications
            .iter()
            .all(|notice| notice.kind == "policy_fault" || notice.kind == "policy_quarantined")
}

/// H2: the model of every account, moved only by rated usage and succeeded
/// charges, equals the store.
struct Model {
    accounts: BTreeMap<AccountId, Account>,
    charges_seen: usize,
}

impl Model {
    fn new(world: &World) -> Model {
        Model {
            accounts: world.accounts(),
            charges_seen: world.platform.charges().unwrap().len(),
        }
    }

    /// Apply what `op` did: its usage first (rated before the policy runs), then
    /// every charge executed meanwhile.
    fn apply(&mut self, world: &World, op: &Op) {
        if let Op::Usage {
            who,
            seconds,
            premium,
        } = op
        {
            let kind = if *premium {
                MinuteType::Premium
            } else {
                MinuteType::Basic
            };
            let account = self.accounts.get_mut(&id(ACCOUNTS[*who].0)).unwrap();
            rate_call(account, *seconds, kind, &recharge_host::default_rates()).unwrap();
        }
        let charges = world.platform.charges().unwrap();
        for record in &charges[self.charges_seen..] {
            if record.outcome != ChargeOutcome::Succeeded {
                continue;
            }
            let request = &record.request;
            let beneficiary = self.accounts.get_mut(&request.beneficiary()).unwrap();
            match &request.purpose {
                Purpose::AutoRecharge | Purpose::TopUp => beneficiary.balance += request.amount,
                Purpose::Allocation(purchase) => {
                    beneficiary.basic_seconds += purchase.basic_minutes * 60;
                    beneficiary.premium_seconds += purchase.premium_minutes * 60;
                }
            }
        }
        self.charges_seen = charges.len();
    }

    fn assert_matches(&self, world: &World, after: &Op) {
        for (id, stored) in world.accounts() {
            let model = &self.accounts[&id];
            let money = |account: &Account| {
                (
                    account.balance,
                    account.included_basic_seconds,
                    account.included_premium_seconds,
                    account.basic_seconds,
                    account.premium_seconds,
                )
            };
            assert_eq!(money(&stored), money(model), "H2: {id} after {after:?}");
        }
    }
}

/// What a family ends with: its accounts (versions aside), charges and notices.
fn family_outcome(
    world: &World,
    family: &[&str],
) -> (
    Vec<(recharge_host::model::Snapshot, Decided)>,
    Vec<ChargeRecord>,
    Vec<Notification>,
) {
    let in_family = |account: &AccountId| family.contains(&account.as_str());
    let accounts = world
        .accounts()
        .into_values()
        .filter(|account| in_family(&account.id))
        .map(|account| (account.snapshot(), money_aside(&account)))
        .collect();
    let charges = world
        .platform
        .charges()
        .unwrap()
        .into_iter()
        .filter(|charge| in_family(&charge.request.payer))
        .collect();
    let notices = world
        .platform
        .notifications()
        .unwrap()
        .into_iter()
        .filter(|notice| in_family(&notice.account))
        .collect();
    (accounts, charges, notices)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn h1_to_h4_hold_under_a_policy_of_random_capability_calls(ops in proptest::collection::vec(op(), 1..30)) {
        let names: Vec<&str> = ACCOUNTS.iter().map(|(name, _, _)| *name).collect();
        let world = World::new(&names);
        let accounts = world.accounts();
        let mut model = Model::new(&world);
        for (index, op) in ops.iter().enumerate() {
            world.run(index, op).unwrap();
            model.apply(&world, op);
            model.assert_matches(&world, op);
        }
        check_log(&world.log.lock().unwrap(), &accounts);

        // The bystanders, alone on a platform of their own, end the same.
        let calm: Vec<&str> = names.iter().copied().filter(|name| is_calm(name)).collect();
        let alone = World::new(&calm);
        for (index, op) in ops.iter().enumerate() {
            if op.account().is_none_or(is_calm) {
                alone.run(index, op).unwrap();
            }
        }
        prop_assert_eq!(family_outcome(&world, &calm), family_outcome(&alone, &calm));
    }
}
