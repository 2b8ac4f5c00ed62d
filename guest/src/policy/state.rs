//! What the policy keeps for one account, and its compact binary form.
//!
//! The state travels as the account's opaque state bytes. Its first byte is the
//! format version; anything empty, of another version or undecodable reads as a
//! fresh state, so bad bytes can never make the policy panic.
//!
//! Version 1 layout (integers are LEB128 varints, signed ones zig-zag encoded; a
//! decimal is its scale byte then its zig-zag mantissa; a string is its byte length
//! then its UTF-8 bytes):
//!
//! ```text
//! version = 1, flags (see the FLAG_* constants)
//! [AUTO] threshold, amount, card, [LIMIT] monthly_limit
//! seq, usage.month, usage.charged, [NOTICE] limit_notice_month
//! [RECHARGE] seq, attempt, amount, attempted_at, month, awaiting_retry
//! [ALLOCATION] basic, premium, card, series, anchor, next_period,
//!              last_paid (0 | 1 period), purchase (0 | 1 period attempt basic
//!              premium attempted_at awaiting_retry)
//! ```
//!
//! The threshold sits at a fixed offset right after the flags, so the usage hot
//! path ([`recharge_gate`]) can decide "nothing to do" without decoding the rest.

use alloc::{string::String, vec::Vec};
use rust_decimal::Decimal;

use crate::model::{AllocationSettings, AutoRechargeSettings, Mode, Timestamp};

/// The current format version, the state's first byte.
const VERSION: u8 = 1;

const FLAG_AUTO: u8 = 0x01;
const FLAG_ENABLED: u8 = 0x02;
const FLAG_SUSPENDED: u8 = 0x04;
const FLAG_RECHARGE: u8 = 0x08;
const FLAG_ALLOCATION: u8 = 0x10;
const FLAG_TARGET: u8 = 0x20;
const FLAG_LIMIT: u8 = 0x40;
const FLAG_NOTICE: u8 = 0x80;

/// The highest attempt number of a charge: the first try and three retries (R5).
pub(super) const MAX_ATTEMPTS: u8 = 4;

/// The policy's state for one account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct State {
    /// The auto-recharge settings, if ever saved.
    pub auto: Option<AutoRechargeSettings>,
    /// Auto-recharge stopped by a final failure until a card update or a payment.
    pub suspended: bool,
    /// The last sequence number handed out for a key (0: none yet).
    pub seq: u32,
    /// What auto-recharge charged in one UTC calendar month (R4).
    pub usage: MonthlyUsage,
    /// The month whose `recharge_limit_reached` notice was sent.
    pub limit_notice_month: Option<i64>,
    /// The auto-recharge in flight, at most one.
    pub recharge: Option<Recharge>,
    /// The running monthly allocation (sub-accounts only).
    pub allocation: Option<Allocation>,
}

/// Auto-recharge charges of one UTC calendar month: succeeded plus in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct MonthlyUsage {
    /// The month, as `year × 12 + month0` (see `schedule::month_index`).
    pub month: i64,
    /// The sum charged or in flight in that month.
    pub charged: Decimal,
}

impl MonthlyUsage {
    /// What counts against the limit of `month`.
    pub fn charged_in(&self, month: i64) -> Decimal {
        if self.month == month {
            self.charged
        } else {
            Decimal::ZERO
        }
    }

    /// Count `amount` against `month`, starting that month afresh if needed.
    pub fn add(&mut self, month: i64, amount: Decimal) -> Option<()> {
        let charged = self.charged_in(month).checked_add(amount)?;
        *self = MonthlyUsage { month, charged };
        Some(())
    }

    /// Stop counting `amount` against `month` (a final failure or a cancel).
    pub fn remove(&mut self, month: i64, amount: Decimal) {
        if self.month == month {
            self.charged = self
                .charged
                .checked_sub(amount)
                .unwrap_or(Decimal::ZERO)
                .max(Decimal::ZERO);
        }
    }
}

/// An auto-recharge in flight: requested and not finally resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recharge {
    /// Its sequence number, part of every attempt's key and timer tag.
    pub seq: u32,
    /// The current attempt, 1 to [`MAX_ATTEMPTS`].
    pub attempt: u8,
    /// The amount, the same for every attempt.
    pub amount: Decimal,
    /// When the current attempt was requested.
    pub attempted_at: Timestamp,
    /// The month it counts against.
    pub month: i64,
    /// The current attempt failed and the next one waits for its timer.
    pub awaiting_retry: bool,
}

/// A running monthly allocation of a sub-account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Allocation {
    /// What the next run buys and the agency card it charges.
    pub settings: AllocationSettings,
    /// The sequence number of this schedule, part of its keys and timer tags.
    pub series: u32,
    /// When the schedule started; run `n` falls at anchor + n months.
    pub anchor: Timestamp,
    /// The period index of the next run.
    pub next_period: u32,
    /// The last period whose purchase succeeded.
    pub last_paid: Option<u32>,
    /// The purchase in flight, at most one.
    pub purchase: Option<Purchase>,
}

/// An allocation purchase in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Purchase {
    /// The period it buys for.
    pub period: u32,
    /// The current attempt, 1 to [`MAX_ATTEMPTS`].
    pub attempt: u8,
    /// Whole basic minutes it buys.
    pub basic_minutes: i64,
    /// Whole premium minutes it buys.
    pub premium_minutes: i64,
    /// When the current attempt was requested.
    pub attempted_at: Timestamp,
    /// The current attempt failed and the next one waits for its timer.
    pub awaiting_retry: bool,
}

/// The usage hot path: the threshold to compare the balance with, or `None` when
/// auto-recharge cannot trigger now (never saved, disabled, suspended, or a
/// recharge already in flight). Reads three fields and allocates nothing.
pub(super) fn recharge_gate(bytes: &[u8]) -> Option<Decimal> {
    let (&version, rest) = bytes.split_first()?;
    let (&flags, rest) = rest.split_first()?;
    let ready = FLAG_AUTO | FLAG_ENABLED;
    if version != VERSION || flags & (ready | FLAG_SUSPENDED | FLAG_RECHARGE) != ready {
        return None;
    }
    Reader { bytes: rest }.decimal()
}

impl State {
    /// Decode state bytes; anything empty or undecodable is a fresh state.
    pub fn decode(bytes: &[u8]) -> State {
        decode(bytes).unwrap_or_default()
    }

    /// Encode to the current format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(64));
        let mut flags = 0;
        if let Some(auto) = &self.auto {
            flags |= FLAG_AUTO;
            if auto.enabled {
                flags |= FLAG_ENABLED;
            }
            if auto.mode == Mode::Target {
                flags |= FLAG_TARGET;
            }
            if auto.monthly_limit.is_some() {
                flags |= FLAG_LIMIT;
            }
        }
        if self.suspended {
            flags |= FLAG_SUSPENDED;
        }
        if self.recharge.is_some() {
            flags |= FLAG_RECHARGE;
        }
        if self.allocation.is_some() {
            flags |= FLAG_ALLOCATION;
        }
        if self.limit_notice_month.is_some() {
            flags |= FLAG_NOTICE;
        }
        out.byte(VERSION);
        out.byte(flags);
        if let Some(auto) = &self.auto {
            out.decimal(auto.threshold);
            out.decimal(auto.amount);
            out.string(&auto.card);
            if let Some(limit) = auto.monthly_limit {
                out.decimal(limit);
            }
        }
        out.unsigned(u64::from(self.seq));
        out.signed(self.usage.month);
        out.decimal(self.usage.charged);
        if let Some(month) = self.limit_notice_month {
            out.signed(month);
        }
        if let Some(recharge) = &self.recharge {
            out.unsigned(u64::from(recharge.seq));
            out.byte(recharge.attempt);
            out.decimal(recharge.amount);
            out.signed(recharge.attempted_at);
            out.signed(recharge.month);
            out.byte(u8::from(recharge.awaiting_retry));
        }
        if let Some(allocation) = &self.allocation {
            out.signed(allocation.settings.basic_minutes);
            out.signed(allocation.settings.premium_minutes);
            out.string(&allocation.settings.card);
            out.unsigned(u64::from(allocation.series));
            out.signed(allocation.anchor);
            out.unsigned(u64::from(allocation.next_period));
            match allocation.last_paid {
                Some(period) => {
                    out.byte(1);
                    out.unsigned(u64::from(period));
                }
                None => out.byte(0),
            }
            match &allocation.purchase {
                Some(purchase) => {
                    out.byte(1);
                    out.unsigned(u64::from(purchase.period));
                    out.byte(purchase.attempt);
                    out.signed(purchase.basic_minutes);
                    out.signed(purchase.premium_minutes);
                    out.signed(purchase.attempted_at);
                    out.byte(u8::from(purchase.awaiting_retry));
                }
                None => out.byte(0),
            }
        }
        out.0
    }
}

fn decode(bytes: &[u8]) -> Option<State> {
    let mut input = Reader { bytes };
    if input.byte()? != VERSION {
        return None;
    }
    let flags = input.byte()?;
    let has = |flag: u8| flags & flag != 0;
    let auto = if has(FLAG_AUTO) {
        Some(AutoRechargeSettings {
            enabled: has(FLAG_ENABLED),
            threshold: input.decimal()?,
            amount: input.decimal()?,
            card: input.string()?,
            mode: if has(FLAG_TARGET) {
                Mode::Target
            } else {
                Mode::Fixed
            },
            monthly_limit: if has(FLAG_LIMIT) {
                Some(input.decimal()?)
            } else {
                None
            },
        })
    } else {
        None
    };
    let seq = input.u32()?;
    let usage = MonthlyUsage {
        month: input.signed()?,
        charged: input.decimal()?,
    };
    let limit_notice_month = if has(FLAG_NOTICE) {
        Some(input.signed()?)
    } else {
        None
    };
    let recharge = if has(FLAG_RECHARGE) {
        Some(Recharge {
            seq: input.u32()?,
            attempt: input.attempt()?,
            amount: input.decimal()?,
            attempted_at: input.signed()?,
            month: input.signed()?,
            awaiting_retry: input.flag()?,
        })
    } else {
        None
    };
    let allocation = if has(FLAG_ALLOCATION) {
        Some(Allocation {
            settings: AllocationSettings {
                basic_minutes: input.signed()?,
                premium_minutes: input.signed()?,
                card: input.string()?,
            },
            series: input.u32()?,
            anchor: input.signed()?,
            next_period: input.u32()?,
            last_paid: if input.flag()? {
                Some(input.u32()?)
            } else {
                None
            },
            purchase: if input.flag()? {
                Some(Purchase {
                    period: input.u32()?,
                    attempt: input.attempt()?,
                    basic_minutes: input.signed()?,
                    premium_minutes: input.signed()?,
                    attempted_at: input.signed()?,
                    awaiting_retry: input.flag()?,
                })
            } else {
                None
            },
        })
    } else {
        None
    };
    if !input.bytes.is_empty() {
        return None;
    }
    Some(State {
        auto,
        suspended: has(FLAG_SUSPENDED),
        seq,
        usage,
        limit_notice_month,
        recharge,
        allocation,
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn byte(&mut self, value: u8) {
        self.0.push(value);
    }

    fn unsigned(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn signed(&mut self, value: i64) {
        self.unsigned(((value << 1) ^ (value >> 63)) as u64);
    }

    fn wide(&mut self, mut value: u128) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn decimal(&mut self, value: Decimal) {
        // A decimal's scale is at most 28 and its mantissa fits 96 bits, so both
        // the cast and the zig-zag shift are lossless.
        self.byte(value.scale() as u8);
        let mantissa = value.mantissa();
        // Money fits 64 bits: the same varint, without 128-bit arithmetic (which
        // wasm32 emulates).
        match i64::try_from(mantissa) {
            Ok(narrow) => self.signed(narrow),
            Err(_) => self.wide(((mantissa << 1) ^ (mantissa >> 127)) as u128),
        }
    }

    fn string(&mut self, value: &str) {
        self.unsigned(value.len() as u64);
        self.0.extend_from_slice(value.as_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn attempt(&mut self) -> Option<u8> {
        Some(self.byte()?).filter(|attempt| (1..=MAX_ATTEMPTS).contains(attempt))
    }

    /// A varint of at most `bits` significant bits.
    fn wide(&mut self, bits: u32) -> Option<u128> {
        let mut value: u128 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            let part = u128::from(byte & 0x7f);
            if shift >= bits || (part << shift) >> shift != part {
                return None;
            }
            value |= part << shift;
            if byte & 0x80 == 0 {
                return (value >> bits == 0).then_some(value);
            }
            shift += 7;
        }
    }

    fn unsigned(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            let part = u64::from(byte & 0x7f);
            if shift >= 64 || (part << shift) >> shift != part {
                return None;
            }
            value |= part << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
            shift += 7;
        }
    }

    fn u32(&mut self) -> Option<u32> {
        self.unsigned().and_then(|value| u32::try_from(value).ok())
    }

    fn signed(&mut self) -> Option<i64> {
        let value = self.unsigned()?;
        Some(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    fn decimal(&mut self) -> Option<Decimal> {
        let scale = self.byte()?;
        // Most mantissas fit 64 bits: read those without 128-bit arithmetic.
        let mut probe = Reader { bytes: self.bytes };
        if let Some(narrow) = probe.signed() {
            self.bytes = probe.bytes;
            return Decimal::try_from_i128_with_scale(i128::from(narrow), u32::from(scale)).ok();
        }
        let zigzag = self.wide(98)?;
        let mantissa = ((zigzag >> 1) as i128) ^ -((zigzag & 1) as i128);
        Decimal::try_from_i128_with_scale(mantissa, u32::from(scale)).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.unsigned()?).ok()?;
        if len > self.bytes.len() {
            return None;
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        core::str::from_utf8(text).ok().map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn full_state() -> State {
        State {
            auto: Some(AutoRechargeSettings {
                enabled: true,
                threshold: d("15.00"),
                amount: d("10"),
                card: "visa-1".into(),
                mode: Mode::Target,
                monthly_limit: Some(d("100.00")),
            }),
            suspended: true,
            seq: 7,
            usage: MonthlyUsage {
                month: 24_313,
                charged: d("30.00"),
            },
            limit_notice_month: Some(24_312),
            recharge: Some(Recharge {
                seq: 7,
                attempt: 3,
                amount: d("20.00"),
                attempted_at: -1_234_567,
                month: 24_313,
                awaiting_retry: true,
            }),
            allocation: Some(Allocation {
                settings: AllocationSettings {
                    basic_minutes: 100,
                    premium_minutes: i64::MAX,
                    card: "agency-card".into(),
                },
                series: 3,
                anchor: 1_800_000_000_000,
                next_period: 12,
                last_paid: Some(11),
                purchase: Some(Purchase {
                    period: 11,
                    attempt: 2,
                    basic_minutes: 100,
                    premium_minutes: i64::MIN,
                    attempted_at: 1_800_000_300_000,
                    awaiting_retry: false,
                }),
            }),
        }
    }

    #[test]
    fn round_trips_every_field() {
        let state = full_state();
        assert_eq!(State::decode(&state.encode()), state);
        let fresh = State::default();
        assert_eq!(State::decode(&fresh.encode()), fresh);
    }

    #[test]
    fn keeps_the_scale_of_saved_money() {
        let state = full_state();
        let decoded = State::decode(&state.encode());
        let auto = decoded.auto.unwrap();
        assert_eq!(auto.threshold.to_string(), "15.00");
        assert_eq!(auto.amount.to_string(), "10");
    }

    #[test]
    fn extreme_decimals_round_trip() {
        let mut state = State::default();
        state.usage.charged = Decimal::MIN;
        assert_eq!(State::decode(&state.encode()), state);
        state.usage.charged = Decimal::MAX;
        assert_eq!(State::decode(&state.encode()), state);
        state.usage.charged = Decimal::new(-1, 28);
        assert_eq!(State::decode(&state.encode()), state);
    }

    #[test]
    fn bad_bytes_read_as_fresh_state() {
        assert_eq!(State::decode(&[]), State::default());
        assert_eq!(State::decode(&[2, 0, 0, 0, 0, 0]), State::default());
        let bytes = full_state().encode();
        for len in 0..bytes.len() {
            assert_eq!(
                State::decode(&bytes[..len]),
                State::default(),
                "prefix {len}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(State::decode(&trailing), State::default());
        assert_eq!(
            State::decode(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            State::default()
        );
    }

    #[test]
    fn gate_reads_the_threshold_only_when_a_recharge_may_trigger() {
        let mut state = full_state();
        state.suspended = false;
        state.recharge = None;
        assert_eq!(recharge_gate(&state.encode()), Some(d("15.00")));
        state.suspended = true;
        assert_eq!(recharge_gate(&state.encode()), None);
        state.suspended = false;
        state.auto.as_mut().unwrap().enabled = false;
        assert_eq!(recharge_gate(&state.encode()), None);
        assert_eq!(recharge_gate(&[]), None);
        assert_eq!(recharge_gate(&[1, FLAG_AUTO | FLAG_ENABLED]), None);
    }

    #[test]
    fn monthly_usage_starts_each_month_afresh() {
        let mut usage = MonthlyUsage::default();
        usage.add(5, d("20")).unwrap();
        usage.add(5, d("10")).unwrap();
        assert_eq!(usage.charged_in(5), d("30"));
        assert_eq!(usage.charged_in(6), Decimal::ZERO);
        usage.remove(4, d("30"));
        assert_eq!(usage.charged_in(5), d("30"));
        usage.remove(5, d("20"));
        assert_eq!(usage.charged_in(5), d("10"));
        usage.add(6, d("1")).unwrap();
        assert_eq!(usage.charged_in(5), Decimal::ZERO);
        assert_eq!(usage.charged_in(6), d("1"));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..96)) {
            let state = State::decode(&bytes);
            let _ = recharge_gate(&bytes);
            proptest::prop_assert_eq!(State::decode(&state.encode()), state);
        }
    }
}
