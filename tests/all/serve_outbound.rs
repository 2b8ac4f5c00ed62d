//! What `recharge serve` calls on the platform's side: the notice webhook
//! (`--notify-url`) and the platform's own gateway (`--gateway webhook:URL`),
//! against a small HTTP receiver on 127.0.0.1 that records every request and
//! answers as each test says.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::serve::{Server, money, samples, scratch};

/// A request the receiver got.
#[derive(Debug, Clone)]
pub(super) struct Received {
    /// Its headers, names in lower case.
    pub(super) headers: BTreeMap<String, String>,
    /// Its body.
    pub(super) body: String,
    /// The status it was answered.
    pub(super) status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

/// How the receiver answers the `n`-th request (from 0): status and body.
type Answerer = dyn Fn(usize, &Received) -> (u16, String) + Send + Sync;

/// An HTTP/1.1 receiver on a free port of 127.0.0.1, one request a
/// connection.
pub(super) struct Receiver {
    /// Its URL.
    pub(super) url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(super) fn start(
        answer: impl Fn(usize, &Received) -> (u16, String) + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answer: Arc<Answerer> = Arc::new(answer);
        let recorded = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (got, answer) = (Arc::clone(&recorded), Arc::clone(&answer));
                std::thread::spawn(move || serve_one(stream, &got, answer.as_ref()));
            }
        });
        Receiver { url, got }
    }

    /// Every request so far.
    pub(super) fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until `done` holds of the requests so far (at most two minutes).
    pub(super) fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "never {what}: got {got:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_one(stream: TcpStream, got: &Mutex<Vec<Received>>, answer: &Answerer) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .map_or(0, |length| length.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut received = Received {
        headers,
        body: String::from_utf8(body).unwrap(),
        status: 0,
    };
    let (status, reply) = {
        let mut got = got.lock().unwrap();
        let (status, reply) = answer(got.len(), &received);
        received.status = status;
        got.push(received);
        (status, reply)
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{reply}",
        reply.len()
    );
}

const SECRET: &str = "whsec_test_0123456789";

/// Whether `signature` (`t=..,v1=..`) signs `body` under [`SECRET`], made
/// within five minutes of now: as a receiver checks it.
fn signed(signature: &str, body: &str) -> bool {
    let Some((t, v1)) = signature.split_once(',') else {
        return false;
    };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t: i64 = t.parse().unwrap_or(0);
    expected == v1 && (now - t).abs() < 300
}

/// Nothing lost, nothing forged: every notice reaches the platform's webhook,
/// signed over its timestamp and body, with its event id; the first attempt
/// answered 500 is tried again with the same id and body, and in the end
/// each notice is delivered once, in order.
fn notices_reach_the_webhook(dir: &std::path::Path, db: &str) {
    let receiver = Receiver::start(|n, _| {
        if n == 0 {
            (500, "{}".into())
        } else {
            (200, "{}".into())
        }
    });
    let server = Server::start_with(
        db,
        dir,
        "serve.log",
        &["--notify-url", &receiver.url],
        &[("RECHARGE_WEBHOOK_SECRET", SECRET)],
    );
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
        "/v1/accounts/u/auto-recharge",
        json!({"actor": "u", "enabled": true, "threshold": "5.00", "amount": "10.00", "card": "visa"}),
    );
    server.expect(
        200,
        "POST",
        "/v1/usage",
        json!({"account": "u", "call": "c1", "seconds": 60, "type": "basic"}),
    );
    let notices = server.all("notifications", 100);
    assert!(!notices.is_empty(), "the recharge sent notices");
    let ids: BTreeSet<String> = notices
        .iter()
        .map(|notice| format!("ntc_{}", notice["cursor"].as_str().unwrap()))
        .collect();

    let delivered = |got: &[Received]| -> Vec<String> {
        got.iter()
            .filter(|request| request.status == 200)
            .map(|request| request.json()["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let got = receiver.wait_until("every notice delivered", |got| {
        delivered(got).into_iter().collect::<BTreeSet<_>>() == ids
    });
    for request in &got {
        let body = request.json();
        assert_eq!(
            request.headers["recharge-event-id"], body["id"],
            "{request:?}"
        );
        assert!(
            signed(&request.headers["recharge-signature"], &request.body),
            "a good signature: {request:?}"
        );
        assert!(!signed(
            &request.headers["recharge-signature"],
            &request.body.replace("u", "v")
        ));
        let cursor = body["sequence"].as_u64().unwrap().to_string();
        let listed = notices
            .iter()
            .find(|notice| notice["cursor"] == cursor.as_str())
            .unwrap();
        let mut listed = listed.clone();
        listed.as_object_mut().unwrap().remove("cursor");
        assert_eq!(body["notice"], listed);
    }
    // The failed attempt, then the same notice again.
    assert_eq!(got[0].status, 500);
    assert_eq!(
        (got[1].body.as_str(), got[1].status),
        (got[0].body.as_str(), 200)
    );
    let order = delivered(&got);
    let mut sorted = order.clone();
    sorted.sort_by_key(|id| id[4..].parse::<u64>().unwrap());
    sorted.dedup();
    assert_eq!(order, sorted, "each once, in order");

    let metrics = samples(&server.get("/metrics").text);
    assert_eq!(
        metrics["recharge_webhook_deliveries_total"],
        ids.len() as u64
    );
    assert!(metrics["recharge_webhook_retries_total"] >= 1);
    server.stop();
}

/// The answer the platform's gateway gives: the first charge succeeds at
/// once, every later one is pending (its outcome comes through
/// `/v1/payment-outcomes`).
fn platform_gateway(n: usize, request: &Received) -> (u16, String) {
    let key = request.json()["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let body = if n == 0 {
        json!({"outcome": "succeeded", "reference": "pi_1", "key": key})
    } else {
        json!({"outcome": "pending", "reference": format!("pi_{n}")})
    };
    (200, body.to_string())
}

/// No double credit, nothing stuck: with `--gateway webhook:URL` each charge
/// goes to the platform's URL under its key; an answer at once settles it, a
/// pending one waits for `POST /v1/payment-outcomes`, which settles it once
/// (a repeat, or another outcome later, changes nothing); a key never
/// charged is not found, and a bad outcome names its field.
fn the_platforms_gateway_settles_charges(dir: &std::path::Path, db: &str) {
    let receiver = Receiver::start(platform_gateway);
    let gateway = format!("webhook:{}", receiver.url);
    let server = Server::start_with(db, dir, "serve.log", &["--gateway", &gateway], &[]);
    server.expect(
        201,
        "POST",
        "/v1/accounts",
        json!({"account": "u", "kind": "user"}),
    );
    server.expect(201, "POST", "/v1/accounts/u/cards", json!({"card": "visa"}));
    let simulated_only = server.send(
        "POST",
        "/v1/accounts/u/cards",
        json!({"card": "amex", "behavior": "decline"}),
    );
    assert_eq!(
        (simulated_only.status, simulated_only.body["field"].as_str()),
        (400, Some("behavior")),
        "{}",
        simulated_only.body
    );
    let balance = |server: &Server| {
        let body = server.get("/v1/accounts/u/balance?actor=u").body;
        money(&body["balance"]).to_owned()
    };

    let first = server.expect(
        200,
        "POST",
        "/v1/accounts/u/top-ups",
        json!({"card": "visa", "amount": "10.00"}),
    );
    let first_key = first["charges"][0]["key"].as_str().unwrap().to_owned();
    let got = receiver.wait_until("the first charge", |got| !got.is_empty());
    assert_eq!(got[0].headers["idempotency-key"], first_key);
    let sent = got[0].json();
    assert_eq!(
        (
            &sent["key"],
            &sent["payer"],
            &sent["card"],
            &sent["amount"],
            &sent["asked"]
        ),
        (
            &json!(first_key),
            &json!("u"),
            &json!("visa"),
            &json!("10.00"),
            &json!(0)
        ),
        "{sent}"
    );
    let settled = |server: &Server, key: &str| {
        server
            .all("charges", 100)
            .into_iter()
            .find(|charge| charge["key"] == key)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while settled(&server, &first_key).is_none() {
        assert!(Instant::now() < deadline, "the first charge never settled");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        settled(&server, &first_key).unwrap()["outcome"],
        "succeeded"
    );
    assert_eq!(balance(&server), "10.00");

    let second = server.expect(
        200,
        "POST",
        "/v1/accounts/u/top-ups",
        json!({"card": "visa", "amount": "5.00"}),
    );
    let second_key = second["charges"][0]["key"].as_str().unwrap().to_owned();
    receiver.wait_until("the second charge", |got| {
        got.iter()
            .any(|request| request.headers["idempotency-key"] == second_key)
    });
    assert_eq!(balance(&server), "10.00", "pending: nothing credited yet");
    assert!(settled(&server, &second_key).is_none());

    let outcome = json!({"key": second_key, "outcome": "succeeded", "reference": "pi_1"});
    let applied = server.expect(200, "POST", "/v1/payment-outcomes", outcome.clone());
    assert_eq!(
        applied,
        json!({"key": second_key, "applied": true, "state": "settled"})
    );
    assert_eq!(balance(&server), "15.00");
    let again = server.expect(200, "POST", "/v1/payment-outcomes", outcome);
    assert_eq!(again["applied"], false);
    let other = server.expect(
        200,
        "POST",
        "/v1/payment-outcomes",
        json!({"key": second_key, "outcome": "declined"}),
    );
    assert_eq!(
        (&other["applied"], &other["state"]),
        (&json!(false), &json!("settled"))
    );
    assert_eq!(
        balance(&server),
        "15.00",
        "the first outcome stands, credited once"
    );
    assert_eq!(
        settled(&server, &second_key).unwrap()["outcome"],
        "succeeded"
    );

    let unknown = server.send(
        "POST",
        "/v1/payment-outcomes",
        json!({"key": "never-charged", "outcome": "succeeded"}),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    for (body, field) in [
        (json!({"key": second_key, "outcome": "maybe"}), "outcome"),
        (json!({"outcome": "succeeded"}), "key"),
        (json!({"key": second_key}), "outcome"),
        (
            json!({"key": second_key, "outcome": "failed", "cents": 1}),
            "cents",
        ),
    ] {
        let refused = server.send("POST", "/v1/payment-outcomes", body);
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (400, Some(field)),
            "{}",
            refused.body
        );
    }
    server.stop();
}

/// A fresh SQLite file in a scratch folder named `name`.
fn on_sqlite(name: &str) -> (std::path::PathBuf, String) {
    let dir = scratch(name);
    let db = format!("sqlite:{}", dir.join("recharge.db").display());
    (dir, db)
}

/// A fresh PostgreSQL schema `schema`, and a scratch folder for the logs.
fn on_postgres(schema: &str) -> Option<(std::path::PathBuf, String)> {
    let url = super::postgres_url()?;
    Some((scratch(schema), super::soak::postgres_schema(&url, schema)))
}

#[test]
fn notices_reach_the_webhook_signed_and_one_answered_500_is_sent_again() {
    let (dir, db) = on_sqlite("notice-webhook");
    notices_reach_the_webhook(&dir, &db);
}

/// On PostgreSQL the cursor and lease live in the database the nodes share.
#[test]
fn notices_reach_the_webhook_from_postgres() {
    let Some((dir, db)) = on_postgres("serve_notices") else {
        return;
    };
    notices_reach_the_webhook(&dir, &db);
}

#[test]
fn the_platforms_gateway_settles_charges_at_once_or_through_payment_outcomes() {
    let (dir, db) = on_sqlite("webhook-gateway");
    the_platforms_gateway_settles_charges(&dir, &db);
}

#[test]
fn the_platforms_gateway_settles_charges_on_postgres() {
    let Some((dir, db)) = on_postgres("serve_gateway") else {
        return;
    };
    the_platforms_gateway_settles_charges(&dir, &db);
}
