//! How the simulated gateway treats a card, as scripts name it (SPEC §7).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// How the simulated gateway treats a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum CardBehavior {
    /// Every charge succeeds.
    #[default]
    Ok,
    /// Every charge is declined (final).
    Decline,
    /// Every charge fails transiently.
    Fail,
    /// The next N charges fail transiently, then the card behaves as `Ok`.
    FailTimes(u32),
    /// Every charge goes through but the answer to its first submission is
    /// lost; asked again, the gateway says it succeeded.
    Timeout,
    /// The next N charges time out so, then the card behaves as `Ok`.
    TimeoutTimes(u32),
    /// Every charge is accepted as pending and confirms (succeeds) this many
    /// milliseconds later, by a webhook delivered twice.
    Pending(i64),
    /// Every charge needs the customer's authentication (3-D Secure).
    RequiresAction,
}

/// A card behaviour that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown card behavior {0:?}: expected ok, decline, fail, fail:N, timeout, timeout:N, pending:DURATION (30s, 30m, 2h, 1d) or requires_action"
)]
pub struct BadBehavior(pub String);

/// A duration such as `30s`, `30m`, `2h` or `1d`, in milliseconds (at most a
/// year).
fn parse_duration(text: &str) -> Option<i64> {
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let count: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    count
        .checked_mul(unit_ms)
        .filter(|ms| (1..=365 * 86_400_000).contains(ms))
}

fn count(text: &str, prefix: &str) -> Option<u32> {
    let digits = text.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl FromStr for CardBehavior {
    type Err = BadBehavior;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = match text {
            "ok" => Some(CardBehavior::Ok),
            "decline" => Some(CardBehavior::Decline),
            "fail" => Some(CardBehavior::Fail),
            "timeout" => Some(CardBehavior::Timeout),
            "requires_action" => Some(CardBehavior::RequiresAction),
            _ => count(text, "fail:")
                .map(CardBehavior::FailTimes)
                .or_else(|| count(text, "timeout:").map(CardBehavior::TimeoutTimes))
                .or_else(|| {
                    text.strip_prefix("pending:")
                        .and_then(parse_duration)
                        .map(CardBehavior::Pending)
                }),
        };
        parsed.ok_or_else(|| BadBehavior(text.to_owned()))
    }
}

impl fmt::Display for CardBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardBehavior::Ok => f.write_str("ok"),
            CardBehavior::Decline => f.write_str("decline"),
            CardBehavior::Fail => f.write_str("fail"),
            CardBehavior::FailTimes(count) => write!(f, "fail:{count}"),
            CardBehavior::Timeout => f.write_str("timeout"),
            CardBehavior::TimeoutTimes(count) => write!(f, "timeout:{count}"),
            CardBehavior::Pending(ms) => write!(f, "pending:{}s", ms / 1_000),
            CardBehavior::RequiresAction => f.write_str("requires_action"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviors_parse_and_print_back() {
        for text in [
            "ok",
            "decline",
            "fail",
            "fail:3",
            "timeout",
            "timeout:2",
            "pending:1800s",
            "requires_action",
        ] {
            let behavior: CardBehavior = text.parse().unwrap();
            assert_eq!(behavior.to_string(), text);
        }
        assert_eq!("pending:30m".parse(), Ok(CardBehavior::Pending(1_800_000)));
        for bad in [
            "fail:x",
            "maybe",
            "fail:",
            "fail:+1",
            "pending:0m",
            "pending:5",
            "timeout:-1",
        ] {
            assert!(bad.parse::<CardBehavior>().is_err(), "{bad}");
        }
    }
}
