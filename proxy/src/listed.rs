//! The stored versions of a module on a bucket store, kept for a moment. Every `list` answer merges the
//! stored versions with the upstream's (cached) list, and on a bucket each stored list is a `LIST` request:
//! `list` on the S3 test server ran at 3,764 req/s with the upstream's part cached, against 23,378 on a
//! file store (`oha -z 5s -c 64`, issue 11). Kept for [`STORED_LIST_TTL`], a version this Ferry stores is
//! still listed at once (a save forgets the module's list); one stored by another replica sharing the bucket
//! is listed within that time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    ByteRange, ModuleStore, Records, Saved, StorageError, StoredFile, VersionFile, VersionFiles,
    VisibilityGuard, ZipPart,
};
use futures::stream::BoxStream;

/// How long a module's stored list is answered from memory.
pub const STORED_LIST_TTL: Duration = Duration::from_secs(2);
/// Modules whose lists are kept at most; past it, the expired ones are dropped, then all.
const MAX_MODULES: usize = 10_000;

/// A module's stored versions and when they were read.
type Kept = (Instant, Arc<Vec<Version>>);

/// A bucket store whose `list` answers are kept for [`STORED_LIST_TTL`].
#[derive(Debug)]
pub struct RecentLists {
    inner: Arc<dyn ModuleStore>,
    lists: Mutex<HashMap<ModulePath, Kept>>,
    /// Counts writes: a list read while one finished may miss its version, and is not kept.
    writes: AtomicU64,
}

impl RecentLists {
    pub fn new(inner: Arc<dyn ModuleStore>) -> RecentLists {
        RecentLists {
            inner,
            lists: Mutex::default(),
            writes: AtomicU64::new(0),
        }
    }

    fn forget(&self, module: &ModulePath) {
        let mut lists = self.lists.lock().unwrap();
        self.writes.fetch_add(1, Ordering::AcqRel);
        lists.remove(module);
    }

    /// Keeps a list read when `writes` was `before`, unless a write finished since.
    fn keep(&self, module: &ModulePath, versions: Arc<Vec<Version>>, before: u64) {
        let mut lists = self.lists.lock().unwrap();
        if self.writes.load(Ordering::Acquire) != before {
            return;
        }
        if lists.len() >= MAX_MODULES {
            lists.retain(|_, (at, _)| at.elapsed() < STORED_LIST_TTL);
            if lists.len() >= MAX_MODULES {
                lists.clear();
            }
        }
        lists.insert(module.clone(), (Instant::now(), versions));
    }
}

#[async_trait]
impl ModuleStore for RecentLists {
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError> {
        let kept = self.lists.lock().unwrap().get(module).cloned();
        if let Some((at, versions)) = kept
            && at.elapsed() < STORED_LIST_TTL
        {
            return Ok(versions.as_ref().clone());
        }
        let before = self.writes.load(Ordering::Acquire);
        let versions = Arc::new(self.inner.list(module).await?);
        self.keep(module, versions.clone(), before);
        Ok(versions.as_ref().clone())
    }
    async fn get(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<Bytes, StorageError> {
        self.inner.get(module, version, file).await
    }
    async fn has(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<bool, StorageError> {
        self.inner.has(module, version, file).await
    }
    async fn open_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<ZipPart, StorageError> {
        self.inner.open_zip(module, version, range).await
    }
    /// Forgets the module's list: a version this Ferry stores is listed at once.
    async fn save_version(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: Option<&dyn VisibilityGuard>,
    ) -> Result<Saved, StorageError> {
        let saved = self.inner.save_version(module, version, files, guard).await;
        self.forget(module);
        saved
    }
    fn files(&self) -> BoxStream<'static, Result<StoredFile, StorageError>> {
        self.inner.files()
    }
    fn records(&self) -> Records {
        self.inner.records()
    }
    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError> {
        let deleted = self.inner.delete(module, version).await;
        self.forget(module);
        deleted
    }
    async fn check(&self) -> Result<(), StorageError> {
        self.inner.check().await
    }
    async fn check_writable(&self) -> Result<(), StorageError> {
        self.inner.check_writable().await
    }
}
