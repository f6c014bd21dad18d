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
