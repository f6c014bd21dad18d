//! The [`ModuleStore`] trait and the values it takes and gives.
use std::fmt::Debug;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::StorageError;
use crate::records::Records;
use ferry_module::{ModulePath, Version};

/// A stored zip, read as a stream of chunks so it is never held whole in memory.
pub struct ZipStream {
    /// The zip's size in bytes, for `Content-Length`.
    pub len: u64,
    pub stream: BoxStream<'static, Result<Bytes, StorageError>>,
}

/// The bytes an HTTP `Range: bytes=` request picks of a zip, before they are set against its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (`last` included), or `bytes=first-` (to the end).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Last(u64),
}

impl ByteRange {
    /// The bytes picked of a file of `len` bytes (the end excluded), `None` when none are (a 416): a range
    /// that starts past the end, or asks for the last 0 bytes. One that ends past the end stops there.
    pub fn within(self, len: u64) -> Option<Range<u64>> {
        let picked = match self {
            ByteRange::From { first, last } => {
                let end = last.map_or(len, |last| last.saturating_add(1).min(len));
                first..end
            }
            ByteRange::Last(n) => len.saturating_sub(n)..len,
        };
        (picked.start < picked.end).then_some(picked)
    }
}

/// The part of a stored zip a [`ByteRange`] picks.
pub enum ZipPart {
    /// The bytes `range` of a zip of `len` bytes.
    Bytes {
        len: u64,
        range: Range<u64>,
        stream: BoxStream<'static, Result<Bytes, StorageError>>,
    },
    /// The range picks no byte of the zip of `len` bytes.
    Unsatisfiable { len: u64 },
}

/// The files of one module version, as handed to [`ModuleStore::save_version`]. The zip may come later: the go
/// command asks for the `.mod` of many versions whose zips it never needs (a module graph's pruned
/// requirements), so a version may be stored with its `.info` and `.mod` first and its zip when asked.
pub struct VersionFiles {
    pub info: Bytes,
    pub go_mod: Bytes,
    pub zip: Option<ZipSource>,
}

/// Where the zip handed to `save` comes from.
pub enum ZipSource {
    /// A stream of chunks.
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
    /// A file on local disk (e.g. the one the fetcher left), which `save` may link instead of copying when
    /// the store is on the same filesystem. The file must not change afterwards; it may be removed.
    File(std::path::PathBuf),
}

/// Whether `save` wrote the version or found it already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Written,
    AlreadyStored,
}

/// Asked by [`ModuleStore::save_version`] just before a version is made visible (its `.info` written):
/// an error stops the save there. The proxy's coordination uses it as a fencing check (this Ferry still
/// holds the version's lease), so a former holder that stalled past its lease does not publish.
#[async_trait]
pub trait VisibilityGuard: Send + Sync {
    async fn before_visible(&self) -> Result<(), StorageError>;
}

/// A file found by [`ModuleStore::files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub module: ModulePath,
    pub version: Version,
    pub file: VersionFile,
    pub size: u64,
    /// When it was written (a file's mtime, an object's last-modified time): for a version's `.info`, when
    /// the version was first stored, since it is written once.
    pub modified: std::time::SystemTime,
}

/// A file of a stored version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionFile {
    /// `.info`: the version is listed once it is stored.
    Info,
    /// `.mod`
    Mod,
    /// `.zip`: read as a stream ([`ModuleStore::open_zip`]), never whole.
    Zip,
}

impl VersionFile {
    /// The file whose extension (`info`, `mod`, `zip`) this is.
    pub fn from_extension(extension: &str) -> Option<VersionFile> {
        match extension {
            "info" => Some(VersionFile::Info),
            "mod" => Some(VersionFile::Mod),
            "zip" => Some(VersionFile::Zip),
            _ => None,
        }
    }

    /// The file's extension in the GOPROXY layout: `info`, `mod`, `zip`.
    pub fn extension(self) -> &'static str {
        match self {
            VersionFile::Info => "info",
            VersionFile::Mod => "mod",
            VersionFile::Zip => "zip",
        }
    }
}

/// Module versions in a store laid out as a GOPROXY tree: `<escaped module>/@v/<escaped version>.{info,mod,zip}`.
///
/// The core: the primitives a backend implements and a layer (a store over another store, such as the
/// proxy's metered one) wraps. The conveniences (`info`, `go_mod`, `zip`, `zip_part`, `exists`,
/// `has_zip`, `save`, `save_guarded`) are [`ModuleStoreExt`]'s, written once over these.
///
/// A version is listed once its `.info` is stored, and a save writes the `.info` last, so a listed version
/// always has its `.mod`. Its `.zip` may be missing (stored later, or never, as in a Go module cache, where
/// many versions have only their `.info` and `.mod`); once stored, it is complete.
#[async_trait]
pub trait ModuleStore: Send + Sync + Debug + 'static {
    /// Every listed version of the module (pseudo-versions included), in semantic version order.
    /// A module with nothing stored has an empty list.
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError>;
    /// One file of the version, whole (meant for the `.info` and `.mod`; a zip is read by `open_zip`).
    async fn get(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<Bytes, StorageError>;
    /// Whether the file is stored (the `.info`: the version is listed; the `.zip`: a listed version may not
    /// have it yet).
    async fn has(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
    ) -> Result<bool, StorageError>;
    /// The version's zip as a stream of chunks: whole (`range` `None`: a `Bytes` part of every byte), or
    /// the part an HTTP `Range` request picks (a download resumed, a CDN's slice), read from its first byte
    /// (a file's `pread`, an object store's ranged GET).
    async fn open_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<ZipPart, StorageError>;
    /// Stores the zip (when given), then the `.mod`, then the `.info`. A save that fails part-way removes
    /// what it wrote. Saving a version that is already listed leaves its `.info` and `.mod` as they are and
    /// stores the zip only if it was missing (`Written` then; `AlreadyStored` when there was nothing to
    /// add). `guard`, when given, is asked after the zip and `.mod` are stored and before the `.info` is
    /// (before a missing zip of a listed version is added): when it refuses, the zip and `.mod` are left as
    /// they are (invisible without the `.info`, and possibly the files of whoever the guard now defers to).
    async fn save_version(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: Option<&dyn VisibilityGuard>,
    ) -> Result<Saved, StorageError>;
    /// Every stored file of every version (`.info`, `.mod`, `.zip`), with its size and when it was written,
    /// in no particular order: a walk of the whole store, for maintenance (`ferry check-store`, rebuilding
    /// the index, sizing), never on a request's path. Keys that name no valid module version's file (a Go
    /// module cache's other files, Ferry's own [`Records`]) are skipped.
    fn files(&self) -> BoxStream<'static, Result<StoredFile, StorageError>>;
    /// Ferry's own records beside the modules (under `.ferry/`): the same backend and key prefix.
    fn records(&self) -> Records;
    /// Unlists the version (its `.info` first), then removes its other files. Deleting nothing is not an error.
    async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), StorageError>;
    /// Whether the backend answers: `Ok` when it is reachable and usable. Reads only.
    async fn check(&self) -> Result<(), StorageError>;
    /// Whether the store takes writes now: a file store creates, writes (64 KiB: room
    /// for a small version), fsyncs and removes a
    /// probe file under its root; a cloud or memory store runs `check`, then puts and deletes a small probe
    /// object under its prefix. `Unavailable` when it cannot (a full or read-only disk, credentials that may only read, a
    /// missing bucket). Meant for start-up and for readiness when misses are fetched and stored.
    async fn check_writable(&self) -> Result<(), StorageError>;
}

/// The conveniences of a [`ModuleStore`], written once over its core for every store and layer (all but
/// `zip` return the core call's own future, so they cost no allocation of their own).
pub trait ModuleStoreExt: ModuleStore {
    /// The version's `.info`.
    fn info<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Bytes, StorageError>> {
        self.get(module, version, VersionFile::Info)
    }
    /// The version's `.mod`.
    fn go_mod<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Bytes, StorageError>> {
        self.get(module, version, VersionFile::Mod)
    }
    /// The version's whole zip, with its length.
    fn zip<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<ZipStream, StorageError>> {
        Box::pin(async move {
            Ok(match self.open_zip(module, version, None).await? {
                ZipPart::Bytes { len, stream, .. } => ZipStream { len, stream },
                ZipPart::Unsatisfiable { len } => ZipStream {
                    len,
                    stream: futures::stream::empty().boxed(),
                },
            })
        })
    }
    /// The part of the version's zip `range` picks.
    fn zip_part<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
        range: ByteRange,
    ) -> BoxFuture<'a, Result<ZipPart, StorageError>> {
        self.open_zip(module, version, Some(range))
    }
    /// Whether the version is listed (its `.info` is stored).
    fn exists<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        self.has(module, version, VersionFile::Info)
    }
    /// Whether the version's zip is stored (a listed version may not have it yet).
    fn has_zip<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        self.has(module, version, VersionFile::Zip)
    }
    /// [`ModuleStore::save_version`] without a guard.
    fn save<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
        files: VersionFiles,
    ) -> BoxFuture<'a, Result<Saved, StorageError>> {
        self.save_version(module, version, files, None)
    }
    /// [`ModuleStore::save_version`], asking `guard` just before the version becomes visible.
    fn save_guarded<'a>(
        &'a self,
        module: &'a ModulePath,
        version: &'a Version,
        files: VersionFiles,
        guard: &'a dyn VisibilityGuard,
    ) -> BoxFuture<'a, Result<Saved, StorageError>> {
        self.save_version(module, version, files, Some(guard))
    }
}

impl<S: ModuleStore + ?Sized> ModuleStoreExt for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_set_against_the_length_as_http_says() {
        let from = |first, last| ByteRange::From { first, last };
        assert_eq!(from(0, Some(9)).within(100), Some(0..10));
        assert_eq!(from(90, Some(200)).within(100), Some(90..100));
        assert_eq!(from(10, None).within(100), Some(10..100));
        assert_eq!(from(99, None).within(100), Some(99..100));
        assert_eq!(from(100, None).within(100), None);
        assert_eq!(from(100, Some(150)).within(100), None);
        assert_eq!(ByteRange::Last(10).within(100), Some(90..100));
        assert_eq!(ByteRange::Last(500).within(100), Some(0..100));
        assert_eq!(ByteRange::Last(0).within(100), None);
        assert_eq!(from(0, None).within(0), None);
    }
}
