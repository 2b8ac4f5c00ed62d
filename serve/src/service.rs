//! The service's state and its blocking side: every request ends in one call
//! here, run on tokio's blocking pool (the platform runs wasmtime, rusqlite
//! and the synchronous PostgreSQL client).

use std::collections::BTreeMap;
use std::sync::Arc;

use recharge_host::{
    AccountId, CardBehavior, EventReport, GatewayAnswer, HostError, OutboxState, Platform,
    SimulatedGateway, Store, sha256_hex,
};
use recharge_policy_sdk::model::{QueryKind, Rates};
use recharge_sim::report::{account_out, answer_json, charge_out, notification_out};
use recharge_sim::script::Command;
use serde_json::{Value, json};

use crate::answer::{page, report_json};
use crate::keys::ApiKeys;
use crate::metrics::Metrics;
use crate::problem::Problem;

/// A running service: the platform, the store it shares with other nodes,
/// the (simulated, durable) gateway and the accepted keys.
pub struct Service {
    /// The platform every request goes to.
    pub platform: Platform,
    /// The store beneath it.
    pub store: Arc<dyn Store>,
    /// The simulated card network, kept in the store; `None` when charges go
    /// to the platform's own gateway (`--gateway webhook:URL`).
    pub gateway: Option<Arc<SimulatedGateway>>,
    /// The API keys accepted.
    pub keys: ApiKeys,
    /// The counters of `GET /metrics`.
    pub metrics: Metrics,
    /// This run of this node, `NODE@START_MS.RANDOM`: what it reserves under
    /// an idempotency key is marked with it, so a later run knows the request
    /// died with this one.
    pub incarnation: String,
}

/// The answer of a request: its JSON body, or the problem that stopped it.
pub type Answer = Result<Value, Problem>;

fn account(id: &str) -> AccountId {
    AccountId::from(id)
}

impl Service {
    /// Carry out one script command; the answer is what it did.
    pub fn run(&self, command: Command) -> Answer {
        let kind = command_kind(&command);
        let mut did = EventReport::default();
        let answer = self.carry_out(command, &mut did);
        if answer.is_ok() {
            self.metrics.event(kind, &did);
        }
        answer
    }

    /// [`run`](Self::run), telling `did` what the command did.
    fn carry_out(&self, command: Command, did: &mut EventReport) -> Answer {
        let platform = &self.platform;
        *did = match command {
            Command::Open {
                account: id,
                kind,
                parent,
            } => {
                platform.open_account(account(&id), kind, parent.as_deref().map(account))?;
                return self.account_json(&id);
            }
            Command::AddCard {
                account: id,
                card,
                behavior,
            } => {
                let simulated = self.simulated(behavior != CardBehavior::default())?;
                platform.add_card(&account(&id), &card)?;
                if let Some(gateway) = simulated {
                    gateway
                        .set_behavior(&account(&id), &card, behavior)
                        .map_err(HostError::from)?;
                }
                EventReport::default()
            }
            Command::UpdateCard {
                account: id,
                card,
                behavior,
            } => {
                let id = account(&id);
                let simulated = self.simulated(behavior.is_some())?;
                platform.account(&id)?;
                if let (Some(gateway), Some(behavior)) = (simulated, behavior) {
                    gateway
                        .set_behavior(&id, &card, behavior)
                        .map_err(HostError::from)?;
                }
                platform.update_card(&id, &card)?
            }
            Command::Include {
                account: id,
                basic,
                premium,
            } => {
                platform.include_minutes(&account(&id), basic, premium)?;
                EventReport::default()
            }
            Command::AutoRecharge {
                actor,
                account: id,
                settings,
            } => platform.save_auto_recharge(&account(&actor), &account(&id), settings)?,
            Command::Allocate {
                actor,
                account: id,
                settings,
            } => platform.save_allocation(&account(&actor), &account(&id), settings)?,
            Command::Usage {
                account: id,
                call,
                seconds,
                minute_type,
            } => platform.record_usage(&account(&id), &call, seconds, minute_type)?,
            Command::Rates { basic, premium } => {
                platform.set_rates(Rates { basic, premium })?;
                return Ok(self.rates_json());
            }
            Command::Query {
                actor,
                account: id,
                what,
            } => return self.query(&actor, &id, what),
            other => {
                return Err(Problem::host_failure(&format!(
                    "the service has no route to {other:?}"
                )));
            }
        };
        Ok(report_json(did))
    }

    /// The simulated gateway, if charges go to it; a request that sets a
    /// card's behavior (`asked`) is refused when they do not, naming the
    /// field.
    fn simulated(&self, asked: bool) -> Result<Option<&SimulatedGateway>, Problem> {
        match &self.gateway {
            Some(gateway) => Ok(Some(gateway)),
            None if asked => Err(Problem::bad_request(
                "`behavior`: charges go to the platform's own gateway (--gateway webhook:URL); \
                 card behaviors are the simulated gateway's",
                Some("behavior".into()),
            )),
            None => Ok(None),
        }
    }

    /// `actor` tops up the account with `card`.
    pub fn top_up(&self, actor: &str, command: Command) -> Answer {
        let Command::TopUp {
            account: id,
            card,
            amount,
        } = command
        else {
            return self.run(command);
        };
        let did = self
            .platform
            .top_up(&account(actor), &account(&id), &card, amount)?;
        self.metrics.event("top_up", &did);
        Ok(report_json(&did))
    }

    /// `actor` asks about the account.
    pub fn query(&self, actor: &str, id: &str, what: QueryKind) -> Answer {
        let answer = self.platform.query(&account(actor), &account(id), what)?;
        Ok(answer_json(&answer))
    }

    /// The account as in the output document, with its id.
    pub fn account_json(&self, id: &str) -> Answer {
        let id = account(id);
        let stored = self.platform.account(&id)?;
        // A policy that cannot describe the account (it faults) leaves its
        // settings out; the host's own facts stand.
        let view = self.platform.describe(&id).unwrap_or_default();
        let mut body = serde_json::to_value(account_out(&stored, &view))
            .map_err(|err| Problem::host_failure(&err))?;
        body["id"] = Value::String(id.0);
        Ok(body)
    }

    /// Give the owner its own policy component.
    pub fn set_policy(&self, owner: &str, component: &[u8]) -> Answer {
        let name = self.platform.set_policy(&account(owner), component)?;
        self.metrics.event("policy", &EventReport::default());
        Ok(json!({ "policy": name, "sha256": sha256_hex(component) }))
    }

    /// Carry out usage records in order: each is answered on its own (a record
    /// the policy rejects is still rated), a host failure stops the batch.
    pub fn usage_batch(&self, records: Vec<Command>) -> Answer {
        let mut answers = Vec::with_capacity(records.len());
        for record in records {
            let call = match &record {
                Command::Usage { call, .. } => call.clone(),
                _ => String::new(),
            };
            let mut answer = match self.run(record) {
                Ok(did) => did,
                Err(problem) if problem.status.is_server_error() => return Err(problem),
                Err(problem) => json!({ "error": problem.to_json() }),
            };
            answer["call"] = Value::String(call);
            answers.push(answer);
        }
        Ok(json!({ "records": answers }))
    }

    /// The rates in force.
    pub fn rates_json(&self) -> Value {
        let rates = self.platform.rates();
        json!({
            "basic": recharge_host::money(rates.basic),
            "premium": recharge_host::money(rates.premium),
        })
    }

    /// Settled charges after the cursor, in the order they committed.
    pub fn charges(&self, after: u64, limit: usize) -> Answer {
        let items = self
            .store
            .charges_after(after, limit)
            .map_err(HostError::from)?;
        let items = items
            .iter()
            .map(|(seq, record)| (*seq, charge_out(record)))
            .collect();
        Ok(page(after, limit, items))
    }

    /// Notices after the cursor, in the order they committed.
    pub fn notifications(&self, after: u64, limit: usize) -> Answer {
        let items = self
            .store
            .notifications_after(after, limit)
            .map_err(HostError::from)?;
        let items = items
            .iter()
            .map(|(seq, notice)| (*seq, notification_out(notice)))
            .collect();
        Ok(page(after, limit, items))
    }

    /// `POST /v1/payment-outcomes`: the gateway's word on the charge `key`,
    /// applied once. A charge settled already (by an earlier delivery, or the
    /// gateway's answer at submission) keeps its first outcome: the answer
    /// says `applied: false`. A key the host never charged is not found.
    pub fn payment_outcome(&self, key: &str, answer: GatewayAnswer) -> Answer {
        let held = |store: &dyn Store| -> Result<Option<&'static str>, Problem> {
            let entry = store.outbox_entry(key).map_err(HostError::from)?;
            Ok(entry.map(|entry| match entry.state {
                OutboxState::Queued => "queued",
                OutboxState::Submitted { .. } => "submitted",
            }))
        };
        if held(self.store.as_ref())?.is_none() {
            if self.store.key_used(key).map_err(HostError::from)? {
                return Ok(json!({ "key": key, "applied": false, "state": "settled" }));
            }
            return Err(Problem::not_found(format!("no charge under key {key:?}")));
        }
        let applied = self.platform.deliver_outcome(key, answer)?;
        let state = held(self.store.as_ref())?.unwrap_or("settled");
        self.metrics
            .event("payment_outcome", &EventReport::default());
        Ok(json!({ "key": key, "applied": applied, "state": state }))
    }

    /// Whether the store answers (its migrations applied when it was opened).
    pub fn ready(&self) -> Answer {
        self.store
            .account_ids_after(None, 1)
            .map_err(HostError::from)?;
        let checks = BTreeMap::from([("database", "ok")]);
        Ok(json!({ "status": "ready", "checks": checks }))
    }

    /// The work due now: wake-ups, charges to submit or ask about again,
    /// outcomes to offer again, and the simulated gateway's webhooks.
    pub fn run_due_work(&self) -> Result<EventReport, HostError> {
        let now = self.platform.now();
        let report = match &self.gateway {
            Some(gateway) => recharge_sim::network::advance(&self.platform, gateway, now)?,
            None => self.platform.advance_to(now)?,
        };
        self.metrics.report(&report);
        Ok(report)
    }

    /// `GET /metrics`: the counters, and the store's outbox and inbox depths.
    pub fn metrics_text(&self) -> Result<String, Problem> {
        let outbox = self.store.outbox().map_err(HostError::from)?.len();
        let inbox = self.store.inbox().map_err(HostError::from)?.len();
        Ok(self.metrics.render(outbox, inbox))
    }
}

/// The name of a command's kind in the metrics: its script name.
fn command_kind(command: &Command) -> &'static str {
    match command {
        Command::Open { .. } => "open",
        Command::AddCard { .. } => "add_card",
        Command::UpdateCard { .. } => "update_card",
        Command::SetCardBehavior { .. } => "set_card_behavior",
        Command::Rates { .. } => "rates",
        Command::Include { .. } => "include",
        Command::TopUp { .. } => "top_up",
        Command::AutoRecharge { .. } => "auto_recharge",
        Command::Allocate { .. } => "allocate",
        Command::Usage { .. } => "usage",
        Command::Policy { .. } => "policy",
        Command::Advance => "advance",
        Command::Query { .. } => "query",
    }
}
