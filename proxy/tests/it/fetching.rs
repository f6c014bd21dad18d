//! Filling the store from an upstream through the real `go` command: Ferry built from its configuration
//! (an environment map, as `ferry` reads it) in front of a loopback fixture upstream.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry::config::Flags;
use ferry_module::{ModulePath, Version};
use ferry_storage::ModuleStoreExt;
use ferry_testkit::{
    Behaviour, FixtureModule, GoHome, SumDbFixture, Upstream, capture_logs, entries, escape,
    eventually, logged, processes_under, write_goproxy_tree,
};

use crate::harness::{Ferry, Reply, app_module, ferry_env, forward, get, save};

const PSEUDO: &str = "v0.0.0-20240102030405-abcdefabcdef";

fn hello(version: &str) -> FixtureModule {
    FixtureModule::package("example.com/hello", version)
}

/// Starts Ferry with a memory store, its own work dir under `dir`, and a `go` whose upstream is
/// `goproxy`; `settings` are more environment variables (FERRY_DOWNLOAD_MODE, FERRY_FETCH_TIMEOUT, ...).
/// The environment is a map handed to `config::load`: the process environment is never changed.
async fn start_ferry(dir: &Path, goproxy: &str, settings: &[(&str, &str)]) -> Ferry {
    capture_logs();
    Ferry::from_env(&ferry_env(dir, Some(goproxy), settings), &Flags::default()).await
}

/// The fixture upstream holding every `.zip` answer until `release`: a fetch that is reliably still
/// running while a test acts on it.
async fn gated_upstream(modules: &[FixtureModule]) -> Upstream {
    let upstream = Upstream::start(modules.to_vec()).await;
    upstream.hold(".zip");
    upstream
}

/// Ferry in `async` mode (and `settings`) in front of a gated upstream of `versions` of example.com/hello,
/// each version's zip asked for once (a 404 that queues its fetch), once `held` of the fetches wait on the
/// upstream.
async fn queued_async_fills(
    versions: &[&str],
    settings: &[(&str, &str)],
    held: usize,
) -> (Upstream, tempfile::TempDir, Ferry) {
    let modules: Vec<_> = versions.iter().map(|v| hello(v)).collect();
    let upstream = gated_upstream(&modules).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings.to_vec();
    settings.push(("FERRY_DOWNLOAD_MODE", "async"));
    let ferry = start_ferry(dir.path(), &upstream.url(), &settings).await;
    for version in versions {
        let reply = ferry
            .get(&format!("example.com/hello/@v/{version}.zip"))
            .await;
        assert_eq!(reply.status, 404, "{}", reply.text());
    }
    eventually(
        &format!("{held} fetches wait on the upstream"),
        async || upstream.held() == held,
    )
    .await;
    (upstream, dir, ferry)
}

/// How many `.zip` requests named `module@version`.
fn zip_requests_for(upstream: &Upstream, module: &str, version: &str) -> usize {
    upstream.request_count(&format!("{}/@v/{}.zip", escape(module), escape(version)))
}

/// A stored fetch's temporary directory is removed in the background, right after the answer.
async fn work_dir_empties(work_dir: &Path) {
    eventually("the work dir is empty", || {
        let empty = entries(work_dir).is_empty();
        async move { empty }
    })
    .await;
}

/// A GET in its own task, to be awaited or dropped (aborted) like a client that goes away.
fn spawn_get(url: String) -> tokio::task::JoinHandle<Reply> {
    tokio::spawn(async move { get(&url).await })
}

fn info_version(reply: &Reply) -> String {
    let info: serde_json::Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {:?} ({})", reply.text(), reply.status));
    info["Version"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_through_an_empty_ferry_and_a_second_client_is_served_from_the_store() {
    let world = FixtureModule::package("example.com/Upper/world", "v0.2.0");
    let upstream = Upstream::start(vec![hello("v1.0.0"), world.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.com/app\n\ngo 1.21\n\nrequire (\n\texample.com/hello v1.0.0\n\texample.com/Upper/world v0.2.0\n)\n",
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport (\n\t\"os\"\n\n\t\"example.com/Upper/world\"\n\t\"example.com/hello\"\n)\n\nfunc main() { os.Stdout.WriteString(hello.Version() + \" \" + world.Version()) }\n",
    )
    .unwrap();
    // Both clients share a build cache (so the standard library is compiled once), never a module cache.
    let build_cache = dir.path().join("gocache").display().to_string();
    let go_run = |home: &GoHome| {
        let mut command = home.command(&app, &["run", "."]);
        command.env("GOCACHE", &build_cache);
        tokio::process::Command::from(command).output()
    };

    let first = GoHome::new(dir.path(), &ferry.url());
    let output = go_run(&first).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "v1.0.0 v0.2.0");
    assert!(ferry.stored("example.com/hello", "v1.0.0").await);
    assert!(ferry.stored("example.com/Upper/world", "v0.2.0").await);
    assert_eq!(
        upstream.request_count(".zip"),
        2,
        "{:?}",
        upstream.requests()
    );

    let second = GoHome::new(dir.path(), &ferry.url());
    let output = go_run(&second).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "v1.0.0 v0.2.0");
    assert!(
        second
            .mod_cache()
            .join("cache/download/example.com/!upper/world/@v/v0.2.0.zip")
            .is_file(),
        "the second client downloaded the module itself"
    );
    assert_eq!(
        upstream.request_count(".zip"),
        2,
        "the second client was served from the store: {:?}",
        upstream.requests()
    );
    work_dir_empties(&dir.path().join("work")).await;
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_mod_asked_for_alone_is_fetched_without_its_zip_and_the_zip_comes_when_asked() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    let client = GoHome::new(dir.path(), &ferry.url());
    let cwd = tempfile::tempdir_in(dir.path()).unwrap();

    // `go list -m` reads a version's .info and .mod, as the go command does for the go.mod files of a
    // module graph: Ferry fetches those two and no zip.
    let listed = client.run(
        cwd.path(),
        &["list", "-m", "-json", "example.com/hello@v1.0.0"],
    );
    assert!(listed.contains("\"GoMod\""), "{listed}");
    assert_eq!(
        upstream.request_count(".zip"),
        0,
        "{:?}",
        upstream.requests()
    );
    assert!(ferry.stored("example.com/hello", "v1.0.0").await);
    let (m, v) = (
        ModulePath::new("example.com/hello").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    assert!(!ferry.store().has_zip(&m, &v).await.unwrap());
    assert_eq!(
        ferry.get("example.com/hello/@v/list").await.text(),
        "v1.0.0\n"
    );

    // The zip, when a client needs it, is fetched then, once, and the go command checks its hash.
    let downloaded = client.run(
        cwd.path(),
        &["mod", "download", "-json", "example.com/hello@v1.0.0"],
    );
    assert!(!downloaded.contains("\"Error\""), "{downloaded}");
    assert_eq!(
        upstream.request_count(".zip"),
        1,
        "{:?}",
        upstream.requests()
    );
    assert!(ferry.store().has_zip(&m, &v).await.unwrap());
    let again = ferry.get("example.com/hello/@v/v1.0.0.zip").await;
    assert_eq!(again.body, hello("v1.0.0").zip_bytes());
    assert_eq!(upstream.request_count(".zip"), 1);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_fetched_over_http_are_verified_against_the_checksum_database_and_a_tampered_zip_is_refused()
 {
    let dir = tempfile::tempdir().unwrap();
    let honest = FixtureModule::package("example.com/honest", "v1.0.0");
    let published = FixtureModule::package("example.com/tampered", "v1.0.0");
    write_goproxy_tree(
        &dir.path().join("tree"),
        &[honest.clone(), published.clone()],
    );
    let sumdb = SumDbFixture::start("sum.fixture.example", &dir.path().join("tree"), 0);
    // The upstream's copy of one version has a file the published version never had; its go.mod is the same.
    let served = published.clone().file("backdoor.go", "package tampered\n");
    let upstream = Upstream::start(vec![honest.clone(), served]).await;
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let ferry = start_ferry(dir.path(), &upstream.url(), &[("GOSUMDB", &gosumdb)]).await;
    assert!(logged(&[
        "versions are fetched over HTTP and verified against the checksum database",
        "sum.fixture.example",
    ]));

    let reply = ferry.get("example.com/honest/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, honest.zip_bytes());
    // (The fixture's log reaches the test through a pipe read by another thread.)
    eventually("the database saw the lookup", async || {
        sumdb
            .requests()
            .contains(&"/lookup/example.com/honest@v1.0.0".to_string())
    })
    .await;

    // The go.mod matches the database's line: served. The zip does not: a 502 that says why, nothing stored.
    let reply = ferry.get("example.com/tampered/@v/v1.0.0.mod").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = ferry.get("example.com/tampered/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("SECURITY ERROR"), "{}", reply.text());
    let (m, v) = (
        ModulePath::new("example.com/tampered").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    assert!(!ferry.store().has_zip(&m, &v).await.unwrap());
    work_dir_empties(&dir.path().join("work")).await;
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_verified_at_the_same_moment_ask_the_checksum_database_for_each_tile_once_and_a_tampered_go_mod_is_still_refused()
 {
    let dir = tempfile::tempdir().unwrap();
    let graph: Vec<FixtureModule> = (0..6)
        .map(|i| FixtureModule::package(&format!("example.com/graph/m{i}"), "v1.0.0"))
        .collect();
    let published = FixtureModule::package("example.com/graph/tampered", "v1.0.0");
    let mut all = graph.clone();
    all.push(published.clone());
    write_goproxy_tree(&dir.path().join("tree"), &all);
    // Tiles 200 ms away: proofs started together all wait on the tree's tiles at once. 300 made-up
    // records make the first level-0 tile full.
    let sumdb = SumDbFixture::start_with_tile_delay(
        "sum.fixture.example",
        &dir.path().join("tree"),
        300,
        Duration::from_millis(200),
    );
    // Every record looked up once beforehand: the tree stops growing, so every proof reads the same tiles.
    for module in &all {
        let url = format!(
            "{}/lookup/{}@{}",
            sumdb.url,
            module.path(),
            module.version()
        );
        assert_eq!(ferry_testkit::http::get(&url).await.status, 200, "{url}");
    }
    // (The fixture's log reaches the test through a pipe read by another thread.)
    eventually("the database logged those lookups", async || {
        sumdb.requests().len() == all.len()
    })
    .await;
    let before = all.len();
    let served = published.clone().with_go_mod(
        "module example.com/graph/tampered\n\ngo 1.21\n\nrequire example.com/evil v1.0.0\n",
    );
    let mut upstream_modules = graph.clone();
    upstream_modules.push(served);
    let upstream = Upstream::start(upstream_modules).await;
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let ferry = start_ferry(dir.path(), &upstream.url(), &[("GOSUMDB", &gosumdb)]).await;

    // Builders ask the cold Ferry for the whole graph at once; each `.info` waits for its verified fill.
    let infos: Vec<_> = graph
        .iter()
        .map(|m| spawn_get(format!("{}/{}/@v/v1.0.0.info", ferry.url(), m.path())))
        .collect();
    for (module, info) in graph.iter().zip(infos) {
        let info = info.await.unwrap();
        assert_eq!(info.status, 200, "{}: {}", module.path(), info.text());
        assert!(
            ferry.stored(module.path(), module.version()).await,
            "{}",
            module.path()
        );
    }
    let lookups = |requests: &[String]| {
        requests
            .iter()
            .filter(|p| p.starts_with("/lookup/"))
            .count()
    };
    eventually("the database saw every fill's lookup", async || {
        lookups(&sumdb.requests()[before..]) == graph.len()
    })
    .await;
    let requests = sumdb.requests()[before..].to_vec();
    let mut tiles: Vec<&String> = requests
        .iter()
        .filter(|p| p.starts_with("/tile/"))
        .collect();
    assert!(!tiles.is_empty(), "{requests:?}");
    tiles.sort();
    let asked = tiles.len();
    tiles.dedup();
    assert_eq!(asked, tiles.len(), "a tile asked twice: {requests:?}");

    // The tiles Ferry holds verify a tampered go.mod no less: the go command's download fails, nothing is stored.
    let home = GoHome::new(dir.path(), &ferry.url());
    let output = home
        .output_async(
            dir.path(),
            &[
                "mod",
                "download",
                "-json",
                "example.com/graph/tampered@v1.0.0",
            ],
        )
        .await;
    assert!(
        !output.status.success(),
        "a go.mod the database disowns was served as verified"
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("SECURITY ERROR") || said.contains("checksum mismatch"),
        "{said}"
    );
    assert!(!ferry.stored("example.com/graph/tampered", "v1.0.0").await);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mod_is_answered_as_soon_as_it_is_fetched_and_its_version_stored_once_the_rest_has_come()
{
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    // The upstream sits on the `.info` (as a real one does for a version nobody has downloaded).
    upstream.hold(".info");
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    let (m, v) = (
        ModulePath::new("example.com/hello").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );

    let reply = ferry.get("example.com/hello/@v/v1.0.0.mod").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), hello("v1.0.0").go_mod());
    // Not checked yet: no cache in front of Ferry may keep it, and no ETag vouches for it.
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("etag"), "");
    assert_eq!(upstream.held(), 1);
    assert!(!ferry.store().exists(&m, &v).await.unwrap());
    // A `.info` asked meanwhile waits for the same fill (no second fetch), which stores the version.
    let info = spawn_get(format!("{}/example.com/hello/@v/v1.0.0.info", ferry.url()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!info.is_finished());
    upstream.release();
    let info = info.await.unwrap();
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info_version(&info), "v1.0.0");
    assert!(ferry.store().exists(&m, &v).await.unwrap());
    assert!(!ferry.store().has_zip(&m, &v).await.unwrap());
    assert_eq!(upstream.request_count(".mod"), 1);
    assert_eq!(upstream.request_count(".info"), 1);
    // Stored and verified, the same `.mod` is immutable from now on.
    let reply = ferry.get("example.com/hello/@v/v1.0.0.mod").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_ne!(reply.header("etag"), "");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_mod_the_checksum_database_disowns_is_answered_as_fetched_but_never_stored_and_go_refuses_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let published = FixtureModule::package("example.com/tampered", "v1.0.0");
    write_goproxy_tree(&dir.path().join("tree"), std::slice::from_ref(&published));
    let sumdb = SumDbFixture::start("sum.fixture.example", &dir.path().join("tree"), 0);
    // The upstream's copy requires a module the published version never did.
    let served = published
        .clone()
        .with_go_mod("module example.com/tampered\n\ngo 1.21\n\nrequire example.com/evil v1.0.0\n");
    let upstream = Upstream::start(vec![served.clone()]).await;
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let ferry = start_ferry(dir.path(), &upstream.url(), &[("GOSUMDB", &gosumdb)]).await;
    let (m, v) = (
        ModulePath::new("example.com/tampered").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );

    // The fill's checks wait on the `.info`, which the upstream sits on: the `.mod` is answered before the
    // database's word, as the upstream itself would answer it...
    upstream.hold(".info");
    let reply = ferry.get("example.com/tampered/@v/v1.0.0.mod").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), served.go_mod());
    // ...but never as cacheable: a CDN or a chained proxy in front of Ferry must not keep it.
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("etag"), "");
    // ...and the go command checks each go.mod of its module graph against the database itself (`go mod
    // graph` reads go.mod files only; `go list -m all` would ask for the `.info` the upstream sits on).
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = app_module(dir.path());
    let requiring = "module app\n\ngo 1.21\n\nrequire example.com/tampered v1.0.0\n";
    std::fs::write(app.join("go.mod"), requiring).unwrap();
    let mut command = home.command(&app, &["mod", "graph"]);
    command.env("GOSUMDB", &gosumdb);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "go accepted a disowned go.mod");
    assert!(
        stderr.contains("verifying go.mod: checksum mismatch"),
        "{stderr}"
    );
    assert!(stderr.contains("SECURITY ERROR"), "{stderr}");

    // Once the checks can end, Ferry refuses the version: never stored, said on the log and to the
    // requests that wait for the checks.
    upstream.release();
    let reply = ferry.get("example.com/tampered/@v/v1.0.0.info").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("SECURITY ERROR"), "{}", reply.text());
    eventually("the refusal is logged", async || {
        logged(&["example.com/tampered", "not stored", "checksum mismatch"])
    })
    .await;
    assert!(!ferry.store().exists(&m, &v).await.unwrap());
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_mod_the_checksum_database_does_not_know_is_answered_no_store_and_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    // The database knows another module only; the upstream serves one it has never heard of.
    let known = FixtureModule::package("example.com/known", "v1.0.0");
    write_goproxy_tree(&dir.path().join("tree"), std::slice::from_ref(&known));
    let sumdb = SumDbFixture::start("sum.fixture.example", &dir.path().join("tree"), 0);
    let unknown = FixtureModule::package("example.com/unknown", "v1.0.0");
    let upstream = Upstream::start(vec![unknown.clone()]).await;
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let ferry = start_ferry(dir.path(), &upstream.url(), &[("GOSUMDB", &gosumdb)]).await;

    upstream.hold(".info");
    let reply = ferry.get("example.com/unknown/@v/v1.0.0.mod").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), unknown.go_mod());
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("etag"), "");
    upstream.release();
    let reply = ferry.get("example.com/unknown/@v/v1.0.0.info").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(!ferry.stored("example.com/unknown", "v1.0.0").await);
    // Asked again, the `.mod` is fetched and answered unverified again, never from a memory of the first.
    let reply = ferry.get("example.com/unknown/@v/v1.0.0.mod").await;
    assert_eq!(
        reply.header("cache-control"),
        "no-store",
        "{}",
        reply.text()
    );
    assert!(!ferry.stored("example.com/unknown", "v1.0.0").await);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_whose_go_mod_differs_from_the_mod_file_is_refused_when_fetched_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    // The upstream answers a .mod that is not the go.mod inside the zip (no checksum database here).
    upstream.replace_file(
        "example.com/hello/@v/v1.0.0.mod",
        "module example.com/hello\n\ngo 1.21\n\nrequire example.com/evil v1.0.0\n",
    );
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    let reply = ferry.get("example.com/hello/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(
        reply.text().contains("go.mod that differs from its .mod"),
        "{}",
        reply.text()
    );
    assert!(!ferry.stored("example.com/hello", "v1.0.0").await);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_leads_back_to_ferry_under_another_address_fails_the_fill_at_once() {
    // A forwarder in front of Ferry stands for a host name or a load balancer that leads back to it: the
    // start-up check cannot see that this upstream is Ferry itself.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let looped = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &looped, &[("FERRY_FETCH_TIMEOUT", "60s")]).await;
    let target = ferry.url().trim_start_matches("http://").to_string();
    let forwarding = tokio::spawn(forward(listener, target));

    let started = Instant::now();
    let reply = ferry.get("example.com/hello/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(
        reply.text().contains("leads back to this Ferry"),
        "{}",
        reply.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not waited out: {:?}",
        started.elapsed()
    );
    forwarding.abort();
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_requests_make_one_upstream_fetch_and_all_get_the_same_bytes() {
    // A few hundred KiB of incompressible content, so the zip takes more than one read to store and serve.
    let mut noise = Vec::with_capacity(512 * 1024);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 512 * 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    let module = hello("v1.0.0").file("noise.bin", noise);
    let upstream = Upstream::start(vec![module.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;

    let url = format!("{}/example.com/hello/@v/v1.0.0.zip", ferry.url());
    let replies = futures::future::join_all((0..48).map(|_| get(&url))).await;
    let expected = module.zip_bytes();
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 200, "client {i}: {}", reply.text());
        assert!(reply.body == expected[..], "client {i} got other bytes");
    }
    assert_eq!(upstream.request_count("v1.0.0.zip"), 1);
    work_dir_empties(&dir.path().join("work")).await;
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_versions_and_modules_are_404_with_gos_reason() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;

    for (path, named) in [
        (
            "example.com/hello/@v/v9.9.9.zip",
            "example.com/hello@v9.9.9",
        ),
        (
            "example.com/hello/@v/v9.9.9.info",
            "example.com/hello@v9.9.9",
        ),
        ("example.com/nope/@v/v1.0.0.mod", "example.com/nope@v1.0.0"),
    ] {
        let reply = ferry.get(path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        let text = reply.text();
        // go's own words: the version it asked for and the upstream's 404.
        assert!(text.starts_with("not found: "), "{path}: {text:?}");
        assert!(
            !text.starts_with("not found: not found:"),
            "{path}: {text:?}"
        );
        assert!(text.contains(named), "{path}: {text:?}");
        assert!(text.contains("404 Not Found"), "{path}: {text:?}");
        assert_eq!(reply.header("cache-control"), "no-store");
    }
    assert_eq!(
        ferry.stored_versions("example.com/hello").await,
        Vec::<String>::new()
    );
    assert_eq!(entries(&dir.path().join("work")), Vec::<PathBuf>::new());
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_fault_during_a_fill_is_a_503_that_shows_no_local_path_and_blames_no_upstream() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    // The work dir disappears under the running Ferry (a cleaner, an operator): the fetch cannot start.
    let work_dir = dir.path().join("work");
    std::fs::remove_dir_all(&work_dir).unwrap();
    std::fs::write(&work_dir, "not a directory").unwrap();

    // A zip is downloaded into the work dir (a `.info` or `.mod` alone is fetched into memory).
    let reply = ferry.get("example.com/hello/@v/v1.0.0.zip").await;
    let text = reply.text();
    assert_eq!(reply.status, 503, "{text}");
    assert!(text.contains("a local fault"), "{text}");
    assert!(
        !text.contains(dir.path().to_str().unwrap()) && !text.contains("upstream"),
        "no local path, and the upstream is not blamed: {text}"
    );
    assert!(logged(&["local fault", work_dir.to_str().unwrap()]));
    assert_eq!(upstream.request_count(".zip"), 0);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_500_is_a_502() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Fail500);
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;

    for path in [
        "example.com/hello/@v/v1.0.0.zip",
        "example.com/hello/@v/master.info",
    ] {
        let reply = ferry.get(path).await;
        assert_eq!(reply.status, 502, "{path}: {}", reply.text());
        // go's reason, said once: `upstream failed: example.com/hello@v1.0.0: reading ...: 500 ...`.
        assert!(
            reply
                .text()
                .starts_with("upstream failed: example.com/hello@"),
            "{path}: {}",
            reply.text()
        );
        assert!(
            reply.text().contains("500 Internal Server Error"),
            "{path}: {}",
            reply.text()
        );
    }
    assert!(upstream.request_count(".info") >= 1);
    assert!(!ferry.stored("example.com/hello", "v1.0.0").await);
    assert_eq!(entries(&dir.path().join("work")), Vec::<PathBuf>::new());
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upstream_is_a_504_after_the_deadline_and_leaves_no_go_and_no_directory() {
    a_hung_upstream_is_a_504(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upstream_fetched_over_http_is_a_504_after_the_deadline_and_leaves_no_directory() {
    a_hung_upstream_is_a_504(true).await;
}

/// A fill from a hanging upstream, through `go mod download` or over HTTP (`native`).
async fn a_hung_upstream_is_a_504(native: bool) {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(
        dir.path(),
        &upstream.url(),
        &[
            ("FERRY_FETCH_TIMEOUT", "2s"),
            ("FERRY_FETCH_NATIVE", if native { "on" } else { "off" }),
        ],
    )
    .await;

    let started = Instant::now();
    let request = spawn_get(format!("{}/example.com/hello/@v/v1.0.0.zip", ferry.url()));
    let work_dir = dir.path().join("work");
    if native {
        eventually("the upstream is asked", async || {
            upstream.request_count(".info") > 0
        })
        .await;
    } else {
        // go is seen running in the work dir, so "none left" below is not true for want of looking.
        eventually("go runs in the work dir", || {
            let running = !processes_under(&work_dir).is_empty();
            async move { running }
        })
        .await;
    }
    let reply = request.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(reply.text().contains("timed out"), "{}", reply.text());
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert_eq!(processes_under(&dir.path().join("work")), Vec::<i32>::new());
    assert_eq!(entries(&dir.path().join("work")), Vec::<PathBuf>::new());
    assert!(!ferry.stored("example.com/hello", "v1.0.0").await);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mode_answers_404_then_serves_the_stored_version() {
    let module = hello("v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(
        dir.path(),
        &upstream.url(),
        &[("FERRY_DOWNLOAD_MODE", "async")],
    )
    .await;

    let reply = ferry.get("example.com/hello/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert!(reply.text().starts_with("not found: "), "{}", reply.text());
    assert!(reply.text().contains("being fetched"), "{}", reply.text());

    eventually("the version is stored", || {
        ferry.stored("example.com/hello", "v1.0.0")
    })
    .await;
    let reply = ferry.get("example.com/hello/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.body == module.zip_bytes()[..]);
    assert_eq!(upstream.request_count(".zip"), 1);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_does_not_cancel_the_fetch() {
    let (v1, v2) = (hello("v1.0.0"), hello("v1.1.0"));
    let upstream = gated_upstream(&[v1.clone(), v2.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    let url = |version: &str| format!("{}/example.com/hello/@v/{version}.zip", ferry.url());

    // v1.0.0: two clients wait on one fetch, and one of them goes away.
    let leaving = spawn_get(url("v1.0.0"));
    let staying = spawn_get(url("v1.0.0"));
    // v1.1.0: the only client goes away.
    let alone = spawn_get(url("v1.1.0"));
    eventually("go asks for both zips", || {
        let both = upstream.held() == 2;
        async move { both }
    })
    .await;
    leaving.abort();
    alone.abort();
    assert!(matches!(leaving.await, Err(e) if e.is_cancelled()));
    assert!(matches!(alone.await, Err(e) if e.is_cancelled()));

    upstream.release();
    let reply = staying.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.body == v1.zip_bytes()[..]);
    eventually("v1.1.0 is stored all the same", || {
        ferry.stored("example.com/hello", "v1.1.0")
    })
    .await;
    assert_eq!(
        zip_requests_for(&upstream, "example.com/hello", "v1.0.0"),
        1
    );
    assert_eq!(
        zip_requests_for(&upstream, "example.com/hello", "v1.1.0"),
        1
    );
    let reply = ferry.get("example.com/hello/@v/v1.1.0.zip").await;
    assert!(reply.body == v2.zip_bytes()[..]);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_info_answers_the_resolved_version_and_does_not_refetch_a_stored_one() {
    let upstream = Upstream::start(vec![hello(PSEUDO), hello("v1.0.0"), hello("v1.1.0")]).await;
    upstream.alias("example.com/hello", "master", PSEUDO);
    upstream.alias("example.com/hello", "abcdefabcdef", PSEUDO);
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    // The latest release is stored already (filled earlier, or by another replica).
    save(ferry.store().as_ref(), &hello("v1.1.0")).await;

    let reply = ferry.get("example.com/hello/@v/master.info").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(info_version(&reply), PSEUDO);
    assert_eq!(reply.header("cache-control"), "public, max-age=60");
    assert!(ferry.stored("example.com/hello", PSEUDO).await);
    assert_eq!(upstream.request_count(&format!("{PSEUDO}.zip")), 1);

    // The same commit by its hash resolves to the stored pseudo-version: not fetched again.
    let reply = ferry.get("example.com/hello/@v/abcdefabcdef.info").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(info_version(&reply), PSEUDO);
    assert_eq!(upstream.request_count(&format!("{PSEUDO}.zip")), 1);

    let reply = ferry.get("example.com/hello/@v/latest.info").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(info_version(&reply), "v1.1.0");
    assert_eq!(upstream.request_count("v1.1.0.zip"), 0);
    assert_eq!(upstream.request_count("v1.0.0.zip"), 0);
    assert_eq!(
        ferry.stored_versions("example.com/hello").await,
        [PSEUDO, "v1.1.0"]
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_merges_stored_and_upstream_versions_and_latest_asks_the_upstream() {
    let upstream = Upstream::start(vec![hello("v1.0.0"), hello("v1.1.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    // Stored, and no longer listed upstream.
    save(ferry.store().as_ref(), &hello("v0.9.0")).await;

    let reply = ferry.get("example.com/hello/@v/list").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "v0.9.0\nv1.0.0\nv1.1.0\n");
    assert!(upstream.request_count("@v/list") >= 1);

    let reply = ferry.get("example.com/hello/@latest").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(info_version(&reply), "v1.1.0");
    // Listing and asking for the latest store nothing.
    assert_eq!(ferry.stored_versions("example.com/hello").await, ["v0.9.0"]);
    assert_eq!(upstream.request_count(".zip"), 0);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_latest_fall_back_to_the_store_when_the_upstream_fails() {
    let upstream = Upstream::start(vec![]).await;
    upstream.set_behaviour(Behaviour::Fail500);
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    let stored = FixtureModule::package("example.com/fallback", "v0.9.0");
    save(ferry.store().as_ref(), &stored).await;

    let reply = ferry.get("example.com/fallback/@v/list").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "v0.9.0\n");
    assert!(logged(&[
        "upstream list failed; answering with the stored versions",
        "module=example.com/fallback",
    ]));
    let reply = ferry.get("example.com/fallback/@latest").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(info_version(&reply), "v0.9.0");
    assert!(logged(&[
        "upstream latest failed; answering with the latest stored version",
        "module=example.com/fallback",
    ]));
    assert!(
        upstream.request_count("@v/list") >= 2,
        "{:?}",
        upstream.requests()
    );

    // Nothing stored: the upstream's failure is the answer.
    for path in [
        "example.com/unstored/@v/list",
        "example.com/unstored/@latest",
    ] {
        let reply = ferry.get(path).await;
        assert_eq!(reply.status, 502, "{path}: {}", reply.text());
        assert!(reply.text().contains("500"), "{path}: {}", reply.text());
    }
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_queue_is_bounded_and_deduplicated_and_a_full_queue_still_answers_404() {
    let versions = ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"];
    let modules: Vec<_> = versions.iter().map(|v| hello(v)).collect();
    let upstream = gated_upstream(&modules).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(
        dir.path(),
        &upstream.url(),
        &[
            ("FERRY_DOWNLOAD_MODE", "async"),
            ("FERRY_ASYNC_WORKERS", "1"),
            ("FERRY_ASYNC_QUEUE_SIZE", "2"),
        ],
    )
    .await;
    let ask = |version: &str| {
        spawn_get(format!(
            "{}/example.com/hello/@v/{version}.zip",
            ferry.url()
        ))
    };
    let being_fetched = |reply: &Reply| {
        reply.status == 404 && reply.text().contains("being fetched, try again shortly")
    };

    // The one worker takes v1.0.0 and waits on the upstream: the queue is empty again.
    assert!(being_fetched(&ask("v1.0.0").await.unwrap()));
    eventually("the worker fetches v1.0.0", || {
        let held = upstream.held() == 1;
        async move { held }
    })
    .await;
    // Asked three times, v1.1.0 takes one place in the queue; v1.2.0 the other.
    for _ in 0..3 {
        assert!(being_fetched(&ask("v1.1.0").await.unwrap()));
    }
    assert!(being_fetched(&ask("v1.2.0").await.unwrap()));
    // The queue is full: v1.3.0 is dropped, and its client is told the same.
    assert!(being_fetched(&ask("v1.3.0").await.unwrap()));
    assert!(logged(&[
        "background fetch dropped",
        "module=example.com/hello",
        "query=v1.3.0",
    ]));
    // One worker: nothing else reached the upstream while v1.0.0 is held.
    assert_eq!(upstream.held(), 1);

    upstream.release();
    for version in ["v1.0.0", "v1.1.0", "v1.2.0"] {
        eventually(&format!("{version} is stored"), || {
            ferry.stored("example.com/hello", version)
        })
        .await;
        assert_eq!(zip_requests_for(&upstream, "example.com/hello", version), 1);
    }
    assert!(!ferry.stored("example.com/hello", "v1.3.0").await);
    assert_eq!(
        zip_requests_for(&upstream, "example.com/hello", "v1.3.0"),
        0
    );
    // Once the queue has room again, asking again queues it.
    assert!(being_fetched(&ask("v1.3.0").await.unwrap()));
    eventually("v1.3.0 is stored", || {
        ferry.stored("example.com/hello", "v1.3.0")
    })
    .await;
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_number_of_async_workers_fetch_at_once() {
    let versions = ["v1.0.0", "v1.1.0", "v1.2.0"];
    // Two workers wait on the upstream.
    let (upstream, dir, ferry) = queued_async_fills(
        &versions,
        &[
            ("FERRY_ASYNC_WORKERS", "2"),
            ("FERRY_FETCH_CONCURRENCY", "4"),
            // The fetches are seen as go processes.
            ("FERRY_FETCH_NATIVE", "off"),
        ],
        2,
    )
    .await;
    // The third waits for a worker, not for the fetcher's limit (4).
    assert_eq!(processes_under(&dir.path().join("work")).len(), 2);
    upstream.release();
    for version in versions {
        eventually(&format!("{version} is stored"), || {
            ferry.stored("example.com/hello", version)
        })
        .await;
    }
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_queued_fetches() {
    let versions = ["v1.0.0", "v1.1.0", "v1.2.0"];
    // The worker fetches the first.
    let (upstream, _dir, ferry) =
        queued_async_fills(&versions, &[("FERRY_ASYNC_WORKERS", "1")], 1).await;
    let proxy = ferry.proxy.clone();
    let stopping = tokio::spawn(ferry.stop());
    upstream.release();
    stopping.await.unwrap();
    // Shutdown returned only once the queue was worked off.
    for version in versions {
        let (module, version) = (
            ModulePath::new("example.com/hello").unwrap(),
            Version::new(version).unwrap(),
        );
        let stored = proxy.store().exists(&module, &version).await.unwrap();
        assert!(stored, "{version} is stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_cancels_fetches_still_running_at_its_deadline() {
    // The worker fetches the first.
    let (upstream, dir, ferry) = queued_async_fills(
        &["v1.0.0", "v1.1.0"],
        &[
            ("FERRY_ASYNC_WORKERS", "1"),
            ("FERRY_SHUTDOWN_TIMEOUT", "1s"),
            // The running fetch is seen as a go process.
            ("FERRY_FETCH_NATIVE", "off"),
        ],
        1,
    )
    .await;
    let (work_dir, proxy) = (dir.path().join("work"), ferry.proxy.clone());
    assert_eq!(processes_under(&work_dir).len(), 1);

    let started = Instant::now();
    ferry.stop().await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(logged(&[
        "background fetches still running at the shutdown deadline"
    ]));
    // The running fetch is cancelled: its go killed, its directory removed; the queued one never starts.
    eventually("go is gone", || {
        let gone = processes_under(&work_dir).is_empty();
        async move { gone }
    })
    .await;
    eventually("the work dir is empty", || {
        let empty = entries(&work_dir).is_empty();
        async move { empty }
    })
    .await;
    upstream.release();
    let module = ModulePath::new("example.com/hello").unwrap();
    assert_eq!(
        proxy.store().list(&module).await.unwrap(),
        Vec::<Version>::new()
    );
    assert_eq!(
        zip_requests_for(&upstream, "example.com/hello", "v1.1.0"),
        0
    );
}

/// Six versions of a module whose upstream answers nothing until released.
fn hanging(upstream: &Upstream) -> Vec<String> {
    let versions: Vec<String> = (0..6).map(|n| format!("v1.0.{n}")).collect();
    for version in &versions {
        upstream.add(FixtureModule::package("example.com/hang", version));
    }
    upstream.hold("example.com/hang");
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_hanging_fills_do_not_starve_an_unrelated_cold_fetch() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let versions = hanging(&upstream);
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        ("FERRY_FETCH_CONCURRENCY", "2"),
        ("FERRY_FETCH_TIMEOUT", "2m"),
        ("FERRY_FETCH_SLOT_WAIT", "2m"),
        // One held upstream request per fill (over HTTP, a fill asks for the .info and .mod at once).
        ("FERRY_FETCH_NATIVE", "off"),
    ];
    let ferry = start_ferry(dir.path(), &upstream.url(), &settings).await;

    // Six clients ask for six versions the upstream hangs on, then give up.
    let clients: Vec<_> = versions
        .iter()
        .map(|v| spawn_get(format!("{}/example.com/hang/@v/{v}.info", ferry.url())))
        .collect();
    eventually("two fills hold both slots", async || upstream.held() == 2).await;
    clients.iter().for_each(tokio::task::JoinHandle::abort);

    // An unrelated cold fetch is not stuck behind them: it gets a slot and is served, long before any
    // of their timeouts.
    let started = Instant::now();
    let reply = ferry.get("example.com/hello/@v/v1.0.0.info").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(started.elapsed() < Duration::from_secs(60));

    // The two that were running finish without their clients (the slots for that are as many); the four
    // that were still waiting for a slot are cancelled.
    upstream.release();
    eventually(
        "the abandoned fills that were running are stored",
        async || stored_hang_versions(&ferry).await == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored_hang_versions(&ferry).await, 2);
    ferry.stop().await;
}

async fn stored_hang_versions(ferry: &Ferry) -> usize {
    ferry.stored_versions("example.com/hang").await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_that_waits_too_long_for_a_slot_is_a_503_with_retry_after() {
    let upstream = Upstream::start(Vec::new()).await;
    let versions = hanging(&upstream);
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        ("FERRY_FETCH_CONCURRENCY", "1"),
        ("FERRY_FETCH_SLOT_WAIT", "1s"),
        // One held upstream request per fill (over HTTP, a fill asks for the .info and .mod at once).
        ("FERRY_FETCH_NATIVE", "off"),
    ];
    let ferry = start_ferry(dir.path(), &upstream.url(), &settings).await;
    let waiting = spawn_get(format!(
        "{}/example.com/hang/@v/{}.info",
        ferry.url(),
        versions[0]
    ));
    eventually("the one slot is taken", async || upstream.held() == 1).await;

    let busy = ferry
        .get(&format!("example.com/hang/@v/{}.info", versions[1]))
        .await;
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert!(busy.text().contains("try again shortly"), "{}", busy.text());
    assert_eq!(busy.header("retry-after"), "5");

    // The client that stayed gets its version once the upstream answers.
    upstream.release();
    assert_eq!(waiting.await.unwrap().status, 200);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_fills_without_naming_a_module() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = start_ferry(dir.path(), &upstream.url(), &[]).await;
    assert_eq!(
        ferry.get("example.com/hello/@v/v1.0.0.info").await.status,
        200
    );
    assert_eq!(
        ferry.get("example.com/hello/@v/v9.9.9.mod").await.status,
        404
    );

    let reply = ferry.get("metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let text = reply.text();
    for expected in [
        "ferry_requests_total{endpoint=\"info\",status=\"200\"}",
        "ferry_requests_total{endpoint=\"mod\",status=\"404\"}",
        "ferry_fills_total{result=\"stored\"}",
        "ferry_fills_total{result=\"not_found\"}",
        "ferry_request_duration_seconds_bucket{",
        "ferry_response_bytes_total{endpoint=\"info\"}",
        "ferry_open_connections ",
        "ferry_fill_duration_seconds_count ",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    // Cardinality stays bounded: no module path or version is ever a label value.
    assert!(
        !text.contains("example.com") && !text.contains("v1.0.0"),
        "{text}"
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_name_the_module_and_the_failure_but_neither_the_upstreams_address_nor_a_local_path()
 {
    for native in ["on", "off"] {
        let upstream = Upstream::start(vec![hello("v1.0.0"), hello("v1.1.0")]).await;
        // A zip that is no zip: the go command names the file it downloaded, in the work dir.
        upstream.replace_file("example.com/hello/@v/v1.1.0.zip", "not a zip");
        let address = upstream.url().trim_start_matches("http://").to_string();
        let dir = tempfile::tempdir().unwrap();
        let ferry = start_ferry(
            dir.path(),
            &upstream.url(),
            &[("FERRY_FETCH_NATIVE", native)],
        )
        .await;
        // (path, status, the module and what went wrong, as the body says them)
        let mut rows = vec![
            (
                "example.com/hello/@v/v1.9.9.info",
                404,
                "example.com/hello@v1.9.9",
                "404 Not Found",
            ),
            (
                "example.com/hello/@v/v1.9.9.zip",
                404,
                "example.com/hello@v1.9.9",
                "404 Not Found",
            ),
            (
                "example.com/hello/@v/master.info",
                404,
                "example.com/hello@master",
                "404 Not Found",
            ),
            (
                "example.com/nope/@v/v1.0.0.mod",
                404,
                "example.com/nope@v1.0.0",
                "404 Not Found",
            ),
            (
                "example.com/hello/@v/v1.1.0.zip",
                502,
                "example.com/hello@v1.1.0",
                "zip",
            ),
        ];
        let failing = [
            (
                "example.com/hello/@v/v1.0.0.zip",
                502,
                "example.com/hello@v1.0.0",
                "500 Internal Server Error",
            ),
            (
                "example.com/hello/@v/v1.0.0.mod",
                502,
                "example.com/hello@v1.0.0",
                "500 Internal Server Error",
            ),
            (
                "example.com/hello/@v/main.info",
                502,
                "example.com/hello@main",
                "500 Internal Server Error",
            ),
            (
                "example.com/other/@latest",
                502,
                "example.com/other",
                "500 Internal Server Error",
            ),
        ];
        for (at, row) in rows.drain(..).chain(failing).enumerate() {
            if at == 5 {
                upstream.set_behaviour(Behaviour::Fail500);
            }
            let (path, status, module, failure) = row;
            let reply = ferry.get(path).await;
            let text = reply.text();
            assert_eq!(reply.status, status, "native={native} {path}: {text}");
            assert!(
                text.contains(module) && text.contains(failure),
                "native={native} {path}: which module, and what failed: {text}"
            );
            assert!(
                !text.contains(&address)
                    && !text.contains("127.0.0.1")
                    && !text.contains(dir.path().to_str().unwrap())
                    && !text.contains("/tmp"),
                "native={native} {path}: neither the upstream's address nor a local path: {text}"
            );
        }
        // The log keeps the detail: which upstream said what.
        assert!(logged(&["example.com/hello@v1.0.0", &address, "500"]));
        ferry.stop().await;
    }
}
