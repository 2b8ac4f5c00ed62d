//! The policy's per-account state: its settings, whether a refill is in flight,
//! and a counter for idempotency keys. Encoded as one line of text.

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::str::FromStr;

use recharge_policy_sdk::PolicyState;
use recharge_policy_sdk::model::{AutoRechargeSettings, Mode};
use rust_decimal::Decimal;

/// What the policy remembers about one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub settings: Option<AutoRechargeSettings>,
    pub in_flight: bool,
    pub next_key: u64,
}

impl PolicyState for State {
    /// `v1|next_key|in_flight|enabled|threshold|target|card` (settings optional).
    fn encode(&self) -> Vec<u8> {
        let mut text = format!("v1|{}|{}", self.next_key, u8::from(self.in_flight));
        if let Some(settings) = &self.settings {
            let enabled = u8::from(settings.enabled);
            text.push_str(&format!(
                "|{enabled}|{}|{}|{}",
                settings.threshold, settings.amount, settings.card
            ));
        }
        text.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<State> {
        let text = core::str::from_utf8(bytes).ok()?;
        let mut fields = text.splitn(7, '|');
        if fields.next()? != "v1" {
            return None;
        }
        let next_key = fields.next()?.parse().ok()?;
        let in_flight = fields.next()? == "1";
        let settings = match fields.next() {
            None => None,
            Some(enabled) => Some(AutoRechargeSettings {
                enabled: enabled == "1",
                threshold: Decimal::from_str(fields.next()?).ok()?,
                amount: Decimal::from_str(fields.next()?).ok()?,
                card: fields.next()?.to_string(),
                mode: Mode::Target,
                monthly_limit: None,
            }),
        };
        Some(State {
            settings,
            in_flight,
            next_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let state = State {
            settings: Some(AutoRechargeSettings {
                enabled: true,
                threshold: Decimal::new(10_00, 2),
                amount: Decimal::new(50_00, 2),
                card: alloc::string::String::from("visa|x"),
                mode: Mode::Target,
                monthly_limit: None,
            }),
            in_flight: true,
            next_key: 7,
        };
        assert_eq!(State::decode(&state.encode()), Some(state));
        assert_eq!(State::decode(b"\xff\x00garbage"), None);
    }
}
