//! A store with hooks around another: the place to inject the failures a real
//! backend has (a reset connection, a conflict, a crash before or after a
//! commit applies) or to watch what the host commits, without writing a whole
//! [`Store`] for it. Tests and the fault-injecting simulation use it; so can a
//! platform testing its own embedding.

use std::sync::Arc;

use recharge_policy_sdk::model::Timestamp;

use crate::account::{Account, AccountId};
use crate::ledger::LedgerEntry;
use crate::store::{
    Batch, ChargeRecord, KeptResponse, Lease, Notification, OutboxEntry, Pruned, Store, StoreError,
    StoredInbox, StoredTimer,
};

/// Which kind of read a [`HookedStore`] is about to pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreRead {
    /// An account, or the list of account ids.
    Accounts,
    /// Whether an idempotency key was used.
    KeyUsed,
    /// Whether a call was rated.
    CallRated,
    /// A payer's auto-recharges on a day.
    AutoRecharges,
    /// The outbox.
    Outbox,
    /// The inbox.
    Inbox,
    /// Pending timers.
    Timers,
    /// Reports: settled charges, notices, the ledger.
    Reports,
    /// A journal stream, read or appended to.
    Journal,
    /// A policy component, kept or read.
    Components,
    /// Pruning what is kept only for the retention window.
    Retention,
    /// Responses kept under idempotency keys, read, kept or pruned.
    Responses,
}

/// What a [`HookedStore`] asks around each call it passes on. Every hook lets
/// the call through by default.
pub trait StoreHooks: Send + Sync {
    /// Before a read; an error fails the read.
    fn before_read(&self, _read: StoreRead) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before a commit; an error fails it with nothing applied.
    fn before_commit(&self, _batch: &Batch) -> Result<(), StoreError> {
        Ok(())
    }

    /// After a commit applied; an error fails the call although the batch
    /// applied (the host crashed before it learnt so).
    fn after_commit(&self, _batch: &Batch) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store that asks its hooks around every call to another store.
pub struct HookedStore<H> {
    inner: Arc<dyn Store>,
    hooks: H,
}

impl<H: StoreHooks> HookedStore<H> {
    /// `inner` behind `hooks`.
    pub fn new(inner: Arc<dyn Store>, hooks: H) -> Self {
        HookedStore { inner, hooks }
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// The store behind the hooks, untouched by them.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn read<T>(
        &self,
        read: StoreRead,
        call: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.hooks.before_read(read)?;
        call(&*self.inner)
    }
}

impl<H: StoreHooks> Store for HookedStore<H> {
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.read(StoreRead::Accounts, |store| store.account(id))
    }
    fn account_ids(&self) -> Result<Vec<AccountId>, StoreError> {
        self.read(StoreRead::Accounts, |store| store.account_ids())
    }
    fn account_ids_after(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        self.read(StoreRead::Accounts, |store| {
            store.account_ids_after(after, limit)
        })
    }
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.hooks.before_commit(&batch)?;
        let committed = batch.clone();
        self.inner.commit(batch)?;
        self.hooks.after_commit(&committed)
    }
    fn key_used(&self, key: &str) -> Result<bool, StoreError> {
        self.read(StoreRead::KeyUsed, |store| store.key_used(key))
    }
    fn call_rated(&self, account: &AccountId, call: &str) -> Result<bool, StoreError> {
        self.read(StoreRead::CallRated, |store| {
            store.call_rated(account, call)
        })
    }
    fn auto_recharges_on(&self, payer: &AccountId, day: i64) -> Result<u32, StoreError> {
        self.read(StoreRead::AutoRecharges, |store| {
            store.auto_recharges_on(payer, day)
        })
    }
    fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(StoreRead::Outbox, |store| store.outbox())
    }
    fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        self.read(StoreRead::Outbox, |store| store.outbox_entry(key))
    }
    fn next_outbox(&self, until: Timestamp) -> Result<Option<OutboxEntry>, StoreError> {
        self.read(StoreRead::Outbox, |store| store.next_outbox(until))
    }
    fn inbox(&self) -> Result<Vec<StoredInbox>, StoreError> {
        self.read(StoreRead::Inbox, |store| store.inbox())
    }
    fn next_inbox(&self, until: Timestamp) -> Result<Option<StoredInbox>, StoreError> {
        self.read(StoreRead::Inbox, |store| store.next_inbox(until))
    }
    fn pending_timers(&self, account: &AccountId) -> Result<usize, StoreError> {
        self.read(StoreRead::Timers, |store| store.pending_timers(account))
    }
    fn timer_pending(&self, account: &AccountId, tag: u64) -> Result<bool, StoreError> {
        self.read(StoreRead::Timers, |store| store.timer_pending(account, tag))
    }
    fn next_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        self.read(StoreRead::Timers, |store| store.next_timer(until, lease))
    }
    fn claim_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        self.read(StoreRead::Timers, |store| store.claim_timer(until, lease))
    }
    fn journal(&self, stream: &str, after: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.read(StoreRead::Journal, |store| store.journal(stream, after))
    }
    fn append(&self, stream: &str, after: u64, entries: &[String]) -> Result<(), StoreError> {
        self.read(StoreRead::Journal, |store| {
            store.append(stream, after, entries)
        })
    }
    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.read(StoreRead::Components, |store| {
            store.put_component(sha256, bytes)
        })
    }
    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(StoreRead::Components, |store| store.component(sha256))
    }
    fn charges(&self) -> Result<Vec<ChargeRecord>, StoreError> {
        self.read(StoreRead::Reports, |store| store.charges())
    }
    fn charges_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ChargeRecord)>, StoreError> {
        self.read(StoreRead::Reports, |store| {
            store.charges_after(after, limit)
        })
    }
    fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        self.read(StoreRead::Reports, |store| store.notifications())
    }
    fn notifications_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Notification)>, StoreError> {
        self.read(StoreRead::Reports, |store| {
            store.notifications_after(after, limit)
        })
    }
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(StoreRead::Reports, |store| store.ledger())
    }
    fn prune(&self, before: Timestamp) -> Result<Pruned, StoreError> {
        self.read(StoreRead::Retention, |store| store.prune(before))
    }
    fn idempotent(&self, key: &str) -> Result<Option<KeptResponse>, StoreError> {
        self.read(StoreRead::Responses, |store| store.idempotent(key))
    }
    fn keep_response(&self, response: KeptResponse) -> Result<bool, StoreError> {
        self.read(StoreRead::Responses, |store| store.keep_response(response))
    }
    fn finish_response(&self, response: KeptResponse) -> Result<(), StoreError> {
        self.read(StoreRead::Responses, |store| {
            store.finish_response(response)
        })
    }
    fn release_response(&self, key: &str) -> Result<(), StoreError> {
        self.read(StoreRead::Responses, |store| store.release_response(key))
    }
    fn prune_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.read(StoreRead::Responses, |store| store.prune_responses(before))
    }
}
