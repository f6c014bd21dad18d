//! The synced copy in the store's records (`.ferry/vuln/`), shared by every replica on the store:
//!
//! - `vuln/blobs/<sha256>.json` and `.json.gz`: each file once, named by the hash of its JSON (an entry
//!   whose `modified` did not change is not written again);
//! - `vuln/generations/<N>.json`: a manifest naming the blob of each index and entry. Created create-only
//!   after every blob it names is written: the newest manifest is the published copy, so a reader never
//!   sees a half-synced one. The two newest are kept (a replica may still serve the previous one for a poll);
//!   older ones, and blobs neither names, are removed after a publish;
//! - `vuln/claims/<period>`: a create-only claim, one per sync period: one replica syncs at a time.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferry_storage::{Records, StorageError};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::database::{Body, Database};

const GENERATIONS: &str = "vuln/generations";
const BLOBS: &str = "vuln/blobs";
const CLAIMS: &str = "vuln/claims";
/// Blobs written this recently are never removed: a sync still running (from the CLI) may publish them.
const GRACE: Duration = Duration::from_secs(3600);
/// Blobs written at once.
const WRITES: usize = 16;

/// One published copy: what each path serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// `db.json`'s `modified`.
    pub modified: String,
    /// When it was published (for people reading the record).
    pub published: String,
    /// Each index's blob, by name (`db`, `modules`, `vulns`).
    pub indexes: BTreeMap<String, String>,
    pub entries: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestEntry {
    pub modified: String,
    pub blob: String,
}

/// The vulnerability database's records.
#[derive(Debug, Clone)]
pub struct VulnStore {
    records: Records,
}

fn blob_key(blob: &str, gz: bool) -> String {
    format!("{BLOBS}/{blob}.json{}", if gz { ".gz" } else { "" })
}

fn generation_key(generation: u64) -> String {
    format!("{GENERATIONS}/{generation:020}.json")
}

fn generation_of(key: &str) -> Option<u64> {
    key.strip_prefix(GENERATIONS)?
        .strip_prefix('/')?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// The gzip of `json`, as served for `.json.gz`.
pub fn gzip(json: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(json)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("gzip into memory does not fail")
}

/// The blob name of `json`: its SHA-256, hex.
pub fn blob_name(json: &[u8]) -> String {
    sha2::Sha256::digest(json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl VulnStore {
    pub fn new(records: Records) -> VulnStore {
        VulnStore { records }
    }

    /// The newest published copy: its generation and manifest; `None` when there is none, or when it is
    /// generation `known` (a poll reads the manifest only when it changed).
    pub async fn current(
        &self,
        known: Option<u64>,
    ) -> Result<Option<(u64, Manifest)>, StorageError> {
        let listed = self.records.list(GENERATIONS, None).await?;
        let Some((generation, key)) = listed
            .iter()
            .rev()
            .find_map(|r| Some((generation_of(&r.key)?, &r.key)))
        else {
            return Ok(None);
        };
        if known == Some(generation) {
            return Ok(None);
        }
        let Some(body) = self.records.get(key).await? else {
            return Ok(None);
        };
        let manifest = serde_json::from_slice(&body).map_err(|e| {
            StorageError::Unavailable(ferry_storage::Failure::new(
                format!("the vulnerability database's record {key} is not a manifest"),
                e,
            ))
        })?;
        Ok(Some((generation, manifest)))
    }

    /// A stored file (`gz`: its gzip), or `None` when it is gone.
    pub async fn blob(&self, blob: &str, gz: bool) -> Result<Option<Bytes>, StorageError> {
        self.records.get(&blob_key(blob, gz)).await
    }

    /// Takes the sync of `period` for this replica: `false` when another has it.
    pub async fn claim(&self, period: u64, who: &str) -> Result<bool, StorageError> {
        let key = format!("{CLAIMS}/{period:020}");
        self.records
            .create(&key, Bytes::from(who.to_string()))
            .await
    }

    /// Gives the claim of `period` back (its sync failed: another replica may try).
    pub async fn release(&self, period: u64) -> Result<(), StorageError> {
        self.records.delete(&format!("{CLAIMS}/{period:020}")).await
    }

    /// Writes every new file of `database`, then its manifest as the generation after `after`: the
    /// published copy from then on. Returns its generation and manifest.
    pub async fn publish(
        &self,
        database: Database,
        after: Option<u64>,
    ) -> Result<(u64, Manifest), StorageError> {
        let mut writes: Vec<(String, Bytes)> = Vec::new();
        let mut indexes = BTreeMap::new();
        for (index, json) in &database.indexes {
            let blob = blob_name(json);
            writes.push((blob.clone(), json.clone()));
            indexes.insert(index.name().to_string(), blob);
        }
        let mut entries = BTreeMap::new();
        for (id, entry) in database.entries {
            let blob = match entry.body {
                Body::Kept(blob) => blob,
                Body::New(json) => {
                    let blob = blob_name(&json);
                    writes.push((blob.clone(), json));
                    blob
                }
            };
            let modified = entry.modified;
            entries.insert(id, ManifestEntry { modified, blob });
        }
        futures::stream::iter(writes)
            .map(|(blob, json)| async move {
                self.records
                    .put(&blob_key(&blob, true), gzip(&json))
                    .await?;
                self.records.put(&blob_key(&blob, false), json).await
            })
            .buffer_unordered(WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        let manifest = Manifest {
            modified: database.modified,
            published: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            indexes,
            entries,
        };
        let body = Bytes::from(serde_json::to_vec_pretty(&manifest).expect("a manifest is JSON"));
        // Another writer may have taken the next number meanwhile: the next free one is this copy's.
        let mut generation = after.map_or(1, |g| g + 1);
        while !self
            .records
            .create(&generation_key(generation), body.clone())
            .await?
        {
            generation += 1;
        }
        Ok((generation, manifest))
    }

    /// Removes the generations before the two newest, the blobs neither names (unless written within
    /// [`GRACE`]), and the claims of periods before `period`.
    pub async fn remove_old(&self, period: u64) -> Result<(), StorageError> {
        let generations = self.records.list(GENERATIONS, None).await?;
        let keep = generations.len().saturating_sub(2);
        let mut named = BTreeSet::new();
        for (i, record) in generations.iter().enumerate() {
            if i < keep {
                self.records.delete(&record.key).await?;
                continue;
            }
            let Some(body) = self.records.get(&record.key).await? else {
                continue;
            };
            let Ok(manifest) = serde_json::from_slice::<Manifest>(&body) else {
                continue;
            };
            named.extend(manifest.indexes.into_values());
            named.extend(manifest.entries.into_values().map(|e| e.blob));
        }
        let now = SystemTime::now();
        for record in self.records.list(BLOBS, None).await? {
            let blob = record.key[BLOBS.len() + 1..]
                .split('.')
                .next()
                .unwrap_or_default();
            let recent = now
                .duration_since(record.modified)
                .is_ok_and(|age| age < GRACE);
            if !named.contains(blob) && !recent {
                self.records.delete(&record.key).await?;
            }
        }
        let current = format!("{CLAIMS}/{period:020}");
        for record in self.records.list(CLAIMS, None).await? {
            if record.key < current {
                self.records.delete(&record.key).await?;
            }
        }
        Ok(())
    }
}
