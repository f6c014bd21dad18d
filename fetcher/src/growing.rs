//! A zip as it downloads: the scratch file the upstream's bytes land in, and how far they have come, so
//! that a reader (the proxy's clients) can pass them on before the whole zip is in and checked.
//!
//! The fetcher knows nothing of who reads: a fetch is handed a [`ZipTap`], and when the upstream answers
//! the zip with a 200 the tap's callback gets a [`GrowingZip`]. Readers read the file itself (positional
//! reads on one shared descriptor), never a channel of chunks, so a slow reader costs disk, not memory,
//! and the descriptor keeps the bytes readable after the scratch directory is removed.
//!
//! Until the fetch has verified the zip and the tap's owner has released it (the proxy: once it is stored),
//! the last [`HOLD_BACK`] bytes are never readable: a zip's hash covers every byte and its central directory
//! is at its end, so no reader can hold a complete zip that the checks then refuse.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

/// Bytes at the end of a zip that no reader gets before the zip is verified.
pub const HOLD_BACK: u64 = 64 << 10;

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipState {
    /// Bytes are coming, or all have come and the zip is being checked (and stored by the tap's owner).
    Downloading,
    /// Every check passed and the tap's owner released it: the whole file is the module's zip.
    Verified,
    /// The download or a check failed, or the fetch was dropped: the file is not the module's zip.
    Failed,
}

/// How much of the zip is on disk, and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipProgress {
    /// Bytes written to the file (and readable from it).
    pub written: u64,
    /// The length the upstream announced (`Content-Length`), if it did.
    pub expected: Option<u64>,
    pub state: ZipState,
}

impl ZipProgress {
    /// The bytes from the start of the file a reader may pass on now: all of them once verified, none once
    /// failed, else all but the last [`HOLD_BACK`] of the zip (of its announced length, when known, so that
    /// the bytes go on as they come).
    pub fn sendable(&self) -> u64 {
        match self.state {
            ZipState::Verified => self.written,
            ZipState::Failed => 0,
            ZipState::Downloading => {
                let end = self.expected.unwrap_or(self.written);
                self.written.min(end.saturating_sub(HOLD_BACK))
            }
        }
    }
}

/// A reader's handle on a zip that is downloading. Cheap to clone; each clone watches on its own.
#[derive(Clone)]
pub struct GrowingZip {
    file: Arc<std::fs::File>,
    progress: watch::Receiver<ZipProgress>,
}

impl std::fmt::Debug for GrowingZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrowingZip")
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

impl GrowingZip {
    /// Where the download stands now.
    pub fn progress(&mut self) -> ZipProgress {
        *self.progress.borrow_and_update()
    }

    /// Waits until the progress changes; false when it never will again (the fetch has ended: what
    /// [`GrowingZip::progress`] says then is final).
    pub async fn changed(&mut self) -> bool {
        self.progress.changed().await.is_ok()
    }

    /// Up to `len` bytes of the file from `offset` (on a blocking thread).
    pub async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0; len];
            let mut filled = 0;
            while filled < len {
                match file.read_at(&mut buffer[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buffer.truncate(filled);
            Ok(Bytes::from(buffer))
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// Passed to a fetch by whoever wants to read its zip as it downloads: `on_start` is called once the
/// upstream has answered the zip; the fetch reports its bytes and, at its end, whether the zip verified;
/// the owner then releases it ([`ZipTap::release`]), e.g. once it has stored it. Dropped before that, the
/// readers are told it failed.
pub struct ZipTap<'a> {
    on_start: Box<dyn Fn(GrowingZip) + Send + Sync + 'a>,
    sender: Mutex<Option<Arc<watch::Sender<ZipProgress>>>>,
    /// Set by the fetch once every check passed: only then can the owner release the zip.
    checked: std::sync::atomic::AtomicBool,
}

impl<'a> ZipTap<'a> {
    pub fn new(on_start: impl Fn(GrowingZip) + Send + Sync + 'a) -> ZipTap<'a> {
        ZipTap {
            on_start: Box::new(on_start),
            sender: Mutex::default(),
            checked: Default::default(),
        }
    }

    /// Whether the upstream's zip started coming.
    pub fn started(&self) -> bool {
        self.sender.lock().unwrap().is_some()
    }

    /// The zip is being written to the file `reader` reads: readers are told, and the download reports
    /// its bytes through the sender returned.
    pub(crate) fn start(
        &self,
        reader: std::fs::File,
        expected: Option<u64>,
    ) -> Arc<watch::Sender<ZipProgress>> {
        let (sender, progress) = watch::channel(ZipProgress {
            written: 0,
            expected,
            state: ZipState::Downloading,
        });
        let sender = Arc::new(sender);
        // A later start (a second attempt) replaces the first, which is failed first.
        self.fail();
        self.checked
            .store(false, std::sync::atomic::Ordering::Release);
        *self.sender.lock().unwrap() = Some(sender.clone());
        (self.on_start)(GrowingZip {
            file: Arc::new(reader),
            progress,
        });
        sender
    }

    /// The zip passed every check: its owner may release it.
    pub(crate) fn verified(&self) {
        self.checked
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Lets the readers have the whole zip, if the fetch verified it; false (and nothing changes) if not.
    pub fn release(&self) -> bool {
        let checked = self.checked.load(std::sync::atomic::Ordering::Acquire);
        if checked {
            self.end(ZipState::Verified);
        }
        checked
    }

    /// The zip is not the module's (or not complete).
    pub(crate) fn fail(&self) {
        self.end(ZipState::Failed);
    }

    fn end(&self, state: ZipState) {
        if let Some(sender) = self.sender.lock().unwrap().as_ref() {
            sender.send_if_modified(|progress| {
                let open = progress.state == ZipState::Downloading;
                if open {
                    progress.state = state;
                }
                open
            });
        }
    }
}

impl Drop for ZipTap<'_> {
    fn drop(&mut self) {
        self.fail();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(written: u64, expected: Option<u64>, state: ZipState) -> u64 {
        ZipProgress {
            written,
            expected,
            state,
        }
        .sendable()
    }

    #[test]
    fn the_tail_is_held_back_until_verified() {
        let mib = 1 << 20;
        // Announced length: bytes go on as they come, but never the last HOLD_BACK.
        assert_eq!(at(1000, Some(mib), ZipState::Downloading), 1000);
        assert_eq!(at(mib, Some(mib), ZipState::Downloading), mib - HOLD_BACK);
        // No length: all but the last HOLD_BACK of what came.
        assert_eq!(at(1000, None, ZipState::Downloading), 0);
        assert_eq!(at(mib, None, ZipState::Downloading), mib - HOLD_BACK);
        assert_eq!(at(mib, None, ZipState::Verified), mib);
        assert_eq!(at(mib, Some(mib), ZipState::Failed), 0);
    }

    /// A file holding `hello` in `dir`, and a tap that hands its zip to the returned slot.
    fn hello_tap(
        dir: &std::path::Path,
    ) -> (
        std::path::PathBuf,
        Arc<Mutex<Option<GrowingZip>>>,
        ZipTap<'static>,
    ) {
        let path = dir.join("z");
        std::fs::write(&path, b"hello").unwrap();
        let got = Arc::new(Mutex::new(None));
        let tap = ZipTap::new({
            let got = got.clone();
            move |zip| *got.lock().unwrap() = Some(zip)
        });
        (path, got, tap)
    }

    #[tokio::test]
    async fn readers_see_the_bytes_and_a_dropped_tap_fails_them() {
        let dir = tempfile::tempdir().unwrap();
        let (path, got, tap) = hello_tap(dir.path());
        let sender = tap.start(std::fs::File::open(&path).unwrap(), None);
        sender.send_modify(|p| p.written = 5);
        let mut zip = got.lock().unwrap().take().unwrap();
        assert_eq!(zip.progress().written, 5);
        assert_eq!(&zip.read_at(1, 10).await.unwrap()[..], b"ello");
        // Not verified by the fetch: the owner cannot release it, and dropping the tap fails it.
        assert!(!tap.release());
        assert_eq!(zip.progress().state, ZipState::Downloading);
        drop(tap);
        assert_eq!(zip.progress().state, ZipState::Failed);
    }

    #[test]
    fn a_verified_zip_is_whole_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let (path, got, tap) = hello_tap(dir.path());
        tap.start(std::fs::File::open(&path).unwrap(), Some(5))
            .send_modify(|p| p.written = 5);
        let mut zip = got.lock().unwrap().take().unwrap();
        tap.verified();
        assert_eq!(zip.progress().sendable(), 0, "held back until released");
        assert!(tap.release());
        drop(tap);
        assert_eq!(zip.progress().state, ZipState::Verified);
        assert_eq!(zip.progress().sendable(), 5);
    }
}
