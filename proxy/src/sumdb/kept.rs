//! Checksum database records kept in the module store, beside the modules, on every backend: what Ferry
//! verified of each database it relays or verifies its fills against, so that a restart, or an outage of
//! the upstream and the database, loses nothing verified, and Ferry answers from it while the database is
//! away (see [`ferry_sumdb::Kept`]; the proving is `ferry_sumdb::Client`'s, shared by the relay and the
//! fills through `ferry_fetcher::SumdbRoutes::verifier`).
//!
//! The layout, in the store's [`Records`] (keys relative to `.ferry/`; `NAME` is the database's name, as in
//! `/sumdb/NAME/`, e.g. `sum.golang.org`). Each record holds the bytes the database served at the same
//! path under `/sumdb/NAME/`; each was proven before it was written (a lookup's record in a signed tree, a
//! tile's hashes up to a signed tree hash, a data tile's records hashing to its proven leaves):
//!
//! | key | holds |
//! |---|---|
//! | `sumdb/NAME/lookup/ESCAPED_MODULE@ESCAPED_VERSION` | the lookup answer (record id, go.sum lines, signed tree note); `!` case escaping as `ModulePath::escaped()` / `Version::escaped()` |
//! | `sumdb/NAME/tile/8/L/NNN` | a full hash tile (`NNN` as the protocol spells it, e.g. `x001/234`) |
//! | `sumdb/NAME/tile/8/data/NNN` | a full data tile |
//! | `sumdb/NAME/tile/8/L/NNN.p/W` | a partial hash tile: only the widest one of a position is kept, and none once its full tile is (narrower widths are its prefix); the right edge of the newest tree verified, which every proof against a tree needs (the top tiles are always partial) |
//! | `sumdb/NAME/latest` | the newest signed tree note verified: replaced only by a note of a larger tree, proven consistent with it |
//!
//! Tiles are of height 8, the go command's (tiles of other heights are relayed, not kept). Lookups and
//! tiles never change; `latest` grows. Nothing read back is trusted: a record that does not
//! verify is logged, ignored and read again from the database.

use bytes::Bytes;
use ferry_storage::{Records, StorageError};

/// The key prefix of everything kept of the database `name`.
pub fn prefix(name: &str) -> String {
    format!("sumdb/{name}")
}

/// [`ferry_sumdb::Kept`] over a store's [`Records`], in the layout above.
#[derive(Clone, Debug)]
pub struct KeptRecords {
    records: Records,
}

impl KeptRecords {
    pub fn new(records: Records) -> KeptRecords {
        KeptRecords { records }
    }

    /// The records of `store`, as the verifiers take them (`SumdbRoutes::keep_in`).
    pub fn of(
        store: &std::sync::Arc<dyn ferry_storage::ModuleStore>,
    ) -> std::sync::Arc<KeptRecords> {
        std::sync::Arc::new(KeptRecords::new(store.records()))
    }
}

fn key(database: &str, key: &str) -> String {
    format!("{}/{key}", prefix(database))
}

fn said(error: StorageError) -> String {
    error.to_string()
}

#[async_trait::async_trait]
impl ferry_sumdb::Kept for KeptRecords {
    async fn get(&self, database: &str, k: &str) -> Result<Option<Bytes>, String> {
        self.records.get(&key(database, k)).await.map_err(said)
    }

    async fn put(&self, database: &str, k: &str, data: Bytes) -> Result<(), String> {
        self.records
            .put(&key(database, k), data)
            .await
            .map_err(said)
    }

    async fn list(&self, database: &str, under: &str) -> Result<Vec<String>, String> {
        let dir = key(database, under);
        let strip = format!("{}/", prefix(database));
        let listed = self.records.list(&dir, None).await.map_err(said)?;
        Ok(listed
            .into_iter()
            .filter_map(|record| Some(record.key.strip_prefix(&strip)?.to_string()))
            .collect())
    }

    async fn delete(&self, database: &str, k: &str) -> Result<(), String> {
        self.records.delete(&key(database, k)).await.map_err(said)
    }
}
