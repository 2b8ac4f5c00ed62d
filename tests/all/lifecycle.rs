//! The payment lifecycle (R5, H2, H4, SPEC §8): a gateway answer that never
//! came, a charge that confirms later by webhook, a charge that needs the
//! customer's authentication, a restart in each state of the outbox, a policy
//! that faults on the outcome, and a timer whose firing must commit with its
//! effects. Each test names what it protects: no minting, no double charge,
//! nothing lost, nothing stuck.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use recharge_host::model::{
    AccountView, Answer, ChargeOutcome, Event, MinuteType, QueryKind, Status,
};
use recharge_host::{
    Batch, CardBehavior, EventContext, Gateway, GatewayAnswer, GatewayCharge, HostError,
    OutboxEntry, OutboxState, PolicyFault, Settlement, Store, StoreError, Unknown, Verdict,
    Webhook,
};
use recharge_sim::network;

use recharge_host::{HookedStore, StoreHooks};

use super::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A platform on the shared engine and default policy over `store` and
/// `gateway`, its clock at `start`: a host as it is first started, or as it is
/// started again after a crash on the same store and card network.
fn host_on(store: Arc<dyn Store>, gateway: Arc<dyn Gateway>, start: Timestamp) -> Platform {
    let (engine, default) = shared();
    Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default))
        .store(store)
        .gateway(gateway)
        .simulated_clock(start)
        .build()
        .expect("platform builds")
}

/// Open a user with a saved card "visa" on `platform`.
fn open_user(platform: &Platform, name: &str) -> AccountId {
    let user = id(name);
    platform
        .open_account(user.clone(), recharge_host::model::AccountKind::User, None)
        .unwrap();
    platform.add_card(&user, "visa").unwrap();
    user
}

/// A gateway's webhook with a final outcome.
fn settled(outcome: ChargeOutcome) -> GatewayAnswer {
    GatewayAnswer::Settled(Settlement {
        outcome,
        reference: None,
        reason: None,
    })
}

/// Deliver one of the simulated gateway's webhooks.
fn deliver(platform: &Platform, hook: &Webhook) -> bool {
    platform
        .deliver_outcome(&hook.key, GatewayAnswer::Settled(hook.settlement.clone()))
        .unwrap()
}

/// No double charge: the card network took money at most once per key.
fn assert_each_key_charged_at_most_once(gateway: &SimulatedGateway) {
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for charge in gateway.card_charges() {
        *per_key.entry(charge.key).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "keys charged more than once: {twice:?}");
}

/// The notices of one kind an account got, on any platform.
fn notices_of(platform: &Platform, account: &AccountId, kind: &str) -> usize {
    platform
        .notifications()
        .unwrap()
        .iter()
        .filter(|notice| &notice.account == account && notice.kind == kind)
        .count()
}

fn outcomes(platform: &Platform) -> Vec<ChargeOutcome> {
    platform
        .charges()
        .unwrap()
        .iter()
        .map(|charge| charge.outcome)
        .collect()
}

/// Hooks over a shared memory store that fail the way a crashing or failing
/// backend does: they panic (the host process dies) when asked to record that
/// a charge is being submitted, or fail (a backend error) any commit of a batch
/// that fires a timer.
#[derive(Default)]
struct Faulty {
    /// Die before the outbox records a submission: the charge stays queued.
    crash_on_submit: AtomicBool,
    /// Fail every commit of a batch with fired timers.
    fail_fired: AtomicBool,
}

impl Faulty {
    fn over(inner: Arc<MemoryStore>) -> HookedStore<Faulty> {
        HookedStore::new(inner, Faulty::default())
    }
}

impl StoreHooks for Faulty {
    fn before_commit(&self, batch: &Batch) -> Result<(), StoreError> {
        if !batch.submitted.is_empty() && self.crash_on_submit.load(Ordering::SeqCst) {
            panic!("host crashed before recording the submission");
        }
        if !batch.fired.is_empty() && self.fail_fired.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection reset".into()));
        }
        Ok(())
    }
}

/// A gateway in front of the simulated card network that can be cut off: while
/// `down`, every submission is lost on the way (no answer, nothing charged);
/// `crash` makes the host die once just before a submission leaves. It notes
/// when and under which key each submission was made.
struct Link {
    inner: Arc<SimulatedGateway>,
    down: AtomicBool,
    crash: AtomicBool,
    asked: Mutex<Vec<(Timestamp, String)>>,
}

impl Link {
    fn to(inner: Arc<SimulatedGateway>) -> Self {
        Link {
            inner,
            down: AtomicBool::new(false),
            crash: AtomicBool::new(false),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<(Timestamp, String)> {
        self.asked.lock().unwrap().clone()
    }
}

impl Gateway for Link {
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        if self.crash.swap(false, Ordering::SeqCst) {
            panic!("host crashed before the gateway heard of the charge");
        }
        self.asked
            .lock()
            .unwrap()
            .push((charge.at, charge.key.to_owned()));
        if self.down.load(Ordering::SeqCst) {
            return Err(Unknown("connection reset".into()));
        }
        self.inner.submit(charge)
    }
}

/// The default policy, except that it traps on a payment outcome the first
/// `faults` times it is handed one.
struct FaultsOnOutcome {
    inner: Arc<dyn Policy>,
    faults: AtomicU32,
}

impl FaultsOnOutcome {
    fn new(faults: u32) -> Arc<Self> {
        Arc::new(FaultsOnOutcome {
            inner: Arc::clone(&shared().1),
            faults: AtomicU32::new(faults),
        })
    }
}

impl Policy for FaultsOnOutcome {
    fn name(&self) -> &str {
        "faults-on-outcome"
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        let fault = matches!(event, Event::PaymentOutcome(_))
            && self
                .faults
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
        if fault {
            return Err(PolicyFault::Trap(
                "unreachable executed handling the outcome".into(),
            ));
        }
        self.inner.handle(event, ctx)
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        self.inner.query(actor, what, ctx)
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        self.inner.describe(ctx)
    }
}

// ---------------------------------------------------------------------------
// A lost answer (timeout)
// ---------------------------------------------------------------------------

/// No double charge, no minting, nothing stuck: a charge whose answer was lost
/// (`timeout:1`: the card was charged) stays one attempt in flight, is asked
/// about again with the same key, and is then credited once; it never becomes
/// a second attempt, and nothing is credited before the host knows.
#[test]
fn a_lost_answer_is_charged_once_credited_once_and_is_no_new_attempt() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::TimeoutTimes(1))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();

    // The money moved, but the host does not know it yet: nothing credited,
    // nothing recorded as an outcome, the attempt is still in the outbox.
    assert_eq!(h.gateway.card_charges().len(), 1);
    assert_eq!(h.balance(&user), d("0"));
    assert!(h.platform.charges().unwrap().is_empty());
    let outbox = h.platform.outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    let key = outbox[0].request.key.clone();
    assert!(
        matches!(
            outbox[0].state,
            OutboxState::Submitted {
                first_at: JAN_1,
                asked: 1,
                pending: false,
                next_check,
                ..
            } if next_check == JAN_1 + MINUTE
        ),
        "{:?}",
        outbox[0].state
    );

    // Usage while in flight requests no second charge.
    let report = h
        .platform
        .record_usage(&user, "c1", 60, MinuteType::Basic)
        .unwrap();
    assert!(report.charges.is_empty());

    // Past the first re-ask: the same key is asked again and settles.
    h.platform.advance_to(JAN_1 + 2 * MINUTE).unwrap();
    let charges = h.platform.charges().unwrap();
    assert_eq!(charges.len(), 1, "one attempt, one record");
    assert_eq!(charges[0].request.key, key);
    assert_eq!(charges[0].outcome, ChargeOutcome::Succeeded);
    assert_eq!(
        charges[0].at, JAN_1,
        "the attempt is when it was first made"
    );
    assert_eq!(h.gateway.attempts(), 1, "one key reached the card network");
    assert_eq!(h.gateway.submissions(), 2, "submitted, then asked once");
    assert_eq!(h.gateway.card_charges().len(), 1);
    assert_eq!(h.balance(&user), d("19.91"));
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
    assert!(h.platform.outbox().unwrap().is_empty());

    // A day later nothing more happened: no retry, no second credit.
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(h.platform.charges().unwrap().len(), 1);
    assert_eq!(h.gateway.submissions(), 2);
    assert_eq!(h.gateway.card_charges().len(), 1);
    assert_eq!(h.balance(&user), d("19.91"));
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
    assert!(h.notices(&user, "recharge_failed").is_empty());
    assert_each_key_charged_at_most_once(&h.gateway);
}

/// Nothing stuck, no double charge: while the gateway cannot be reached, the
/// host keeps asking about the one attempt with the same key, 1 minute after
/// the first try, the wait doubling up to an hour, without ever giving up or
/// making a new attempt; usage meanwhile triggers nothing; once the gateway
/// answers, the charge is made and credited once.
#[test]
fn an_unreachable_gateway_is_asked_again_with_backoff_under_the_same_key() {
    let store = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let link = Arc::new(Link::to(cards.clone()));
    let platform = host_on(store, link.clone(), JAN_1);
    let user = open_user(&platform, "u");
    link.down.store(true, Ordering::SeqCst);
    platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    platform
        .record_usage(&user, "c1", 600, MinuteType::Premium)
        .unwrap();
    platform.advance_to(JAN_1 + 3 * HOUR).unwrap();

    let asked = link.asked();
    let key = asked[0].1.clone();
    assert!(
        asked.iter().all(|(_, asked_key)| *asked_key == key),
        "{asked:?}"
    );
    let minutes: Vec<i64> = asked.iter().map(|(at, _)| (at - JAN_1) / MINUTE).collect();
    assert_eq!(minutes, [0, 1, 3, 7, 15, 31, 63, 123]);
    assert_eq!(platform.outbox().unwrap().len(), 1);
    assert!(platform.charges().unwrap().is_empty());
    assert_eq!(platform.account(&user).unwrap().balance, d("-1.60"));
    assert!(cards.card_charges().is_empty());

    link.down.store(false, Ordering::SeqCst);
    platform.advance_to(JAN_1 + 4 * HOUR).unwrap();
    let asked = link.asked();
    assert_eq!(asked.len(), 9, "asked once more, at 183 minutes");
    assert_eq!(asked[8], (JAN_1 + 183 * MINUTE, key.clone()));
    let charges = platform.charges().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(
        (charges[0].request.key.as_str(), charges[0].outcome),
        (key.as_str(), ChargeOutcome::Succeeded)
    );
    assert_eq!(cards.card_charges().len(), 1);
    assert_eq!(cards.attempts(), 1);
    assert_eq!(platform.account(&user).unwrap().balance, d("18.40"));
    assert!(platform.outbox().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// A pending charge, confirmed by webhook
// ---------------------------------------------------------------------------

/// No minting, no double credit: a pending charge (`pending:30m`) credits
/// nothing until it is confirmed, then exactly once, however many webhooks
/// come: the gateway's two, extra duplicates, a contradicting one and a late
/// one after settlement. `deliver_outcome` settles it once.
#[test]
fn a_pending_charge_credits_only_when_confirmed_and_once() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Pending(30 * MINUTE))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();

    let outbox = h.platform.outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    let key = outbox[0].request.key.clone();
    let reference = match &outbox[0].state {
        OutboxState::Submitted {
            pending: true,
            reference: Some(reference),
            first_at: JAN_1,
            ..
        } => reference.clone(),
        other => panic!("not pending: {other:?}"),
    };
    assert_eq!(h.balance(&user), d("0"));
    assert!(h.gateway.card_charges().is_empty());
    assert!(h.platform.charges().unwrap().is_empty());

    // A webhook that says it is still pending changes nothing.
    assert!(
        !h.platform
            .deliver_outcome(&key, GatewayAnswer::Pending { reference: None })
            .unwrap()
    );
    h.platform.advance_to(JAN_1 + 29 * MINUTE).unwrap();
    assert!(
        h.gateway
            .take_webhooks(JAN_1 + 29 * MINUTE)
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.balance(&user), d("0"));
    assert!(h.platform.charges().unwrap().is_empty());

    h.platform.advance_to(JAN_1 + 30 * MINUTE).unwrap();
    let webhooks = h.gateway.take_webhooks(JAN_1 + 30 * MINUTE).unwrap();
    assert_eq!(webhooks.len(), 2, "the gateway confirms twice");
    assert!(webhooks.iter().all(|hook| hook.key == key));
    let delivered: Vec<bool> = webhooks
        .iter()
        .chain(&webhooks)
        .map(|hook| deliver(&h.platform, hook))
        .collect();
    assert_eq!(delivered, [true, false, false, false]);
    assert_eq!(h.balance(&user), d("20.00"));
    let charges = h.platform.charges().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].outcome, ChargeOutcome::Succeeded);
    assert_eq!(charges[0].at, JAN_1);
    assert_eq!(charges[0].settled_at, JAN_1 + 30 * MINUTE);
    assert_eq!(charges[0].reference.as_deref(), Some(reference.as_str()));
    let card_charges = h.gateway.card_charges();
    assert_eq!(card_charges.len(), 1);
    assert_eq!(card_charges[0].at, JAN_1 + 30 * MINUTE);

    // Late: a day on, the same webhook again, and one that contradicts it.
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert!(!deliver(&h.platform, &webhooks[0]));
    assert!(
        !h.platform
            .deliver_outcome(&key, settled(ChargeOutcome::Declined))
            .unwrap()
    );
    assert_eq!(h.balance(&user), d("20.00"));
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    assert_eq!(h.gateway.card_charges().len(), 1);
    assert_eq!(h.gateway.attempts(), 1);
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Active);
    assert!(h.platform.outbox().unwrap().is_empty());
}

/// Nothing stuck: a pending charge whose webhooks never arrive is settled by
/// asking the gateway again (every hour), and the webhooks that come later
/// change nothing.
#[test]
fn a_pending_charge_whose_webhooks_are_lost_settles_by_asking_again() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Pending(30 * MINUTE))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    // No webhook delivered: the host's own hourly check finds the outcome.
    h.platform.advance_to(JAN_1 + 59 * MINUTE).unwrap();
    assert_eq!(h.balance(&user), d("0"));
    h.platform.advance_to(JAN_1 + 2 * HOUR).unwrap();
    assert_eq!(h.balance(&user), d("20.00"));
    let charges = h.platform.charges().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].settled_at, JAN_1 + HOUR);
    assert_eq!(h.gateway.attempts(), 1);
    for hook in h.gateway.take_webhooks(JAN_1 + 2 * HOUR).unwrap() {
        assert!(!deliver(&h.platform, &hook));
    }
    assert_eq!(h.balance(&user), d("20.00"));
    assert_eq!(h.gateway.card_charges().len(), 1);
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
}

/// No double charge (R2: at most one recharge in flight): while a recharge is
/// pending, usage that keeps taking the balance below the threshold requests
/// no other charge; once the webhook settles it, the trigger runs again on the
/// credited balance.
#[test]
fn no_second_recharge_while_one_is_pending() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Pending(30 * MINUTE))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    let first = h.platform.outbox().unwrap()[0].request.key.clone();
    for call in 0..10 {
        let report = h
            .platform
            .record_usage(&user, &format!("c{call}"), 600, MinuteType::Premium)
            .unwrap();
        assert!(report.charges.is_empty(), "call {call} requested a charge");
        h.platform
            .advance_to(JAN_1 + (call + 1) * 2 * MINUTE)
            .unwrap();
    }
    assert_eq!(h.balance(&user), d("-16.00"));
    let outbox = h.platform.outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].request.key, first);
    assert_eq!(h.gateway.attempts(), 1);
    assert!(h.platform.charges().unwrap().is_empty());

    // The webhooks come at 00:30: credited once; -16.00 + 20.00 = 4.00 is still
    // below the threshold, so the policy's reaction asks for the next recharge.
    network::advance(&h.platform, &h.gateway, JAN_1 + 40 * MINUTE).unwrap();
    assert_eq!(h.balance(&user), d("4.00"));
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    let outbox = h.platform.outbox().unwrap();
    assert_eq!(outbox.len(), 1, "the next recharge, pending in its turn");
    assert_ne!(outbox[0].request.key, first);
    assert_eq!(outbox[0].request.amount, d("20.00"));
    assert_eq!(h.gateway.attempts(), 2);

    network::advance(&h.platform, &h.gateway, JAN_1 + 2 * HOUR).unwrap();
    assert_eq!(h.balance(&user), d("24.00"));
    assert_eq!(
        outcomes(&h.platform),
        [ChargeOutcome::Succeeded, ChargeOutcome::Succeeded]
    );
    assert!(h.platform.outbox().unwrap().is_empty());
    assert_eq!(h.gateway.card_charges().len(), 2);
    assert_each_key_charged_at_most_once(&h.gateway);
}

// ---------------------------------------------------------------------------
// Requires action (3-D Secure)
// ---------------------------------------------------------------------------

/// Nothing charged blindly (R5): a recharge whose card needs the customer's
/// authentication is one attempt, final: one `payment_action_required`
/// notice, no retry however long the clock runs, the account paused as after
/// a decline; nothing is credited. A card update (R6) ends it.
#[test]
fn requires_action_is_one_attempt_one_notice_no_retry_and_pauses() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::RequiresAction)
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();

    assert_eq!(outcomes(&h.platform), [ChargeOutcome::RequiresAction]);
    assert!(h.gateway.card_charges().is_empty());
    assert_eq!(h.balance(&user), d("0"));
    assert_eq!(h.notices(&user, "payment_action_required").len(), 1);
    assert_eq!(h.notices(&user, "account_paused").len(), 1);
    assert!(h.notices(&user, "recharge_failed").is_empty());
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Paused);

    // A day on, and usage below the threshold: still the one attempt.
    h.platform.advance_to(JAN_1 + HOUR).unwrap();
    let report = h
        .platform
        .record_usage(&user, "c1", 60, MinuteType::Basic)
        .unwrap();
    assert!(report.charges.is_empty());
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(h.platform.charges().unwrap().len(), 1);
    assert_eq!(h.gateway.attempts(), 1);
    assert_eq!(h.gateway.submissions(), 1);
    assert!(h.platform.outbox().unwrap().is_empty());
    assert_eq!(h.notices(&user, "payment_action_required").len(), 1);
    assert_eq!(h.notices(&user, "account_paused").len(), 1);
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Paused);
    assert_eq!(h.balance(&user), d("-0.09"));

    // The customer authenticates (updates the card): the trigger runs again.
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Ok)
        .unwrap();
    h.platform.update_card(&user, "visa").unwrap();
    assert_eq!(
        outcomes(&h.platform),
        [ChargeOutcome::RequiresAction, ChargeOutcome::Succeeded]
    );
    assert_eq!(h.balance(&user), d("19.91"));
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Active);
    assert_eq!(h.notices(&user, "account_resumed").len(), 1);
}

/// Nothing charged blindly (R5, R8): a top-up on a card that needs
/// authentication sends `payment_action_required` (not `top_up_failed`),
/// credits nothing and is not retried.
#[test]
fn a_top_up_that_requires_action_sends_payment_action_required() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::RequiresAction)
        .unwrap();
    h.platform.top_up(&user, &user, "visa", d("10.00")).unwrap();
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::RequiresAction]);
    assert_eq!(h.notices(&user, "payment_action_required").len(), 1);
    assert!(h.notices(&user, "top_up_failed").is_empty());
    assert_eq!(h.balance(&user), d("0"));
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(h.platform.charges().unwrap().len(), 1);
    assert_eq!(h.gateway.submissions(), 1);
    assert!(h.gateway.card_charges().is_empty());
    assert_eq!(h.notices(&user, "payment_action_required").len(), 1);
}

// ---------------------------------------------------------------------------
// A restart in each state of the outbox
// ---------------------------------------------------------------------------

/// What a restarted host must end with, whatever state the charge was left
/// in: one attempt, at most one card charge per key, credited exactly once.
fn assert_settled_once(platform: &Platform, cards: &SimulatedGateway, user: &AccountId) {
    assert_each_key_charged_at_most_once(cards);
    assert_eq!(cards.card_charges().len(), 1);
    assert_eq!(cards.attempts(), 1);
    assert_eq!(outcomes(platform), [ChargeOutcome::Succeeded]);
    assert!(platform.outbox().unwrap().is_empty());
    let account = platform.account(user).unwrap();
    assert_eq!(
        (account.balance, account.status),
        (d("20.00"), Status::Active)
    );
    assert_eq!(notices_of(platform, user, "recharge_succeeded"), 1);
}

/// No double charge, nothing lost (H4): the host dies after the event that
/// asked for a charge committed but before the outbox recorded the submission;
/// restarted on the same store, the queued charge is submitted once.
#[test]
fn a_restart_with_a_queued_charge_charges_it_once() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let faulty = Arc::new(Faulty::over(memory.clone()));
    let before = host_on(faulty.clone(), cards.clone(), JAN_1);
    let user = open_user(&before, "u");
    faulty.hooks().crash_on_submit.store(true, Ordering::SeqCst);
    let crash = catch_unwind(AssertUnwindSafe(|| {
        before.save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
    }));
    assert!(crash.is_err(), "the host died mid-outbox");
    drop(before);
    let outbox = memory.outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].state, OutboxState::Queued);
    assert_eq!(cards.submissions(), 0);

    let after = host_on(memory.clone(), cards.clone(), JAN_1 + MINUTE);
    after.run_outbox().unwrap();
    after.run_outbox().unwrap();
    after.advance_to(JAN_1 + DAY).unwrap();
    assert_settled_once(&after, &cards, &user);
}

/// No double charge, nothing lost (H4): the host dies after recording the
/// submission but before the gateway heard of it; restarted, it asks under
/// the same key, which charges the card for the first and only time.
#[test]
fn a_restart_after_the_submission_was_recorded_but_never_sent_charges_once() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let link = Arc::new(Link::to(cards.clone()));
    let before = host_on(memory.clone(), link.clone(), JAN_1);
    let user = open_user(&before, "u");
    link.crash.store(true, Ordering::SeqCst);
    let crash = catch_unwind(AssertUnwindSafe(|| {
        before.save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
    }));
    assert!(crash.is_err(), "the host died mid-outbox");
    drop(before);
    let outbox = memory.outbox().unwrap();
    assert!(matches!(
        outbox[..],
        [OutboxEntry {
            state: OutboxState::Submitted { asked: 1, .. },
            ..
        }]
    ));
    assert_eq!(cards.submissions(), 0);

    let after = host_on(memory.clone(), cards.clone(), JAN_1);
    after.advance_to(JAN_1 + DAY).unwrap();
    after.run_outbox().unwrap();
    assert_settled_once(&after, &cards, &user);
}

/// No double charge, nothing lost (H4): the card was charged but the answer
/// was lost (`timeout:1`), then the host went down; restarted, it asks again
/// with the same key and credits once, however often it asks.
#[test]
fn a_restart_with_a_lost_answer_charges_nothing_twice() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let before = host_on(memory.clone(), cards.clone(), JAN_1);
    let user = open_user(&before, "u");
    cards
        .set_behavior(&user, "visa", CardBehavior::TimeoutTimes(1))
        .unwrap();
    before
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    drop(before);
    assert!(matches!(
        memory.outbox().unwrap()[..],
        [OutboxEntry {
            state: OutboxState::Submitted { pending: false, .. },
            ..
        }]
    ));
    assert_eq!(cards.card_charges().len(), 1, "charged, answer lost");

    let after = host_on(memory.clone(), cards.clone(), JAN_1 + 10 * MINUTE);
    after.run_outbox().unwrap();
    after.run_outbox().unwrap();
    after.advance_to(JAN_1 + DAY).unwrap();
    assert_settled_once(&after, &cards, &user);
    assert_eq!(cards.submissions(), 2);
}

/// No double charge, nothing lost (H4): a pending charge outlives the host
/// that submitted it; the restarted host takes its webhooks (twice, as the
/// gateway sends them) and asks about it again, and credits once.
#[test]
fn a_restart_with_a_pending_charge_credits_it_once() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let before = host_on(memory.clone(), cards.clone(), JAN_1);
    let user = open_user(&before, "u");
    cards
        .set_behavior(&user, "visa", CardBehavior::Pending(30 * MINUTE))
        .unwrap();
    before
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    drop(before);
    assert!(matches!(
        memory.outbox().unwrap()[..],
        [OutboxEntry {
            state: OutboxState::Submitted { pending: true, .. },
            ..
        }]
    ));

    let after = host_on(memory.clone(), cards.clone(), JAN_1 + 10 * MINUTE);
    // Asked about at once after the restart: still pending, nothing moves.
    after.run_outbox().unwrap();
    assert_eq!(after.account(&user).unwrap().balance, d("0"));
    assert_eq!(after.outbox().unwrap().len(), 1);
    network::advance(&after, &cards, JAN_1 + DAY).unwrap();
    after.run_outbox().unwrap();
    assert_settled_once(&after, &cards, &user);
}

// ---------------------------------------------------------------------------
// A policy that faults on the outcome
// ---------------------------------------------------------------------------

/// No credit lost, nothing stuck: when the policy faults on a payment outcome,
/// the record and the credit commit all the same, the outcome waits in the
/// inbox and is offered again as time passes (1 minute, then 2 more); once the
/// policy handles it the inbox is empty, the recharge is no longer in flight,
/// and a later drop below the threshold recharges again.
#[test]
fn an_outcome_the_policy_faults_on_is_credited_and_offered_again() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .set_policy_object(&user, FaultsOnOutcome::new(2))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();

    // Settled and credited; the policy's reaction is owed.
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    assert_eq!(h.balance(&user), d("20.00"));
    assert!(h.platform.outbox().unwrap().is_empty());
    let inbox = h.platform.inbox().unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].item.account, user);
    assert_eq!(inbox[0].item.outcome.outcome, ChargeOutcome::Succeeded);
    assert_eq!(inbox[0].item.attempts, 1);
    assert_eq!(inbox[0].item.due, JAN_1 + MINUTE);
    assert_eq!(h.notices(&user, "policy_fault").len(), 1);
    assert!(h.notices(&user, "recharge_succeeded").is_empty());

    // Offered again a minute later: faults again, waits longer.
    h.platform.advance_to(JAN_1 + MINUTE).unwrap();
    let inbox = h.platform.inbox().unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].item.attempts, 2);
    assert_eq!(inbox[0].item.due, JAN_1 + 3 * MINUTE);
    assert_eq!(h.notices(&user, "policy_fault").len(), 2);
    assert_eq!(h.balance(&user), d("20.00"), "credited once, not per offer");

    // Handled at the third offer.
    h.platform.advance_to(JAN_1 + 3 * MINUTE).unwrap();
    assert!(h.platform.inbox().unwrap().is_empty());
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
    assert!(h.notices(&user, "policy_quarantined").is_empty());
    assert_eq!(h.balance(&user), d("20.00"));

    // Nothing stuck in flight: the next drop below the threshold recharges.
    h.platform.advance_to(JAN_1 + HOUR).unwrap();
    let report = h
        .platform
        .record_usage(&user, "c1", 4200, MinuteType::Premium)
        .unwrap();
    assert_eq!(report.charges.len(), 1);
    assert_eq!(
        outcomes(&h.platform),
        [ChargeOutcome::Succeeded, ChargeOutcome::Succeeded]
    );
    assert_eq!(h.balance(&user), d("28.80"));
    assert_eq!(h.gateway.card_charges().len(), 2);
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 2);
    assert_eq!(h.notices(&user, "policy_fault").len(), 2);
    assert!(h.platform.inbox().unwrap().is_empty());
}

/// Nothing lost (H6): an outcome a tenant's policy keeps faulting on is handed
/// to the default policy once the tenant is quarantined, and leaves the inbox;
/// it is credited once throughout.
#[test]
fn an_outcome_a_quarantined_policy_faulted_on_is_handled_by_the_default_policy() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .set_policy_object(&user, FaultsOnOutcome::new(u32::MAX))
        .unwrap();
    h.platform.top_up(&user, &user, "visa", d("10.00")).unwrap();
    assert_eq!(h.balance(&user), d("10.00"));
    assert_eq!(h.platform.inbox().unwrap().len(), 1);

    h.platform.advance_to(JAN_1 + HOUR).unwrap();
    assert!(h.platform.inbox().unwrap().is_empty());
    assert_eq!(h.notices(&user, "policy_fault").len(), 3);
    assert_eq!(h.notices(&user, "policy_quarantined").len(), 1);
    assert_eq!(h.balance(&user), d("10.00"));
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    assert_eq!(h.gateway.card_charges().len(), 1);
}

// ---------------------------------------------------------------------------
// A timer's firing commits with its effects
// ---------------------------------------------------------------------------

/// Nothing lost, nothing twice (H4, §8): a retry timer whose firing cannot
/// commit (the store fails) is a host error that leaves the timer pending and
/// charges nothing; once the store works, the retry fires once, charges once
/// and credits once.
#[test]
fn a_retry_timer_fires_with_its_charge_or_not_at_all() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let faulty = Arc::new(Faulty::over(memory.clone()));
    let platform = host_on(faulty.clone(), cards.clone(), JAN_1);
    let user = open_user(&platform, "u");
    cards
        .set_behavior(&user, "visa", CardBehavior::FailTimes(1))
        .unwrap();
    platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    assert_eq!(outcomes(&platform), [ChargeOutcome::Failed]);
    let timer = memory
        .next_timer(i64::MAX, &crate::test_lease())
        .unwrap()
        .expect("a retry timer");
    assert_eq!(timer.timer.due, JAN_1 + 5 * MINUTE);

    faulty.hooks().fail_fired.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        let failed = platform.advance_to(JAN_1 + 10 * MINUTE);
        assert!(
            matches!(failed, Err(HostError::Store(StoreError::Backend(_)))),
            "{failed:?}"
        );
    }
    assert_eq!(
        memory.next_timer(i64::MAX, &crate::test_lease()).unwrap(),
        Some(timer.clone())
    );
    assert_eq!(cards.submissions(), 1);
    assert!(platform.outbox().unwrap().is_empty());
    assert_eq!(platform.charges().unwrap().len(), 1);
    assert_eq!(platform.account(&user).unwrap().balance, d("0"));
    assert_eq!(notices_of(&platform, &user, "policy_fault"), 0);

    faulty.hooks().fail_fired.store(false, Ordering::SeqCst);
    platform.advance_to(JAN_1 + 10 * MINUTE).unwrap();
    platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(
        memory.next_timer(i64::MAX, &crate::test_lease()).unwrap(),
        None
    );
    let charges = platform.charges().unwrap();
    assert_eq!(
        charges
            .iter()
            .map(|charge| charge.outcome)
            .collect::<Vec<_>>(),
        [ChargeOutcome::Failed, ChargeOutcome::Succeeded]
    );
    assert_eq!(
        charges[1].at,
        JAN_1 + 5 * MINUTE,
        "the retry at its due time"
    );
    assert_eq!(cards.card_charges().len(), 1);
    assert_eq!(platform.account(&user).unwrap().balance, d("20.00"));
    assert_eq!(notices_of(&platform, &user, "recharge_succeeded"), 1);
}

/// No minting, nothing lost (H4, R7): a monthly allocation run whose firing
/// cannot commit buys nothing and stays due; once the store works it buys the
/// month's minutes once.
#[test]
fn an_allocation_run_fires_with_its_purchase_or_not_at_all() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let faulty = Arc::new(Faulty::over(memory.clone()));
    let platform = host_on(faulty.clone(), cards.clone(), JAN_1);
    let (agency, sub) = (id("a"), id("s"));
    platform
        .open_account(
            agency.clone(),
            recharge_host::model::AccountKind::Agency,
            None,
        )
        .unwrap();
    platform.add_card(&agency, "amex").unwrap();
    platform
        .open_account(
            sub.clone(),
            recharge_host::model::AccountKind::SubAccount,
            Some(agency.clone()),
        )
        .unwrap();
    platform
        .save_allocation(&agency, &sub, allocation(100, 50))
        .unwrap();
    assert_eq!(platform.account(&sub).unwrap().basic_seconds, 6000);
    let feb_1 = at("2026-02-01T00:00:00Z");

    faulty.hooks().fail_fired.store(true, Ordering::SeqCst);
    let failed = platform.advance_to(feb_1 + HOUR);
    assert!(
        matches!(failed, Err(HostError::Store(StoreError::Backend(_)))),
        "{failed:?}"
    );
    let pending = memory
        .next_timer(i64::MAX, &crate::test_lease())
        .unwrap()
        .expect("the next run");
    assert_eq!(pending.timer.due, feb_1);
    assert_eq!(platform.charges().unwrap().len(), 1);
    let account = platform.account(&sub).unwrap();
    assert_eq!(
        (account.basic_seconds, account.premium_seconds),
        (6000, 3000)
    );

    faulty.hooks().fail_fired.store(false, Ordering::SeqCst);
    platform.advance_to(feb_1 + DAY).unwrap();
    let charges = platform.charges().unwrap();
    assert_eq!(
        charges.iter().map(|charge| charge.at).collect::<Vec<_>>(),
        [JAN_1, feb_1]
    );
    let account = platform.account(&sub).unwrap();
    assert_eq!(
        (account.basic_seconds, account.premium_seconds),
        (12000, 6000)
    );
    assert_eq!(cards.card_charges().len(), 2);
    assert_eq!(notices_of(&platform, &agency, "allocation_succeeded"), 2);
    assert_eq!(
        memory
            .next_timer(i64::MAX, &crate::test_lease())
            .unwrap()
            .map(|t| t.timer.due),
        Some(at("2026-03-01T00:00:00Z"))
    );
}

// ---------------------------------------------------------------------------
// Webhooks, the inbox and restarts together
// ---------------------------------------------------------------------------

/// No double credit under concurrency: the gateway's webhooks for one charge
/// delivered from many threads at once settle it once and credit it once.
#[test]
fn the_same_webhook_delivered_concurrently_credits_once() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Pending(30 * MINUTE))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    h.platform.advance_to(JAN_1 + 30 * MINUTE).unwrap();
    let webhooks = h.gateway.take_webhooks(JAN_1 + 30 * MINUTE).unwrap();
    assert_eq!(webhooks.len(), 2);
    let settled = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let (platform, hook) = (&h.platform, &webhooks[n % 2]);
                scope.spawn(move || deliver(platform, hook))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .filter(|settled| *settled)
            .count()
    });
    assert_eq!(settled, 1, "exactly one delivery settles the charge");
    assert_eq!(h.balance(&user), d("20.00"));
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
    assert_eq!(h.gateway.card_charges().len(), 1);
}

/// No double credit, nothing queued twice: while the outcome of a pending
/// charge waits in the inbox (the policy faulted on it), the gateway's
/// duplicate webhook changes nothing; the outcome is then handled once.
#[test]
fn a_duplicate_webhook_while_the_outcome_waits_in_the_inbox_changes_nothing() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .set_policy_object(&user, FaultsOnOutcome::new(1))
        .unwrap();
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Pending(30 * MINUTE))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    h.platform.advance_to(JAN_1 + 30 * MINUTE).unwrap();
    let webhooks = h.gateway.take_webhooks(JAN_1 + 30 * MINUTE).unwrap();
    let delivered: Vec<bool> = webhooks
        .iter()
        .map(|hook| deliver(&h.platform, hook))
        .collect();
    assert_eq!(delivered, [true, false]);
    assert_eq!(h.balance(&user), d("20.00"));
    assert_eq!(h.platform.inbox().unwrap().len(), 1);
    assert_eq!(h.notices(&user, "policy_fault").len(), 1);

    network::advance(&h.platform, &h.gateway, JAN_1 + HOUR).unwrap();
    assert!(!deliver(&h.platform, &webhooks[0]));
    assert!(h.platform.inbox().unwrap().is_empty());
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
    assert_eq!(h.balance(&user), d("20.00"));
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    assert_eq!(h.gateway.card_charges().len(), 1);
}

/// Nothing lost (H4, SPEC §8): an outcome waiting in the inbox lives in the
/// store; a host restarted on that store offers it again, the policy handles
/// it (credited once, before and after), and the account recharges again
/// later. The restarted host is handed the tenant's policy again by the test:
/// this store keeps no policy assignments.
#[test]
fn an_outcome_waiting_in_the_inbox_survives_a_restart() {
    let memory = Arc::new(MemoryStore::new());
    let cards = Arc::new(SimulatedGateway::new());
    let before = host_on(memory.clone(), cards.clone(), JAN_1);
    let user = open_user(&before, "u");
    before
        .set_policy_object(&user, FaultsOnOutcome::new(1))
        .unwrap();
    before
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    assert_eq!(memory.inbox().unwrap().len(), 1);
    drop(before);

    let after = host_on(memory.clone(), cards.clone(), JAN_1 + 10 * MINUTE);
    after
        .set_policy_object(&user, FaultsOnOutcome::new(0))
        .unwrap();
    after.advance_to(JAN_1 + HOUR).unwrap();
    assert!(after.inbox().unwrap().is_empty());
    assert_eq!(notices_of(&after, &user, "recharge_succeeded"), 1);
    assert_eq!(after.account(&user).unwrap().balance, d("20.00"));
    let report = after
        .record_usage(&user, "c1", 4200, MinuteType::Premium)
        .unwrap();
    assert_eq!(report.charges.len(), 1, "no recharge left stuck in flight");
    assert_eq!(after.account(&user).unwrap().balance, d("28.80"));
    assert_each_key_charged_at_most_once(&cards);
    assert_eq!(cards.card_charges().len(), 2);
}

/// No minting, no double purchase (R7, H2): an allocation whose answer was
/// lost buys nothing until the host knows, then adds the month's minutes once.
#[test]
fn an_allocation_whose_answer_was_lost_adds_its_minutes_once() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.gateway
        .set_behavior(&agency, "amex", CardBehavior::TimeoutTimes(1))
        .unwrap();
    h.platform
        .save_allocation(&agency, &sub, allocation(100, 50))
        .unwrap();
    let account = h.platform.account(&sub).unwrap();
    assert_eq!((account.basic_seconds, account.premium_seconds), (0, 0));
    assert_eq!(h.gateway.card_charges().len(), 1);
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    let account = h.platform.account(&sub).unwrap();
    assert_eq!(
        (account.basic_seconds, account.premium_seconds),
        (6000, 3000)
    );
    assert_eq!(outcomes(&h.platform), [ChargeOutcome::Succeeded]);
    assert_eq!(h.gateway.card_charges().len(), 1);
    assert_eq!(h.gateway.attempts(), 1);
    assert_eq!(h.notices(&agency, "allocation_succeeded").len(), 1);
    assert_eq!(h.balance(&agency), d("0"));
}
