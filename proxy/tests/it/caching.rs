//! The caches in front of the upstream and the store: `list`, `@latest` and query `.info` answers kept
//! for their TTL (one upstream call per module however many clients ask, stale answers refreshed in the
//! background, "not found" remembered briefly), and `.info`/`.mod` files served from memory. Ferry is
//! configured as the binary configures it, its `go` fetching from a loopback fixture upstream whose request
//! log is what the tests count.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::config::Flags;
use ferry::{CacheSettings, Proxy};
use ferry_testkit::{FixtureModule, Upstream, eventually, s3_server};
use tokio::sync::Semaphore;

use crate::harness::{Ferry, Reply, ferry_env, get, save, write_file};

const MODULE: &str = "example.com/cached";

fn cached(version: &str) -> FixtureModule {
    FixtureModule::package(MODULE, version)
}

/// Ferry in `sync` mode (the default) with a memory store, fetching from `upstream`; `vars` are more
/// settings (FERRY_CACHE_TTL, ...).
async fn start_ferry(dir: &Path, upstream: &Upstream, vars: &[(&str, &str)]) -> Ferry {
    Ferry::from_env(
        &ferry_env(dir, Some(&upstream.url()), vars),
        &Flags::default(),
    )
    .await
}

/// `total` GETs of `url`, at most `at_once` of them in flight; the replies in the order sent.
async fn flood(url: &str, total: usize, at_once: usize) -> Vec<Reply> {
    let slots = Arc::new(Semaphore::new(at_once));
    let requests: Vec<_> = (0..total)
        .map(|_| {
            let (slots, url) = (slots.clone(), url.to_string());
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
                get(&url).await
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(total);
    for request in requests {
        replies.push(request.await.unwrap());
    }
    replies
}

/// Upstream requests whose path contains `needle`.
fn upstream_count(upstream: &Upstream, needle: &str) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|path| path.contains(needle))
        .count()
}

/// The upstream requests one `go list -m -retracted -versions` sends (what Ferry runs for a `list`): counted with the
/// cache off, so that the tests below assert "one upstream call" in the go command's own units.
async fn requests_per_upstream_list(dir: &Path) -> Vec<String> {
    let upstream = Upstream::start(vec![cached("v1.0.0"), cached("v1.1.0")]).await;
    let ferry = start_ferry(dir, &upstream, &[("FERRY_CACHE_TTL", "0s")]).await;
    let reply = ferry.get(&format!("{MODULE}/@v/list")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let first = upstream.requests();
    // Without the cache, every list asks again.
    let reply = ferry.get(&format!("{MODULE}/@v/list")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(upstream.requests().len(), 2 * first.len(), "{first:?}");
    // One list is one upstream request: `go list -m -retracted -versions` reads `@v/list` alone.
    assert_eq!(first, [format!("{MODULE}/@v/list")]);
    ferry.stop().await;
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_list_requests_costs_one_upstream_list_and_all_get_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let per_list = requests_per_upstream_list(&dir.path().join("uncached")).await;
    let upstream = Upstream::start(vec![cached("v1.0.0"), cached("v1.1.0")]).await;
    // The upstream's list is held until the flood is waiting on it: every one of the first requests
    // misses the cache at once.
    upstream.hold("@v/list");
    let ferry = start_ferry(dir.path(), &upstream, &[]).await;
    let url = format!("{}/{MODULE}/@v/list", ferry.url());
    let flooding = tokio::spawn(async move { flood(&url, 200, 32).await });
    eventually("the upstream list is asked", || async {
        upstream.held() > 0
    })
    .await;
    // The first 32 requests were sent at once and are all waiting: without the single flight each would
    // have started a `go` of its own, and the held upstream would count them.
    upstream.release();
    let replies = flooding.await.unwrap();
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.text(), "v1.0.0\nv1.1.0\n");
    }
    assert_eq!(
        upstream.requests().len(),
        per_list.len(),
        "200 lists cost what one costs ({per_list:?}): {:?}",
        upstream.requests()
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_list_is_answered_at_once_while_one_refresh_brings_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![cached("v1.0.0")]).await;
    let ferry = start_ferry(dir.path(), &upstream, &[("FERRY_CACHE_TTL", "1s")]).await;
    let list = format!("{MODULE}/@v/list");
    assert_eq!(ferry.get(&list).await.text(), "v1.0.0\n");
    let lists_before = upstream_count(&upstream, "@v/list");

    upstream.add(cached("v1.1.0"));
    // Within the TTL the upstream is not asked again: the new version is not seen yet.
    assert_eq!(ferry.get(&list).await.text(), "v1.0.0\n");
    assert_eq!(upstream_count(&upstream, "@v/list"), lists_before);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Stale: held until the refresh is underway, the answer is the old list, at once.
    upstream.hold("@v/list");
    let started = Instant::now();
    let stale = flood(&format!("{}/{list}", ferry.url()), 20, 10).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    for reply in &stale {
        assert_eq!(reply.text(), "v1.0.0\n");
    }
    eventually("the refresh asks the upstream", || async {
        upstream.held() > 0
    })
    .await;
    upstream.release();
    eventually("the refreshed list names the new version", || async {
        ferry.get(&list).await.text() == "v1.0.0\nv1.1.0\n"
    })
    .await;
    assert_eq!(
        upstream_count(&upstream, "@v/list"),
        2 * lists_before,
        "one refresh for 20 stale answers: {:?}",
        upstream.requests()
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_stored_by_a_fill_is_listed_at_once_although_the_upstream_list_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![cached("v1.0.0")]).await;
    let ferry = start_ferry(dir.path(), &upstream, &[]).await;
    let list = format!("{MODULE}/@v/list");
    assert_eq!(ferry.get(&list).await.text(), "v1.0.0\n");
    let lists = upstream_count(&upstream, "@v/list");

    // A `.info` is answered once its version is checked and stored (a `.mod` may be answered before).
    upstream.add(cached("v1.2.0"));
    let reply = ferry.get(&format!("{MODULE}/@v/v1.2.0.info")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(ferry.get(&list).await.text(), "v1.0.0\nv1.2.0\n");
    assert_eq!(upstream_count(&upstream, "@v/list"), lists, "still cached");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_bucket_a_version_this_ferry_stores_is_listed_at_once_and_another_replicas_within_seconds()
 {
    let Some(server) = s3_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![cached("v1.0.0")]).await;
    let url = server.fresh_url();
    let mut vars: Vec<(&str, &str)> = server
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vars.push(("FERRY_STORAGE", &url));
    // `reader` serves the bucket only: its list is the stored versions alone.
    let mut reader_vars = vars.clone();
    reader_vars.push(("FERRY_DOWNLOAD_MODE", "none"));
    let reader_dir = dir.path().join("reader");
    std::fs::create_dir_all(&reader_dir).unwrap();
    let reader = start_ferry(&reader_dir, &upstream, &reader_vars).await;
    let filler = start_ferry(dir.path(), &upstream, &vars).await;
    let list = format!("{MODULE}/@v/list");
    assert_eq!(reader.get(&list).await.status, 404);

    // The filler stores v1.0.0; the reader, which read the bucket's list a moment ago, lists it within
    // seconds.
    assert_eq!(
        filler.get(&format!("{MODULE}/@v/v1.0.0.zip")).await.status,
        200
    );
    let started = Instant::now();
    eventually("the other replica lists v1.0.0", async || {
        reader.get(&list).await.text() == "v1.0.0\n"
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // The filler's own new version is listed at once, its upstream list still cached. (A `.info` is
    // answered once the version is checked and stored; a `.mod` may be answered before.)
    assert_eq!(filler.get(&list).await.text(), "v1.0.0\n");
    upstream.add(cached("v1.1.0"));
    let reply = filler.get(&format!("{MODULE}/@v/v1.1.0.info")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(filler.get(&list).await.text(), "v1.0.0\nv1.1.0\n");
    filler.stop().await;
    reader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_and_branch_queries_are_asked_upstream_once_per_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let pseudo = "v0.0.0-20240102030405-abcdefabcdef";
    let upstream = Upstream::start(vec![cached("v1.0.0"), cached(pseudo)]).await;
    upstream.alias(MODULE, "main", pseudo);
    let ferry = start_ferry(dir.path(), &upstream, &[]).await;

    for (path, version) in [
        (format!("{MODULE}/@latest"), "v1.0.0"),
        (format!("{MODULE}/@v/main.info"), pseudo),
    ] {
        let replies = flood(&format!("{}/{path}", ferry.url()), 50, 16).await;
        for reply in &replies {
            assert_eq!(reply.status, 200, "{path}: {}", reply.text());
            let info: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(info["Version"], version, "{path}");
        }
    }
    let requests = upstream.requests();
    let main_infos = requests
        .iter()
        .filter(|p| p.ends_with("/main.info"))
        .count();
    assert_eq!(main_infos, 1, "{requests:?}");
    // `go list -m M@latest` asks for the list (and `@latest` when it is empty): once, not 50 times.
    assert!(upstream_count(&upstream, "@v/list") <= 1, "{requests:?}");
    assert!(upstream_count(&upstream, "@latest") <= 1, "{requests:?}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_unknown_upstream_is_remembered_for_the_not_found_ttl_only() {
    let dir = tempfile::tempdir().unwrap();
    let pseudo = "v0.0.0-20240102030405-abcdefabcdef";
    let upstream = Upstream::start(vec![cached("v1.0.0"), cached(pseudo)]).await;
    let ferry = start_ferry(
        dir.path(),
        &upstream,
        &[("FERRY_CACHE_NOT_FOUND_TTL", "2s")],
    )
    .await;
    let branch = format!("{MODULE}/@v/feature.info");
    let started = Instant::now();
    for reply in flood(&format!("{}/{branch}", ferry.url()), 20, 8).await {
        assert_eq!(reply.status, 404, "{}", reply.text());
        assert!(reply.text().starts_with("not found: "), "{}", reply.text());
    }
    assert_eq!(
        upstream.request_count("/feature.info"),
        1,
        "{:?}",
        upstream.requests()
    );
    // The answer was remembered between `started` and now.
    let answered = Instant::now();

    // The branch appears upstream; within the not-found TTL Ferry does not ask again.
    upstream.alias(MODULE, "feature", pseudo);
    let reply = ferry.get(&branch).await;
    if started.elapsed() < Duration::from_millis(1500) {
        assert_eq!(reply.status, 404, "still remembered: {}", reply.text());
        assert_eq!(upstream.request_count("/feature.info"), 1);
    }
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(answered.elapsed())).await;
    let reply = ferry.get(&branch).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let info: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(info["Version"], pseudo);
    ferry.stop().await;
}

/// A Ferry over the file store in `dir` holding one stored version, with `settings`.
async fn ferry_on_files(dir: &Path, settings: &CacheSettings) -> Ferry {
    let store = ferry_storage::StorageConfig::from_url(&format!("file://{}", dir.display()))
        .unwrap()
        .open()
        .unwrap();
    save(store.as_ref(), &cached("v1.0.0")).await;
    Ferry::start_proxy(Arc::new(Proxy::new(store).with_cache(settings))).await
}

/// GETs the `.info` and `.mod` of the stored version, deletes them from the store's directory, and GETs
/// them again: the second statuses.
async fn statuses_after_the_files_are_deleted(dir: &Path, settings: &CacheSettings) -> Vec<u16> {
    let ferry = ferry_on_files(dir, settings).await;
    let fixture = cached("v1.0.0");
    let paths = ["info", "mod"].map(|ext| format!("{MODULE}/@v/v1.0.0.{ext}"));
    let first: Vec<Reply> = futures::future::join_all(paths.iter().map(|p| ferry.get(p))).await;
    assert_eq!(first[0].body, fixture.info_json().as_bytes());
    assert_eq!(first[1].body, fixture.go_mod().as_bytes());
    for ext in ["info", "mod"] {
        std::fs::remove_file(dir.join(format!("{MODULE}/@v/v1.0.0.{ext}"))).unwrap();
    }
    let mut statuses = Vec::new();
    for (path, before) in paths.iter().zip(&first) {
        let reply = ferry.get(path).await;
        if reply.status == 200 {
            assert_eq!(reply.body, before.body, "{path}");
            assert_eq!(reply.header("content-type"), before.header("content-type"));
            assert_eq!(reply.header("etag"), before.header("etag"));
        }
        statuses.push(reply.status);
    }
    ferry.stop().await;
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_mod_and_info_are_served_from_memory_once_the_store_has_lost_them() {
    let dir = tempfile::tempdir().unwrap();
    let cached_files = dir.path().join("cached");
    assert_eq!(
        statuses_after_the_files_are_deleted(&cached_files, &CacheSettings::default()).await,
        [200, 200]
    );
    // Without the file cache the same check reaches the store, which no longer has them.
    let uncached = CacheSettings {
        file_bytes: 0,
        ..CacheSettings::default()
    };
    let statuses =
        statuses_after_the_files_are_deleted(&dir.path().join("uncached"), &uncached).await;
    assert!(statuses.iter().all(|&s| s != 200), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_settings_come_from_the_environment_and_a_bad_size_names_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let env = ferry_env(
        dir.path(),
        None,
        &[
            ("FERRY_CACHE_TTL", "5s"),
            ("FERRY_CACHE_FILE_BYTES", "1MiB"),
            ("FERRY_CACHE_MAX_ENTRIES", "7"),
        ],
    );
    let config = ferry::config::load(&Flags::default(), &env).unwrap();
    assert_eq!(config.cache.ttl, Duration::from_secs(5));
    assert_eq!(config.cache.file_bytes, 1 << 20);
    assert_eq!(config.cache.max_entries, 7);
    assert_eq!(config.cache.not_found_ttl, Duration::from_secs(10));

    let env = ferry_env(dir.path(), None, &[("FERRY_CACHE_MAX_BYTES", "lots")]);
    let error = ferry::config::load(&Flags::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(error.contains("FERRY_CACHE_MAX_BYTES"), "{error}");
    assert!(error.contains("64MiB"), "{error}");

    // The `[cache]` table; a bad value is reported where it was written.
    let file = write_file(
        dir.path(),
        "ferry.toml",
        "[cache]\nttl = \"2m\"\nfile_bytes = \"256MiB\"\n",
    );
    let flags = Flags {
        config: Some(file.clone()),
        ..Flags::default()
    };
    let env = ferry_env(dir.path(), None, &[]);
    let config = ferry::config::load(&flags, &env).unwrap();
    assert_eq!(config.cache.ttl, Duration::from_secs(120));
    assert_eq!(config.cache.file_bytes, 256 << 20);
    write_file(dir.path(), "ferry.toml", "[cache]\nstale = \"soon\"\n");
    let error = ferry::config::load(&flags, &env).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("{}:2:9: ", file.display())),
        "{error}"
    );
}
