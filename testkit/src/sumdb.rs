//! A fixture checksum database: `testkit/sumdb-fixture`, a small Go program on `golang.org/x/mod/sumdb`
//! (its real server, tree and signatures), built once per source and Go version and kept in the test tools
//! cache, run on `127.0.0.1:0` over a GOPROXY tree's modules.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::go::go_binary;
use crate::process::{Process, clean_command};

/// A running fixture checksum database; killed when dropped.
pub struct SumDbFixture {
    process: Process,
    /// `http://IP:PORT`
    pub url: String,
    /// The verifier key: what `GOSUMDB` takes (`NAME+HASH+KEY`).
    pub key: String,
}

impl SumDbFixture {
    /// Serves the go.sum lines of the modules in the GOPROXY tree `tree` (hashed from its `.zip` and
    /// `.mod` files when first looked up) under `name`, after `fill` made-up records (256 or more make the
    /// first tiles full).
    pub fn start(name: &str, tree: &Path, fill: usize) -> SumDbFixture {
        SumDbFixture::launch(name, tree, fill, None, Duration::ZERO)
    }

    /// Like [`SumDbFixture::start`], each tile answered only after `delay` (a database further away), so
    /// that proofs made at the same moment are reliably waiting on the same tiles.
    pub fn start_with_tile_delay(
        name: &str,
        tree: &Path,
        fill: usize,
        delay: Duration,
    ) -> SumDbFixture {
        SumDbFixture::launch(name, tree, fill, None, delay)
    }

    /// Like [`SumDbFixture::start`], over HTTPS (a certificate for 127.0.0.1): the certificate of the CA
    /// that signed it is written to `ca_file` (PEM), for `SSL_CERT_FILE`.
    pub fn start_https(name: &str, tree: &Path, fill: usize, ca_file: &Path) -> SumDbFixture {
        SumDbFixture::launch(name, tree, fill, Some(ca_file), Duration::ZERO)
    }

    fn launch(
        name: &str,
        tree: &Path,
        fill: usize,
        ca_file: Option<&Path>,
        tile_delay: Duration,
    ) -> SumDbFixture {
        let mut command = clean_command(fixture_binary());
        if let Some(ca_file) = ca_file {
            command.arg("-tls").arg(ca_file);
        }
        if !tile_delay.is_zero() {
            command
                .arg("-tile-delay")
                .arg(format!("{}ms", tile_delay.as_millis()));
        }
        command
            .arg("-name")
            .arg(name)
            .arg("-tree")
            .arg(tree)
            .arg("-fill")
            .arg(fill.to_string());
        let (process, line) = Process::start(command, "sumdb fixture ready");
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
                .to_string()
        };
        let scheme = if ca_file.is_some() { "https" } else { "http" };
        SumDbFixture {
            url: format!("{scheme}://{}", field("addr=")),
            key: field("key="),
            process,
        }
    }

    /// The paths asked of the database so far (`/lookup/…`, `/latest`, `/tile/…`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.process
            .log()
            .lines()
            .filter_map(|line| line.strip_prefix("sumdb fixture request "))
            .map(str::to_string)
            .collect()
    }
}

/// The fixture's binary, built on first use into the test tools cache (see [`go_program`]).
pub fn fixture_binary() -> PathBuf {
    go_program(
        "sumdb-fixture",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sumdb-fixture"),
    )
}

/// The Go program in `source` (a main package with its own go.mod and go.sum), built with the go command on
/// first use into the test tools cache (`~/.cache/ferry-test-tools/bin`, the directory
/// `scripts/test-servers.sh` uses), named by a hash of its `.go`, `go.mod` and `go.sum` files and the Go
/// version: built once, rebuilt when either changes. Its modules come through the machine's own Go module
/// settings.
pub fn go_program(name: &str, source: &Path) -> PathBuf {
    static BUILT: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, binary)) = built.iter().find(|(dir, _)| dir == source) {
        return binary.clone();
    }
    let go = go_binary();
    let version = Command::new(&go)
        .arg("version")
        .output()
        .expect("run go version");
    let mut files: Vec<PathBuf> = std::fs::read_dir(source)
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()))
        .map(|entry| entry.expect("read the source directory").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".go") || name == "go.mod" || name == "go.sum"
        })
        .collect();
    files.sort();
    // FNV-1a over the sources and `go version`: a name, not a defence.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let contents = files
        .iter()
        .flat_map(|file| std::fs::read(file).expect("read a Go source"))
        .chain(version.stdout.iter().copied());
    for byte in contents {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let dir = std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| PathBuf::from(home).join(".cache"), PathBuf::from)
        .join("ferry-test-tools/bin");
    let binary = dir.join(format!("{name}-{hash:016x}"));
    if !binary.is_file() {
        std::fs::create_dir_all(&dir).expect("create the test tools directory");
        // Built under a name of its own and renamed into place: another test process building at the same
        // time never sees half a binary.
        let partial = dir.join(format!(".{name}-{hash:016x}-{}", std::process::id()));
        let output = Command::new(&go)
            .args(["build", "-trimpath", "-o"])
            .arg(&partial)
            .arg(".")
            .current_dir(source)
            .env("GOFLAGS", "-mod=readonly -buildvcs=false")
            .env("GOWORK", "off")
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .output()
            .expect("run go build");
        assert!(
            output.status.success(),
            "building {} failed (its modules must be in the module cache or come from the Go module proxy):\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&partial, &binary).expect("move the built program into place");
    }
    built.push((source.to_path_buf(), binary.clone()));
    binary
}
