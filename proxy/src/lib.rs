//! Ferry: a Go module proxy. The library holds the whole service; the `ferry` binary only parses its
//! arguments, binds the listener and waits for a signal.

mod body;
pub mod config;
pub mod request;
mod server;
mod service;

pub use config::{Config, ConfigError};
pub use server::{ServerSettings, run};
pub use service::Proxy;

use std::sync::Arc;

/// Why Ferry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage {url}: {source}")]
    Storage {
        url: String,
        source: ferry_storage::StorageError,
    },
}

/// Opens and checks the store, then builds the proxy over it.
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
    Ok(Arc::new(Proxy::new(store)))
}
