//! [`PostgresStore`]: the store for many host processes sharing one
//! PostgreSQL database, through a connection pool (r2d2 over the `postgres`
//! client). Every [`Batch`] is one transaction; an account is updated only
//! at the version the event read (the `UPDATE`'s `WHERE` checks it, and its
//! row lock holds until the transaction ends), so two processes serialise on
//! an account and the later one gets [`StoreError::Conflict`] and runs its
//! event again. A usage event's batch (one account, its rated calls and
//! ledger rows) is one statement that does the same in a single round trip.
//! Each fixed statement is prepared once per pooled connection. Idempotency keys, rated
//! calls and outbox rows are unique in the schema, so a race between nodes
//! ends in one winner and a clean error for the other, never in two rows.
//! Versioned migrations run at open under an advisory lock.
//!
//! The records are the same JSON documents the SQLite file keeps, beside the
//! columns that are looked up.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use recharge_policy_sdk::model::{Purpose, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::account::{Account, AccountId};
use crate::codec::{decode, encode, tag_column};
use crate::ledger::LedgerEntry;
use crate::store::{
    Batch, ChargeRecord, InboxItem, KeptResponse, Lease, Notification, OutboxEntry, OutboxState,
    Pruned, Store, StoreError, StoredInbox, StoredTimer, Timer, utc_day,
};

/// The schema, one migration a step; `recharge_schema` says how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
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
        day BIGINT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (payer, day)
    );
    CREATE TABLE outbox (
        seq BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        entry TEXT NOT NULL,
        due BIGINT NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (due, seq);
    CREATE TABLE inbox (
        id BIGSERIAL PRIMARY KEY,
        item TEXT NOT NULL,
        due BIGINT NOT NULL
    );
    CREATE INDEX inbox_due ON inbox (due, id);
    CREATE TABLE timers (
        id BIGSERIAL PRIMARY KEY,
        due BIGINT NOT NULL,
        account TEXT NOT NULL,
        tag BIGINT NOT NULL,
        UNIQUE (account, tag)
    );
    CREATE INDEX timers_due ON timers (due, id);
    CREATE TABLE charges (seq BIGSERIAL PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE notifications (seq BIGSERIAL PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE ledger (
        seq BIGSERIAL PRIMARY KEY,
        account TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX ledger_account ON ledger (account, seq);
"#,
    r#"
    ALTER TABLE timers ADD COLUMN lease_holder TEXT;
    ALTER TABLE timers ADD COLUMN lease_until BIGINT;
    CREATE TABLE journal (
        stream TEXT NOT NULL,
        seq BIGINT NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
    );
    CREATE TABLE components (sha256 TEXT PRIMARY KEY, bytes BYTEA NOT NULL);
"#,
    // Retention: when each call id was rated and each key used. Rows kept
    // from before count from the migration, so they live a whole window.
    // Account ids page in byte order, which the "C" index serves.
    r#"
    ALTER TABLE rated_calls ADD COLUMN at BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE used_keys ADD COLUMN at BIGINT NOT NULL DEFAULT 0;
    UPDATE rated_calls SET at = (extract(epoch FROM now()) * 1000)::BIGINT;
    UPDATE used_keys SET at = (extract(epoch FROM now()) * 1000)::BIGINT;
    CREATE INDEX rated_calls_at ON rated_calls (at);
    CREATE INDEX used_keys_at ON used_keys (at);
    CREATE INDEX auto_recharges_day ON auto_recharges (day);
    CREATE INDEX accounts_id_bytes ON accounts (id COLLATE "C");
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

/// The condition on a timer row that a lease (`$2` holder, `$3` now) may take
/// it; a macro, so that the statements `concat!` it into fixed text.
macro_rules! free_timer {
    () => {
        "(lease_holder IS NULL OR lease_holder = $2 OR lease_until < $3)"
    };
}

/// An account's update (`$1` id, `$3` record) made only if it is still at the
/// version read (`$2`), to the next one. Under READ COMMITTED an update that
/// meets a concurrent writer's row waits for it and checks the row it left,
/// so the later of two writers changes nothing; a macro, so that both commit
/// paths `concat!` it into their fixed text.
macro_rules! update_account {
    () => {
        "UPDATE accounts SET version = $2::BIGINT + 1, record = $3
         WHERE id = $1 AND version = $2::BIGINT"
    };
}

/// A key PostgreSQL's advisory locks take: the migrations of one schema run
/// one process at a time.
const MIGRATION_LOCK: i64 = 0x7265_6368_6172_6765; // "recharge"

/// The statements prepared on one connection, by their SQL text.
type Statements = HashMap<&'static str, Statement>;

/// A connection of the pool: the client and the statements prepared on it,
/// kept as long as the connection is.
struct Connection {
    client: Client,
    statements: Statements,
}

/// The pool's manager: r2d2_postgres's, its connections given a statement
/// cache each. A connection is checked as that manager checks a client.
#[derive(Debug)]
struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.0.connect()?,
            statements: Statements::new(),
        })
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut connection.client)
    }

    fn has_broken(&self, connection: &mut Connection) -> bool {
        self.0.has_broken(&mut connection.client)
    }
}

impl Connection {
    /// The connection, outside a transaction.
    fn session(&mut self) -> Session<'_, Client> {
        Session {
            client: &mut self.client,
            statements: &mut self.statements,
        }
    }

    /// Run `work` in a transaction, committed if it succeeds; on an error the
    /// transaction is dropped: rolled back, nothing applied.
    fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Session<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self.client.transaction().map_err(backend)?;
        let done = work(&mut Session {
            client: &mut tx,
            statements: &mut self.statements,
        })?;
        tx.commit().map_err(backend)?;
        Ok(done)
    }
}

/// A connection or a transaction on it, running fixed SQL through the
/// connection's statements: each is prepared (Parse/Describe, a round trip)
/// the first time the connection runs it, and only executed after. Prepared
/// statements belong to the connection, not to a transaction: one prepared in
/// a transaction that rolls back stays.
struct Session<'a, C> {
    client: &'a mut C,
    statements: &'a mut Statements,
}

impl<C: GenericClient> Session<'_, C> {
    /// The statement for `sql`, prepared now if this connection has not yet.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(backend)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The rows the statement returns.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params).map_err(backend)
    }

    /// The one row the statement returns, if any (an error if more).
    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params).map_err(backend)
    }

    /// The one row the statement returns (an error if none or more).
    fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params).map_err(backend)
    }

    /// How many rows the statement changed.
    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params).map_err(backend)
    }

    /// Run `sql`, text made at run time (a schema's name spliced in), as a
    /// simple query: not prepared, nothing kept.
    fn batch_execute(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(backend)
    }
}

/// A transaction on a pooled connection, with that connection's statements.
type Tx<'a, 'c> = Session<'a, Transaction<'c>>;

/// The store in one PostgreSQL database (or one schema of it).
pub struct PostgresStore {
    pool: Pool<Manager>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("postgres: {error}"))
}

/// `name`, if it is a plain lower-case SQL identifier, safe to splice.
fn identifier(name: &str) -> Result<&str, StoreError> {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if plain {
        Ok(name)
    } else {
        Err(backend(format!(
            "schema {name:?} is not a lower-case identifier of at most 63 characters"
        )))
    }
}

/// A pool of up to `size` connections to `url`, in `schema` if one is given.
fn pool(url: &str, schema: Option<&str>, size: u32) -> Result<Pool<Manager>, StoreError> {
    let mut config: postgres::Config = url.parse().map_err(backend)?;
    if let Some(schema) = schema {
        config.options(&format!("-c search_path={}", identifier(schema)?));
    }
    config.connect_timeout(std::time::Duration::from_secs(10));
    Pool::builder()
        .max_size(size.max(1))
        // No empty query before each use (a round trip per store call): a
        // connection the server closed fails its next statement, a host
        // error the caller may retry, and is dropped from the pool then.
        .test_on_check_out(false)
        .connection_timeout(std::time::Duration::from_secs(30))
        .build(Manager(PostgresConnectionManager::new(config, NoTls)))
        .map_err(backend)
}

impl PostgresStore {
    /// The schema version this host migrates a database to.
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// Connect to the database at `url` (`postgres://user:password@host/db`),
    /// keeping up to `pool_size` connections, and apply the migrations it
    /// lacks. The tables live in the connection's default schema.
    pub fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        Self::connect(url, None, pool_size)
    }

    /// As [`open`](Self::open), with the tables in the schema `schema` (a
    /// lower-case identifier), created if missing: several independent stores
    /// in one database, as the tests use.
    pub fn open_in_schema(url: &str, schema: &str, pool_size: u32) -> Result<Self, StoreError> {
        Self::connect(url, Some(schema), pool_size)
    }

    /// [`open_in_schema`](Self::open_in_schema) on an empty schema: whatever
    /// `schema` held is dropped first. For tests and trials.
    pub fn open_empty_schema(url: &str, schema: &str, pool_size: u32) -> Result<Self, StoreError> {
        Self::drop_schema(url, schema)?;
        Self::open_in_schema(url, schema, pool_size)
    }

    /// Drop the schema `schema` and everything in it: a store starts empty.
    pub fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        let store = PostgresStore {
            pool: pool(url, None, 1)?,
        };
        store.client()?.session().batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            identifier(schema)?
        ))
    }

    fn connect(url: &str, schema: Option<&str>, pool_size: u32) -> Result<Self, StoreError> {
        let store = PostgresStore {
            pool: pool(url, schema, pool_size)?,
        };
        if let Some(schema) = schema {
            store
                .client()?
                .session()
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
        }
        store.migrate()?;
        Ok(store)
    }

    /// How many migrations the database has had.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let row = self
            .client()?
            .session()
            .query_one("SELECT version FROM recharge_schema", &[])?;
        Ok(row.get::<_, i32>(0) as u32)
    }

    fn client(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.pool.get().map_err(backend)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.client()?.transaction(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS recharge_schema (version INTEGER NOT NULL);
                 INSERT INTO recharge_schema (version)
                     SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM recharge_schema);",
            )?;
            let done: i32 = tx
                .query_one("SELECT version FROM recharge_schema", &[])?
                .get(0);
            let done = done as usize;
            if done > MIGRATIONS.len() {
                return Err(backend(format!(
                    "the database has schema version {done}, newer than this host's {}",
                    MIGRATIONS.len()
                )));
            }
            for (index, migration) in MIGRATIONS.iter().enumerate().skip(done) {
                tx.batch_execute(migration)?;
                tx.execute(
                    "UPDATE recharge_schema SET version = $1",
                    &[&(index as i32 + 1)],
                )?;
            }
            Ok(())
        })
    }

    fn records<T: DeserializeOwned>(&self, sql: &'static str) -> Result<Vec<T>, StoreError> {
        let rows = self.client()?.session().query(sql, &[])?;
        rows.iter().map(|row| decode(row.get(0))).collect()
    }

    fn exists(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        Ok(self.client()?.session().query_opt(sql, params)?.is_some())
    }

    /// The records `sql` selects (`seq, record`, after `$1`, up to `$2`),
    /// with their numbers.
    fn numbered<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client()?.session().query(sql, &[&after, &limit])?;
        rows.iter()
            .map(|row| Ok((row.get::<_, i64>(0) as u64, decode(row.get(1))?)))
            .collect()
    }

    fn inbox_where(
        &self,
        sql: &'static str,
        until: Timestamp,
    ) -> Result<Vec<StoredInbox>, StoreError> {
        let rows = self.client()?.session().query(sql, &[&until])?;
        rows.iter()
            .map(|row| {
                Ok(StoredInbox {
                    id: row.get::<_, i64>(0) as u64,
                    item: decode::<InboxItem>(row.get(1))?,
                })
            })
            .collect()
    }
}

/// Apply a batch inside `tx`, checking as the memory store does: accounts to
/// create must not exist, updated accounts must be at the version read (and
/// are locked until the transaction ends), keys must be new, charges to settle
/// or update must be in the outbox.
fn apply(tx: &mut Tx<'_, '_>, batch: Batch) -> Result<(), StoreError> {
    for account in batch.created {
        let record = encode(&account)?;
        let inserted = tx.execute(
            "INSERT INTO accounts (id, version, record) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
            &[&account.id.as_str(), &(account.version as i64), &record],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists(account.id));
        }
    }
    for mut account in batch.updated {
        let (read, record) = next_version(&mut account)?;
        let updated = tx.execute(update_account!(), &[&account.id.as_str(), &read, &record])?;
        if updated == 0 {
            return Err(StoreError::Conflict(account.id));
        }
    }
    for charge in batch.charges {
        let inserted = tx.execute(
            "INSERT INTO used_keys (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&charge.key, &charge.requested_at],
        )?;
        if inserted == 0 {
            return Err(StoreError::DuplicateKey(charge.key));
        }
        if charge.purpose == Purpose::AutoRecharge {
            tx.execute(
                "INSERT INTO auto_recharges (payer, day, count) VALUES ($1, $2, 1)
                 ON CONFLICT (payer, day) DO UPDATE SET count = auto_recharges.count + 1",
                &[&charge.payer.as_str(), &utc_day(charge.requested_at)],
            )?;
        }
        let due = charge.requested_at;
        let key = charge.key.clone();
        let entry = encode(&OutboxEntry {
            request: charge,
            state: OutboxState::Queued,
        })?;
        tx.execute(
            "INSERT INTO outbox (key, entry, due) VALUES ($1, $2, $3)",
            &[&key, &entry, &due],
        )?;
    }
    for change in batch.submitted {
        let key = change.key;
        let entry = outbox_entry(
            tx,
            "SELECT entry FROM outbox WHERE key = $1 FOR UPDATE",
            &key,
        )?;
        let Some(mut entry) = entry.filter(|entry| entry.state == change.from) else {
            return Err(StoreError::NotPending(key));
        };
        entry.state = change.to;
        let due = entry.due();
        let entry = encode(&entry)?;
        tx.execute(
            "UPDATE outbox SET entry = $2, due = $3 WHERE key = $1",
            &[&key, &entry, &due],
        )?;
    }
    if !batch.settled.is_empty() {
        in_commit_order(tx, "charges")?;
    }
    for record in batch.settled {
        let removed = tx.execute("DELETE FROM outbox WHERE key = $1", &[&record.request.key])?;
        if removed == 0 {
            return Err(StoreError::NotPending(record.request.key));
        }
        insert_record(tx, "INSERT INTO charges (record) VALUES ($1)", &record)?;
    }
    for id in batch.inbox_done {
        let removed = tx.execute("DELETE FROM inbox WHERE id = $1", &[&(id as i64)])?;
        if removed == 0 {
            return Err(StoreError::NotPending(format!("inbox item {id}")));
        }
    }
    for item in batch.inbox {
        let due = item.due;
        let item = encode(&item)?;
        tx.execute(
            "INSERT INTO inbox (item, due) VALUES ($1, $2)",
            &[&item, &due],
        )?;
    }
    for id in batch.fired {
        let removed = tx.execute("DELETE FROM timers WHERE id = $1", &[&(id as i64)])?;
        if removed == 0 {
            return Err(StoreError::NotPending(format!("timer {id}")));
        }
    }
    for timer in batch.timers {
        // A wake-up asked for again with the same tag replaces the pending one.
        let account = timer.account.as_str();
        let tag = tag_column(timer.tag);
        tx.execute(
            "DELETE FROM timers WHERE account = $1 AND tag = $2",
            &[&account, &tag],
        )?;
        tx.execute(
            "INSERT INTO timers (due, account, tag) VALUES ($1, $2, $3)",
            &[&timer.due, &account, &tag],
        )?;
    }
    if !batch.notifications.is_empty() {
        in_commit_order(tx, "notifications")?;
    }
    for notice in &batch.notifications {
        insert_record(tx, "INSERT INTO notifications (record) VALUES ($1)", notice)?;
    }
    for rated in batch.rated_calls {
        tx.execute(
            "INSERT INTO rated_calls (account, call, at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&rated.account.as_str(), &rated.call, &rated.at],
        )?;
    }
    for entry in &batch.ledger {
        let record = encode(entry)?;
        tx.execute(
            "INSERT INTO ledger (account, record) VALUES ($1, $2)",
            &[&entry.account.as_str(), &record],
        )?;
    }
    Ok(())
}

/// A usage event's commit as one statement, its own transaction, in one
/// round trip: the account's update of [`apply`] (`update_account!`), and
/// the rated calls and ledger rows inserted from its result, so that none is
/// written when its version check fails. Its one row counts the accounts updated: 0 or 1.
const UPDATE_ONE_ACCOUNT: &str = concat!(
    "WITH updated AS (",
    update_account!(),
    " RETURNING id
    ), rated AS (
        INSERT INTO rated_calls (account, call, at)
        SELECT r.account, r.call, r.at
        FROM updated, unnest($4::TEXT[], $5::TEXT[], $6::BIGINT[]) AS r (account, call, at)
        ON CONFLICT DO NOTHING
    ), entries AS (
        INSERT INTO ledger (account, record)
        SELECT l.account, l.record
        FROM updated, unnest($7::TEXT[], $8::TEXT[]) WITH ORDINALITY AS l (account, record, n)
        ORDER BY l.n
    )
    SELECT count(*) FROM updated"
);

/// Whether `batch` has a usage event's shape: one account updated, with the
/// calls it rated and its ledger rows, and nothing else.
fn one_account_update(batch: &Batch) -> bool {
    // Named field by field, so that a new kind of change is not overlooked.
    let Batch {
        created,
        updated,
        charges,
        settled,
        submitted,
        inbox,
        inbox_done,
        timers,
        fired,
        notifications,
        rated_calls: _,
        ledger: _,
    } = batch;
    updated.len() == 1
        && created.is_empty()
        && charges.is_empty()
        && settled.is_empty()
        && submitted.is_empty()
        && inbox.is_empty()
        && inbox_done.is_empty()
        && timers.is_empty()
        && fired.is_empty()
        && notifications.is_empty()
}

/// Commit a batch of [`one_account_update`]'s shape with
/// [`UPDATE_ONE_ACCOUNT`]: what [`apply`] would do, in one statement.
fn commit_one_account(session: &mut Session<'_, Client>, batch: Batch) -> Result<(), StoreError> {
    let Some(mut account) = batch.updated.into_iter().next() else {
        return Ok(());
    };
    let (read, record) = next_version(&mut account)?;
    let rated = &batch.rated_calls;
    let rated_accounts: Vec<&str> = rated.iter().map(|call| call.account.as_str()).collect();
    let calls: Vec<&str> = rated.iter().map(|call| call.call.as_str()).collect();
    let rated_at: Vec<i64> = rated.iter().map(|call| call.at).collect();
    let ledger_accounts: Vec<&str> = batch.ledger.iter().map(|e| e.account.as_str()).collect();
    let entries = batch
        .ledger
        .iter()
        .map(encode)
        .collect::<Result<Vec<String>, StoreError>>()?;
    let updated: i64 = session
        .query_one(
            UPDATE_ONE_ACCOUNT,
            &[
                &account.id.as_str(),
                &read,
                &record,
                &rated_accounts,
                &calls,
                &rated_at,
                &ledger_accounts,
                &entries,
            ],
        )?
        .get(0);
    if updated == 0 {
        return Err(StoreError::Conflict(account.id));
    }
    Ok(())
}

/// Move `account` to its next version: the version it was read at, and its
/// record as the next one.
fn next_version(account: &mut Account) -> Result<(i64, String), StoreError> {
    let read = account.version as i64;
    account.version += 1;
    Ok((read, encode(account)?))
}

/// Take the insert lock of `table` (one of the tables read by cursor) until
/// the transaction ends. Its numbers are drawn when a row is inserted but seen
/// when it commits: were two transactions to insert at once, the one with the
/// lower number could commit last, behind a cursor already past it. Held, the
/// lock makes the numbers' order the commit order; readers do not wait on it.
fn in_commit_order(tx: &mut Tx<'_, '_>, table: &str) -> Result<(), StoreError> {
    tx.batch_execute(&format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))
}

fn insert_record(
    tx: &mut Tx<'_, '_>,
    sql: &'static str,
    record: &impl Serialize,
) -> Result<(), StoreError> {
    let record = encode(record)?;
    tx.execute(sql, &[&record])?;
    Ok(())
}

/// The outbox entry `sql` selects for the key `$1`.
fn outbox_entry(
    session: &mut Session<'_, impl GenericClient>,
    sql: &'static str,
    key: &str,
) -> Result<Option<OutboxEntry>, StoreError> {
    let row = session.query_opt(sql, &[&key])?;
    row.map(|row| decode(row.get(0))).transpose()
}

fn timer_row(row: &Row) -> StoredTimer {
    StoredTimer {
        id: row.get::<_, i64>(0) as u64,
        timer: Timer {
            due: row.get(1),
            account: AccountId(row.get(2)),
            tag: row.get::<_, i64>(3) as u64,
        },
    }
}

impl Store for PostgresStore {
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let row = self
            .client()?
            .session()
            .query_opt("SELECT record FROM accounts WHERE id = $1", &[&id.as_str()])?;
        row.map(|row| decode(row.get(0))).transpose()
    }

    fn account_ids(&self) -> Result<Vec<AccountId>, StoreError> {
        let rows = self
            .client()?
            .session()
            .query("SELECT id FROM accounts ORDER BY id COLLATE \"C\"", &[])?;
        Ok(rows.iter().map(|row| AccountId(row.get(0))).collect())
    }

    fn account_ids_after(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        let mut connection = self.client()?;
        let mut session = connection.session();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            Some(after) => session.query(
                "SELECT id FROM accounts WHERE id COLLATE \"C\" > $1
                 ORDER BY id COLLATE \"C\" LIMIT $2",
                &[&after.as_str(), &limit],
            )?,
            None => session.query(
                "SELECT id FROM accounts ORDER BY id COLLATE \"C\" LIMIT $1",
                &[&limit],
            )?,
        };
        Ok(rows.iter().map(|row| AccountId(row.get(0))).collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut connection = self.client()?;
        if one_account_update(&batch) {
            return commit_one_account(&mut connection.session(), batch);
        }
        connection.transaction(|tx| apply(tx, batch))
    }

    fn key_used(&self, key: &str) -> Result<bool, StoreError> {
        self.exists("SELECT 1 FROM used_keys WHERE key = $1", &[&key])
    }

    fn call_rated(&self, account: &AccountId, call: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM rated_calls WHERE account = $1 AND call = $2",
            &[&account.as_str(), &call],
        )
    }

    fn auto_recharges_on(&self, payer: &AccountId, day: i64) -> Result<u32, StoreError> {
        let count: Option<i64> = self
            .client()?
            .session()
            .query_opt(
                "SELECT count FROM auto_recharges WHERE payer = $1 AND day = $2",
                &[&payer.as_str(), &day],
            )?
            .map(|row| row.get(0));
        Ok(u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX))
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.records("SELECT entry FROM outbox ORDER BY seq")
    }

    fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        outbox_entry(
            &mut self.client()?.session(),
            "SELECT entry FROM outbox WHERE key = $1",
            key,
        )
    }

    fn next_outbox(&self, until: Timestamp) -> Result<Option<OutboxEntry>, StoreError> {
        let row = self.client()?.session().query_opt(
            "SELECT entry FROM outbox WHERE due <= $1 ORDER BY due, seq LIMIT 1",
            &[&until],
        )?;
        row.map(|row| decode(row.get(0))).transpose()
    }

    fn inbox(&self) -> Result<Vec<StoredInbox>, StoreError> {
        self.inbox_where(
            "SELECT id, item FROM inbox WHERE due <= $1 ORDER BY id",
            i64::MAX,
        )
    }

    fn next_inbox(&self, until: Timestamp) -> Result<Option<StoredInbox>, StoreError> {
        Ok(self
            .inbox_where(
                "SELECT id, item FROM inbox WHERE due <= $1 ORDER BY due, id LIMIT 1",
                until,
            )?
            .into_iter()
            .next())
    }

    fn pending_timers(&self, account: &AccountId) -> Result<usize, StoreError> {
        let count: i64 = self
            .client()?
            .session()
            .query_one(
                "SELECT COUNT(*) FROM timers WHERE account = $1",
                &[&account.as_str()],
            )?
            .get(0);
        Ok(usize::try_from(count).unwrap_or(0))
    }

    fn timer_pending(&self, account: &AccountId, tag: u64) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM timers WHERE account = $1 AND tag = $2",
            &[&account.as_str(), &tag_column(tag)],
        )
    }

    fn next_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        let row = self.client()?.session().query_opt(
            concat!(
                "SELECT id, due, account, tag FROM timers WHERE due <= $1 AND ",
                free_timer!(),
                " ORDER BY due, id LIMIT 1"
            ),
            &[&until, &lease.holder, &lease.now],
        )?;
        Ok(row.as_ref().map(timer_row))
    }

    fn claim_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        // One statement: the first free due timer, skipping those another
        // node is claiming this instant, leased in place.
        let row = self.client()?.session().query_opt(
            concat!(
                "UPDATE timers SET lease_holder = $2, lease_until = $4 WHERE id = (
                     SELECT id FROM timers WHERE due <= $1 AND ",
                free_timer!(),
                " ORDER BY due, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, due, account, tag"
            ),
            &[&until, &lease.holder, &lease.now, &lease.until],
        )?;
        Ok(row.as_ref().map(timer_row))
    }

    fn journal(&self, stream: &str, after: u64) -> Result<Vec<(u64, String)>, StoreError> {
        let rows = self.client()?.session().query(
            "SELECT seq, entry FROM journal WHERE stream = $1 AND seq > $2 ORDER BY seq",
            &[&stream, &(after as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get(1)))
            .collect())
    }

    fn append(&self, stream: &str, after: u64, entries: &[String]) -> Result<(), StoreError> {
        self.client()?.transaction(|tx| {
            let last: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) FROM journal WHERE stream = $1",
                    &[&stream],
                )?
                .get(0);
            if last as u64 != after {
                return Err(StoreError::Behind(stream.to_owned()));
            }
            for (offset, entry) in entries.iter().enumerate() {
                // Two writers that read the same end race for the same numbers:
                // the later one inserts nothing and rolls back.
                let inserted = tx.execute(
                    "INSERT INTO journal (stream, seq, entry) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&stream, &(last + 1 + offset as i64), entry],
                )?;
                if inserted == 0 {
                    return Err(StoreError::Behind(stream.to_owned()));
                }
            }
            Ok(())
        })
    }

    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.client()?.session().execute(
            "INSERT INTO components (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&sha256, &bytes],
        )?;
        Ok(())
    }

    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()?
            .session()
            .query_opt("SELECT bytes FROM components WHERE sha256 = $1", &[&sha256])?;
        Ok(row.map(|row| row.get(0)))
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
            "SELECT seq, record FROM charges WHERE seq > $1 ORDER BY seq LIMIT $2",
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
            "SELECT seq, record FROM notifications WHERE seq > $1 ORDER BY seq LIMIT $2",
            after,
            limit,
        )
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.records("SELECT record FROM ledger ORDER BY seq")
    }

    fn prune(&self, before: Timestamp) -> Result<Pruned, StoreError> {
        self.client()?.transaction(|tx| {
            Ok(Pruned {
                rated_calls: tx.execute("DELETE FROM rated_calls WHERE at < $1", &[&before])?,
                used_keys: tx.execute(
                    "DELETE FROM used_keys WHERE at < $1
                     AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.key = used_keys.key)",
                    &[&before],
                )?,
                auto_recharge_days: tx.execute(
                    "DELETE FROM auto_recharges WHERE day < $1",
                    &[&utc_day(before)],
                )?,
            })
        })
    }

    fn idempotent(&self, key: &str) -> Result<Option<KeptResponse>, StoreError> {
        let row = self.client()?.session().query_opt(
            "SELECT key, fingerprint, status, body, at FROM idempotency WHERE key = $1",
            &[&key],
        )?;
        Ok(row.map(|row| KeptResponse {
            key: row.get(0),
            fingerprint: row.get(1),
            status: u16::try_from(row.get::<_, i32>(2)).unwrap_or(u16::MAX),
            body: row.get(3),
            at: row.get(4),
        }))
    }

    fn keep_response(&self, response: KeptResponse) -> Result<bool, StoreError> {
        let inserted = self.client()?.session().execute(
            "INSERT INTO idempotency (key, fingerprint, status, body, at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &response.key,
                &response.fingerprint,
                &i32::from(response.status),
                &response.body,
                &response.at,
            ],
        )?;
        Ok(inserted == 1)
    }

    fn finish_response(&self, response: KeptResponse) -> Result<(), StoreError> {
        let updated = self.client()?.session().execute(
            "UPDATE idempotency SET status = $3, body = $4, at = $5
             WHERE key = $1 AND fingerprint = $2 AND status = 0",
            &[
                &response.key,
                &response.fingerprint,
                &i32::from(response.status),
                &response.body,
                &response.at,
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::NotPending(format!(
                "idempotency key {}",
                response.key
            )));
        }
        Ok(())
    }

    fn release_response(&self, key: &str) -> Result<(), StoreError> {
        self.client()?.session().execute(
            "DELETE FROM idempotency WHERE key = $1 AND status = 0",
            &[&key],
        )?;
        Ok(())
    }

    fn prune_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.client()?
            .session()
            .execute("DELETE FROM idempotency WHERE at < $1", &[&before])
    }
}
