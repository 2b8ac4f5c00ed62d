//! What the conversions between the contract's types and the model share
//! across versions (each version's conversions are in `bindings/glue.rs`).

/// A value a policy sent that the host cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy returned a malformed value: {0}")]
pub struct Malformed(pub String);
