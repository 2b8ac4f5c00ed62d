//! Errors as `application/problem+json` (RFC 9457), with the error codes of
//! SPEC.md §7 and the service's own (`unauthorized`, `bad_request`,
//! `not_found`), and the field at fault when one is known.
//!
//! Whose fault it is decides the status: the caller's input is a 4xx, the
//! policy's decision is a 403 or 422, and a failure of the host itself is a
//! 500 whose detail blames neither the caller nor the tenant (the cause goes
//! to the log, not to the caller).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use recharge_host::{HostError, InvalidCommand};
use recharge_sim::replay::rejection_code;
use serde_json::{Value, json};

/// An error answered to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The machine-readable code (`bad_request`, `forbidden`, ...).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub detail: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}

impl Problem {
    /// A problem with no field named.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
        }
    }

    /// The caller's request is malformed; `field` is at fault, when known.
    pub fn bad_request(detail: impl Into<String>, field: Option<String>) -> Self {
        Problem {
            field,
            ..Problem::new(StatusCode::BAD_REQUEST, "bad_request", detail)
        }
    }

    /// A malformed request whose message names its field the way script
    /// messages do (the first name in backticks).
    pub fn bad_field(detail: String) -> Self {
        let field = backticked(&detail);
        Problem::bad_request(detail, field)
    }

    /// No valid API key.
    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API key as `Authorization: Bearer KEY`",
        )
    }

    /// Nothing here.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// The host itself failed: logged in full, answered without its cause.
    pub fn host_failure(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!("host failure: {cause}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the host failed to carry out the request (not the request's fault \
             nor the policy's); what committed before the failure stays committed",
        )
    }

    /// Name the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The problem document.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "type": format!("urn:recharge:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Some(field) = &self.field {
            body["field"] = Value::String(field.clone());
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.to_json().to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<HostError> for Problem {
    fn from(error: HostError) -> Self {
        let detail = error.to_string();
        let (status, code) = match &error {
            HostError::AlreadyExists(_) => (StatusCode::CONFLICT, "already_exists"),
            HostError::Rating(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings"),
            HostError::Load(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            // The codes of scripts (SPEC §7).
            other => match rejection_code(other) {
                Some(code @ "unknown_account") => (StatusCode::NOT_FOUND, code),
                Some(code @ "forbidden") => (StatusCode::FORBIDDEN, code),
                Some(code) => (StatusCode::UNPROCESSABLE_ENTITY, code),
                None => return Problem::host_failure(&error),
            },
        };
        Problem {
            field: field_of(&error).or_else(|| backticked(&detail)),
            ..Problem::new(status, code, detail)
        }
    }
}

impl From<recharge_host::StoreError> for Problem {
    fn from(error: recharge_host::StoreError) -> Self {
        Problem::from(HostError::from(error))
    }
}

/// The field a host error is about, when its message does not name it.
fn field_of(error: &HostError) -> Option<String> {
    let field = match error {
        HostError::Invalid(invalid) => match invalid {
            InvalidCommand::MissingParent(_)
            | InvalidCommand::ParentNotAgency { .. }
            | InvalidCommand::UnexpectedParent(_) => "parent",
            InvalidCommand::EmptyCard => "card",
            _ => return None,
        },
        HostError::Load(_) => "component",
        _ => return None,
    };
    Some(field.to_owned())
}

/// The first name in backticks: script and input messages start with the
/// field they are about (`` `amount`: ... ``, ``missing field `card` ``).
fn backticked(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use recharge_policy_sdk::model::PolicyError;

    #[test]
    fn the_field_is_the_first_name_in_backticks() {
        assert_eq!(
            backticked("`amount`: write money as a string").as_deref(),
            Some("amount")
        );
        assert_eq!(backticked("missing field `card`").as_deref(), Some("card"));
        assert_eq!(backticked("no field here"), None);
        assert_eq!(backticked("an ` unclosed"), None);
    }

    // Host failures are never blamed on the caller or the tenant.
    #[test]
    fn host_failures_are_500_without_their_cause() {
        let problem = Problem::from(HostError::Internal("a broken invariant"));
        assert_eq!(problem.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!problem.detail.contains("invariant"));
    }

    #[test]
    fn policy_rejections_keep_the_codes_of_scripts() {
        let forbidden = Problem::from(HostError::Rejected(PolicyError::Forbidden("no".into())));
        assert_eq!(
            (forbidden.status, forbidden.code),
            (StatusCode::FORBIDDEN, "forbidden")
        );
        let missing = Problem::from(HostError::Rejected(PolicyError::PaymentMethodRequired(
            "a card".into(),
        )));
        assert_eq!(missing.code, "payment_method_required");
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
