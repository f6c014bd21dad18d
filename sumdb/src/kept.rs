//! What a [`Client`](crate::Client) verified, kept beyond its memory by a [`Kept`] the caller provides (Ferry
//! keeps it in its module store): lookup answers, tiles and the newest signed tree note, under keys relative
//! to the database (`lookup/<escaped module>@<escaped version>`, `tile/8/<L>/<NNN>[.p/<W>]`,
//! `tile/8/data/<NNN>`, `latest`), each the bytes the database served at that path.
//!
//! Nothing read back is trusted: the client proves a kept lookup, tile or note as it proves the database's
//! own answers, and reads the database again when one does not verify (a damaged store). A partial tile is
//! kept only while no wider one is: a narrower width is a prefix of a wider one (a tile's hashes never
//! change as the tree grows), so the widest partial, or the full tile, answers every narrower width.

use std::sync::Arc;

use bytes::Bytes;

use crate::tlog::{FULL_WIDTH, HASH_SIZE, Tile};

/// A store for what a client verified. Keys are relative to the database (the same key of two databases
/// must be kept apart by the implementation, which is given the database's name). An implementation
/// reports failures in words; the client logs them and goes on without the store (a store that cannot be
/// read is a cache miss, one that cannot be written loses nothing the database cannot give again).
#[async_trait::async_trait]
pub trait Kept: Send + Sync {
    /// The bytes kept under `key`, or `None`.
    async fn get(&self, database: &str, key: &str) -> Result<Option<Bytes>, String>;
    /// Keeps `data` under `key`, replacing any.
    async fn put(&self, database: &str, key: &str, data: Bytes) -> Result<(), String>;
    /// The keys kept under `prefix/` (a whole key segment), in any order.
    async fn list(&self, database: &str, prefix: &str) -> Result<Vec<String>, String>;
    /// Removes `key`; removing nothing is not an error.
    async fn delete(&self, database: &str, key: &str) -> Result<(), String>;
}

/// The kept records of one database, failures logged.
#[derive(Clone)]
pub(crate) struct Keeping {
    kept: Option<Arc<dyn Kept>>,
    database: String,
}

impl Keeping {
    pub(crate) fn new(kept: Option<Arc<dyn Kept>>, database: &str) -> Keeping {
        Keeping {
            kept,
            database: database.to_string(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.kept.is_some()
    }

    pub(crate) async fn get(&self, key: &str) -> Option<Bytes> {
        let kept = self.kept.as_ref()?;
        match kept.get(&self.database, key).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(sumdb = %self.database, key, %error, "reading a kept checksum database record failed");
                None
            }
        }
    }

    pub(crate) async fn put(&self, key: &str, data: Bytes) {
        let Some(kept) = &self.kept else { return };
        if let Err(error) = kept.put(&self.database, key, data).await {
            tracing::warn!(sumdb = %self.database, key, %error, "keeping a verified checksum database record failed");
        }
    }

    async fn list(&self, prefix: &str) -> Vec<String> {
        let Some(kept) = &self.kept else {
            return Vec::new();
        };
        kept.list(&self.database, prefix)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(sumdb = %self.database, prefix, %error, "listing kept checksum database records failed");
                Vec::new()
            })
    }

    async fn delete(&self, key: &str) {
        let Some(kept) = &self.kept else { return };
        if let Err(error) = kept.delete(&self.database, key).await {
            tracing::warn!(sumdb = %self.database, key, %error, "removing a kept checksum database record failed");
        }
    }

    /// A hash tile from the store, cut to its width: the full tile, else the widest partial at least as
    /// wide. Not yet proven.
    pub(crate) async fn tile(&self, tile: &Tile) -> Option<Bytes> {
        self.kept.as_ref()?;
        let want = tile.width as usize * HASH_SIZE;
        let full = tile.full();
        if let Some(data) = self.get(&full.path()).await {
            return (data.len() >= want).then(|| data.slice(..want));
        }
        if tile.is_full() {
            return None;
        }
        let widest = self
            .partials(&full)
            .await
            .into_iter()
            .filter(|(width, _)| *width >= tile.width)
            .max_by_key(|(width, _)| *width)?;
        let data = self.get(&widest.1).await?;
        (data.len() >= want).then(|| data.slice(..want))
    }

    /// The partial tiles kept of `full`'s position: their widths and keys.
    async fn partials(&self, full: &Tile) -> Vec<(i64, String)> {
        let prefix = format!("{}.p", full.path());
        self.list(&prefix)
            .await
            .into_iter()
            .filter_map(|key| {
                let width = key.strip_prefix(&prefix)?.strip_prefix('/')?.parse().ok()?;
                (0 < width && width < FULL_WIDTH).then_some((width, key))
            })
            .collect()
    }

    /// Keeps a proven hash tile: a full one, and then the partials of it go; a partial one only when no
    /// wider one is kept, and then the narrower ones go.
    pub(crate) async fn save_tile(&self, tile: &Tile, data: Bytes) {
        if self.kept.is_none() {
            return;
        }
        let partials = self.partials(&tile.full()).await;
        if !tile.is_full() && partials.iter().any(|(width, _)| *width >= tile.width) {
            return;
        }
        self.put(&tile.path(), data).await;
        for (width, key) in partials {
            if tile.is_full() || width < tile.width {
                self.delete(&key).await;
            }
        }
        // The full tile kept meanwhile (by another request or replica) would leave this one for ever.
        if !tile.is_full() && self.get(&tile.full().path()).await.is_some() {
            self.delete(&tile.path()).await;
        }
    }
}
