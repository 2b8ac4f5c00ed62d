//! Group commit: a commit that arrives while another one holds the file
//! queues its batch, and whichever committer gets the connection next applies
//! every queued batch in one immediate transaction, each in a savepoint of its
//! own, and flushes the file once for all of them. Durability is not
//! weakened: no committer hears that its batch committed before the flush that
//! carried it returned, and each batch still commits entirely or not at all (a
//! failing one is rolled back to its savepoint and gets its own error; the
//! others go on). With one committer at a time a group is one batch, committed
//! as before, without a savepoint.

use std::sync::{Mutex, MutexGuard, mpsc};

use rusqlite::{Connection, TransactionBehavior};

use crate::store::{Batch, StoreError};

use super::{apply, backend};

/// A batch waiting for a committer, and where its result goes.
struct Waiting {
    batch: Batch,
    done: mpsc::SyncSender<Result<(), StoreError>>,
}

/// The batches queued for the next commit.
#[derive(Default)]
pub(super) struct Queue {
    waiting: Mutex<Vec<Waiting>>,
}

impl Queue {
    fn waiting(&self) -> MutexGuard<'_, Vec<Waiting>> {
        // A committer that panicked left a whole list behind: go on with it.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether no batch waits for a commit.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting().is_empty()
    }

    /// Commit `batch` on `connection`, with whatever batches other threads
    /// queued meanwhile, and return once it is on disk (or failed).
    pub(super) fn commit(
        &self,
        connection: &Mutex<Connection>,
        batch: Batch,
    ) -> Result<(), StoreError> {
        let (done, result) = mpsc::sync_channel(1);
        self.waiting().push(Waiting { batch, done });
        let mut connection = super::writer(connection);
        // The committer before us may have taken this batch with its group:
        // it answered before it let the connection go.
        if let Ok(committed) = result.try_recv() {
            return committed;
        }
        let group = std::mem::take(&mut *self.waiting());
        commit_group(&mut connection, group);
        drop(connection);
        result.recv().unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "sqlite: a batch left unanswered".into(),
            ))
        })
    }
}

/// Commit `group` in one transaction and answer each of its committers.
fn commit_group(connection: &mut Connection, mut group: Vec<Waiting>) {
    let results = run_group(connection, &mut group);
    for (waiting, result) in group.into_iter().zip(results) {
        // A committer that stopped waiting has nothing to hear.
        let _ = waiting.done.send(result);
    }
}

/// Each batch's result, in the group's order, once the transaction that
/// carries them has committed or failed.
fn run_group(connection: &mut Connection, group: &mut [Waiting]) -> Vec<Result<(), StoreError>> {
    let count = group.len();
    let all_failed = |err: rusqlite::Error| (0..count).map(|_| Err(backend(&err))).collect();
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => return all_failed(err),
    };
    if let [only] = group {
        // On an error the transaction is dropped: rolled back, nothing applied.
        let batch = std::mem::take(&mut only.batch);
        return vec![apply(&tx, batch).and_then(|()| tx.commit().map_err(backend))];
    }
    let mut results = Vec::with_capacity(count);
    for waiting in group.iter_mut() {
        match in_savepoint(&tx, std::mem::take(&mut waiting.batch)) {
            Ok(result) => results.push(result),
            // The transaction cannot be trusted any more: dropped, it rolls
            // back every batch of the group.
            Err(err) => return all_failed(err),
        }
    }
    match tx.commit() {
        Ok(()) => results,
        // Nothing of the group is on disk: a batch that applied fails with
        // the commit; one that did not keeps its own error.
        Err(err) => results
            .into_iter()
            .map(|result| result.and(Err(backend(&err))))
            .collect(),
    }
}

/// Apply `batch` in a savepoint of the open transaction: kept if it applies,
/// rolled back to the savepoint (nothing of it left) if it fails, and its
/// result returned. An error of the savepoint itself (SQLite may have rolled
/// the whole transaction back) is the outer one: the group must not commit.
fn in_savepoint(tx: &Connection, batch: Batch) -> Result<Result<(), StoreError>, rusqlite::Error> {
    tx.execute_batch("SAVEPOINT batch")?;
    let result = apply(tx, batch);
    match result {
        Ok(()) => tx.execute_batch("RELEASE batch")?,
        Err(_) => tx.execute_batch("ROLLBACK TO batch; RELEASE batch")?,
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use recharge_policy_sdk::model::AccountKind;
    use rust_decimal::Decimal;

    use super::super::SqliteStore;
    use super::super::tests::{remove, scratch};
    use crate::account::{Account, AccountId};
    use crate::store::{Batch, RatedCall, Store, StoreError};

    fn id(name: &str) -> AccountId {
        AccountId(name.into())
    }

    fn rated(account: &str, call: &str) -> RatedCall {
        RatedCall {
            account: id(account),
            call: call.into(),
            at: 0,
        }
    }

    /// Nothing half done, nothing lost: batches queued while the file is
    /// held commit as one group, the ones that apply all there and each
    /// failing one (a stale account, an account that exists) rolled back on
    /// its own with its own error, none of its rows left.
    #[test]
    fn a_group_keeps_what_applies_and_only_that() {
        let path = scratch("group");
        let store = SqliteStore::open(&path).unwrap();
        let names: Vec<String> = (0..8).map(|n| format!("a{n}")).collect();
        let accounts: Vec<Account> = names
            .iter()
            .chain(["stale".to_owned()].iter())
            .map(|name| Account::new(id(name), AccountKind::User, None))
            .collect();
        store
            .commit(Batch {
                created: accounts.clone(),
                ..Batch::default()
            })
            .unwrap();
        // Read at version 0, then moved on: the batch below is stale.
        let stale = store.account(&id("stale")).unwrap().unwrap();
        let mut moved = stale.clone();
        moved.balance = Decimal::ONE;
        store
            .commit(Batch {
                updated: vec![moved],
                ..Batch::default()
            })
            .unwrap();

        let mut batches: Vec<Batch> = names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let mut account = store.account(&id(name)).unwrap().unwrap();
                account.balance = Decimal::from(n as i64 + 1);
                Batch {
                    updated: vec![account],
                    rated_calls: vec![rated(name, "call")],
                    ..Batch::default()
                }
            })
            .collect();
        batches.push(Batch {
            updated: vec![stale],
            rated_calls: vec![rated("stale", "call")],
            ..Batch::default()
        });
        batches.push(Batch {
            created: vec![Account::new(id("a0"), AccountKind::User, None)],
            rated_calls: vec![rated("a0", "twice")],
            ..Batch::default()
        });
        let count = batches.len();

        let shared = &store;
        let held = store.connection.lock().unwrap();
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .map(|batch| scope.spawn(move || shared.commit(batch)))
                .collect();
            // Every batch queued behind the held file: one group.
            while shared.queue.waiting().len() < count {
                std::thread::yield_now();
            }
            drop(held);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        for (n, name) in names.iter().enumerate() {
            assert_eq!(results[n], Ok(()), "{name}");
            let account = store.account(&id(name)).unwrap().unwrap();
            assert_eq!(account.balance, Decimal::from(n as i64 + 1), "{name}");
            assert_eq!(account.version(), 1, "{name}");
            assert!(store.call_rated(&id(name), "call").unwrap(), "{name}");
        }
        assert!(matches!(results[8], Err(StoreError::Conflict(_))));
        assert!(matches!(results[9], Err(StoreError::Exists(_))));
        assert!(!store.call_rated(&id("stale"), "call").unwrap());
        assert!(!store.call_rated(&id("a0"), "twice").unwrap());
        let stale = store.account(&id("stale")).unwrap().unwrap();
        assert_eq!((stale.balance, stale.version()), (Decimal::ONE, 1));
        assert!(store.queue.waiting().is_empty());
        drop(store);
        remove(&path);
    }
}
