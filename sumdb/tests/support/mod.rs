//! Support for ferry-sumdb's tests: the `tlogdb` Go program (a real checksum database built with
//! golang.org/x/mod/sumdb, from sumdb/testdata/tlogdb) built once and run on loopback, fixture modules for
//! its records, and a [`Transport`] over real HTTP that can be pointed at another database mid-test.

#![allow(dead_code)] // each test binary uses part of this

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use ferry_sumdb::{Transport, TransportError};
use ferry_testkit::{FixtureModule, go_program, write_goproxy_tree};

/// The `tlogdb` binary, built by the real `go` command once per source (testkit's [`go_program`]).
pub fn tlogdb() -> PathBuf {
    go_program(
        "tlogdb",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tlogdb"),
    )
}

/// `count` fixture module versions for a database: plain ones, plus upper-case paths and versions (which
/// the lookup path must escape) and one module without a go.mod of its own.
pub fn fixture_modules(count: usize) -> Vec<FixtureModule> {
    (0..count)
        .map(|i| match i % 50 {
            7 => FixtureModule::package(&format!("example.com/Upper/M{i:03}"), "v1.2.3-RC.1"),
            13 => FixtureModule::new(&format!("example.com/plain/m{i:03}"), "v2.0.0+incompatible")
                .without_go_mod()
                .file("README", format!("module {i} without go.mod\n")),
            _ => FixtureModule::package(&format!("example.com/m{i:03}"), "v1.0.0")
                .file("data.txt", format!("{i}\n").repeat(i)),
        })
        .collect()
}

/// A GOPROXY tree of `modules` in a temporary directory (removed on drop).
pub fn goproxy_tree(modules: &[FixtureModule]) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    write_goproxy_tree(dir.path(), modules);
    dir
}

/// A running `tlogdb`: the checksum database of a GOPROXY tree on `127.0.0.1:0`; killed on drop.
pub struct Database {
    pub url: String,
    pub key: String,
    child: Child,
}

impl Database {
    /// Starts `tlogdb -modules <tree> <args>` and waits (at most 60 s) for its address and key.
    pub fn start(tree: &Path, args: &[&str]) -> Database {
        let mut child = Command::new(tlogdb())
            .arg("-modules")
            .arg(tree)
            .args(args)
            .stdin(Stdio::piped()) // it exits when this closes, even if the test is killed
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tlogdb");
        let stdout = child.stdout.take().expect("tlogdb stdout");
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let lines: Vec<String> = BufReader::new(stdout)
                .lines()
                .take(2)
                .map_while(Result::ok)
                .collect();
            let _ = send.send(lines);
        });
        let lines = receive
            .recv_timeout(Duration::from_secs(60))
            .expect("tlogdb printed its address and key within 60 s");
        let field = |name: &str| {
            lines
                .iter()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("tlogdb printed no {name}: {lines:?}"))
                .to_string()
        };
        Database {
            url: format!("http://{}", field("addr")),
            key: field("key"),
            child,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Go's `module.MatchPrefixPatterns` for each (globs, target), asked of `tlogdb -match`.
pub fn go_match_prefix_patterns(cases: &[(&str, &str)]) -> Vec<bool> {
    let input: String = cases.iter().map(|(g, t)| format!("{g}\t{t}\n")).collect();
    let mut child = Command::new(tlogdb())
        .arg("-match")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tlogdb -match");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().expect("tlogdb -match");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line == "true")
        .collect()
}

/// A [`Transport`] over real HTTP to a database's URL, which a test can repoint (to show the client another
/// database's tree) and whose requested paths it can read back.
pub struct LoopbackTransport {
    /// Where `lookup/...` and `tile/...` requests go: one database, or (a lagging or forging front for
    /// lookups) two.
    lookups: Mutex<String>,
    tiles: Mutex<String>,
    requests: Mutex<Vec<String>>,
    /// How long each tile request waits before it is sent (a database further away).
    tile_delay: Mutex<Duration>,
}

impl LoopbackTransport {
    pub fn new(db: &Database) -> LoopbackTransport {
        LoopbackTransport {
            lookups: Mutex::new(db.url.clone()),
            tiles: Mutex::new(db.url.clone()),
            requests: Mutex::new(Vec::new()),
            tile_delay: Mutex::new(Duration::ZERO),
        }
    }

    /// Each tile request waits `delay` before it is sent from now on, so that reads made at the same
    /// moment overlap, as they do with a database tens of milliseconds away.
    pub fn delay_tiles(&self, delay: Duration) {
        *self.tile_delay.lock().unwrap() = delay;
    }

    /// Every request goes to `db` from now on.
    pub fn point_at(&self, db: &Database) {
        // Tiles first: a lookup racing the switch may then pair an old tree with new tiles (which hold
        // it), never a new tree with old tiles (which lack its hashes).
        *self.tiles.lock().unwrap() = db.url.clone();
        self.point_lookups_at(db);
    }

    /// Lookups go to `db`, tiles still to the database they went to.
    pub fn point_lookups_at(&self, db: &Database) {
        *self.lookups.lock().unwrap() = db.url.clone();
    }

    /// The paths requested since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl Transport for LoopbackTransport {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError> {
        self.requests.lock().unwrap().push(path.to_string());
        let base = if path.starts_with("lookup/") {
            self.lookups.lock().unwrap().clone()
        } else {
            let delay = *self.tile_delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            self.tiles.lock().unwrap().clone()
        };
        let url = format!("{base}/{path}");
        let reply = tokio::time::timeout(Duration::from_secs(30), ferry_testkit::http::get(&url))
            .await
            .map_err(|_| TransportError::Failed(format!("GET {url}: no answer in 30 s")))?;
        match reply.status {
            200 => Ok(reply.body),
            404 | 410 => Err(TransportError::NotFound),
            status => Err(TransportError::Failed(format!(
                "GET {url}: {status} {}",
                reply.text()
            ))),
        }
    }
}
