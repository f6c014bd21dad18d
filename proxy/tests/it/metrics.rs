//! Cache and storage metrics, read from `GET /metrics` of the real `ferry` binary (a process of its own,
//! so its counters are this test's alone): hits after a second request, store operations by operation
//! and backend, a storage error counted when the store's server goes away, and no module path in a label.

use crate::harness::{ferry, ferry_env, forward, get, serving};
use ferry_testkit::{FixtureModule, Upstream, s3_server};

/// The value of the sample `name{labels}` in an OpenMetrics text, 0 when it is absent (a counter never
/// incremented is not written).
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or(0.0)
}

async fn scrape(base: &str) -> String {
    let reply = get(&format!("{base}/metrics")).await;
    assert_eq!(reply.status, 200);
    reply.text()
}

/// Asserts that no label value names the module or its version.
fn names_no_module(text: &str) {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("example.com") && !line.contains("hello") && !line.contains("v1.0.0"),
            "a module path or version in a label: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_count_a_miss_then_a_hit_and_the_store_counts_its_operations_by_backend() {
    let upstream =
        Upstream::start(vec![FixtureModule::package("example.com/hello", "v1.0.0")]).await;
    upstream.alias("example.com/hello", "master", "v1.0.0");
    let dir = tempfile::tempdir().unwrap();
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .envs(ferry_env(dir.path(), Some(&upstream.url()), &[]))
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (mut process, addr) = serving(command);
    let base = format!("http://{addr}");

    for (path, cache) in [
        ("example.com/hello/@v/list", "list"),
        ("example.com/hello/@latest", "latest"),
        ("example.com/hello/@v/master.info", "query"),
        ("example.com/hello/@v/v1.0.0.info", "file"),
    ] {
        let labels = format!("cache=\"{cache}\"");
        let first = get(&format!("{base}/{path}")).await;
        let before = scrape(&base).await;
        assert!(
            sample(&before, "ferry_cache_misses_total", &labels) >= 1.0,
            "{path}: {before}"
        );
        let second = get(&format!("{base}/{path}")).await;
        assert_eq!(first.status, second.status, "{path}");
        let after = scrape(&base).await;
        assert_eq!(
            sample(&after, "ferry_cache_hits_total", &labels),
            sample(&before, "ferry_cache_hits_total", &labels) + 1.0,
            "{path}: the second request is a hit of the {cache} cache: {after}"
        );
    }

    let text = scrape(&base).await;
    let memory = |operation: &str| format!("operation=\"{operation}\",backend=\"memory\"");
    assert!(
        sample(&text, "ferry_storage_operations_total", &memory("save")) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "ferry_storage_operations_total", &memory("check")) >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "ferry_storage_operation_duration_seconds_count",
            &memory("info")
        ) >= 1.0,
        "{text}"
    );
    // A version not stored yet is a "not found", not an error.
    assert!(!text.contains("ferry_storage_errors_total{"), "{text}");
    names_no_module(&text);
    assert!(process.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_error_is_counted_by_operation_and_backend_when_the_store_goes_away() {
    let Some(server) = s3_server() else { return };
    // The S3 server behind a forwarder the test takes away.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let target = server.endpoint.trim_start_matches("http://").to_string();
    let forwarding = tokio::spawn(forward(listener, target));
    let server = server.with_var("AWS_ENDPOINT", &front);
    let dir = tempfile::tempdir().unwrap();
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .envs(server.env.iter().map(|(name, value)| (name, value)))
        .env("FERRY_STORAGE", server.fresh_url())
        .env("FERRY_DOWNLOAD_MODE", "none")
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (mut process, addr) = serving(command);
    let base = format!("http://{addr}");
    let info = format!("{base}/example.com/hello/@v/v1.0.0.info");
    assert_eq!(get(&info).await.status, 404);

    forwarding.abort();
    let _ = forwarding.await;
    assert_eq!(get(&info).await.status, 503);

    let text = scrape(&base).await;
    let s3_info = "operation=\"info\",backend=\"s3\"";
    assert_eq!(
        sample(&text, "ferry_storage_operations_total", s3_info),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "ferry_storage_errors_total", s3_info),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ferry_storage_operation_duration_seconds_count",
            s3_info
        ),
        2.0,
        "{text}"
    );
    names_no_module(&text);
    assert!(process.terminate().success());
}

/// A value without labels (`name value`).
fn plain(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// What a dashboard shows of the process: CPU spent, resident memory, open descriptors, when it started,
/// and which build it is, as the `ferry` binary reports them.
#[tokio::test]
async fn the_process_reports_its_cpu_memory_descriptors_start_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .envs(ferry_env(
            dir.path(),
            None,
            &[("FERRY_DOWNLOAD_MODE", "none")],
        ))
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (_process, addr) = serving(command);
    let base = format!("http://{addr}");
    for _ in 0..50 {
        get(&format!("{base}/example.com/m/@v/list")).await;
    }
    let text = scrape(&base).await;
    assert!(
        plain(&text, "ferry_process_cpu_seconds_total") > 0.0,
        "{text}"
    );
    let resident = plain(&text, "ferry_process_resident_memory_bytes");
    assert!((1e6..1e10).contains(&resident), "{resident}");
    assert!(plain(&text, "ferry_process_open_fds") >= 4.0, "{text}");
    let start = plain(&text, "ferry_process_start_time_seconds");
    assert!(
        (started - 60.0..started + 60.0).contains(&start),
        "started {start}, test at {started}"
    );
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        text.lines()
            .any(|line| line.starts_with("ferry_build_info{")
                && line.contains(&version)
                && line.ends_with(" 1")),
        "{text}"
    );
}

/// The metric names a PromQL expression asks for (`ferry_…` identifiers not followed by `(`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ferry_") {
        let boundary = rest[..at]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        if boundary && !rest.starts_with('(') {
            names.push(name);
        }
    }
    names
}

/// Every sample name an OpenMetrics text can hold: the samples written, and for each `# TYPE` family
/// the names its type writes (a counter's `_total`, a histogram's `_bucket`, `_sum` and `_count`, an
/// info's `_info`), so that a family with no sample yet (no request of that kind) still counts.
fn exported_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (family, kind) = declared.split_once(' ').unwrap();
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// Every `expr` of a Grafana dashboard's panels (and of the panels inside its rows).
fn exprs(panels: &[serde_json::Value], found: &mut Vec<(String, String)>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("").to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            found.push((title.clone(), target["expr"].as_str().unwrap().to_string()));
        }
        exprs(panel["panels"].as_array().map_or(&[], Vec::as_slice), found);
    }
}

/// A Ferry whose every labelled family has a sample (a family is written only from its first one): it has
/// answered requests, filled a version from the upstream, looked a file up in its cache twice, probed a
/// checksum database that does not answer, and found its store gone.
async fn a_ferry_that_has_done_everything_once()
-> (crate::harness::Ferry, Upstream, tempfile::TempDir) {
    let upstream =
        Upstream::start(vec![FixtureModule::package("example.com/hello", "v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closed = ferry_testkit::closed_port();
    let sumdbs = format!("sum.example.org=http://127.0.0.1:{closed}");
    let storage = format!("file://{}", store.display());
    let env = ferry_env(
        dir.path(),
        Some(&upstream.url()),
        &[
            ("FERRY_STORAGE", storage.as_str()),
            ("FERRY_SUMDBS", sumdbs.as_str()),
        ],
    );
    let ferry = crate::harness::Ferry::from_env(&env, &ferry::config::Flags::default()).await;
    for _ in 0..3 {
        let info = ferry.get("example.com/hello/@v/v1.0.0.info").await;
        assert_eq!(info.status, 200, "{}", info.text());
    }
    let sumdb = ferry.get("sumdb/sum.example.org/latest").await;
    assert!(sumdb.status >= 500, "{}", sumdb.text());
    // A store that fails: its directory gone, a file in its place.
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, "not a directory").unwrap();
    let ready = ferry.get("readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    scrape(&ferry.url()).await;
    (ferry, upstream, dir)
}

#[tokio::test]
async fn the_grafana_dashboard_asks_only_for_metrics_a_live_ferry_exports() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/ferry.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut found = Vec::new();
    exprs(dashboard["panels"].as_array().unwrap(), &mut found);
    assert!(found.len() > 20, "the dashboard's queries: {found:?}");
    let (ferry, _upstream, _dir) = a_ferry_that_has_done_everything_once().await;
    let exported = exported_names(&scrape(&ferry.url()).await);
    let mut asked = std::collections::BTreeSet::new();
    for (title, expr) in &found {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "panel {title:?} asks for no ferry metric: {expr}"
        );
        for name in names {
            assert!(
                exported.contains(&name),
                "panel {title:?} asks for {name}, which /metrics does not export: {expr}"
            );
            asked.insert(name);
        }
    }
    // What an operator watches is all on it.
    for needed in [
        "ferry_requests_total",
        "ferry_request_duration_seconds_bucket",
        "ferry_cache_hits_total",
        "ferry_fills_total",
        "ferry_fills_in_flight",
        "ferry_fill_waiting_clients",
        "ferry_upstream_up",
        "ferry_sumdb_route_up",
        "ferry_store_bytes",
        "ferry_process_cpu_seconds_total",
        "ferry_process_resident_memory_bytes",
        "ferry_process_open_fds",
        "ferry_build_info",
    ] {
        assert!(
            asked.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    ferry.stop().await;
}

#[test]
fn metric_names_are_read_from_promql_without_functions_or_labels() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.9, sum by (le) (rate(ferry_fill_duration_seconds_bucket{instance=~\"$instance\"}[5m]))) / ferry_x"
        ),
        vec!["ferry_fill_duration_seconds_bucket", "ferry_x"]
    );
    assert_eq!(
        metric_names("time() - ferry_process_start_time_seconds"),
        vec!["ferry_process_start_time_seconds"]
    );
}
