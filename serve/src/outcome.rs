//! A gateway's word on a charge, as JSON: what `POST /v1/payment-outcomes`
//! takes and what the platform's gateway answers the webhook gateway.
//!
//! `{"outcome": "succeeded" | "declined" | "failed" | "requires_action" |
//! "pending", "reference": "...", "reason": "..."}`: `reference` (the
//! gateway's own id) and `reason` (why it declined or failed) are optional.

use recharge_host::{GatewayAnswer, Settlement};
use recharge_policy_sdk::model::ChargeOutcome;
use serde_json::{Map, Value};

use crate::problem::Problem;

/// The outcomes a gateway may give, as spelled in JSON.
pub const OUTCOMES: [&str; 5] = [
    "succeeded",
    "declined",
    "failed",
    "requires_action",
    "pending",
];

/// The fields an answer may carry.
const ANSWER_FIELDS: [&str; 3] = ["outcome", "reference", "reason"];

/// The answer in `fields`; any field but those of an answer and `extra` is
/// refused, naming it.
pub fn answer_of(fields: &Map<String, Value>, extra: &[&str]) -> Result<GatewayAnswer, Problem> {
    if let Some(other) = fields
        .keys()
        .find(|name| !ANSWER_FIELDS.contains(&name.as_str()) && !extra.contains(&name.as_str()))
    {
        return Err(Problem::bad_request(
            format!("unknown field `{other}`"),
            Some(other.clone()),
        ));
    }
    let outcome = text(fields, "outcome")?
        .ok_or_else(|| Problem::bad_request("missing field `outcome`", Some("outcome".into())))?;
    let reference = text(fields, "reference")?;
    let outcome = match outcome.as_str() {
        "succeeded" => ChargeOutcome::Succeeded,
        "declined" => ChargeOutcome::Declined,
        "failed" => ChargeOutcome::Failed,
        "requires_action" => ChargeOutcome::RequiresAction,
        "pending" => return Ok(GatewayAnswer::Pending { reference }),
        other => {
            return Err(Problem::bad_request(
                format!("`outcome`: {other:?} is not one of {}", OUTCOMES.join(", ")),
                Some("outcome".into()),
            ));
        }
    };
    Ok(GatewayAnswer::Settled(Settlement {
        outcome,
        reference,
        reason: text(fields, "reason")?,
    }))
}

/// An optional string field, at most 200 characters.
pub fn text(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, Problem> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() <= 200 => Ok(Some(text.clone())),
        Some(Value::String(_)) => Err(Problem::bad_request(
            format!("`{name}`: longer than 200 characters"),
            Some(name.into()),
        )),
        Some(_) => Err(Problem::bad_request(
            format!("`{name}`: expected a string"),
            Some(name.into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(fields) => fields,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_outcome_reads_and_a_wrong_one_names_its_field() {
        let settled = answer_of(
            &fields(json!({"outcome": "declined", "reason": "insufficient funds"})),
            &[],
        )
        .unwrap();
        assert_eq!(
            settled,
            GatewayAnswer::Settled(Settlement {
                outcome: ChargeOutcome::Declined,
                reference: None,
                reason: Some("insufficient funds".into()),
            })
        );
        let pending = answer_of(
            &fields(json!({"outcome": "pending", "reference": "ch_1"})),
            &[],
        );
        assert_eq!(
            pending.unwrap(),
            GatewayAnswer::Pending {
                reference: Some("ch_1".into())
            }
        );
        let wrong = answer_of(&fields(json!({"outcome": "maybe"})), &[]).unwrap_err();
        assert_eq!(wrong.field.as_deref(), Some("outcome"));
        let missing = answer_of(&fields(json!({})), &[]).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("outcome"));
        let stray = answer_of(&fields(json!({"outcome": "failed", "cents": 5})), &[]).unwrap_err();
        assert_eq!(stray.field.as_deref(), Some("cents"));
        let typed = answer_of(&fields(json!({"outcome": "failed", "reason": 5})), &[]).unwrap_err();
        assert_eq!(typed.field.as_deref(), Some("reason"));
    }
}
