//! Running Ferry for months: the catalog and index of what it stored, `ferry admin` (delete, block,
//! unblock, reindex, gc) through the admin API, and what the go command sees of each.

use std::time::{Duration, Instant};

use ferry::admin::gc::GcSettings;
use ferry::config::Flags;
use ferry_testkit::{FixtureModule, InProcess, Upstream};

use crate::harness::{Ferry, ferry, ferry_env, go_said, go_with, save};

fn fixtures() -> Vec<FixtureModule> {
    vec![
        FixtureModule::package("example.com/life/a", "v1.0.0"),
        FixtureModule::package("example.com/life/a", "v1.1.0"),
        FixtureModule::package("example.com/life/a", "v1.2.0"),
        FixtureModule::package("example.com/life/b", "v0.1.0"),
    ]
}

/// A Ferry filling from `upstream`, with its admin API (and `gc`) on a listener of its own.
struct Served {
    ferry: Ferry,
    admin: InProcess,
    dir: tempfile::TempDir,
}

impl Served {
    async fn start(upstream: &Upstream, gc: GcSettings, vars: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let env = ferry_env(dir.path(), Some(&upstream.url()), vars);
        let ferry = Ferry::from_env(&env, &Flags::default()).await;
        let admin = ferry.proxy.admin(gc);
        let admin = InProcess::start(move |listener, shutdown| {
            ferry::admin::api::run_admin(listener, admin, shutdown)
        })
        .await;
        Served { ferry, admin, dir }
    }

    async fn admin(&self, args: &[&str]) -> (bool, String) {
        crate::harness::ferry_admin(&self.admin.url(), args).await
    }

    /// `go mod download TARGET` through this Ferry, which must succeed.
    async fn download(&self, target: &str) {
        let output = self.go(&["mod", "download", target]).await;
        assert!(output.status.success(), "{target}: {}", go_said(&output));
    }

    async fn go(&self, args: &[&str]) -> std::process::Output {
        let work = self.dir.path().join(format!("go-{}", rand_suffix()));
        std::fs::create_dir_all(&work).unwrap();
        go_with(&work, &self.ferry.url(), &[], args).await
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn the_catalog_and_index_list_what_was_stored_in_order_with_stable_pages() {
    let upstream = Upstream::start(fixtures()).await;
    let served = Served::start(&upstream, GcSettings::new(), &[]).await;
    for target in [
        "example.com/life/a@v1.0.0",
        "example.com/life/b@v0.1.0",
        "example.com/life/a@v1.2.0",
    ] {
        served.download(target).await;
    }
    // The index: in the order stored, nanosecond times, `since` inclusive.
    let index = served.ferry.get("index").await;
    assert_eq!(index.status, 200, "{}", index.text());
    let feed = lines(&index.text());
    let order: Vec<String> = feed
        .iter()
        .map(|e| {
            format!(
                "{}@{}",
                e["Path"].as_str().unwrap(),
                e["Version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "example.com/life/a@v1.0.0",
            "example.com/life/b@v0.1.0",
            "example.com/life/a@v1.2.0"
        ]
    );
    let second = feed[1]["Timestamp"].as_str().unwrap();
    assert_eq!(
        second.len(),
        "2026-01-02T15:04:05.123456789Z".len(),
        "{second}"
    );
    let since = served.ferry.get(&format!("index?since={second}")).await;
    assert_eq!(lines(&since.text()).len(), 2, "{}", since.text());
    let limited = served
        .ferry
        .get(&format!("index?since={second}&limit=1"))
        .await;
    assert_eq!(lines(&limited.text())[0]["Version"], "v0.1.0");
    let bad = served.ferry.get("index?since=yesterday").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("RFC 3339"), "{}", bad.text());

    // The catalog: (module, version) order, pages that follow each other while versions are added.
    let first = served.ferry.get("catalog?pagesize=2").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first: serde_json::Value = serde_json::from_str(&first.text()).unwrap();
    assert_eq!(
        first["modules"],
        serde_json::json!([
            {"module": "example.com/life/a", "version": "v1.0.0"},
            {"module": "example.com/life/a", "version": "v1.2.0"}
        ])
    );
    let token = first["next"].as_str().expect("a next token").to_string();
    // Stored between two pages, before the page's end: not on the next page, and nothing repeats.
    served.download("example.com/life/a@v1.1.0").await;
    let next = served
        .ferry
        .get(&format!("catalog?pagesize=2&token={token}"))
        .await;
    let next: serde_json::Value = serde_json::from_str(&next.text()).unwrap();
    assert_eq!(
        next["modules"],
        serde_json::json!([{"module": "example.com/life/b", "version": "v0.1.0"}])
    );
    assert!(
        next.get("next").is_none(),
        "the last page has no next: {next}"
    );
    let all: serde_json::Value =
        serde_json::from_str(&served.ferry.get("catalog").await.text()).unwrap();
    assert_eq!(all["modules"].as_array().unwrap().len(), 4);
    let bad = served.ferry.get("catalog?token=garbage!").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let usage = served.admin(&["du", "example.com/life/a"]).await;
    assert!(
        usage.0 && usage.1.contains("3 versions  total"),
        "{}",
        usage.1
    );
}

#[tokio::test]
async fn a_blocked_version_stops_the_go_command_with_the_reason_and_is_listed_nowhere() {
    let upstream = Upstream::start(fixtures()).await;
    let served = Served::start(&upstream, GcSettings::new(), &[]).await;
    served.download("example.com/life/a@v1.2.0").await;
    let (ok, said) = served
        .admin(&[
            "block",
            "example.com/life/a@v1.2.0",
            "--reason",
            "CVE-2026-0001: do not use",
        ])
        .await;
    assert!(ok, "{said}");
    // The go command stops at the 403 (a 404 would send it on to `direct`), showing the reason.
    let output = served
        .go(&["mod", "download", "example.com/life/a@v1.2.0"])
        .await;
    assert!(!output.status.success());
    let said = go_said(&output);
    assert!(said.contains("403 Forbidden"), "{said}");
    assert!(said.contains("CVE-2026-0001: do not use"), "{said}");
    assert!(
        !served.ferry.stored("example.com/life/a", "v1.2.0").await,
        "its files go"
    );
    let before = upstream.request_count("v1.2.0.zip");
    let zip = served.ferry.get("example.com/life/a/@v/v1.2.0.zip").await;
    assert_eq!(zip.status, 403);
    assert_eq!(
        upstream.request_count("v1.2.0.zip"),
        before,
        "never filled again"
    );
    // Left out of the list, of @latest (the next best is chosen), of the catalog and index.
    let list = served.ferry.get("example.com/life/a/@v/list").await.text();
    assert!(
        !list.contains("v1.2.0") && list.contains("v1.1.0"),
        "{list}"
    );
    let latest = served.ferry.get("example.com/life/a/@latest").await.text();
    assert!(latest.contains("\"v1.1.0\""), "{latest}");
    let output = served
        .go(&["list", "-m", "example.com/life/a@latest"])
        .await;
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("v1.1.0"),
        "{}",
        go_said(&output)
    );
    assert!(!served.ferry.get("catalog").await.text().contains("v1.2.0"));
    let (_, listed) = served.admin(&["ls", "example.com/life/a"]).await;
    assert!(listed.contains("blocked: CVE-2026-0001"), "{listed}");

    let (ok, said) = served
        .admin(&["unblock", "example.com/life/a@v1.2.0"])
        .await;
    assert!(ok, "{said}");
    let output = served
        .go(&["mod", "download", "example.com/life/a@v1.2.0"])
        .await;
    assert!(
        output.status.success(),
        "filled again after unblock: {}",
        go_said(&output)
    );
    let (ok, said) = served
        .admin(&["unblock", "example.com/life/a@v1.2.0"])
        .await;
    assert!(
        !ok && said.contains("404") && said.contains("is not blocked"),
        "{said}"
    );
    let (ok, said) = served
        .admin(&["block", "example.com/life/a@v1.0.0", "--reason", " "])
        .await;
    assert!(
        !ok && said.contains("400") && said.contains("needs a reason"),
        "{said}"
    );
}

#[tokio::test]
async fn a_deleted_version_is_filled_again_and_not_served_from_memory() {
    let upstream = Upstream::start(fixtures()).await;
    let served = Served::start(&upstream, GcSettings::new(), &[]).await;
    served.download("example.com/life/b@v0.1.0").await;
    // In the memory cache now.
    assert_eq!(
        served
            .ferry
            .get("example.com/life/b/@v/v0.1.0.mod")
            .await
            .status,
        200
    );
    let first_stored = lines(&served.ferry.get("index").await.text())[0]["Timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, said) = served.admin(&["delete", "example.com/life/b@v0.1.0"]).await;
    assert!(ok, "{said}");
    assert!(!served.ferry.stored("example.com/life/b", "v0.1.0").await);
    assert!(!served.ferry.get("index").await.text().contains("life/b"));
    // Not answered from memory: asked of the store, missing, filled again (a new entry in the index).
    assert_eq!(
        served
            .ferry
            .get("example.com/life/b/@v/v0.1.0.mod")
            .await
            .status,
        200
    );
    let index = served.ferry.get("index").await.text();
    let refilled = lines(&index);
    assert_eq!(refilled.len(), 1, "{index}");
    assert!(
        refilled[0]["Timestamp"].as_str().unwrap() > first_stored.as_str(),
        "{index}"
    );
    served.download("example.com/life/b@v0.1.0").await;
    assert!(served.ferry.stored("example.com/life/b", "v0.1.0").await);
    let (ok, said) = served.admin(&["delete", "example.com/life/b@v9.9.9"]).await;
    assert!(
        !ok && said.contains("404") && said.contains("example.com/life/b@v9.9.9 is not stored"),
        "{said}"
    );
    let (ok, said) = served.admin(&["delete", "not a module@v1"]).await;
    assert!(!ok && said.contains("400"), "{said}");
}

/// A store filled by hand (a GOPROXY tree copied in) is indexed at start-up from a walk; `reindex` then
/// catches what changed behind Ferry's back.
#[tokio::test]
async fn a_store_filled_by_hand_is_indexed_and_reindex_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let seed = ferry_storage::StorageConfig::from_url(&format!("file://{}", store_dir.display()))
        .unwrap()
        .open()
        .unwrap();
    for fixture in fixtures() {
        save(seed.as_ref(), &fixture).await;
    }
    let upstream = Upstream::start(vec![]).await;
    let storage = format!("file://{}", store_dir.display());
    let served = Served::start(&upstream, GcSettings::new(), &[("FERRY_STORAGE", &storage)]).await;
    let catalog = until_ready(&served.ferry, "catalog").await;
    let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
    assert_eq!(catalog["modules"].as_array().unwrap().len(), 4, "{catalog}");
    // Removed and added by hand while Ferry runs.
    std::fs::remove_file(store_dir.join("example.com/life/a/@v/v1.0.0.info")).unwrap();
    save(
        seed.as_ref(),
        &FixtureModule::package("example.com/life/c", "v2.0.0+incompatible"),
    )
    .await;
    let (ok, said) = served.admin(&["reindex"]).await;
    assert!(ok, "{said}");
    assert!(
        said.contains("1 versions indexed, 1 removed from the index"),
        "{said}"
    );
    let catalog = served.ferry.get("catalog").await.text();
    assert!(
        !catalog.contains("\"v1.0.0\"") && catalog.contains("v2.0.0+incompatible"),
        "{catalog}"
    );
}

async fn until_ready(ferry: &Ferry, path: &str) -> String {
    let started = Instant::now();
    loop {
        let reply = ferry.get(path).await;
        if reply.status == 200 {
            return reply.text();
        }
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never ready: {}",
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A collection: the dry run lists what would go and the bytes, the run removes exactly that, keeping each
/// module's newest version and the protected modules; a plan left by a collection cut short (kill -9) is
/// finished first by the next one.
#[tokio::test]
async fn a_collection_removes_what_its_dry_run_listed_and_resumes_a_plan_cut_short() {
    let upstream = Upstream::start(fixtures()).await;
    let gc = GcSettings {
        max_bytes: Some(1),
        protect: vec!["example.com/life/b".into()],
        ..GcSettings::new()
    };
    let served = Served::start(&upstream, gc, &[]).await;
    for target in [
        "example.com/life/a@v1.0.0",
        "example.com/life/a@v1.1.0",
        "example.com/life/a@v1.2.0",
        "example.com/life/b@v0.1.0",
    ] {
        served.download(target).await;
    }
    let (ok, dry) = served.admin(&["gc", "--dry-run"]).await;
    assert!(ok, "{dry}");
    assert!(
        dry.contains("would remove example.com/life/a@v1.0.0"),
        "{dry}"
    );
    assert!(
        dry.contains("would remove example.com/life/a@v1.1.0"),
        "{dry}"
    );
    assert!(
        !dry.contains("v1.2.0") && !dry.contains("life/b"),
        "newest and protected stay: {dry}"
    );
    assert!(dry.contains("2 versions, would reclaim"), "{dry}");
    assert!(
        served.ferry.stored("example.com/life/a", "v1.0.0").await,
        "a dry run removes nothing"
    );
    let (ok, done) = served.admin(&["gc"]).await;
    assert!(ok, "{done}");
    assert!(done.contains("2 versions, reclaimed"), "{done}");
    assert_eq!(
        served.ferry.stored_versions("example.com/life/a").await,
        ["v1.2.0"]
    );

    // What a collection killed half-way leaves: its plan, and its lock (expired).
    served.download("example.com/life/a@v1.0.0").await;
    let records = served.ferry.store().records();
    let used = served.ferry.proxy.ledger().read(|s| {
        let m = ferry_module::ModulePath::new("example.com/life/a").unwrap();
        s.entry(&m, &ferry_module::Version::new("v1.0.0").unwrap())
            .unwrap()
            .used_at()
    });
    let plan = serde_json::json!({
        "victims": [{"module": "example.com/life/a", "version": "v1.0.0", "bytes": 1, "used_at": used, "rule": "max_bytes"}],
        "bytes": 1,
        "stored_bytes": 2
    });
    records
        .put("gc/plan", plan.to_string().into())
        .await
        .unwrap();
    records.put("gc/lock", "1".into()).await.unwrap();
    let gc = GcSettings {
        unused_for: Some(Duration::from_secs(3600 * 24 * 365)),
        ..GcSettings::new()
    };
    let admin = served.ferry.proxy.admin(gc);
    let resumed = admin.collect(false, |_, _| {}).await.unwrap();
    assert_eq!(resumed.removed, 1, "{resumed:?}");
    assert!(!served.ferry.stored("example.com/life/a", "v1.0.0").await);
    assert_eq!(
        records.get("gc/plan").await.unwrap(),
        None,
        "the plan is done"
    );
    assert_eq!(
        records.get("gc/lock").await.unwrap(),
        None,
        "the lock is released"
    );
}

/// Settings that would collect everything stop start-up, naming where they were written.
#[test]
fn a_policy_that_would_collect_everything_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::harness::write_file(dir.path(), "ferry.toml", "[gc]\nmax_bytes = \"0\"\n");
    let output = ferry()
        .args(["config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("ferry.toml:2:13"), "{said}");
    assert!(
        said.contains("gc.max_bytes = 0 would delete every version"),
        "{said}"
    );
}
