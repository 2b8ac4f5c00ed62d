//! One conformance suite for every store: the memory store, the SQLite file
//! and PostgreSQL run the same checks, and the durable ones keep what they
//! committed across a reopen.

use std::path::PathBuf;
use std::sync::Arc;

use recharge_host::model::{AccountKind, ChargeOutcome, MinuteType, PaymentOutcome, Purpose};
use recharge_host::{
    Account, Batch, Cause, ChargeRecord, ChargeRequest, DEFAULT_RETENTION, InboxItem, KeptResponse,
    Lease, LedgerEntry, MemoryStore, Notification, OutboxState, PostgresStore, Pruned, RatedCall,
    SqliteStore, StateChange, Store, StoreError, Timer, sha256_hex, utc_day,
};
use rust_decimal::Decimal;

use super::{DAY, JAN_1, harness, id, postgres_store, postgres_url, workspace};

/// A fresh SQLite file for `name` under `target/test-stores/`.
fn sqlite_path(name: &str) -> PathBuf {
    let dir = workspace().join("target").join("test-stores");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// Every store, empty, named for the failure messages.
fn stores(test: &str) -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut stores: Vec<(&'static str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open(sqlite_path(test)).unwrap()),
        ),
    ];
    if let Some(store) = postgres_store(&format!("conformance_{test}")) {
        stores.push(("postgres", Arc::new(store)));
    }
    stores
}

fn user(name: &str) -> Account {
    Account::new(id(name), AccountKind::User, None)
}

fn charge(key: &str, at: i64) -> ChargeRequest {
    ChargeRequest {
        key: key.into(),
        policy_key: format!("policy/{key}"),
        payer: id("u"),
        card: "visa".into(),
        amount: Decimal::new(1_000, 2),
        purpose: Purpose::AutoRecharge,
        requested_by: id("u"),
        requested_at: at,
    }
}

fn rated(call: &str, at: i64) -> RatedCall {
    RatedCall {
        account: id("u"),
        call: call.into(),
        at,
    }
}

fn opened(store: &dyn Store) {
    store
        .commit(Batch {
            created: vec![user("u")],
            ..Batch::default()
        })
        .unwrap();
}

/// Nothing half done: a batch that fails (a stale account) changes nothing,
/// not even its other parts; the version guards against lost updates.
#[test]
fn a_failing_batch_changes_nothing() {
    for (name, store) in stores("atomic") {
        opened(&*store);
        let read = store.account(&id("u")).unwrap().unwrap();
        let mut richer = read.clone();
        richer.balance = Decimal::TEN;
        store
            .commit(Batch {
                updated: vec![richer],
                ..Batch::default()
            })
            .unwrap();
        let stale = Batch {
            updated: vec![read],
            charges: vec![charge("k1", JAN_1)],
            notifications: vec![Notification {
                at: JAN_1,
                account: id("u"),
                kind: "recharge_succeeded".into(),
                message: "no".into(),
            }],
            ..Batch::default()
        };
        assert!(
            matches!(store.commit(stale), Err(StoreError::Conflict(_))),
            "{name}"
        );
        assert!(store.outbox().unwrap().is_empty(), "{name}");
        assert!(!store.key_used("k1").unwrap(), "{name}");
        assert!(store.notifications().unwrap().is_empty(), "{name}");
        let account = store.account(&id("u")).unwrap().unwrap();
        assert_eq!(
            (account.balance, account.version()),
            (Decimal::TEN, 1),
            "{name}"
        );
        assert!(
            matches!(
                store.commit(Batch {
                    created: vec![user("u")],
                    ..Batch::default()
                }),
                Err(StoreError::Exists(_))
            ),
            "{name}"
        );
        assert_eq!(store.account_ids().unwrap(), [id("u")], "{name}");
    }
}

/// No minting, nothing half done: a usage event's batch (one account, the
/// calls it rated, its ledger rows; PostgreSQL commits that shape as one
/// statement) lands whole, its ledger rows in their order, or, at a stale
/// version, not at all: no call rated, no ledger row, the account as it was.
#[test]
fn a_usage_events_batch_commits_whole_or_not_at_all() {
    for (name, store) in stores("usage_batch") {
        opened(&*store);
        let entry = |n: i64| LedgerEntry {
            at: JAN_1 + n,
            account: id("u"),
            cause: Cause::Call(format!("c{n}")),
            wallet: Decimal::new(-n, 2),
            included_basic_seconds: -n,
            included_premium_seconds: 0,
            basic_seconds: 0,
            premium_seconds: 0,
        };
        let read = store.account(&id("u")).unwrap().unwrap();
        let mut charged = read.clone();
        charged.balance = Decimal::new(-3, 2);
        store
            .commit(Batch {
                updated: vec![charged],
                rated_calls: vec![rated("c1", JAN_1), rated("c2", JAN_1)],
                ledger: vec![entry(1), entry(2)],
                ..Batch::default()
            })
            .unwrap();
        let mut stale = read.clone();
        stale.balance = Decimal::new(-9, 2);
        assert!(
            matches!(
                store.commit(Batch {
                    updated: vec![stale],
                    rated_calls: vec![rated("c3", JAN_1)],
                    ledger: vec![entry(3)],
                    ..Batch::default()
                }),
                Err(StoreError::Conflict(_))
            ),
            "{name}"
        );
        let account = store.account(&id("u")).unwrap().unwrap();
        assert_eq!(
            (account.balance, account.version()),
            (Decimal::new(-3, 2), 1),
            "{name}"
        );
        assert_eq!(store.ledger().unwrap(), [entry(1), entry(2)], "{name}");
        assert!(store.call_rated(&id("u"), "c2").unwrap(), "{name}");
        assert!(!store.call_rated(&id("u"), "c3").unwrap(), "{name}");
        // An account that does not exist is a conflict too, and writes nothing.
        assert!(
            matches!(
                store.commit(Batch {
                    updated: vec![user("ghost")],
                    rated_calls: vec![rated("c4", JAN_1)],
                    ..Batch::default()
                }),
                Err(StoreError::Conflict(_))
            ),
            "{name}"
        );
        assert!(!store.call_rated(&id("u"), "c4").unwrap(), "{name}");
    }
}

/// No double charge: an idempotency key is used once, ever, and counted once
/// towards the payer's auto-recharges of its UTC day.
#[test]
fn keys_are_never_reused_and_auto_recharges_count_by_day() {
    for (name, store) in stores("keys") {
        opened(&*store);
        let first = Batch {
            charges: vec![charge("k1", JAN_1), charge("k2", JAN_1 + 1)],
            ..Batch::default()
        };
        store.commit(first).unwrap();
        let again = Batch {
            charges: vec![charge("k3", JAN_1), charge("k1", JAN_1)],
            ..Batch::default()
        };
        assert_eq!(
            store.commit(again),
            Err(StoreError::DuplicateKey("k1".into())),
            "{name}"
        );
        assert!(!store.key_used("k3").unwrap(), "{name}");
        let day = recharge_host::utc_day(JAN_1);
        assert_eq!(store.auto_recharges_on(&id("u"), day).unwrap(), 2, "{name}");
        assert_eq!(
            store.auto_recharges_on(&id("u"), day + 1).unwrap(),
            0,
            "{name}"
        );
    }
}

/// Nothing lost, nothing twice: a charge goes queued, submitted, settled; it
/// settles once, and the outbox hands out what is due first.
#[test]
fn the_outbox_keeps_each_charge_until_it_settles_once() {
    for (name, store) in stores("outbox") {
        opened(&*store);
        store
            .commit(Batch {
                charges: vec![charge("late", JAN_1 + 10), charge("early", JAN_1)],
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(store.outbox().unwrap().len(), 2, "{name}");
        let first = store.next_outbox(JAN_1 + 100).unwrap().unwrap();
        assert_eq!(first.request.key, "early", "{name}");
        assert!(store.next_outbox(JAN_1 - 1).unwrap().is_none(), "{name}");
        let submitted = OutboxState::Submitted {
            first_at: JAN_1,
            asked: 1,
            pending: true,
            reference: Some("ch_1".into()),
            next_check: JAN_1 + 1_000,
        };
        store
            .commit(Batch {
                submitted: vec![StateChange {
                    key: "early".into(),
                    from: OutboxState::Queued,
                    to: submitted.clone(),
                }],
                ..Batch::default()
            })
            .unwrap();
        let entry = store.outbox_entry("early").unwrap().unwrap();
        assert_eq!(entry.state, submitted, "{name}");
        assert_eq!(
            store.next_outbox(JAN_1 + 100).unwrap().unwrap().request.key,
            "late",
            "{name}"
        );
        let record = ChargeRecord {
            at: JAN_1,
            settled_at: JAN_1 + 5,
            request: entry.request.clone(),
            outcome: ChargeOutcome::Succeeded,
            reference: Some("ch_1".into()),
            reason: None,
        };
        store
            .commit(Batch {
                settled: vec![record.clone()],
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(
            store.charges().unwrap(),
            std::slice::from_ref(&record),
            "{name}"
        );
        assert!(store.outbox_entry("early").unwrap().is_none(), "{name}");
        let twice = Batch {
            settled: vec![record],
            ..Batch::default()
        };
        assert_eq!(
            store.commit(twice),
            Err(StoreError::NotPending("early".into())),
            "{name}"
        );
        let unknown = Batch {
            submitted: vec![StateChange {
                key: "nobody".into(),
                from: OutboxState::Queued,
                to: OutboxState::Queued,
            }],
            ..Batch::default()
        };
        assert_eq!(
            store.commit(unknown),
            Err(StoreError::NotPending("nobody".into())),
            "{name}"
        );
        assert_eq!(store.pending_charges().unwrap().len(), 1, "{name}");
    }
}

/// Nothing lost: an outcome no policy handled yet waits in the inbox, due
/// first comes first, until it is marked done.
#[test]
fn the_inbox_keeps_outcomes_until_handled() {
    for (name, store) in stores("inbox") {
        let item = |due| InboxItem {
            account: id("u"),
            outcome: PaymentOutcome {
                key: "policy/k".into(),
                outcome: ChargeOutcome::Succeeded,
                amount: Decimal::TEN,
                purpose: Purpose::TopUp,
                payer: "u".into(),
                reference: None,
                reason: None,
            },
            due,
            attempts: 1,
        };
        store
            .commit(Batch {
                inbox: vec![item(JAN_1 + 60), item(JAN_1)],
                ..Batch::default()
            })
            .unwrap();
        let all = store.inbox().unwrap();
        assert_eq!(all.len(), 2, "{name}");
        let next = store.next_inbox(JAN_1 + 100).unwrap().unwrap();
        assert_eq!(next.item.due, JAN_1, "{name}");
        assert!(store.next_inbox(JAN_1 - 1).unwrap().is_none(), "{name}");
        store
            .commit(Batch {
                inbox_done: vec![next.id],
                ..Batch::default()
            })
            .unwrap();
        let left = store.inbox().unwrap();
        assert_eq!(left.len(), 1, "{name}");
        assert_eq!(left[0].item.due, JAN_1 + 60, "{name}");
    }
}

/// Nothing lost, nothing twice: timers come out in due order, then insertion
/// order; one asked for again with the same tag replaces the pending one.
#[test]
fn timers_fire_in_order_and_the_same_tag_replaces() {
    for (name, store) in stores("timers") {
        let timer = |due, tag| Timer {
            due,
            account: id("u"),
            tag,
        };
        store
            .commit(Batch {
                timers: vec![timer(20, 1), timer(10, 2), timer(10, 3), timer(5, u64::MAX)],
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(store.pending_timers(&id("u")).unwrap(), 4, "{name}");
        store
            .commit(Batch {
                timers: vec![timer(30, u64::MAX)],
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(store.pending_timers(&id("u")).unwrap(), 4, "{name}");
        assert!(store.timer_pending(&id("u"), u64::MAX).unwrap(), "{name}");
        let mut order = Vec::new();
        while let Some(next) = store.next_timer(100, &crate::test_lease()).unwrap() {
            order.push((next.timer.due, next.timer.tag));
            store
                .commit(Batch {
                    fired: vec![next.id],
                    ..Batch::default()
                })
                .unwrap();
        }
        assert_eq!(order, [(10, 2), (10, 3), (20, 1), (30, u64::MAX)], "{name}");
        assert_eq!(store.pending_timers(&id("u")).unwrap(), 0, "{name}");
    }
}

/// No minting: the ledger, the notices and the rated calls read back in the
/// order they were committed, exactly.
#[test]
fn ledger_notices_and_rated_calls_read_back_as_committed() {
    for (name, store) in stores("records") {
        let entry = |n: i64| LedgerEntry {
            at: JAN_1 + n,
            account: id("u"),
            cause: Cause::Call(format!("c{n}")),
            wallet: Decimal::new(-n, 4),
            included_basic_seconds: 0,
            included_premium_seconds: -n,
            basic_seconds: 0,
            premium_seconds: 0,
        };
        let notice = |n: i64| Notification {
            at: JAN_1 + n,
            account: id("u"),
            kind: "recharge_succeeded".into(),
            message: format!("notice {n}"),
        };
        for n in 0..5 {
            store
                .commit(Batch {
                    ledger: vec![entry(n)],
                    notifications: vec![notice(n)],
                    rated_calls: vec![rated(&format!("c{n}"), JAN_1 + n)],
                    ..Batch::default()
                })
                .unwrap();
        }
        assert_eq!(
            store.ledger().unwrap(),
            (0..5).map(entry).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            store.notifications().unwrap(),
            (0..5).map(notice).collect::<Vec<_>>(),
            "{name}"
        );
        assert!(store.call_rated(&id("u"), "c3").unwrap(), "{name}");
        assert!(!store.call_rated(&id("u"), "c9").unwrap(), "{name}");
        assert!(!store.call_rated(&id("v"), "c3").unwrap(), "{name}");
    }
}

/// Fill a durable store, close it, open it again with `open` and check it
/// kept everything (its schema version, read by `version`, is `latest`).
fn keeps_everything_across_a_reopen<S: Store>(
    open: impl Fn() -> S,
    version: impl Fn(&S) -> u32,
    latest: u32,
) {
    {
        let store = open();
        assert_eq!(version(&store), latest);
        opened(&store);
        let mut account = store.account(&id("u")).unwrap().unwrap();
        account.balance = Decimal::new(1234, 2);
        account.cards.push("visa".into());
        store
            .commit(Batch {
                updated: vec![account],
                charges: vec![charge("k1", JAN_1)],
                timers: vec![Timer {
                    due: JAN_1 + 5,
                    account: id("u"),
                    tag: 7,
                }],
                ..Batch::default()
            })
            .unwrap();
    }
    let store = open();
    assert_eq!(version(&store), latest);
    let account = store.account(&id("u")).unwrap().unwrap();
    assert_eq!(account.balance, Decimal::new(1234, 2));
    assert_eq!(account.cards, ["visa"]);
    assert_eq!(account.version(), 1);
    assert!(store.key_used("k1").unwrap());
    assert_eq!(store.outbox().unwrap()[0].request, charge("k1", JAN_1));
    assert_eq!(
        store
            .next_timer(JAN_1 + 5, &crate::test_lease())
            .unwrap()
            .unwrap()
            .timer
            .tag,
        7
    );
}

/// Nothing lost to a restart: what a SQLite file committed is there when it is
/// opened again, and its migrations are not run twice.
#[test]
fn a_sqlite_file_keeps_everything_across_a_reopen() {
    let path = sqlite_path("reopen");
    keeps_everything_across_a_reopen(
        || SqliteStore::open(&path).unwrap(),
        |store| store.schema_version().unwrap(),
        SqliteStore::SCHEMA_VERSION,
    );
}

/// Nothing lost to a restart: what PostgreSQL committed is there through a new
/// pool, and its migrations are not run twice.
#[test]
fn a_postgres_database_keeps_everything_across_a_reopen() {
    let Some(url) = postgres_url() else { return };
    PostgresStore::drop_schema(&url, "reopen").unwrap();
    keeps_everything_across_a_reopen(
        || PostgresStore::open_in_schema(&url, "reopen", 2).unwrap(),
        |store| store.schema_version().unwrap(),
        PostgresStore::SCHEMA_VERSION,
    );
}

/// Per-account serialisation across processes (no lost update, no double
/// charge): eight pools, as eight host nodes, commit on one account at the
/// version each read; exactly one wins and the rest get `Conflict`. Then they
/// race to queue one charge key: exactly one queues it.
#[test]
fn postgres_serialises_nodes_on_an_account_and_a_key() {
    let Some(url) = postgres_url() else { return };
    PostgresStore::drop_schema(&url, "race").unwrap();
    let nodes: Vec<Arc<PostgresStore>> = (0..8)
        .map(|_| Arc::new(PostgresStore::open_in_schema(&url, "race", 1).unwrap()))
        .collect();
    opened(&*nodes[0]);
    let read: Vec<Account> = nodes
        .iter()
        .map(|node| node.account(&id("u")).unwrap().unwrap())
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(nodes.len()));
    let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .zip(read)
            .enumerate()
            .map(|(index, (node, mut account))| {
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    account.balance = Decimal::from(index as i64 + 1);
                    barrier.wait();
                    node.commit(Batch {
                        updated: vec![account],
                        ..Batch::default()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..results.len())
        .filter(|&index| results[index].is_ok())
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for result in &results {
        if let Err(err) = result {
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        }
    }
    let account = nodes[0].account(&id("u")).unwrap().unwrap();
    assert_eq!(account.balance, Decimal::from(won[0] as i64 + 1));
    assert_eq!(account.version(), 1);

    let queued: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|node| {
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    barrier.wait();
                    node.commit(Batch {
                        charges: vec![charge("once", JAN_1)],
                        ..Batch::default()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(queued.iter().filter(|r| r.is_ok()).count(), 1, "{queued:?}");
    assert!(
        queued
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::DuplicateKey(_)))),
        "{queued:?}"
    );
    assert_eq!(nodes[3].outbox().unwrap().len(), 1);
    assert_eq!(
        nodes[5]
            .auto_recharges_on(&id("u"), recharge_host::utc_day(JAN_1))
            .unwrap(),
        1
    );
}

/// Read every page of `read` (`limit` rows after a cursor), each page's cursor
/// taken from the last row of the page before, until an empty page.
fn every_page<T, C: Clone>(
    start: C,
    limit: usize,
    read: impl Fn(C) -> Vec<T>,
    cursor: impl Fn(&T) -> C,
) -> Vec<Vec<T>> {
    let mut pages = Vec::new();
    let mut after = start;
    loop {
        let page = read(after.clone());
        assert!(page.len() <= limit, "a page longer than its limit");
        let Some(last) = page.last() else {
            return pages;
        };
        after = cursor(last);
        pages.push(page);
    }
}

/// Nothing lost, nothing twice: settled charges, notices and account ids read
/// by cursor, a page at a time, cover every row once, in the order of the
/// whole reads, ending in an empty page; account ids go in byte order.
#[test]
fn pages_cover_every_row_once_in_order() {
    for (name, store) in stores("pages") {
        let ids = ["b", "B", "a_1", "a-1", "a", "Z", "~", "0"];
        store
            .commit(Batch {
                created: ids.iter().map(|name| user(name)).collect(),
                ..Batch::default()
            })
            .unwrap();
        let keys: Vec<String> = (0..7).map(|n| format!("k{n}")).collect();
        store
            .commit(Batch {
                charges: keys.iter().map(|key| charge(key, JAN_1)).collect(),
                ..Batch::default()
            })
            .unwrap();
        // Settled one or two a batch, as the outbox settles them.
        for pair in keys.chunks(2) {
            let settled = pair
                .iter()
                .map(|key| ChargeRecord {
                    at: JAN_1,
                    settled_at: JAN_1 + 1,
                    request: charge(key, JAN_1),
                    outcome: ChargeOutcome::Succeeded,
                    reference: None,
                    reason: None,
                })
                .collect();
            let notifications = pair
                .iter()
                .map(|key| Notification {
                    at: JAN_1 + 1,
                    account: id("u"),
                    kind: "recharge_succeeded".into(),
                    message: key.clone(),
                })
                .collect();
            store
                .commit(Batch {
                    settled,
                    notifications,
                    ..Batch::default()
                })
                .unwrap();
        }

        let pages = every_page(
            0,
            3,
            |after| store.charges_after(after, 3).unwrap(),
            |(seq, _)| *seq,
        );
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 1],
            "{name}"
        );
        let rows: Vec<_> = pages.into_iter().flatten().collect();
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "{name}");
        let records: Vec<_> = rows.into_iter().map(|(_, record)| record).collect();
        assert_eq!(records, store.charges().unwrap(), "{name}");

        let notices: Vec<_> = every_page(
            0,
            2,
            |after| store.notifications_after(after, 2).unwrap(),
            |(seq, _)| *seq,
        )
        .into_iter()
        .flatten()
        .collect();
        assert!(notices.windows(2).all(|w| w[0].0 < w[1].0), "{name}");
        let notices: Vec<_> = notices.into_iter().map(|(_, notice)| notice).collect();
        assert_eq!(notices, store.notifications().unwrap(), "{name}");
        assert_eq!(notices.len(), 7, "{name}");

        let accounts: Vec<_> = every_page(
            None,
            3,
            |after| store.account_ids_after(after.as_ref(), 3).unwrap(),
            |last| Some(last.clone()),
        )
        .into_iter()
        .flatten()
        .collect();
        let mut bytes = ids.map(id).to_vec();
        bytes.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
        assert_eq!(accounts, bytes, "{name}");
        assert_eq!(store.account_ids().unwrap(), bytes, "{name}");
        assert!(
            store.charges_after(u64::MAX, 3).unwrap().is_empty(),
            "{name}"
        );
        assert!(
            store.account_ids_after(None, 0).unwrap().is_empty(),
            "{name}"
        );
    }
}

/// No double charge, nothing kept for ever: pruning forgets the call ids
/// rated and the keys used before the bound, and the auto-recharge counts of
/// earlier days, and nothing newer; the key of a charge still in the outbox
/// is kept, so it cannot be queued twice. Pruning again forgets nothing more.
#[test]
fn prune_forgets_only_what_is_older_than_the_bound() {
    for (name, store) in stores("prune") {
        let (old, new) = (JAN_1, JAN_1 + 40 * DAY);
        let settled = |key: &str| ChargeRecord {
            at: old,
            settled_at: old,
            request: charge(key, old),
            outcome: ChargeOutcome::Succeeded,
            reference: None,
            reason: None,
        };
        store
            .commit(Batch {
                charges: vec![charge("old", old), charge("old-queued", old)],
                rated_calls: vec![rated("c-old", old)],
                ..Batch::default()
            })
            .unwrap();
        store
            .commit(Batch {
                settled: vec![settled("old")],
                charges: vec![charge("new", new)],
                rated_calls: vec![rated("c-new", new)],
                ..Batch::default()
            })
            .unwrap();
        let before = JAN_1 + 36 * DAY;
        assert_eq!(
            store.prune(before).unwrap(),
            Pruned {
                rated_calls: 1,
                used_keys: 1,
                auto_recharge_days: 1,
            },
            "{name}"
        );
        assert!(!store.call_rated(&id("u"), "c-old").unwrap(), "{name}");
        assert!(store.call_rated(&id("u"), "c-new").unwrap(), "{name}");
        assert!(!store.key_used("old").unwrap(), "{name}");
        assert!(store.key_used("old-queued").unwrap(), "{name}");
        assert!(store.key_used("new").unwrap(), "{name}");
        assert_eq!(
            store.commit(Batch {
                charges: vec![charge("old-queued", new)],
                ..Batch::default()
            }),
            Err(StoreError::DuplicateKey("old-queued".into())),
            "{name}"
        );
        assert_eq!(
            store.auto_recharges_on(&id("u"), utc_day(old)).unwrap(),
            0,
            "{name}"
        );
        assert_eq!(
            store.auto_recharges_on(&id("u"), utc_day(new)).unwrap(),
            1,
            "{name}"
        );
        assert_eq!(store.prune(before).unwrap(), Pruned::default(), "{name}");
        assert_eq!(store.outbox().unwrap().len(), 2, "{name}");
        assert_eq!(store.charges().unwrap().len(), 1, "{name}");
    }
}

/// No minting: a usage record repeated inside the retention window (34 days
/// later) changes nothing, nor does applying retention inside it; once the
/// window has passed, retention (run by the scheduler as the clock moves)
/// forgets the call id.
#[test]
fn a_repeated_call_inside_the_retention_window_changes_nothing() {
    assert!(DEFAULT_RETENTION.as_millis() >= 35 * DAY as u128);
    let harness = harness();
    let user = harness.user("u");
    harness.platform.include_minutes(&user, 10, 0).unwrap();
    let usage = || {
        harness
            .platform
            .record_usage(&user, "call-1", 60, MinuteType::Basic)
            .unwrap()
    };
    usage();
    let (account, ledger) = (
        harness.platform.account(&user).unwrap(),
        harness.platform.ledger().unwrap(),
    );
    harness.platform.advance_to(JAN_1 + 34 * DAY).unwrap();
    assert_eq!(
        harness.platform.apply_retention().unwrap(),
        Pruned::default()
    );
    assert_eq!(usage(), Default::default());
    assert_eq!(harness.platform.account(&user).unwrap(), account);
    assert_eq!(harness.platform.ledger().unwrap(), ledger);
    assert!(harness.store.call_rated(&user, "call-1").unwrap());

    // The scheduler applies retention once a UTC day as the clock advances:
    // the call id is gone by the time the advance returns.
    harness.platform.advance_to(JAN_1 + 36 * DAY).unwrap();
    assert!(!harness.store.call_rated(&user, "call-1").unwrap());
    assert_eq!(
        harness.platform.apply_retention().unwrap(),
        Pruned::default()
    );
}

fn lease(holder: &str, now: i64, until: i64) -> Lease {
    Lease {
        holder: holder.into(),
        now,
        until,
    }
}

/// Nothing twice, nothing stuck: a timer claimed by one node is neither seen
/// nor claimed by another while the lease lives, but its holder (restarted
/// under its name) claims it again; once the lease lapses another node takes
/// it. A fired timer is gone, and firing it again is `NotPending` with the
/// whole batch rolled back.
#[test]
fn a_claimed_timer_is_leased_to_its_holder_until_the_lease_lapses() {
    for (name, store) in stores("claims") {
        store
            .commit(Batch {
                timers: vec![Timer {
                    due: 10,
                    account: id("u"),
                    tag: 1,
                }],
                ..Batch::default()
            })
            .unwrap();
        let a = lease("a", 1_000, 2_000);
        let b = lease("b", 1_500, 2_500);
        let claimed = store.claim_timer(100, &a).unwrap().unwrap();
        assert_eq!(claimed.timer.tag, 1, "{name}");
        assert_eq!(store.next_timer(100, &b).unwrap(), None, "{name}");
        assert_eq!(store.claim_timer(100, &b).unwrap(), None, "{name}");
        assert_eq!(
            store.claim_timer(100, &lease("a", 1_600, 2_600)).unwrap(),
            Some(claimed.clone()),
            "{name}"
        );
        assert_eq!(store.claim_timer(100, &b).unwrap(), None, "{name}");
        // a's lease, renewed until 2 600, lapses; b takes the timer.
        let later = lease("b", 2_601, 3_600);
        assert_eq!(
            store.next_timer(100, &later).unwrap(),
            Some(claimed.clone()),
            "{name}"
        );
        assert_eq!(
            store.claim_timer(100, &later).unwrap(),
            Some(claimed.clone()),
            "{name}"
        );
        assert_eq!(
            store.claim_timer(100, &lease("a", 2_700, 3_700)).unwrap(),
            None,
            "{name}"
        );
        store
            .commit(Batch {
                fired: vec![claimed.id],
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(
            store.next_timer(100, &crate::test_lease()).unwrap(),
            None,
            "{name}"
        );
        assert_eq!(store.pending_timers(&id("u")).unwrap(), 0, "{name}");
        let again = Batch {
            created: vec![user("x")],
            fired: vec![claimed.id],
            ..Batch::default()
        };
        assert!(
            matches!(store.commit(again), Err(StoreError::NotPending(_))),
            "{name}"
        );
        assert_eq!(store.account(&id("x")).unwrap(), None, "{name}");
    }
}

/// No double charge: two nodes that read a charge queued both try to move it
/// on; the first change wins, the second is `NotPending` and its batch
/// changes nothing, so one charge is never submitted twice.
#[test]
fn an_outbox_state_changes_only_from_the_state_read() {
    for (name, store) in stores("state_change") {
        store
            .commit(Batch {
                charges: vec![charge("k", JAN_1)],
                ..Batch::default()
            })
            .unwrap();
        let submitted_by = |node: &str| StateChange {
            key: "k".into(),
            from: OutboxState::Queued,
            to: OutboxState::Submitted {
                first_at: JAN_1,
                asked: 1,
                pending: false,
                reference: Some(format!("ch_{node}")),
                next_check: JAN_1 + 1_000,
            },
        };
        let first = submitted_by("a");
        store
            .commit(Batch {
                submitted: vec![first.clone()],
                ..Batch::default()
            })
            .unwrap();
        let second = Batch {
            created: vec![user("x")],
            submitted: vec![submitted_by("b")],
            ..Batch::default()
        };
        assert_eq!(
            store.commit(second),
            Err(StoreError::NotPending("k".into())),
            "{name}"
        );
        assert_eq!(
            store.outbox_entry("k").unwrap().unwrap().state,
            first.to,
            "{name}"
        );
        assert_eq!(store.account(&id("x")).unwrap(), None, "{name}");
    }
}

/// Nothing lost, nothing twice: a journal stream appends only at the end its
/// writer read (`Behind` otherwise, appending nothing), numbers its entries
/// from 1 and reads from any number on; streams are independent.
#[test]
fn a_journal_appends_only_at_the_end_its_writer_read() {
    for (name, store) in stores("journal") {
        let entries = |texts: &[&str]| texts.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        store.append("s", 0, &entries(&["a", "b"])).unwrap();
        assert_eq!(
            store.journal("s", 0).unwrap(),
            [(1, "a".to_owned()), (2, "b".to_owned())],
            "{name}"
        );
        assert_eq!(
            store.append("s", 1, &entries(&["stale"])),
            Err(StoreError::Behind("s".into())),
            "{name}"
        );
        assert_eq!(store.journal("s", 0).unwrap().len(), 2, "{name}");
        store.append("s", 2, &entries(&["c"])).unwrap();
        assert_eq!(
            store.journal("s", 1).unwrap(),
            [(2, "b".to_owned()), (3, "c".to_owned())],
            "{name}"
        );
        assert!(store.journal("s", 3).unwrap().is_empty(), "{name}");
        assert!(store.journal("t", 0).unwrap().is_empty(), "{name}");
        store.append("t", 0, &entries(&["x"])).unwrap();
        assert_eq!(
            store.journal("t", 0).unwrap(),
            [(1, "x".to_owned())],
            "{name}"
        );
        assert_eq!(store.journal("s", 0).unwrap().len(), 3, "{name}");
    }
}

/// Nothing lost: a component is kept under its SHA-256 and read back as
/// kept; keeping it again changes nothing; an unknown SHA-256 has none.
#[test]
fn components_are_kept_once_under_their_sha256() {
    for (name, store) in stores("components") {
        let bytes = b"\0asm component bytes".to_vec();
        let sha = sha256_hex(&bytes);
        store.put_component(&sha, &bytes).unwrap();
        store.put_component(&sha, b"other bytes").unwrap();
        assert_eq!(store.component(&sha).unwrap(), Some(bytes), "{name}");
        assert_eq!(
            store.component(&sha256_hex(b"unknown")).unwrap(),
            None,
            "{name}"
        );
    }
}

fn kept(key: &str, fingerprint: &str, status: u16, at: i64) -> KeptResponse {
    KeptResponse {
        key: key.into(),
        fingerprint: fingerprint.into(),
        status,
        body: format!("{{\"status\":{status}}}"),
        at,
    }
}

/// No double charge: of two requests with one idempotency key the first
/// writer wins; the second keeps nothing and reads the first's response. A
/// reservation is finished only by its own request, released only while in
/// progress, and a finished response is never overwritten.
#[test]
fn the_first_response_kept_under_a_key_wins() {
    for (name, store) in stores("responses") {
        assert_eq!(store.idempotent("k").unwrap(), None, "{name}");
        let reservation = kept("k", "f1", KeptResponse::IN_PROGRESS, JAN_1);
        assert!(store.keep_response(reservation.clone()).unwrap(), "{name}");
        assert!(
            !store.keep_response(kept("k", "f2", 200, JAN_1)).unwrap(),
            "{name}"
        );
        assert_eq!(store.idempotent("k").unwrap(), Some(reservation), "{name}");
        assert!(
            matches!(
                store.finish_response(kept("k", "other", 200, JAN_1 + 1)),
                Err(StoreError::NotPending(_))
            ),
            "{name}"
        );
        store
            .finish_response(kept("k", "f1", 201, JAN_1 + 1))
            .unwrap();
        store.release_response("k").unwrap();
        assert_eq!(
            store.idempotent("k").unwrap(),
            Some(kept("k", "f1", 201, JAN_1 + 1)),
            "{name}"
        );
        assert!(
            matches!(
                store.finish_response(kept("k", "f1", 200, JAN_1 + 2)),
                Err(StoreError::NotPending(_))
            ),
            "{name}"
        );
        assert!(
            store
                .keep_response(kept("r", "f", KeptResponse::IN_PROGRESS, JAN_1))
                .unwrap(),
            "{name}"
        );
        store.release_response("r").unwrap();
        assert_eq!(store.idempotent("r").unwrap(), None, "{name}");
        assert!(
            store.keep_response(kept("r", "g", 200, JAN_1)).unwrap(),
            "{name}"
        );
    }
}

/// Nothing kept for ever: pruning forgets the responses kept before the
/// bound, and nothing newer.
#[test]
fn prune_forgets_responses_older_than_the_bound() {
    for (name, store) in stores("responses_prune") {
        assert!(store.keep_response(kept("old", "f", 200, JAN_1)).unwrap());
        assert!(
            store
                .keep_response(kept("new", "f", 200, JAN_1 + DAY))
                .unwrap()
        );
        assert_eq!(store.prune_responses(JAN_1 + DAY).unwrap(), 1, "{name}");
        assert_eq!(store.idempotent("old").unwrap(), None, "{name}");
        assert!(store.idempotent("new").unwrap().is_some(), "{name}");
        assert_eq!(store.prune_responses(JAN_1 + DAY).unwrap(), 0, "{name}");
    }
}

/// Nothing lost to a restart: a response kept under a key is there when the
/// durable stores are opened again, and still wins over a later writer.
#[test]
fn a_kept_response_survives_a_reopen() {
    let path = sqlite_path("responses_reopen");
    type Open = Box<dyn Fn() -> Arc<dyn Store>>;
    let mut reopen: Vec<(&str, Open)> = vec![(
        "sqlite",
        Box::new(move || Arc::new(SqliteStore::open(&path).unwrap())),
    )];
    if let Some(url) = postgres_url() {
        PostgresStore::drop_schema(&url, "responses_reopen").unwrap();
        reopen.push((
            "postgres",
            Box::new(move || {
                Arc::new(PostgresStore::open_in_schema(&url, "responses_reopen", 1).unwrap())
            }),
        ));
    }
    for (name, open) in reopen {
        assert!(
            open().keep_response(kept("k", "f", 201, JAN_1)).unwrap(),
            "{name}"
        );
        let store = open();
        assert_eq!(
            store.idempotent("k").unwrap(),
            Some(kept("k", "f", 201, JAN_1)),
            "{name}"
        );
        assert!(
            !store.keep_response(kept("k", "g", 200, JAN_1)).unwrap(),
            "{name}"
        );
    }
}
