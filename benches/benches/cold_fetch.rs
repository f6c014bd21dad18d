//! Ferry's overhead on a cold fetch: a `.zip` request to a fresh Ferry (empty store, `sync` mode) that
//! fills the version through its `go` command from a loopback fixture upstream (`ferry_testkit::Upstream`),
//! against the bare `go mod download -json` of the same version from the same upstream, the ceiling here.
//! Every iteration starts from nothing (a new store, work dir and module cache); only the request (or the
//! bare `go` command) is timed.
//!
//! `go-mod-download`: the bare command. `ferry-file/to-200` and `ferry-file/to-last-byte`: a `file://`
//! store, timed to the response head and to the last byte of the zip. `ferry-memory/to-last-byte`: a
//! `memory://` store. The zip is 4 MiB of incompressible data.
//!
//!     cargo bench -p ferry-benches --bench cold_fetch

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ferry::{Filler, Proxy};
use ferry_benches::{Backend, MIB, Server, client, runtime, zip_module};
use ferry_fetcher::{Fetcher, FetcherConfig};
use ferry_policy::{Mode, Policy};
use ferry_testkit::{GoHome, Upstream, go_binary};
use http::StatusCode;
use http_body_util::BodyExt;

const MODULE: &str = "example.com/cold";
const VERSION: &str = "v1.0.0";

/// Where a timed cold request stops the clock.
#[derive(Clone, Copy)]
enum Until {
    Status,
    LastByte,
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let runtime = runtime();
    let module = zip_module(MODULE, 4 * MIB);
    let zip_len = module.zip_bytes().len() as u64;
    let upstream = runtime.block_on(Upstream::start(vec![module]));
    let goproxy = upstream.url();

    let mut group = criterion.benchmark_group("cold_fetch");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(zip_len));
    group.bench_function("go-mod-download", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += bare_go(&goproxy).await;
                }
                total
            })
        })
    });
    for (name, backend, until) in [
        ("ferry-file/to-200", Backend::File, Until::Status),
        ("ferry-file/to-last-byte", Backend::File, Until::LastByte),
        (
            "ferry-memory/to-last-byte",
            Backend::Memory,
            Until::LastByte,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += cold_ferry(&goproxy, backend, until).await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
    drop(upstream);
    criterion.final_summary();
}

/// `go mod download -json MODULE@VERSION` with an empty module cache, timed.
async fn bare_go(goproxy: &str) -> Duration {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let go = GoHome::new(temp.path(), goproxy);
    let target = format!("{MODULE}@{VERSION}");
    let started = Instant::now();
    let output = go
        .output_async(temp.path(), &["mod", "download", "-json", &target])
        .await;
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "go mod download: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// A fresh Ferry (an empty store of `backend`, a fresh work dir) asked for the zip once; timed from the
/// request `until`.
async fn cold_ferry(goproxy: &str, backend: Backend, until: Until) -> Duration {
    // Both temporary directories are on one filesystem, so a file store can link the zip `go` left.
    let temp = tempfile::tempdir().expect("a temporary directory");
    let open = backend.open().expect("a local backend is always there");
    let store = open.store.clone();
    let fetcher = Fetcher::new(fetcher_config(
        goproxy,
        &temp.path().join("work"),
        temp.path(),
    ))
    .await
    .expect("the fetcher starts");
    let upstream = Filler::start(fetcher, store.clone(), Default::default());
    let policy = Policy::single(Mode::Sync, None).expect("sync needs no download URL");
    let server = Server::ferry_proxy(Arc::new(Proxy::with_upstream(
        store,
        Some(upstream),
        policy,
    )))
    .await;
    let client = client();
    let uri = server.uri(&format!("/{MODULE}/@v/{VERSION}.zip"));

    let started = Instant::now();
    let response = client.get(uri).await.expect("GET the cold zip");
    let to_status = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("the zip");
    let to_last_byte = started.elapsed();
    assert!(!body.to_bytes().is_empty());
    drop(client);
    server.stop().await;
    drop(open);
    match until {
        Until::Status => to_status,
        Until::LastByte => to_last_byte,
    }
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
