//! [`MeteredStore`]: a [`ModuleStore`] that counts and times every operation of the store it wraps, by
//! operation and backend, so the storage crate itself knows nothing of Prometheus.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    ModuleStore, Saved, StorageConfig, StorageError, VersionFiles, VisibilityGuard, ZipStream,
};
use futures::stream::BoxStream;

use crate::metrics::{StorageLabels, metrics};

/// The store the proxy serves from, with every call recorded in `ferry_storage_operations`,
/// `ferry_storage_errors` and `ferry_storage_operation_duration_seconds`.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ModuleStore>,
    backend: &'static str,
}

/// The backend label of a storage configuration: `file`, `memory`, `s3`, `gcs` or `az`.
pub fn backend_label(config: &StorageConfig) -> &'static str {
    match config {
        StorageConfig::File(_) => "file",
        StorageConfig::Memory => "memory",
        StorageConfig::Cloud(cloud) => match cloud.scheme() {
            "s3" => "s3",
            "gs" => "gcs",
            "az" => "az",
            _ => "other",
        },
    }
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

#[async_trait]
impl ModuleStore for MeteredStore {
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError> {
        self.record("list", self.inner.list(module)).await
    }

    async fn info(&self, module: &ModulePath, version: &Version) -> Result<Bytes, StorageError> {
        self.record("info", self.inner.info(module, version)).await
    }

    async fn go_mod(&self, module: &ModulePath, version: &Version) -> Result<Bytes, StorageError> {
        self.record("mod", self.inner.go_mod(module, version)).await
    }

    /// Timed until the zip's stream is open, not until it is read: reading is paced by the client.
    async fn zip(&self, module: &ModulePath, version: &Version) -> Result<ZipStream, StorageError> {
        self.record("zip", self.inner.zip(module, version)).await
    }

    async fn zip_part(
        &self,
        module: &ModulePath,
        version: &Version,
        range: ferry_storage::ByteRange,
    ) -> Result<ferry_storage::ZipPart, StorageError> {
        self.record("zip", self.inner.zip_part(module, version, range))
            .await
    }

    async fn exists(&self, module: &ModulePath, version: &Version) -> Result<bool, StorageError> {
        self.record("exists", self.inner.exists(module, version))
            .await
    }

    async fn has_zip(&self, module: &ModulePath, version: &Version) -> Result<bool, StorageError> {
        self.record("has_zip", self.inner.has_zip(module, version))
            .await
    }

    async fn save(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
    ) -> Result<Saved, StorageError> {
        self.record("save", self.inner.save(module, version, files))
            .await
    }

    async fn save_guarded(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: &dyn VisibilityGuard,
    ) -> Result<Saved, StorageError> {
        let save = self.inner.save_guarded(module, version, files, guard);
        self.record("save", save).await
    }

    /// Not timed: a walk of the whole store, for maintenance only.
    fn zips(&self) -> BoxStream<'static, Result<(ModulePath, Version), StorageError>> {
        self.inner.zips()
    }

    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError> {
        self.record("delete", self.inner.delete(module, version))
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
