//! Idempotency keys and timer tags.
//!
//! Keys are deterministic from the state and unique per account forever, because
//! every charge series takes a fresh sequence number from the account's state:
//!
//! - auto-recharge: `{account}/ar/{seq}/{attempt}`
//! - top-up: `{account}/topup/{seq}`
//! - allocation: `{sub-account}/alloc/{series}/{period}/{attempt}`, where `series`
//!   is the sequence number taken when the schedule started, so a schedule
//!   stopped and started again never reuses a key.
//!
//! The host cannot cancel a timer, so a tag names exactly what it is for; a timer
//! whose target the state no longer holds (disabled, stopped, superseded) is stale
//! and ignored. Layout, high bits first: kind (4 bits), sequence number (32),
//! period (20), attempt (8).

use alloc::string::String;

use super::text::{push_unsigned, strip_unsigned};

/// `account` followed by `/part` for each part: built by hand, as `format!` costs
/// a policy more fuel than the rest of a recharge decision.
fn key(account: &str, kind: &str, numbers: &[u64]) -> String {
    let mut key = String::with_capacity(account.len() + kind.len() + 1 + numbers.len() * 21);
    key.push_str(account);
    key.push('/');
    key.push_str(kind);
    for number in numbers {
        key.push('/');
        push_unsigned(&mut key, *number);
    }
    key
}

/// Whether `key` is the key [`key`] makes of the same parts, read without
/// building it.
fn is_key(key: &str, account: &str, kind: &str, numbers: &[u64]) -> bool {
    let Some(mut rest) = key
        .as_bytes()
        .strip_prefix(account.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"/"))
        .and_then(|rest| rest.strip_prefix(kind.as_bytes()))
    else {
        return false;
    };
    for number in numbers {
        match rest
            .strip_prefix(b"/")
            .and_then(|tail| strip_unsigned(tail, *number))
        {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Auto-recharge key of an attempt.
pub(super) fn recharge(account: &str, seq: u32, attempt: u8) -> String {
    key(account, "ar", &[u64::from(seq), u64::from(attempt)])
}

/// Whether `key` is the auto-recharge key of this attempt.
pub(super) fn is_recharge(key: &str, account: &str, seq: u32, attempt: u8) -> bool {
    is_key(key, account, "ar", &[u64::from(seq), u64::from(attempt)])
}

/// Top-up key.
pub(super) fn top_up(account: &str, seq: u32) -> String {
    key(account, "topup", &[u64::from(seq)])
}

/// Allocation key of an attempt.
pub(super) fn allocation(account: &str, series: u32, period: u32, attempt: u8) -> String {
    key(
        account,
        "alloc",
        &[u64::from(series), u64::from(period), u64::from(attempt)],
    )
}

/// Whether `key` is the allocation key of this attempt.
pub(super) fn is_allocation(
    key: &str,
    account: &str,
    series: u32,
    period: u32,
    attempt: u8,
) -> bool {
    is_key(
        key,
        account,
        "alloc",
        &[u64::from(series), u64::from(period), u64::from(attempt)],
    )
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerTag {
    /// Attempt `attempt` of auto-recharge `seq`.
    RechargeRetry {
        /// The recharge's sequence number.
        seq: u32,
        /// The attempt to make.
        attempt: u8,
    },
    /// Run `period` of allocation schedule `series`.
    AllocationRun {
        /// The schedule's sequence number.
        series: u32,
        /// The period index of the run.
        period: u32,
    },
    /// The end of an auto-recharge deferral (the next UTC day): one tag for
    /// every deferral, so a new one replaces a pending one.
    RechargeDeferral,
    /// Attempt `attempt` of the purchase for `period` of schedule `series`.
    AllocationRetry {
        /// The schedule's sequence number.
        series: u32,
        /// The period index of the purchase.
        period: u32,
        /// The attempt to make.
        attempt: u8,
    },
}

const KIND_RECHARGE_RETRY: u64 = 1;
const KIND_ALLOCATION_RUN: u64 = 2;
const KIND_ALLOCATION_RETRY: u64 = 3;
const KIND_RECHARGE_DEFERRAL: u64 = 4;

/// The largest period a tag can carry (20 bits: over 87,000 years of months).
pub(super) const MAX_PERIOD: u32 = (1 << 20) - 1;

impl TimerTag {
    /// The tag as a `u64`; `None` for a period over [`MAX_PERIOD`].
    pub fn encode(self) -> Option<u64> {
        let (kind, seq, period, attempt) = match self {
            TimerTag::RechargeRetry { seq, attempt } => (KIND_RECHARGE_RETRY, seq, 0, attempt),
            TimerTag::AllocationRun { series, period } => (KIND_ALLOCATION_RUN, series, period, 0),
            TimerTag::AllocationRetry {
                series,
                period,
                attempt,
            } => (KIND_ALLOCATION_RETRY, series, period, attempt),
            TimerTag::RechargeDeferral => (KIND_RECHARGE_DEFERRAL, 0, 0, 0),
        };
        (period <= MAX_PERIOD).then(|| {
            kind << 60 | u64::from(seq) << 28 | u64::from(period) << 8 | u64::from(attempt)
        })
    }

    /// Read a tag; `None` for one this policy never made.
    pub fn decode(tag: u64) -> Option<TimerTag> {
        let seq = (tag >> 28) as u32;
        let period = ((tag >> 8) & u64::from(MAX_PERIOD)) as u32;
        let attempt = tag as u8;
        match tag >> 60 {
            KIND_RECHARGE_RETRY if period == 0 => Some(TimerTag::RechargeRetry { seq, attempt }),
            KIND_ALLOCATION_RUN if attempt == 0 => Some(TimerTag::AllocationRun {
                series: seq,
                period,
            }),
            KIND_ALLOCATION_RETRY => Some(TimerTag::AllocationRetry {
                series: seq,
                period,
                attempt,
            }),
            KIND_RECHARGE_DEFERRAL if tag == KIND_RECHARGE_DEFERRAL << 60 => {
                Some(TimerTag::RechargeDeferral)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for tag in [
            TimerTag::RechargeRetry {
                seq: u32::MAX,
                attempt: 4,
            },
            TimerTag::AllocationRun {
                series: 1,
                period: MAX_PERIOD,
            },
            TimerTag::AllocationRetry {
                series: 9,
                period: 12,
                attempt: 2,
            },
            TimerTag::RechargeDeferral,
        ] {
            assert_eq!(TimerTag::decode(tag.encode().unwrap()), Some(tag));
        }
        assert_eq!(
            TimerTag::AllocationRun {
                series: 1,
                period: MAX_PERIOD + 1
            }
            .encode(),
            None
        );
        assert_eq!(TimerTag::decode(0), None);
        assert_eq!(TimerTag::decode(KIND_RECHARGE_DEFERRAL << 60 | 1), None);
        assert_eq!(TimerTag::decode(u64::MAX), None);
    }

    #[test]
    fn keys_name_account_series_and_attempt() {
        assert_eq!(recharge("u1", 3, 2), "u1/ar/3/2");
        assert_eq!(top_up("u1", 4), "u1/topup/4");
        assert_eq!(allocation("s1", 2, 0, 1), "s1/alloc/2/0/1");
    }

    #[test]
    fn keys_are_recognised_exactly() {
        assert!(is_recharge("u1/ar/3/2", "u1", 3, 2));
        assert!(is_allocation("s1/alloc/2/0/1", "s1", 2, 0, 1));
        for other in [
            "u1/ar/3/21",
            "u1/ar/3/",
            "u1/ar/32",
            "u11/ar/3/2",
            "u1/ar/3/2/",
            "u/ar/3/2",
            "",
            "u1/topup/3/2",
        ] {
            assert!(!is_recharge(other, "u1", 3, 2), "{other}");
        }
        assert!(!is_allocation("s1/alloc/2/0/1", "s1", 2, 0, 2));
        assert!(is_recharge("a/b/ar/1/1", "a/b", 1, 1));
    }
}
