//! Notices to the platform's webhook (`--notify-url URL`), at least once, in
//! the order they committed.
//!
//! Each notice is one `POST URL`:
//!
//! ```json
//! {"id": "ntc_12", "sequence": 12,
//!  "notice": {"at": "...", "account": "u", "kind": "recharge_succeeded", "message": "..."}}
//! ```
//!
//! with its id in `Recharge-Event-Id` and `Recharge-Signature:
//! t=UNIX_SECONDS,v1=HEX`, the HMAC-SHA256 under the shared secret of
//! `"{t}.{body}"` (the scheme Stripe uses: the receiver recomputes it, compares
//! in constant time and refuses an old `t`). A 2xx answer delivers the notice;
//! anything else (another status, no answer within the timeout) stops the
//! round, and the same notice is tried again after a back-off that doubles
//! from [`FIRST_BACKOFF`] to [`MOST_BACKOFF`]. A receiver may see a notice
//! twice (a node that stops between its delivery and recording it): the event
//! id tells it so.
//!
//! Where delivery stands is kept in the store, so it survives restarts and is
//! shared by the nodes on one database: the journal stream
//! [`NOTICE_CURSOR_STREAM`] holds entries `{"after": SEQ, "node": NAME,
//! "until": MS}`, each saying that notices up to `after` are delivered and
//! that `node` delivers the next ones until `until`. An entry is appended only
//! on top of the last one read (the journal's compare-and-append), so one node
//! at a time delivers; a node that stops leaves its lease to expire after
//! [`LEASE`].

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use recharge_host::{HostError, StoreError};
use recharge_policy_sdk::model::Timestamp;
use recharge_sim::report::notification_out;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::outbound::{Client, Endpoint};
use crate::service::Service;

/// The journal stream of the notice webhook's cursor and lease.
pub const NOTICE_CURSOR_STREAM: &str = "notice-webhook-cursor";
/// How long a node holds the delivery of notices without renewing it.
pub const LEASE: Duration = Duration::from_secs(30);
/// The most notices delivered between two records of progress.
pub const BATCH: usize = 100;
/// The first wait after a failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts.
pub const MOST_BACKOFF: Duration = Duration::from_secs(300);
/// The header carrying a notice's event id.
pub const EVENT_ID_HEADER: &str = "Recharge-Event-Id";
/// The header carrying a notice's signature.
pub const SIGNATURE_HEADER: &str = "Recharge-Signature";

/// Where notices go and the secret they are signed with.
#[derive(Clone)]
pub struct NoticeWebhook {
    /// The receiver.
    pub endpoint: Endpoint,
    /// The shared secret (`RECHARGE_WEBHOOK_SECRET`).
    pub secret: String,
}

/// The `Recharge-Signature` value of `body` sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{unix_seconds}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("t={unix_seconds},v1={hex}")
}

/// One entry of the cursor stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Notices up to this sequence number are delivered.
    after: u64,
    /// The node delivering the next ones.
    node: String,
    /// Until when (ms since the epoch).
    until: Timestamp,
}

/// What a round did.
#[derive(Debug, Default)]
pub struct Round {
    /// Notices the receiver accepted.
    pub delivered: u64,
    /// Why the round stopped short, when an attempt failed.
    pub failed: Option<String>,
    /// Whether more notices wait (a full batch went out).
    pub more: bool,
}

/// The deliverer of one node: the cursor as last read from the store.
pub struct Deliverer {
    hook: NoticeWebhook,
    client: Client,
    /// Entries of the stream read so far.
    seen: u64,
    cursor: Cursor,
}

impl Deliverer {
    /// A deliverer to `hook`, reading the cursor from the store at its first
    /// round.
    pub fn new(hook: NoticeWebhook) -> Self {
        Deliverer {
            hook,
            client: Client::default(),
            seen: 0,
            cursor: Cursor::default(),
        }
    }

    /// Catch up with the cursor stream.
    fn read(&mut self, service: &Service) -> Result<(), StoreError> {
        for (seq, entry) in service.store.journal(NOTICE_CURSOR_STREAM, self.seen)? {
            self.cursor = serde_json::from_str(&entry).map_err(|err| {
                StoreError::Backend(format!("{NOTICE_CURSOR_STREAM} entry {seq}: {err}"))
            })?;
            self.seen = seq;
        }
        Ok(())
    }

    /// Record that notices up to `after` are delivered and that this node
    /// holds the next ones for a [`LEASE`]; `false` when another node
    /// recorded first (the cursor is then read again).
    fn record(&mut self, service: &Service, after: u64) -> Result<bool, StoreError> {
        let cursor = Cursor {
            after,
            node: service.platform.node().to_owned(),
            until: service.platform.now() + LEASE.as_millis() as i64,
        };
        let entry = serde_json::to_string(&cursor).expect("a cursor serialises");
        match service
            .store
            .append(NOTICE_CURSOR_STREAM, self.seen, &[entry])
        {
            Ok(()) => {
                self.seen += 1;
                self.cursor = cursor;
                Ok(true)
            }
            Err(StoreError::Behind(_)) => {
                self.read(service)?;
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// Deliver the notices waiting, up to [`BATCH`], if no other node holds
    /// the delivery.
    pub fn round(&mut self, service: &Service) -> Result<Round, HostError> {
        self.read(service)?;
        let node = service.platform.node();
        let now = service.platform.now();
        if self.cursor.node != node && self.cursor.until > now {
            return Ok(Round::default());
        }
        let waiting = service
            .store
            .notifications_after(self.cursor.after, BATCH)?;
        if waiting.is_empty() {
            return Ok(Round::default());
        }
        // Hold the lease for the whole batch (renewed when it has less than
        // half its time left).
        let half = (LEASE.as_millis() / 2) as i64;
        if (self.cursor.node != node || self.cursor.until - now < half)
            && !self.record(service, self.cursor.after)?
        {
            return Ok(Round::default());
        }
        let mut round = Round {
            more: waiting.len() == BATCH,
            ..Round::default()
        };
        let mut delivered = self.cursor.after;
        // A delivery must end before the lease does (another node may take
        // over then): none starts with less than a call's timeout left.
        let last_start = self.cursor.until - crate::OUTBOUND_TIMEOUT.as_millis() as i64;
        for (seq, notice) in &waiting {
            if service.platform.now() >= last_start {
                round.more = true;
                break;
            }
            match self.deliver(*seq, &notice_json(*seq, notice), now_seconds()) {
                Ok(()) => {
                    delivered = *seq;
                    round.delivered += 1;
                }
                Err(why) => {
                    round.failed = Some(why);
                    round.more = false;
                    break;
                }
            }
        }
        if delivered > self.cursor.after {
            // Lost only to a node that took over an expired lease: it sends
            // these again, and the event ids tell the receiver.
            self.record(service, delivered)?;
        }
        Ok(round)
    }

    /// POST one notice; `Err` says why it was not delivered.
    fn deliver(&self, seq: u64, body: &str, unix_seconds: i64) -> Result<(), String> {
        let id = event_id(seq);
        let signed = signature(&self.hook.secret, unix_seconds, body);
        let reply = self.client.post_json(
            &self.hook.endpoint,
            &[(EVENT_ID_HEADER, &id), (SIGNATURE_HEADER, &signed)],
            body,
        )?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(format!("{} answered {}", self.hook.endpoint, reply.status))
        }
    }
}

/// The event id of the notice numbered `seq`.
pub fn event_id(seq: u64) -> String {
    format!("ntc_{seq}")
}

/// The body a notice is sent as.
fn notice_json(seq: u64, notice: &recharge_host::Notification) -> String {
    json!({
        "id": event_id(seq),
        "sequence": seq,
        "notice": notification_out(notice),
    })
    .to_string()
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// Deliver notices until `stop` turns true: every [`crate::TICK`] while all
/// goes well, at once while a backlog lasts, after a doubling back-off when
/// an attempt fails.
pub async fn run(service: Arc<Service>, hook: NoticeWebhook, mut stop: watch::Receiver<bool>) {
    let mut deliverer = Some(Deliverer::new(hook));
    let mut wait = crate::TICK;
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        let Some(mut working) = deliverer.take() else {
            break;
        };
        let worker = Arc::clone(&service);
        let done = tokio::task::spawn_blocking(move || {
            let round = working.round(&worker);
            (working, round)
        })
        .await;
        let round = match done {
            Ok((working, round)) => {
                deliverer = Some(working);
                round.map_err(|err| err.to_string())
            }
            Err(err) => {
                tracing::error!("notice delivery stopped: {err}");
                break;
            }
        };
        match round {
            Ok(round) => {
                service
                    .metrics
                    .webhook(round.delivered, round.failed.is_some());
                if let Some(why) = round.failed {
                    tracing::warn!(
                        "notice webhook: {why}; trying again in {} s",
                        backoff.as_secs()
                    );
                    wait = backoff;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                } else {
                    backoff = FIRST_BACKOFF;
                    wait = if round.more {
                        Duration::ZERO
                    } else {
                        crate::TICK
                    };
                }
            }
            // The store failed: nothing was recorded, the round runs again.
            Err(err) => {
                tracing::warn!("notice webhook: {err}");
                wait = backoff;
                backoff = (backoff * 2).min(MOST_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_body() {
        // The expected value computed apart, by Python's hmac module:
        // hmac.new(b"secret", b'1700000000.{"id":"ntc_1"}', sha256).
        let body = "{\"id\":\"ntc_1\"}";
        assert_eq!(
            signature("secret", 1_700_000_000, body),
            "t=1700000000,v1=9bd55f94663b0893ad37855d3819c18987fa25b76194ec7430b190a62ad865c6"
        );
        let signed = signature("secret", 1_700_000_000, body);
        assert_ne!(signed, signature("other", 1_700_000_000, body));
        assert_ne!(signed, signature("secret", 1_700_000_001, body));
        assert_ne!(signed, signature("secret", 1_700_000_000, "{}"));
    }
}
