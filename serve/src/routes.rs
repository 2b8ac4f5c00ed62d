//! The HTTP API of SPEC.md §8: one route per script command, the account and
//! the lists of the output document, health, metrics and the OpenAPI
//! document ([`OPENAPI`]), the list of routes written down as the router is
//! built ([`routes`]). Every route but `/healthz` needs an API key; POST and
//! PUT requests may carry an `Idempotency-Key`; bodies are bounded (JSON at [`MAX_JSON_BODY`], a policy
//! component at the engine's limit) and every request at [`REQUEST_TIMEOUT`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use recharge_sim::script::Command;
use serde_json::{Value, json};

use crate::problem::Problem;
use crate::request;
use crate::service::{Answer, Service};

/// The largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 1 << 20;
/// The most usage records in one `POST /v1/usage`.
pub const MAX_USAGE_RECORDS: usize = 1000;
/// How long a request may take before it is answered 503. The work it started
/// may still commit: a retry with the same call id rates nothing twice.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The page size of lists unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page of a list.
pub const MAX_PAGE: usize = 1000;

type Shared = State<Arc<Service>>;
type Body = Result<Bytes, BytesRejection>;
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;
type Reply = Result<Response, Problem>;
type IdPath = Result<Path<String>, PathRejection>;

/// A router that writes down every route it is given, so the list of what
/// the service serves ([`routes`]) is read off the very calls that build it.
struct Routes {
    router: Router<Arc<Service>>,
    served: Vec<(Method, String)>,
}

impl Routes {
    fn new() -> Self {
        Routes {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    /// Serve `method` (whose filter is `filter`) on `path` with `handler`.
    fn add<H, T>(mut self, filter: MethodFilter, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, Arc<Service>>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, handler));
        self.served.push((method, path.to_owned()));
        self
    }

    /// Serve GET on `path`.
    fn get<H: Handler<T, Arc<Service>>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(MethodFilter::GET, Method::GET, path, handler)
    }

    /// Serve POST on `path`.
    fn post<H: Handler<T, Arc<Service>>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(MethodFilter::POST, Method::POST, path, handler)
    }

    /// Serve PUT on `path`.
    fn put<H: Handler<T, Arc<Service>>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(MethodFilter::PUT, Method::PUT, path, handler)
    }
}

/// The routes without a key (`/healthz`) and those behind one.
fn routes_of(component_limit: usize) -> (Routes, Routes) {
    let account = "/v1/accounts/{id}";
    let open_routes = Routes::new().get("/healthz", healthz);
    let api = Routes::new()
        .post("/v1/accounts", open)
        .get(account, show_account)
        .post(
            &format!("{account}/cards"),
            |state: Shared, id: IdPath, raw: Body| {
                on_account(state, id, raw, "add_card", StatusCode::CREATED)
            },
        )
        .post(&format!("{account}/cards/{{card}}/update"), update_card)
        .post(
            &format!("{account}/included"),
            |state: Shared, id: IdPath, raw: Body| {
                on_account(state, id, raw, "include", StatusCode::OK)
            },
        )
        .put(
            &format!("{account}/auto-recharge"),
            |state: Shared, id: IdPath, raw: Body| {
                on_account(state, id, raw, "auto_recharge", StatusCode::OK)
            },
        )
        .get(
            &format!("{account}/auto-recharge"),
            |state: Shared, id: IdPath, query: Params| ask(state, id, query, "auto_recharge"),
        )
        .put(
            &format!("{account}/allocation"),
            |state: Shared, id: IdPath, raw: Body| {
                on_account(state, id, raw, "allocate", StatusCode::OK)
            },
        )
        .get(
            &format!("{account}/estimate"),
            |state: Shared, id: IdPath, query: Params| ask(state, id, query, "estimate"),
        )
        .get(
            &format!("{account}/service"),
            |state: Shared, id: IdPath, query: Params| ask(state, id, query, "service"),
        )
        .get(
            &format!("{account}/balance"),
            |state: Shared, id: IdPath, query: Params| ask(state, id, query, "balance"),
        )
        .post(&format!("{account}/top-ups"), top_up)
        .put(
            &format!("{account}/policy"),
            set_policy.layer(DefaultBodyLimit::max(component_limit)),
        )
        .post("/v1/usage", usage)
        .post("/v1/payment-outcomes", payment_outcome)
        .put("/v1/rates", set_rates)
        .get("/v1/rates", rates)
        .get("/v1/charges", charges)
        .get("/v1/notifications", notifications)
        .get("/readyz", readyz)
        .get("/metrics", metrics)
        .get("/openapi.json", openapi);
    (open_routes, api)
}

/// Every route the service serves, as (method, path template) in OpenAPI's
/// spelling (`/v1/accounts/{id}`), in the order they are added.
pub fn routes() -> Vec<(String, String)> {
    let (open_routes, api) = routes_of(0);
    open_routes
        .served
        .into_iter()
        .chain(api.served)
        .map(|(method, path)| (method.to_string(), path))
        .collect()
}

/// The service's routes.
pub fn router(service: Arc<Service>) -> Router {
    let component_limit = service.platform.engine().limits().largest_component();
    let (open_routes, api) = routes_of(component_limit);
    let api = api
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&service),
            crate::idempotency::idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&service),
            authenticate,
        ));
    open_routes
        .router
        .merge(api)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&service),
            deadline,
        ))
        .with_state(service)
}

/// The API's OpenAPI 3.1 document, as committed beside the crate.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Run `work` on the blocking pool.
async fn blocking(
    service: &Arc<Service>,
    work: impl FnOnce(&Service) -> Answer + Send + 'static,
) -> Answer {
    let service = Arc::clone(service);
    tokio::task::spawn_blocking(move || work(&service))
        .await
        .map_err(|err| Problem::host_failure(&err))?
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok(answer: Answer) -> Reply {
    Ok(json_response(StatusCode::OK, &answer?))
}

fn created(answer: Answer) -> Reply {
    Ok(json_response(StatusCode::CREATED, &answer?))
}

fn body(body: Body) -> Result<Bytes, Problem> {
    body.map_err(|rejection| Problem {
        status: rejection.status(),
        ..Problem::bad_request(rejection.body_text(), Some("body".into()))
    })
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    path.map(|Path(value)| value)
        .map_err(|rejection| Problem::bad_request(rejection.body_text(), None))
}

fn params(params: Params) -> Result<HashMap<String, String>, Problem> {
    params
        .map(|Query(params)| params)
        .map_err(|rejection| Problem::bad_request(rejection.body_text(), None))
}

/// Parse the body as `name` and carry it out.
async fn command(
    service: &Arc<Service>,
    name: &str,
    raw: Body,
    from_path: &[(&str, &str)],
) -> Answer {
    let raw = body(raw)?;
    let command = request::command(name, &raw, from_path, service.platform.now())?;
    blocking(service, move |service| service.run(command)).await
}

async fn open(State(service): Shared, raw: Body) -> Reply {
    created(command(&service, "open", raw, &[]).await)
}

/// The script command `name` on the account of the path, answered `status`.
async fn on_account(
    State(service): Shared,
    id: IdPath,
    raw: Body,
    name: &str,
    status: StatusCode,
) -> Reply {
    let id = path(id)?;
    let answer = command(&service, name, raw, &[("account", &id)]).await?;
    Ok(json_response(status, &answer))
}

async fn show_account(State(service): Shared, id: IdPath) -> Reply {
    let id = request::id("account", &path(id)?)?;
    ok(blocking(&service, move |service| service.account_json(&id)).await)
}

async fn update_card(
    State(service): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    raw: Body,
) -> Reply {
    let (id, card) = path(ids)?;
    let from_path = [("account", id.as_str()), ("card", card.as_str())];
    ok(command(&service, "update_card", raw, &from_path).await)
}

/// `POST /v1/accounts/{id}/top-ups`: the script's `top_up`, with an optional
/// `actor` (the account itself unless named).
async fn top_up(State(service): Shared, id: IdPath, raw: Body) -> Reply {
    let id = path(id)?;
    let mut fields = request::object(&body(raw)?)?;
    let actor = match fields.remove("actor") {
        None | Some(Value::Null) => id.clone(),
        Some(Value::String(actor)) => request::id("actor", &actor)?,
        Some(_) => {
            return Err(Problem::bad_request(
                "`actor`: expected a string",
                Some("actor".into()),
            ));
        }
    };
    let command = request::command_of(
        "top_up",
        fields,
        &[("account", &id)],
        service.platform.now(),
    )?;
    ok(blocking(&service, move |service| service.top_up(&actor, command)).await)
}

/// A query the `actor` parameter asks about the account.
async fn ask(State(service): Shared, id: IdPath, query: Params, what: &str) -> Reply {
    let id = path(id)?;
    let query = params(query)?;
    let actor = query.get("actor").ok_or_else(|| {
        Problem::bad_request("missing query parameter `actor`", Some("actor".into()))
    })?;
    let from_path = [("account", id.as_str()), ("actor", actor), ("what", what)];
    let command = request::command("query", b"", &from_path, service.platform.now())?;
    ok(blocking(&service, move |service| service.run(command)).await)
}

/// `PUT /v1/accounts/{id}/policy`: the body is the component itself.
async fn set_policy(State(service): Shared, id: IdPath, raw: Body) -> Reply {
    let id = request::id("account", &path(id)?)?;
    let component = body(raw)?;
    ok(blocking(&service, move |service| service.set_policy(&id, &component)).await)
}

/// `POST /v1/usage`: one record, or `{"records": [...]}`. Every record is
/// checked before any is carried out; a malformed one names its place.
async fn usage(State(service): Shared, raw: Body) -> Reply {
    let mut fields = request::object(&body(raw)?)?;
    let now = service.platform.now();
    let Some(records) = fields.remove("records") else {
        let command = request::command_of("usage", fields, &[], now)?;
        return ok(blocking(&service, move |service| service.run(command)).await);
    };
    if let Some(other) = fields.keys().next() {
        return Err(Problem::bad_request(
            format!("unknown field `{other}` beside `records`"),
            Some(other.clone()),
        ));
    }
    let Value::Array(records) = records else {
        return Err(Problem::bad_request(
            "`records`: expected an array of usage records",
            Some("records".into()),
        ));
    };
    if records.len() > MAX_USAGE_RECORDS {
        return Err(Problem::bad_request(
            format!(
                "`records`: {} records, at most {MAX_USAGE_RECORDS} a request",
                records.len()
            ),
            Some("records".into()),
        ));
    }
    let mut commands: Vec<Command> = Vec::with_capacity(records.len());
    for (index, record) in records.into_iter().enumerate() {
        let place = |problem: Problem| {
            let field = match &problem.field {
                Some(field) => format!("records[{index}].{field}"),
                None => format!("records[{index}]"),
            };
            Problem {
                detail: format!("records[{index}]: {}", problem.detail),
                ..problem.with_field(field)
            }
        };
        let Value::Object(record) = record else {
            return Err(place(Problem::bad_request("expected a JSON object", None)));
        };
        commands.push(request::command_of("usage", record, &[], now).map_err(place)?);
    }
    ok(blocking(&service, move |service| service.usage_batch(commands)).await)
}

/// `POST /v1/payment-outcomes`: a gateway's webhook, `{"key": ..., "outcome":
/// ...}` (see [`crate::outcome`]).
async fn payment_outcome(State(service): Shared, raw: Body) -> Reply {
    let fields = request::object(&body(raw)?)?;
    let key = crate::outcome::text(&fields, "key")?
        .filter(|key| !key.is_empty())
        .ok_or_else(|| Problem::bad_request("missing field `key`", Some("key".into())))?;
    let answer = crate::outcome::answer_of(&fields, &["key"])?;
    ok(blocking(&service, move |service| {
        service.payment_outcome(&key, answer)
    })
    .await)
}

async fn set_rates(State(service): Shared, raw: Body) -> Reply {
    ok(command(&service, "rates", raw, &[]).await)
}

async fn rates(State(service): Shared) -> Reply {
    ok(Ok(service.rates_json()))
}

/// `after` and `limit` of a list.
fn paging(query: Params) -> Result<(u64, usize), Problem> {
    let query = params(query)?;
    let number = |name: &str, default: u64| -> Result<u64, Problem> {
        match query.get(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                Problem::bad_request(
                    format!("`{name}`: {text:?} is not a whole number"),
                    Some(name.into()),
                )
            }),
        }
    };
    let after = number("after", 0)?;
    let limit = number("limit", DEFAULT_PAGE as u64)?;
    if limit == 0 || limit > MAX_PAGE as u64 {
        return Err(Problem::bad_request(
            format!("`limit`: {limit} is not between 1 and {MAX_PAGE}"),
            Some("limit".into()),
        ));
    }
    Ok((after, limit as usize))
}

async fn charges(State(service): Shared, query: Params) -> Reply {
    let (after, limit) = paging(query)?;
    ok(blocking(&service, move |service| service.charges(after, limit)).await)
}

async fn notifications(State(service): Shared, query: Params) -> Reply {
    let (after, limit) = paging(query)?;
    ok(blocking(&service, move |service| service.notifications(after, limit)).await)
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn readyz(State(service): Shared) -> Response {
    match blocking(&service, Service::ready).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(problem) => Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            ..problem
        }
        .into_response(),
    }
}

async fn metrics(State(service): Shared) -> Reply {
    let service = Arc::clone(&service);
    let text = tokio::task::spawn_blocking(move || service.metrics_text())
        .await
        .map_err(|err| Problem::host_failure(&err))??;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::METRICS_CONTENT_TYPE),
    );
    Ok(response)
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem {
        status: StatusCode::METHOD_NOT_ALLOWED,
        ..Problem::not_found(format!(
            "{} takes no {} requests",
            request.uri().path(),
            request.method()
        ))
    }
}

/// The key of `Authorization: Bearer KEY`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then(|| key.to_owned())
}

/// Let a request through only with an accepted key.
async fn authenticate(State(service): Shared, request: Request, next: Next) -> Response {
    let Some(key) = bearer(request.headers()) else {
        return Problem::unauthorized().into_response();
    };
    if !service.keys.known(&key) {
        let accepted = blocking(&service, move |service| {
            let accepted = service
                .keys
                .accepts(&key)
                .map_err(|err| Problem::host_failure(&err))?;
            Ok(Value::Bool(accepted))
        })
        .await;
        match accepted {
            Ok(Value::Bool(true)) => {}
            Ok(_) => return Problem::unauthorized().into_response(),
            Err(problem) => return problem.into_response(),
        }
    }
    next.run(request).await
}

/// Answer every request within [`REQUEST_TIMEOUT`], log it and count it.
async fn deadline(State(service): Shared, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal_error",
            format!(
                "not answered within {} s; what it started may still commit",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    };
    let took = started.elapsed();
    let status = response.status().as_u16();
    service
        .metrics
        .request(&route, method.as_str(), status, took);
    tracing::info!("{method} {uri} {status} {} ms", took.as_millis());
    response
}
