//! Hot zips: the zips of a local store asked for again and again, kept whole in memory, each answer
//! checked against the file still on disk.
//!
//! Serving a stored zip from a file copies it twice (page cache to a buffer, buffer to the socket), where
//! nginx's `sendfile` copies it once: under `benches/load.sh`'s 1 MiB zips Ferry spent 404 µs of CPU per
//! zip to nginx's 299 µs, most of the difference the first copy and the open's trip to the blocking pool.
//! A zip served from memory costs one copy, like nginx's (209 µs per 1 MiB zip, measured with the first
//! version of this cache; see `benches/README.md`, "CPU per request, and hot zips in memory").
//!
//! That first version was removed because its copy outlived the file: `ferry check-store --remove`, run by
//! another process, deleted a bad zip and the server went on serving it from memory. So every answer from
//! memory is checked here against the file's identity, as the path names it now: device, inode, size,
//! modification and change times (`statx`, one system call on a cached directory entry, never waiting on a
//! network filesystem's server: `AT_STATX_DONT_SYNC`). Ferry never rewrites a stored file in place (it
//! writes a staging file and renames it), so a file removed, replaced or rewritten by anyone fails the check,
//! and its copy is dropped. Each kept zip holds its file open: a removed file's inode number cannot be given
//! to a new file while it is held, so a replacement of the same size written within the same clock tick (file
//! times are kept to a few milliseconds) still has another inode.
//!
//! Bounded: a zip is kept only when it is asked for whole a second time (a one-off download, such as a
//! mirror filling or a CI job's cold cache, does not push out the hot ones), is at most `max_zip` bytes,
//! and fits in `max_bytes`, which counts every kept buffer until its last reader has sent it (a stalled
//! client holding a copy that was pushed out still counts), so the memory this cache holds never exceeds it.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// How much of a local store's hot zips is kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotZipSettings {
    /// The most bytes of zips kept, counting copies still being sent (0: none kept).
    pub max_bytes: usize,
    /// The largest zip kept.
    pub max_zip: usize,
}

impl Default for HotZipSettings {
    fn default() -> Self {
        HotZipSettings {
            max_bytes: 64 << 20,
            max_zip: 4 << 20,
        }
    }
}

/// What the hot zips of every file store of this process have done, for metrics (a process serves one
/// store; a reloaded configuration's store adds to the same totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotZipTotals {
    /// Zip answers (whole or a part) sent from memory.
    pub hits: u64,
    /// Zip answers read from the file by a store that keeps hot zips.
    pub misses: u64,
    /// Bytes of zips in memory now: kept, or still being sent.
    pub bytes: u64,
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// The totals of this process's hot zips so far.
pub fn hot_zip_totals() -> HotZipTotals {
    HotZipTotals {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    }
}

/// What identifies a file's contents without reading them: it changes when the file is removed, replaced
/// or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: (u32, u32),
    ino: u64,
    size: u64,
    modified: (i64, u32),
    changed: (i64, u32),
}

impl Stamp {
    fn of(statx: &rustix::fs::Statx) -> Stamp {
        Stamp {
            dev: (statx.stx_dev_major, statx.stx_dev_minor),
            ino: statx.stx_ino,
            size: statx.stx_size,
            modified: (statx.stx_mtime.tv_sec, statx.stx_mtime.tv_nsec),
            changed: (statx.stx_ctime.tv_sec, statx.stx_ctime.tv_nsec),
        }
    }

    /// The stamp of the file the path names now (not following a symlink at its end): `None` when there is
    /// none, or it cannot be known without waiting.
    pub(crate) fn of_path(path: &std::path::Path) -> Option<Stamp> {
        use rustix::fs::{AtFlags, CWD, statx};
        let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC;
        statx(CWD, path, flags, Self::wanted())
            .ok()
            .map(|s| Stamp::of(&s))
    }

    /// The stamp of an open file.
    pub(crate) fn of_file(file: &std::fs::File) -> std::io::Result<Stamp> {
        use rustix::fs::{AtFlags, statx};
        let found = statx(file, "", AtFlags::EMPTY_PATH, Self::wanted())?;
        Ok(Stamp::of(&found))
    }

    fn wanted() -> rustix::fs::StatxFlags {
        use rustix::fs::StatxFlags;
        StatxFlags::INO | StatxFlags::SIZE | StatxFlags::MTIME | StatxFlags::CTIME
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// Whether the directory `root` is on a filesystem whose files can change without this host knowing at
/// once (NFS, SMB, FUSE, Ceph, ...): there a file's `statx` may answer from attributes cached for up to a
/// minute (NFS's `acregmax`), so a zip deleted by another host could be served from memory meanwhile, where
/// opening the file (close-to-open consistency) would have found it gone; and asking the server for every
/// answer would wait on the network on the runtime's threads. Hot zips are kept on local filesystems only.
pub(crate) fn is_remote_filesystem(root: &std::path::Path) -> bool {
    const REMOTE: [u64; 9] = [
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x6573_5546, // FUSE
        0x00C3_6400, // Ceph
        0x0BD0_0BD0, // Lustre
        0x0102_1997, // 9p
        0x4750_4653, // GPFS
    ];
    match rustix::fs::statfs(root) {
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        Ok(found) => REMOTE.contains(&(found.f_type as u64)),
        Err(_) => true,
    }
}

/// The hot zips of one local store.
pub(crate) struct HotZips {
    settings: HotZipSettings,
    state: Mutex<State>,
    /// Bytes of every buffer this cache made that is still alive: kept, or pushed out but still being sent.
    live: Arc<AtomicUsize>,
}

impl std::fmt::Debug for HotZips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotZips")
            .field("settings", &self.settings)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    kept: HashMap<Box<str>, Kept>,
    /// Zips asked for whole once and not kept (yet): the second ask keeps one.
    seen: HashMap<Box<str>, ()>,
    /// Zips being read to be kept: the asks that come meanwhile stream from the file rather than read
    /// another copy (2200 stalled requests of one 1 MiB zip, arriving together, held 32 copies before).
    reading: std::collections::HashSet<Box<str>>,
    /// A counter of uses, for pushing out the least recently used.
    tick: u64,
}

struct Kept {
    zip: Bytes,
    stamp: Stamp,
    /// Held open so that its inode number is not reused while the copy is kept.
    _file: std::fs::File,
    used: u64,
}

/// At most this many zips are remembered as asked for once; past it the memory of them starts over.
const SEEN: usize = 4096;

/// At most this many zips are kept (each holds its file open), whatever their sizes.
const KEPT: usize = 1024;

/// Room taken in a [`HotZips`] for one zip about to be read, given back unless the zip is kept.
#[derive(Debug)]
pub(crate) struct Room {
    len: usize,
    live: Arc<AtomicUsize>,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.live.fetch_sub(self.len, Ordering::Relaxed);
        BYTES.fetch_sub(self.len as u64, Ordering::Relaxed);
    }
}

/// A zip being read to be kept: while it is, other asks for it stream from the file. Dropped once the zip
/// is kept, or its read failed, or the request that reads it went away (a client that hung up).
pub(crate) struct Reading<'a> {
    hot: &'a HotZips,
    key: Box<str>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.hot.state.lock() {
            state.reading.remove(&self.key);
        }
    }
}

/// A kept zip's buffer: its room is given back when the last copy of it is dropped.
struct Held {
    bytes: Vec<u8>,
    _room: Room,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl HotZips {
    /// `None` when `settings` keep nothing.
    pub(crate) fn new(settings: HotZipSettings) -> Option<HotZips> {
        (settings.max_bytes > 0 && settings.max_zip > 0).then(|| HotZips {
            settings,
            state: Mutex::default(),
            live: Arc::default(),
        })
    }

    /// The kept zip under `key` if the file `path` (the key's file) is still the one it was read from;
    /// a copy that no longer is is dropped.
    pub(crate) fn get(&self, key: &str, path: &std::path::Path) -> Option<Bytes> {
        let found = self.kept(key).filter(|(_, stamp)| {
            let same = Stamp::of_path(path) == Some(*stamp);
            if !same {
                self.forget(key);
            }
            same
        });
        let counter = if found.is_some() { &HITS } else { &MISSES };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(|(zip, _)| zip)
    }

    /// The copy kept under `key` and the stamp of its file, marked used.
    fn kept(&self, key: &str) -> Option<(Bytes, Stamp)> {
        let mut state = self.state.lock().ok()?;
        state.tick += 1;
        let tick = state.tick;
        let kept = state.kept.get_mut(key)?;
        kept.used = tick;
        Some((kept.zip.clone(), kept.stamp))
    }

    /// Room for the zip under `key` of `len` bytes, asked for whole, when it should be kept: asked for
    /// before, small enough, not being read already, and with room in the budget once the least recently
    /// used are pushed out. Other asks stream from the file while the `Reading` lives.
    pub(crate) fn room(&self, key: &str, len: u64) -> Option<(Room, Reading<'_>)> {
        let len = usize::try_from(len).ok()?;
        if len == 0 || len > self.settings.max_zip {
            return None;
        }
        let mut state = self.state.lock().ok()?;
        if state.reading.contains(key) {
            return None;
        }
        if state.seen.remove(key).is_none() {
            if state.seen.len() >= SEEN {
                state.seen.clear();
            }
            state.seen.insert(key.into(), ());
            return None;
        }
        loop {
            let live = self.live.load(Ordering::Relaxed);
            if live + len <= self.settings.max_bytes && state.kept.len() < KEPT {
                self.live.fetch_add(len, Ordering::Relaxed);
                BYTES.fetch_add(len as u64, Ordering::Relaxed);
                state.reading.insert(key.into());
                let room = Room {
                    len,
                    live: self.live.clone(),
                };
                let reading = Reading {
                    hot: self,
                    key: key.into(),
                };
                return Some((room, reading));
            }
            // Push out the least recently used; its room comes back once nobody is sending it.
            let oldest = state
                .kept
                .iter()
                .min_by_key(|(_, kept)| kept.used)
                .map(|(key, _)| key.clone())?;
            state.kept.remove(&oldest);
        }
    }

    /// Keeps `bytes`, read from `file` (of stamp `stamp`) into `room`, under `key`; returns them as sent.
    pub(crate) fn keep(
        &self,
        key: &str,
        (bytes, stamp, file): (Vec<u8>, Stamp, std::fs::File),
        room: Room,
    ) -> Bytes {
        let zip = Bytes::from_owner(Held { bytes, _room: room });
        if let Ok(mut state) = self.state.lock() {
            state.tick += 1;
            let used = state.tick;
            let kept = Kept {
                zip: zip.clone(),
                stamp,
                _file: file,
                used,
            };
            state.kept.insert(key.into(), kept);
        }
        zip
    }

    /// Drops the copy under `key` (its file was removed or replaced).
    pub(crate) fn forget(&self, key: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.kept.remove(key);
        }
    }

    /// Bytes of zips in memory now (kept, or still being sent).
    #[cfg(test)]
    fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Reads the file at `path` and keeps it when the cache takes it.
    fn read(hot: &HotZips, key: &str, path: &std::path::Path) -> Option<Bytes> {
        let bytes = std::fs::read(path).unwrap();
        let (room, _reading) = hot.room(key, bytes.len() as u64)?;
        let file = std::fs::File::open(path).unwrap();
        let stamp = Stamp::of_file(&file).unwrap();
        Some(hot.keep(key, (bytes, stamp, file), room))
    }

    #[test]
    fn a_zip_is_kept_when_asked_for_twice_and_dropped_when_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let hot = HotZips::new(HotZipSettings {
            max_bytes: 100,
            max_zip: 50,
        })
        .unwrap();
        let a = file(dir.path(), "a", &[1; 40]);
        assert!(read(&hot, "a", &a).is_none(), "kept at the first ask");
        assert!(read(&hot, "a", &a).is_some());
        assert_eq!(hot.get("a", &a).as_deref(), Some(&[1; 40][..]));

        // Replaced as a store writes (a new file renamed over it): the copy is not served.
        let staged = file(dir.path(), "a#1", &[2; 40]);
        std::fs::rename(&staged, &a).unwrap();
        assert_eq!(hot.get("a", &a), None);
        assert_eq!(hot.live(), 0, "the dropped copy still counts");

        // Removed: not served either.
        read(&hot, "a", &a);
        assert!(read(&hot, "a", &a).is_some());
        std::fs::remove_file(&a).unwrap();
        assert_eq!(hot.get("a", &a), None);
    }

    #[test]
    fn a_local_directory_keeps_hot_zips_and_one_that_cannot_be_asked_does_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_remote_filesystem(dir.path()));
        assert!(is_remote_filesystem(&dir.path().join("missing")));
    }

    #[test]
    fn asks_that_come_while_a_zip_is_read_to_be_kept_do_not_read_another_copy() {
        let hot = HotZips::new(HotZipSettings::default()).unwrap();
        assert!(hot.room("a", 10).is_none());
        let reading = hot.room("a", 10).expect("the second ask keeps it");
        // Meanwhile, however many asks come, none reads another copy.
        for _ in 0..4 {
            assert!(hot.room("a", 10).is_none());
        }
        // That read failed, or its client hung up: a later ask may try again.
        drop(reading);
        assert_eq!(hot.live(), 0);
        assert!(hot.room("a", 10).is_none());
        assert!(hot.room("a", 10).is_some());
    }

    #[test]
    fn the_budget_counts_copies_still_being_sent() {
        let dir = tempfile::tempdir().unwrap();
        let hot = HotZips::new(HotZipSettings {
            max_bytes: 100,
            max_zip: 60,
        })
        .unwrap();
        let big = file(dir.path(), "big", &[0; 61]);
        read(&hot, "big", &big);
        assert!(read(&hot, "big", &big).is_none(), "a zip over max_zip kept");

        let (a, b) = (
            file(dir.path(), "a", &[1; 60]),
            file(dir.path(), "b", &[2; 60]),
        );
        read(&hot, "a", &a);
        let sending = read(&hot, "a", &a).unwrap();
        read(&hot, "b", &b);
        // b pushes a out, but a's copy is still being sent: no room for b.
        assert!(read(&hot, "b", &b).is_none());
        assert_eq!(hot.get("a", &a), None, "a was not pushed out");
        assert_eq!(hot.live(), 60);
        drop(sending);
        assert_eq!(hot.live(), 0);
        read(&hot, "b", &b);
        assert!(read(&hot, "b", &b).is_some());
        assert_eq!(hot.live(), 60);
    }
}
