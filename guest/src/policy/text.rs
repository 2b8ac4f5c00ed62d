//! Notice messages and keys, written without `core::fmt`: its machinery costs a
//! wasm policy more fuel than the decision the message reports.

use alloc::{string::String, vec::Vec};
use rust_decimal::Decimal;

use crate::money::write_display;

/// A notice message put together as bytes and checked as UTF-8 once at the end:
/// a `String` encodes every character pushed to it, and `format!` costs more
/// still.
pub(super) struct Message(Vec<u8>);

impl Message {
    pub fn new() -> Message {
        Message(Vec::with_capacity(128))
    }

    pub fn text(mut self, text: &str) -> Message {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    /// An amount as [`display`](crate::money::display) writes it.
    pub fn money(mut self, amount: Decimal) -> Message {
        write_display(&mut self.0, amount);
        self
    }

    pub fn finish(self) -> String {
        // Text and ASCII digits: always UTF-8.
        String::from_utf8(self.0).unwrap_or_default()
    }
}

/// The parts one after the other, in a string of exactly their length.
pub(super) fn concat(parts: &[&str]) -> String {
    let mut text = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        text.push_str(part);
    }
    text
}

/// The largest power of ten not above `number` (1 for 0): the place of its
/// first digit.
fn first_place(number: u64) -> u64 {
    let mut place = 1;
    while number / place >= 10 {
        place *= 10;
    }
    place
}

/// The digit of `number` at `place`, as ASCII.
fn digit(number: u64, place: u64) -> u8 {
    b'0' + (number / place % 10) as u8
}

/// `number` as `format!("{number}")` writes it, appended to `out`.
pub(super) fn push_unsigned(out: &mut String, number: u64) {
    let mut place = first_place(number);
    loop {
        out.push(char::from(digit(number, place)));
        if place == 1 {
            return;
        }
        place /= 10;
    }
}

/// A signed number as `format!("{number}")` writes it, appended to `out`.
pub(super) fn push_signed(out: &mut String, number: i64) {
    if number < 0 {
        out.push('-');
    }
    push_unsigned(out, number.unsigned_abs());
}

/// `text` after the digits of `number`, if it starts with them.
pub(super) fn strip_unsigned(text: &[u8], number: u64) -> Option<&[u8]> {
    let mut place = first_place(number);
    let mut rest = text;
    loop {
        let (&first, tail) = rest.split_first()?;
        if first != digit(number, place) {
            return None;
        }
        rest = tail;
        if place == 1 {
            return Some(rest);
        }
        place /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn numbers_read_as_format_writes_them() {
        for number in [0, 7, 10, 99, 100, 1_000_000, u64::MAX] {
            let mut text = String::new();
            push_unsigned(&mut text, number);
            assert_eq!(text, format!("{number}"));
            let tail = format!("{number}/x");
            assert_eq!(strip_unsigned(tail.as_bytes(), number), Some(&b"/x"[..]));
            assert_eq!(
                strip_unsigned(tail.as_bytes(), number.wrapping_add(1)),
                None
            );
        }
        assert_eq!(strip_unsigned(b"1", 12), None);
        for number in [0, -1, 42, i64::MIN, i64::MAX] {
            let mut text = String::new();
            push_signed(&mut text, number);
            assert_eq!(text, format!("{number}"));
        }
    }

    #[test]
    fn messages_join_text_and_money() {
        let message = Message::new()
            .text("auto-recharge of ")
            .money(Decimal::new(-35, 1))
            .text(" failed")
            .finish();
        assert_eq!(message, "auto-recharge of -3.50 failed");
    }

    #[test]
    fn concat_joins_in_order() {
        assert_eq!(concat(&["a", "", "bc"]), "abc");
        assert_eq!(concat(&[]), "");
    }
}
