//! How the durable stores keep a record: one JSON document (money as decimal
//! strings), the same in SQLite and PostgreSQL.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A record as the text a store keeps.
pub(crate) fn encode(value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|err| err.to_string())
}

/// A record read back from its text.
pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|err| format!("a stored record does not read back: {err}"))
}
