//! Checksum database proxying: the real `go` command, whose only route is Ferry (`GOPROXY` = Ferry, a
//! `GOSUMDB` name that resolves nowhere), verifies modules against a fixture checksum database built on
//! golang.org/x/mod/sumdb, through Ferry; tampering ends in go's SECURITY ERROR; faults map to 502/504;
//! full tiles are fetched once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry::config::{self, Flags};
use ferry_testkit::{
    Behaviour, FixtureModule, GoHome, SumDbFixture, Upstream, closed_port, curl, eventually,
    write_goproxy_tree,
};

use crate::harness::{
    Ferry, app_module, ferry, ferry_env, get_blocking, go_get_verifying, request, save, serving,
    write_file,
};

/// The database's name: it resolves nowhere, so Ferry is the go command's only way to it.
const NAME: &str = "sum.fixture.example";

/// A Ferry serving `stored` (mode none: nothing fetched) and relaying `sumdbs` (`FERRY_SUMDBS`).
async fn ferry_with(dir: &Path, stored: &[FixtureModule], vars: &[(&str, &str)]) -> Ferry {
    let mut all = vec![("FERRY_DOWNLOAD_MODE", "none")];
    all.extend_from_slice(vars);
    let ferry = Ferry::from_env(&ferry_env(dir, None, &all), &Flags::default()).await;
    for module in stored {
        save(ferry.store().as_ref(), module).await;
    }
    ferry
}

#[tokio::test]
async fn the_go_command_verifies_a_module_against_a_checksum_database_reached_only_through_ferry() {
    let dir = tempfile::tempdir().unwrap();
    let module = FixtureModule::package("example.com/verified", "v1.0.0");
    write_goproxy_tree(&dir.path().join("tree"), std::slice::from_ref(&module));
    let sumdb = SumDbFixture::start(NAME, &dir.path().join("tree"), 0);
    let sumdbs = format!("{NAME}={}", sumdb.url);
    let ferry = ferry_with(dir.path(), &[module], &[("FERRY_SUMDBS", &sumdbs)]).await;
    let (home, app, output) = go_get_verifying(
        dir.path(),
        &ferry,
        &sumdb.key,
        "example.com/verified@v1.0.0",
    )
    .await;
    assert!(
        output.status.success(),
        "go get failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // (The fixture's log reaches the test through a pipe read by another thread.)
    eventually("the database saw the lookup", async || {
        sumdb
            .requests()
            .contains(&"/lookup/example.com/verified@v1.0.0".to_string())
    })
    .await;
    // The go command checked the record against the tree it was shown, and kept the verified lines.
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(
        go_sum.contains("example.com/verified v1.0.0 h1:")
            && go_sum.contains("example.com/verified v1.0.0/go.mod h1:"),
        "{go_sum}"
    );
    let cached_lookup = home
        .mod_cache()
        .join("cache/download/sumdb")
        .join(NAME)
        .join("lookup/example.com/verified@v1.0.0");
    assert!(
        cached_lookup.is_file(),
        "go did not record the verification"
    );
    ferry.stop().await;
}

#[tokio::test]
async fn a_zip_that_differs_from_what_the_checksum_database_says_ends_in_a_security_error() {
    let dir = tempfile::tempdir().unwrap();
    let published = FixtureModule::package("example.com/tampered", "v1.0.0");
    write_goproxy_tree(&dir.path().join("tree"), std::slice::from_ref(&published));
    let sumdb = SumDbFixture::start(NAME, &dir.path().join("tree"), 0);
    // The proxy's copy has a file the published version never had.
    let served = published.clone().file("backdoor.go", "package tampered\n");
    let sumdbs = format!("{NAME}={}", sumdb.url);
    let ferry = ferry_with(dir.path(), &[served], &[("FERRY_SUMDBS", &sumdbs)]).await;
    let (home, app, output) = go_get_verifying(
        dir.path(),
        &ferry,
        &sumdb.key,
        "example.com/tampered@v1.0.0",
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "go get accepted a tampered zip");
    assert!(stderr.contains("SECURITY ERROR"), "{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(
        !home
            .mod_cache()
            .join("example.com/tampered@v1.0.0")
            .exists(),
        "the tampered module was extracted"
    );
    assert!(
        !std::fs::read_to_string(app.join("go.mod"))
            .unwrap()
            .contains("example.com/tampered"),
        "the tampered module was added to go.mod"
    );
    ferry.stop().await;
}

#[tokio::test]
async fn sumdb_names_that_are_not_listed_are_404_and_junk_paths_are_400() {
    let dir = tempfile::tempdir().unwrap();
    // The default: sum.golang.org, which the go command uses unless told otherwise (whether `supported`
    // says 200 depends on whether this machine reaches it: see the route tests).
    let ferry = ferry_with(dir.path(), &[], &[]).await;
    let other = ferry.get("sumdb/sum.other.example/supported").await;
    assert_eq!(other.status, 404);
    assert!(
        other
            .text()
            .starts_with("not found: checksum database sum.other.example is not proxied"),
        "{}",
        other.text()
    );
    assert!(other.text().contains("sum.golang.org"), "{}", other.text());
    ferry.stop().await;

    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    let sumdb = SumDbFixture::start("sum.a.example", &dir.path().join("tree"), 0);
    let sumdbs = format!("sum.a.example={}", sumdb.url);
    let ferry = ferry_with(dir.path(), &[], &[("FERRY_SUMDBS", &sumdbs)]).await;
    let head = request(
        "HEAD",
        &format!("{}/sumdb/sum.a.example/supported", ferry.url()),
        &[],
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        ferry.get("sumdb/sum.golang.org/supported").await.status,
        404
    );
    assert_eq!(ferry.get("sumdb/sum.a.example/supported").await.status, 200);
    for junk in [
        "sumdb/sum.a.example/lookup/example.com/../x@v1.0.0",
        "sumdb/sum.a.example/lookup/example.com/x@master",
        "sumdb/sum.a.example/lookup/example.com/X@v1.0.0",
        "sumdb/sum.a.example/tile/8/0/../../../etc/passwd",
        "sumdb/sum.a.example/tile/8/0/%2e%2e/000",
        "sumdb/sum.a.example/tile/8/0/0000",
        "sumdb/sum.a.example/tile/99/0/000",
        "sumdb/sum.a.example/latest/x",
        "sumdb/sum.a.example/",
        "sumdb/..%2fsecret/latest",
        "sumdb/a%20b/latest",
    ] {
        let reply = ferry.get(junk).await;
        assert_eq!(reply.status, 400, "{junk}: {}", reply.text());
        assert!(
            reply.text().starts_with("bad request: "),
            "{junk}: {}",
            reply.text()
        );
    }
    ferry.stop().await;
}

#[tokio::test]
async fn a_checksum_database_that_is_down_is_502_and_one_that_hangs_is_504() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = Upstream::start(Vec::new()).await;
    hanging.set_behaviour(Behaviour::Hang);
    let failing = Upstream::start(Vec::new()).await;
    failing.set_behaviour(Behaviour::Fail500);
    let sumdbs = format!(
        "down.example=http://127.0.0.1:{},hangs.example={},fails.example={}",
        closed_port(),
        hanging.url(),
        failing.url()
    );
    let ferry = ferry_with(
        dir.path(),
        &[],
        &[("FERRY_SUMDBS", &sumdbs), ("FERRY_SUMDB_TIMEOUT", "1s")],
    )
    .await;

    let down = ferry.get("sumdb/down.example/latest").await;
    assert_eq!(down.status, 502, "{}", down.text());
    assert!(
        down.text()
            .starts_with("upstream failed: checksum database down.example:"),
        "{}",
        down.text()
    );
    let fails = ferry
        .get("sumdb/fails.example/lookup/example.com/x@v1.0.0")
        .await;
    assert_eq!(fails.status, 502, "{}", fails.text());
    assert!(fails.text().contains("500"), "{}", fails.text());

    let started = Instant::now();
    let hangs = ferry.get("sumdb/hangs.example/tile/8/0/000").await;
    assert_eq!(hangs.status, 504, "{}", hangs.text());
    assert!(
        hangs.text().starts_with("upstream timed out: "),
        "{}",
        hangs.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 504 took {:?}",
        started.elapsed()
    );
    // `supported` says 200 only for a database Ferry reaches: for one that is down, a 404, so that the go
    // command takes its own next route instead of failing through Ferry.
    let supported = ferry.get("sumdb/down.example/supported").await;
    assert_eq!(supported.status, 404, "{}", supported.text());
    assert!(
        supported.text().starts_with(
            "not found: checksum database down.example cannot be reached from this Ferry now"
        ),
        "{}",
        supported.text()
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_database_that_dribbles_its_answer_is_cut_off_at_sumdb_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let dribbling = Upstream::start(Vec::new()).await;
    // 128 bytes a second: `latest` (which the route's check reads whole) comes at once, a tile takes 50 s
    // or more, many times the deadline.
    let note = format!(
        "go.sum database tree\n1\n{}=\n\n\u{2014} dribbles.example AAAA\n",
        "A".repeat(43)
    );
    dribbling.replace_file("latest", &note);
    let answer = "x".repeat(200 * 32);
    dribbling.replace_file("tile/8/0/000.p/200", &answer);
    dribbling.replace_file("tile/8/0/000", &"x".repeat(256 * 32));
    dribbling.set_behaviour(Behaviour::Trickle {
        chunk: 128,
        every: Duration::from_secs(1),
    });
    let sumdbs = format!("dribbles.example={}", dribbling.url());
    let ferry = ferry_with(
        dir.path(),
        &[],
        &[("FERRY_SUMDBS", &sumdbs), ("FERRY_SUMDB_TIMEOUT", "2s")],
    )
    .await;

    // A partial tile is relayed as it streams in: its head comes in time, then the body is cut at the
    // deadline, and the client sees a failed transfer, not a success and not a hang.
    let url = format!("{}/sumdb/dribbles.example/tile/8/0/000.p/200", ferry.url());
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            &url,
        ])
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let said = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !output.status.success() && said.starts_with("200 "),
        "curl fails on the cut answer: {said} {output:?}"
    );
    let received: usize = said[4..].trim().parse().unwrap();
    assert!(received < answer.len(), "{said}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
        "cut at the 2 s deadline, not at the end of the dribble: {took:?}"
    );

    // A full tile is read whole before it is answered: too slow is a 504 at the deadline.
    let started = Instant::now();
    let tile = ferry.get("sumdb/dribbles.example/tile/8/0/000").await;
    assert_eq!(tile.status, 504, "{}", tile.text());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    ferry.stop().await;
}

/// The value of a counter in `/metrics` (0 when absent).
async fn counter(ferry: &Ferry, name: &str) -> f64 {
    ferry
        .get("metrics")
        .await
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_full_tile_is_asked_of_the_database_once_even_by_concurrent_clients_while_latest_and_partial_tiles_are_asked_every_time()
 {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    // 300 records: tile 8/0/000 (records 0-255) is full, 8/0/001 holds 44 and is partial.
    let sumdb = SumDbFixture::start(NAME, &dir.path().join("tree"), 300);
    let sumdbs = format!("{NAME}={}", sumdb.url);
    let ferry = ferry_with(dir.path(), &[], &[("FERRY_SUMDBS", &sumdbs)]).await;
    let hits = counter(&ferry, "ferry_sumdb_tile_cache_hits_total").await;
    let asked = |path: &str| sumdb.requests().iter().filter(|p| *p == path).count();
    // The fixture logs each request before answering it, but its log reaches the test through a pipe read
    // by another thread: wait for the count to arrive, then check it is exact.
    let asked_exactly = async |path: &str, n: usize| {
        eventually(&format!("the database logged {n} {path}"), async || {
            asked(path) >= n
        })
        .await;
        assert_eq!(asked(path), n, "{path}: {:?}", sumdb.requests());
    };

    let base = format!("sumdb/{NAME}");
    let first = ferry.get(&format!("{base}/tile/8/0/000")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.body.len(), 256 * 32, "a full tile of height 8");
    assert_eq!(
        first.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let second = ferry.get(&format!("{base}/tile/8/0/000")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, first.body);
    let head = request("HEAD", &format!("{}/{base}/tile/8/0/000", ferry.url()), &[]).await;
    assert_eq!((head.status, head.header("content-length")), (200, "8192"));
    asked_exactly("/tile/8/0/000", 1).await;
    assert!(counter(&ferry, "ferry_sumdb_tile_cache_hits_total").await >= hits + 2.0);

    // Builders starting at once: one request to the database for a tile none of them has.
    let data_tile = format!("{base}/tile/8/data/000");
    let answers = futures::future::join_all((0..8).map(|_| ferry.get(&data_tile))).await;
    for data in &answers {
        assert_eq!(data.status, 200);
        assert!(data.text().contains("filler.example/records v0.0.0 h1:"));
    }
    asked_exactly("/tile/8/data/000", 1).await;

    for _ in 0..2 {
        let partial = ferry.get(&format!("{base}/tile/8/0/001.p/44")).await;
        assert_eq!(partial.status, 200, "{}", partial.text());
        assert_eq!(partial.body.len(), 44 * 32);
        let latest = ferry.get(&format!("{base}/latest")).await;
        assert_eq!(latest.status, 200);
        assert!(
            latest.text().starts_with("go.sum database tree\n300\n"),
            "{}",
            latest.text()
        );
        assert_eq!(latest.header("cache-control"), "no-cache");
    }
    // Partial tiles and latest change: each asked every time (and `latest` once more: the route's check).
    asked_exactly("/tile/8/0/001.p/44", 2).await;
    asked_exactly("/latest", 3).await;

    // A miss in the database is a 404 the go command understands.
    let missing = ferry
        .get(&format!("{base}/lookup/example.com/absent@v1.0.0"))
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        missing.text().starts_with("not found: "),
        "{}",
        missing.text()
    );
    ferry.stop().await;
}

#[test]
fn a_bad_sumdbs_entry_stops_start_up_naming_where_it_was_written_and_never_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let load = |vars: &[(&str, &str)], file: Option<&str>| {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = Flags {
            config: file.map(|text| write_file(dir.path(), "ferry.toml", text)),
            ..Flags::default()
        };
        config::load(&flags, &env)
    };
    let message = load(
        &[("FERRY_SUMDBS", "sum.golang.org, s=ftp://me:hunter2@x")],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.starts_with("environment variable FERRY_SUMDBS: checksum database s: URL \"ftp://***@x\" needs http:// or https://"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    let message = load(
        &[],
        Some("listen = \"127.0.0.1:0\"\nsumdbs = [\"sum.golang.org\", \"bad name\"]\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("ferry.toml:2:30: checksum database name \"bad name\""),
        "{message}"
    );
    assert!(message.contains("write NAME or NAME=URL"), "{message}");

    let message = load(
        &[],
        Some("sumdbs = \"a.example, a.example=http://127.0.0.1:1\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("ferry.toml:1:22: checksum database a.example is listed twice"),
        "{message}"
    );

    let config = load(
        &[],
        Some("sumdbs = [\"sum.golang.org\", \"sum.corp.example=https://u:p@sumdb.corp.example/x/\"]\n"),
    )
    .unwrap();
    let shown: Vec<String> = config
        .sumdb
        .databases
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "sum.golang.org",
            "sum.corp.example=https://***@sumdb.corp.example/x"
        ]
    );
    for relays_none in ["sumdbs = []\n", "sumdbs = \"off\"\n"] {
        let config = load(&[], Some(relays_none)).unwrap();
        assert!(config.sumdb.databases.is_empty(), "{relays_none}");
    }
    let config = load(
        &[("FERRY_SUMDBS", "off")],
        Some("sumdbs = [\"a.example\"]\n"),
    )
    .unwrap();
    assert!(config.sumdb.databases.is_empty());
}

#[test]
fn an_https_checksum_database_is_trusted_through_ssl_cert_file_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = FixtureModule::package("example.com/overtls", "v1.0.0");
    // One GOPROXY tree: Ferry's file store and what the database knows.
    let tree = dir.path().join("tree");
    write_goproxy_tree(&tree, std::slice::from_ref(&module));
    let ca = dir.path().join("ca.pem");
    let sumdb = SumDbFixture::start_https(NAME, &tree, 0, &ca);
    let ferry_binary = |work: &str, ssl_cert_file: Option<&Path>| {
        let mut command = ferry();
        command
            .env("FERRY_LISTEN", "127.0.0.1:0")
            .env("FERRY_STORAGE", format!("file://{}", tree.display()))
            .env("FERRY_DOWNLOAD_MODE", "none")
            .env("FERRY_WORK_DIR", dir.path().join(work))
            .env("FERRY_SUMDBS", format!("{NAME}={}", sumdb.url));
        if let Some(file) = ssl_cert_file {
            command.env("SSL_CERT_FILE", file);
        }
        serving(command)
    };

    // The system's roots do not know the fixture's CA: the database is not trusted.
    let (mut untrusting, addr) = ferry_binary("work-1", None);
    let latest = get_blocking(&addr, &format!("/sumdb/{NAME}/latest"));
    assert!(latest.starts_with("HTTP/1.1 502"), "{latest}");
    assert!(latest.contains("certificate"), "{latest}");
    assert!(untrusting.terminate().success());
    assert!(sumdb.requests().is_empty(), "{:?}", sumdb.requests());

    let (mut ferry, addr) = ferry_binary("work-2", Some(&ca));
    let home = GoHome::new(dir.path(), &format!("http://{addr}"));
    let app = app_module(dir.path());
    let mut get = home.command(&app, &["get", "example.com/overtls@v1.0.0"]);
    let output = get.env("GOSUMDB", &sumdb.key).output().unwrap();
    assert!(
        output.status.success(),
        "go get failed:\n{}\nFerry's log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        ferry.log()
    );
    // (The fixture's log reaches the test through a pipe read by another thread: up to 5 s for it.)
    let lookup = "/lookup/example.com/overtls@v1.0.0".to_string();
    for _ in 0..100 {
        if sumdb.requests().contains(&lookup) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sumdb.requests().contains(&lookup), "{:?}", sumdb.requests());
    assert!(ferry.terminate().success());
}
