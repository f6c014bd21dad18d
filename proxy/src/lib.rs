//! Ferry: a Go module proxy. The library holds the whole service; the `ferry` binary only parses its
//! arguments, binds the listener and waits for a signal.

pub mod access;
mod action;
pub mod admin;
pub mod airgap;
mod answer;
pub mod audit;
mod body;
mod cache;
pub mod check_store;
mod clock;
pub mod config;
pub mod config_report;
mod connection;
pub mod coordination;
mod fair_use;
mod fill_watch;
mod filler;
pub mod healthcheck;
mod layers;
pub mod ledger;
mod listed;
pub mod metered_store;
pub mod metrics;
mod prefetch;
mod process_metrics;
mod refusal;
mod report;
mod request;
pub mod self_upstream;
mod server;
mod service;
mod status;
pub mod sumdb;
mod tls;
pub mod traces;
mod version_gate;
pub mod vuln;

pub use cache::CacheSettings;
pub use clock::Clock;
pub use config::{Config, ConfigError};
pub use layers::auth::oidc::{IssuerSettings, Oidc};
pub use layers::auth::tokens::{self, TokenFileError, Tokens};
pub use layers::auth::{Auth, AuthFileError, AuthLayer, Credential, Gate, Identity};
pub use layers::client::{Cidr, Client, TrustedProxies};
pub use prefetch::PrefetchSettings;
pub use request::PathPrefix;
pub use server::{ServerSettings, run, run_metrics};
pub use service::{NoUpstream, Proxy};
pub use tls::{Tls, TlsError};

pub use filler::{FillSettings, Filler};

use std::sync::Arc;

/// Why Ferry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store's own message says what failed and what to do; its source chain is not followed,
    /// since that message already carries the backend's words (printed once).
    #[error("storage {url} is not usable: {}", storage_reason(.error))]
    Storage {
        url: String,
        error: ferry_storage::StorageError,
    },
    #[error("the download policy fetches from the upstream, but {0}")]
    Fetcher(ferry_fetcher::FetchError),
    #[error("{0}")]
    WorkDir(ferry_fetcher::FetchError),
    #[error("coordination {engine} is not usable: {message}")]
    Coordination { engine: String, message: String },
    #[error("audit_log {target}: cannot write the audit trail: {source}")]
    Audit {
        target: String,
        source: std::io::Error,
    },
}

/// A store's failure without the `storage unavailable:` words the start-up message already says.
fn storage_reason(error: &ferry_storage::StorageError) -> String {
    match error {
        ferry_storage::StorageError::Unavailable(failure) => failure.to_string(),
        other => other.to_string(),
    }
}

/// The store as the proxy uses it: the backend `store` opened from `config` under the proxy's layers, in
/// the one place they are put in order. Each layer wraps the core `ModuleStore` only (the conveniences of
/// `ModuleStoreExt` come with it); the fill's lease fence is no layer, but an argument of its save.
fn store_stack(
    config: &ferry_storage::StorageConfig,
    store: Arc<dyn ferry_storage::ModuleStore>,
    ledger: &Arc<ledger::Ledger>,
) -> Arc<dyn ferry_storage::ModuleStore> {
    // Every call of the proxy, its fills and its coordination to the store is counted and timed.
    let store = Arc::new(metered_store::MeteredStore::new(
        store,
        config.metric_label(),
    ));
    // A bucket answers each stored list with a LIST request: kept for a moment (see `listed`).
    let store: Arc<dyn ferry_storage::ModuleStore> =
        if matches!(config, ferry_storage::StorageConfig::Cloud(_)) {
            Arc::new(listed::RecentLists::new(store))
        } else {
            store
        };
    // Every write, whoever makes it (a fill, a delete, a collection), is told to the ledger.
    Arc::new(ledger::Recorded::new(store, ledger.clone()))
}

/// The store's ledger, loaded before the first request: a block is honoured from the start. A store
/// without one (filled before it existed, or by hand) is indexed from a walk of its files by the ledger's
/// own task once serving (`Ledger::run`), the catalog and index answering 503 meanwhile.
async fn load_ledger(url: &str, ledger: &Arc<ledger::Ledger>) -> Result<(), StartError> {
    ledger.load().await.map_err(|error| StartError::Storage {
        url: url.to_string(),
        error,
    })?;
    Ok(())
}

/// Opens and checks the store, checks the `go` command when the policy can fetch, and builds the proxy.
pub async fn build_proxy(config: &Config) -> Result<Arc<Proxy>, StartError> {
    build_proxy_with(config, Clock::system()).await
}

/// [`build_proxy`], with version ages judged by `clock` (tests move it instead of sleeping).
pub async fn build_proxy_with(config: &Config, clock: Clock) -> Result<Arc<Proxy>, StartError> {
    let url = config.storage.to_string();
    let store = config
        .storage
        .open_with(config.cache.zips)
        .map_err(|error| StartError::Storage {
            url: url.clone(),
            error,
        })?;
    let ledger = Arc::new(ledger::Ledger::new(store.records(), config.ledger));
    let store = store_stack(&config.storage, store, &ledger);
    store.check().await.map_err(|error| StartError::Storage {
        url: url.clone(),
        error,
    })?;
    load_ledger(&url, &ledger).await?;
    let policy = config.policy.clone();
    // A policy that fills the store needs a store that takes writes: a read-only or full one would answer
    // ready and fail every miss.
    if policy.fetches() {
        store
            .check_writable()
            .await
            .map_err(|error| StartError::Storage { url, error })?;
    }
    // The work dir is locked (one Ferry per work dir) and swept of what a killed run left whatever the
    // policy, so a policy that fetches later, or another Ferry pointed at the same directory, finds it so.
    let work_dir = ferry_fetcher::WorkDir::lock(&config.fetcher.work_dir)
        .await
        .map_err(StartError::WorkDir)?;
    let (upstream, unused_work_dir, routes) = if policy.fetches() {
        let fetcher = ferry_fetcher::Fetcher::with_work_dir(config.fetcher.clone(), work_dir)
            .await
            .map_err(StartError::Fetcher)?;
        let work_dir = config.fetcher.work_dir.display().to_string();
        tracing::info!(go = fetcher.go_version(), %work_dir, "fills ready: the go command and its work dir");
        let coordination = config
            .coordination
            .open(&config.storage, store.clone(), config.fetcher.timeout)
            .await
            .map_err(|message| StartError::Coordination {
                engine: config.coordination.engine.to_string(),
                message,
            })?;
        tracing::info!(coordination = %config.coordination.engine, lease_time = ?config.coordination.lease_time, "fills coordinated");
        // The relay reaches each checksum database by the route the fills take; what either proves is kept
        // in the store (given before any fill can verify anything).
        let routes = fetcher.sumdb_routes();
        routes.keep_in(sumdb::kept::KeptRecords::of(&store));
        let upstream =
            Filler::start_coordinated(fetcher, store.clone(), config.fills.clone(), coordination);
        (Some(upstream), None, routes)
    } else {
        let routes = sumdb::routes_without_go(&config.fetcher);
        routes.keep_in(sumdb::kept::KeptRecords::of(&store));
        (None, Some(work_dir), routes)
    };
    sumdb::warn_about_toolchains(config);
    // The vulnerability database's copy lives in the store's records; its source is read over HTTP(S).
    let vuln = vuln::VulnDb::new(
        config.vuln.clone(),
        Some(store.records()),
        Some(ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT)),
    );
    // A copy already in the store is served from the first request (a restart, another replica's sync).
    if let Err(error) = vuln.reload().await {
        tracing::warn!(%error, "the vulnerability database copy could not be read from the store");
    }
    let audit = match &config.audit_log {
        None => audit::Audit::off(),
        Some(target) => audit::Audit::start(target).map_err(|source| StartError::Audit {
            target: target.to_string(),
            source,
        })?,
    };
    let mut proxy = Proxy::with_ledger(store, ledger, upstream, policy)
        .with_cache(&config.cache)
        .with_sumdbs(sumdb::SumDbs::new(&config.sumdb, routes))
        .with_clock(clock)
        .with_prefetch(config.prefetch.clone())
        .with_access(config.access.clone(), audit)
        .with_vuln(vuln)
        .with_pages(Arc::new(status::StatusPages {
            summary: status::summary::of(config),
        }));
    // The proxy holds the lock for its life when no fetcher does: it goes when it is dropped.
    proxy.work_dir = unused_work_dir;
    Ok(Arc::new(proxy))
}
