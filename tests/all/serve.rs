//! `recharge serve` end to end: the real binary on a real database,
//! spoken to over HTTP as a platform would.
//!
//! Each test starts its own service on a free port (the binary prints the
//! address it bound on its first line) with `RECHARGE_API_KEY` set, and stops
//! it with SIGTERM, which must end it cleanly.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{postgres_url, workspace};

pub(super) const KEY: &str = "test-key-0123456789";

/// A fresh scratch folder for one test.
pub(super) fn scratch(name: &str) -> PathBuf {
    let dir = workspace()
        .join("target")
        .join("test-serve")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `recharge serve`.
pub(super) struct Server {
    child: Child,
    pub(super) base: String,
    pub(super) log: PathBuf,
    agent: ureq::Agent,
}

/// An answer: status, content type, JSON body (`Null` when not JSON), and
/// whether it is a replay of a response kept under an idempotency key.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) body: Value,
    pub(super) replayed: bool,
    pub(super) text: String,
}

impl Server {
    /// Start the binary on `db`, logging to a file in `dir`.
    pub(super) fn start(db: &str, dir: &std::path::Path) -> Server {
        Server::start_with(db, dir, "serve.log", &[], &[])
    }

    /// Start the binary on `db` with more `args` and `env`, logging to
    /// `log_name` in `dir`.
    pub(super) fn start_with(
        db: &str,
        dir: &std::path::Path,
        log_name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = dir.join(log_name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_recharge"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RECHARGE_API_KEY", KEY)
            .env(
                "RECHARGE_CACHE_DIR",
                workspace().join("target").join("test-cache"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("the recharge binary starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, first_line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = first_line
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_default();
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!(
                "no address on the first line ({line:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Server {
            base: format!("http://{address}"),
            child,
            log,
            agent,
        }
    }

    /// A request with `key` as its bearer key (none when `None`).
    pub(super) fn call_as(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Reply {
        self.call_with(key, method, path, body, &[])
    }

    /// A request with `key` as its bearer key and more `headers`.
    pub(super) fn call_with(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let auth = key.map(|key| format!("Bearer {key}"));
        let sent = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            (method, body) => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("no {other} in these tests"),
                };
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request
                    .content_type("application/json")
                    .send(body.unwrap_or_default())
            }
        };
        let mut response = sent.unwrap_or_else(|err| panic!("{method} {path}: {err}"));
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: response.status().as_u16(),
            content_type,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            replayed,
            text,
        }
    }

    pub(super) fn get(&self, path: &str) -> Reply {
        self.call_as(Some(KEY), "GET", path, None)
    }

    pub(super) fn send(&self, method: &str, path: &str, body: Value) -> Reply {
        self.call_as(Some(KEY), method, path, Some(body.to_string().as_bytes()))
    }

    /// `send` with an `Idempotency-Key`.
    pub(super) fn send_once(&self, key: &str, method: &str, path: &str, body: Value) -> Reply {
        self.call_with(
            Some(KEY),
            method,
            path,
            Some(body.to_string().as_bytes()),
            &[("Idempotency-Key", key)],
        )
    }

    /// `send`, expecting `status`; the body.
    pub(super) fn expect(&self, status: u16, method: &str, path: &str, body: Value) -> Value {
        let reply = self.send(method, path, body);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        reply.body
    }

    /// Every item of a list, page by page of `limit`.
    pub(super) fn all(&self, list: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = "0".to_owned();
        loop {
            let page = self.get(&format!("/v1/{list}?after={after}&limit={limit}"));
            assert_eq!(page.status, 200, "{}", page.body);
            let got = page.body["items"].as_array().unwrap().clone();
            assert!(got.len() <= limit);
            after = page.body["next_after"].as_str().unwrap().to_owned();
            let done = got.is_empty();
            items.extend(got);
            if done {
                return items;
            }
        }
    }

    /// Stop with SIGTERM: the service must exit cleanly, and soon.
    pub(super) fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                assert!(exit.success(), "exit {exit:?} after SIGTERM; log:\n{log}");
                assert!(log.contains("stopped"), "log:\n{log}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service on a fresh SQLite file.
pub(super) fn sqlite_server(name: &str) -> (Server, PathBuf) {
    let dir = scratch(name);
    let db = format!("sqlite:{}", dir.join("recharge.db").display());
    (Server::start(&db, &dir), dir)
}

/// Money as the API writes it.
pub(super) fn money(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not money: {value}"))
}

/// Every endpoint of SPEC §8 in one platform's day, on whichever database:
/// each command answers what it did, the lists page by cursor without losing
/// or repeating an entry, and no charge is taken twice.
fn every_endpoint(server: &Server) {
    let opened = server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    assert_eq!(
        (opened["id"].as_str(), money(&opened["balance"])),
        (Some("u"), "0.00")
    );
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "agency", "kind": "agency"}),
    );
    let sub = server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "sub", "kind": "sub-account", "parent": "agency"}),
    );
    assert_eq!(sub["parent"], "agency");
    server.expect(201, "POST", "/v1/accounts/u/cards", json!({"card": "visa"}));
    server.expect(
        201,
        "POST",
        "/v1/accounts/agency/cards",
        json!({"card": "amex"}),
    );
    let rates = server.expect(
        200,
        "PUT",
        "/v1/rates",
        json!({"basic": "0.10", "premium": "0.20"}),
    );
    assert_eq!(rates, json!({"basic": "0.10", "premium": "0.20"}));
    assert_eq!(server.get("/v1/rates").body, rates);
    server.expect(
        200,
        "POST",
        "/v1/accounts/u/included",
        json!({"basic": 1, "premium": 0}),
    );

    let topped = server.expect(
        200,
        "POST",
        "/v1/accounts/u/top-ups",
        json!({"card": "visa", "amount": "20.00"}),
    );
    let charges = topped["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{topped}");
    assert_eq!(
        (charges[0]["purpose"].as_str(), money(&charges[0]["amount"])),
        (Some("top_up"), "20.00")
    );
    let balance = server.get("/v1/accounts/u/balance?actor=u");
    assert_eq!(money(&balance.body["balance"]), "20.00", "{}", balance.body);
    assert_eq!(balance.body["included_basic_seconds"], 60);

    server.expect(
        200,
        "PUT",
        "/v1/accounts/u/auto-recharge",
        json!({"actor": "u", "enabled": true, "threshold": "5.00", "amount": "10.00", "card": "visa"}),
    );
    let settings = server.get("/v1/accounts/u/auto-recharge?actor=u").body;
    assert_eq!(
        (settings["enabled"].as_bool(), money(&settings["threshold"])),
        (Some(true), "5.00")
    );

    // The included minute, then 160 paid minutes: 16.00 of 20.00 leaves 4.00,
    // under the threshold, so the usage answers with the recharge it queued.
    let first = server.expect(
        200,
        "POST",
        "/v1/usage",
        json!({"account": "u", "call": "c1", "seconds": 60, "type": "basic"}),
    );
    assert_eq!(first["charges"], json!([]));
    let batch = server.expect(
        200,
        "POST",
        "/v1/usage",
        json!({"records": [
            {"account": "u", "call": "c2", "seconds": 9000, "type": "basic"},
            {"account": "u", "call": "c3", "seconds": 600, "type": "basic"},
        ]}),
    );
    let records = batch["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["call"], "c3");
    let recharges: Vec<&Value> = records
        .iter()
        .flat_map(|record| record["charges"].as_array().unwrap())
        .collect();
    assert_eq!(recharges.len(), 1, "{batch}");
    assert_eq!(recharges[0]["purpose"], "auto_recharge");
    let balance = server.get("/v1/accounts/u/balance?actor=u").body;
    assert_eq!(money(&balance["balance"]), "14.00", "{balance}");

    let allocation = server.expect(
        200,
        "PUT",
        "/v1/accounts/sub/allocation",
        json!({"actor": "agency", "basic": 10, "premium": 0, "card": "amex"}),
    );
    assert_eq!(
        allocation["charges"][0]["purpose"], "allocation",
        "{allocation}"
    );
    let refused = server.send(
        "PUT",
        "/v1/accounts/sub/allocation",
        json!({"actor": "u", "basic": 10, "premium": 0, "card": "amex"}),
    );
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (403, Some("forbidden"))
    );
    let estimate = server.get("/v1/accounts/sub/estimate?actor=agency").body;
    assert!(estimate["monthly_estimate"].is_string(), "{estimate}");
    let service = server.get("/v1/accounts/sub/service?actor=agency").body;
    assert_eq!(service, json!({"can_call": true}));
    let missing_actor = server.get("/v1/accounts/sub/service");
    assert_eq!(
        (missing_actor.status, missing_actor.body["field"].as_str()),
        (400, Some("actor"))
    );

    server.expect(200, "POST", "/v1/accounts/u/cards/visa/update", json!({}));
    let account = server.get("/v1/accounts/u").body;
    assert_eq!(account["auto_recharge"]["card"], "visa", "{account}");
    let sub = server.get("/v1/accounts/sub").body;
    assert_eq!(sub["allocation"]["basic"], 10, "{sub}");
    let unknown = server.get("/v1/accounts/nobody");
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str()),
        (404, Some("unknown_account"))
    );

    let not_wasm = server.call_as(Some(KEY), "PUT", "/v1/accounts/u/policy", Some(b"not wasm"));
    assert_eq!(
        (not_wasm.status, not_wasm.body["field"].as_str()),
        (400, Some("component"))
    );
    // A component may be larger than a JSON body: the policy route has its own limit.
    let large = vec![0u8; recharge_serve::MAX_JSON_BODY + 1];
    let large = server.call_as(Some(KEY), "PUT", "/v1/accounts/u/policy", Some(&large));
    assert_eq!(
        (large.status, large.body["field"].as_str()),
        (400, Some("component"))
    );
    let policy = server.call_as(
        Some(KEY),
        "PUT",
        "/v1/accounts/agency/policy",
        Some(recharge_host::DEFAULT_POLICY),
    );
    assert_eq!(policy.status, 200, "{}", policy.body);
    assert!(policy.body["sha256"].is_string());

    // Three charges, paged one at a time: each once, none lost, none twice.
    let charges = server.all("charges", 1);
    let keys: std::collections::BTreeSet<&str> = charges
        .iter()
        .map(|charge| charge["key"].as_str().unwrap())
        .collect();
    assert_eq!((charges.len(), keys.len()), (3, 3), "{charges:?}");
    assert!(
        charges
            .iter()
            .all(|charge| charge["outcome"] == "succeeded")
    );
    let notices = server.all("notifications", 2);
    assert!(!notices.is_empty());
    assert_eq!(notices.len(), server.all("notifications", 1000).len());

    let wrong_method = server.send("POST", "/v1/charges", json!({}));
    assert_eq!(
        (wrong_method.status, wrong_method.body["code"].as_str()),
        (405, Some("not_found"))
    );
    assert_eq!(server.get("/readyz").status, 200);
    let nowhere = server.get("/v1/nowhere");
    assert_eq!(
        (nowhere.status, nowhere.body["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// Every endpoint works on SQLite, and SIGTERM ends the service cleanly.
#[test]
fn every_endpoint_on_sqlite() {
    let (server, _dir) = sqlite_server("endpoints");
    every_endpoint(&server);
    server.stop();
}

/// The same platform day on PostgreSQL (many nodes' database): nothing the
/// API promises depends on the store.
#[test]
fn every_endpoint_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let schema = "serve_endpoints";
    recharge_host::PostgresStore::open_empty_schema(&url, schema, 1).unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let server = Server::start(&db, &scratch("postgres"));
    every_endpoint(&server);
    server.stop();
}

/// Nothing but `/healthz` answers without a valid key: no account is read or
/// changed by someone who holds none.
#[test]
fn requests_without_a_valid_key_are_refused() {
    let (server, _dir) = sqlite_server("keys");
    let open = br#"{"account":"u","kind":"user"}"#;
    for key in [None, Some("wrong"), Some("")] {
        let refused = server.call_as(key, "POST", "/v1/accounts", Some(open));
        assert_eq!(refused.status, 401, "{key:?}");
        assert_eq!(refused.content_type, "application/problem+json");
        assert_eq!(refused.body["code"], "unauthorized");
        assert_eq!(server.call_as(key, "GET", "/readyz", None).status, 401);
        assert_eq!(server.call_as(key, "GET", "/v1/nowhere", None).status, 401);
    }
    assert_eq!(server.call_as(None, "GET", "/healthz", None).status, 200);
    assert_eq!(
        server.get("/v1/accounts/u").status,
        404,
        "nothing was opened"
    );
    server.stop();
}

/// A key minted by `recharge api-key create` while the service runs is
/// accepted at once, and only its hash is kept.
#[test]
fn a_minted_key_is_accepted_and_kept_hashed() {
    let (server, dir) = sqlite_server("mint");
    let db = format!("sqlite:{}", dir.join("recharge.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_recharge"))
        .args(["api-key", "create", "--db", &db])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let minted = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(minted.starts_with("rk_"), "{minted}");
    let reply = server.call_as(Some(&minted), "GET", "/readyz", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.stop();
    let raw = std::fs::read(dir.join("recharge.db")).unwrap();
    let held = raw
        .windows(minted.len())
        .any(|window| window == minted.as_bytes());
    assert!(!held, "the key itself is in the database");
}

/// Bad input never reaches a policy: a malformed body is a 400 problem
/// naming the field, and changes nothing.
#[test]
fn a_malformed_body_is_a_bad_request_naming_the_field() {
    let (server, _dir) = sqlite_server("malformed");
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    let cases = [
        (
            "POST",
            "/v1/accounts/u/top-ups",
            json!({"card": "visa", "amount": 10}),
            "amount",
        ),
        (
            "POST",
            "/v1/accounts/u/top-ups",
            json!({"card": "visa"}),
            "amount",
        ),
        (
            "POST",
            "/v1/accounts",
            json!({"account": "v", "kind": "robot"}),
            "kind",
        ),
        (
            "POST",
            "/v1/accounts/u/cards",
            json!({"card": "visa", "colour": "red"}),
            "colour",
        ),
        (
            "POST",
            "/v1/usage",
            json!({"records": [
                {"account": "u", "call": "ok", "seconds": 60, "type": "basic"},
                {"account": "u", "call": "bad", "seconds": 0, "type": "basic"},
            ]}),
            "records[1].seconds",
        ),
        (
            "PUT",
            "/v1/rates",
            json!({"basic": "1e2", "premium": "0.20"}),
            "basic",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = server.send(method, path, body);
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert_eq!(reply.content_type, "application/problem+json");
        assert_eq!(reply.body["code"], "bad_request");
        assert_eq!(reply.body["field"], field, "{path}: {}", reply.body);
        assert!(reply.body["detail"].is_string() && reply.body["type"].is_string());
    }
    let not_json = server.call_as(Some(KEY), "POST", "/v1/accounts", Some(b"{\"account\":"));
    assert_eq!(
        (not_json.status, not_json.body["code"].as_str()),
        (400, Some("bad_request"))
    );
    let long_id = server.get(&format!("/v1/accounts/{}", "a".repeat(65)));
    assert_eq!(
        (long_id.status, long_id.body["field"].as_str()),
        (400, Some("account"))
    );
    let huge = vec![b' '; recharge_serve::MAX_JSON_BODY + 1];
    assert_eq!(
        server
            .call_as(Some(KEY), "POST", "/v1/usage", Some(&huge))
            .status,
        413
    );
    // The batch with a bad record rated none of its records.
    let balance = server.get("/v1/accounts/u/balance?actor=u").body;
    assert_eq!(money(&balance["balance"]), "0.00", "{balance}");
    server.stop();
}

/// No double charge: a usage record sent again under the same call id (a
/// platform retrying after a lost answer) is rated once.
#[test]
fn usage_repeated_under_one_call_id_is_rated_once() {
    let (server, _dir) = sqlite_server("usage");
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    let record = json!({"account": "u", "call": "call-1", "seconds": 600, "type": "basic"});
    for _ in 0..3 {
        server.expect(200, "POST", "/v1/usage", record.clone());
    }
    server.expect(
        200,
        "POST",
        "/v1/usage",
        json!({"records": [record.clone(), record]}),
    );
    let balance = server.get("/v1/accounts/u/balance?actor=u").body;
    assert_eq!(money(&balance["balance"]), "-0.90", "{balance}");
    server.stop();
}

/// Nothing lost: a charge the gateway confirms later (by webhook) is settled
/// and credited by the background workers on the system clock, with no
/// request to prompt it.
#[test]
fn a_pending_charge_settles_in_the_background() {
    let (server, _dir) = sqlite_server("pending");
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    server.expect(
        201,
        "POST",
        "/v1/accounts/u/cards",
        json!({"card": "slow", "behavior": "pending:1s"}),
    );
    server.expect(
        200,
        "POST",
        "/v1/accounts/u/top-ups",
        json!({"card": "slow", "amount": "15.00"}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let balance = server.get("/v1/accounts/u/balance?actor=u").body;
        if money(&balance["balance"]) == "15.00" {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {balance}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let charges = server.all("charges", 10);
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["outcome"], "succeeded");
    server.stop();
}

/// Nothing lost on shutdown: a request in flight when SIGTERM comes is
/// finished and answered in full before the service exits.
#[test]
fn sigterm_finishes_the_requests_in_flight() {
    let (server, _dir) = sqlite_server("in-flight");
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    let records: Vec<Value> = (0..300)
        .map(|call| json!({"account": "u", "call": format!("c{call}"), "seconds": 60, "type": "basic"}))
        .collect();
    let body = json!({ "records": records }).to_string();
    let server = std::sync::Arc::new(server);
    let client = std::sync::Arc::clone(&server);
    let in_flight = std::thread::spawn(move || {
        client.call_as(Some(KEY), "POST", "/v1/usage", Some(body.as_bytes()))
    });
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["records"].as_array().map(Vec::len), Some(300));
    let server = std::sync::Arc::into_inner(server).unwrap();
    server.stop();
}

/// An account `u` with the card `visa`, basic minutes at 0.10.
fn account_with_a_card(server: &Server) {
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    server.expect(201, "POST", "/v1/accounts/u/cards", json!({"card": "visa"}));
    server.expect(
        200,
        "PUT",
        "/v1/rates",
        json!({"basic": "0.10", "premium": "0.20"}),
    );
}

/// No double charge: a top-up and a usage record retried under their
/// `Idempotency-Key` (a platform whose answer was lost) get the first
/// response again, marked as a replay, and are charged and rated once; the
/// key sent with another body or to another path is a 422 that changes
/// nothing.
fn carried_out_once(server: &Server) {
    account_with_a_card(server);
    let top_up = json!({"card": "visa", "amount": "20.00"});
    let first = server.send_once("top-up-1", "POST", "/v1/accounts/u/top-ups", top_up.clone());
    assert_eq!(
        (first.status, first.replayed),
        (200, false),
        "{}",
        first.body
    );
    let again = server.send_once("top-up-1", "POST", "/v1/accounts/u/top-ups", top_up);
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(
        (again.body, again.content_type),
        (first.body, first.content_type)
    );

    let record = json!({"account": "u", "call": "c1", "seconds": 600, "type": "basic"});
    let rated = server.send_once("usage-1", "POST", "/v1/usage", record.clone());
    assert_eq!(rated.status, 200, "{}", rated.body);
    for _ in 0..2 {
        let again = server.send_once("usage-1", "POST", "/v1/usage", record.clone());
        assert_eq!((again.status, again.replayed), (200, true));
        assert_eq!(again.body, rated.body);
    }

    let other_body = json!({"account": "u", "call": "c2", "seconds": 600, "type": "basic"});
    let reused = server.send_once("usage-1", "POST", "/v1/usage", other_body);
    assert_eq!(
        (reused.status, reused.body["code"].as_str()),
        (422, Some("bad_request")),
        "{}",
        reused.body
    );
    assert_eq!(reused.content_type, "application/problem+json");
    assert!(
        reused.body["detail"]
            .as_str()
            .unwrap()
            .contains("another request")
    );
    let other_path = server.send_once(
        "usage-1",
        "PUT",
        "/v1/rates",
        json!({"basic": "9.00", "premium": "9.00"}),
    );
    assert_eq!(other_path.status, 422, "{}", other_path.body);
    let bad_key = server.send_once(&"k".repeat(300), "POST", "/v1/usage", record);
    assert_eq!(
        (bad_key.status, bad_key.body["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );

    let charges = server.all("charges", 10);
    assert_eq!(charges.len(), 1, "{charges:?}");
    let balance = server.get("/v1/accounts/u/balance?actor=u").body;
    assert_eq!(money(&balance["balance"]), "19.00", "{balance}");
    assert_eq!(server.get("/v1/rates").body["basic"], "0.10");
}

/// No double charge: a retry under one `Idempotency-Key` is carried out
/// once, on SQLite.
#[test]
fn a_retry_under_one_idempotency_key_is_carried_out_once() {
    let (server, _dir) = sqlite_server("idempotency");
    carried_out_once(&server);
    server.stop();
}

/// No double charge on PostgreSQL too: the keys live in the database every
/// node shares.
#[test]
fn a_retry_under_one_idempotency_key_is_carried_out_once_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let schema = "serve_idempotency";
    recharge_host::PostgresStore::open_empty_schema(&url, schema, 1).unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let server = Server::start(&db, &scratch("postgres-idempotency"));
    carried_out_once(&server);
    server.stop();
}

/// A refusal is kept like a success: the same request retried under its key
/// gets the same problem, even once the refusal would no longer hold.
#[test]
fn a_kept_refusal_is_replayed() {
    let (server, _dir) = sqlite_server("idempotency-refusal");
    let top_up = json!({"card": "visa", "amount": "5.00"});
    let refused = server.send_once("early", "POST", "/v1/accounts/u/top-ups", top_up.clone());
    assert_eq!(refused.status, 404, "{}", refused.body);
    account_with_a_card(&server);
    let again = server.send_once("early", "POST", "/v1/accounts/u/top-ups", top_up);
    assert_eq!((again.status, again.replayed), (404, true));
    assert_eq!(
        (again.body, again.content_type),
        (refused.body, refused.content_type)
    );
    assert!(server.all("charges", 10).is_empty());
    server.stop();
}

/// Nothing lost, no double charge across a restart: the key is kept in the
/// store, so a retry after the service was stopped (SIGTERM) and started
/// again on the same file gets the first response and charges nothing more.
#[test]
fn an_idempotency_key_survives_a_restart() {
    let (server, dir) = sqlite_server("idempotency-restart");
    account_with_a_card(&server);
    let top_up = json!({"card": "visa", "amount": "12.00"});
    let first = server.send_once(
        "restart-1",
        "POST",
        "/v1/accounts/u/top-ups",
        top_up.clone(),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    server.stop();
    let db = format!("sqlite:{}", dir.join("recharge.db").display());
    let server = Server::start(&db, &dir);
    let again = server.send_once("restart-1", "POST", "/v1/accounts/u/top-ups", top_up);
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(again.body, first.body);
    assert_eq!(server.all("charges", 10).len(), 1);
    let balance = server.get("/v1/accounts/u/balance?actor=u").body;
    assert_eq!(money(&balance["balance"]), "12.00", "{balance}");
    server.stop();
}

/// No double charge under a race: eight requests with one key at once run
/// the top-up once; every other one is answered the first response (a
/// replay) or 409 while it runs.
#[test]
fn concurrent_requests_with_one_key_run_once() {
    let (server, _dir) = sqlite_server("idempotency-race");
    account_with_a_card(&server);
    let server = std::sync::Arc::new(server);
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let server = std::sync::Arc::clone(&server);
            std::thread::spawn(move || {
                let top_up = json!({"card": "visa", "amount": "3.00"});
                server.send_once("race-1", "POST", "/v1/accounts/u/top-ups", top_up)
            })
        })
        .collect();
    let replies: Vec<Reply> = racers
        .into_iter()
        .map(|racer| racer.join().unwrap())
        .collect();
    let ran = replies
        .iter()
        .filter(|reply| reply.status == 200 && !reply.replayed)
        .count();
    assert_eq!(ran, 1);
    for reply in &replies {
        assert!(
            reply.status == 200 || (reply.status == 409 && reply.body["code"] == "bad_request"),
            "{} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(server.all("charges", 10).len(), 1);
    let balance = server.get("/v1/accounts/u/balance?actor=u").body;
    assert_eq!(money(&balance["balance"]), "3.00", "{balance}");
    let server = std::sync::Arc::into_inner(server).unwrap();
    server.stop();
}

/// The samples of a Prometheus text exposition, `name{labels}` to value,
/// each line checked against the format: `# HELP` and `# TYPE` comments, and
/// samples whose name is a metric name and whose value is a number.
pub(super) fn samples(text: &str) -> std::collections::BTreeMap<String, u64> {
    let mut samples = std::collections::BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (what, name) = (words.next().unwrap(), words.next().unwrap());
            assert!(matches!(what, "HELP" | "TYPE"), "{line}");
            if what == "TYPE" {
                let kind = words.next().unwrap();
                assert!(matches!(kind, "counter" | "gauge" | "histogram"), "{line}");
                assert!(typed.insert(name.to_owned()), "typed twice: {line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|family| typed.contains(*family))
            .unwrap_or(name);
        assert!(typed.contains(family), "no TYPE before {line}");
        if series.contains('{') {
            assert!(series.ends_with('}'), "{line}");
        }
        let whole = value.split('.').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        samples.insert(series.to_owned(), whole.parse().unwrap_or(0));
    }
    samples
}

/// Health and load are visible without reading the database: `/metrics`
/// (behind a key) is valid Prometheus text, and its counters move with the
/// requests, the events and the outbox.
#[test]
fn metrics_count_requests_and_events() {
    let (server, _dir) = sqlite_server("metrics");
    assert_eq!(server.call_as(None, "GET", "/metrics", None).status, 401);
    let before = server.get("/metrics");
    assert_eq!(before.status, 200);
    assert_eq!(before.content_type, recharge_serve::METRICS_CONTENT_TYPE);
    let before = samples(&before.text);
    account_with_a_card(&server);
    server.expect(
        200,
        "POST",
        "/v1/usage",
        json!({"account": "u", "call": "c1", "seconds": 60, "type": "basic"}),
    );
    server.expect(
        200,
        "POST",
        "/v1/accounts/u/top-ups",
        json!({"card": "visa", "amount": "5.00"}),
    );
    assert_eq!(server.get("/v1/accounts/nobody").status, 404);
    let after = server.get("/metrics");
    let after = samples(&after.text);
    let moved = |series: &str| {
        after.get(series).copied().unwrap_or(0) - before.get(series).copied().unwrap_or(0)
    };
    assert_eq!(
        moved("recharge_http_requests_total{route=\"/v1/usage\",method=\"POST\",status=\"200\"}"),
        1,
        "{after:?}"
    );
    assert_eq!(
        moved(
            "recharge_http_requests_total{route=\"/v1/accounts/{id}\",method=\"GET\",status=\"404\"}"
        ),
        1
    );
    assert_eq!(
        moved("recharge_http_request_duration_seconds_count{route=\"/v1/usage\"}"),
        1
    );
    assert_eq!(
        moved("recharge_http_request_duration_seconds_bucket{route=\"/v1/usage\",le=\"+Inf\"}"),
        1
    );
    assert_eq!(moved("recharge_events_total{kind=\"usage\"}"), 1);
    assert_eq!(moved("recharge_events_total{kind=\"top_up\"}"), 1);
    assert_eq!(moved("recharge_events_total{kind=\"open\"}"), 1);
    assert_eq!(moved("recharge_charges_queued_total"), 1);
    // The default policy decided on the usage and the top-up, burning fuel.
    assert_eq!(moved("recharge_policy_decisions_total{kind=\"usage\"}"), 1);
    assert!(moved("recharge_policy_fuel_total{kind=\"usage\"}") > 0);
    assert!(moved("recharge_policy_fuel_total{kind=\"top_up\"}") > 0);
    assert!(after.contains_key("recharge_webhook_retries_total"));
    assert!(after.contains_key("recharge_outbox_depth"));
    assert!(after.contains_key("recharge_policy_faults_total"));
    server.stop();
}

/// Every `$ref` in `value` that points into `document`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                match (name.as_str(), field) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(field, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

/// The API's description cannot drift from the API: `/openapi.json` is the
/// committed OpenAPI 3.1 document, every reference in it resolves, and it
/// lists exactly the routes the router serves (read off the router's own
/// construction).
#[test]
fn the_openapi_document_lists_exactly_the_routes_served() {
    let (server, _dir) = sqlite_server("openapi");
    let served = server.get("/openapi.json");
    assert_eq!(served.status, 200);
    assert_eq!(served.content_type, "application/json");
    let document: Value = serde_json::from_str(recharge_serve::OPENAPI).unwrap();
    assert_eq!(served.body, document);
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());

    let methods = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    let mut described = std::collections::BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(methods.contains(&method.as_str()), "{method} {path}");
            assert!(operation["responses"].is_object(), "{method} {path}");
            described.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: std::collections::BTreeSet<(String, String)> =
        recharge_serve::routes().into_iter().collect();
    assert_eq!(described, routed);

    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target}"));
        assert!(
            document.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }
    server.stop();
}
