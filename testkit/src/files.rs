//! What a test checks on disk and in the process table after a fetch (the entries of a directory, the
//! processes still working under it), and a small tmpfs for a full or read-only disk.

use std::path::{Path, PathBuf};

/// The entries of `dir` (not recursive).
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Processes whose working directory is under `dir`: the go commands a fetcher started there.
pub fn processes_under(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) {
            pids.push(pid);
        }
    }
    pids
}

/// A tmpfs mounted for one test, unmounted when dropped; `None` (with the reason printed) where the
/// machine does not allow mounting.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` (e.g. `size=2m`) on a fresh temporary directory.
    pub fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                println!("SKIPPED: cannot mount a tmpfs ({options}): {}", why.trim());
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts it read-only (what a store meets when its disk is remounted `ro` after errors).
    pub fn remount_read_only(&self) {
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}
