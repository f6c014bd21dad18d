//! What only a `file://` store does: durable writes through staging files, the sweep of staging debris,
//! the write probe, and keeping reads inside the store's root (no symlink leads out).
//!
//! A staging file is `<final name>#<digits>`: the digits are a 4-digit tag of the host, the writer's
//! process id in 10 digits, then a counter. `object_store`'s local listing skips any name ending in `#`
//! and digits (as it does its own staging files, `<name>#<n>`), and no module path or version can name
//! one, so a staging file is never listed nor served.
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::AsyncWriteExt;

/// Staging files older than this are debris, whoever wrote them: a live writer touches its staging file
/// at least every chunk, and renames it right after its fsync, so a minute of silence means it died.
/// (A staging file of a process of this host that is no longer running is debris at once.)
pub(crate) const STAGING_MAX_AGE: Duration = Duration::from_secs(60);

/// What the sweep found and removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Staging files removed.
    pub removed: usize,
    /// Staging files left because their writer may still be at work (young, and not known dead).
    pub kept: usize,
}

/// A 4-digit tag of this host's name, so that the sweep tells this host's writers (whose liveness it can
/// check) from those of another machine sharing the directory (which it leaves to the age rule).
fn host_tag() -> u32 {
    static TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        // FNV-1a: stable across builds and processes, unlike std's hasher.
        let hash = name.trim().bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        hash % 10_000
    })
}

/// A fresh staging path beside `target`, for this process.
pub fn staging_path(target: &Path) -> PathBuf {
    staging_path_of(target, std::process::id())
}

/// A fresh staging path beside `target` as the process `pid` of this host names it: what a file store's
/// writer leaves if it dies mid-write (tools and tests make debris with it).
pub fn staging_path_of(target: &Path, pid: u32) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = target.as_os_str().to_owned();
    name.push(format!(
        "#{:04}{pid:010}{}",
        host_tag(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    PathBuf::from(name)
}

/// Whether a file name is a staging name (Ferry's `<name>#<digits>` or `object_store`'s `<name>#<n>`):
/// a file no reader ever sees, and debris once its writer is gone.
pub fn is_staging_name(name: &str) -> bool {
    staging_writer(name).is_some()
}

/// Whether `name` is a staging name (Ferry's or `object_store`'s), and if it is Ferry's, the host tag
/// and process id of its writer.
fn staging_writer(name: &str) -> Option<Option<(u32, u32)>> {
    let (_, digits) = name.rsplit_once('#')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() < 15 {
        return Some(None);
    }
    let host = digits[..4].parse().ok()?;
    let pid = digits[4..14].parse().ok()?;
    Some(Some((host, pid)))
}

/// Whether the staging file `name`, last changed at `changed`, is debris: old, or written by a process of
/// this host that is gone. A process of this host that is running (the current one included: a reloaded
/// configuration may open the store again while the old one is writing) keeps its young files.
fn is_debris(name: &str, changed: SystemTime, now: SystemTime) -> Option<bool> {
    let writer = staging_writer(name)?;
    let old = now.duration_since(changed).unwrap_or_default() >= STAGING_MAX_AGE;
    let dead = match writer {
        Some((host, pid)) if host == host_tag() => !is_running(pid),
        _ => false,
    };
    Some(old || dead)
}

/// Whether the process `pid` of this host is running: a zombie (killed, not yet reaped) is not, though
/// its `/proc` entry remains.
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ...`; comm may hold spaces and parentheses.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

/// Removes the staging debris under `root` (the whole tree, symlinks not followed). Returns what it did;
/// a file it cannot remove is logged and counted as kept.
pub fn sweep(root: &Path) -> Swept {
    let mut swept = Swept::default();
    let now = SystemTime::now();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // The ctime moves on every write and on a hard link, so a staging link of an old file is young.
            let changed = entry.metadata().map(|m| changed_at(&m)).unwrap_or(now);
            match is_debris(name, changed, now) {
                Some(true) => match std::fs::remove_file(entry.path()) {
                    Ok(()) => swept.removed += 1,
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove staging debris");
                        swept.kept += 1;
                    }
                },
                Some(false) => swept.kept += 1,
                None => {}
            }
        }
    }
    swept
}

fn changed_at(metadata: &std::fs::Metadata) -> SystemTime {
    use std::os::unix::fs::MetadataExt;
    let ctime = SystemTime::UNIX_EPOCH + Duration::from_secs(metadata.ctime().max(0) as u64);
    metadata.modified().map_or(ctime, |m| m.max(ctime))
}

/// Makes `dir` exist, and durably so when `durable`: each directory it creates is fsynced into its parent.
pub fn create_dirs(dir: &Path, durable: bool) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    if durable {
        for created in &missing {
            if let Some(parent) = created.parent() {
                sync_dir(parent)?;
            }
        }
    }
    Ok(())
}

/// Makes the entries of `dir` (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Runs `fill` on a fresh staging file beside `target`, fsyncs it when `durable`, and renames it to
/// `target`. The staging file is removed if any step fails. The directory entry is not synced here.
fn stage_then_rename(
    target: &Path,
    durable: bool,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let staging = staging_path(target);
    let done = fill(&staging)
        .and_then(|()| {
            if durable {
                // Opened for writing: some filesystems refuse fsync on a read-only descriptor.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&staging)?
                    .sync_all()?;
            }
            Ok(())
        })
        .and_then(|()| std::fs::rename(&staging, target));
    if done.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    done
}

/// Writes `bytes` as `target`, whole or not at all.
pub fn write_file(target: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    stage_then_rename(target, durable, |staging| {
        File::create_new(staging)?.write_all(bytes)
    })
}

/// Puts the file `source` at `target`: a hard link (a copy when the two are on different filesystems).
pub fn link_file(source: &Path, target: &Path, durable: bool) -> io::Result<()> {
    stage_then_rename(target, durable, |staging| {
        if std::fs::hard_link(source, staging).is_err() {
            std::fs::copy(source, staging)?;
        }
        Ok(())
    })
}

/// Why [`write_stream`] failed: the stream's own error, or the filesystem's.
pub enum StreamFailure {
    Source(io::Error),
    Write(io::Error),
}

impl From<io::Error> for StreamFailure {
    fn from(e: io::Error) -> Self {
        StreamFailure::Write(e)
    }
}

/// Writes a stream of chunks as `target`, whole or not at all.
pub async fn write_stream(
    target: &Path,
    mut chunks: BoxStream<'static, io::Result<Bytes>>,
    durable: bool,
) -> Result<(), StreamFailure> {
    let staging = staging_path(target);
    let written = async {
        let mut file = tokio::fs::File::create_new(&staging).await?;
        while let Some(chunk) = chunks.next().await {
            file.write_all(&chunk.map_err(StreamFailure::Source)?)
                .await?;
        }
        file.flush().await?;
        if durable {
            file.sync_all().await?;
        }
        drop(file);
        tokio::fs::rename(&staging, target).await?;
        Ok(())
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&staging).await;
    }
    written
}

/// What the write probe writes.
pub const PROBE_SIZE: usize = 64 * 1024;

/// Proves that `root` takes writes: a probe file (a staging name, so a crash leaves only debris the sweep
/// removes) is created, written, fsynced and removed. A full or read-only filesystem fails here.
pub fn probe_writes(root: &Path) -> io::Result<()> {
    let probe = staging_path(&root.join(".ferry-write-probe"));
    let written = File::create_new(&probe).and_then(|mut file| {
        // Room for a small version (three files of a few KiB each, a block apiece): a filesystem too
        // full to store one fails here rather than at the first fill.
        file.write_all(&[0u8; PROBE_SIZE])?;
        file.sync_all()
    });
    let removed = std::fs::remove_file(&probe);
    written?;
    removed?;
    sync_dir(root)
}

/// Where `root/key` leads once every symlink is resolved, if that is inside `root` (itself resolved);
/// `Ok(None)` when it leads outside. A missing file is the caller's to report.
pub fn resolve_inside(root: &Path, key: &str) -> io::Result<Option<PathBuf>> {
    let resolved = std::fs::canonicalize(root.join(key))?;
    Ok(resolved.starts_with(root).then_some(resolved))
}

/// Opens the regular file `root/key` for reading, with its length, if it resolves inside `root` and is the
/// file the resolution found (a symlink swapped in between the check and the open is refused): `Ok(None)`
/// when it leads outside or was swapped. One call on the blocking pool does what a resolution and
/// object_store's open did in two (each a hand-off: a fifth of those of a 1 MiB zip).
pub fn open_inside(root: &Path, key: &str) -> io::Result<Option<(File, u64)>> {
    let Some(resolved) = resolve_inside(root, key)? else {
        return Ok(None);
    };
    let expected = identity(&std::fs::metadata(resolved)?);
    let file = File::open(root.join(key))?;
    let metadata = file.metadata()?;
    if identity(&metadata) != expected || !metadata.is_file() {
        return Ok(None);
    }
    Ok(Some((file, metadata.len())))
}

/// Whether a failed lookup means only that there is no such file: missing, a file where a directory
/// should be, or a name too long for the filesystem (a client's long path element is a miss, not a fault).
pub fn names_nothing(e: &io::Error) -> bool {
    const ENAMETOOLONG: i32 = 36;
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename
    ) || e.raw_os_error() == Some(ENAMETOOLONG)
}

/// The identity of a file (device and inode), to check that the file opened is the one resolved.
pub fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// The bytes `range` of `file` (all of them for a whole zip, a part for a `Range` request) as a stream of
/// chunks of at most `chunk` bytes. A chunk the page cache
/// holds is read right here, on the runtime's thread (`preadv2` with `RWF_NOWAIT`, which copies from the
/// cache or says it would block): a hand-off to the blocking pool per chunk cost two thread wake-ups, a
/// quarter of the CPU time of serving a zip (`perf record` under `benches/load.sh`'s 1 MiB zip load:
/// futex wake-ups and the pool's context switches); with it (and the one-trip open and kept buffers below),
/// `benches/ab.sh` measured 1.64–1.75× the 1 MiB zips/s and 1.58–1.87× the 32 MiB zips/s of the build
/// before (see `benches/README.md`, "Serving from a file store"). Only what the cache does not hold, and
/// every read on a filesystem without `RWF_NOWAIT`, goes to the blocking pool, so a disk read never stalls the
/// runtime. Either way each read goes straight into the buffer it is sent in. (A `tokio::fs::File` behind a
/// `ReaderStream` holds a buffer of its own as large as the read, kept between reads, besides the chunk it
/// fills: for a client that stopped reading, that was a second 256 KiB held for nothing,
/// `benches/stalled.sh`.)
pub fn read_chunks(
    file: File,
    range: std::ops::Range<u64>,
    chunk: usize,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let file = std::sync::Arc::new(file);
    let len = range.end;
    // The state: the offset, and whether reads from the cache may still be tried here.
    futures::stream::try_unfold((range.start, true), move |(offset, inline)| {
        let file = file.clone();
        async move {
            if offset >= len {
                return Ok(None);
            }
            let want = (len - offset).min(chunk as u64) as usize;
            let buf = take_buffer(want);
            let (cached, inline) = if inline {
                match read_cached(&file, offset, buf) {
                    Cached::Read(read) => (Ok(read), true),
                    Cached::WouldBlock(buf) => (Err(buf), true),
                    Cached::Unsupported(buf) => (Err(buf), false),
                }
            } else {
                (Err(buf), false)
            };
            let read = match cached {
                Ok(read) => read,
                Err(buf) => tokio::task::spawn_blocking(move || read_at(&file, offset, buf))
                    .await
                    .map_err(io::Error::other)??,
            };
            if read.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ended at {offset} of {len} bytes"),
                ));
            }
            let next = offset + read.len() as u64;
            Ok(Some((lend(read), (next, inline))))
        }
    })
}

/// Chunk buffers that were sent and came back, to be read into again by any stream: no allocation, and no
/// zeroing (the `RWF_NOWAIT` read takes initialized memory) per chunk (zeroing fresh buffers was 4% of the
/// CPU time of 1 MiB zips under `benches/load.sh`, in `perf record`). One list for the process, of at most
/// [`KEPT_BUFFERS`]: a list per stream kept a buffer for every HTTP/2 stream waiting for its connection's
/// budget (`benches/stalled.sh 200 20 100 14` peaked at 115 MB with one, 71 MB without).
static KEPT: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// At most this many buffers wait in [`KEPT`]: 2 MiB of 128 KiB chunks, enough for the chunks in flight on
/// a busy 2-core server, nothing next to what stalled clients hold.
const KEPT_BUFFERS: usize = 16;

/// A buffer of `len` initialized bytes: one that came back, or a new one.
fn take_buffer(len: usize) -> Vec<u8> {
    let kept = KEPT.lock().ok().and_then(|mut kept| kept.pop());
    // One too small (a file's short last chunk) would be grown by a copy: a new one costs no more.
    let mut buf = kept.filter(|buf| buf.len() >= len).unwrap_or_default();
    buf.resize(len, 0);
    buf
}

/// `buf` as the bytes of a chunk; it is kept for another read once every copy of it is dropped (sent).
fn lend(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Lent(buf))
}

/// A chunk's buffer, out in a `Bytes`.
struct Lent(Vec<u8>);

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // Only a whole buffer is worth keeping: one cut short (a file's last chunk) would be zeroed again.
        if self.0.len() != self.0.capacity() {
            return;
        }
        if let Ok(mut kept) = KEPT.lock()
            && kept.len() < KEPT_BUFFERS
        {
            kept.push(std::mem::take(&mut self.0));
        }
    }
}

/// What a read from the page cache alone gave; the buffer comes back with it either way.
enum Cached {
    /// Some bytes (maybe fewer than asked: the rest is not cached, or the file ends).
    Read(Vec<u8>),
    /// Nothing without waiting for the disk (or a lock): the blocking pool reads it.
    WouldBlock(Vec<u8>),
    /// This file cannot be read so (no `RWF_NOWAIT` on its filesystem, or any other failure, which the
    /// blocking read then meets and reports): its reads all go to the blocking pool.
    Unsupported(Vec<u8>),
}

/// Reads into `buf` at `offset` what the page cache holds of it, without ever waiting for the disk.
fn read_cached(file: &File, offset: u64, mut buf: Vec<u8>) -> Cached {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    loop {
        let read = preadv2(
            file,
            &mut [io::IoSliceMut::new(&mut buf)],
            offset,
            ReadWriteFlags::NOWAIT,
        );
        return match read {
            // 0 is the end of the file, which the blocking read reports as such.
            Ok(0) => Cached::WouldBlock(buf),
            Ok(n) => {
                buf.truncate(n);
                Cached::Read(buf)
            }
            Err(Errno::AGAIN) => Cached::WouldBlock(buf),
            Err(Errno::INTR) => continue,
            Err(_) => Cached::Unsupported(buf),
        };
    }
}

/// Fills `buf` from `offset` (less only at the end of the file), blocking: on the blocking pool.
pub(crate) fn read_at(file: &File, offset: u64, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
