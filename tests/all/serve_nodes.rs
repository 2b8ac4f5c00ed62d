//! `recharge serve` as a platform runs it for real: several instances on one
//! PostgreSQL database sharing the background work, and a service killed
//! with SIGKILL under load while its clients retry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use recharge_host::{
    AccountId, Cause, Platform, PostgresStore, SimulatedGateway, SqliteStore, Store,
};
use recharge_sim::vopr::check::{Snapshot, safety};
use serde_json::{Value, json};

use super::serve::{KEY, Server, money, samples, scratch};
use super::serve_outbound::{Received, Receiver};
use super::soak::postgres_schema;
use super::{postgres_url, shared};

/// Timers fired by a service, from its metrics.
fn timers_fired(server: &Server) -> u64 {
    let metrics = samples(&server.get("/metrics").text);
    metrics
        .get("recharge_events_total{kind=\"timer\"}")
        .copied()
        .unwrap_or(0)
}

/// Each timer fires once, on one node: two instances on one PostgreSQL
/// schema, each with its own name, run the background work of accounts whose
/// policy (the hostile corpus's `past`) asks for two wake-ups already due on
/// every call. Between them the instances fire every timer exactly once, and
/// each policy notes each of its wake-ups once. Both deliver notices to one
/// webhook: every notice arrives, once (one node holds the delivery at a
/// time).
#[test]
fn two_instances_on_one_postgres_database_fire_each_timer_once() {
    let Some(url) = postgres_url() else { return };
    let schema = "serve_two_nodes";
    let db = postgres_schema(&url, schema);
    let dir = scratch("two-nodes");
    let receiver = Receiver::start(|_, _| (200, "{}".into()));
    let node = |name: &str| {
        let args = ["--node", name, "--notify-url", &receiver.url];
        let secret = [("RECHARGE_WEBHOOK_SECRET", "two-nodes-secret")];
        Server::start_with(&db, &dir, &format!("{name}.log"), &args, &secret)
    };
    let nodes = [node("a"), node("b")];
    // Accounts on the default policy whose settings recharge them at once:
    // a notice each, committed through either node.
    for n in 0..6 {
        let (id, node) = (format!("notified-{n}"), &nodes[n % 2]);
        node.expect(
            201,
            "POST",
            "/v1/accounts",
            json!({"account": id, "kind": "user"}),
        );
        node.expect(
            201,
            "POST",
            &format!("/v1/accounts/{id}/cards"),
            json!({"card": "visa"}),
        );
        node.expect(
            200,
            "PUT",
            &format!("/v1/accounts/{id}/auto-recharge"),
            json!({"actor": id, "enabled": true, "threshold": "5.00", "amount": "10.00", "card": "visa"}),
        );
    }
    let accounts: Vec<String> = (0..8).map(|n| format!("past-{n}")).collect();
    for (n, id) in accounts.iter().enumerate() {
        let node = &nodes[n % 2];
        node.expect(
            201,
            "POST",
            "/v1/accounts",
            json!({"account": id, "kind": "user"}),
        );
        let policy = node.call_as(
            Some(KEY),
            "PUT",
            &format!("/v1/accounts/{id}/policy"),
            Some(super::hostile::rogue()),
        );
        assert_eq!(policy.status, 200, "{}", policy.body);
        // The other node serves the call: the assignment is shared.
        nodes[(n + 1) % 2].expect(
            200,
            "POST",
            "/v1/usage",
            json!({"account": id, "call": "c1", "seconds": 60, "type": "basic"}),
        );
    }
    let wanted = 2 * accounts.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let fired = loop {
        let fired: Vec<u64> = nodes.iter().map(timers_fired).collect();
        if fired.iter().sum::<u64>() >= wanted {
            break fired;
        }
        assert!(Instant::now() < deadline, "fired {fired:?} of {wanted}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // A few more ticks of both workers: a timer fired twice would show now.
    std::thread::sleep(recharge_serve::TICK * 3);
    let after: Vec<u64> = nodes.iter().map(timers_fired).collect();
    assert_eq!(after, fired);
    assert_eq!(fired.iter().sum::<u64>(), wanted, "by node: {fired:?}");
    eprintln!("timers fired by node a and b: {fired:?}");
    let notices: BTreeSet<String> = nodes[0]
        .all("notifications", 1000)
        .iter()
        .map(|notice| format!("ntc_{}", notice["cursor"].as_str().unwrap()))
        .collect();
    assert!(notices.len() >= 6, "{notices:?}");
    let ids = |got: &[Received]| -> Vec<String> {
        got.iter()
            .map(|request| request.headers["recharge-event-id"].clone())
            .collect()
    };
    let got = receiver.wait_until("every notice delivered", |got| {
        ids(got).into_iter().collect::<BTreeSet<_>>() == notices
    });
    assert_eq!(ids(&got).len(), notices.len(), "each once: {:?}", ids(&got));
    for node in nodes {
        node.stop();
    }
    let store = PostgresStore::open_in_schema(&url, schema, 1).unwrap();
    for id in &accounts {
        let account = store
            .account(&AccountId::from(id.as_str()))
            .unwrap()
            .unwrap();
        let note = account
            .policy_state(&format!("tenant:{id}"))
            .map(|state| String::from_utf8(state.to_vec()).unwrap())
            .unwrap_or_default();
        assert_eq!(
            (
                note.matches("woke 1 at").count(),
                note.matches("woke 2 at").count()
            ),
            (1, 1),
            "{id}: {note:?}"
        );
        assert_eq!(
            store.pending_timers(&AccountId::from(id.as_str())).unwrap(),
            0
        );
    }
}

/// A client of the service under load: it sends its requests in order and
/// retries each, under the same `Idempotency-Key`, until the service answers
/// it (whichever service runs at `base` by then).
struct Client {
    base: Arc<RwLock<String>>,
    agent: ureq::Agent,
}

impl Client {
    fn new(base: &Arc<RwLock<String>>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(40)))
            .build()
            .into();
        Client {
            base: Arc::clone(base),
            agent,
        }
    }

    /// POST `body` under `key` until answered 2xx; the answer and the number
    /// of tries.
    fn post(&self, key: &str, path: &str, body: &Value) -> (Value, u32) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut tries = 0;
        loop {
            tries += 1;
            let url = format!("{}{path}", self.base.read().unwrap());
            let sent = self
                .agent
                .post(&url)
                .header("Authorization", &format!("Bearer {KEY}"))
                .header("Idempotency-Key", key)
                .content_type("application/json")
                .send(body.to_string());
            if let Ok(mut response) = sent {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                if (200..300).contains(&status) {
                    return (serde_json::from_str(&text).unwrap(), tries);
                }
                // Only the service's own failures and a request still held
                // by its key are tried again; anything else is a bug here.
                assert!(
                    status >= 500 || status == 409,
                    "{path} under {key}: {status} {text}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "{path} under {key} never answered"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const CLIENTS: usize = 4;
const REQUESTS: usize = 60;
const PER_BATCH: usize = 3;

/// The calls client `client` records: 60 s basic each.
fn calls(client: usize) -> Vec<Vec<Value>> {
    (0..REQUESTS)
        .map(|request| {
            let records = if request % 2 == 0 { 1 } else { PER_BATCH };
            (0..records)
                .map(|record| {
                    json!({
                        "account": format!("u{client}"),
                        "call": format!("call-{request}-{record}"),
                        "seconds": 60,
                        "type": "basic",
                    })
                })
                .collect()
        })
        .collect()
}

/// Nothing lost, no double charge, nothing stuck: the service on `db` is
/// killed with SIGKILL twice while four clients send usage records (singles
/// and batches) under idempotency keys, each retrying until answered; after
/// the restarts every record is rated exactly once, every auto-recharge the
/// records led to is charged once and credited once, and nothing stays in
/// the outbox.
fn killed_under_load(db: &str, dir: &std::path::Path, open: impl Fn() -> Arc<dyn Store>) {
    let mut server = Server::start_with(db, dir, "serve-0.log", &[], &[]);
    server.expect(
        200,
        "PUT",
        "/v1/rates",
        json!({"basic": "0.10", "premium": "0.20"}),
    );
    for client in 0..CLIENTS {
        let id = format!("u{client}");
        server.expect(
            201,
            "POST",
            "/v1/accounts",
            json!({"account": id, "kind": "user"}),
        );
        server.expect(
            201,
            "POST",
            &format!("/v1/accounts/{id}/cards"),
            json!({"card": "visa"}),
        );
        server.expect(
            200,
            "PUT",
            &format!("/v1/accounts/{id}/auto-recharge"),
            json!({"actor": id, "enabled": true, "threshold": "2.00", "amount": "5.00", "card": "visa"}),
        );
    }
    let base = Arc::new(RwLock::new(server.base.clone()));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, done) = (Arc::clone(&base), Arc::clone(&done));
            std::thread::spawn(move || {
                let http = Client::new(&base);
                let mut retried = 0;
                for (request, records) in calls(client).into_iter().enumerate() {
                    let key = format!("u{client}-request-{request}");
                    let body = match records.as_slice() {
                        [one] => one.clone(),
                        many => json!({ "records": many }),
                    };
                    let (answer, tries) = http.post(&key, "/v1/usage", &body);
                    assert!(answer.is_object());
                    retried += tries - 1;
                    done.fetch_add(1, Ordering::SeqCst);
                }
                retried
            })
        })
        .collect();
    let total = CLIENTS * REQUESTS;
    for (kill, share) in [(1, 3), (2, 3)].into_iter().enumerate() {
        while done.load(Ordering::SeqCst) < total * share.0 / share.1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(server); // SIGKILL, as `Drop` does: no chance to finish anything.
        server = Server::start_with(db, dir, &format!("serve-{}.log", kill + 1), &[], &[]);
        *base.write().unwrap() = server.base.clone();
    }
    let retried: u32 = clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .sum();
    eprintln!("{retried} retries of {total} requests across two SIGKILLs");

    // Time runs on: the outbox settles what the kills left in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let metrics = samples(&server.get("/metrics").text);
        if metrics["recharge_outbox_depth"] == 0 && metrics["recharge_inbox_depth"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the outbox never emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let charges = server.all("charges", 1000);
    let mut balances = BTreeMap::new();
    for client in 0..CLIENTS {
        let id = format!("u{client}");
        let body = server
            .get(&format!("/v1/accounts/{id}/balance?actor={id}"))
            .body;
        balances.insert(id, money(&body["balance"]).to_owned());
    }
    server.stop();

    let store = open();
    let gateway = Arc::new(SimulatedGateway::in_store(Arc::clone(&store)).unwrap());
    let platform = Platform::builder()
        .engine(shared().0.clone())
        .default_policy(Arc::clone(&shared().1))
        .store(Arc::clone(&store))
        .gateway(gateway.clone())
        .node("checker")
        .build()
        .unwrap();
    let snapshot = Snapshot::read(&platform, &gateway).unwrap();
    safety(&platform, &gateway, &snapshot).unwrap();
    assert_eq!(gateway.submitted_twice(), Vec::<String>::new());
    let keys: BTreeSet<&str> = charges.iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), charges.len(), "each charge once");
    assert!(
        charges
            .iter()
            .all(|charge| charge["outcome"] == "succeeded")
    );

    let mut rated: BTreeMap<(String, String), usize> = BTreeMap::new();
    for entry in platform.ledger().unwrap() {
        if let Cause::Call(call) = entry.cause {
            *rated.entry((entry.account.0, call)).or_default() += 1;
        }
    }
    let sent: BTreeSet<(String, String)> = (0..CLIENTS)
        .flat_map(|client| calls(client).into_iter().flatten())
        .map(|record| {
            let text = |name: &str| record[name].as_str().unwrap().to_owned();
            (text("account"), text("call"))
        })
        .collect();
    assert_eq!(
        rated.keys().cloned().collect::<BTreeSet<_>>(),
        sent,
        "every record rated"
    );
    assert!(rated.values().all(|times| *times == 1), "each once");
    for client in 0..CLIENTS {
        let id = format!("u{client}");
        let records = sent.iter().filter(|(account, _)| *account == id).count();
        let credited: rust_decimal::Decimal = charges
            .iter()
            .filter(|charge| charge["payer"] == id.as_str())
            .map(|charge| {
                money(&charge["amount"])
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum();
        let cost = rust_decimal::Decimal::new(10, 2) * rust_decimal::Decimal::from(records);
        assert_eq!(
            balances[&id].parse::<rust_decimal::Decimal>().unwrap(),
            credited - cost,
            "{id}: credited {credited}, {records} minutes at 0.10"
        );
    }
}

#[test]
fn a_service_killed_under_load_on_sqlite_loses_nothing_and_charges_once() {
    let dir = scratch("killed-sqlite");
    let path = dir.join("recharge.db");
    let db = format!("sqlite:{}", path.display());
    killed_under_load(&db, &dir, || Arc::new(SqliteStore::open(&path).unwrap()));
}

#[test]
fn a_service_killed_under_load_on_postgres_loses_nothing_and_charges_once() {
    let Some(url) = postgres_url() else { return };
    let schema = "serve_killed";
    let db = postgres_schema(&url, schema);
    let dir = scratch("killed-postgres");
    killed_under_load(&db, &dir, || {
        Arc::new(PostgresStore::open_in_schema(&url, schema, 1).unwrap())
    });
}
