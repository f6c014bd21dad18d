//! A real browser for the tests of Ferry's pages: headless Chromium (from Debian's packages, installed by
//! `scripts/test-servers.sh`), run as a process per page: `--dump-dom` for what a person sees (the DOM
//! once the page is loaded), `--screenshot` for a picture of it. Missing, it fails the test under
//! `FERRY_TEST_REQUIRE_SERVERS=1` and is skipped loudly otherwise, like the storage servers.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest one page may take to load and be written out.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Headless Chromium with a profile of its own (removed when dropped).
pub struct Browser {
    binary: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium from `FERRY_TEST_CHROMIUM` (what `scripts/test-servers.sh env` sets), else `chromium` on
    /// the `PATH`; `None` (after a `SKIPPED:` line, or a panic when required) when there is none.
    pub fn find() -> Option<Browser> {
        let from_env = std::env::var_os("FERRY_TEST_CHROMIUM").map(PathBuf::from);
        let on_path = || {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("chromium"))
                .find(|path| path.is_file())
        };
        let Some(binary) = from_env.filter(|p| p.is_file()).or_else(on_path) else {
            crate::servers::missing_requirement(
                "Chromium",
                "browser test",
                &["FERRY_TEST_CHROMIUM (and no chromium on the PATH)"],
                "scripts/test-servers.sh start and eval \"$(scripts/test-servers.sh env)\"",
            );
            return None;
        };
        Some(Browser {
            binary,
            profile: tempfile::tempdir().expect("a profile directory"),
        })
    }

    /// The page at `url` as the browser built it: its DOM, serialized, once its scripts (a form it
    /// submits, and the page that answers) have run (up to 5 s of the page's virtual time).
    pub async fn dom(&self, url: &str) -> String {
        let output = self
            .run(&["--virtual-time-budget=5000", "--dump-dom", url])
            .await;
        String::from_utf8_lossy(&output).into_owned()
    }

    /// A picture of the page at `url`, `width` × `height` CSS pixels, written to `path` (PNG).
    pub async fn screenshot(&self, url: &str, path: &Path, width: u32, height: u32) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        let shot = format!("--screenshot={}", path.display());
        let size = format!("--window-size={width},{height}");
        self.run(&[&shot, &size, url]).await;
        assert!(
            path.is_file(),
            "chromium wrote no screenshot to {}",
            path.display()
        );
    }

    async fn run(&self, args: &[&str]) -> Vec<u8> {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args([
                "--headless",
                // The tests run as root in a container: Chromium's sandbox needs user namespaces.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                &profile,
            ])
            .args(args)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        let output = tokio::time::timeout(PAGE_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("chromium {args:?} took over {PAGE_TIMEOUT:?}"))
            .expect("chromium runs");
        assert!(
            output.status.success(),
            "chromium {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}
