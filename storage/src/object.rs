//! [`ObjectModuleStore`]: the one [`ModuleStore`], over any `object_store` backend.
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload,
};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::error::{Advice, ConfigError, Failure, StorageError};
use crate::hot::{HotZipSettings, HotZips, Stamp};
use crate::local;
use crate::records::Records;
use crate::store::{
    ByteRange, ModuleStore, ModuleStoreExt, Saved, StoredFile, VersionFile, VersionFiles,
    VisibilityGuard, ZipPart, ZipSource,
};
use ferry_module::{ModulePath, Version};

/// The read size when a zip is served from a local file. Each stalled reader holds about one chunk:
/// `benches/stalled.sh 200 20 100 14` (200 stalled HTTP/1 readers and 2000 stalled h2 streams of a 64 MiB
/// zip) peaked at 122-128 MB resident with 256 KiB reads, 76 MB with 128 KiB, while one client got a 256 MiB
/// zip as fast (`scripts/measure-memory.sh 256 1`: 0.23-0.28 s with 256 KiB, 0.19-0.22 s with 128 KiB;
/// 16 clients 2.99 s and 2.84 s), measured back to back. Once a cached chunk was read without a hand-off
/// (`local::read_chunks`), 64 KiB reads did 0.74-0.77x the 1 MiB zips/s and 0.84-0.93x the 32 MiB zips/s of
/// 128 KiB (`AB_ONLY=zip benches/ab.sh` of the two builds, 3 rounds).
const LOCAL_READ_SIZE: usize = 128 * 1024;

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
    /// On a local store, whether each file and directory entry is fsynced before the version is listed
    /// (on by default; off only to measure what it costs: `examples/save_cost.rs`).
    durable: bool,
    /// On a cloud store, the words that turn its common failures into what to do.
    advice: Option<Advice>,
    /// On a local store, the zips asked for again and again, kept in memory (`hot.rs`).
    hot: Option<Arc<HotZips>>,
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
            durable: true,
            advice: None,
            hot: None,
        })
    }

    /// Declares that the backend is the local directory `root` (a `LocalFileSystem` over it), so that a
    /// zip file handed to `save` is hard-linked into place (copied across filesystems) instead of streamed
    /// through a copy: a fetched zip is then stored in microseconds (cold_fetch example).
    pub fn with_local_root(mut self, root: std::path::PathBuf) -> Self {
        self.local_root = Some(root);
        self
    }

    /// On a local store, keeps the zips asked for again and again in memory, within `settings` (see
    /// [`HotZipSettings`]); every answer from memory is checked against the file on disk first, so a zip
    /// removed or replaced by anyone (another process included) is never served from there. No effect on
    /// other stores, nor on a directory on a network filesystem (NFS, SMB, FUSE, ...), whose files another
    /// host may remove without this one knowing at once.
    pub fn with_hot_zips(mut self, settings: HotZipSettings) -> Self {
        let Some(root) = &self.local_root else {
            return self;
        };
        if settings.max_bytes > 0 && crate::hot::is_remote_filesystem(root) {
            tracing::info!(
                "hot zips are not kept in memory: the store is on a network filesystem, where a zip removed by another host is not known at once"
            );
            return self;
        }
        self.hot = HotZips::new(settings).map(Arc::new);
        self
    }

    /// Explains a cloud store's common failures (plain HTTP, TLS, credentials, refused, denied, missing
    /// bucket) with `advice` in its messages, instead of the backend's own words.
    pub(crate) fn with_advice(mut self, advice: Advice) -> Self {
        self.advice = Some(advice);
        self
    }

    /// Whether a local store fsyncs a version's files and directory entries before listing it (the
    /// default: a version listed before a power loss is whole after it). Turning it off is for measuring
    /// its cost; nothing else changes (staging, the order of the files).
    pub fn with_fsync(mut self, durable: bool) -> Self {
        self.durable = durable;
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
        StorageError::from_object_store(error, key, &self.redactor(), self.advice.as_ref())
    }

    /// A bucket (or container) the server does not have, in the advice's words when there are some.
    fn missing_bucket(&self, e: &object_store::Error) -> String {
        match &self.advice {
            Some(advice) => advice.missing_bucket(),
            None => self.redact(format!("the bucket of the store does not exist: {e}")),
        }
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

    /// On a local store, the identity of the file `path` names once its symlinks are resolved, refusing
    /// (as not found) a file that resolves outside the store's root. `None` on other stores.
    async fn resolve(&self, path: &Path) -> Result<Option<(u64, u64)>, StorageError> {
        let Some(root) = &self.local_root else {
            return Ok(None);
        };
        let (root, key) = (root.clone(), path.to_string());
        let resolved = tokio::task::spawn_blocking(move || {
            let inside = local::resolve_inside(&root, &key)?;
            inside
                .map(|file| std::fs::metadata(file).map(|m| local::identity(&m)))
                .transpose()
        })
        .await
        .map_err(|e| StorageError::Unavailable(Failure::new(format!("reading {path}"), e)))?;
        match resolved {
            Ok(Some(identity)) => Ok(Some(identity)),
            // Outside the root: for a client, there is nothing there.
            Ok(None) => Err(StorageError::NotFound(path.to_string())),
            Err(e) if local::names_nothing(&e) => Err(StorageError::NotFound(path.to_string())),
            // std::fs errors name no path.
            Err(e) => Err(StorageError::Unavailable(Failure::new(
                format!("reading {path}: {e}"),
                e,
            ))),
        }
    }

    /// A get on a local store whose file is the one `resolve` checked: a symlink swapped in between the
    /// check and the open is refused.
    async fn get_inside(&self, path: &Path) -> Result<GetResult, StorageError> {
        let expected = self.resolve(path).await?;
        let result = self.store.get(path).await;
        let result = result.map_err(|e| self.fail(e, path.as_ref()))?;
        if let (Some(expected), GetResultPayload::File(file, _)) = (expected, &result.payload) {
            let opened = file.metadata().map(|m| local::identity(&m)).ok();
            if opened != Some(expected) {
                return Err(StorageError::NotFound(path.to_string()));
            }
        }
        Ok(result)
    }

    async fn read(&self, path: &Path) -> Result<Bytes, StorageError> {
        let result = self.get_inside(path).await?;
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

    /// Whether an object is stored at `path` (on a local store: inside the root).
    async fn stored(&self, path: &Path) -> Result<bool, StorageError> {
        match self.resolve(path).await {
            Err(StorageError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(e, path.as_ref())),
        }
    }

    /// On a durable local store, syncs the module's version directory, so that a file just renamed into it
    /// survives a crash. Nothing to do elsewhere.
    async fn sync_version_dir(&self, module: &ModulePath) -> Result<(), StorageError> {
        let (Some(root), true) = (&self.local_root, self.durable) else {
            return Ok(());
        };
        let dir = self.version_dir(module)?;
        let full = root.join(dir.as_ref());
        blocking(&dir, root, move || local::sync_dir(&full)).await
    }

    /// Stores a small file whole. On a local store: through a staging file, fsynced, renamed, and the
    /// directory synced (when durable).
    async fn put_small(&self, path: &Path, bytes: Bytes) -> Result<(), StorageError> {
        let Some(root) = &self.local_root else {
            let put = self.store.put(path, PutPayload::from_bytes(bytes)).await;
            return put.map(|_| ()).map_err(|e| self.fail(e, path.as_ref()));
        };
        let (target, durable) = (root.join(path.as_ref()), self.durable);
        blocking(path, root, move || {
            local::write_file(&target, &bytes, durable)?;
            match (durable, target.parent()) {
                (true, Some(dir)) => local::sync_dir(dir),
                _ => Ok(()),
            }
        })
        .await
    }

    /// `save_version`: the guard (if any) asked between the `.mod` and the `.info`.
    async fn save_with(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: Option<&dyn VisibilityGuard>,
    ) -> Result<Saved, StorageError> {
        let zip = self.file(module, version, "zip")?;
        if self.exists(module, version).await? {
            // Listed: its `.info` and `.mod` stay as they are; only a missing zip is added.
            let Some(source) = files.zip else {
                return Ok(Saved::AlreadyStored);
            };
            if self.stored(&zip).await? {
                return Ok(Saved::AlreadyStored);
            }
            if let Some(guard) = guard {
                guard.before_visible().await?;
            }
            self.upload_zip(&zip, source).await?;
            self.sync_version_dir(module).await?;
            return Ok(Saved::Written);
        }
        let go_mod = self.file(module, version, "mod")?;
        let info = self.file(module, version, "info")?;
        if let Some(root) = &self.local_root {
            let dir = self.version_dir(module)?;
            let (full, durable) = (root.join(dir.as_ref()), self.durable);
            blocking(&dir, root, move || local::create_dirs(&full, durable)).await?;
        }
        let mut written = Vec::new();
        if let Some(source) = files.zip {
            self.upload_zip(&zip, source).await?;
            written.push(&zip);
        }
        if let Err(e) = self.put_small(&go_mod, files.go_mod).await {
            self.undo(&written).await;
            return Err(e);
        }
        written.push(&go_mod);
        // A refusing guard leaves the zip and `.mod` alone: they are invisible without the `.info`, and
        // may already be the files of the writer the guard defers to (the same bytes: a version's files
        // are fixed by its checksum), which an undo would remove from under it.
        if let Some(guard) = guard {
            guard.before_visible().await?;
        }
        // The `.info` goes last: once it is stored, the version is listed with its files present (and,
        // on a local store, durable: `put_small` syncs the directory, so the zip's and `.mod`'s entries
        // are on disk before the `.info` is written, and the `.info`'s before `save` returns).
        match self.put_info(&info, files.info).await {
            Ok(saved) => Ok(saved),
            Err(e) => {
                self.undo(&written).await;
                Err(e)
            }
        }
    }

    /// Writes a version's `.info`. On a bucket (and in memory) the write is create-only: of two writers
    /// racing past `exists`, one makes the version visible and the other finds it stored, so a
    /// version's `.info` is written once and never replaced (as atomic as the server's create-only put:
    /// see the README, "What the test servers guarantee").
    async fn put_info(&self, path: &Path, bytes: Bytes) -> Result<Saved, StorageError> {
        if self.local_root.is_some() {
            return self.put_small(path, bytes).await.map(|()| Saved::Written);
        }
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from_bytes(bytes.clone()), options)
            .await
        {
            Ok(_) => Ok(Saved::Written),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Saved::AlreadyStored),
            // An S3-compatible server without conditional writes, declared with the option
            // `conditional_put = "disabled"`: a plain put, as before.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.put_small(path, bytes).await.map(|()| Saved::Written)
            }
            Err(e) => Err(self.fail(e, path.as_ref())),
        }
    }

    async fn upload_zip(&self, path: &Path, zip: ZipSource) -> Result<(), StorageError> {
        match (zip, &self.local_root) {
            (ZipSource::File(file), Some(root)) => {
                let (target, durable) = (root.join(path.as_ref()), self.durable);
                blocking(path, root, move || {
                    local::link_file(&file, &target, durable)
                })
                .await
            }
            (ZipSource::Stream(chunks), Some(root)) => {
                let target = root.join(path.as_ref());
                match local::write_stream(&target, chunks, self.durable).await {
                    Ok(()) => Ok(()),
                    Err(local::StreamFailure::Source(e)) => Err(StorageError::Source(e)),
                    Err(local::StreamFailure::Write(e)) => Err(write_failure(path, root, e)),
                }
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
        if let Some(root) = &self.local_root {
            // A version directory that a symlink leads out of the root holds nothing of this store's.
            let (root, key) = (root.clone(), dir.to_string());
            let inside =
                tokio::task::spawn_blocking(move || local::resolve_inside(&root, &key)).await;
            if matches!(inside, Ok(Ok(None))) {
                return Ok(Vec::new());
            }
        }
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
        if let Some(root) = &self.local_root {
            // A listed version is one `exists` finds: its `.info` does not lead out of the root. One
            // blocking task resolves them all.
            let keys: Vec<String> = versions
                .iter()
                .map(|v| format!("{dir}/{}.info", v.escaped()))
                .collect();
            let root = root.clone();
            let inside = tokio::task::spawn_blocking(move || {
                keys.iter()
                    .map(|key| matches!(local::resolve_inside(&root, key), Ok(Some(_))))
                    .collect::<Vec<bool>>()
            })
            .await
            .map_err(|e| StorageError::Unavailable(Failure::new(format!("listing {dir}"), e)))?;
            let mut keep = inside.into_iter();
            versions.retain(|_| keep.next().unwrap_or(false));
        }
        versions.sort();
        versions.dedup();
        Ok(versions)
    }

    async fn get(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<Bytes, StorageError> {
        self.read(&self.file(module, version, file.extension())?)
            .await
    }

    async fn has(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<bool, StorageError> {
        self.stored(&self.file(module, version, file.extension())?)
            .await
    }

    /// A local store's zip is opened in one trip to the blocking pool and read from the part's first byte
    /// (`pread`, see `local_zip`). An object store's whole zip is one GET; a part is asked for the zip's
    /// length, then for the part alone (a ranged GET): two requests, but no byte before the part crosses
    /// the network.
    async fn open_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<ZipPart, StorageError> {
        let path = self.file(module, version, "zip")?;
        if let Some(root) = &self.local_root {
            return local_zip(root, path, range, self.hot.as_deref()).await;
        }
        let key = path.to_string();
        let redact = self.redactor();
        let advice = self.advice.clone();
        let Some(range) = range else {
            let result = self.get_inside(&path).await?;
            let len = result.meta.size;
            // Only a local store's backend gives a file, and a local store's zips are read by `local_zip`.
            let stream = result
                .into_stream()
                .map_err(move |e| {
                    StorageError::from_object_store(e, &key, &redact, advice.as_ref())
                })
                .boxed();
            return Ok(ZipPart::Bytes {
                len,
                range: 0..len,
                stream,
            });
        };
        let len = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.fail(e, path.as_ref()))?
            .size;
        let Some(range) = range.within(len) else {
            return Ok(ZipPart::Unsatisfiable { len });
        };
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(|e| self.fail(e, path.as_ref()))?;
        let stream = result
            .into_stream()
            .map_err(move |e| StorageError::from_object_store(e, &key, &redact, advice.as_ref()))
            .boxed();
        Ok(ZipPart::Bytes { len, range, stream })
    }

    async fn save_version(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: Option<&dyn VisibilityGuard>,
    ) -> Result<Saved, StorageError> {
        self.save_with(module, version, files, guard).await
    }

    fn files(&self) -> BoxStream<'static, Result<StoredFile, StorageError>> {
        let redact = self.redactor();
        let advice = self.advice.clone();
        // A file removed while the walk goes (a version deleted meanwhile) is not a failure of the walk.
        self.store
            .list(None)
            .filter_map(move |listed| {
                let found = match listed {
                    Ok(object) => stored_file(&object).map(Ok),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => Some(Err(StorageError::from_object_store(
                        e,
                        "",
                        &redact,
                        advice.as_ref(),
                    ))),
                };
                futures::future::ready(found)
            })
            .boxed()
    }

    fn records(&self) -> Records {
        Records::new(self.store.clone(), Arc::new(self.redactor()))
    }

    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError> {
        for extension in ["info", "mod", "zip"] {
            self.remove(&self.file(module, version, extension)?).await?;
        }
        // Its file is gone, so the copy would not be served; the memory is given back now.
        if let Some(hot) = &self.hot {
            hot.forget(self.file(module, version, "zip")?.as_ref());
        }
        Ok(())
    }

    async fn check_writable(&self) -> Result<(), StorageError> {
        if let Some(root) = &self.local_root {
            let owned = root.clone();
            let probe = Path::from(".ferry-write-probe");
            return blocking(&probe, root, move || local::probe_writes(&owned)).await;
        }
        // A small object under the prefix, written and removed: proves the credentials may write and
        // the bucket takes objects. Its name is this process's, so replicas sharing a bucket do not race.
        // The read check first: some S3-compatible servers create a missing bucket on a PUT.
        self.check().await?;
        let probe = self.path(format!(".ferry-write-probe-{}", std::process::id()))?;
        let put = self
            .store
            .put(&probe, PutPayload::from_static(b"ferry write probe"))
            .await;
        match put {
            Ok(_) => self.remove(&probe).await,
            // A PUT answered "not found" means the bucket (or container) is not there.
            Err(e @ object_store::Error::NotFound { .. }) => Err(StorageError::Unavailable(
                Failure::new(self.missing_bucket(&e), e),
            )),
            Err(e) => Err(self.fail(e, probe.as_ref())),
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        // Listing a prefix that never holds anything: an empty answer proves the backend answers and the
        // bucket exists, without writes. A HEAD would not do: S3 and GCS answer a missing bucket with the
        // same 404 as a missing key.
        let probe = self.path(".ferry-readiness-probe".to_string())?;
        match self.store.list_with_delimiter(Some(&probe)).await {
            Ok(_) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) => Err(StorageError::Unavailable(
                Failure::new(self.missing_bucket(&e), e),
            )),
            Err(e) => Err(self.fail(e, probe.as_ref())),
        }
    }
}

/// The version file an object is (`<escaped module>/@v/<escaped version>.{info,mod,zip}`), if it is one.
fn stored_file(object: &object_store::ObjectMeta) -> Option<StoredFile> {
    let (module, file) = object.location.as_ref().rsplit_once("/@v/")?;
    let (version, extension) = file.rsplit_once('.')?;
    Some(StoredFile {
        file: VersionFile::from_extension(extension)?,
        module: ModulePath::from_escaped(module).ok()?,
        version: Version::from_escaped(version).ok()?,
        size: object.size,
        modified: object.last_modified.into(),
    })
}

/// A zip of a local store, whole (`range` `None`) or the part `range` picks: resolved and opened in one
/// trip to the blocking pool, then read from the part's first byte in [`LOCAL_READ_SIZE`] chunks, from the
/// page cache without a hand-off when it holds them (object_store reads a local file in 8 KiB chunks, each
/// a trip to the blocking pool: `scripts/measure-memory.sh 256 1` went from about 240 MiB/s to the figure
/// in `benches/README.md`, "Memory"). A hot zip (`hot`) is answered from memory once its file is known to
/// be the one it was read from.
async fn local_zip(
    root: &std::path::Path,
    path: Path,
    range: Option<ByteRange>,
    hot: Option<&HotZips>,
) -> Result<ZipPart, StorageError> {
    let key = path.as_ref();
    if let Some(zip) = hot.and_then(|hot| hot.get(key, &root.join(key))) {
        return Ok(part_of(zip, range));
    }
    let (file, len) = open_local_zip(root, &path).await?;
    if let (None, Some(hot)) = (range, hot)
        && let Some((room, _reading)) = hot.room(key, len)
        && let Some(read) = read_whole(file.try_clone(), len).await
    {
        return Ok(part_of(hot.keep(key, read, room), None));
    }
    Ok(match picked(range, len) {
        Some(range) => ZipPart::Bytes {
            len,
            stream: local_chunks(file, range.clone(), &path),
            range,
        },
        None => ZipPart::Unsatisfiable { len },
    })
}

/// The bytes of a zip of `len` bytes that `range` picks (all of them without one), `None` when none are.
fn picked(range: Option<ByteRange>, len: u64) -> Option<std::ops::Range<u64>> {
    match range {
        None => Some(0..len),
        Some(range) => range.within(len),
    }
}

/// The part of a zip in memory that `range` picks, as one chunk.
fn part_of(zip: Bytes, range: Option<ByteRange>) -> ZipPart {
    let len = zip.len() as u64;
    match picked(range, len) {
        Some(range) => ZipPart::Bytes {
            len,
            stream: futures::stream::once(futures::future::ready(Ok(
                zip.slice(range.start as usize..range.end as usize)
            )))
            .boxed(),
            range,
        },
        None => ZipPart::Unsatisfiable { len },
    }
}

/// The whole of an opened zip of `len` bytes with the stamp of the file it was read from, in one trip to
/// the blocking pool; `None` when it cannot be read whole or changed while it was (the caller then streams
/// it as any other, and meets the error there).
async fn read_whole(
    file: std::io::Result<std::fs::File>,
    len: u64,
) -> Option<(Vec<u8>, Stamp, std::fs::File)> {
    let file = file.ok()?;
    let read = tokio::task::spawn_blocking(move || {
        let before = Stamp::of_file(&file).ok()?;
        let bytes = local::read_at(&file, 0, vec![0; usize::try_from(len).ok()?]).ok()?;
        let after = Stamp::of_file(&file).ok()?;
        (before == after && before.size() == len && bytes.len() as u64 == len)
            .then_some((bytes, after, file))
    });
    read.await.ok().flatten()
}

/// A local store's zip, opened, with its length.
async fn open_local_zip(
    root: &std::path::Path,
    path: &Path,
) -> Result<(std::fs::File, u64), StorageError> {
    let (root, key) = (root.to_path_buf(), path.to_string());
    let opened = tokio::task::spawn_blocking(move || local::open_inside(&root, &key))
        .await
        .map_err(|e| StorageError::Unavailable(Failure::new(format!("reading {path}"), e)))?;
    let (file, len) = match opened {
        Ok(Some(opened)) => opened,
        // Outside the root, or swapped for a symlink while opened: for a client, there is nothing there.
        Ok(None) => return Err(StorageError::NotFound(path.to_string())),
        Err(e) if local::names_nothing(&e) => return Err(StorageError::NotFound(path.to_string())),
        // std::fs errors name no path.
        Err(e) => {
            return Err(StorageError::Unavailable(Failure::new(
                format!("reading {path}: {e}"),
                e,
            )));
        }
    };
    Ok((file, len))
}

/// The bytes `range` of a local store's opened zip, as a stream of chunks.
fn local_chunks(
    file: std::fs::File,
    range: std::ops::Range<u64>,
    path: &Path,
) -> futures::stream::BoxStream<'static, Result<Bytes, StorageError>> {
    let key = path.to_string();
    local::read_chunks(file, range, LOCAL_READ_SIZE)
        // An io::Error of a read names no path.
        .map_err(move |e| StorageError::Unavailable(Failure::new(format!("reading {key}: {e}"), e)))
        .boxed()
}

/// Runs a blocking filesystem step of a write to `key` off the async threads.
async fn blocking(
    key: &Path,
    root: &std::path::Path,
    step: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> Result<(), StorageError> {
    match tokio::task::spawn_blocking(step).await {
        Ok(done) => done.map_err(|e| write_failure(key, root, e)),
        Err(e) => Err(StorageError::Unavailable(Failure::new(
            format!("storing {key}: the task failed"),
            e,
        ))),
    }
}

/// A failed write of `key` on a local store: the message names the key (std::fs errors name no path);
/// the source, for the operator, the file under `root` as well.
fn write_failure(key: &Path, root: &std::path::Path, e: std::io::Error) -> StorageError {
    let detail = std::io::Error::new(
        e.kind(),
        format!("{}: {e}", root.join(key.as_ref()).display()),
    );
    StorageError::Unavailable(Failure::new(format!("storing {key}: {e}"), detail))
}
