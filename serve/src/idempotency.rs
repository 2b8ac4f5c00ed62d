//! `Idempotency-Key` on every POST and PUT, with Stripe's semantics: the
//! first response to a key (its status and body) is kept in the store for
//! [`IDEMPOTENCY_WINDOW`] and replayed to a retry of the same request (same
//! method, path and body); the key sent with another request is a `422`.
//!
//! Two requests with one key at once must not both run the command, so the
//! key is *reserved* before the request runs: a row with status 0 is
//! inserted only if none is kept ([`Store::keep_response`]), and the one
//! request whose insert landed runs; the other sees the reservation and is
//! answered `409` (retry later). When the request is answered, its response
//! replaces the reservation. A host failure (5xx) is not kept: the
//! reservation is released and a retry runs the request again, which the
//! platform makes safe (a usage record's call id rates once; a failed step
//! committed nothing).
//!
//! A reservation whose request never finished (the process died, or the
//! request ran past the deadline) may have committed. What a retry gets
//! depends on the request:
//!
//! - requests the platform makes safe to run again ([`runs_again_safely`]:
//!   usage records, rated once by call id; the PUTs, which set what they set
//!   again; a payment outcome, applied once; opening an account or adding a
//!   card, which cannot happen twice) take the reservation over and run, once
//!   its request is known dead: reserved by an earlier run of this very node
//!   (each run marks its reservations with its [`Service::incarnation`]), or
//!   older than [`ABANDONED_AFTER`] (another node's);
//! - the others (a top-up, included minutes, a card update, which the policy
//!   may answer with a charge) would charge or credit twice: they are answered
//!   `409` until the reservation is pruned. Better a client told to look
//!   (`GET /v1/charges`) than a double charge.
//!
//! Keys live in the store, so they survive a restart and are shared by every
//! node on one database.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use recharge_host::{KeptResponse, sha256_hex};

use crate::problem::Problem;
use crate::service::Service;

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header marking a replay.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// How long a response is kept under its key.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// When another node's reservation is taken to be abandoned: well past the
/// longest a request may run ([`crate::REQUEST_TIMEOUT`]).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// Whether a request cut short may be run again under its key: the platform
/// itself keeps it from changing anything twice (see the module's docs).
pub fn runs_again_safely(method: &Method, path: &str) -> bool {
    *method == Method::PUT
        || matches!(path, "/v1/usage" | "/v1/payment-outcomes" | "/v1/accounts")
        || path.ends_with("/cards")
}

/// What the store says of a key, for this request.
enum Seen {
    /// Nothing kept: this request reserved it and runs.
    Reserved,
    /// A response to replay.
    Replay(KeptResponse),
    /// Refused: another request, or one still running.
    Refused(Problem),
}

/// Keep and replay the responses of POST and PUT requests carrying an
/// `Idempotency-Key`; every other request passes untouched.
pub async fn idempotency(
    State(service): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PUT) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match checked_key(key) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let (parts, body) = request.into_parts();
    // The routes hold their bodies to their own limits; this one only keeps
    // the middleware from reading without end.
    let limit = service.platform.engine().limits().largest_component();
    let body = match to_bytes(body, limit.max(crate::MAX_JSON_BODY)).await {
        Ok(body) => body,
        Err(_) => {
            return Problem {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..Problem::bad_request("the body is too large", Some("body".into()))
            }
            .into_response();
        }
    };
    let mut request_text = Vec::with_capacity(body.len() + 64);
    request_text.extend_from_slice(parts.method.as_str().as_bytes());
    request_text.push(b' ');
    request_text.extend_from_slice(parts.uri.path().as_bytes());
    request_text.push(b'\n');
    request_text.extend_from_slice(&body);
    let fingerprint = sha256_hex(&request_text);

    let seen = {
        let (key, fingerprint) = (key.clone(), fingerprint.clone());
        let again = runs_again_safely(&parts.method, parts.uri.path());
        on_store(&service, move |service| {
            reserve(service, key, fingerprint, again)
        })
        .await
    };
    match seen {
        Ok(Seen::Reserved) => {}
        Ok(Seen::Replay(kept)) => return replay(kept),
        Ok(Seen::Refused(problem)) | Err(problem) => return problem.into_response(),
    }

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = response.status();
    if status.is_server_error() {
        let released = on_store(&service, move |service| {
            Ok(service.store.release_response(&key)?)
        })
        .await;
        if let Err(problem) = released {
            tracing::warn!("an idempotency key stays reserved: {}", problem.detail);
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(err) => return Problem::host_failure(&err).into_response(),
    };
    let kept = KeptResponse {
        key,
        fingerprint,
        status: status.as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: service.platform.now(),
    };
    if let Err(problem) = on_store(&service, move |service| {
        Ok(service.store.finish_response(kept)?)
    })
    .await
    {
        // The request ran and committed: answer it all the same; a retry
        // finds the reservation and is told to look rather than run it twice.
        tracing::warn!("a response was not kept: {}", problem.detail);
    }
    Response::from_parts(parts, Body::from(body))
}

/// The key as sent, if it is one: 1 to [`MAX_IDEMPOTENCY_KEY`] visible ASCII
/// characters.
fn checked_key(value: &HeaderValue) -> Result<String, Problem> {
    let bad = |detail: String| Problem::bad_request(detail, Some("Idempotency-Key".into()));
    let key = value
        .to_str()
        .map_err(|_| bad("`Idempotency-Key` must be visible ASCII".into()))?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(bad(format!(
            "`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )));
    }
    Ok(key.to_owned())
}

/// Whether the request that made `reservation` is dead: made by an earlier
/// run of this node, or too long ago.
fn abandoned(service: &Service, reservation: &KeptResponse) -> bool {
    let node_prefix = format!("{}@", service.platform.node());
    let ours_before =
        reservation.body.starts_with(&node_prefix) && reservation.body != service.incarnation;
    let window = ABANDONED_AFTER.as_millis() as i64;
    ours_before || reservation.at < service.platform.now().saturating_sub(window)
}

/// Reserve `key` for this request, or say what is kept under it; a dead
/// request's reservation is taken over when `again` (the request runs again
/// safely).
fn reserve(
    service: &Service,
    key: String,
    fingerprint: String,
    again: bool,
) -> Result<Seen, Problem> {
    let reservation = KeptResponse {
        key: key.clone(),
        fingerprint: fingerprint.clone(),
        status: KeptResponse::IN_PROGRESS,
        body: service.incarnation.clone(),
        at: service.platform.now(),
    };
    // Reserved by this request, or read what another kept first; again in
    // case that other one was released between the insert and the read, or
    // this one took a dead request's reservation over.
    for _ in 0..3 {
        if service.store.keep_response(reservation.clone())? {
            return Ok(Seen::Reserved);
        }
        let Some(kept) = service.store.idempotent(&key)? else {
            continue;
        };
        if kept.fingerprint != fingerprint {
            return Ok(Seen::Refused(Problem {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                ..Problem::bad_request(
                    "this `Idempotency-Key` was used with another request (method, path or \
                     body): use a new key for a new request",
                    Some("Idempotency-Key".into()),
                )
            }));
        }
        if kept.in_progress() && again && abandoned(service, &kept) {
            tracing::info!("taking over the reservation of {key:?} from {}", kept.body);
            service.store.release_response(&key)?;
            continue;
        }
        if kept.in_progress() {
            return Ok(Seen::Refused(Problem {
                status: StatusCode::CONFLICT,
                ..Problem::bad_request(
                    "a request with this `Idempotency-Key` is in progress, or was cut short \
                     and its outcome is unknown: retry later, or check the account and use \
                     a new key",
                    Some("Idempotency-Key".into()),
                )
            }));
        }
        return Ok(Seen::Replay(kept));
    }
    Ok(Seen::Refused(Problem {
        status: StatusCode::CONFLICT,
        ..Problem::bad_request(
            "this `Idempotency-Key` is being used by other requests: retry later",
            Some("Idempotency-Key".into()),
        )
    }))
}

/// The kept response again, marked as a replay.
fn replay(kept: KeptResponse) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Run store work on the blocking pool.
async fn on_store<T: Send + 'static>(
    service: &Arc<Service>,
    work: impl FnOnce(&Service) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let service = Arc::clone(service);
    tokio::task::spawn_blocking(move || work(&service))
        .await
        .map_err(|err| Problem::host_failure(&err))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_the_platform_keeps_from_acting_twice_run_again() {
        for (method, path) in [
            (Method::POST, "/v1/usage"),
            (Method::POST, "/v1/payment-outcomes"),
            (Method::POST, "/v1/accounts"),
            (Method::POST, "/v1/accounts/u/cards"),
            (Method::PUT, "/v1/rates"),
            (Method::PUT, "/v1/accounts/u/auto-recharge"),
        ] {
            assert!(runs_again_safely(&method, path), "{method} {path}");
        }
        // A top-up or included minutes run twice would charge or credit twice;
        // a card update may lead the policy to charge.
        for path in [
            "/v1/accounts/u/top-ups",
            "/v1/accounts/u/included",
            "/v1/accounts/u/cards/visa/update",
        ] {
            assert!(!runs_again_safely(&Method::POST, path), "{path}");
        }
    }
}
