//! Accounts and their facts: opening, cards, included minutes, and the lock that
//! serialises the events of one account family.

use std::sync::{Arc, Mutex};

use recharge_policy_sdk::model::AccountKind;

use super::Platform;
use super::events::retry_on_conflict;
use crate::account::{Account, AccountId};
use crate::error::{HostError, InvalidCommand};
use crate::ledger::{Cause, LedgerEntry, Totals};
use crate::store::{Batch, StoreError};

pub(super) fn open(
    platform: &Platform,
    id: AccountId,
    kind: AccountKind,
    parent: Option<AccountId>,
) -> Result<(), HostError> {
    match (kind, &parent) {
        (AccountKind::SubAccount, None) => return Err(InvalidCommand::MissingParent(id).into()),
        (AccountKind::SubAccount, Some(parent_id)) => {
            if platform.account(parent_id)?.kind != AccountKind::Agency {
                return Err(InvalidCommand::ParentNotAgency {
                    child: id,
                    parent: parent_id.clone(),
                }
                .into());
            }
        }
        (_, Some(_)) => return Err(InvalidCommand::UnexpectedParent(id).into()),
        (_, None) => {}
    }
    let account = Account::new(id, kind, parent);
    platform
        .store
        .commit(Batch {
            created: vec![account],
            ..Batch::default()
        })
        .map_err(|err| match err {
            StoreError::Exists(id) => HostError::AlreadyExists(id),
            other => HostError::Store(other),
        })
}

pub(super) fn check_card(card: &str) -> Result<(), HostError> {
    if card.is_empty() {
        return Err(InvalidCommand::EmptyCard.into());
    }
    Ok(crate::input::check_id("card", card)?)
}

/// Save a card on the account if it is new. The caller holds the family lock.
pub(super) fn save_card(platform: &Platform, id: &AccountId, card: &str) -> Result<(), HostError> {
    retry_on_conflict(|| {
        let mut account = platform.account(id)?;
        if !account.has_card(card) {
            account.cards.push(card.to_owned());
            platform.store.commit(Batch {
                updated: vec![account],
                ..Batch::default()
            })?;
        }
        Ok(())
    })
}

pub(super) fn include_minutes(
    platform: &Platform,
    id: &AccountId,
    basic_minutes: i64,
    premium_minutes: i64,
) -> Result<(), HostError> {
    if basic_minutes < 0 || premium_minutes < 0 {
        return Err(InvalidCommand::NegativeMinutes.into());
    }
    platform.serialised(id, || {
        retry_on_conflict(|| {
            let mut account = platform.account(id)?;
            if account.kind == AccountKind::SubAccount {
                return Err(InvalidCommand::NotForSubAccounts {
                    account: id.clone(),
                    what: "included minutes",
                }
                .into());
            }
            let add = |held: i64, minutes: i64| {
                minutes
                    .checked_mul(60)
                    .and_then(|seconds| held.checked_add(seconds))
                    .ok_or(InvalidCommand::TooManyMinutes)
            };
            let before = Totals::held(&account);
            account.included_basic_seconds = add(account.included_basic_seconds, basic_minutes)?;
            account.included_premium_seconds =
                add(account.included_premium_seconds, premium_minutes)?;
            let entry = LedgerEntry::between(&before, &account, Cause::Included, platform.now());
            platform.store.commit(Batch {
                updated: vec![account],
                ledger: vec![entry],
                ..Batch::default()
            })?;
            Ok(())
        })
    })
}

impl Platform {
    /// The lock of the account's family (its agency, or itself), by account id.
    fn family_lock(&self, id: &AccountId) -> Result<Arc<Mutex<()>>, HostError> {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = families.get(id) {
            return Ok(Arc::clone(lock));
        }
        // Opened by another host on the same store (or before a restart).
        let family = self.account(id)?.family().clone();
        let lock = Arc::clone(families.entry(family).or_default());
        families.insert(id.clone(), Arc::clone(&lock));
        Ok(lock)
    }

    /// Run `work` with the account's family serialised.
    pub(super) fn serialised<R>(
        &self,
        id: &AccountId,
        work: impl FnOnce() -> Result<R, HostError>,
    ) -> Result<R, HostError> {
        let lock = self.family_lock(id)?;
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work()
    }
}
