//! Ferry: a Go module proxy. The library holds the whole service; the `ferry` binary only parses its
//! arguments, binds the listener and waits for a signal.

mod action;
mod answer;
mod body;
pub mod config;
mod connection;
mod layers;
mod request;
mod server;
mod service;
mod upstream;

pub use config::{Config, ConfigError};
pub use server::{ServerSettings, run};
pub use service::{NoUpstream, Proxy};

use service::policy_fetches;
pub use upstream::{BackgroundSettings, Upstream};

use std::sync::Arc;

/// Why Ferry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage {url} is not usable: {source}")]
    Storage {
        url: String,
        source: ferry_storage::StorageError,
    },
    #[error("the download policy fetches from the upstream, but {0}")]
    Fetcher(ferry_fetcher::FetchError),
}

/// Opens and checks the store, checks the `go` command when the policy can fetch, and builds the proxy.
pub async fn build_proxy(config: &Config) -> Result<Arc<Proxy>, StartError> {
    let url = config.storage.to_string();
    let store = config
        .storage
        .open()
        .map_err(|source| StartError::Storage {
            url: url.clone(),
            source,
        })?;
    store
        .check()
        .await
        .map_err(|source| StartError::Storage { url, source })?;
    let policy = config.policy.clone();
    let upstream = if policy_fetches(&policy) {
        let fetcher = ferry_fetcher::Fetcher::new(config.fetcher.clone())
            .await
            .map_err(StartError::Fetcher)?;
        let work_dir = config.fetcher.work_dir.display().to_string();
        tracing::info!(go = fetcher.go_version(), %work_dir, "fetching with the go command");
        Some(Upstream::start(
            fetcher,
            store.clone(),
            config.background.clone(),
        ))
    } else {
        None
    };
    Ok(Arc::new(Proxy::with_upstream(store, upstream, policy)))
}
