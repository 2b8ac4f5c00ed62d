//! A policy that accepts every event, built against `tests/hostile/wit-0.2`: the
//! same contract at version 0.2.0. The host offers only `recharge:policy@0.1.0`,
//! so it must refuse to load this component.
#![no_std]

extern crate alloc;

use alloc::string::String;

wit_bindgen::generate!({
    world: "recharge-policy",
    path: "../wit-0.2",
});

use exports::recharge::policy::policy::{
    AccountView, Answer, Event, Guest, MinuteQuote, PolicyError, QueryKind,
};
use recharge::policy::balance::Account;
use recharge::policy::types::{Decimal, Rates};

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The canonical ABI's allocator (this guest has no libc to provide it).
///
/// # Safety
/// Called by the component runtime with a valid old allocation, or none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the runtime passes a power-of-two alignment and the old block's size.
    let block = unsafe {
        if old_len == 0 {
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if block.is_null() {
        core::arch::wasm32::unreachable();
    }
    block
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

struct NextVersion;

impl Guest for NextVersion {
    fn handle(
        _event: Event,
        _subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<(), PolicyError> {
        Ok(())
    }

    fn query(
        _actor: String,
        _what: QueryKind,
        _subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<Answer, PolicyError> {
        Ok(Answer::Service(true))
    }

    fn describe(_subject: &Account) -> AccountView {
        AccountView {
            auto_recharge: None,
            allocation: None,
        }
    }

    fn estimate(_basic: i64, _premium: i64, _rates: Rates) -> Decimal {
        Decimal {
            mantissa: 0,
            scale: 2,
        }
    }

    fn minutes_for(_credit: Decimal, _rates: Rates) -> MinuteQuote {
        MinuteQuote {
            basic_minutes: 0,
            premium_minutes: 0,
        }
    }
}

export!(NextVersion);
