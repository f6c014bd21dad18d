//! Reconciling the ledger with what the store holds: a walk of every version file (one listing of the
//! store), so that a store filled before the ledger existed, by hand (a copied GOMODCACHE), or behind
//! Ferry's back is indexed, and versions removed by hand leave the index.
use std::collections::HashMap;

use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, StorageError, VersionFile};
use futures::TryStreamExt;
use serde::Serialize;

use super::log::{Change, Event};
use super::state::{Nanos, Status};
use super::{BLOCKS, Ledger, nanos, now};

/// What a reindex changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reindexed {
    /// Version files walked.
    pub files: u64,
    /// Versions stored but not indexed, now indexed.
    pub added: u64,
    /// Versions indexed but no longer stored, now removed from the index.
    pub removed: u64,
    /// Block records the log had lost, restored.
    pub blocks: u64,
}

/// One version as the walk found it.
#[derive(Default)]
struct Found {
    /// When its `.info` was written (`None`: no `.info`, not a listed version).
    info: Option<Nanos>,
    bytes: u64,
}

impl Ledger {
    /// Walks `store` and writes the events that make the ledger agree with it; `progress` is called with
    /// the number of files walked so far, every few thousand.
    pub async fn reindex(
        &self,
        store: &dyn ModuleStore,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<Reindexed, StorageError> {
        let mut found: HashMap<(ModulePath, Version), Found> = HashMap::new();
        let mut done = Reindexed::default();
        let mut files = store.files();
        while let Some(file) = files.try_next().await? {
            done.files += 1;
            if done.files.is_multiple_of(4096) {
                progress(done.files);
            }
            let entry = found.entry((file.module, file.version)).or_default();
            entry.bytes += file.size;
            if file.file == VersionFile::Info {
                entry.info = Some(nanos(file.modified));
            }
        }
        progress(done.files);
        let blocks = self.block_records().await?;
        let at = now();
        let mut events = Vec::new();
        self.read(|state| {
            for ((module, version), seen) in &found {
                let Some(stored_at) = seen.info else { continue };
                let current = state.entry(module, version);
                match current.map(|e| (&e.status, e.status_at)) {
                    Some((Status::Present | Status::Blocked(_), _)) => {}
                    // Deleted after the file's time, yet there: it came back (by hand); indexed as new.
                    Some((Status::Deleted, deleted_at)) => {
                        let stored = Change::Stored { bytes: seen.bytes };
                        events.push(Event::new(
                            stored_at.max(deleted_at + 1),
                            module,
                            version,
                            stored,
                        ));
                        done.added += 1;
                    }
                    None => {
                        let stored = Change::Stored { bytes: seen.bytes };
                        events.push(Event::new(stored_at, module, version, stored));
                        done.added += 1;
                    }
                }
            }
            for (module, version, entry) in state.under("") {
                let listed = found
                    .get(&(module.clone(), version.clone()))
                    .is_some_and(|f| f.info.is_some());
                if entry.status == Status::Present && !listed {
                    events.push(Event::new(at, module, version, Change::Deleted));
                    done.removed += 1;
                }
            }
            for ((module, version), reason, blocked_at) in &blocks {
                if !matches!(
                    state.entry(module, version).map(|e| &e.status),
                    Some(Status::Blocked(_))
                ) {
                    let change = Change::Blocked {
                        reason: reason.clone(),
                    };
                    events.push(Event::new((*blocked_at).max(1), module, version, change));
                    done.blocks += 1;
                }
            }
        });
        for event in events {
            self.record(event);
        }
        self.sync().await?;
        self.ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(done)
    }

    /// Every block record: the version, its reason and when it was blocked.
    async fn block_records(
        &self,
    ) -> Result<Vec<((ModulePath, Version), String, Nanos)>, StorageError> {
        #[derive(serde::Deserialize)]
        struct BlockRecord {
            reason: String,
            at: Nanos,
        }
        let mut blocks = Vec::new();
        for record in self.records.list(BLOCKS, None).await? {
            let Some((module, version)) = record
                .key
                .strip_prefix(&format!("{BLOCKS}/"))
                .and_then(|rest| rest.rsplit_once("/@v/"))
                .and_then(|(m, v)| {
                    Some((
                        ModulePath::from_escaped(m).ok()?,
                        Version::from_escaped(v).ok()?,
                    ))
                })
            else {
                continue;
            };
            let Some(body) = self.records.get(&record.key).await? else {
                continue;
            };
            if let Ok(block) = serde_json::from_slice::<BlockRecord>(&body) {
                blocks.push(((module, version), block.reason, block.at));
            }
        }
        Ok(blocks)
    }
}
