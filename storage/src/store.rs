//! The [`ModuleStore`] trait and the values it takes and gives.
use std::fmt::Debug;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::StorageError;
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

/// The files of one module version, as handed to [`ModuleStore::save`]. The zip may come later: the go
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

/// Asked by [`ModuleStore::save_guarded`] just before a version is made visible (its `.info` written):
/// an error stops the save there. The proxy's coordination uses it as a fencing check (this Ferry still
/// holds the version's lease), so a former holder that stalled past its lease does not publish.
#[async_trait]
pub trait VisibilityGuard: Send + Sync {
    async fn before_visible(&self) -> Result<(), StorageError>;
}

/// Module versions in a store laid out as a GOPROXY tree: `<escaped module>/@v/<escaped version>.{info,mod,zip}`.
///
/// A version is listed once its `.info` is stored, and `save` writes the `.info` last, so a listed version
/// always has its `.mod`. Its `.zip` may be missing (stored later, or never, as in a Go module cache, where
/// many versions have only their `.info` and `.mod`); once stored, it is complete.
#[async_trait]
pub trait ModuleStore: Send + Sync + Debug + 'static {
    /// Every listed version of the module (pseudo-versions included), in semantic version order.
    /// A module with nothing stored has an empty list.
    async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, StorageError>;
    async fn info(&self, module: &ModulePath, version: &Version) -> Result<Bytes, StorageError>;
    async fn go_mod(&self, module: &ModulePath, version: &Version) -> Result<Bytes, StorageError>;
    async fn zip(&self, module: &ModulePath, version: &Version) -> Result<ZipStream, StorageError>;
    /// The part of the zip `range` picks (an HTTP `Range` request: a download resumed, a CDN's slice). The
    /// default reads the zip from its start and drops what comes before the part; a store that can read
    /// from an offset (a file, an object store's ranged GET) does that instead.
    async fn zip_part(
        &self,
        module: &ModulePath,
        version: &Version,
        range: ByteRange,
    ) -> Result<ZipPart, StorageError> {
        let zip = self.zip(module, version).await?;
        let len = zip.len;
        Ok(match range.within(len) {
            Some(range) => ZipPart::Bytes {
                len,
                stream: slice(zip.stream, range.clone()),
                range,
            },
            None => ZipPart::Unsatisfiable { len },
        })
    }
    /// Whether the version is listed (its `.info` is stored).
    async fn exists(&self, module: &ModulePath, version: &Version) -> Result<bool, StorageError>;
    /// Whether the version's zip is stored (a listed version may not have it yet).
    async fn has_zip(&self, module: &ModulePath, version: &Version) -> Result<bool, StorageError>;
    /// Stores the zip (when given), then the `.mod`, then the `.info`. A save that fails part-way removes what
    /// it wrote. Saving a version that is already listed leaves its `.info` and `.mod` as they are and stores
    /// the zip only if it was missing (`Written` then; `AlreadyStored` when there was nothing to add).
    async fn save(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
    ) -> Result<Saved, StorageError>;
    /// `save`, asking `guard` after the zip and `.mod` are stored and before the `.info` is. When the guard
    /// refuses, the zip and `.mod` are left as they are (invisible without the `.info`, and possibly
    /// the files of whoever the guard now defers to). The default asks before anything is written.
    async fn save_guarded(
        &self,
        module: &ModulePath,
        version: &Version,
        files: VersionFiles,
        guard: &dyn VisibilityGuard,
    ) -> Result<Saved, StorageError> {
        guard.before_visible().await?;
        self.save(module, version, files).await
    }
    /// Every stored zip, as the module and version it belongs to, in no particular order (a walk of the
    /// whole store: for maintenance such as `ferry check-store`, never on a request's path). Keys that name
    /// no valid module version (a Go module cache's other files) are skipped.
    fn zips(&self) -> BoxStream<'static, Result<(ModulePath, Version), StorageError>>;
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

/// The bytes `range` of a stream of chunks that starts at the file's first byte.
fn slice(
    stream: BoxStream<'static, Result<Bytes, StorageError>>,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, StorageError>> {
    use futures::{StreamExt, TryStreamExt};
    stream
        .scan(0u64, move |offset, chunk| {
            let at = *offset;
            let item = match chunk {
                Ok(chunk) => {
                    *offset += chunk.len() as u64;
                    if at >= range.end {
                        return futures::future::ready(None);
                    }
                    // The part of this chunk inside the range (maybe none of it).
                    let from = range.start.saturating_sub(at).min(chunk.len() as u64) as usize;
                    let to = (range.end - at).min(chunk.len() as u64) as usize;
                    Ok(chunk.slice(from..to))
                }
                Err(e) => Err(e),
            };
            futures::future::ready(Some(item))
        })
        .try_filter(|chunk| futures::future::ready(!chunk.is_empty()))
        .boxed()
}

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

    #[tokio::test]
    async fn a_slice_of_a_chunked_stream_is_the_bytes_of_the_range() {
        use futures::{StreamExt, TryStreamExt};
        let file: Vec<u8> = (0..=255).collect();
        for range in [0..256, 0..1, 5..70, 64..128, 63..65, 255..256, 100..101] {
            let chunks: Vec<Result<Bytes, StorageError>> = file
                .chunks(64)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let got: Vec<Bytes> = slice(futures::stream::iter(chunks).boxed(), range.clone())
                .try_collect()
                .await
                .unwrap();
            assert_eq!(
                got.concat(),
                &file[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
    }
}
