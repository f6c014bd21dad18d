//! Lease objects beside the versions of a bucket: the conditional writes a lease engine needs
//! (create-only, replace-if-unchanged), and nothing of what a lease means (holders, expiry, tokens), which
//! belongs to the proxy's coordination.
//!
//! object_store maps the two conditional modes to each backend's own precondition: `PutMode::Create` is
//! S3 `If-None-Match: *`, GCS `x-goog-if-generation-match: 0`, Azure `If-None-Match: *`; `PutMode::Update`
//! is S3 `If-Match: <e-tag>`, GCS `x-goog-if-generation-match: <generation>`, Azure `If-Match: <e-tag>`.
//! Whether two racing writers really cannot both win is the server's promise, not object_store's: see the
//! README of this crate ("What the test servers guarantee").
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::{Failure, StorageError};
use ferry_module::{ModulePath, Version};

/// Which write of a lease object a later conditional write must follow: the e-tag and version the store
/// reported for it (S3 and Azure compare the e-tag, GCS the generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTag(UpdateVersion);

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// This write won; later conditional writes follow this tag.
    Won(LeaseTag),
    /// Another write came first (the object exists, or changed since the tag): nothing was written.
    Lost,
}

/// The lease objects of a cloud store: `<prefix><escaped module>/@v/<escaped version>.lease`, beside the
/// version's files. No module path or version names one, so a lease object is never listed or served as
/// a module file.
#[derive(Debug, Clone)]
pub struct BucketLeases {
    store: Arc<dyn ObjectStore>,
    /// The store's URL, for messages.
    name: String,
}

impl BucketLeases {
    /// Lease objects in `store` (already under the store's key prefix).
    pub fn new(store: Arc<dyn ObjectStore>, name: String) -> BucketLeases {
        BucketLeases { store, name }
    }

    /// The key of `module@version`'s lease object.
    pub fn key(module: &ModulePath, version: &Version) -> Result<Path, StorageError> {
        let key = format!("{}/@v/{}.lease", module.escaped(), version.escaped());
        // Validated module paths and versions always form valid keys; this guards the invariant anyway.
        Path::parse(&key)
            .map_err(|e| StorageError::Unavailable(Failure::new(format!("invalid key {key:?}"), e)))
    }

    fn fail(&self, key: &Path, error: object_store::Error) -> StorageError {
        StorageError::Unavailable(Failure::new(
            format!("lease {key} in {}: {error}", self.name),
            error,
        ))
    }

    /// Creates the lease object with `body` unless it exists (create-only put).
    pub async fn create(&self, key: &Path, body: Bytes) -> Result<Written, StorageError> {
        self.put(key, body, PutMode::Create).await
    }

    /// Replaces the lease object with `body` if it is still the write `tag` names.
    pub async fn replace(
        &self,
        key: &Path,
        body: Bytes,
        tag: &LeaseTag,
    ) -> Result<Written, StorageError> {
        self.put(key, body, PutMode::Update(tag.0.clone())).await
    }

    async fn put(&self, key: &Path, body: Bytes, mode: PutMode) -> Result<Written, StorageError> {
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(key, PutPayload::from_bytes(body), options)
            .await
        {
            Ok(result) => Ok(Written::Won(LeaseTag(UpdateVersion::from(result)))),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Written::Lost),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    /// The lease object's body and tag, or `None` when there is none.
    pub async fn read(&self, key: &Path) -> Result<Option<(Bytes, LeaseTag)>, StorageError> {
        let result = match self.store.get(key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail(key, e)),
        };
        let tag = LeaseTag(UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        });
        match result.bytes().await {
            Ok(body) => Ok(Some((body, tag))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    /// Removes the lease object (unconditionally: object_store has no conditional delete). Removing
    /// nothing is not an error.
    pub async fn remove(&self, key: &Path) -> Result<(), StorageError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(key, e)),
        }
    }
}
