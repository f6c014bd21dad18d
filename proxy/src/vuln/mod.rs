//! The Go vulnerability database under `/vuln/` (issue 24, item 6): a copy synced from a source
//! (`vuln.url`, the public database by default) or imported from its `vulndb.zip`, kept in the store's
//! records (`store`) so that every replica on the store serves the same copy and a restart serves at once,
//! and answered as `govulncheck -db URL` reads it (`path`). See `docs/upstream.md`, "Vulnerability database".
//!
//! Until a copy is published `/vuln/` answers 503 with the reason; a failed sync keeps the last copy and is
//! reported in `/readyz` (without making Ferry unready) and in the metrics.

mod affected;
pub mod cli;
mod database;
mod import;
pub mod path;
mod serve;
mod store;
mod sync;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use ferry_fetcher::VulnSource;
use ferry_storage::{Records, StorageError};

pub use database::Database;
pub use import::read_zip;
use path::Index;
pub use path::VulnPath;
use store::{Manifest, VulnStore};

/// The public Go vulnerability database: `vuln.url`'s default.
pub const DEFAULT_URL: &str = "https://vuln.go.dev";

/// The settings of the copy (`vuln.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnSettings {
    /// Serve `/vuln/` (off: 404, and nothing is synced).
    pub enabled: bool,
    /// Where to sync from; `None`: imports only.
    pub url: Option<String>,
    /// How often `db.json` is read for a change.
    pub every: Duration,
    /// Refuse (403) the zip of a version an advisory affects when a fixed version exists.
    pub refuse_affected: bool,
}

impl Default for VulnSettings {
    fn default() -> VulnSettings {
        VulnSettings {
            enabled: true,
            url: Some(DEFAULT_URL.to_string()),
            every: Duration::from_secs(3600),
            refuse_affected: false,
        }
    }
}

/// Why a sync or an import did not publish. Its text is safe for clients: it names the file, never the
/// source's URL or the store's paths.
#[derive(Debug, thiserror::Error)]
pub enum VulnError {
    #[error("{0}")]
    Source(#[from] ferry_fetcher::VulnSourceError),
    /// The database read is not a complete, valid one.
    #[error("{0}")]
    Invalid(String),
    #[error("the store is unavailable")]
    Storage(#[from] StorageError),
    #[error("no source is set (vuln.url = \"none\"); import a vulndb.zip with ferry vuln import")]
    NoSource,
    #[error("the vulnerability database is off (vuln.enabled = false)")]
    Off,
}

impl VulnError {
    /// What the operator's log says: the detail behind the class.
    pub fn detail(&self) -> String {
        match self {
            VulnError::Source(e) => e.detail(),
            VulnError::Storage(e) => format!("the store is unavailable: {e}"),
            other => other.to_string(),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// `db.json`'s `modified` is the published copy's.
    Unchanged { modified: String },
    /// A new copy is published: its `modified`, its entries, and how many were read now.
    Published {
        modified: String,
        entries: usize,
        read: usize,
    },
}

/// The published copy a replica serves: its manifest, and the indexes in memory (read on every
/// `govulncheck` run).
#[derive(Debug)]
struct Loaded {
    generation: u64,
    manifest: Manifest,
    /// `modified` as a time, for `Last-Modified` (never compared with the clock).
    modified: Option<SystemTime>,
    indexes: BTreeMap<Index, Served>,
    /// For `vuln.refuse_affected`: each module of `modules.json` with the advisories that have a fix.
    fixable: std::collections::HashMap<String, Vec<String>>,
}

/// A file kept in memory, plain and gzipped.
#[derive(Debug)]
struct Served {
    json: Bytes,
    gz: Bytes,
    blob: String,
}

/// How the syncs went, for the 503 before the first copy and for `/readyz`.
#[derive(Debug, Default)]
struct Status {
    /// The last sync's failure, with when it happened; cleared by a sync that succeeds.
    failed: Option<(SystemTime, String)>,
}

/// The vulnerability database of a proxy.
#[derive(Debug)]
pub struct VulnDb {
    settings: VulnSettings,
    /// `None` when off.
    store: Option<VulnStore>,
    source: Option<VulnSource>,
    loaded: ArcSwapOption<Loaded>,
    status: Mutex<Status>,
    /// This replica, in the claims it writes.
    who: String,
    /// For `vuln.refuse_affected`: the fixed ranges of the entries read so far, by blob (never changes).
    ranges: Mutex<std::collections::HashMap<String, Arc<Vec<affected::FixedRange>>>>,
}

/// An advisory that affects a version, and the version that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    pub id: String,
    pub fixed: String,
}

impl VulnDb {
    /// Off: `/vuln/` answers 404.
    pub fn off() -> VulnDb {
        VulnDb::new(
            VulnSettings {
                enabled: false,
                ..VulnSettings::default()
            },
            None,
            None,
        )
    }

    /// The database of `settings` kept in `records`, synced through `client` from `settings.url`.
    pub fn new(
        settings: VulnSettings,
        records: Option<Records>,
        client: Option<ferry_fetcher::HttpsClient>,
    ) -> VulnDb {
        let enabled = settings.enabled;
        let source = match (&settings.url, client) {
            (Some(url), Some(client)) if enabled => Some(VulnSource::new(url, client)),
            _ => None,
        };
        let who = format!("{}-{}", std::process::id(), ferry_fetcher::loop_token());
        VulnDb {
            store: records.filter(|_| enabled).map(VulnStore::new),
            settings,
            source,
            loaded: ArcSwapOption::empty(),
            status: Mutex::new(Status::default()),
            who,
            ranges: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &VulnSettings {
        &self.settings
    }

    /// Reads the newest published copy from the store when it is not the one served: `true` when it
    /// changed.
    pub async fn reload(&self) -> Result<bool, StorageError> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let known = self.loaded.load().as_ref().map(|l| l.generation);
        let Some((generation, manifest)) = store.current(known).await? else {
            return Ok(false);
        };
        let mut indexes = BTreeMap::new();
        for index in Index::ALL {
            let blob = manifest
                .indexes
                .get(index.name())
                .cloned()
                .unwrap_or_default();
            let (Some(json), Some(gz)) = (
                store.blob(&blob, false).await?,
                store.blob(&blob, true).await?,
            ) else {
                return Err(StorageError::NotFound(format!("vuln/blobs/{blob}")));
            };
            indexes.insert(index, Served { json, gz, blob });
        }
        let modified = humantime::parse_rfc3339_weak(&manifest.modified).ok();
        if let Some(at) = modified {
            let seconds = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::metrics::metrics()
                .vuln_modified
                .set(i64::try_from(seconds).unwrap_or(i64::MAX));
        }
        crate::metrics::metrics()
            .vuln_entries
            .set(i64::try_from(manifest.entries.len()).unwrap_or(i64::MAX));
        tracing::info!(generation, modified = %manifest.modified, entries = manifest.entries.len(), "vulnerability database copy loaded");
        let fixable = fixable(&indexes[&Index::Modules].json);
        self.loaded.store(Some(Arc::new(Loaded {
            generation,
            manifest,
            modified,
            indexes,
            fixable,
        })));
        Ok(true)
    }

    /// With `vuln.refuse_affected`, the first advisory of the copy that affects `module@version` and has a
    /// fix. `None` when the rule is off, no copy is loaded, or an entry cannot be read (logged): the rule
    /// refuses only what the copy proves affected.
    pub async fn affected(&self, module: &str, version: &str) -> Option<Affected> {
        if !self.settings.refuse_affected {
            return None;
        }
        let loaded = self.loaded.load_full()?;
        let store = self.store.as_ref()?;
        for id in loaded.fixable.get(module)? {
            let blob = &loaded.manifest.entries.get(id)?.blob;
            let cached = self.ranges.lock().expect("not poisoned").get(blob).cloned();
            let ranges = match cached {
                Some(ranges) => ranges,
                None => {
                    let body = match store.blob(blob, false).await {
                        Ok(Some(body)) => body,
                        other => {
                            tracing::warn!(%id, ?other, "an advisory could not be read for vuln.refuse_affected");
                            continue;
                        }
                    };
                    let ranges = Arc::new(affected::fixed_ranges(&body, module));
                    let mut cache = self.ranges.lock().expect("not poisoned");
                    // Bounded: the entries of modules asked for; a copy's worth at most.
                    if cache.len() > 100_000 {
                        cache.clear();
                    }
                    cache.insert(blob.clone(), ranges.clone());
                    ranges
                }
            };
            if let Some(fixed) = affected::fixed_for(&ranges, version) {
                let (id, fixed) = (id.clone(), fixed.to_string());
                return Some(Affected { id, fixed });
            }
        }
        None
    }

    /// What `/readyz` adds: the last sync's failure, while it stands (it never makes Ferry unready).
    pub fn readiness(&self) -> Option<String> {
        let status = self.status.lock().expect("not poisoned");
        let (at, reason) = status.failed.as_ref()?;
        let serving = match self.loaded.load().as_ref() {
            Some(loaded) => format!("serving the copy modified {}", loaded.manifest.modified),
            None => "no copy to serve yet".to_string(),
        };
        Some(format!(
            "vulnerability database: the last sync failed at {}: {reason}; {serving}",
            humantime::format_rfc3339_seconds(*at)
        ))
    }

    fn record(&self, result: &Result<Synced, VulnError>) {
        let label = match result {
            Ok(Synced::Unchanged { .. }) => "unchanged",
            Ok(Synced::Published { .. }) => "updated",
            Err(_) => "failed",
        };
        crate::metrics::metrics()
            .vuln_syncs
            .get_or_create(&crate::metrics::ResultLabels { result: label })
            .inc();
        let mut status = self.status.lock().expect("not poisoned");
        match result {
            Ok(_) => status.failed = None,
            Err(e) => status.failed = Some((SystemTime::now(), e.to_string())),
        }
    }
}

/// Each module of `modules.json` with the IDs of its advisories that name a fixed version.
fn fixable(modules: &[u8]) -> std::collections::HashMap<String, Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Module {
        path: String,
        #[serde(default)]
        vulns: Vec<Vuln>,
    }
    #[derive(serde::Deserialize)]
    struct Vuln {
        id: String,
        #[serde(default)]
        fixed: Option<String>,
    }
    let modules: Vec<Module> = serde_json::from_slice(modules).unwrap_or_default();
    modules
        .into_iter()
        .filter_map(|m| {
            let ids: Vec<String> = m
                .vulns
                .into_iter()
                .filter(|v| v.fixed.as_ref().is_some_and(|f| !f.is_empty()))
                .map(|v| v.id)
                .collect();
            (!ids.is_empty()).then_some((m.path, ids))
        })
        .collect()
}
