//! Cold zips streamed as they arrive: a fixture upstream that stops half-way through a zip until the test
//! lets it go on shows that Ferry's clients get the first bytes before the upstream has sent the rest, that
//! a zip failing its checks cuts them off (never a complete bad zip) and is not stored, that every client of
//! one fill streams, and that the go command gets a verified module through it all.

use std::path::Path;

use ferry::config::Flags;
use ferry_module::{ModulePath, Version};
use ferry_storage::ModuleStoreExt;
use ferry_testkit::http::Streamed;
use ferry_testkit::{
    Behaviour, FixtureModule, SumDbFixture, Upstream, escape, eventually, incompressible,
    write_goproxy_tree,
};

use crate::harness::{Ferry, ferry_env, get, go_get_verifying};

const SUMDB: &str = "sum.fixture.example";

/// A module whose zip is about `len` bytes (a file that does not compress): well past what Ferry holds
/// back until a zip is verified (`ferry_fetcher::HOLD_BACK`, 64 KiB).
fn big(path: &str, len: usize) -> FixtureModule {
    FixtureModule::package(path, "v1.0.0").file("data.bin", incompressible(len))
}

/// A checksum database that knows `published`, and a Ferry fetching from `upstream` that verifies every
/// version against it (fetched over HTTP, natively).
async fn verifying_ferry(
    dir: &Path,
    published: &[FixtureModule],
    upstream: &Upstream,
) -> (SumDbFixture, Ferry) {
    write_goproxy_tree(&dir.join("tree"), published);
    let sumdb = SumDbFixture::start(SUMDB, &dir.join("tree"), 0);
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let env = ferry_env(dir, Some(&upstream.url()), &[("GOSUMDB", &gosumdb)]);
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    (sumdb, ferry)
}

fn zip_path(module: &FixtureModule) -> String {
    format!(
        "{}/@v/{}.zip",
        escape(module.path()),
        escape(module.version())
    )
}

async fn is_stored(ferry: &Ferry, module: &FixtureModule) -> bool {
    let m = ModulePath::new(module.path()).unwrap();
    let v = Version::new(module.version()).unwrap();
    ferry.store().has_zip(&m, &v).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_zip_reaches_the_client_before_the_upstream_has_sent_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let module = big("example.com/big", 1 << 20);
    let zip = module.zip_bytes();
    let upstream = Upstream::start(vec![module.clone()]).await;
    upstream.pause_body(".zip", zip.len() / 2, true);
    let (_sumdb, ferry) =
        verifying_ferry(dir.path(), std::slice::from_ref(&module), &upstream).await;

    let mut client = Streamed::get(&format!("{}/{}", ferry.url(), zip_path(&module))).await;
    assert_eq!(client.status, 200);
    // The upstream announced the length: the client is told it too, so it can tell a cut-off body itself.
    assert_eq!(client.header("content-length"), zip.len().to_string());
    // The upstream stops half-way until released: these bytes came while it had sent half the zip.
    assert!(
        client.read_at_least(64 << 10).await,
        "no bytes reached the client while the upstream held the second half"
    );
    assert_eq!(client.received[..], zip[..client.received.len()]);
    assert!(!is_stored(&ferry, &module).await, "stored before verified");

    upstream.release();
    client.finish().await.expect("the body ends cleanly");
    assert_eq!(client.received, zip, "the client got the zip, whole");
    assert_eq!(
        client.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    // The end went out once the zip was verified and stored: a complete answer means a stored zip.
    assert!(
        is_stored(&ferry, &module).await,
        "answered whole before stored"
    );
    let again = get(&format!("{}/{}", ferry.url(), zip_path(&module))).await;
    assert_eq!(again.body, zip);
    assert_eq!(upstream.request_count(".zip"), 1);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_that_fails_its_hash_mid_stream_cuts_the_client_off_and_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let published = big("example.com/tampered", 512 << 10);
    // The upstream's copy has a file the published version never had; its go.mod is the same.
    let served = published.clone().file("backdoor.go", "package tampered\n");
    let bad = served.zip_bytes();
    let upstream = Upstream::start(vec![served]).await;
    upstream.pause_body(".zip", bad.len() / 2, true);
    let (_sumdb, ferry) =
        verifying_ferry(dir.path(), std::slice::from_ref(&published), &upstream).await;

    let url = format!("{}/{}", ferry.url(), zip_path(&published));
    let mut client = Streamed::get(&url).await;
    assert_eq!(client.status, 200);
    assert!(client.read_at_least(1).await, "nothing streamed");
    upstream.release();
    let ended = client.finish().await;
    assert!(
        ended.is_err(),
        "a zip that fails its hash ended cleanly ({} bytes)",
        client.received.len()
    );
    assert!(
        client.received.len() < bad.len(),
        "the client holds the whole bad zip"
    );
    assert!(!is_stored(&ferry, &published).await, "a bad zip was stored");

    // Once the upstream serves the published zip, the next request gets it, verified and stored.
    upstream.replace_file_bytes(&zip_path(&published), published.zip_bytes());
    eventually("the published zip is served", async || {
        let reply = get(&url).await;
        reply.status == 200 && reply.body == published.zip_bytes()
    })
    .await;
    assert!(is_stored(&ferry, &published).await);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_that_breaks_gos_zip_rules_mid_stream_cuts_the_client_off_and_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    // No checksum database here (GOSUMDB=off): go's zip rules are the only check, and two names equal
    // ignoring case break one.
    let module = big("example.com/casefold", 512 << 10)
        .file("README", "a")
        .file("readme", "b");
    let bad = module.zip_bytes();
    let upstream = Upstream::start(vec![module.clone()]).await;
    upstream.pause_body(".zip", bad.len() / 2, true);
    let env = ferry_env(dir.path(), Some(&upstream.url()), &[]);
    let ferry = Ferry::from_env(&env, &Flags::default()).await;

    let mut client = Streamed::get(&format!("{}/{}", ferry.url(), zip_path(&module))).await;
    assert_eq!(client.status, 200);
    assert!(client.read_at_least(1).await, "nothing streamed");
    upstream.release();
    assert!(
        client.finish().await.is_err(),
        "a zip breaking the rules ended cleanly"
    );
    assert!(
        client.received.len() < bad.len(),
        "the client holds the whole bad zip"
    );
    assert!(!is_stored(&ferry, &module).await, "a bad zip was stored");
    // Asked again, it is fetched again and refused again: a 502 naming the rule when the checks ended
    // before any byte could go, else a body cut short.
    let mut again = Streamed::get(&format!("{}/{}", ferry.url(), zip_path(&module))).await;
    let ended = again.finish().await;
    let text = String::from_utf8_lossy(&again.received).into_owned();
    match again.status {
        502 => assert!(text.contains("not a valid module zip"), "{text}"),
        200 => assert!(ended.is_err() && again.received.len() < bad.len()),
        status => panic!("{status}: {text}"),
    }
    assert!(!is_stored(&ferry, &module).await, "a bad zip was stored");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_of_one_fill_both_stream_and_get_the_same_verified_zip() {
    let dir = tempfile::tempdir().unwrap();
    let module = big("example.com/shared", 1 << 20);
    let zip = module.zip_bytes();
    let upstream = Upstream::start(vec![module.clone()]).await;
    // Without a length (chunked): Ferry holds back the last 64 KiB of what came, and sends chunked too.
    upstream.pause_body(".zip", zip.len() / 2, false);
    let (_sumdb, ferry) =
        verifying_ferry(dir.path(), std::slice::from_ref(&module), &upstream).await;

    let url = format!("{}/{}", ferry.url(), zip_path(&module));
    let mut first = Streamed::get(&url).await;
    assert!(first.read_at_least(1).await, "the first client got nothing");
    let mut second = Streamed::get(&url).await;
    assert!(
        second.read_at_least(1).await,
        "the second client got nothing"
    );
    assert_eq!(
        upstream.request_count(".zip"),
        1,
        "the second client did not join the fill"
    );
    for client in [&first, &second] {
        assert_eq!(client.status, 200);
        assert_eq!(client.header("content-length"), "");
    }

    upstream.release();
    first.finish().await.expect("the first body ends cleanly");
    second.finish().await.expect("the second body ends cleanly");
    assert_eq!(first.received, zip);
    assert_eq!(second.received, zip);
    assert_eq!(upstream.request_count(".zip"), 1);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_gets_and_verifies_a_cold_module_streamed_through_ferry() {
    let dir = tempfile::tempdir().unwrap();
    let module = big("example.com/gobig", 2 << 20);
    let upstream = Upstream::start(vec![module.clone()]).await;
    let (sumdb, ferry) =
        verifying_ferry(dir.path(), std::slice::from_ref(&module), &upstream).await;

    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let (home, app, output) =
        go_get_verifying(dir.path(), &ferry, &gosumdb, "example.com/gobig@v1.0.0").await;
    assert!(
        output.status.success(),
        "go get failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(go_sum.contains("example.com/gobig v1.0.0 h1:"), "{go_sum}");
    let cached = home
        .mod_cache()
        .join("cache/download/example.com/gobig/@v/v1.0.0.zip");
    assert_eq!(std::fs::read(cached).unwrap(), module.zip_bytes());
    assert!(is_stored(&ferry, &module).await);
    assert_eq!(upstream.request_count(".zip"), 1);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_keeps_nothing_of_a_cold_zip_that_fails_its_hash_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let published = big("example.com/gotampered", 1 << 20);
    let served = published
        .clone()
        .file("backdoor.go", "package gotampered\n");
    let upstream = Upstream::start(vec![served]).await;
    // Slow enough that Ferry streams the zip before its checks can end: the go command gets a 200 cut short.
    let every = std::time::Duration::from_millis(10);
    upstream.set_behaviour(Behaviour::Trickle {
        chunk: 64 << 10,
        every,
    });
    let (sumdb, ferry) =
        verifying_ferry(dir.path(), std::slice::from_ref(&published), &upstream).await;

    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let target = "example.com/gotampered@v1.0.0";
    let (home, _app, output) = go_get_verifying(dir.path(), &ferry, &gosumdb, target).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "go get succeeded:\n{stderr}");
    // The body was cut short of the length Ferry announced: go says so, and keeps nothing.
    assert!(
        stderr.contains("example.com/gotampered") && stderr.contains("unexpected EOF"),
        "{stderr}"
    );
    let cached = home
        .mod_cache()
        .join("cache/download/example.com/gotampered/@v/v1.0.0.zip");
    assert!(!cached.exists(), "the go command kept the zip");
    assert!(!is_stored(&ferry, &published).await, "a bad zip was stored");
    ferry.stop().await;
}
