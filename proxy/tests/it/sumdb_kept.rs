//! Checksum database records kept in the store (issue 22): what Ferry verified (lookups, tiles, the newest
//! signed tree note) lands in the store's records under `.ferry/sumdb/NAME/`, and a new Ferry on the same
//! store, with the upstream and the database gone, answers the real `go` command from it (`GOSUMDB` on).
//! A damaged record is never served as good.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry::config::Flags;
use ferry_testkit::{FixtureModule, GoHome, SumDbFixture, Upstream, write_goproxy_tree};

use crate::harness::{Ferry, ferry_env};

/// The database's name: it resolves nowhere, so only the upstream's relay reaches it.
const NAME: &str = "sum.kept.example";

/// Made-up records before the modules' own: tile 8/0/000 (records 0-255) is full.
const FILL: usize = 300;

/// The fixture database over `modules`, and an upstream serving them that relays it.
async fn network(dir: &Path, modules: &[FixtureModule]) -> (SumDbFixture, Upstream) {
    write_goproxy_tree(&dir.join("tree"), modules);
    let sumdb = SumDbFixture::start(NAME, &dir.join("tree"), FILL);
    let upstream = Upstream::start(modules.to_vec()).await;
    upstream.relay_sumdb(NAME, &sumdb.url);
    (sumdb, upstream)
}

/// A Ferry filling from `upstream` (sync) into the file store `dir/store`, its go verifying against the
/// fixture's key (so the route and the key are its own to find), relaying `NAME`.
async fn ferry_on_store(dir: &Path, upstream: &str, key: &str) -> Ferry {
    let store = format!("file://{}", dir.join("store").display());
    let vars = [
        ("GOSUMDB", key),
        ("FERRY_SUMDBS", NAME),
        ("FERRY_DOWNLOAD_MODE", "sync"),
        ("FERRY_STORAGE", store.as_str()),
    ];
    Ferry::from_env(&ferry_env(dir, Some(upstream), &vars), &Flags::default()).await
}

/// `go mod download -json targets` through `ferry` in a fresh go home, verifying against `key`.
async fn go_mod_download(dir: &Path, ferry: &Ferry, key: &str, targets: &[&str]) -> (bool, String) {
    let home = GoHome::new(dir, &ferry.url());
    let mut args = vec!["mod", "download", "-json"];
    args.extend_from_slice(targets);
    let mut command = home.command(dir, &args);
    command.env("GOSUMDB", key);
    crate::harness::run_async(command).await
}

#[tokio::test]
async fn a_new_ferry_answers_the_go_command_from_what_it_kept_when_the_upstream_and_the_database_are_gone()
 {
    let dir = tempfile::tempdir().unwrap();
    let a = FixtureModule::package("example.com/kept/a", "v1.0.0");
    let b = FixtureModule::package("example.com/kept/b", "v1.2.0");
    let (sumdb, upstream) = network(dir.path(), &[a, b]).await;
    let targets = ["example.com/kept/a@v1.0.0", "example.com/kept/b@v1.2.0"];

    let ferry = ferry_on_store(dir.path(), &upstream.url(), &sumdb.key).await;
    let (ok, said) = go_mod_download(dir.path(), &ferry, &sumdb.key, &targets).await;
    assert!(
        ok,
        "go mod download through a reachable database failed:\n{said}"
    );
    ferry.stop().await;

    // Nothing answers at the upstream's or the database's address any more.
    let (upstream_url, key) = (upstream.url(), sumdb.key.clone());
    drop(upstream);
    drop(sumdb);
    let ferry = ferry_on_store(dir.path(), &upstream_url, &key).await;
    let supported = ferry.get(&format!("sumdb/{NAME}/supported")).await;
    assert_eq!(supported.status, 200, "{}", supported.text());
    let latest = ferry.get(&format!("sumdb/{NAME}/latest")).await;
    assert_eq!(latest.status, 200, "{}", latest.text());
    assert!(
        latest.text().starts_with("go.sum database tree\n"),
        "{}",
        latest.text()
    );

    // A fresh client, with GOSUMDB on: the modules come from the store, and go verifies them against the
    // lookups, tiles and note Ferry kept.
    let (ok, said) = go_mod_download(dir.path(), &ferry, &key, &targets).await;
    assert!(ok, "go mod download from the kept records failed:\n{said}");
    assert!(said.contains("\"Sum\": \"h1:"), "{said}");

    // A version not held: an error, at once, not a hang.
    let started = Instant::now();
    let lookup = ferry
        .get(&format!(
            "sumdb/{NAME}/lookup/example.com/kept/absent@v1.0.0"
        ))
        .await;
    assert_eq!(lookup.status, 502, "{}", lookup.text());
    assert!(
        !lookup.text().contains(&dir.path().display().to_string()),
        "{}",
        lookup.text()
    );
    let (ok, said) =
        go_mod_download(dir.path(), &ferry, &key, &["example.com/kept/a@v1.9.0"]).await;
    assert!(!ok, "a version held nowhere downloaded:\n{said}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    ferry.stop().await;
}

/// The kept records of `NAME`, by key under `sumdb/NAME/`.
async fn kept(ferry: &Ferry) -> Vec<String> {
    let prefix = format!("sumdb/{NAME}/");
    let listed = ferry
        .store()
        .records()
        .list(&format!("sumdb/{NAME}"), None)
        .await;
    listed
        .unwrap()
        .into_iter()
        .map(|record| record.key.strip_prefix(&prefix).unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn what_ferry_verified_is_kept_in_the_store_layout_and_a_damaged_record_is_never_served_as_good()
 {
    let dir = tempfile::tempdir().unwrap();
    // An upper-case letter: the lookup's key is escaped as the protocol escapes it.
    let module = FixtureModule::package("example.com/Kept/c", "v1.0.0");
    let (sumdb, upstream) = network(dir.path(), std::slice::from_ref(&module)).await;
    let ferry = ferry_on_store(dir.path(), &upstream.url(), &sumdb.key).await;
    let (ok, said) = go_mod_download(
        dir.path(),
        &ferry,
        &sumdb.key,
        &["example.com/Kept/c@v1.0.0"],
    )
    .await;
    assert!(ok, "{said}");
    // A full hash tile and a full data tile, as a builder's tool would ask them.
    let base = format!("sumdb/{NAME}");
    let full = ferry.get(&format!("{base}/tile/8/0/000")).await;
    assert_eq!(
        (full.status, full.body.len()),
        (200, 256 * 32),
        "{}",
        full.text()
    );
    let data = ferry.get(&format!("{base}/tile/8/data/000")).await;
    assert_eq!(data.status, 200, "{}", data.text());

    let keys = kept(&ferry).await;
    for wanted in [
        "latest",
        "lookup/example.com/!kept/c@v1.0.0",
        "tile/8/0/000",
        "tile/8/data/000",
        "tile/8/1/000.p/1",
    ] {
        assert!(keys.iter().any(|key| key == wanted), "{wanted}: {keys:?}");
    }
    for key in &keys {
        assert!(
            key == "latest" || key.starts_with("lookup/") || key.starts_with("tile/8/"),
            "{key}: {keys:?}"
        );
    }
    // The partial hash tiles kept: one per position, the widest (level 0's right edge: 8/0/001).
    let partial_level_0: Vec<&String> = keys
        .iter()
        .filter(|key| key.starts_with("tile/8/0/001.p/"))
        .collect();
    assert_eq!(partial_level_0.len(), 1, "{keys:?}");
    let records = ferry.store().records();
    let record = |key: &str| {
        let records = records.clone();
        let key = format!("sumdb/{NAME}/{key}");
        async move { records.get(&key).await.unwrap().unwrap() }
    };
    let lookup = record("lookup/example.com/!kept/c@v1.0.0").await;
    let genuine =
        ferry_testkit::http::get(&format!("{}/lookup/example.com/!kept/c@v1.0.0", sumdb.url)).await;
    let genuine_record = genuine.text();
    let genuine_record = genuine_record.split("go.sum database tree").next().unwrap();
    assert!(
        String::from_utf8_lossy(&lookup).starts_with(genuine_record),
        "{lookup:?}"
    );
    assert_eq!(record("tile/8/0/000").await, full.body);
    assert_eq!(record("tile/8/data/000").await, data.body);
    let note = String::from_utf8_lossy(&record("latest").await).to_string();
    assert!(note.starts_with("go.sum database tree\n301\n"), "{note}");
    ferry.stop().await;

    // Damaged records: a lookup whose hash changed, a full tile of zeros. A new Ferry (nothing in memory)
    // does not serve them: it asks the database again and keeps its answer.
    let text = String::from_utf8_lossy(&lookup).to_string();
    let damaged = text.replacen("h1:", "h1:AAAA", 1);
    let lookup_key = format!("sumdb/{NAME}/lookup/example.com/!kept/c@v1.0.0");
    records
        .put(&lookup_key, damaged.clone().into())
        .await
        .unwrap();
    let tile_key = format!("sumdb/{NAME}/tile/8/0/000");
    records
        .put(&tile_key, vec![0u8; 256 * 32].into())
        .await
        .unwrap();
    let ferry = ferry_on_store(dir.path(), &upstream.url(), &sumdb.key).await;
    let served = ferry
        .get(&format!("{base}/lookup/example.com/!kept/c@v1.0.0"))
        .await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert_ne!(served.text(), damaged);
    assert!(
        served.text().starts_with(genuine_record),
        "{}",
        served.text()
    );
    let tile = ferry.get(&format!("{base}/tile/8/0/000")).await;
    assert_eq!(tile.body, full.body);
    assert_eq!(records.get(&tile_key).await.unwrap().unwrap(), full.body);
    assert_ne!(
        records.get(&lookup_key).await.unwrap().unwrap(),
        damaged.as_bytes()
    );
    ferry.stop().await;

    // Damaged again, and no database to ask: an error, never the damaged record.
    records
        .put(&lookup_key, damaged.clone().into())
        .await
        .unwrap();
    let upstream_url = upstream.url();
    let key = sumdb.key.clone();
    drop(upstream);
    drop(sumdb);
    let ferry = ferry_on_store(dir.path(), &upstream_url, &key).await;
    let served = ferry
        .get(&format!("{base}/lookup/example.com/!kept/c@v1.0.0"))
        .await;
    assert_eq!(served.status, 502, "{}", served.text());
    ferry.stop().await;
}
