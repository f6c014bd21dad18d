//! Version rules of the download policy (issue 24): `min_age` (cooldown) refuses a version first seen too
//! recently, lists and `@latest` leave it out, and it is served once the age passes (the clock is moved,
//! never slept on); `deny` refuses versions outright; `exempt` lets an urgent fix through; a dry run only
//! counts what it would refuse. The client is the real `go` command; the first sighting survives a restart
//! on the same store.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ferry::Clock;
use ferry::config::{self, Flags};
use ferry_testkit::{FixtureModule, GoHome, Upstream};

use crate::harness::{Ferry, app_module, ferry_env, get, go_said};

const MODULE: &str = "example.com/hello";
const HOUR: u64 = 3600;

fn hello(version: &str) -> FixtureModule {
    FixtureModule::package(MODULE, version)
}

/// A clock `offset` seconds ahead of the system's, moved by the test.
fn clock(offset: &Arc<AtomicU64>) -> Clock {
    let offset = offset.clone();
    Clock::from_fn(move || SystemTime::now() + Duration::from_secs(offset.load(Ordering::Relaxed)))
}

/// Ferry as `ferry serve` builds it, over a file store in `dir` (kept across restarts), with the download
/// file `policy`, judging ages by `clock`.
async fn ferry(dir: &Path, upstream: &Upstream, policy: &str, clock: Clock) -> Ferry {
    let file = dir.join("download.hcl");
    std::fs::write(&file, policy).unwrap();
    let mode = format!("file:{}", file.display());
    let storage = format!("file://{}", dir.join("store").display());
    let vars = [
        ("FERRY_DOWNLOAD_MODE", mode.as_str()),
        ("FERRY_STORAGE", storage.as_str()),
    ];
    let env = ferry_env(dir, Some(&upstream.url()), &vars);
    let config = config::load(&Flags::default(), &env).expect("configuration loads");
    let proxy = ferry::build_proxy_with(&config, clock)
        .await
        .expect("ferry starts");
    Ferry::start_with(proxy, config.server.clone()).await
}

async fn go(home: &GoHome, cwd: &Path, args: &[&str]) -> Output {
    tokio::process::Command::from(home.command(cwd, args))
        .output()
        .await
        .expect("run go")
}

async fn go_ok(home: &GoHome, cwd: &Path, args: &[&str]) -> String {
    let output = go(home, cwd, args).await;
    assert!(
        output.status.success(),
        "go {args:?}:\n{}",
        go_said(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `go mod download M@V` fails, saying `says`.
async fn refused(home: &GoHome, cwd: &Path, version: &str, says: &[&str]) {
    let target = format!("{MODULE}@{version}");
    // Without -json: the go command's message is then plain text, quotes unescaped.
    let output = go(home, cwd, &["mod", "download", &target]).await;
    let said = go_said(&output);
    assert!(!output.status.success(), "{target} was served:\n{said}");
    for part in says {
        assert!(said.contains(part), "{target}: want {part:?} in:\n{said}");
    }
}

const POLICY: &str = r#"mode = "sync"

versions "example.com/*" {
  min_age = "72h"
  deny    = ["v1.0.0"]
  exempt  = ["v1.1.0"]
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_holds_new_versions_back_until_their_age_and_deny_refuses_outright() {
    let dir = tempfile::tempdir().unwrap();
    let modules = [hello("v1.0.0"), hello("v1.1.0"), hello("v1.2.0")];
    let upstream = Upstream::start(modules.to_vec()).await;
    let offset = Arc::new(AtomicU64::new(0));
    let ferry = ferry(dir.path(), &upstream, POLICY, clock(&offset)).await;
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = app_module(dir.path());

    // Everything is seen for the first time now: only the exempt version is listed and chosen as latest;
    // the denied one never is.
    let listed = go_ok(&home, &app, &["list", "-m", "-versions", MODULE]).await;
    assert_eq!(listed, "example.com/hello v1.1.0");
    let latest = go_ok(&home, &app, &["list", "-m", &format!("{MODULE}@latest")]).await;
    assert_eq!(latest, "example.com/hello v1.1.0");
    // Asked for by name: 403 naming the rule (by its line, never the file's path) and when it is
    // available; nothing is fetched for it.
    refused(
        &home,
        &app,
        "v1.2.0",
        &[
            "403 Forbidden",
            "example.com/hello@v1.2.0 is not served by this proxy: too new for versions \"example.com/*\" (line 3 of the download file): min_age 3days; available from",
        ],
    )
    .await;
    let body = get(&format!("{}/{MODULE}/@v/v1.2.0.info", ferry.url())).await;
    assert_eq!(body.status, 403);
    assert!(
        !body.text().contains(&dir.path().display().to_string()),
        "{}",
        body.text()
    );
    assert!(!ferry.stored(MODULE, "v1.2.0").await);
    refused(
        &home,
        &app,
        "v1.0.0",
        &["denied by versions \"example.com/*\" (line 3 of the download file): deny \"v1.0.0\""],
    )
    .await;
    go_ok(
        &home,
        &app,
        &["mod", "download", "-json", &format!("{MODULE}@v1.1.0")],
    )
    .await;

    // 71 hours later: still held back.
    offset.store(71 * HOUR, Ordering::Relaxed);
    refused(&home, &app, "v1.2.0", &["too new"]).await;
    // 73 hours later: listed, the latest, served; the denied version still is not.
    offset.store(73 * HOUR, Ordering::Relaxed);
    let listed = go_ok(&home, &app, &["list", "-m", "-versions", MODULE]).await;
    assert_eq!(listed, "example.com/hello v1.1.0 v1.2.0");
    let latest = go_ok(&home, &app, &["list", "-m", &format!("{MODULE}@latest")]).await;
    assert_eq!(latest, "example.com/hello v1.2.0");
    go_ok(
        &home,
        &app,
        &["mod", "download", "-json", &format!("{MODULE}@v1.2.0")],
    )
    .await;
    assert!(ferry.stored(MODULE, "v1.2.0").await);
    refused(&home, &app, "v1.0.0", &["denied"]).await;

    let metrics = get(&format!("{}/metrics", ferry.url())).await.text();
    assert!(
        metrics.contains("ferry_version_refusals_total{result=\"min_age\"}")
            && metrics.contains("ferry_version_refusals_total{result=\"deny\"}"),
        "{metrics}"
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_version_was_first_seen_survives_a_restart_on_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![hello("v1.2.0")]).await;
    let offset = Arc::new(AtomicU64::new(0));
    let first = ferry(dir.path(), &upstream, POLICY, clock(&offset)).await;
    let home = GoHome::new(dir.path(), &first.url());
    let app = app_module(dir.path());
    refused(&home, &app, "v1.2.0", &["too new"]).await;
    first.proxy.ledger().sync().await.unwrap();
    first.stop().await;

    // Restarted three days on: the sighting was kept, so the version is old enough (a proxy that forgot it
    // would see it for the first time at the moved clock's now and hold it back again).
    offset.store(73 * HOUR, Ordering::Relaxed);
    let second = ferry(dir.path(), &upstream, POLICY, clock(&offset)).await;
    let home = GoHome::new(dir.path(), &second.url());
    go_ok(
        &home,
        &app,
        &["mod", "download", "-json", &format!("{MODULE}@v1.2.0")],
    )
    .await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_serves_everything_and_counts_what_it_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![hello("v1.0.0"), hello("v1.2.0")]).await;
    let policy = POLICY.replace("exempt  = [\"v1.1.0\"]", "dry_run = true");
    let ferry = ferry(dir.path(), &upstream, &policy, Clock::system()).await;
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = app_module(dir.path());
    let listed = go_ok(&home, &app, &["list", "-m", "-versions", MODULE]).await;
    assert_eq!(listed, "example.com/hello v1.0.0 v1.2.0");
    go_ok(
        &home,
        &app,
        &["mod", "download", "-json", &format!("{MODULE}@v1.0.0")],
    )
    .await;
    let metrics = get(&format!("{}/metrics", ferry.url())).await.text();
    assert!(
        metrics.contains("ferry_version_refusals_dry_run_total{result=\"min_age\"}")
            && metrics.contains("ferry_version_refusals_dry_run_total{result=\"deny\"}"),
        "{metrics}"
    );
    ferry.stop().await;
}

#[test]
fn a_bad_version_rule_stops_start_up_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("download.hcl");
    std::fs::write(
        &file,
        "mode = \"sync\"\nversions \"*\" {\n  min_age = \"3 fortnights\"\n}\n",
    )
    .unwrap();
    let mode = format!("file:{}", file.display());
    let env = ferry_env(
        dir.path(),
        Some("http://127.0.0.1:9"),
        &[("FERRY_DOWNLOAD_MODE", &mode)],
    );
    let error = config::load(&Flags::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            "{}:3:13: min_age \"3 fortnights\" is not a duration; write an age such as \"72h\" or \"7d\"",
            file.display()
        )),
        "{error}"
    );
}
