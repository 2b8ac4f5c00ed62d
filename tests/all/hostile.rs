//! The hostile corpus (`tests/hostile/`; its README has the table): components
//! that loop, exhaust memory, stack or tables, trap after acting, ask for what
//! they may not have, or do not fit the contract at all.
//!
//! Every case runs beside a bystander, `calm`, on the default policy, and checks
//! the same four things: the host keeps serving; the bystander ends exactly as it
//! does on a platform of its own; nothing of the faulting event is committed;
//! the fault is reported (a `policy_fault` notice, or a load error).

use std::path::PathBuf;
use std::sync::OnceLock;

use recharge_host::model::{MinuteType, PolicyError, QueryKind, Status};
use recharge_host::{Account, HostError, LoadError, PolicyFault, QUARANTINE_AFTER, Store};

use super::*;

fn corpus() -> PathBuf {
    workspace().join("tests").join("hostile")
}

fn build_crate(name: &str) -> Vec<u8> {
    let manifest = corpus().join(name).join("Cargo.toml");
    build_component(&manifest, &name.replace('-', "_"))
}

/// The corpus's Rust policy: each account id prefix is a case (`rogue/src/lib.rs`).
pub fn rogue() -> &'static [u8] {
    static ROGUE: OnceLock<Vec<u8>> = OnceLock::new();
    ROGUE.get_or_init(|| build_crate("rogue"))
}

/// A hand-written core module (`wat/NAME.wat`) in the contract's shell.
fn shelled(name: &str) -> Vec<u8> {
    let read = |file: &str| {
        let path = corpus().join("wat").join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    };
    let shell = read("policy-shell.wat");
    let marker = shell
        .lines()
        .find(|line| line.trim_start().starts_with(";; @core-module"))
        .expect("the shell marks where the core module goes");
    let core = read(&format!("{name}.wat")).replacen("(module", "(core module $main", 1);
    let text = shell.replace(marker, &core);
    wat::parse_str(&text).unwrap_or_else(|err| panic!("wat/{name}.wat in the shell: {err}"))
}

/// A hand-written WAT file as it is (a whole component, or a core module).
fn verbatim(file: &str) -> Vec<u8> {
    let path = corpus().join("wat").join(file);
    wat::parse_file(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Everything the store shows, with record versions left out.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    accounts: Vec<Record>,
    charges: Vec<recharge_host::ChargeRecord>,
    pending: Vec<recharge_host::ChargeRequest>,
    notifications: Vec<Notification>,
    next_timer: Option<recharge_host::Timer>,
}

/// An account record, its version left out.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    id: AccountId,
    snapshot: recharge_host::model::Snapshot,
    cards: Vec<String>,
    states: Vec<(String, Vec<u8>)>,
    watermarks: Vec<(String, Decimal)>,
}

impl Record {
    fn of(account: &Account) -> Record {
        Record {
            id: account.id.clone(),
            snapshot: account.snapshot(),
            cards: account.cards.clone(),
            states: account
                .policy_states()
                .map(|(policy, state)| (policy.to_owned(), state.to_vec()))
                .collect(),
            watermarks: account
                .watermarks()
                .map(|(policy, watermark)| (policy.to_owned(), watermark))
                .collect(),
        }
    }
}

fn observe(h: &Harness) -> Observed {
    let store = &h.store;
    let accounts = store
        .account_ids()
        .unwrap()
        .iter()
        .map(|id| Record::of(&store.account(id).unwrap().unwrap()))
        .collect();
    Observed {
        accounts,
        charges: store.charges().unwrap(),
        pending: store.pending_charges().unwrap(),
        notifications: store.notifications().unwrap(),
        next_timer: store
            .next_timer(i64::MAX, &crate::test_lease())
            .unwrap()
            .map(|stored| stored.timer),
    }
}

/// What concerns one account: its record, its charges and its notices.
fn concerning(observed: &Observed, account: &AccountId) -> Observed {
    Observed {
        accounts: observed
            .accounts
            .iter()
            .filter(|record| &record.id == account)
            .cloned()
            .collect(),
        charges: observed
            .charges
            .iter()
            .filter(|charge| &charge.request.payer == account)
            .cloned()
            .collect(),
        pending: Vec::new(),
        notifications: observed
            .notifications
            .iter()
            .filter(|notice| &notice.account == account)
            .cloned()
            .collect(),
        next_timer: None,
    }
}

const BYSTANDER: &str = "calm";

/// The bystander's first half: a user on the default policy with auto-recharge
/// (one charge of 20.00 at once).
fn bystander_opens(h: &Harness) -> AccountId {
    let calm = h.user(BYSTANDER);
    h.platform
        .save_auto_recharge(&calm, &calm, fixed("10.00", "20.00"))
        .unwrap();
    calm
}

/// The bystander's second half, after the hostile case: two premium calls that
/// take it below the threshold, so its policy recharges again.
fn bystander_calls(h: &Harness, calm: &AccountId) {
    h.platform
        .record_usage(calm, "calm-1", 600, MinuteType::Premium)
        .unwrap();
    h.platform
        .record_usage(calm, "calm-2", 3_600, MinuteType::Premium)
        .unwrap();
}

/// The bystander on a platform of its own: what it must end as, whatever its
/// neighbours do.
fn bystander_alone() -> &'static Observed {
    static ALONE: OnceLock<Observed> = OnceLock::new();
    ALONE.get_or_init(|| {
        let h = harness();
        let calm = bystander_opens(&h);
        bystander_calls(&h, &calm);
        concerning(&observe(&h), &calm)
    })
}

/// A platform with the bystander, and a tenant `name` (a user with card "visa"
/// and 50.00 of credit, got under the default policy) that has not yet uploaded
/// anything.
struct Arena {
    h: Harness,
    calm: AccountId,
    tenant: AccountId,
    calls: std::cell::Cell<u32>,
}

impl Arena {
    fn new(name: &str) -> Arena {
        let h = harness();
        let calm = bystander_opens(&h);
        let tenant = h.user(name);
        h.platform
            .top_up(&tenant, &tenant, "visa", d("50.00"))
            .unwrap();
        Arena {
            h,
            calm,
            tenant,
            calls: std::cell::Cell::new(0),
        }
    }

    /// An arena whose tenant runs `component`.
    fn with_policy(name: &str, component: &[u8]) -> Arena {
        let arena = Arena::new(name);
        arena
            .h
            .platform
            .set_policy(&arena.tenant, component)
            .unwrap();
        arena
    }

    /// The tenant's policy's state for its account, as text.
    fn tenant_state(&self) -> String {
        let record = self.h.platform.account(&self.tenant).unwrap();
        let state = record
            .policy_state(&format!("tenant:{}", self.tenant))
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        String::from_utf8(state).unwrap()
    }

    /// A one-minute basic call of the tenant: recorded whatever its policy does.
    fn call(&self, call: &str) -> Result<recharge_host::EventReport, HostError> {
        self.h
            .platform
            .record_usage(&self.tenant, call, 60, MinuteType::Basic)
    }

    /// A call id not used before.
    fn next_call(&self) -> String {
        self.calls.set(self.calls.get() + 1);
        format!("hostile-call-{}", self.calls.get())
    }

    /// Run the tenant's call and check it faulted as `expected` says, committing
    /// nothing but the call's rating and one `policy_fault` notice.
    fn call_faults(&self, expected: fn(&PolicyFault) -> bool) -> PolicyFault {
        self.faults(|arena| arena.call(&arena.next_call()), d("0.09"), expected)
    }

    /// Run an event of the tenant and check it faulted as `expected` says,
    /// committing nothing but `debit` off the tenant's balance (a call's rating,
    /// or zero) and one `policy_fault` notice.
    fn faults(
        &self,
        event: impl FnOnce(&Arena) -> Result<recharge_host::EventReport, HostError>,
        debit: Decimal,
        expected: fn(&PolicyFault) -> bool,
    ) -> PolicyFault {
        let before = observe(&self.h);
        let fault = match event(self) {
            Err(HostError::Fault(fault)) => fault,
            other => panic!("expected a policy fault, got {other:?}"),
        };
        assert!(expected(&fault), "unexpected fault: {fault:?}");
        self.assert_only_debited_and_noticed(&before, debit, &["policy_fault"]);
        fault
    }

    /// Run the tenant's call and check the policy gave up after a refusal,
    /// committing nothing but the call's rating.
    fn call_refused(&self) -> String {
        let before = observe(&self.h);
        let refusal = match self.call(&self.next_call()) {
            Err(HostError::Rejected(PolicyError::Refused(refusal))) => refusal,
            other => panic!("expected the refusal to reach the policy, got {other:?}"),
        };
        self.assert_only_rated_and_noticed(&before, &[]);
        refusal
    }

    /// Since `before`: the tenant's balance is down by one basic minute (0.09),
    /// notices of these kinds were sent to it, and nothing else changed.
    fn assert_only_rated_and_noticed(&self, before: &Observed, kinds: &[&str]) {
        self.assert_only_debited_and_noticed(before, d("0.09"), kinds);
    }

    /// Since `before`: the tenant's balance is down by `debit`, notices of these
    /// kinds were sent to it, and nothing else changed.
    fn assert_only_debited_and_noticed(&self, before: &Observed, debit: Decimal, kinds: &[&str]) {
        let after = observe(&self.h);
        let mut expected = before.clone();
        for record in &mut expected.accounts {
            if record.id == self.tenant {
                record.snapshot.balance -= debit;
            }
        }
        let sent: Vec<_> = after.notifications
            [before.notifications.len().min(after.notifications.len())..]
            .iter()
            .map(|notice| (notice.account.clone(), notice.kind.as_str()))
            .collect();
        let wanted: Vec<_> = kinds
            .iter()
            .map(|kind| (self.tenant.clone(), *kind))
            .collect();
        assert_eq!(sent, wanted, "notices sent by the event");
        expected.notifications = after.notifications.clone();
        assert_eq!(after, expected, "the event committed something");
    }

    /// The host still serves: the bystander's calls give exactly what they give
    /// on a platform of its own, and no notice of a fault reached it.
    fn assert_bystander_unaffected(&self) {
        bystander_calls(&self.h, &self.calm);
        assert_eq!(
            &concerning(&observe(&self.h), &self.calm),
            bystander_alone(),
            "the bystander's results changed"
        );
    }
}

fn is_fuel(fault: &PolicyFault) -> bool {
    *fault == PolicyFault::OutOfFuel
}

fn is_trap(fault: &PolicyFault) -> bool {
    matches!(fault, PolicyFault::Trap(_))
}

fn is_exhaustion(fault: &PolicyFault) -> bool {
    matches!(fault, PolicyFault::OutOfFuel | PolicyFault::Deadline)
}

/// A rogue case that must fault: the checks every faulting case shares.
fn rogue_faults(name: &str, expected: fn(&PolicyFault) -> bool) -> PolicyFault {
    let arena = Arena::with_policy(name, rogue());
    let fault = arena.call_faults(expected);
    arena.assert_bystander_unaffected();
    fault
}

/// A rogue case whose one bad request the host refuses: the refusal's name.
fn rogue_refused(name: &str) -> String {
    let arena = Arena::with_policy(name, rogue());
    let refusal = arena.call_refused();
    arena.assert_bystander_unaffected();
    refusal
}

/// A component the host must refuse to load; the tenant stays on the default
/// policy and is served by it.
fn refused_at_load(name: &str, component: &[u8]) -> LoadError {
    let arena = Arena::new(name);
    let before = observe(&arena.h);
    let error = match arena.h.platform.set_policy(&arena.tenant, component) {
        Err(HostError::Load(error)) => error,
        other => panic!("expected a load error, got {other:?}"),
    };
    assert_eq!(
        observe(&arena.h),
        before,
        "a refused upload changed something"
    );
    arena.call("after-refusal").unwrap();
    arena.assert_bystander_unaffected();
    error
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    rogue_faults("spin-1", is_fuel);
}

#[test]
fn loop_in_realloc_while_the_host_replies_runs_out_of_fuel() {
    rogue_faults("reply-spin-1", is_fuel);
}

#[test]
fn realloc_answering_a_pointer_past_memory_faults() {
    rogue_faults("reply-wild-1", is_trap);
}

#[test]
fn loop_in_realloc_while_the_host_passes_the_event_runs_out_of_fuel() {
    let arena = Arena::with_policy("wat-realloc-1", &shelled("realloc-spin"));
    // A rated call's arguments are flat: the host passes them without calling
    // the guest's `cabi_realloc`, and the call is served.
    arena.call("c1").unwrap();
    // A top-up's request (strings) goes through the guest's memory: copying it
    // in meets the loop, and the event, its charge included, commits nothing.
    arena.faults(
        |arena| {
            let tenant = &arena.tenant;
            arena.h.platform.top_up(tenant, tenant, "visa", d("10.00"))
        },
        Decimal::ZERO,
        is_fuel,
    );
    arena.assert_bystander_unaffected();
}

#[test]
fn allocating_until_memory_runs_out_traps_at_the_limit() {
    rogue_faults("hoard-1", is_trap);
}

#[test]
fn growing_memory_is_refused_at_16_mib() {
    let arena = Arena::with_policy("grow-1", rogue());
    arena.call("c1").unwrap();
    let note = arena.tenant_state();
    // 16 MiB is 256 pages of 64 KiB: the guest learns of the refusal as -1.
    assert!(note.ends_with("to 256 pages, refused at 256"), "{note}");
    arena.assert_bystander_unaffected();
}

#[test]
fn a_huge_single_allocation_traps() {
    rogue_faults("huge-1", is_trap);
}

#[test]
fn deep_recursion_in_rust_overflows_its_shadow_stack_and_traps() {
    // Rust keeps its frames' arrays on a shadow stack in linear memory (32 KiB at
    // the bottom, `.cargo/config.toml`): that one overflows first, below address
    // 0, into an out-of-bounds access.
    rogue_faults("recurse-1", is_trap);
}

#[test]
fn deep_recursion_stops_at_the_wasm_stack_limit() {
    let arena = Arena::with_policy("wat-recurse-1", &shelled("recurse"));
    let fault = arena.call_faults(is_trap);
    assert!(
        fault.to_string().contains("call stack exhausted"),
        "{fault}"
    );
    arena.assert_bystander_unaffected();
}

#[test]
fn table_growth_is_refused_at_the_table_limit() {
    // A trap, not fuel: the guest traps only once its growth is refused at or
    // below 10,000 elements.
    let arena = Arena::with_policy("wat-table-1", &shelled("table-grow"));
    arena.call_faults(is_trap);
    arena.assert_bystander_unaffected();
}

#[test]
fn a_table_over_the_limit_is_refused_before_it_runs() {
    let error = refused_at_load("wat-huge-table-1", &shelled("huge-table"));
    assert!(matches!(error, LoadError::Compile(_)), "{error:?}");
    assert!(error.to_string().contains("10000"), "{error}");
}

#[test]
fn a_trap_after_requesting_a_charge_commits_nothing() {
    rogue_faults("trap-1", is_trap);
}

#[test]
fn a_charge_on_an_unsaved_card_is_refused_not_trapped() {
    assert_eq!(rogue_refused("unsaved-1"), "unknown-card");
}

#[test]
fn negative_zero_fractional_and_oversized_amounts_are_refused() {
    for name in ["negative-1", "zero-1", "fraction-1", "oversized-1"] {
        let refusal = rogue_refused(name);
        assert!(refusal.starts_with("bad-amount"), "{name}: {refusal}");
    }
}

#[test]
fn an_amount_of_unreadable_scale_is_refused_not_trapped() {
    let refusal = rogue_refused("scale-1");
    assert!(refusal.starts_with("bad-amount"), "{refusal}");
}

#[test]
fn minutes_for_an_account_not_handed_to_the_event_are_refused() {
    assert_eq!(rogue_refused("foreign-1"), "foreign-account");
}

#[test]
fn a_forged_account_handle_faults() {
    let fault = rogue_faults("forge-1", |fault| matches!(fault, PolicyFault::Trap(_)));
    assert!(fault.to_string().contains("handle"), "{fault}");
}

#[test]
fn a_hundred_charge_requests_in_one_event_get_four() {
    let arena = Arena::with_policy("hundred-1", rogue());
    let before = arena.h.platform.charges().unwrap().len();
    arena.call("c1").unwrap();
    let charges = arena.h.platform.charges().unwrap();
    assert_eq!(charges.len() - before, 4);
    assert_eq!(
        arena.tenant_state(),
        "accepted 4, refused 96 (too-many-charges)"
    );
    // 50.00 − 0.09 for the call + 4 top-ups of 1.00.
    assert_eq!(arena.h.balance(&arena.tenant), d("53.91"));
    arena.assert_bystander_unaffected();
}

#[test]
fn a_wake_up_in_the_past_fires_once_at_once() {
    let arena = Arena::with_policy("past-1", rogue());
    let start = arena.h.platform.now();
    arena.call("c1").unwrap();
    // Both are due now: advancing to now fires them.
    arena.h.platform.advance_to(start).unwrap();
    let note = arena.tenant_state();
    assert_eq!(note, format!("woke 1 at {start};woke 2 at {start};"));
    arena.assert_bystander_unaffected();
}

#[test]
fn a_million_wake_ups_get_sixteen_or_exhaust_the_budget() {
    let arena = Arena::with_policy("million-1", rogue());
    let before = observe(&arena.h);
    match arena.call("c1") {
        Ok(_) => {
            assert_eq!(
                arena.tenant_state(),
                "accepted 16, refused 999984 (invalid(more than 16 wake-ups in one event))"
            );
        }
        Err(HostError::Fault(fault)) => {
            assert!(is_exhaustion(&fault), "{fault:?}");
            arena.assert_only_rated_and_noticed(&before, &["policy_fault"]);
        }
        Err(other) => panic!("expected success or exhaustion, got {other:?}"),
    }
    arena.assert_bystander_unaffected();
}

/// A platform on a store that fails once 10,000 timers have fired (a clock that
/// cannot get past an instant shows up as an error, not a hung test), with
/// `name` running the rogue policy after one call.
fn timer_arena(name: &str) -> (Platform, AccountId) {
    let (engine, default) = shared();
    let store = Arc::new(super::invariants::recording_store(Arc::default(), 10_000));
    let platform = Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default))
        .gateway(Arc::new(SimulatedGateway::new()))
        .store(store)
        .simulated_clock(JAN_1)
        .build()
        .unwrap();
    let tenant = id(name);
    platform
        .open_account(
            tenant.clone(),
            recharge_host::model::AccountKind::User,
            None,
        )
        .unwrap();
    platform.set_policy(&tenant, rogue()).unwrap();
    platform
        .record_usage(&tenant, "c1", 60, MinuteType::Basic)
        .unwrap();
    (platform, tenant)
}

#[test]
fn a_wake_up_storm_cannot_hold_the_clock() {
    // On every timer the policy asks for another wake-up in the past. The host
    // must still get its clock past that instant: it may fault the policy, drop
    // the wake-ups or defer them, but not fire them forever.
    let (platform, _) = timer_arena("storm-1");
    let result = platform.advance_to(JAN_1 + MINUTE);
    assert!(
        result.is_ok(),
        "the clock did not get past a wake-up storm: {result:?}"
    );
    assert!(platform.now() >= JAN_1 + MINUTE);
}

#[test]
fn a_wake_up_swarm_is_bounded() {
    // Each timer asks for sixteen more a minute later: 16^n timers after n
    // minutes. Sixteen per event is within the per-event limit, so only a bound
    // on what one account may have pending (or fire) keeps the host serving.
    let (platform, _) = timer_arena("swarm-1");
    let result = platform.advance_to(JAN_1 + 10 * MINUTE);
    assert!(
        result.is_ok(),
        "ten minutes of a wake-up swarm did not finish: {result:?}"
    );
}

#[test]
fn h3_a_tenant_cannot_squat_another_accounts_idempotency_keys() {
    // No double charge, nothing stuck: the tenant charges its own card under the
    // keys the bystander's default policy uses next. Keys are the host's
    // (scoped to the payer and the policy), so the tenant's four top-ups go
    // through as its own and the bystander recharges exactly as it does alone,
    // never refused as a duplicate, never paused.
    let arena = Arena::with_policy("squat-1", rogue());
    let report = arena.call(&arena.next_call()).unwrap();
    assert_eq!(report.charges.len(), 4, "{report:?}");
    for charge in &report.charges {
        assert_eq!(charge.payer, arena.tenant);
        assert!(charge.policy_key.starts_with("calm/ar/2/"));
        assert!(charge.key.starts_with("squat-1~"), "{}", charge.key);
    }
    assert_eq!(
        arena.h.platform.account(&arena.tenant).unwrap().balance,
        d("53.91"),
        "50.00, less a basic minute, plus four top-ups of 1.00"
    );
    arena.assert_bystander_unaffected();
}

#[test]
fn a_panic_traps() {
    rogue_faults("panic-1", is_trap);
}

#[test]
fn malformed_answers_are_faults_not_crashes() {
    let arena = Arena::with_policy("bad-answer-1", rogue());
    let (h, tenant) = (&arena.h, &arena.tenant);
    let query = h.platform.query(tenant, tenant, QueryKind::Estimate);
    assert!(
        matches!(query, Err(HostError::Fault(PolicyFault::Malformed(_)))),
        "{query:?}"
    );
    let describe = h.platform.describe(tenant);
    assert!(
        matches!(describe, Err(HostError::Fault(PolicyFault::Malformed(_)))),
        "{describe:?}"
    );
    // The query is an event and its fault is recorded; describe only feeds the
    // host's reports, so its fault is returned and not recorded.
    assert_eq!(h.notices(tenant, "policy_fault").len(), 1);
    arena.assert_bystander_unaffected();
}

/// What the rogue policy, uploaded by `owner`, keeps for `account`, as text.
fn rogue_state(h: &Harness, owner: &AccountId, account: &AccountId) -> String {
    let record = h.platform.account(account).unwrap();
    let state = record
        .policy_state(&format!("tenant:{owner}"))
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    String::from_utf8(state).unwrap()
}

/// One `clutch` call's note (`rogue/src/lib.rs`), checked for what every call
/// shows: twenty `current-subject` calls that drop nothing get eight handles and
/// twelve refusals, `invalid`; the parent is refused too while eight are held.
/// Returns the note's parts: what the handles an earlier call kept name now
/// (subject, parent), and what `current-parent` answered.
fn clutch_note(note: &str) -> Vec<&str> {
    let parts: Vec<&str> = note.split("; ").collect();
    assert!(parts.len() >= 4, "{note}");
    assert!(
        parts[2].starts_with("accepted 8, refused 12 (invalid("),
        "the ninth handle is not refused: {note}"
    );
    assert!(!parts[2].contains("), "), "one refusal only: {note}");
    parts
}

/// What a handle kept from an earlier call may name in this one: nothing (its
/// instance was not reused), or the account in its role in this call.
fn assert_kept(part: &str, role: &str, now: &str) {
    let nothing = format!("no {role} kept");
    let here = format!("kept {role} names '{now}' (");
    assert!(
        part == nothing || part.starts_with(&here),
        "a {role} handle kept from an earlier call reached '{part}', not this call's {role} '{now}'"
    );
}

#[test]
fn h1_hoarded_account_handles_are_refused_after_eight_and_kept_ones_reach_only_the_next_call() {
    let h = harness();
    let calm = bystander_opens(&h);
    let (agency, sub) = h.agency_with_sub("clutch-agency", "clutch-sub");
    h.platform.set_policy(&agency, rogue()).unwrap();
    let untouched = |before: &Observed, account: &AccountId| {
        assert_eq!(
            concerning(&observe(&h), account),
            concerning(before, account),
            "{account} changed"
        );
    };

    // The sub-account's call: eight subject handles, then refusals, the parent
    // refused too; once one handle is dropped, the parent is lent. The policy
    // keeps a subject and a parent handle past the call, and leaves six more
    // undropped: the event still succeeds and commits its state.
    let before = observe(&h);
    h.platform
        .record_usage(&sub, "c1", 60, MinuteType::Basic)
        .unwrap();
    let note = rogue_state(&h, &agency, &sub);
    let parts = clutch_note(&note);
    assert_eq!(parts[..2], ["no subject kept", "no parent kept"], "{note}");
    assert!(parts[3].starts_with("then: invalid("), "{note}");
    assert_eq!(
        parts[4..],
        ["after a drop: parent 'clutch-agency'"],
        "{note}"
    );
    assert_eq!(h.balance(&sub), d("-0.09"));
    untouched(&before, &agency);

    // The agency's call: the handles kept from the sub-account's call, if the
    // instance serves again, name the agency (the subject now) and no account
    // (no parent now); never the sub-account. The sub-account is untouched.
    let before = observe(&h);
    h.platform
        .record_usage(&agency, "c2", 60, MinuteType::Basic)
        .unwrap();
    let note = rogue_state(&h, &agency, &agency);
    let parts = clutch_note(&note);
    assert_kept(parts[0], "subject", "clutch-agency");
    assert_kept(parts[1], "parent", "");
    assert!(!parts[1].ends_with("(writable)"), "{note}");
    assert_eq!(parts[3..], ["then: no parent"], "{note}");
    untouched(&before, &sub);

    // And back: the subject handle kept from the agency's call names the
    // sub-account; the allowance is eight again in a new call.
    let before = observe(&h);
    h.platform
        .record_usage(&sub, "c3", 60, MinuteType::Basic)
        .unwrap();
    let note = rogue_state(&h, &agency, &sub);
    let parts = clutch_note(&note);
    assert_kept(parts[0], "subject", "clutch-sub");
    assert_eq!(parts[1], "no parent kept", "{note}");
    assert_eq!(
        parts[4..],
        ["after a drop: parent 'clutch-agency'"],
        "{note}"
    );
    untouched(&before, &agency);

    // No fault: the refusals were answers, not traps; the host serves on.
    for account in [&agency, &sub] {
        assert!(h.notices(account, "policy_fault").is_empty());
        assert_eq!(h.platform.account(account).unwrap().status, Status::Active);
    }
    let arena = Arena {
        h,
        calm,
        tenant: agency,
        calls: std::cell::Cell::new(0),
    };
    arena.assert_bystander_unaffected();
}

#[test]
fn the_wat_shell_with_a_well_behaved_core_module_serves() {
    let arena = Arena::with_policy("wat-benign-1", &shelled("benign"));
    arena.call("c1").unwrap();
    assert_eq!(arena.h.balance(&arena.tenant), d("49.91"));
    arena.assert_bystander_unaffected();
}

#[test]
fn a_reply_that_is_not_utf8_faults() {
    let arena = Arena::with_policy("wat-utf8-1", &shelled("bad-utf8"));
    let fault = arena.call_faults(is_trap);
    assert!(fault.to_string().contains("utf-8"), "{fault}");
    arena.assert_bystander_unaffected();
}

#[test]
fn a_reply_pointer_past_memory_faults() {
    let arena = Arena::with_policy("wat-wild-1", &shelled("wild-reply"));
    let fault = arena.call_faults(is_trap);
    assert!(fault.to_string().contains("out of bounds"), "{fault}");
    arena.assert_bystander_unaffected();
}

#[test]
fn a_start_function_that_never_returns_faults_every_event() {
    let arena = Arena::with_policy("wat-start-1", &shelled("start-spin"));
    arena.call_faults(is_exhaustion);
    arena.call_faults(is_exhaustion);
    arena.assert_bystander_unaffected();
}

#[test]
fn a_std_policy_that_prints_imports_wasi_and_is_refused() {
    static PRINTER: OnceLock<Vec<u8>> = OnceLock::new();
    let component = PRINTER.get_or_init(|| build_crate("printer"));
    let error = refused_at_load("printer-1", component);
    assert!(matches!(error, LoadError::Contract(_)), "{error:?}");
    assert!(error.to_string().contains("wasi:"), "{error}");
}

#[test]
fn a_component_importing_wasi_stdout_is_refused() {
    let error = refused_at_load("wat-wasi-1", &verbatim("wasi-stdout.component.wat"));
    assert!(matches!(error, LoadError::Contract(_)), "{error:?}");
    assert!(error.to_string().contains("wasi:cli/stdout"), "{error}");
}

#[test]
fn a_core_module_is_refused() {
    let error = refused_at_load("wat-core-1", &verbatim("core-module.wat"));
    assert!(matches!(error, LoadError::CoreModule), "{error:?}");
}

#[test]
fn bytes_that_are_not_wasm_and_oversized_components_are_refused() {
    let error = refused_at_load("junk-1", b"#!/bin/sh\necho policy\n");
    assert!(matches!(error, LoadError::NotWasm), "{error:?}");
    // Past the largest profile's size (the interpreted one's, 32 MiB).
    let mut oversized = rogue().to_vec();
    oversized.resize(Limits::default().largest_component() + 1, 0);
    let error = refused_at_load("junk-2", &oversized);
    assert!(matches!(error, LoadError::TooLarge { .. }), "{error:?}");
}

#[test]
fn a_component_for_another_contract_version_is_refused() {
    static NEXT: OnceLock<Vec<u8>> = OnceLock::new();
    let component = NEXT.get_or_init(|| build_crate("contract-next"));
    let error = refused_at_load("next-1", component);
    assert!(matches!(error, LoadError::Contract(_)), "{error:?}");
    assert!(error.to_string().contains("9.0.0"), "{error}");
}

#[test]
fn a_policy_that_keeps_faulting_is_quarantined_and_its_accounts_fall_back() {
    let h = harness();
    let calm = bystander_opens(&h);
    let (agency, sub) = h.agency_with_sub("fault-agency", "fault-sub");
    h.platform.set_policy(&agency, rogue()).unwrap();
    for call in 0..QUARANTINE_AFTER {
        let result = h
            .platform
            .record_usage(&agency, &format!("c{call}"), 60, MinuteType::Basic);
        assert!(matches!(result, Err(HostError::Fault(_))), "{result:?}");
    }
    assert_eq!(h.notices(&agency, "policy_fault").len(), 3);
    assert_eq!(h.notices(&agency, "policy_quarantined").len(), 1);
    assert_eq!(h.notices(&sub, "policy_quarantined").len(), 1);
    // The default policy decides now: the agency's settings are saved and served
    // (three basic minutes took it to -0.27; one charge of 10.00 closes the gap).
    h.platform
        .save_auto_recharge(&agency, &agency, fixed_on("amex", "5.00", "10.00"))
        .unwrap();
    assert_eq!(h.balance(&agency), d("9.73"));
    h.platform.query(&sub, &sub, QueryKind::Service).unwrap();
    assert_eq!(h.notices(&agency, "policy_fault").len(), 3);
    let arena = Arena {
        h,
        calm,
        tenant: agency,
        calls: std::cell::Cell::new(0),
    };
    arena.assert_bystander_unaffected();
}

/// Enabled fixed-mode settings on `card`.
fn fixed_on(
    card: &str,
    threshold: &str,
    amount: &str,
) -> recharge_host::model::AutoRechargeSettings {
    recharge_host::model::AutoRechargeSettings {
        card: card.into(),
        ..fixed(threshold, amount)
    }
}

#[test]
fn a_faulting_tenant_leaves_its_own_account_serving() {
    // After the fault the tenant's account is as before, active, and the calls
    // it makes are still rated.
    let arena = Arena::with_policy("spin-2", rogue());
    arena.call_faults(is_fuel);
    let record = arena.h.platform.account(&arena.tenant).unwrap();
    assert_eq!(record.status, Status::Active);
    assert_eq!(record.balance, d("49.91"));
    assert!(matches!(arena.call("c2"), Err(HostError::Fault(_))));
    assert_eq!(arena.h.balance(&arena.tenant), d("49.82"));
}

/// The JavaScript and Python hostile corpus (`tests/hostile/js`, `tests/hostile/py`),
/// built by `sdk/build-policies.sh`, with the cases each language has.
fn interpreted_corpus() -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            "js",
            "hostile_js.wasm",
            &["spin", "grow", "throw", "fetch", "clock"],
        ),
        (
            "py",
            "hostile_py.wasm",
            &["spin", "grow", "throw", "file", "clock", "entropy", "print"],
        ),
    ];
    cases
        .into_iter()
        .filter_map(|(language, file, faulting)| {
            super::tenant::built_policy(file).map(|component| (language, component, faulting))
        })
        .collect()
}

#[test]
fn h5_interpreted_hostile_policies_are_contained() {
    // Nothing committed, other tenants unaffected: an endless loop, memory
    // growth, an exception thrown after requesting a charge, and every attempt
    // to reach files, clocks, entropy or stdout through WASI, in JavaScript and
    // in Python, each end in a `policy_fault` that commits nothing but the
    // call's rating (the charge requested before the exception included), and
    // the host goes on serving the bystander as if alone.
    for (language, component, faulting) in interpreted_corpus() {
        for case in faulting {
            let arena = Arena::with_policy(&format!("{case}-{language}"), &component);
            arena.call_faults(|_| true);
            arena.assert_bystander_unaffected();
        }
    }
}

#[test]
fn h5_interpreted_policies_see_no_ambient_authority_and_stay_deterministic() {
    // Same inputs, same decisions: what a JavaScript or Python policy reads of
    // clocks, randomness and the environment is fixed in the component, the
    // same on every fresh platform, so replays and simulations hold.
    for (language, component, _) in interpreted_corpus() {
        let findings = || {
            let arena = Arena::with_policy(&format!("wasi-{language}"), &component);
            arena.call(&arena.next_call()).unwrap();
            arena.tenant_state()
        };
        let first = findings();
        assert!(first.starts_with('{'), "{language}: {first}");
        assert_eq!(
            first,
            findings(),
            "{language}: findings differ between runs"
        );
    }
}
