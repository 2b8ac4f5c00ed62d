//! Request bodies as script commands: a body has the fields of its script
//! line (SPEC.md §7) less those the path gives, and is read by the script
//! parser itself ([`recharge_sim::script`]), so the service accepts exactly
//! what scripts accept (strict money syntax, id and range checks) and its
//! messages name the field the way script messages do.

use std::path::Path;

use recharge_host::input;
use recharge_policy_sdk::model::Timestamp;
use recharge_sim::report::time;
use recharge_sim::script::{Command, parse_script};
use serde_json::{Map, Value};

use crate::problem::Problem;

/// The fields a script line has that no body may give: the service says when
/// a command runs and what it is.
const LINE_FIELDS: [&str; 2] = ["at", "do"];

/// Parse a JSON body as the script command `name`, with `path` giving some of
/// its fields (the account, the card).
pub fn command(
    name: &str,
    body: &[u8],
    path: &[(&str, &str)],
    now: Timestamp,
) -> Result<Command, Problem> {
    command_of(name, object(body)?, path, now)
}

/// The JSON object of a body; an empty body is an empty object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Problem::bad_request(
            "the body must be one JSON object",
            None,
        )),
        Err(err) => Err(Problem::bad_request(
            format!("the body is not JSON: {err}"),
            None,
        )),
    }
}

/// [`command`] from an object already parsed (one record of a batch).
pub fn command_of(
    name: &str,
    mut fields: Map<String, Value>,
    path: &[(&str, &str)],
    now: Timestamp,
) -> Result<Command, Problem> {
    for reserved in LINE_FIELDS {
        if fields.contains_key(reserved) {
            return Err(Problem::bad_field(format!(
                "unknown field `{reserved}` for `{name}`"
            )));
        }
    }
    for (field, value) in path {
        if fields.contains_key(*field) {
            return Err(Problem::bad_field(format!(
                "`{field}` is given by the path, not the body"
            )));
        }
        fields.insert((*field).to_owned(), Value::String((*value).to_owned()));
    }
    fields.insert("at".into(), Value::String(time(now)));
    fields.insert("do".into(), Value::String(name.to_owned()));
    let line = Value::Object(fields).to_string();
    let mut lines = parse_script(Path::new("request"), &line)
        .map_err(|malformed| Problem::bad_field(malformed.message))?;
    match lines.pop() {
        Some(line) => Ok(line.command),
        None => Err(Problem::bad_request("the body is empty", None)),
    }
}

/// An id from the path or the query (`account`, `card`, `actor`), held to
/// the rules of ids.
pub fn id(field: &'static str, value: &str) -> Result<String, Problem> {
    input::check_id(field, value)
        .map_err(|err| Problem::bad_request(err.to_string(), Some(field.to_owned())))?;
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use recharge_policy_sdk::model::MinuteType;

    use super::*;

    const NOW: Timestamp = 1_767_225_600_000;

    #[test]
    fn a_body_is_its_script_line_less_the_path() {
        let body = br#"{"call":"c1","seconds":60,"type":"premium"}"#;
        let command = command("usage", body, &[("account", "u")], NOW).unwrap();
        assert_eq!(
            command,
            Command::Usage {
                account: "u".into(),
                call: "c1".into(),
                seconds: 60,
                minute_type: MinuteType::Premium,
            }
        );
    }

    // Bad input never reaches a policy: every malformed body names its field.
    #[test]
    fn bad_input_is_a_bad_request_naming_the_field() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"card":"c","amount":10}"#, "amount"),
            (br#"{"card":"c"}"#, "amount"),
            (br#"{"card":"c","amount":"1","extra":1}"#, "extra"),
            (br#"{"account":"v","card":"c","amount":"1"}"#, "account"),
            (
                br#"{"at":"2026-01-01T00:00:00Z","card":"c","amount":"1"}"#,
                "at",
            ),
        ];
        for (body, field) in cases {
            let problem = command("top_up", body, &[("account", "u")], NOW).unwrap_err();
            assert_eq!(problem.code, "bad_request");
            assert_eq!(problem.field.as_deref(), Some(field), "{}", problem.detail);
        }
        let problem = command("top_up", b"[1]", &[], NOW).unwrap_err();
        assert_eq!(problem.field, None);
        assert!(command("top_up", b"{\"amount\":", &[], NOW).is_err());
    }
}
