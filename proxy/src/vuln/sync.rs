//! Syncing the copy from the source, and the schedule that does it: every `vuln.every` one replica (the one
//! whose claim of the period wins) reads `db.json`; when its `modified` differs from the published copy's
//! (an equality test: never compared with the clock), it reads both indexes and only the entries whose
//! `modified` changed, and publishes a new copy. The others read the newest copy from the store as it
//! appears.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};

use super::database::{self, Body, Database, Entry};
use super::path::Index;
use super::{Synced, VulnDb, VulnError};

/// Entries read from the source at once.
const READS: usize = 8;
/// A replica reads the store for a newer copy at least this often (or every `vuln.every`, if shorter).
const POLL: Duration = Duration::from_secs(60);
/// A whole sync gives up after this long (the first sync of the public database reads thousands of files).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl VulnDb {
    /// One sync from the source (whatever other replicas do; the schedule claims a period first), recorded
    /// in the status and the metrics.
    pub async fn sync(&self) -> Result<Synced, VulnError> {
        let result = match tokio::time::timeout(SYNC_TIMEOUT, self.sync_once()).await {
            Ok(result) => result,
            Err(_) => Err(VulnError::Invalid(format!(
                "the sync took longer than {}",
                humantime::format_duration(SYNC_TIMEOUT)
            ))),
        };
        self.record(&result);
        match &result {
            Ok(synced) => tracing::info!(?synced, "vulnerability database synced"),
            Err(e) => {
                tracing::warn!(error = %e.detail(), "vulnerability database sync failed; the last copy is kept");
            }
        }
        result
    }

    async fn sync_once(&self) -> Result<Synced, VulnError> {
        let (Some(source), Some(store)) = (&self.source, &self.store) else {
            return Err(if self.store.is_none() {
                VulnError::Off
            } else {
                VulnError::NoSource
            });
        };
        let db = source.index(Index::Db.name()).await?;
        let modified = database::db_modified(&db).map_err(VulnError::Invalid)?;
        self.reload().await?;
        let loaded = self.loaded.load_full();
        if loaded
            .as_ref()
            .is_some_and(|l| l.manifest.modified == modified)
        {
            return Ok(Synced::Unchanged { modified });
        }
        let modules = source.index(Index::Modules.name()).await?;
        let vulns = source.index(Index::Vulns.name()).await?;
        let listed = database::list(&db, &modules, &vulns).map_err(VulnError::Invalid)?;
        let kept = |id: &str, modified: &str| {
            let entry = loaded.as_ref()?.manifest.entries.get(id)?;
            (entry.modified == modified).then(|| entry.blob.clone())
        };
        let mut entries = BTreeMap::new();
        let mut to_read = Vec::new();
        for (id, modified) in &listed.vulns {
            match kept(id, modified) {
                Some(blob) => {
                    let body = Body::Kept(blob);
                    let modified = modified.clone();
                    entries.insert(id.clone(), Entry { modified, body });
                }
                None => to_read.push((id.clone(), modified.clone())),
            }
        }
        let read = to_read.len();
        let fetched: Vec<(String, Entry)> = futures::stream::iter(to_read)
            .map(|(id, modified)| async move {
                let body = source.entry(&id).await?;
                database::check_entry(&id, &body).map_err(VulnError::Invalid)?;
                let body = Body::New(body);
                Ok::<_, VulnError>((id, Entry { modified, body }))
            })
            .buffer_unordered(READS)
            .try_collect()
            .await?;
        entries.extend(fetched);
        let count = entries.len();
        let database = Database {
            modified: listed.modified.clone(),
            indexes: [
                (Index::Db, db),
                (Index::Modules, modules),
                (Index::Vulns, vulns),
            ]
            .into(),
            entries,
        };
        let after = loaded.as_ref().map(|l| l.generation);
        store.publish(database, after).await?;
        self.reload().await?;
        Ok(Synced::Published {
            modified: listed.modified,
            entries: count,
            read,
        })
    }

    /// Publishes `database` (read from a zip and checked complete) as the newest copy.
    pub async fn publish(&self, database: Database) -> Result<(), VulnError> {
        let Some(store) = &self.store else {
            return Err(VulnError::Off);
        };
        let after = store.current(None).await?.map(|(generation, _)| generation);
        store.publish(database, after).await?;
        self.reload().await?;
        self.status.lock().expect("not poisoned").failed = None;
        Ok(())
    }

    /// Keeps the copy current until `shutdown`: the store's newest copy loaded at once and polled, a sync
    /// every `vuln.every` on the replica that claims its period.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        if self.store.is_none() {
            return;
        }
        tokio::pin!(shutdown);
        let poll = self.settings.every.min(POLL);
        let mut next_sync = Instant::now();
        loop {
            // A sync under way is dropped at shutdown: what it wrote is no published copy, and is removed later.
            tokio::select! {
                () = self.tick(&mut next_sync) => {}
                () = &mut shutdown => return,
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// One turn of the schedule: the newest copy loaded, and a sync when one is due and this replica wins
    /// the period's claim.
    async fn tick(&self, next_sync: &mut Instant) {
        let Some(store) = &self.store else {
            return;
        };
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "the vulnerability database copy could not be read from the store");
        }
        if self.source.is_none() || Instant::now() < *next_sync {
            return;
        }
        let every = self.settings.every;
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let period = secs / every.as_secs().max(1);
        *next_sync = Instant::now() + every;
        match store.claim(period, &self.who).await {
            Ok(true) => {
                if self.sync().await.is_err() {
                    // Another replica (or this one, at its next poll) may try again within the period.
                    let _ = store.release(period).await;
                    *next_sync = Instant::now() + every.min(POLL);
                } else if let Err(e) = store.remove_old(period).await {
                    tracing::warn!(error = %e, "old copies of the vulnerability database could not be removed");
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the vulnerability database sync could not be claimed");
                *next_sync = Instant::now() + every.min(POLL);
            }
        }
    }
}
