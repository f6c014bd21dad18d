//! [`Recorded`]: the store layer that tells the ledger what was stored and deleted, whoever did it (a fill,
//! an admin's delete, a collection, `ferry check-store --remove`), so the index never depends on every
//! caller remembering to.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    ByteRange, ModuleStore, Records, Saved, StorageError, StoredFile, VersionFile, VersionFiles,
    VisibilityGuard, ZipPart, ZipSource,
};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::Ledger;

/// A store whose writes are recorded in a [`Ledger`].
#[derive(Debug)]
pub struct Recorded {
    inner: Arc<dyn ModuleStore>,
    ledger: Arc<Ledger>,
}

impl Recorded {
    pub fn new(inner: Arc<dyn ModuleStore>, ledger: Arc<Ledger>) -> Recorded {
        Recorded { inner, ledger }
    }
}

/// The zip's bytes, counted as they pass (a stream), or read from its file's size.
fn counted(zip: Option<ZipSource>, count: &Arc<AtomicU64>) -> Option<ZipSource> {
    match zip? {
        ZipSource::File(path) => {
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            count.store(len, Ordering::Relaxed);
            Some(ZipSource::File(path))
        }
        ZipSource::Stream(chunks) => {
            let count = count.clone();
            Some(ZipSource::Stream(
                chunks
                    .inspect(move |chunk| {
                        if let Ok(bytes) = chunk {
                            count.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        }
                    })
                    .boxed(),
            ))
        }
    }
}

#[async_trait]
impl ModuleStore for Recorded {
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError> {
        self.inner.list(module).await
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
    /// A version written (or its zip added) is recorded with its bytes.
    async fn save_version(
        &self,
        module: &ModulePath,
        version: &Version,
        mut files: VersionFiles,
        guard: Option<&dyn VisibilityGuard>,
    ) -> Result<Saved, StorageError> {
        let zip_bytes = Arc::new(AtomicU64::new(0));
        files.zip = counted(files.zip.take(), &zip_bytes);
        let small = (files.info.len() + files.go_mod.len()) as u64;
        let saved = self
            .inner
            .save_version(module, version, files, guard)
            .await?;
        if saved == Saved::Written {
            let bytes = small + zip_bytes.load(Ordering::Relaxed);
            self.ledger.stored(module, version, bytes);
        }
        Ok(saved)
    }
    fn files(&self) -> BoxStream<'static, Result<StoredFile, StorageError>> {
        self.inner.files()
    }
    fn records(&self) -> Records {
        self.inner.records()
    }
    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError> {
        self.inner.delete(module, version).await?;
        self.ledger.deleted(module, version);
        Ok(())
    }
    async fn check(&self) -> Result<(), StorageError> {
        self.inner.check().await
    }
    async fn check_writable(&self) -> Result<(), StorageError> {
        self.inner.check_writable().await
    }
}
