//! The real `go` command for tests, isolated: its own GOPATH, module cache and environment per test, so the
//! machine's own settings never leak in.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `go` binary the tests drive: `$GO` if set, else the first `go` on `PATH`, else `/usr/local/go/bin/go`.
/// A missing `go` is a test failure, never a skip.
pub fn go_binary() -> PathBuf {
    if let Some(go) = std::env::var_os("GO") {
        return PathBuf::from(go);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("go"))
        .find(|candidate| candidate.is_file());
    let go = on_path.unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"));
    assert!(
        go.is_file(),
        "the tests need the `go` command: none on PATH nor at {}; install Go (the README's test command does)",
        go.display()
    );
    go
}

/// `mod download -json MODULE@VERSION ...` for these fixtures: the go command's arguments to fetch them.
pub fn mod_download_args<'a>(
    modules: impl IntoIterator<Item = &'a crate::FixtureModule>,
) -> Vec<String> {
    ["mod", "download", "-json"]
        .into_iter()
        .map(str::to_string)
        .chain(
            modules
                .into_iter()
                .map(|m| format!("{}@{}", m.path(), m.version())),
        )
        .collect()
}

/// The environment of an isolated `go` command: its own GOPATH, module cache and build cache under `home`,
/// no checksum database, no user `go env` file, no toolchain download.
pub fn go_env(home: &Path, goproxy: &str) -> Vec<(String, String)> {
    let path = |p: &str| home.join(p).to_string_lossy().into_owned();
    let mut env = vec![
        ("HOME".to_string(), path("")),
        ("GOPATH".to_string(), path("gopath")),
        ("GOMODCACHE".to_string(), path("gopath/pkg/mod")),
        ("GOCACHE".to_string(), path("gocache")),
        ("GOPROXY".to_string(), goproxy.to_string()),
        ("GOSUMDB".to_string(), "off".to_string()),
        ("GOFLAGS".to_string(), "-mod=mod".to_string()),
        ("GOTOOLCHAIN".to_string(), "local".to_string()),
        ("GOENV".to_string(), "off".to_string()),
        ("GOTELEMETRY".to_string(), "off".to_string()),
        ("GO111MODULE".to_string(), "on".to_string()),
        ("CGO_ENABLED".to_string(), "0".to_string()),
    ];
    if let Some(system_path) = std::env::var_os("PATH") {
        env.push((
            "PATH".to_string(),
            system_path.to_string_lossy().into_owned(),
        ));
    }
    env
}

/// A throw-away home for the `go` command: a temporary directory holding its caches, removed on drop
/// (after making the read-only module cache writable again).
pub struct GoHome {
    dir: PathBuf,
    goproxy: String,
}

impl GoHome {
    pub fn new(parent: &Path, goproxy: &str) -> Self {
        let dir = parent.join(format!("gohome-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("create go home");
        GoHome {
            dir,
            goproxy: goproxy.to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mod_cache(&self) -> PathBuf {
        self.dir.join("gopath/pkg/mod")
    }

    /// `go <args>` in `cwd` with the isolated environment (and nothing else from the process's).
    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(go_binary());
        command.args(args).current_dir(cwd).env_clear();
        command.envs(go_env(&self.dir, &self.goproxy));
        command
    }

    /// Runs `go <args>` in `cwd` and returns its stdout; panics with go's stderr when it fails.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> String {
        succeeded(args, self.command(cwd, args).output().expect("run go"))
    }
}

impl GoHome {
    /// `go <args>` without blocking the async runtime (for tests that serve on the same runtime).
    pub async fn output_async(&self, cwd: &Path, args: &[&str]) -> std::process::Output {
        tokio::process::Command::from(self.command(cwd, args))
            .output()
            .await
            .expect("run go")
    }

    /// Like [`GoHome::run`], without blocking the async runtime.
    pub async fn run_async(&self, cwd: &Path, args: &[&str]) -> String {
        succeeded(args, self.output_async(cwd, args).await)
    }
}

impl Drop for GoHome {
    fn drop(&mut self) {
        make_writable(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// go's stdout when it succeeded; otherwise a panic with its stderr.
fn succeeded(args: &[&str], output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "go {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("go printed UTF-8")
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        let _ = std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700),
        );
    }
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => make_writable(&path),
            Ok(t) if t.is_file() => {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
            }
            _ => {}
        }
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
