//! [`MeteredStore`]: a [`ModuleStore`] that counts and times every operation of the store it wraps, by
//! operation and backend, so the storage crate itself knows nothing of Prometheus.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    ByteRange, ModuleStore, Records, Saved, StorageError, StoredFile, VersionFile, VersionFiles,
    VisibilityGuard, ZipPart,
};
use futures::stream::BoxStream;
use tracing::Instrument;

use crate::metrics::{StorageLabels, metrics};

/// The store the proxy serves from, with every call recorded in `ferry_storage_operations`,
/// `ferry_storage_errors` and `ferry_storage_operation_duration_seconds`.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ModuleStore>,
    backend: &'static str,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ModuleStore>, backend: &'static str) -> MeteredStore {
        MeteredStore { inner, backend }
    }

    /// Runs one operation and records it. A "not found" is an answer, not an error: the proxy asks for
    /// files it does not have on every miss.
    async fn record<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let labels = StorageLabels {
            operation,
            backend: self.backend,
        };
        let started = Instant::now();
        let result = call.await;
        let metrics = metrics();
        metrics.storage_operations.get_or_create(&labels).inc();
        metrics
            .storage_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if matches!(&result, Err(e) if !matches!(e, StorageError::NotFound(_))) {
            metrics.storage_errors.get_or_create(&labels).inc();
        }
        result
    }
}

/// The span of a write to the store (traces; see [`crate::traces`]).
fn write_span(operation: &'static str, module: &ModulePath, version: &Version) -> tracing::Span {
    tracing::info_span!(
        target: crate::traces::TARGET,
        "store write",
        ferry.store.operation = operation,
        ferry.module = module.as_str(),
        ferry.version = version.as_str(),
    )
}

#[async_trait]
impl ModuleStore for MeteredStore {
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError> {
        self.record("list", self.inner.list(module)).await
    }

    /// Labelled by the file read: `info` or `mod` (`zip` for a zip read whole).
    async fn get(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<Bytes, StorageError> {
        let operation = match file {
            VersionFile::Info => "info",
            VersionFile::Mod => "mod",
            VersionFile::Zip => "zip",
        };
        self.record(operation, self.inner.get(module, version, file))
            .await
    }

    /// Labelled by the file looked for: `exists` (the `.info`: the version is listed), `has_mod` or
    /// `has_zip`.
    async fn has(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<bool, StorageError> {
        let operation = match file {
            VersionFile::Info => "exists",
            VersionFile::Mod => "has_mod",
            VersionFile::Zip => "has_zip",
        };
        self.record(operation, self.inner.has(module, version, file))
            .await
    }

    /// `zip`, whole or a part. Timed until the zip's stream is open, not until it is read: reading is
    /// paced by the client.
    async fn open_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<ZipPart, StorageError> {
        self.record("zip", self.inner.open_zip(module, version, range))
            .await
    }

    async fn save_version(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: Option<&dyn VisibilityGuard>,
    ) -> Result<Saved, StorageError> {
        let save = self.inner.save_version(module, version, files, guard);
        let span = write_span("save", module, version);
        self.record("save", save).instrument(span).await
    }

    /// Not timed: a walk of the whole store, for maintenance only.
    fn files(&self) -> BoxStream<'static, Result<StoredFile, StorageError>> {
        self.inner.files()
    }

    fn records(&self) -> Records {
        self.inner.records()
    }

    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError> {
        let span = write_span("delete", module, version);
        self.record("delete", self.inner.delete(module, version))
            .instrument(span)
            .await
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.record("check", self.inner.check()).await
    }

    async fn check_writable(&self) -> Result<(), StorageError> {
        self.record("check_writable", self.inner.check_writable())
            .await
    }
}
