//! Checksum-database data for bundles: which database and key, where its records are kept in the store,
//! and a [`Transport`] over the store's records that asks the database (by Ferry's route to it) for what
//! the store lacks, remembering every answer it gave.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferry_fetcher::SumdbRoutes;
use ferry_storage::Records;
use ferry_sumdb::{Transport, TransportError, VerifierKey};
use http_body_util::{BodyExt, Empty, Limited};

use super::AirgapError;
use crate::Config;

/// The most a lookup answer or a tile may hold (a tile of height 8 is 8 KiB; a data tile tens of KiB).
const MAX_ANSWER: usize = 1 << 20;
/// The most one request to the database may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The record key of `path` (`lookup/…`, `tile/…`, `latest`) of database `name`.
pub(crate) fn record_key(name: &str, path: &str) -> String {
    format!("sumdb/{name}/{path}")
}

/// The database a bundle's versions are checked against: the one named, else the one Ferry's go command
/// uses (`GOSUMDB`), else `sum.golang.org`.
pub(crate) fn database_name(config: &Config, given: Option<&str>) -> String {
    if let Some(name) = given {
        return name.to_string();
    }
    let gosumdb = config.fetcher.go_variable("GOSUMDB").unwrap_or("");
    match gosumdb.split_whitespace().next() {
        Some(first) if first != "off" => first.split('+').next().unwrap_or(first).to_string(),
        _ => crate::sumdb::DEFAULT_SUMDB.to_string(),
    }
}

/// The public key of database `name`: one given as `GOSUMDB` is written (`NAME+HASH+KEY`), else Ferry's
/// `GOSUMDB` when it names this database with its key, else the go command's built-in `sum.golang.org` key.
pub(crate) fn trusted_key(
    config: &Config,
    name: &str,
    given: &[String],
) -> Result<VerifierKey, AirgapError> {
    let gosumdb = config.fetcher.go_variable("GOSUMDB").unwrap_or("");
    let candidates = given
        .iter()
        .map(String::as_str)
        .chain(gosumdb.split_whitespace().next())
        .chain(Some(ferry_sumdb::SUM_GOLANG_ORG_KEY));
    for text in candidates {
        let text = text.split_whitespace().next().unwrap_or("");
        if !text.contains('+') {
            continue;
        }
        match VerifierKey::parse(text) {
            Ok(key) if key.name() == name => return Ok(key),
            Ok(_) => {}
            Err(e) => {
                return Err(AirgapError::new(format!(
                    "checksum database key {text:?}: {e}"
                )));
            }
        }
    }
    Err(AirgapError::new(format!(
        "no public key for checksum database {name}: give it as GOSUMDB is written, with --sumdb-key {name}+HASH+KEY (or GOSUMDB in Ferry's configuration)"
    )))
}

/// Ferry's routes to the databases its configuration names (the relay's `sumdbs`, its go's `GOSUMDB`).
pub(crate) fn routes(config: &Config) -> Arc<SumdbRoutes> {
    let routes = crate::sumdb::routes_without_go(&config.fetcher);
    // Registers each configured database (and its URL, when `sumdbs` gives one) with the routes.
    drop(crate::sumdb::SumDbs::new(&config.sumdb, routes.clone()));
    routes
}

/// The store's records of one database, and the database itself (by Ferry's route) for what they lack:
/// every answer given is remembered, for the bundle.
pub(crate) struct StoredOrFetched {
    pub name: String,
    pub records: Records,
    pub routes: Option<Arc<SumdbRoutes>>,
    pub client: ferry_fetcher::HttpsClient,
    /// Lookups answered from elsewhere than here (the bundle's, re-noted), by path.
    pub lookups: Mutex<BTreeMap<String, Bytes>>,
    /// Every tile given, by path.
    pub given: Mutex<BTreeMap<String, Bytes>>,
    /// What the database answered (the store lacked it), by path: kept in the store once proven.
    pub fetched: Mutex<BTreeMap<String, Bytes>>,
}

impl StoredOrFetched {
    /// A path's answer from the store's records: as stored, or (for a partial tile) cut from a wider one.
    async fn stored(&self, path: &str) -> Result<Option<Bytes>, TransportError> {
        let failed = |e: ferry_storage::StorageError| TransportError::Failed(e.to_string());
        if let Some(found) = self
            .records
            .get(&record_key(&self.name, path))
            .await
            .map_err(failed)?
        {
            return Ok(Some(found));
        }
        let Some((full, width)) = path.split_once(".p/") else {
            return Ok(None);
        };
        let Ok(width) = width.parse::<usize>() else {
            return Ok(None);
        };
        // A tile's first W hashes never change as the tree grows: a full tile serves its partial prefixes.
        let full = self.records.get(&record_key(&self.name, full)).await;
        Ok(full
            .map_err(failed)?
            .filter(|tile| tile.len() >= width * 32)
            .map(|tile| tile.slice(..width * 32)))
    }

    /// A path's answer from the database, by Ferry's route to it.
    async fn fetched(&self, path: &str) -> Result<Bytes, TransportError> {
        let Some(routes) = &self.routes else {
            return Err(TransportError::Failed(format!(
                "{path} is not in the store, and the database is not asked"
            )));
        };
        let route = routes
            .route(&self.name)
            .await
            .map_err(TransportError::Failed)?;
        let url = format!("{}/{path}", route.target.base);
        let mut request = http::Request::get(&url)
            .body(Empty::<Bytes>::new())
            .map_err(|e| TransportError::Failed(format!("GET {url}: {e}")))?;
        if let Some(authorization) = &route.target.authorization {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
        }
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                TransportError::Failed(format!("GET {url}: no answer within {TIMEOUT:?}"))
            })?
            .map_err(|e| TransportError::Failed(format!("GET {url}: {e}")))?;
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Err(TransportError::NotFound),
            status => return Err(TransportError::Failed(format!("GET {url}: {status}"))),
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER).collect();
        let body = tokio::time::timeout(TIMEOUT, body)
            .await
            .map_err(|_| {
                TransportError::Failed(format!(
                    "GET {url}: the answer did not end within {TIMEOUT:?}"
                ))
            })?
            .map_err(|e| TransportError::Failed(format!("GET {url}: {e}")))?;
        Ok(body.to_bytes())
    }
}

#[async_trait::async_trait]
impl Transport for StoredOrFetched {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError> {
        if let Some(lookup) = self.lookups.lock().unwrap().get(path) {
            return Ok(lookup.clone());
        }
        let answer = match self.stored(path).await? {
            Some(stored) => stored,
            None => {
                let fetched = self.fetched(path).await?;
                let mut kept = self.fetched.lock().unwrap();
                kept.insert(path.to_string(), fetched.clone());
                fetched
            }
        };
        if path.starts_with("tile/") {
            self.given
                .lock()
                .unwrap()
                .insert(path.to_string(), answer.clone());
        }
        Ok(answer)
    }
}

/// A bundle's checksum-database entries as a [`Transport`]: nothing else is asked; every lookup and tile given is
/// remembered (those, once proven, are stored).
pub(crate) struct InBundle {
    pub entries: BTreeMap<String, Bytes>,
    pub used: Mutex<BTreeMap<String, Bytes>>,
}

#[async_trait::async_trait]
impl Transport for InBundle {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError> {
        let found = self
            .entries
            .get(path)
            .cloned()
            .ok_or(TransportError::NotFound)?;
        self.used
            .lock()
            .unwrap()
            .insert(path.to_string(), found.clone());
        Ok(found)
    }
}
