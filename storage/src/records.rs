//! [`Records`]: Ferry's own small objects beside the modules of a store (the index log and its snapshots,
//! block records, collection plans), under the key prefix `.ferry/`. No module path can name a key there: a
//! path element never starts with a dot (Go's `module.CheckPath`), so a record is never listed or served as
//! a module file, and a walk of the versions ([`ModuleStore::files`](crate::ModuleStore::files)) skips it.
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Failure, StorageError};

/// The prefix of every record's key in the store.
const ROOT: &str = ".ferry";

/// One listed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its key under `.ferry/` (as given to [`Records::put`]).
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// Ferry's records in a store: plain and create-only writes, reads, ordered listings and deletes of small
/// objects, on every backend. Cheap to clone (the store's own client).
#[derive(Clone)]
pub struct Records {
    store: Arc<dyn ObjectStore>,
    redact: Arc<dyn Fn(String) -> String + Send + Sync>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

impl Records {
    /// The records of `store` (already under the store's key prefix); `redact` makes a backend's message
    /// safe to show (a local store's directory removed).
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        redact: Arc<dyn Fn(String) -> String + Send + Sync>,
    ) -> Records {
        Records { store, redact }
    }

    fn path(key: &str) -> Result<Path, StorageError> {
        Path::parse(format!("{ROOT}/{key}")).map_err(|e| {
            StorageError::Unavailable(Failure::new(format!("invalid record key {key:?}"), e))
        })
    }

    fn fail(&self, error: object_store::Error, key: &str) -> StorageError {
        match error {
            object_store::Error::NotFound { .. } => StorageError::NotFound(format!("{ROOT}/{key}")),
            other => {
                let message = (self.redact)(format!("record {ROOT}/{key}: {other}"));
                StorageError::Unavailable(Failure::new(message, other))
            }
        }
    }

    /// Writes the record whole, replacing any.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        let path = Self::path(key)?;
        self.store
            .put(&path, PutPayload::from_bytes(body))
            .await
            .map(|_| ())
            .map_err(|e| self.fail(e, key))
    }

    /// Writes the record unless it exists: `true` when this write made it, `false` when it was there.
    /// Of two writers racing, one wins (as atomic as the server's create-only put; a server declared
    /// without conditional writes gets a look, then a plain put).
    pub async fn create(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        let path = Self::path(key)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from_bytes(body.clone());
        match self.store.put_opts(&path, payload, options).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => {
                if self.get(key).await?.is_some() {
                    return Ok(false);
                }
                self.put(key, body).await.map(|()| true)
            }
            Err(e) => Err(self.fail(e, key)),
        }
    }

    /// The record, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let path = Self::path(key)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail(e, key)),
        };
        match result.bytes().await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(e, key)),
        }
    }

    /// The records whose keys start with `prefix/` (a whole key segment), in key order; with `after`, only
    /// those whose key sorts after it (a bucket's `start-after`: a poll of an append-only log reads only
    /// what is new).
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Vec<Record>, StorageError> {
        let dir = Self::path(prefix.trim_end_matches('/'))?;
        let listed = match after {
            Some(after) => self.store.list_with_offset(Some(&dir), &Self::path(after)?),
            None => self.store.list(Some(&dir)),
        };
        let objects: Vec<object_store::ObjectMeta> = match listed.try_collect().await {
            Ok(objects) => objects,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(self.fail(e, prefix)),
        };
        let strip = format!("{ROOT}/");
        let mut records: Vec<Record> = objects
            .into_iter()
            .filter_map(|object| {
                let key = object.location.as_ref().strip_prefix(&strip)?.to_string();
                // A local store's staging files of a put in progress (`key#N`) are no records.
                (!key.contains('#')).then_some(Record {
                    key,
                    size: object.size,
                    modified: object.last_modified.into(),
                })
            })
            .filter(|record| after.is_none_or(|after| record.key.as_str() > after))
            .collect();
        records.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(records)
    }

    /// Removes the record; removing nothing is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = Self::path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(e, key)),
        }
    }
}
