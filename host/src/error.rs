//! Why the host did not carry out a command, kept apart by whose fault it was:
//! the caller's ([`InvalidCommand`], [`HostError::UnknownAccount`],
//! [`HostError::AlreadyExists`]), the policy's ([`HostError::Rejected`] is a
//! decision, [`HostError::Fault`] is a fault of its code), or the host's own
//! ([`HostError::Store`], [`HostError::Configuration`], [`HostError::Internal`]).

use recharge_policy_sdk::model::PolicyError;
use thiserror::Error;

use crate::account::AccountId;
use crate::input::BadInput;
use crate::policy::PolicyFault;
use crate::rating::RatingError;
use crate::sandbox::LoadError;
use crate::store::StoreError;

/// Why a command was not carried out.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HostError {
    /// No account with this id.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// An account with this id exists already.
    #[error("account {0} already exists")]
    AlreadyExists(AccountId),
    /// The command itself is not valid; no policy saw it.
    #[error(transparent)]
    Invalid(#[from] InvalidCommand),
    /// The policy rejected the request.
    #[error("{}", describe_rejection(.0))]
    Rejected(PolicyError),
    /// The policy faulted; the event changed nothing.
    #[error("policy fault: {0}")]
    Fault(PolicyFault),
    /// A policy component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A usage record could not be rated.
    #[error(transparent)]
    Rating(#[from] RatingError),
    /// The platform was built without something it needs.
    #[error("configuration: {0}")]
    Configuration(&'static str),
    /// Storage failed (a host error, never the policy's).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An invariant of the host itself broke (a bug, never the caller's or the
    /// policy's doing).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// What is wrong with a command, found before any policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidCommand {
    /// A sub-account was opened without a parent agency.
    #[error("sub-account {0} needs a parent agency")]
    MissingParent(AccountId),
    /// A sub-account's parent is not an agency.
    #[error("parent {parent} of {child} is not an agency")]
    ParentNotAgency {
        /// The sub-account being opened.
        child: AccountId,
        /// The account named as its parent.
        parent: AccountId,
    },
    /// A user or agency was opened with a parent.
    #[error("only sub-accounts have a parent ({0})")]
    UnexpectedParent(AccountId),
    /// A card without an id.
    #[error("a card needs an id")]
    EmptyCard,
    /// Included minutes below zero.
    #[error("included minutes must not be negative")]
    NegativeMinutes,
    /// More minutes than an account can hold.
    #[error("too many minutes")]
    TooManyMinutes,
    /// Included minutes or a policy for a sub-account.
    #[error("{account} is a sub-account: {what} belong to users and agencies")]
    NotForSubAccounts {
        /// The sub-account.
        account: AccountId,
        /// What was asked for it.
        what: &'static str,
    },
    /// Rates below zero.
    #[error("rates must not be negative")]
    NegativeRates,
    /// A value out of what the host accepts (see [`crate::input`]).
    #[error(transparent)]
    BadInput(#[from] BadInput),
}

impl From<BadInput> for HostError {
    fn from(bad: BadInput) -> Self {
        HostError::Invalid(InvalidCommand::BadInput(bad))
    }
}

fn describe_rejection(error: &PolicyError) -> String {
    match error {
        PolicyError::Forbidden(why) => format!("forbidden: {why}"),
        PolicyError::InvalidSettings(why) => format!("invalid settings: {why}"),
        PolicyError::PaymentMethodRequired(why) => format!("payment method required: {why}"),
        PolicyError::Refused(why) => format!("policy gave up after a refusal: {why}"),
    }
}
