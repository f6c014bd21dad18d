//! What a relay of the database asks of the client: answers proven before they are kept, and answers
//! from what is kept (or, for tiles, proven from the database's) when the database is away.

use bytes::Bytes;
use ferry_module::{ModulePath, Version};

use super::Client;
use crate::tlog::{
    FULL_WIDTH, Hash, TILE_HEIGHT, Tile, data_tile_path, parse_tile_path, record_hash,
    stored_hash_index,
};
use crate::{SumdbError, Transport, TransportError};

impl<T: Transport> Client<T> {
    /// The kept answer to the lookup of `module version` (unescaped), when one is kept and it proves
    /// against the trees verified (read from the database when one is missing); `None` otherwise. One
    /// that does not verify is logged and not given.
    pub async fn kept_lookup(&self, module: &str, version: &str) -> Option<Bytes> {
        let key = lookup_key(module, version)?;
        self.load().await;
        let kept = self.kept.get(&key).await?;
        match self.prove_answer(module, version, &kept).await {
            Ok(_) => Some(kept),
            Err(err @ SumdbError::Transport { .. }) => {
                tracing::debug!(sumdb = %self.key.name(), key, error = %err, "a kept lookup cannot be proven now");
                None
            }
            Err(err) => {
                self.damaged(&key, &err);
                None
            }
        }
    }

    /// Proves the database's `answer` to the lookup of `module version` (its note signed and consistent
    /// with the trees verified, its record in the tree), then keeps it.
    pub async fn prove_lookup(
        &self,
        module: &str,
        version: &str,
        answer: &Bytes,
    ) -> Result<(), SumdbError> {
        let Some(key) = lookup_key(module, version) else {
            return Err(self.protocol(format!("{module}@{version} is not a lookup")));
        };
        self.load().await;
        self.prove_answer(module, version, answer).await?;
        self.kept.put(&key, answer.clone()).await;
        Ok(())
    }

    /// Proves the database's `latest` note: signed, and consistent with the trees verified (the larger is
    /// then the latest, and kept).
    pub async fn prove_latest(&self, note: &[u8]) -> Result<(), SumdbError> {
        self.load().await;
        self.merge_latest(note).await
    }

    /// The newest signed tree note verified (by this client, or kept by an earlier run or another
    /// replica), or `None` when there is none.
    pub async fn latest_note(&self) -> Option<Bytes> {
        self.load().await;
        // Another replica may have kept a newer one: merged when it proves.
        if self.kept_tree_size().await > Some(self.latest().tree.n) {
            self.merge_kept_latest().await;
        }
        let latest = self.latest();
        (latest.tree.n > 0).then(|| Bytes::from(latest.note))
    }

    /// A tile of height 8 as the database serves it at `path` (`tile/8/<L>/<NNN>[.p/<W>]` or
    /// `tile/8/data/<NNN>[.p/<W>]`), proven against the latest tree verified: read from memory or the store
    /// where it can, else from the database, and kept. [`SumdbError::Unproven`] when the latest tree does
    /// not cover it, or the path is not such a tile.
    pub async fn tile(&self, path: &str) -> Result<Bytes, SumdbError> {
        let unproven = |why: &str| SumdbError::Unproven {
            database: self.key.name().to_string(),
            what: path.to_string(),
            why: why.to_string(),
        };
        let Some((tile, data)) = parse_tile_path(path) else {
            return Err(unproven("not a tile of height 8"));
        };
        self.load().await;
        let tree = self.latest().tree;
        // The bottom row of the tile: hashes of level 8·L, numbered from N·256.
        let level = tile.level * TILE_HEIGHT;
        let first = tile.n.checked_mul(FULL_WIDTH).filter(|_| level < 48);
        let end = first.and_then(|first| (first + tile.width).checked_shl(level));
        let (Some(first), Some(end)) = (first, end) else {
            return Err(unproven("beyond any tree"));
        };
        if end > tree.n {
            return Err(unproven(&format!(
                "beyond the latest tree verified (tree#{})",
                tree.n
            )));
        }
        let indexes: Vec<i64> = (first..first + tile.width)
            .map(|n| stored_hash_index(level, n))
            .collect();
        let hashes = self.read_hashes(&tree, &indexes).await?;
        if data {
            return self.data_tile(&tile, first, &hashes).await;
        }
        Ok(Bytes::from(hashes.concat()))
    }

    /// The data tile (records `first…`) whose records hash to `hashes` (proven): the kept full data tile
    /// cut to the width, else the database's answer, kept when full.
    async fn data_tile(
        &self,
        tile: &Tile,
        first: i64,
        hashes: &[Hash],
    ) -> Result<Bytes, SumdbError> {
        let full_path = data_tile_path(&tile.full());
        if let Some(kept) = self.kept.get(&full_path).await {
            match records_prefix(&kept, first, hashes) {
                Ok(cut) => return Ok(cut),
                Err(why) => self.damaged(&full_path, &SumdbError::Security(why)),
            }
        }
        let path = data_tile_path(tile);
        let fetched = match self.transport.get(&path).await {
            Ok(data) => data,
            Err(err) if tile.is_full() => return Err(self.data_error(&path, err)),
            Err(err) => match self.transport.get(&full_path).await {
                Ok(full) => full,
                Err(_) => return Err(self.data_error(&path, err)),
            },
        };
        let cut = records_prefix(&fetched, first, hashes).map_err(|why| {
            SumdbError::Security(format!(
                "SECURITY ERROR\ndownloaded data tile {path} does not hash to the signed tree: {why}"
            ))
        })?;
        if tile.is_full() && cut.len() == fetched.len() {
            self.kept.put(&full_path, fetched).await;
        }
        Ok(cut)
    }

    fn data_error(&self, path: &str, err: TransportError) -> SumdbError {
        match err {
            TransportError::NotFound => SumdbError::Transport {
                database: self.key.name().to_string(),
                path: path.to_string(),
                message: "not found".to_string(),
            },
            TransportError::Failed(message) => self.transport_error(path.to_string(), message),
        }
    }
}

/// The kept key of a lookup: `lookup/<escaped module>@<escaped version>`.
fn lookup_key(module: &str, version: &str) -> Option<String> {
    let module = ModulePath::new(module).ok()?;
    let version = Version::new(version).ok()?;
    Some(format!("lookup/{}@{}", module.escaped(), version.escaped()))
}

/// The first `hashes.len()` records of a data tile (each record's text then a blank line, as the
/// database's server writes them: a lookup's formatted record without its first line, the id), checked
/// against the proven leaf hashes of records `first…`; the bytes they take.
fn records_prefix(data: &Bytes, first: i64, hashes: &[Hash]) -> Result<Bytes, String> {
    let mut taken = 0;
    for (i, hash) in hashes.iter().enumerate() {
        let id = first + i as i64;
        let rest = &data[taken..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| format!("record {id} is missing"))?;
        if record_hash(&rest[..end + 1]) != *hash {
            return Err(format!("record {id} does not hash to the tree's leaf"));
        }
        taken += end + 2;
    }
    Ok(data.slice(..taken))
}
