//! [`SqliteStore`]: the embedded durable store, one SQLite file (bundled
//! SQLite through rusqlite) in WAL mode. Every [`Batch`] commits entirely or
//! not at all, synchronous to disk before its commit returns, so a `kill -9`
//! at any point loses no committed event; batches committed at once from
//! several threads share one transaction and one flush (the `group` module),
//! and reads made while a commit holds the file go to read-only connections
//! (`readers`). Versioned migrations run at open.
//!
//! Records are kept as JSON (money as decimal strings) beside the columns that
//! are looked up: account ids, idempotency keys, call ids, due times.

mod group;
mod readers;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use recharge_policy_sdk::model::{Purpose, Timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::account::{Account, AccountId};
use crate::codec::{decode, encode, tag_column};
use crate::ledger::LedgerEntry;
use crate::store::{
    Batch, ChargeRecord, InboxItem, KeptResponse, Lease, Notification, OutboxEntry, OutboxState,
    Pruned, Store, StoreError, StoredInbox, StoredTimer, Timer, utc_day,
};

/// The condition on a timer row that a lease (`?2` holder, `?3` now) may take it.
const FREE_TIMER: &str = "(lease_holder IS NULL OR lease_holder = ?2 OR lease_until < ?3)";

/// The schema, one migration a step; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE used_keys (key TEXT PRIMARY KEY);
    CREATE TABLE rated_calls (
        account TEXT NOT NULL,
        call TEXT NOT NULL,
        PRIMARY KEY (account, call)
    );
    CREATE TABLE auto_recharges (
        payer TEXT NOT NULL,
        day INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (payer, day)
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        entry TEXT NOT NULL,
        due INTEGER NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (due, seq);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item TEXT NOT NULL,
        due INTEGER NOT NULL
    );
    CREATE INDEX inbox_due ON inbox (due, id);
    CREATE TABLE timers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        due INTEGER NOT NULL,
        account TEXT NOT NULL,
        tag INTEGER NOT NULL,
        UNIQUE (account, tag)
    );
    CREATE INDEX timers_due ON timers (due, id);
    CREATE TABLE charges (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
    CREATE TABLE notifications (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
    CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX ledger_account ON ledger (account, seq);
"#,
    r#"
    ALTER TABLE timers ADD COLUMN lease_holder TEXT;
    ALTER TABLE timers ADD COLUMN lease_until INTEGER;
    CREATE TABLE journal (
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
    );
    CREATE TABLE components (sha256 TEXT PRIMARY KEY, bytes BLOB NOT NULL);
"#,
    // Retention: when each call id was rated and each key used. Rows kept
    // from before count from the migration, so they live a whole window.
    r#"
    ALTER TABLE rated_calls ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE used_keys ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
    UPDATE rated_calls SET at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    UPDATE used_keys SET at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    CREATE INDEX rated_calls_at ON rated_calls (at);
    CREATE INDEX used_keys_at ON used_keys (at);
    CREATE INDEX auto_recharges_day ON auto_recharges (day);
"#,
    // The HTTP service's responses kept under idempotency keys (status 0: a
    // reservation, the request still running).
    r#"
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX idempotency_at ON idempotency (at);
"#,
];

/// The store in one SQLite file.
pub struct SqliteStore {
    connection: Mutex<Connection>,
    /// Batches waiting for the next commit (group commit).
    queue: group::Queue,
    /// Connections for the reads.
    readers: readers::Readers,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sqlite: {error}"))
}

impl SqliteStore {
    /// The schema version this host migrates a file to.
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// Open (or create) the store at `path`, applying the migrations it lacks.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let connection = Connection::open(path).map_err(backend)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        // Every commit reaches the disk before it returns.
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        migrate(&connection)?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
            queue: group::Queue::default(),
            readers: readers::Readers::of(path),
        })
    }

    /// How many migrations the file has had.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(|connection| {
            connection
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(backend)
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = writer(&self.connection);
        outside_a_transaction(&connection)?;
        work(&mut connection)
    }

    /// Run `work`, which only reads: on the writer's connection if it is
    /// free (its page cache is the warmest), else on a reader, so that reads
    /// do not wait for a commit's flush.
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let free = match self.connection.try_lock() {
            Ok(writer) => Some(writer),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        // (A writer stuck in a transaction would show its uncommitted
        // writes: a reader reads what was committed.)
        if let Some(writer) = free.filter(|writer| self.queue.is_empty() && writer.is_autocommit())
        {
            return work(&writer);
        }
        let reader = self.readers.take()?;
        let read = work(&reader);
        self.readers.give_back(reader);
        read
    }

    fn records<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(backend)?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(backend)?;
            rows.map(|row| decode(&row.map_err(backend)?)).collect()
        })
    }

    fn exists(&self, sql: &str, params: impl rusqlite::Params) -> Result<bool, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(backend)?;
            statement.exists(params).map_err(backend)
        })
    }
}

/// The writer's connection, locked. A thread that panicked while holding it
/// dropped its transaction as it unwound, so the store goes on rather than
/// failing every call after; and a transaction whose rollback failed (an I/O
/// error) is rolled back now, so that no later write runs inside it.
fn writer(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    let writer = connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !writer.is_autocommit() {
        // Should this fail too, `outside_a_transaction` refuses the call, and
        // a commit cannot begin its transaction: nothing is written.
        let _ = writer.execute_batch("ROLLBACK");
    }
    writer
}

/// Refuse to use a connection still inside a transaction it could not roll
/// back: what ran there would never be committed.
fn outside_a_transaction(connection: &Connection) -> Result<(), StoreError> {
    if connection.is_autocommit() {
        Ok(())
    } else {
        Err(StoreError::Backend(
            "sqlite: the connection is stuck in a transaction it cannot roll back".into(),
        ))
    }
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let done: u32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend)?;
    let done = done as usize;
    if done > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "sqlite: the file has schema version {done}, newer than this host's {}",
            MIGRATIONS.len()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        let version = index + 1;
        connection
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {version}; COMMIT;"
            ))
            .map_err(backend)?;
    }
    Ok(())
}

/// Apply a batch inside `tx`, checking as the memory store does: accounts to
/// create must not exist, updated accounts must be at the version read, keys
/// must be new, charges to settle or update must be in the outbox.
fn apply(tx: &Connection, batch: Batch) -> Result<(), StoreError> {
    for account in batch.created {
        let exists = tx
            .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
            .and_then(|mut statement| statement.exists([account.id.as_str()]))
            .map_err(backend)?;
        if exists {
            return Err(StoreError::Exists(account.id));
        }
        let record = encode(&account)?;
        tx.prepare_cached("INSERT INTO accounts (id, version, record) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| {
                statement.execute(params![account.id.as_str(), account.version as i64, record])
            })
            .map_err(backend)?;
    }
    for mut account in batch.updated {
        let stored: Option<i64> = tx
            .prepare_cached("SELECT version FROM accounts WHERE id = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([account.id.as_str()], |row| row.get(0))
                    .optional()
            })
            .map_err(backend)?;
        if stored != Some(account.version as i64) {
            return Err(StoreError::Conflict(account.id));
        }
        account.version += 1;
        let record = encode(&account)?;
        tx.prepare_cached("UPDATE accounts SET version = ?2, record = ?3 WHERE id = ?1")
            .and_then(|mut statement| {
                statement.execute(params![account.id.as_str(), account.version as i64, record])
            })
            .map_err(backend)?;
    }
    for charge in batch.charges {
        let inserted = tx
            .prepare_cached("INSERT OR IGNORE INTO used_keys (key, at) VALUES (?1, ?2)")
            .and_then(|mut statement| {
                statement.execute(params![charge.key.as_str(), charge.requested_at])
            })
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::DuplicateKey(charge.key));
        }
        if charge.purpose == Purpose::AutoRecharge {
            tx.prepare_cached(
                "INSERT INTO auto_recharges (payer, day, count) VALUES (?1, ?2, 1)
                 ON CONFLICT (payer, day) DO UPDATE SET count = count + 1",
            )
            .and_then(|mut statement| {
                statement.execute(params![charge.payer.as_str(), utc_day(charge.requested_at)])
            })
            .map_err(backend)?;
        }
        let due = charge.requested_at;
        let key = charge.key.clone();
        let entry = encode(&OutboxEntry {
            request: charge,
            state: OutboxState::Queued,
        })?;
        tx.prepare_cached("INSERT INTO outbox (key, entry, due) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| statement.execute(params![key, entry, due]))
            .map_err(backend)?;
    }
    for change in batch.submitted {
        let key = change.key;
        let Some(mut entry) = outbox_entry(tx, &key)?.filter(|entry| entry.state == change.from)
        else {
            return Err(StoreError::NotPending(key));
        };
        entry.state = change.to;
        let due = entry.due();
        let entry = encode(&entry)?;
        tx.prepare_cached("UPDATE outbox SET entry = ?2, due = ?3 WHERE key = ?1")
            .and_then(|mut statement| statement.execute(params![key, entry, due]))
            .map_err(backend)?;
    }
    for record in batch.settled {
        let removed = tx
            .prepare_cached("DELETE FROM outbox WHERE key = ?1")
            .and_then(|mut statement| statement.execute([record.request.key.as_str()]))
            .map_err(backend)?;
        if removed == 0 {
            return Err(StoreError::NotPending(record.request.key));
        }
        insert_record(tx, "INSERT INTO charges (record) VALUES (?1)", &record)?;
    }
    for id in batch.inbox_done {
        let removed = tx
            .prepare_cached("DELETE FROM inbox WHERE id = ?1")
            .and_then(|mut statement| statement.execute([id as i64]))
            .map_err(backend)?;
        if removed == 0 {
            return Err(StoreError::NotPending(format!("inbox item {id}")));
        }
    }
    for item in batch.inbox {
        let due = item.due;
        let item = encode(&item)?;
        tx.prepare_cached("INSERT INTO inbox (item, due) VALUES (?1, ?2)")
            .and_then(|mut statement| statement.execute(params![item, due]))
            .map_err(backend)?;
    }
    for id in batch.fired {
        let removed = tx
            .prepare_cached("DELETE FROM timers WHERE id = ?1")
            .and_then(|mut statement| statement.execute([id as i64]))
            .map_err(backend)?;
        if removed == 0 {
            return Err(StoreError::NotPending(format!("timer {id}")));
        }
    }
    for timer in batch.timers {
        // A wake-up asked for again with the same tag replaces the pending one.
        tx.prepare_cached("DELETE FROM timers WHERE account = ?1 AND tag = ?2")
            .and_then(|mut statement| {
                statement.execute(params![timer.account.as_str(), tag_column(timer.tag)])
            })
            .map_err(backend)?;
        tx.prepare_cached("INSERT INTO timers (due, account, tag) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| {
                statement.execute(params![
                    timer.due,
                    timer.account.as_str(),
                    tag_column(timer.tag)
                ])
            })
            .map_err(backend)?;
    }
    for notice in &batch.notifications {
        insert_record(tx, "INSERT INTO notifications (record) VALUES (?1)", notice)?;
    }
    for rated in batch.rated_calls {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO rated_calls (account, call, at) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut statement| {
            statement.execute(params![rated.account.as_str(), rated.call, rated.at])
        })
        .map_err(backend)?;
    }
    for entry in &batch.ledger {
        let record = encode(entry)?;
        tx.prepare_cached("INSERT INTO ledger (account, record) VALUES (?1, ?2)")
            .and_then(|mut statement| statement.execute(params![entry.account.as_str(), record]))
            .map_err(backend)?;
    }
    Ok(())
}

fn insert_record(tx: &Connection, sql: &str, record: &impl Serialize) -> Result<(), StoreError> {
    let record = encode(record)?;
    tx.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([record]))
        .map_err(backend)?;
    Ok(())
}

fn outbox_entry(connection: &Connection, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
    let text: Option<String> = connection
        .prepare_cached("SELECT entry FROM outbox WHERE key = ?1")
        .and_then(|mut statement| statement.query_row([key], |row| row.get(0)).optional())
        .map_err(backend)?;
    text.map(|text| decode(&text)).transpose()
}

impl Store for SqliteStore {
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.read(|connection| {
            let text: Option<String> = connection
                .prepare_cached("SELECT record FROM accounts WHERE id = ?1")
                .and_then(|mut statement| {
                    statement
                        .query_row([id.as_str()], |row| row.get(0))
                        .optional()
                })
                .map_err(backend)?;
            text.map(|text| decode(&text)).transpose()
        })
    }

    fn account_ids(&self) -> Result<Vec<AccountId>, StoreError> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT id FROM accounts ORDER BY id")
                .map_err(backend)?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(backend)?;
            rows.map(|row| row.map(AccountId).map_err(backend))
                .collect()
        })
    }

    fn account_ids_after(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|connection| {
            let ids = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
                let mut statement = connection.prepare_cached(sql).map_err(backend)?;
                let rows = statement
                    .query_map(params, |row| row.get::<_, String>(0))
                    .map_err(backend)?;
                rows.map(|row| row.map(AccountId).map_err(backend))
                    .collect()
            };
            match after {
                Some(after) => ids(
                    "SELECT id FROM accounts WHERE id > ?1 ORDER BY id LIMIT ?2",
                    params![after.as_str(), limit],
                ),
                None => ids(
                    "SELECT id FROM accounts ORDER BY id LIMIT ?1",
                    params![limit],
                ),
            }
        })
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.queue.commit(&self.connection, batch)
    }

    fn key_used(&self, key: &str) -> Result<bool, StoreError> {
        self.exists("SELECT 1 FROM used_keys WHERE key = ?1", [key])
    }

    fn call_rated(&self, account: &AccountId, call: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM rated_calls WHERE account = ?1 AND call = ?2",
            params![account.as_str(), call],
        )
    }

    fn auto_recharges_on(&self, payer: &AccountId, day: i64) -> Result<u32, StoreError> {
        self.read(|connection| {
            let count: Option<i64> = connection
                .prepare_cached("SELECT count FROM auto_recharges WHERE payer = ?1 AND day = ?2")
                .and_then(|mut statement| {
                    statement
                        .query_row(params![payer.as_str(), day], |row| row.get(0))
                        .optional()
                })
                .map_err(backend)?;
            Ok(u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX))
        })
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.records("SELECT entry FROM outbox ORDER BY seq")
    }

    fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        self.read(|connection| outbox_entry(connection, key))
    }

    fn next_outbox(&self, until: Timestamp) -> Result<Option<OutboxEntry>, StoreError> {
        self.read(|connection| {
            let text: Option<String> = connection
                .prepare_cached(
                    "SELECT entry FROM outbox WHERE due <= ?1 ORDER BY due, seq LIMIT 1",
                )
                .and_then(|mut statement| statement.query_row([until], |row| row.get(0)).optional())
                .map_err(backend)?;
            text.map(|text| decode(&text)).transpose()
        })
    }

    fn inbox(&self) -> Result<Vec<StoredInbox>, StoreError> {
        self.inbox_where(
            "SELECT id, item FROM inbox WHERE due <= ?1 ORDER BY id",
            i64::MAX,
        )
    }

    fn next_inbox(&self, until: Timestamp) -> Result<Option<StoredInbox>, StoreError> {
        Ok(self
            .inbox_where(
                "SELECT id, item FROM inbox WHERE due <= ?1 ORDER BY due, id LIMIT 1",
                until,
            )?
            .into_iter()
            .next())
    }

    fn pending_timers(&self, account: &AccountId) -> Result<usize, StoreError> {
        self.read(|connection| {
            let count: i64 = connection
                .prepare_cached("SELECT COUNT(*) FROM timers WHERE account = ?1")
                .and_then(|mut statement| statement.query_row([account.as_str()], |row| row.get(0)))
                .map_err(backend)?;
            Ok(usize::try_from(count).unwrap_or(0))
        })
    }

    fn timer_pending(&self, account: &AccountId, tag: u64) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM timers WHERE account = ?1 AND tag = ?2",
            params![account.as_str(), tag_column(tag)],
        )
    }

    fn next_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        self.read(|connection| first_free_timer(connection, until, lease))
    }

    fn claim_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        self.with(|connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let claimed = first_free_timer(&tx, until, lease)?;
            if let Some(stored) = &claimed {
                tx.prepare_cached(
                    "UPDATE timers SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1",
                )
                .and_then(|mut statement| {
                    statement.execute(params![stored.id as i64, lease.holder, lease.until])
                })
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(claimed)
        })
    }

    fn journal(&self, stream: &str, after: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT seq, entry FROM journal WHERE stream = ?1 AND seq > ?2 ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map(params![stream, after as i64], |row| {
                    Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
                })
                .map_err(backend)?;
            rows.map(|row| row.map_err(backend)).collect()
        })
    }

    fn append(&self, stream: &str, after: u64, entries: &[String]) -> Result<(), StoreError> {
        self.with(|connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let last: i64 = tx
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM journal WHERE stream = ?1")
                .and_then(|mut statement| statement.query_row([stream], |row| row.get(0)))
                .map_err(backend)?;
            if last as u64 != after {
                return Err(StoreError::Behind(stream.to_owned()));
            }
            for (offset, entry) in entries.iter().enumerate() {
                tx.prepare_cached("INSERT INTO journal (stream, seq, entry) VALUES (?1, ?2, ?3)")
                    .and_then(|mut statement| {
                        statement.execute(params![stream, last + 1 + offset as i64, entry])
                    })
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
    }

    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached("INSERT OR IGNORE INTO components (sha256, bytes) VALUES (?1, ?2)")
                .and_then(|mut statement| statement.execute(params![sha256, bytes]))
                .map_err(backend)?;
            Ok(())
        })
    }

    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|connection| {
            connection
                .prepare_cached("SELECT bytes FROM components WHERE sha256 = ?1")
                .and_then(|mut statement| {
                    statement.query_row([sha256], |row| row.get(0)).optional()
                })
                .map_err(backend)
        })
    }

    fn charges(&self) -> Result<Vec<ChargeRecord>, StoreError> {
        self.records("SELECT record FROM charges ORDER BY seq")
    }

    fn charges_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ChargeRecord)>, StoreError> {
        self.numbered(
            "SELECT seq, record FROM charges WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            after,
            limit,
        )
    }

    fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        self.records("SELECT record FROM notifications ORDER BY seq")
    }

    fn notifications_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Notification)>, StoreError> {
        self.numbered(
            "SELECT seq, record FROM notifications WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            after,
            limit,
        )
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.records("SELECT record FROM ledger ORDER BY seq")
    }

    fn prune(&self, before: Timestamp) -> Result<Pruned, StoreError> {
        self.with(|connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let delete = |sql: &str, bound: i64| {
                tx.prepare_cached(sql)
                    .and_then(|mut statement| statement.execute([bound]))
                    .map(|rows| rows as u64)
                    .map_err(backend)
            };
            let pruned = Pruned {
                rated_calls: delete("DELETE FROM rated_calls WHERE at < ?1", before)?,
                used_keys: delete(
                    "DELETE FROM used_keys WHERE at < ?1
                     AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.key = used_keys.key)",
                    before,
                )?,
                auto_recharge_days: delete(
                    "DELETE FROM auto_recharges WHERE day < ?1",
                    utc_day(before),
                )?,
            };
            tx.commit().map_err(backend)?;
            Ok(pruned)
        })
    }

    fn idempotent(&self, key: &str) -> Result<Option<KeptResponse>, StoreError> {
        self.read(|connection| {
            connection
                .prepare_cached(
                    "SELECT key, fingerprint, status, body, at FROM idempotency WHERE key = ?1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([key], |row| {
                            Ok(KeptResponse {
                                key: row.get(0)?,
                                fingerprint: row.get(1)?,
                                status: row.get(2)?,
                                body: row.get(3)?,
                                at: row.get(4)?,
                            })
                        })
                        .optional()
                })
                .map_err(backend)
        })
    }

    fn keep_response(&self, response: KeptResponse) -> Result<bool, StoreError> {
        self.with(|connection| {
            let inserted = connection
                .prepare_cached(
                    "INSERT OR IGNORE INTO idempotency (key, fingerprint, status, body, at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        response.key,
                        response.fingerprint,
                        response.status,
                        response.body,
                        response.at
                    ])
                })
                .map_err(backend)?;
            Ok(inserted == 1)
        })
    }

    fn finish_response(&self, response: KeptResponse) -> Result<(), StoreError> {
        self.with(|connection| {
            let updated = connection
                .prepare_cached(
                    "UPDATE idempotency SET status = ?3, body = ?4, at = ?5
                     WHERE key = ?1 AND fingerprint = ?2 AND status = 0",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        response.key,
                        response.fingerprint,
                        response.status,
                        response.body,
                        response.at
                    ])
                })
                .map_err(backend)?;
            if updated == 0 {
                return Err(StoreError::NotPending(format!(
                    "idempotency key {}",
                    response.key
                )));
            }
            Ok(())
        })
    }

    fn release_response(&self, key: &str) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached("DELETE FROM idempotency WHERE key = ?1 AND status = 0")
                .and_then(|mut statement| statement.execute([key]))
                .map_err(backend)?;
            Ok(())
        })
    }

    fn prune_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached("DELETE FROM idempotency WHERE at < ?1")
                .and_then(|mut statement| statement.execute([before]))
                .map(|rows| rows as u64)
                .map_err(backend)
        })
    }
}

impl SqliteStore {
    /// The records `sql` selects (`seq, record`, after `?1`, up to `?2`),
    /// with their numbers.
    fn numbered<T: DeserializeOwned>(
        &self,
        sql: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(backend)?;
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = statement
                .query_map(params![after, limit], |row| {
                    Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            rows.map(|row| {
                let (seq, text) = row.map_err(backend)?;
                Ok((seq, decode(&text)?))
            })
            .collect()
        })
    }

    /// The inbox items `sql` selects (`id, item`, due by `?1`).
    fn inbox_where(&self, sql: &str, until: Timestamp) -> Result<Vec<StoredInbox>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(backend)?;
            let rows = statement.query_map([until], inbox_row).map_err(backend)?;
            rows.map(|row| {
                let (id, text) = row.map_err(backend)?;
                Ok(StoredInbox {
                    id,
                    item: decode::<InboxItem>(&text)?,
                })
            })
            .collect()
        })
    }
}

/// The earliest timer due by `until` that `lease` may take.
fn first_free_timer(
    connection: &Connection,
    until: Timestamp,
    lease: &Lease,
) -> Result<Option<StoredTimer>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT id, due, account, tag FROM timers WHERE due <= ?1 AND {FREE_TIMER}
             ORDER BY due, id LIMIT 1"
        ))
        .and_then(|mut statement| {
            statement
                .query_row(params![until, lease.holder, lease.now], |row| {
                    Ok(StoredTimer {
                        id: row.get::<_, i64>(0)? as u64,
                        timer: Timer {
                            due: row.get(1)?,
                            account: AccountId(row.get(2)?),
                            tag: row.get::<_, i64>(3)? as u64,
                        },
                    })
                })
                .optional()
        })
        .map_err(backend)
}

fn inbox_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, String)> {
    Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A file of its own for the test `name`, none there yet (nor its WAL).
    pub(super) fn scratch(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("recharge-{name}-{}.db", std::process::id()));
        remove(&path);
        path
    }

    /// The file and its WAL files, gone.
    pub(super) fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// Nothing twice across an upgrade: the call ids rated and keys used in a
    /// file from before retention count from the migration, so a prune right
    /// after it keeps them for a whole window.
    #[test]
    fn rows_from_before_retention_count_from_the_migration() {
        let path = scratch("migration");
        let connection = Connection::open(&path).unwrap();
        for (index, migration) in MIGRATIONS[..2].iter().enumerate() {
            let version = index + 1;
            connection
                .execute_batch(&format!("{migration}; PRAGMA user_version = {version};"))
                .unwrap();
        }
        connection
            .execute_batch(
                "INSERT INTO rated_calls (account, call) VALUES ('u', 'c1');
                 INSERT INTO used_keys (key) VALUES ('k1');",
            )
            .unwrap();
        drop(connection);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
        let a_day_ago = chrono::Utc::now().timestamp_millis() - 86_400_000;
        assert_eq!(store.prune(a_day_ago).unwrap(), Pruned::default());
        assert!(store.call_rated(&AccountId("u".into()), "c1").unwrap());
        assert!(store.key_used("k1").unwrap());
        drop(store);
        remove(&path);
    }

    /// Nothing stuck behind a flush: while the writer's connection is held
    /// (as during a commit), reads go to a reader and see what was committed
    /// last.
    #[test]
    fn reads_go_on_while_the_writer_is_held() {
        let path = scratch("readers");
        let store = SqliteStore::open(&path).unwrap();
        let id = AccountId("u".into());
        let mut account = Account::new(
            id.clone(),
            recharge_policy_sdk::model::AccountKind::User,
            None,
        );
        store
            .commit(Batch {
                created: vec![account.clone()],
                ..Batch::default()
            })
            .unwrap();
        account.balance = rust_decimal::Decimal::TEN;
        store
            .commit(Batch {
                updated: vec![account],
                ..Batch::default()
            })
            .unwrap();
        let on_a_reader = || {
            let held = store.connection.lock().unwrap();
            let read =
                std::thread::scope(|scope| scope.spawn(|| store.account(&id)).join().unwrap());
            drop(held);
            read.unwrap().unwrap()
        };
        let read = on_a_reader();
        assert_eq!(
            (read.balance, read.version()),
            (rust_decimal::Decimal::TEN, 1)
        );
        // The same reader, kept idle, sees the next commit too: no snapshot
        // outlives its statement.
        let mut account = read;
        account.balance = rust_decimal::Decimal::ONE;
        store
            .commit(Batch {
                updated: vec![account],
                ..Batch::default()
            })
            .unwrap();
        let read = on_a_reader();
        assert_eq!(
            (read.balance, read.version()),
            (rust_decimal::Decimal::ONE, 2)
        );
        drop(store);
        remove(&path);
    }
}
