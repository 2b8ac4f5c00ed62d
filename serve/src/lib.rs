//! The recharge host as an HTTP service (`recharge serve`, SPEC.md §8): the
//! commands of scenario scripts as a JSON API, for platforms in any language.
//!
//! - [`Service`] holds a [`Platform`] on a database, the simulated card network
//!   kept in the same database, and the accepted [`ApiKeys`];
//! - [`router`] is the API: a route per script command taking the script's
//!   JSON fields (read by the script parser itself), answering what the command
//!   did, errors as `application/problem+json` ([`Problem`]);
//! - every POST and PUT may carry an `Idempotency-Key`: the first response
//!   is kept in the store and replayed to a retry (see [`IDEMPOTENCY_WINDOW`]);
//! - background workers fire due timers and run the outbox on the system
//!   clock, and deliver notices to the platform's webhook, signed
//!   ([`webhooks`]);
//! - charges go to the simulated card network kept in the database, or to
//!   the platform's own payment stack ([`WebhookGateway`]), whose later word
//!   comes in through `POST /v1/payment-outcomes`;
//! - [`run`] puts it together: opens the database, listens, serves until
//!   SIGTERM or SIGINT, then stops taking connections and finishes the
//!   requests in flight.
//!
//! The platform is synchronous (wasmtime, rusqlite, the PostgreSQL client):
//! every request runs it on tokio's blocking pool.
//!
//! ```no_run
//! use recharge_serve::{GatewayChoice, Options, run};
//!
//! let options = Options {
//!     database: "sqlite:recharge.db".parse().unwrap(),
//!     listen: "127.0.0.1:8080".into(),
//!     api_key: std::env::var("RECHARGE_API_KEY").ok(),
//!     platform: recharge_host::Platform::builder(),
//!     gateway: GatewayChoice::Simulated,
//!     notify: None,
//! };
//! run(options, |address| println!("listening on {address}")).unwrap();
//! ```

#![deny(missing_docs)]

mod answer;
mod gateway;
mod idempotency;
mod keys;
mod metrics;
mod outbound;
mod outcome;
mod problem;
mod request;
mod routes;
mod service;
pub mod webhooks;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use recharge_host::{Database, HostError, Platform, PlatformBuilder, SimulatedGateway, StoreError};
use thiserror::Error;
use tokio::sync::watch;

use self::webhooks::NoticeWebhook;

pub use self::gateway::{WebhookGateway, charge_json};
pub use self::idempotency::{
    IDEMPOTENCY_KEY, IDEMPOTENCY_WINDOW, IDEMPOTENT_REPLAYED, MAX_IDEMPOTENCY_KEY,
};
pub use self::keys::{API_KEYS_STREAM, ApiKeys, KeyError, mint_key};
pub use self::metrics::{METRICS_CONTENT_TYPE, Metrics};
pub use self::outbound::{BadEndpoint, Endpoint, OUTBOUND_TIMEOUT};
pub use self::outcome::OUTCOMES;
pub use self::problem::Problem;
pub use self::routes::{
    DEFAULT_PAGE, MAX_JSON_BODY, MAX_PAGE, MAX_USAGE_RECORDS, OPENAPI, REQUEST_TIMEOUT, router,
    routes,
};
pub use self::service::{Answer, Service};
pub use self::workers::{RETENTION_EVERY, TICK};

/// How to run the service.
pub struct Options {
    /// The database (`sqlite:PATH` or `postgres://...`).
    pub database: Database,
    /// The address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// A key accepted beside the stored ones (`RECHARGE_API_KEY`).
    pub api_key: Option<String>,
    /// The platform to build on the database (cache, limits, node name); its
    /// store and gateway are set by the service.
    pub platform: PlatformBuilder,
    /// Where charges go.
    pub gateway: GatewayChoice,
    /// Where notices go, if anywhere.
    pub notify: Option<NoticeWebhook>,
}

/// Where the service sends charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayChoice {
    /// The simulated card network, kept in the database (for trials).
    Simulated,
    /// The platform's own payment stack at this URL ([`WebhookGateway`]).
    Webhook(Endpoint),
}

/// Why the service could not start or stopped.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The database could not be opened or read.
    #[error("cannot open {database}: {source}")]
    Store {
        /// The database, its password hidden.
        database: String,
        /// Why.
        source: StoreError,
    },
    /// The platform could not be built (the engine, the default policy).
    #[error("cannot start the platform: {0}")]
    Platform(#[from] HostError),
    /// The address could not be listened on.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime or the server failed.
    #[error("the server failed: {0}")]
    Server(std::io::Error),
}

impl Service {
    /// Open the service on `database`: the platform built by `platform` on it,
    /// charging through `gateway` (the simulated one kept in the database, or
    /// the platform's), and the keys it stores beside `api_key`.
    pub fn open(
        database: &Database,
        platform: PlatformBuilder,
        api_key: Option<&str>,
        gateway: &GatewayChoice,
    ) -> Result<Service, ServeError> {
        let failed = |source| ServeError::Store {
            database: database.to_string(),
            source,
        };
        let store = database.open().map_err(failed)?;
        let (simulated, gateway): (_, Arc<dyn recharge_host::Gateway>) = match gateway {
            GatewayChoice::Simulated => {
                let simulated =
                    Arc::new(SimulatedGateway::in_store(Arc::clone(&store)).map_err(failed)?);
                (Some(Arc::clone(&simulated)), simulated)
            }
            GatewayChoice::Webhook(endpoint) => {
                (None, Arc::new(WebhookGateway::new(endpoint.clone())))
            }
        };
        let keys = ApiKeys::new(Arc::clone(&store), api_key).map_err(failed)?;
        let platform: Platform = platform
            .store(Arc::clone(&store))
            .gateway(gateway)
            .build()?;
        let mut nonce = [0u8; 4];
        // Only tells two runs started in one millisecond apart.
        let _ = getrandom::fill(&mut nonce);
        let incarnation = format!(
            "{}@{}.{:08x}",
            platform.node(),
            platform.now(),
            u32::from_le_bytes(nonce)
        );
        Ok(Service {
            incarnation,
            platform,
            store,
            gateway: simulated,
            keys,
            metrics: Metrics::default(),
        })
    }
}

/// Serve until SIGTERM or SIGINT: `listening` is told the bound address once
/// the service takes connections. On the signal it stops accepting, finishes
/// the requests in flight and the background work under way, and returns.
pub fn run(options: Options, listening: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let service = Arc::new(Service::open(
        &options.database,
        options.platform,
        options.api_key.as_deref().filter(|key| !key.is_empty()),
        &options.gateway,
    )?);
    if !service.keys.any() {
        tracing::warn!(
            "no API key is accepted yet: set RECHARGE_API_KEY or run `recharge api-key create`"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Server)?;
    let serving = Arc::clone(&service);
    let served = runtime.block_on(async move {
        let service = serving;
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .map_err(|source| ServeError::Listen {
                address: options.listen.clone(),
                source,
            })?;
        let address = listener.local_addr().map_err(ServeError::Server)?;
        tracing::info!("listening on {address}, database {}", options.database);
        listening(address);
        let (stop, stopped) = watch::channel(false);
        let notices = options
            .notify
            .map(|hook| tokio::spawn(webhooks::run(Arc::clone(&service), hook, stopped.clone())));
        let workers = tokio::spawn(workers::run(Arc::clone(&service), stopped));
        let served = axum::serve(listener, router(service))
            .with_graceful_shutdown(shutdown_signal())
            .await;
        let _ = stop.send(true);
        if let Err(err) = workers.await {
            tracing::error!("the background workers stopped: {err}");
        }
        if let Some(notices) = notices
            && let Err(err) = notices.await
        {
            tracing::error!("notice delivery stopped: {err}");
        }
        served.map_err(ServeError::Server)
    });
    // The runtime first, then the service: a PostgreSQL client runs a runtime
    // of its own, which must not be dropped inside this one.
    drop(runtime);
    drop(service);
    tracing::info!("stopped");
    served
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM ({err}): only SIGINT stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: no new connections, finishing the requests in flight");
}
