//! Ferry's overhead on a cold fetch: the time from a `.zip` request to a cold Ferry (empty store, `sync`
//! mode) until its 200 (and until its last byte), against the bare `go mod download -json` of the same
//! version from the same loopback fixture upstream. Rounds alternate which goes first; medians are
//! reported.
//!
//! Run: `cargo run --release -p ferry --example cold_fetch [ROUNDS] [ZIP_MIB]` (default 15 rounds, 4 MiB).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::{Proxy, ServerSettings, Upstream as FerryUpstream};
use ferry_fetcher::{Fetcher, FetcherConfig};
use ferry_policy::{Mode, Policy};
use ferry_storage::StorageConfig;
use ferry_testkit::{FixtureModule, Upstream, go_binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODULE: &str = "example.com/bench";
const VERSION: &str = "v1.0.0";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(15, |a| a.parse().expect("ROUNDS"));
    let zip_mib: usize = args.next().map_or(4, |a| a.parse().expect("ZIP_MIB"));

    // Incompressible content, so the zip is as large as asked.
    let module = FixtureModule::package(MODULE, VERSION).file("data.bin", noise(zip_mib << 20));
    let zip_len = module.zip_bytes().len();
    let upstream = Upstream::start(vec![module]).await;
    println!(
        "{MODULE}@{VERSION}: zip of {:.2} MiB, {rounds} rounds, {}",
        zip_len as f64 / f64::from(1 << 20),
        go_version().await
    );

    let (mut to_200, mut to_last_byte, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fetch_only, mut removal) = (Vec::new(), Vec::new());
    // One unmeasured round of each warms the page cache and the go binary.
    ferry_round(&upstream.url()).await;
    bare_round(&upstream.url()).await;
    for round in 0..rounds {
        let (ferry, go) = if round % 2 == 0 {
            let ferry = ferry_round(&upstream.url()).await;
            (ferry, bare_round(&upstream.url()).await)
        } else {
            let go = bare_round(&upstream.url()).await;
            (ferry_round(&upstream.url()).await, go)
        };
        let (fetch, remove) = fetcher_round(&upstream.url()).await;
        fetch_only.push(fetch);
        removal.push(remove);
        to_200.push(ferry.0);
        to_last_byte.push(ferry.1);
        bare.push(go);
    }
    let (to_200, to_last_byte, bare) = (median(to_200), median(to_last_byte), median(bare));
    let (fetch_only, removal) = (median(fetch_only), median(removal));
    let overhead = |d: Duration| (d.as_secs_f64() / bare.as_secs_f64() - 1.0) * 100.0;
    println!("bare `go mod download -json`:       median {bare:>9.1?}");
    println!(
        "of which the fetcher's go command:  median {fetch_only:>9.1?}  ({:+.1} %); removing its directory: {removal:.1?}",
        overhead(fetch_only)
    );
    println!(
        "cold Ferry .zip, time to the 200:   median {to_200:>9.1?}  ({:+.1} %)",
        overhead(to_200)
    );
    println!(
        "cold Ferry .zip, time to last byte: median {to_last_byte:>9.1?}  ({:+.1} %)",
        overhead(to_last_byte)
    );
}

/// A fresh Ferry (empty file store, fresh work dir) whose go fetches from `goproxy`; returns the time
/// to the status line of a 200 and to the last byte of the `.zip`. Setting up is not measured.
async fn ferry_round(goproxy: &str) -> (Duration, Duration) {
    let temp = tempfile::tempdir().unwrap();
    let url = match std::env::var("COLD_FETCH_STORE").as_deref() {
        Ok("memory") => "memory://".to_owned(),
        _ => format!("file://{}", temp.path().join("store").display()),
    };
    let store = StorageConfig::from_url(&url).unwrap().open().unwrap();
    let fetcher = Fetcher::new(fetcher_config(
        goproxy,
        &temp.path().join("work"),
        temp.path(),
    ))
    .await
    .expect("fetcher starts");
    let upstream = FerryUpstream::start(fetcher, store.clone(), Default::default());
    let policy = Policy::single(Mode::Sync, None).unwrap();
    let proxy = Arc::new(Proxy::with_upstream(store, Some(upstream), policy));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ferry::run(
        listener,
        proxy,
        ServerSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /{MODULE}/@v/{VERSION}.zip HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut first = Vec::new();
    let mut to_200 = None;
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        if to_200.is_none() {
            first.extend_from_slice(&buffer[..n]);
            if first.len() >= 12 {
                assert!(
                    first.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&first)
                );
                to_200 = Some(started.elapsed());
            }
        }
    }
    let to_last_byte = started.elapsed();
    drop(stop);
    server.await.unwrap();
    (to_200.expect("an answer"), to_last_byte)
}

/// The fetcher alone (no HTTP, no store): its `fetch`, then the removal of its temporary directory.
async fn fetcher_round(goproxy: &str) -> (Duration, Duration) {
    let temp = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(fetcher_config(
        goproxy,
        &temp.path().join("work"),
        temp.path(),
    ))
    .await
    .expect("fetcher starts");
    let started = Instant::now();
    let fetched = fetcher.fetch(MODULE, VERSION).await.expect("fetched");
    let fetch = started.elapsed();
    let started = Instant::now();
    fetched.remove().await;
    (fetch, started.elapsed())
}

/// `go mod download -json` of the version with an empty module cache, as the fetcher runs it.
async fn bare_round(goproxy: &str) -> Duration {
    let temp = tempfile::tempdir().unwrap();
    let cwd = temp.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let config = fetcher_config(goproxy, &temp.path().join("work"), temp.path());
    let mut env = config.inherited_env.clone();
    env.extend(config.go_env.clone());
    for (key, dir) in [
        ("GOPATH", "gopath"),
        ("GOMODCACHE", "gomodcache"),
        ("GOCACHE", "gocache"),
    ] {
        env.insert(key.into(), temp.path().join(dir).display().to_string());
    }
    for (key, value) in [
        ("GOFLAGS", "-mod=mod"),
        ("GOTOOLCHAIN", "local"),
        ("GOENV", "off"),
        ("GOWORK", "off"),
        ("GO111MODULE", "on"),
    ] {
        env.insert(key.into(), value.into());
    }
    let target = format!("{MODULE}@{VERSION}");
    let started = Instant::now();
    let output = tokio::process::Command::new(go_binary())
        .args(["mod", "download", "-json", &target])
        .current_dir(&cwd)
        .env_clear()
        .envs(&env)
        .output()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // go leaves its module cache read-only.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(temp.path())
        .status();
    elapsed
}

fn fetcher_config(goproxy: &str, work_dir: &Path, home: &Path) -> FetcherConfig {
    let mut config = FetcherConfig::new(work_dir);
    config.go_binary = go_binary();
    config.go_env = BTreeMap::from([
        ("GOPROXY".to_owned(), goproxy.to_owned()),
        ("GOSUMDB".to_owned(), "off".to_owned()),
    ]);
    config.inherited_env = BTreeMap::from([
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_owned(), home.display().to_string()),
    ]);
    config
}

async fn go_version() -> String {
    let output = tokio::process::Command::new(go_binary())
        .arg("version")
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Deterministic pseudo-random bytes (xorshift), which deflate cannot shrink.
fn noise(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 8);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
