//! What the durable stores share in how they keep a record: one JSON document
//! (money as decimal strings), the same in SQLite and PostgreSQL, and 64-bit
//! integers as both databases store them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// A record as the text a store keeps.
pub(crate) fn encode(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Backend(format!("a record does not encode: {err}")))
}

/// A record read back from its text.
pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|err| StoreError::Backend(format!("a stored record does not read back: {err}")))
}

/// A timer's tag as both databases store integers (the same 64 bits).
pub(crate) fn tag_column(tag: u64) -> i64 {
    tag as i64
}
