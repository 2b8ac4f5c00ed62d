//! One conformance suite for every store: the memory store, the SQLite file
//! and PostgreSQL run the same checks, and the durable ones keep what they
//! committed across a reopen.

use std::path::PathBuf;
use std::sync::Arc;

use recharge_host::model::{AccountKind, ChargeOutcome, PaymentOutcome, Purpose};
use recharge_host::{
    Account, Batch, Cause, ChargeRecord, ChargeRequest, InboxItem, LedgerEntry, MemoryStore,
    Notification, OutboxState, PostgresStore, SqliteStore, StateChange, Store, StoreError, Timer,
};
use rust_decimal::Decimal;

use super::{JAN_1, id, postgres_store, postgres_url, workspace};

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
                    rated_calls: vec![(id("u"), format!("c{n}"))],
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
