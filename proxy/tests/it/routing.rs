//! Where requests are routed (issue 24): cached-only reads, under the `/cached-only/` base path or with
//! `Disable-Module-Fetch: true` (what pkgsite sends), answered from the store alone and never reaching the
//! upstream; and Ferry served under a path prefix (`path_prefix`) behind a reverse proxy. The client is the
//! real `go` command, verifying against a fixture checksum database relayed by Ferry.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use ferry::config::Flags;
use ferry_testkit::{
    FixtureModule, GoHome, SumDbFixture, Upstream, eventually, write_goproxy_tree,
};

use crate::harness::{Ferry, Reply, app_module, ferry_env, forward, get, go_said, request, save};

/// The checksum database's name: it resolves nowhere, so Ferry's relay is the go command's only way to it.
const NAME: &str = "sum.fixture.example";

fn hello(version: &str) -> FixtureModule {
    FixtureModule::package("example.com/hello", version)
}

/// The fixture database over `modules` and an upstream serving them; Ferry relays the database at its own
/// URL (`NAME=URL`), so the upstream sees module requests only.
async fn network(dir: &Path, modules: &[FixtureModule]) -> (SumDbFixture, Upstream) {
    write_goproxy_tree(&dir.join("tree"), modules);
    let sumdb = SumDbFixture::start(NAME, &dir.join("tree"), 0);
    (sumdb, Upstream::start(modules.to_vec()).await)
}

/// Ferry configured as the binary is, from `vars`, in front of `upstream`, relaying the fixture database.
async fn ferry_in_front(
    dir: &Path,
    upstream: &Upstream,
    sumdb: &SumDbFixture,
    vars: &[(&str, &str)],
) -> Ferry {
    let sumdbs = format!("{NAME}={}", sumdb.url);
    let mut all = vec![("FERRY_SUMDBS", sumdbs.as_str())];
    all.extend_from_slice(vars);
    let env = ferry_env(dir, Some(&upstream.url()), &all);
    Ferry::from_env(&env, &Flags::default()).await
}

/// `go <args>` in `cwd` through `home`'s GOPROXY, verifying against the fixture database.
async fn go(home: &GoHome, cwd: &Path, sumdb: &SumDbFixture, args: &[&str]) -> Output {
    let mut command = home.command(cwd, args);
    command.env("GOSUMDB", &sumdb.key);
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("run go")
}

/// `go <args>` as [`go`], which must succeed: its stdout, trimmed.
async fn go_ok(home: &GoHome, cwd: &Path, sumdb: &SumDbFixture, args: &[&str]) -> String {
    let output = go(home, cwd, sumdb, args).await;
    assert!(
        output.status.success(),
        "go {args:?}:\n{}",
        go_said(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn expect(reply: &Reply, status: u16, says: &str, what: &str) {
    assert!(
        reply.status == status && reply.text().contains(says),
        "{what}: want {status} saying {says:?}, got {} {:?}",
        reply.status,
        reply.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_only_reads_answer_from_the_store_and_never_reach_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let modules = [hello("v1.0.0"), hello("v1.1.0"), hello("v1.2.0")];
    let (sumdb, upstream) = network(dir.path(), &modules).await;
    // `async`, whose misses would queue background fetches and whose list and @latest ask the upstream;
    // one worker, so that a fetch queued first would be done before the one queued last.
    let vars = [
        ("FERRY_DOWNLOAD_MODE", "async"),
        ("FERRY_ASYNC_WORKERS", "1"),
    ];
    let ferry = ferry_in_front(dir.path(), &upstream, &sumdb, &vars).await;
    save(ferry.store().as_ref(), &modules[0]).await;

    // The go command under the base path: the stored version downloads and verifies (through
    // /cached-only/sumdb/, relayed as at the root), the store's list and latest are the answers.
    let home = GoHome::new(dir.path(), &format!("{}/cached-only", ferry.url()));
    let app = app_module(dir.path());
    go_ok(
        &home,
        &app,
        &sumdb,
        &["mod", "download", "-json", "example.com/hello@v1.0.0"],
    )
    .await;
    eventually(
        "the database saw the lookup through /cached-only/sumdb/",
        async || {
            sumdb
                .requests()
                .contains(&"/lookup/example.com/hello@v1.0.0".to_string())
        },
    )
    .await;
    let listed = go_ok(
        &home,
        &app,
        &sumdb,
        &["list", "-m", "-versions", "example.com/hello"],
    )
    .await;
    assert_eq!(listed, "example.com/hello v1.0.0");
    let latest = go_ok(
        &home,
        &app,
        &sumdb,
        &["list", "-m", "example.com/hello@latest"],
    )
    .await;
    assert_eq!(latest, "example.com/hello v1.0.0");
    let missed = go(
        &home,
        &app,
        &sumdb,
        &["mod", "download", "-json", "example.com/hello@v1.1.0"],
    )
    .await;
    assert!(!missed.status.success());
    assert!(
        go_said(&missed).contains(
            "not found: example.com/hello@v1.1.0 is not stored, and this request asks for stored modules only (under /cached-only/)"
        ),
        "{}",
        go_said(&missed)
    );

    // pkgsite's header at the root, on every module endpoint.
    let header = [("Disable-Module-Fetch", "true")];
    let url = ferry.url();
    let asked = async |path: &str| request("GET", &format!("{url}/{path}"), &header).await;
    let why = "this request asks for stored modules only (Disable-Module-Fetch: true)";
    let list = asked("example.com/hello/@v/list").await;
    assert_eq!((list.status, list.text()), (200, "v1.0.0\n".to_string()));
    expect(
        &asked("example.com/hello/@latest").await,
        200,
        "\"v1.0.0\"",
        "@latest",
    );
    expect(
        &asked("example.com/hello/@v/v1.0.0.info").await,
        200,
        "\"v1.0.0\"",
        "stored .info",
    );
    let zip = asked("example.com/hello/@v/v1.0.0.zip").await;
    assert_eq!(zip.status, 200);
    assert_eq!(zip.body.as_ref(), modules[0].zip_bytes().as_slice());
    for file in ["info", "mod", "zip"] {
        let reply = asked(&format!("example.com/hello/@v/v1.1.0.{file}")).await;
        let says = format!("not found: example.com/hello@v1.1.0 is not stored, and {why}");
        expect(&reply, 404, &says, file);
    }
    let query = asked("example.com/hello/@v/master.info").await;
    expect(
        &query,
        404,
        &format!("example.com/hello@master is not stored, and {why}"),
        "query",
    );
    for endpoint in ["@v/list", "@latest"] {
        let reply = asked(&format!("example.com/other/{endpoint}")).await;
        let says = format!("example.com/other: no versions stored, and {why}");
        expect(&reply, 404, &says, endpoint);
    }
    assert_eq!(
        upstream.requests(),
        Vec::<String>::new(),
        "the upstream was asked"
    );
    assert!(!ferry.stored("example.com/hello", "v1.1.0").await);

    // Without the header, a miss queues its fetch; once it is stored, the upstream has seen that version
    // only: nothing was queued, listed or resolved for the cached-only requests.
    let control = ferry.get("example.com/hello/@v/v1.2.0.zip").await;
    expect(&control, 404, "being fetched", "the control");
    let started = Instant::now();
    while !ferry.stored("example.com/hello", "v1.2.0").await {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "v1.2.0 was never stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = upstream.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|path| path.contains("v1.2.0")),
        "{requests:?}"
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_reverse_proxy_under_a_path_prefix_the_go_command_downloads_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let modules = [hello("v1.0.0"), hello("v1.1.0")];
    let (sumdb, upstream) = network(dir.path(), &modules).await;
    let vars = [("FERRY_PATH_PREFIX", "/goproxy")];
    let ferry = ferry_in_front(dir.path(), &upstream, &sumdb, &vars).await;
    // The reverse proxy: every request passed on with its path as it came (`/goproxy/...`).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let forwarding = tokio::spawn(forward(listener, ferry.addr.to_string()));
    let base = format!("{front}/goproxy");

    let home = GoHome::new(dir.path(), &base);
    let app = app_module(dir.path());
    go_ok(
        &home,
        &app,
        &sumdb,
        &["mod", "download", "-json", "example.com/hello@v1.0.0"],
    )
    .await;
    assert!(ferry.stored("example.com/hello", "v1.0.0").await);
    eventually(
        "the database saw the lookup through /goproxy/sumdb/",
        async || {
            sumdb
                .requests()
                .contains(&"/lookup/example.com/hello@v1.0.0".to_string())
        },
    )
    .await;
    // The cached-only base path under the prefix: the store's list; then the merged one.
    let cached_only = GoHome::new(dir.path(), &format!("{base}/cached-only"));
    let listed = go_ok(
        &cached_only,
        &app,
        &sumdb,
        &["list", "-m", "-versions", "example.com/hello"],
    )
    .await;
    assert_eq!(listed, "example.com/hello v1.0.0");
    let listed = go_ok(
        &home,
        &app,
        &sumdb,
        &["list", "-m", "-versions", "example.com/hello"],
    )
    .await;
    assert_eq!(listed, "example.com/hello v1.0.0 v1.1.0");

    // Outside the prefix: 404 naming it, which the go command shows.
    let outside = "is outside the path prefix /goproxy";
    let at_root = GoHome::new(dir.path(), &front);
    let output = go(
        &at_root,
        &app,
        &sumdb,
        &["mod", "download", "-json", "example.com/hello@v1.1.0"],
    )
    .await;
    assert!(
        !output.status.success() && go_said(&output).contains(outside),
        "{}",
        go_said(&output)
    );
    for path in [
        "",
        "example.com/hello/@v/list",
        "catalog",
        "sumdb/sum.fixture.example/supported",
    ] {
        expect(&get(&format!("{front}/{path}")).await, 404, outside, path);
    }
    // Every other endpoint under it; the probes and /metrics at the root too.
    expect(
        &get(&base).await,
        200,
        &format!("go env -w GOPROXY={base}</code>"),
        "the status page",
    );
    expect(
        &get(&format!("{base}/catalog")).await,
        200,
        "example.com/hello",
        "/catalog",
    );
    expect(
        &get(&format!("{base}/index")).await,
        200,
        "example.com/hello",
        "/index",
    );
    for (path, says) in [
        ("healthz", "ok"),
        ("readyz", "ready"),
        ("metrics", "ferry_"),
    ] {
        expect(&get(&format!("{front}/{path}")).await, 200, says, path);
        expect(&get(&format!("{base}/{path}")).await, 200, says, path);
    }
    forwarding.abort();
    ferry.stop().await;
}
