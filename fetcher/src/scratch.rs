//! Temporary directories for go commands, removed when dropped.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::ScratchLayout;
use crate::error::FetchError;

/// Name prefix of every temporary directory under the work dir.
pub(crate) const SCRATCH_PREFIX: &str = "go-";

/// One go command's temporary directory (working directory and caches). Removed, read-only module
/// cache files included, when dropped: on success after the caller is done with the files, on
/// failure, on timeout and when the future running the command is dropped.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    root: PathBuf,
    layout: ScratchLayout,
}

impl ScratchDir {
    /// Creates a fresh directory under `work_dir` with an empty working directory inside, and go's
    /// own home, in which telemetry is off.
    pub fn create(work_dir: &Path) -> Result<ScratchDir, FetchError> {
        let root = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(work_dir)
            .map_err(|e| {
                FetchError::io(
                    format!("creating a temporary directory in {}", work_dir.display()),
                    e,
                )
            })?
            // Removal is ours (see Drop): tempfile's would fail on go's read-only files.
            .keep();
        let scratch = ScratchDir {
            layout: ScratchLayout::under(&root),
            root,
        };
        fs::create_dir(&scratch.layout.cwd)
            .map_err(|e| FetchError::io(format!("creating {}", scratch.layout.cwd.display()), e))?;
        // go reads its telemetry mode from this file only (a GOTELEMETRY variable is ignored; go1.26
        // says `go env GOTELEMETRY` = `local` with GOTELEMETRY=off set): without it, every command
        // would write counters into its home. `off` is what `go telemetry off` writes.
        let telemetry = scratch.layout.home.join(".config/go/telemetry");
        fs::create_dir_all(&telemetry)
            .and_then(|()| fs::write(telemetry.join("mode"), "off"))
            .map_err(|e| FetchError::io(format!("creating {}", telemetry.display()), e))?;
        Ok(scratch)
    }

    /// Links the `.netrc` that `env` names into go's own home, when `HOME` is that home: `git`, which go
    /// runs to clone over HTTPS, reads credentials only from `$HOME/.netrc` (curl reads no `NETRC`
    /// variable), so without the link a `.netrc` that go itself honours would be lost on git. A missing file
    /// or a relative path is left alone; a link that cannot be made is logged, and the fetch goes on.
    pub fn link_netrc(&self, env: &std::collections::BTreeMap<String, String>) {
        let home = &self.layout.home;
        if env.get("HOME").map(Path::new) != Some(home.as_path()) {
            return;
        }
        let Some(netrc) = env.get("NETRC").map(Path::new) else {
            return;
        };
        if !netrc.is_absolute() || !netrc.is_file() {
            return;
        }
        if let Err(error) = std::os::unix::fs::symlink(netrc, home.join(".netrc")) {
            tracing::warn!(%error, "could not give git the .netrc; git over HTTPS will have no credentials from it");
        }
    }

    pub fn layout(&self) -> &ScratchLayout {
        &self.layout
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` is inside this directory (go's answer names files in our caches only).
    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(error) = remove_tree(&self.root) {
            tracing::warn!(dir = %self.root.display(), %error, "could not remove a go temporary directory");
        }
    }
}

/// Removes `root` and everything in it, first making directories writable: go leaves the module
/// cache read-only, and a file in a read-only directory cannot be unlinked.
pub(crate) fn remove_tree(root: &Path) -> io::Result<()> {
    // A killed go may still be finishing a write while we remove; a second pass picks that up.
    let mut last_error = None;
    for _ in 0..3 {
        make_dirs_writable(root);
        match fs::remove_dir_all(root) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("removal failed")))
}

/// `chmod -R u+w` on the directories under `dir` (files need no write permission to be removed).
/// Symbolic links are not followed. Errors are ignored: removal reports what is left.
fn make_dirs_writable(dir: &Path) {
    let Ok(metadata) = fs::symlink_metadata(dir) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let mut permissions = metadata.permissions();
    if permissions.mode() & 0o700 != 0o700 {
        permissions.set_mode(permissions.mode() | 0o700);
        let _ = fs::set_permissions(dir, permissions);
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_dirs_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn drop_removes_read_only_trees() {
        let work = tempfile::tempdir().unwrap();
        let scratch = ScratchDir::create(work.path()).unwrap();
        let root = scratch.root().to_path_buf();
        assert!(scratch.layout().cwd.is_dir());
        // The shape go leaves behind: read-only files inside read-only directories.
        let module_dir = root.join("gomodcache/example.com/hello@v1.0.0/sub");
        fs::create_dir_all(&module_dir).unwrap();
        fs::write(module_dir.join("hello.go"), "package hello\n").unwrap();
        set_mode(&module_dir.join("hello.go"), 0o444);
        set_mode(&module_dir, 0o555);
        set_mode(module_dir.parent().unwrap(), 0o555);

        drop(scratch);
        assert!(!root.exists());
        assert_eq!(fs::read_dir(work.path()).unwrap().count(), 0);
    }

    #[test]
    fn read_only_directories_are_made_writable() {
        // The test above passes as root without the chmod (root ignores permissions); this one
        // checks the chmod itself.
        let work = tempfile::tempdir().unwrap();
        let nested = work.path().join("a/b");
        fs::create_dir_all(&nested).unwrap();
        set_mode(&nested, 0o555);
        set_mode(&work.path().join("a"), 0o500);
        make_dirs_writable(&work.path().join("a"));
        for dir in [work.path().join("a"), nested] {
            let mode = fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o700, 0o700, "{}: {mode:o}", dir.display());
        }
    }

    #[test]
    fn contains_only_paths_inside() {
        let work = tempfile::tempdir().unwrap();
        let scratch = ScratchDir::create(work.path()).unwrap();
        assert!(scratch.contains(&scratch.root().join("gomodcache/x.zip")));
        assert!(!scratch.contains(&work.path().join("other/x.zip")));
    }

    #[test]
    fn git_finds_the_netrc_in_gos_own_home_and_nothing_else_is_linked() {
        let work = tempfile::tempdir().unwrap();
        let netrc = work.path().join("netrc");
        fs::write(&netrc, "machine h login u password p\n").unwrap();
        let scratch = ScratchDir::create(work.path()).unwrap();
        let home = scratch.layout().home.display().to_string();
        let env = |pairs: &[(&str, String)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let linked = scratch.layout().home.join(".netrc");
        // A HOME of the operator's own (go_env): theirs to set up.
        scratch.link_netrc(&env(&[
            ("HOME", "/elsewhere".into()),
            ("NETRC", netrc.display().to_string()),
        ]));
        scratch.link_netrc(&env(&[
            ("HOME", home.clone()),
            ("NETRC", work.path().join("missing").display().to_string()),
        ]));
        assert!(fs::symlink_metadata(&linked).is_err());
        scratch.link_netrc(&env(&[
            ("HOME", home),
            ("NETRC", netrc.display().to_string()),
        ]));
        assert_eq!(
            fs::read_to_string(&linked).unwrap(),
            "machine h login u password p\n"
        );
    }
}
