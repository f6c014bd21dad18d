//! [`ObjectModuleStore`]: the one [`ModuleStore`], over any `object_store` backend.
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetResult, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::error::{ConfigError, Failure, StorageError};
use crate::store::{ModuleStore, Saved, VersionFiles, ZipSource, ZipStream};
use ferry_module::{ModulePath, Version};

/// The read size when a zip is served from a local file.
const LOCAL_READ_SIZE: usize = 256 * 1024;

/// The read size when a zip file is uploaded to a store that cannot link it.
const UPLOAD_READ_SIZE: usize = 1024 * 1024;

/// Zips larger than this are uploaded in parts (multipart upload on S3/GCS, a staged file on disk).
const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;

/// The module store over any `object_store` backend (filesystem, memory, S3, GCS, Azure), under a key
/// prefix (object_store's `PrefixStore`).
#[derive(Debug)]
pub struct ObjectModuleStore {
    store: Arc<dyn ObjectStore>,
    /// For a store on local disk, its directory: a zip file handed to `save` is then linked into place
    /// rather than copied, and the directory is kept out of error messages.
    local_root: Option<std::path::PathBuf>,
}

impl ObjectModuleStore {
    /// `prefix` is a `/`-separated key prefix (empty for the root); it must be a valid object path.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self, StorageError> {
        let trimmed = prefix.trim_matches('/');
        let store = if trimmed.is_empty() {
            store
        } else {
            let prefix = Path::parse(trimmed).map_err(|e| {
                ConfigError::url(format!("bad key prefix {prefix:?}: {e}")).with_source(e)
            })?;
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(ObjectModuleStore {
            store,
            local_root: None,
        })
    }

    /// Declares that the backend is the local directory `root` (a `LocalFileSystem` over it), so that a
    /// zip file handed to `save` is hard-linked into place (copied across filesystems) instead of streamed
    /// through a copy: a fetched zip is then stored in microseconds (cold_fetch example).
    pub fn with_local_root(mut self, root: std::path::PathBuf) -> Self {
        self.local_root = Some(root);
        self
    }

    fn version_dir(&self, module: &ModulePath) -> Result<Path, StorageError> {
        self.path(format!("{}/@v", module.escaped()))
    }

    fn file(
        &self,
        module: &ModulePath,
        version: &Version,
        extension: &str,
    ) -> Result<Path, StorageError> {
        self.path(format!(
            "{}/@v/{}.{extension}",
            module.escaped(),
            version.escaped()
        ))
    }

    fn path(&self, key: String) -> Result<Path, StorageError> {
        // Validated module paths and versions always form valid keys; this guards the invariant anyway.
        Path::parse(&key)
            .map_err(|e| StorageError::Unavailable(Failure::new(format!("invalid key {key:?}"), e)))
    }

    /// An object_store error on `key`, its message made safe to show: a local store's directory is
    /// removed from it, leaving the key.
    fn fail(&self, error: object_store::Error, key: &str) -> StorageError {
        StorageError::from_object_store(error, key, &self.redactor())
    }

    fn redact(&self, message: String) -> String {
        self.redactor()(message)
    }

    /// What `redact` does, owned, for a stream that outlives `&self`.
    fn redactor(&self) -> impl Fn(String) -> String + Send + Sync + 'static {
        let root = self.local_root.as_ref().map(|r| r.display().to_string());
        move |message: String| match &root {
            Some(root) => message
                .replace(&format!("{root}/"), "")
                .replace(root.as_str(), "<store>"),
            None => message,
        }
    }

    async fn read(&self, path: &Path) -> Result<Bytes, StorageError> {
        let result = self.store.get(path).await;
        let result = result.map_err(|e| self.fail(e, path.as_ref()))?;
        result
            .bytes()
            .await
            .map_err(|e| self.fail(e, path.as_ref()))
    }

    async fn remove(&self, path: &Path) -> Result<(), StorageError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(e, path.as_ref())),
        }
    }

    /// Removes what a failed save wrote; the save's own error is what the caller hears about.
    async fn undo(&self, written: &[&Path]) {
        for path in written {
            if let Err(e) = self.remove(path).await {
                tracing::warn!(key = %path, error = %e, "could not remove a file of a failed save");
            }
        }
    }

    async fn upload_zip(&self, path: &Path, zip: ZipSource) -> Result<(), StorageError> {
        match (zip, &self.local_root) {
            (ZipSource::File(file), Some(root)) => {
                link_into_place(&file, &root.join(path.as_ref())).await
            }
            (ZipSource::File(file), None) => {
                let opened = tokio::fs::File::open(&file)
                    .await
                    .map_err(StorageError::Source)?;
                let chunks = ReaderStream::with_capacity(opened, UPLOAD_READ_SIZE).boxed();
                self.upload_stream(path, chunks).await
            }
            (ZipSource::Stream(chunks), _) => self.upload_stream(path, chunks).await,
        }
    }

    async fn upload_stream(
        &self,
        path: &Path,
        mut zip: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<(), StorageError> {
        let mut writer =
            BufWriter::with_capacity(self.store.clone(), path.clone(), MULTIPART_THRESHOLD);
        while let Some(chunk) = zip.next().await {
            let written = match chunk {
                Ok(bytes) => writer
                    .put(bytes)
                    .await
                    .map_err(|e| self.fail(e, path.as_ref())),
                Err(e) => Err(StorageError::Source(e)),
            };
            if let Err(e) = written {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
        // A failed shutdown has already aborted its multipart upload (and `abort` after `shutdown`
        // panics), so the error is all there is to handle.
        if let Err(e) = writer.shutdown().await {
            let message = self.redact(format!("{path}: {e}"));
            return Err(StorageError::Unavailable(Failure::new(message, e)));
        }
        Ok(())
    }
}

#[async_trait]
impl ModuleStore for ObjectModuleStore {
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError> {
        let dir = self.version_dir(module)?;
        let listing = match self.store.list_with_delimiter(Some(&dir)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(e, dir.as_ref())),
        };
        // Only `<version>.info` names a listed version; a Go module cache's `.lock`, `.ziphash`, `list`
        // and partial files are ignored, and so are names that are not canonical versions.
        let mut versions: Vec<Version> = listing
            .objects
            .iter()
            .filter_map(|object| {
                object
                    .location
                    .filename()?
                    .strip_suffix(".info")
                    .map(str::to_string)
            })
            .filter_map(|escaped| Version::from_escaped(&escaped).ok())
            .collect();
        versions.sort();
        versions.dedup();
        Ok(versions)
    }

    async fn info(&self, module: &ModulePath, version: &Version) -> Result<Bytes, StorageError> {
        self.read(&self.file(module, version, "info")?).await
    }

    async fn go_mod(&self, module: &ModulePath, version: &Version) -> Result<Bytes, StorageError> {
        self.read(&self.file(module, version, "mod")?).await
    }

    async fn zip(&self, module: &ModulePath, version: &Version) -> Result<ZipStream, StorageError> {
        let path = self.file(module, version, "zip")?;
        let result = self.store.get(&path).await;
        let result = result.map_err(|e| self.fail(e, path.as_ref()))?;
        let len = result.meta.size;
        let key = path.to_string();
        let redact = self.redactor();
        let stream = match result.payload {
            // object_store reads a local file in 8 KiB chunks, each a trip to the blocking pool; reads of
            // LOCAL_READ_SIZE serve a zip several times faster (scripts/measure-memory.sh 256 1: from about
            // 240 MiB/s to the figure in the README) in the same bounded memory.
            GetResultPayload::File(file, _) if result.range == (0..len) => {
                let file = tokio::fs::File::from_std(file).take(len);
                ReaderStream::with_capacity(file, LOCAL_READ_SIZE)
                    // An io::Error of a read names no path.
                    .map_err(move |e| {
                        StorageError::Unavailable(Failure::new(format!("reading {key}: {e}"), e))
                    })
                    .boxed()
            }
            payload => GetResult { payload, ..result }
                .into_stream()
                .map_err(move |e| StorageError::from_object_store(e, &key, &redact))
                .boxed(),
        };
        Ok(ZipStream { len, stream })
    }

    async fn exists(&self, module: &ModulePath, version: &Version) -> Result<bool, StorageError> {
        let path = self.file(module, version, "info")?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(e, path.as_ref())),
        }
    }

    async fn save(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
    ) -> Result<Saved, StorageError> {
        if self.exists(module, version).await? {
            return Ok(Saved::AlreadyStored);
        }
        let zip = self.file(module, version, "zip")?;
        let go_mod = self.file(module, version, "mod")?;
        let info = self.file(module, version, "info")?;
        self.upload_zip(&zip, files.zip).await?;
        if let Err(e) = self
            .store
            .put(&go_mod, PutPayload::from_bytes(files.go_mod))
            .await
        {
            self.undo(&[&zip]).await;
            return Err(self.fail(e, go_mod.as_ref()));
        }
        // The `.info` goes last: once it is stored, the version is listed with all its files present.
        if let Err(e) = self
            .store
            .put(&info, PutPayload::from_bytes(files.info))
            .await
        {
            self.undo(&[&go_mod, &zip]).await;
            return Err(self.fail(e, info.as_ref()));
        }
        Ok(Saved::Written)
    }

    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError> {
        for extension in ["info", "mod", "zip"] {
            self.remove(&self.file(module, version, extension)?).await?;
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), StorageError> {
        // Listing a prefix that never holds anything: an empty answer proves the backend answers and the
        // bucket exists, without writes. A HEAD would not do: S3 and GCS answer a missing bucket with the
        // same 404 as a missing key.
        let probe = self.path(".ferry-readiness-probe".to_string())?;
        match self.store.list_with_delimiter(Some(&probe)).await {
            Ok(_) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) => {
                let message = self.redact(format!("the bucket of the store does not exist: {e}"));
                Err(StorageError::Unavailable(Failure::new(message, e)))
            }
            Err(e) => Err(self.fail(e, probe.as_ref())),
        }
    }
}

/// Puts `source` at `target` atomically: a hard link (a copy when the two are on different filesystems)
/// under a staging name, then a rename. The staging name ends in `#<digits>`, which `object_store`'s own
/// listing of a local directory leaves out, as it does its own staging files.
async fn link_into_place(
    source: &std::path::Path,
    target: &std::path::Path,
) -> Result<(), StorageError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (source, target) = (source.to_path_buf(), target.to_path_buf());
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = target.with_file_name(format!(
        "{name}#{}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let linked = tokio::task::spawn_blocking(move || {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if std::fs::hard_link(&source, &staging).is_err() {
            std::fs::copy(&source, &staging)?;
        }
        std::fs::rename(&staging, &target).inspect_err(|_| {
            let _ = std::fs::remove_file(&staging);
        })
    })
    .await;
    match linked {
        Ok(Ok(())) => Ok(()),
        // std::fs errors name no path.
        Ok(Err(e)) => Err(StorageError::Unavailable(Failure::new(
            format!("storing the zip: {e}"),
            e,
        ))),
        Err(e) => Err(StorageError::Unavailable(Failure::new(
            "storing the zip: the copy task failed",
            e,
        ))),
    }
}
