//! The work dir belongs to one process: an exclusive lock on it, and only then the sweep of what a killed
//! run left in it.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::FetchError;
use crate::scratch::{self, SCRATCH_PREFIX};

/// A work dir locked for this process: no other process (and no other `WorkDir` of this one) can lock it
/// while this value lives. The lock goes with the value, or with the process however it ends (the kernel
/// drops it with the last descriptor), so a crashed Ferry never leaves a stale lock behind.
///
/// The lock is `flock(LOCK_EX)` on the directory itself, not on a file in it: nothing is added to the
/// directory, so nothing can be swept away with it or mistaken for a fill's leftovers. It needs a file
/// system with `flock` (any local one); the descriptor is close-on-exec, so no `go` child holds it.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Creates `path` if missing, takes its lock, and then removes the `go-*` temporary directories a
    /// killed earlier run left in it. Fails with `WorkDirBusy` (naming the directory and the fix) when
    /// another process holds it: a second Ferry started on the same work dir stops here, before it touches
    /// anything of the first one's fills.
    pub async fn lock(path: impl Into<PathBuf>) -> Result<WorkDir, FetchError> {
        let path = path.into();
        tokio::task::spawn_blocking(move || WorkDir::lock_blocking(path))
            .await
            .map_err(|e| FetchError::io("locking the work dir", std::io::Error::other(e)))?
    }

    fn lock_blocking(path: PathBuf) -> Result<WorkDir, FetchError> {
        std::fs::create_dir_all(&path)
            .map_err(|e| FetchError::io(format!("creating work dir {}", path.display()), e))?;
        let lock = File::open(&path)
            .map_err(|e| FetchError::io(format!("opening work dir {}", path.display()), e))?;
        match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(FetchError::WorkDirBusy { path }),
            Err(e) => {
                return Err(FetchError::io(
                    format!(
                        "locking work dir {} (it must be on a file system with flock)",
                        path.display()
                    ),
                    e.into(),
                ));
            }
        }
        let removed = remove_leftovers(&path).map_err(|e| {
            FetchError::io(
                format!(
                    "removing leftover temporary directories in {}",
                    path.display()
                ),
                e,
            )
        })?;
        if removed > 0 {
            tracing::info!(
                removed,
                work_dir = %path.display(),
                "removed temporary directories left by an earlier run"
            );
        }
        Ok(WorkDir { path, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes the `go-*` temporary directories in `work_dir`; anything else is left alone.
fn remove_leftovers(work_dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(work_dir)? {
        let entry = entry?;
        let is_scratch = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(SCRATCH_PREFIX));
        if is_scratch && entry.file_type()?.is_dir() {
            scratch::remove_tree(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
