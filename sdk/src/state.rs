//! A policy's own per-account state, typed: implement [`PolicyState`] for what
//! the policy remembers, and read and write it with
//! [`Helpers::load_state`](crate::Helpers::load_state) and
//! [`Helpers::save_state`](crate::Helpers::save_state). The host keeps the bytes
//! per account and per policy and commits them with the event.

use alloc::vec::Vec;

/// What a policy remembers about one account, as bytes the host keeps.
pub trait PolicyState: Default + Sized {
    /// The state as bytes (at most 64 KiB).
    fn encode(&self) -> Vec<u8>;
    /// The state from bytes it encoded earlier; `None` if they cannot be read.
    fn decode(bytes: &[u8]) -> Option<Self>;
}
