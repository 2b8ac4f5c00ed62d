//! What the policy keeps for one account, and its compact binary form.
//!
//! The state travels as the account's opaque state bytes. Its first byte is the
//! format version; anything empty, of an unknown version or undecodable reads as
//! a fresh state, so bad bytes can never make the policy panic.
//!
//! Both versions hold the same fields in the same order:
//!
//! ```text
//! version, flags (see the FLAG_* constants), holds (HOLD_*, version 3 only)
//! [AUTO] threshold, amount, card, [LIMIT] monthly_limit
//! seq, usage.month, usage.charged, [NOTICE] limit_notice_month
//! [DEFERRED] deferred_until
//! [RECHARGE] seq, attempt, amount, attempted_at, month, awaiting_retry
//! [ALLOCATION] basic, premium, card, series, anchor, next_period,
//!              last_paid (0 | 1 period), purchase (0 | 1 period attempt basic
//!              premium attempted_at awaiting_retry)
//! ```
//!
//! Version 3, written now, has fixed-width fields, little-endian: a `u32` in 4
//! bytes, an `i64` in 8, a decimal in the 16 bytes of `Decimal::serialize`, a
//! string as its `u32` byte length then its UTF-8 bytes; attempts and 0 | 1
//! markers take a byte. A wasm policy reads and writes that with a load or a
//! store per field, where varints cost a loop per byte.
//!
//! Version 2, still read, is version 3 without the holds byte (and so without
//! holds). Version 1, still read, has LEB128 varints instead of fixed-width
//! fields (signed ones zig-zag encoded; a decimal is its scale byte then its
//! zig-zag mantissa, a string its varint length then its bytes), and no holds.
//!
//! The threshold sits at a fixed offset right after the flags (and holds) in
//! all of them, so the usage hot path ([`recharge_gate`]) can decide "nothing to
//! do" without decoding the rest.

use alloc::{boxed::Box, string::String, vec::Vec};
use rust_decimal::Decimal;

use crate::model::{AllocationSettings, AutoRechargeSettings, Mode, Timestamp};
use crate::money;

/// The current format version, the state's first byte.
const VERSION: u8 = 3;
/// The format before holds: still read, no longer written.
const VERSION_2: u8 = 2;
/// The first format, with varints: still read, no longer written.
const VERSION_1: u8 = 1;

const FLAG_AUTO: u8 = 0x01;
const FLAG_ENABLED: u8 = 0x02;
const FLAG_SUSPENDED: u8 = 0x04;
const FLAG_RECHARGE: u8 = 0x08;
const FLAG_ALLOCATION: u8 = 0x10;
const FLAG_TARGET: u8 = 0x20;
const FLAG_LIMIT: u8 = 0x40;
const FLAG_NOTICE: u8 = 0x80;

/// Holds: auto-recharge waits, for a reason that is not the card's.
const HOLD_REFUSED: u8 = 0x01;
const HOLD_DEFERRED: u8 = 0x02;

/// The highest attempt number of a charge: the first try and three retries (R5).
pub(super) const MAX_ATTEMPTS: u8 = 4;

/// The policy's state for one account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct State {
    /// The auto-recharge settings, if ever saved.
    pub auto: Option<AutoRechargeSettings>,
    /// Auto-recharge stopped by a final failure until a card update or a payment.
    pub suspended: bool,
    /// Auto-recharge held after the host refused a recharge outright (no card
    /// was charged), until the settings, the card or the balance change: a
    /// save, a card update or a payment lifts it.
    pub refused: bool,
    /// Auto-recharge deferred, the host's daily count of auto-recharges being
    /// reached, until this time (the next UTC day).
    pub deferred_until: Option<Timestamp>,
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
/// auto-recharge cannot trigger now (never saved, disabled, suspended, held, or
/// a recharge already in flight). Reads four fields and allocates nothing.
pub(super) fn recharge_gate(bytes: &[u8]) -> Option<Decimal> {
    let [version, flags, rest @ ..] = bytes else {
        return None;
    };
    let ready = FLAG_AUTO | FLAG_ENABLED;
    if flags & (ready | FLAG_SUSPENDED | FLAG_RECHARGE) != ready {
        return None;
    }
    match *version {
        VERSION => match rest {
            [0, rest @ ..] => Fixed(rest).decimal(),
            _ => None,
        },
        VERSION_2 => Fixed(rest).decimal(),
        VERSION_1 => Varints(rest).decimal(),
        _ => None,
    }
}

impl State {
    /// Decode state bytes of either version; anything empty or undecodable is a
    /// fresh state.
    pub fn decode(bytes: &[u8]) -> State {
        let mut state = State::default();
        state.load(bytes);
        state
    }

    /// Decode into this fresh state, in place: a state is a few hundred bytes,
    /// and a wasm policy pays a unit of fuel for every byte it moves.
    pub fn load(&mut self, bytes: &[u8]) {
        let read = match bytes.split_first() {
            Some((&VERSION, rest)) => self.read(Fixed(rest), true),
            Some((&VERSION_2, rest)) => self.read(Fixed(rest), false),
            Some((&VERSION_1, rest)) => self.read_version_1(rest),
            _ => None,
        };
        if read.is_none() {
            *self = State::default();
        }
    }

    /// Version 1, out of line: read once per account, then written anew.
    #[cold]
    #[inline(never)]
    fn read_version_1(&mut self, bytes: &[u8]) -> Option<()> {
        self.read(Varints(bytes), false)
    }

    /// Encode to the current format.
    pub fn encode(&self) -> Vec<u8> {
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
        let mut holds = 0;
        if self.refused {
            holds |= HOLD_REFUSED;
        }
        if self.deferred_until.is_some() {
            holds |= HOLD_DEFERRED;
        }
        let mut bytes = alloc::vec![0; self.encoded_len()];
        let mut out = Writer {
            bytes: &mut bytes,
            at: 0,
        };
        out.byte(VERSION);
        out.byte(flags);
        out.byte(holds);
        if let Some(auto) = &self.auto {
            out.decimal(auto.threshold);
            out.decimal(auto.amount);
            out.string(&auto.card);
            if let Some(limit) = auto.monthly_limit {
                out.decimal(limit);
            }
        }
        out.u32(self.seq);
        out.i64(self.usage.month);
        out.decimal(self.usage.charged);
        if let Some(month) = self.limit_notice_month {
            out.i64(month);
        }
        if let Some(until) = self.deferred_until {
            out.i64(until);
        }
        if let Some(recharge) = &self.recharge {
            out.u32(recharge.seq);
            out.byte(recharge.attempt);
            out.decimal(recharge.amount);
            out.i64(recharge.attempted_at);
            out.i64(recharge.month);
            out.byte(u8::from(recharge.awaiting_retry));
        }
        if let Some(allocation) = &self.allocation {
            out.i64(allocation.settings.basic_minutes);
            out.i64(allocation.settings.premium_minutes);
            out.string(&allocation.settings.card);
            out.u32(allocation.series);
            out.i64(allocation.anchor);
            out.u32(allocation.next_period);
            match allocation.last_paid {
                Some(period) => {
                    out.byte(1);
                    out.u32(period);
                }
                None => out.byte(0),
            }
            match &allocation.purchase {
                Some(purchase) => {
                    out.byte(1);
                    out.u32(purchase.period);
                    out.byte(purchase.attempt);
                    out.i64(purchase.basic_minutes);
                    out.i64(purchase.premium_minutes);
                    out.i64(purchase.attempted_at);
                    out.byte(u8::from(purchase.awaiting_retry));
                }
                None => out.byte(0),
            }
        }
        debug_assert_eq!(out.at, out.bytes.len(), "encoded_len is exact");
        bytes
    }

    /// The exact length of the encoded state, to allocate it once and write it
    /// in place.
    fn encoded_len(&self) -> usize {
        const DECIMAL: usize = 16;
        let mut len = 3 + 4 + 8 + DECIMAL;
        if let Some(auto) = &self.auto {
            len += 2 * DECIMAL + 4 + auto.card.len();
            if auto.monthly_limit.is_some() {
                len += DECIMAL;
            }
        }
        if self.limit_notice_month.is_some() {
            len += 8;
        }
        if self.deferred_until.is_some() {
            len += 8;
        }
        if self.recharge.is_some() {
            len += 4 + 1 + DECIMAL + 8 + 8 + 1;
        }
        if let Some(allocation) = &self.allocation {
            len += 8 + 8 + 4 + allocation.settings.card.len() + 4 + 8 + 4 + 1 + 1;
            if allocation.last_paid.is_some() {
                len += 4;
            }
            if allocation.purchase.is_some() {
                len += 4 + 1 + 8 + 8 + 8 + 1;
            }
        }
        len
    }
}

impl State {
    /// Fill in the fields of a fresh state from the bytes after the version
    /// byte, in any format (`with_holds` for version 3); `None` (leaving the
    /// state half read) for bytes that format did not write.
    fn read(&mut self, mut input: impl Fields, with_holds: bool) -> Option<()> {
        let flags = input.byte()?;
        let holds = if with_holds { input.byte()? } else { 0 };
        if holds & !(HOLD_REFUSED | HOLD_DEFERRED) != 0 {
            return None;
        }
        let has = |flag: u8| flags & flag != 0;
        self.suspended = has(FLAG_SUSPENDED);
        self.refused = holds & HOLD_REFUSED != 0;
        if has(FLAG_AUTO) {
            self.auto = Some(AutoRechargeSettings {
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
            });
        }
        self.seq = input.u32()?;
        self.usage = MonthlyUsage {
            month: input.i64()?,
            charged: input.decimal()?,
        };
        if has(FLAG_NOTICE) {
            self.limit_notice_month = Some(input.i64()?);
        }
        if holds & HOLD_DEFERRED != 0 {
            self.deferred_until = Some(input.i64()?);
        }
        if has(FLAG_RECHARGE) {
            self.recharge = Some(Recharge {
                seq: input.u32()?,
                attempt: input.attempt()?,
                amount: input.decimal()?,
                attempted_at: input.i64()?,
                month: input.i64()?,
                awaiting_retry: input.flag()?,
            });
        }
        if has(FLAG_ALLOCATION) {
            self.allocation = Some(Allocation {
                settings: AllocationSettings {
                    basic_minutes: input.i64()?,
                    premium_minutes: input.i64()?,
                    card: input.string()?,
                },
                series: input.u32()?,
                anchor: input.i64()?,
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
                        basic_minutes: input.i64()?,
                        premium_minutes: input.i64()?,
                        attempted_at: input.i64()?,
                        awaiting_retry: input.flag()?,
                    })
                } else {
                    None
                },
            });
        }
        input.is_empty().then_some(())
    }
}

/// How a format reads each kind of field; `None` for bytes it did not write.
trait Fields {
    fn byte(&mut self) -> Option<u8>;
    fn u32(&mut self) -> Option<u32>;
    fn i64(&mut self) -> Option<i64>;
    fn decimal(&mut self) -> Option<Decimal>;
    fn string(&mut self) -> Option<String>;
    /// Whether every byte was read.
    fn is_empty(&self) -> bool;

    /// A 0 | 1 marker.
    #[inline(always)]
    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// An attempt number, 1 to [`MAX_ATTEMPTS`].
    #[inline(always)]
    fn attempt(&mut self) -> Option<u8> {
        Some(self.byte()?).filter(|attempt| (1..=MAX_ATTEMPTS).contains(attempt))
    }
}

/// The decimal of the 16 bytes of `Decimal::serialize`, if they are one: flags
/// with only a sign and a scale of at most 28.
#[inline(always)]
fn decimal_from_words(bytes: [u8; 16]) -> Option<Decimal> {
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let flags = word(0);
    let scale = (flags >> 16) & 0xff;
    if flags & !0x80ff_0000 != 0 || scale > Decimal::MAX_SCALE {
        return None;
    }
    Some(Decimal::from_parts(
        word(4),
        word(8),
        word(12),
        flags & 0x8000_0000 != 0,
        scale,
    ))
}

/// Version 2 and 3 fields.
struct Fixed<'a>(&'a [u8]);

impl Fixed<'_> {
    #[inline(always)]
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

impl Fields for Fixed<'_> {
    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    #[inline(always)]
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    #[inline(always)]
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    #[inline(always)]
    fn decimal(&mut self) -> Option<Decimal> {
        self.take().and_then(decimal_from_words)
    }

    #[inline(always)]
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        // Through a boxed `str`: its allocation costs a wasm policy less fuel
        // than a `String`'s.
        let text = core::str::from_utf8(text).ok()?;
        Some(String::from(Box::<str>::from(text)))
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Version 1 fields.
struct Varints<'a>(&'a [u8]);

impl Varints<'_> {
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
}

impl Fields for Varints<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn u32(&mut self) -> Option<u32> {
        self.unsigned().and_then(|value| u32::try_from(value).ok())
    }

    fn i64(&mut self) -> Option<i64> {
        let value = self.unsigned()?;
        Some(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    fn decimal(&mut self) -> Option<Decimal> {
        let scale = self.byte()?;
        // Most mantissas fit 64 bits: read those without 128-bit arithmetic.
        let wide = self.0;
        if let Some(mantissa) = self.i64() {
            return money::from_parts(mantissa, scale);
        }
        self.0 = wide;
        let zigzag = self.wide(98)?;
        let mantissa = ((zigzag >> 1) as i128) ^ -((zigzag & 1) as i128);
        Decimal::try_from_i128_with_scale(mantissa, u32::from(scale)).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.unsigned()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        core::str::from_utf8(text).ok().map(String::from)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Version 2 output, written in place into bytes of exactly the encoded length
/// ([`State::encoded_len`]): fixed-width fields become single stores, where
/// appending each would call into `Vec`'s slice copying. A length that fell
/// short would be a bug, and panics rather than write a truncated state.
struct Writer<'a> {
    bytes: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    #[inline(always)]
    fn put<const N: usize>(&mut self, value: [u8; N]) {
        self.bytes[self.at..self.at + N].copy_from_slice(&value);
        self.at += N;
    }

    #[inline(always)]
    fn byte(&mut self, value: u8) {
        self.put([value]);
    }

    #[inline(always)]
    fn u32(&mut self, value: u32) {
        self.put(value.to_le_bytes());
    }

    #[inline(always)]
    fn i64(&mut self, value: i64) {
        self.put(value.to_le_bytes());
    }

    #[inline(always)]
    fn decimal(&mut self, value: Decimal) {
        self.put(value.serialize());
    }

    #[inline(always)]
    fn string(&mut self, value: &str) {
        // The host keeps a state under 64 KiB, far from `u32::MAX`.
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.bytes[self.at..self.at + value.len()].copy_from_slice(value.as_bytes());
        self.at += value.len();
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
            refused: true,
            deferred_until: Some(1_800_086_400_000),
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

    /// `full_state()` without the holds versions 1 and 2 cannot carry.
    fn full_state_without_holds() -> State {
        State {
            refused: false,
            deferred_until: None,
            ..full_state()
        }
    }

    /// `full_state_without_holds()` as version 1 wrote it.
    const FULL_STATE_V1: &[u8] = &[
        1, 255, 2, 184, 23, 0, 20, 6, 118, 105, 115, 97, 45, 49, 2, 160, 156, 1, 7, 242, 251, 2, 2,
        240, 46, 240, 251, 2, 7, 3, 2, 160, 31, 141, 218, 150, 1, 242, 251, 2, 1, 200, 1, 254, 255,
        255, 255, 255, 255, 255, 255, 255, 1, 11, 97, 103, 101, 110, 99, 121, 45, 99, 97, 114, 100,
        3, 128, 192, 226, 133, 227, 104, 12, 1, 11, 1, 11, 2, 200, 1, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 1, 192, 143, 135, 134, 227, 104, 0,
    ];

    #[test]
    fn version_1_states_still_read() {
        assert_eq!(State::decode(FULL_STATE_V1), full_state_without_holds());
        for len in 0..FULL_STATE_V1.len() {
            assert_eq!(
                State::decode(&FULL_STATE_V1[..len]),
                State::default(),
                "prefix {len}"
            );
        }
        // `Decimal::MIN` charged in month -3: a 96-bit mantissa.
        let wide = [
            1, 0, 0, 5, 0, 253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 63,
        ];
        let mut state = State::default();
        state.usage.month = -3;
        state.usage.charged = Decimal::MIN;
        assert_eq!(State::decode(&wide), state);
        // Read once, written back in the current version.
        assert_eq!(State::decode(FULL_STATE_V1).encode()[0], VERSION);
        let mut bytes = FULL_STATE_V1.to_vec();
        bytes[1] &= !(FLAG_SUSPENDED | FLAG_RECHARGE);
        assert_eq!(recharge_gate(&bytes), Some(d("15.00")));
    }

    #[test]
    fn version_2_states_still_read() {
        // Version 2 is version 3 without the holds byte.
        let state = full_state_without_holds();
        let mut bytes = state.encode();
        assert_eq!(bytes.remove(2), 0);
        bytes[0] = VERSION_2;
        assert_eq!(State::decode(&bytes), state);
        bytes[1] &= !(FLAG_SUSPENDED | FLAG_RECHARGE);
        assert_eq!(recharge_gate(&bytes), Some(d("15.00")));
        assert_eq!(State::decode(&bytes).encode()[0], VERSION);
    }

    #[test]
    fn decimals_keep_only_what_a_decimal_can_be() {
        let mut bytes = State::default().encode();
        let charged = bytes.len() - 16;
        bytes[charged + 2] = 29;
        assert_eq!(State::decode(&bytes), State::default());
        bytes[charged + 2] = 28;
        bytes[charged] = 1;
        assert_eq!(State::decode(&bytes), State::default());
        bytes[charged] = 0;
        bytes[charged + 4] = 7;
        assert_eq!(State::decode(&bytes).usage.charged, Decimal::new(7, 28));
    }

    #[test]
    fn bad_bytes_read_as_fresh_state() {
        assert_eq!(State::decode(&[]), State::default());
        assert_eq!(State::decode(&[3, 0, 0, 0, 0, 0]), State::default());
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
        let mut state = full_state_without_holds();
        state.suspended = false;
        state.recharge = None;
        assert_eq!(recharge_gate(&state.encode()), Some(d("15.00")));
        state.suspended = true;
        assert_eq!(recharge_gate(&state.encode()), None);
        state.suspended = false;
        state.deferred_until = Some(0);
        assert_eq!(recharge_gate(&state.encode()), None, "deferred");
        state.deferred_until = None;
        assert_eq!(recharge_gate(&state.encode()), Some(d("15.00")));
        state.refused = true;
        assert_eq!(recharge_gate(&state.encode()), None, "refused");
        state.refused = false;
        state.auto.as_mut().unwrap().enabled = false;
        assert_eq!(recharge_gate(&state.encode()), None);
        assert_eq!(recharge_gate(&[]), None);
        assert_eq!(recharge_gate(&[1, FLAG_AUTO | FLAG_ENABLED]), None);
        assert_eq!(recharge_gate(&[VERSION, FLAG_AUTO | FLAG_ENABLED]), None);
        assert_eq!(recharge_gate(&[VERSION, FLAG_AUTO | FLAG_ENABLED, 0]), None);
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

    /// Any state: every section present or not, any numbers, any decimals, any
    /// card ids.
    fn states() -> impl proptest::strategy::Strategy<Value = State> {
        use proptest::prelude::*;
        let decimal = (any::<i128>(), 0u32..=28).prop_map(|(mantissa, scale)| {
            Decimal::from_i128_with_scale(mantissa % (1i128 << 96), scale)
        });
        let auto = (
            any::<bool>(),
            decimal.clone(),
            decimal.clone(),
            ".{0,12}",
            any::<bool>(),
            proptest::option::of(decimal.clone()),
        )
            .prop_map(
                |(enabled, threshold, amount, card, target, monthly_limit)| AutoRechargeSettings {
                    enabled,
                    threshold,
                    amount,
                    card,
                    mode: if target { Mode::Target } else { Mode::Fixed },
                    monthly_limit,
                },
            );
        let recharge = (
            any::<u32>(),
            1..=MAX_ATTEMPTS,
            decimal.clone(),
            any::<i64>(),
            any::<i64>(),
            any::<bool>(),
        )
            .prop_map(
                |(seq, attempt, amount, attempted_at, month, awaiting_retry)| Recharge {
                    seq,
                    attempt,
                    amount,
                    attempted_at,
                    month,
                    awaiting_retry,
                },
            );
        let purchase = (
            any::<u32>(),
            1..=MAX_ATTEMPTS,
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    period,
                    attempt,
                    basic_minutes,
                    premium_minutes,
                    attempted_at,
                    awaiting_retry,
                )| Purchase {
                    period,
                    attempt,
                    basic_minutes,
                    premium_minutes,
                    attempted_at,
                    awaiting_retry,
                },
            );
        let allocation = (
            any::<i64>(),
            any::<i64>(),
            ".{0,12}",
            any::<u32>(),
            any::<i64>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(purchase),
        )
            .prop_map(
                |(
                    basic_minutes,
                    premium_minutes,
                    card,
                    series,
                    anchor,
                    next_period,
                    last_paid,
                    purchase,
                )| Allocation {
                    settings: AllocationSettings {
                        basic_minutes,
                        premium_minutes,
                        card,
                    },
                    series,
                    anchor,
                    next_period,
                    last_paid,
                    purchase,
                },
            );
        (
            proptest::option::of(auto),
            any::<bool>(),
            any::<u32>(),
            any::<i64>(),
            decimal,
            proptest::option::of(any::<i64>()),
            proptest::option::of(recharge),
            proptest::option::of(allocation),
            (any::<bool>(), proptest::option::of(any::<i64>())),
        )
            .prop_map(
                |(
                    auto,
                    suspended,
                    seq,
                    month,
                    charged,
                    limit_notice_month,
                    recharge,
                    allocation,
                    (refused, deferred_until),
                )| State {
                    auto,
                    suspended,
                    refused,
                    deferred_until,
                    seq,
                    usage: MonthlyUsage { month, charged },
                    limit_notice_month,
                    recharge,
                    allocation,
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..96)) {
            let state = State::decode(&bytes);
            let _ = recharge_gate(&bytes);
            proptest::prop_assert_eq!(State::decode(&state.encode()), state);
        }

        #[test]
        fn every_state_round_trips_at_its_expected_length(state in states()) {
            let bytes = state.encode();
            proptest::prop_assert_eq!(bytes.len(), state.encoded_len());
            proptest::prop_assert_eq!(State::decode(&bytes), state);
        }
    }
}
