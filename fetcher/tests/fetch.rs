//! The fetcher against a real `go` and the testkit's fixture upstream (loopback only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_fetcher::{DEFAULT_MAX_OUTPUT_BYTES, FetchError, Fetcher, FetcherConfig, WorkDir};
use ferry_testkit::{
    Behaviour, FixtureModule, GoHome, Upstream, entries, eventually, go_binary, processes_under,
    write_goproxy_tree,
};

const PSEUDO: &str = "v0.0.0-20240102030405-abcdefabcdef";

fn hello(version: &str) -> FixtureModule {
    FixtureModule::package("example.com/hello", version)
}

/// Listed versions as text, to compare with what the test wrote.
fn names(versions: Vec<ferry_module::Version>) -> Vec<String> {
    versions.iter().map(ToString::to_string).collect()
}

/// A module path as the fetcher takes it (the proxy validated it before); kept for the test's whole run,
/// since the fetcher's futures borrow it.
fn module_path(path: &str) -> &'static ferry_module::ModulePath {
    Box::leak(Box::new(ferry_module::ModulePath::new(path).unwrap()))
}

/// A fetcher whose go sees only the fixture upstream, and nothing of this process's environment
/// but `PATH` and `HOME`.
async fn fetcher(
    upstream: &Upstream,
    work_dir: &Path,
    adjust: impl FnOnce(&mut FetcherConfig),
) -> Fetcher {
    let mut config = FetcherConfig::new(work_dir);
    config.go_binary = go_binary();
    config.go_env = BTreeMap::from([
        ("GOPROXY".to_owned(), upstream.url()),
        ("GOSUMDB".to_owned(), "off".to_owned()),
    ]);
    config.inherited_env = std::env::vars()
        .filter(|(key, _)| key == "PATH" || key == "HOME")
        .collect();
    adjust(&mut config);
    Fetcher::new(config).await.expect("fetcher starts")
}

/// Like [`fetcher`], with every version fetched by the go command (not over HTTP): for the tests of what
/// happens to go's processes and directories.
async fn go_fetcher(
    upstream: &Upstream,
    work_dir: &Path,
    adjust: impl FnOnce(&mut FetcherConfig),
) -> Fetcher {
    fetcher(upstream, work_dir, |config| {
        config.native = false;
        adjust(config);
    })
    .await
}

/// The `Sum` go computes for `module` served from a plain `file://` GOPROXY tree.
fn sum_by_go(module: &FixtureModule, scratch: &Path) -> String {
    let tree = scratch.join("tree");
    write_goproxy_tree(&tree, std::slice::from_ref(module));
    let home = GoHome::new(scratch, &format!("file://{}", tree.display()));
    let cwd = scratch.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let target = format!("{}@{}", module.path(), module.version());
    let stdout = home.run(&cwd, &["mod", "download", "-json", &target]);
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    answer["Sum"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn fetch_hands_back_the_three_files_and_go_sum() {
    let module = hello("v1.0.0").file("README", "hello\n");
    let upstream = Upstream::start(vec![module.clone()]).await;
    let temp = tempfile::tempdir().unwrap();
    let work_dir = temp.path().join("work");
    let fetcher = fetcher(&upstream, &work_dir, |_| {}).await;
    assert!(
        fetcher.go_version().starts_with("go1."),
        "{}",
        fetcher.go_version()
    );

    let fetched = fetcher
        .fetch(module_path("example.com/hello"), "v1.0.0")
        .await
        .unwrap();
    assert_eq!(fetched.module, "example.com/hello");
    assert_eq!(fetched.version.as_str(), "v1.0.0");
    // go writes the .info it parsed back out (without the upstream's trailing newline): same JSON.
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fetched.info).unwrap()).unwrap();
    assert_eq!(
        info,
        serde_json::from_str::<serde_json::Value>(&module.info_json()).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&fetched.go_mod).unwrap(),
        module.go_mod()
    );
    let zip = std::fs::read(&fetched.zip).unwrap();
    assert_eq!(zip, module.zip_bytes());
    assert_eq!(fetched.zip_len, zip.len() as u64);
    assert_eq!(
        fetched.sum,
        sum_by_go(&module, &temp.path().join("reference"))
    );
    assert!(fetched.go_mod_sum.starts_with("h1:"));
    assert!(fetched.temp_dir().starts_with(&work_dir));

    // The files live until the value is dropped; then nothing is left.
    assert_eq!(entries(&work_dir).len(), 1);
    drop(fetched);
    assert_eq!(entries(&work_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn remove_deletes_the_files() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;
    let fetched = fetcher
        .fetch(module_path("example.com/hello"), "v1.0.0")
        .await
        .unwrap();
    let dir = fetched.temp_dir().to_path_buf();
    assert!(fetched.zip.is_file());
    fetched.remove().await;
    assert!(!dir.exists());
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn queries_resolve_to_canonical_versions() {
    let upstream = Upstream::start(vec![hello("v1.0.0"), hello("v1.1.0"), hello(PSEUDO)]).await;
    upstream.alias("example.com/hello", "master", PSEUDO);
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;

    let branch = fetcher
        .fetch(module_path("example.com/hello"), "master")
        .await
        .unwrap();
    assert_eq!(branch.version.as_str(), PSEUDO);
    assert!(branch.zip.ends_with(format!("{PSEUDO}.zip")));
    assert_eq!(
        std::fs::read(&branch.zip).unwrap(),
        hello(PSEUDO).zip_bytes()
    );

    let latest = fetcher
        .fetch(module_path("example.com/hello"), "latest")
        .await
        .unwrap();
    assert_eq!(latest.version.as_str(), "v1.1.0");
}

#[tokio::test]
async fn resolve_answers_a_query_without_downloading_the_zip() {
    let upstream = Upstream::start(vec![hello("v1.0.0"), hello(PSEUDO)]).await;
    upstream.alias("example.com/hello", "master", PSEUDO);
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;
    let resolved = fetcher
        .resolve(module_path("example.com/hello"), "master")
        .await
        .unwrap();
    assert_eq!(resolved.version, PSEUDO);
    assert_eq!(
        upstream.request_count(".zip"),
        0,
        "{:?}",
        upstream.requests()
    );
    let missing = fetcher
        .resolve(module_path("example.com/hello"), "no-such-branch")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ferry_fetcher::FetchError::NotFound { .. }),
        "{missing}"
    );
}

#[tokio::test]
async fn list_and_latest() {
    let upstream = Upstream::start(vec![
        hello("v1.0.0"),
        hello("v1.1.0").with_time("2024-05-06T07:08:09Z"),
        hello("v1.0.1"),
    ])
    .await;
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;

    assert_eq!(
        names(
            fetcher
                .list(module_path("example.com/hello"))
                .await
                .unwrap()
        ),
        ["v1.0.0", "v1.0.1", "v1.1.0"]
    );
    // The fixture upstream answers an empty list for modules it does not know.
    assert_eq!(
        names(
            fetcher
                .list(module_path("example.com/unknown"))
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );

    let latest = fetcher
        .latest(module_path("example.com/hello"))
        .await
        .unwrap();
    assert_eq!(latest.version.as_str(), "v1.1.0");
    assert_eq!(latest.time, "2024-05-06T07:08:09Z");
    assert_eq!(latest.origin, None);

    let unknown = fetcher
        .latest(module_path("example.com/unknown"))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, FetchError::NotFound { .. }),
        "{unknown:?}"
    );
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn unknown_versions_and_modules_are_not_found_with_gos_reason() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;

    let error = fetcher
        .fetch(module_path("example.com/hello"), "v1.9.9")
        .await
        .unwrap_err();
    let FetchError::NotFound { message } = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("example.com/hello@v1.9.9"), "{message}");
    assert!(message.contains("404 Not Found"), "{message}");

    let error = fetcher
        .fetch(module_path("example.com/nope"), "master")
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::NotFound { .. }), "{error:?}");
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn upstream_failure_is_upstream() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Fail500);
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;

    let error = fetcher
        .fetch(module_path("example.com/hello"), "v1.0.0")
        .await
        .unwrap_err();
    let FetchError::Upstream { message } = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("500 Internal Server Error"), "{message}");
    let error = fetcher
        .list(module_path("example.com/hello"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Upstream { .. }), "{error:?}");
    let error = fetcher
        .latest(module_path("example.com/hello"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Upstream { .. }), "{error:?}");
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_hanging_upstream_times_out_and_leaves_nothing_behind() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let temp = tempfile::tempdir().unwrap();
    let work_dir = temp.path().to_path_buf();
    let fetcher = go_fetcher(&upstream, &work_dir, |config| {
        config.timeout = Duration::from_secs(2)
    })
    .await;

    let started = Instant::now();
    let fetch = fetcher.fetch(module_path("example.com/hello"), "v1.0.0");
    tokio::pin!(fetch);
    // Find go while it runs, to check afterwards that its process group is gone.
    let mut go_pid = None;
    let result = loop {
        tokio::select! {
            result = &mut fetch => break result,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                go_pid = go_pid.or_else(|| processes_under(&work_dir).first().copied());
            }
        }
    };
    let elapsed = started.elapsed();
    let error = result.unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error:?}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
    assert!(
        upstream.request_count(".info") >= 1,
        "go reached the upstream"
    );

    let go_pid = go_pid.expect("go was seen running");
    let group = rustix::process::Pid::from_raw(go_pid).unwrap();
    assert_eq!(
        rustix::process::test_kill_process_group(group),
        Err(rustix::io::Errno::SRCH)
    );
    assert_eq!(processes_under(&work_dir), Vec::<i32>::new());
    assert_eq!(entries(&work_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_upstream_that_trickles_is_cut_at_the_deadline() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    // Never silent, always too slow: a byte every 100 ms.
    upstream.set_behaviour(Behaviour::Trickle {
        chunk: 1,
        every: Duration::from_millis(100),
    });
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |config| {
        config.timeout = Duration::from_secs(2)
    })
    .await;
    let started = Instant::now();
    let error = fetcher
        .fetch(module_path("example.com/hello"), "v1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(upstream.request_count(".info") >= 1);
    assert_eq!(processes_under(temp.path()), Vec::<i32>::new());
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn dropping_a_fetch_kills_go_and_removes_its_directory() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let temp = tempfile::tempdir().unwrap();
    let work_dir = temp.path().to_path_buf();
    let fetcher = go_fetcher(&upstream, &work_dir, |_| {}).await;

    let task = tokio::spawn({
        let fetcher = fetcher.clone();
        async move {
            fetcher
                .fetch(module_path("example.com/hello"), "v1.0.0")
                .await
        }
    });
    eventually("go asks the upstream", async || {
        upstream.request_count(".info") >= 1
    })
    .await;
    let running = processes_under(&work_dir);
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(entries(&work_dir).len(), 1);

    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    eventually("go is gone", async || processes_under(&work_dir).is_empty()).await;
    assert_eq!(entries(&work_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn no_more_than_max_concurrent_go_commands_run() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let temp = tempfile::tempdir().unwrap();
    let work_dir = temp.path().to_path_buf();
    let timeout = Duration::from_millis(1500);
    let fetcher = go_fetcher(&upstream, &work_dir, |config| {
        config.max_concurrent = 2;
        config.timeout = timeout;
    })
    .await;

    let started = Instant::now();
    let fetches = async {
        tokio::join!(
            fetcher.fetch(module_path("example.com/hello"), "v1.0.0"),
            fetcher.fetch(module_path("example.com/hello"), "v1.0.0"),
            fetcher.fetch(module_path("example.com/hello"), "v1.0.0"),
            fetcher.fetch(module_path("example.com/hello"), "v1.0.0"),
        )
    };
    tokio::pin!(fetches);
    let mut most_running = 0;
    let results = loop {
        tokio::select! {
            results = &mut fetches => break results,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                most_running = most_running.max(processes_under(&work_dir).len());
            }
        }
    };
    for result in [results.0, results.1, results.2, results.3] {
        assert!(
            matches!(result, Err(FetchError::Timeout { .. })),
            "{result:?}"
        );
    }
    assert_eq!(most_running, 2, "two at once, never more");
    // Two waves of two: the later two waited for a slot instead of starting.
    assert!(started.elapsed() >= timeout * 2, "{:?}", started.elapsed());
    assert_eq!(entries(&work_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_missing_go_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = FetcherConfig::new(temp.path());
    config.go_binary = PathBuf::from("/nonexistent/bin/go");
    let error = Fetcher::new(config).await.err().expect("no go, no fetcher");
    assert!(matches!(error, FetchError::GoMissing { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/bin/go") && message.contains("install Go"),
        "{message}"
    );
}

#[tokio::test]
async fn start_up_removes_leftovers_of_a_killed_run() {
    let upstream = Upstream::start(vec![]).await;
    let temp = tempfile::tempdir().unwrap();
    let leftover = temp
        .path()
        .join("go-leftover/gomodcache/example.com/hello@v1.0.0");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(temp.path().join("unrelated"), "kept").unwrap();
    let _fetcher = fetcher(&upstream, temp.path(), |_| {}).await;
    assert_eq!(entries(temp.path()), [temp.path().join("unrelated")]);
}

#[tokio::test]
async fn a_404_or_410_is_not_found_whatever_the_upstreams_reason_phrase() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let temp = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&upstream, temp.path(), |_| {}).await;
    for (status, reason) in [
        (404, "File not found"),
        (404, ""),
        (410, "Gone Fishing"),
        (404, "Internal Server Error"),
    ] {
        upstream.set_miss_status(status);
        upstream.set_reason_phrase(reason);
        let error = fetcher
            .fetch(module_path("example.com/hello"), "v1.9.9")
            .await
            .unwrap_err();
        let FetchError::NotFound { message } = &error else {
            panic!("{status} {reason:?}: {error:?}")
        };
        // go's own words, with the upstream's status line as it came.
        assert!(
            message.contains(&format!(".info: {status} {reason}")),
            "{message}"
        );
        let error = fetcher
            .resolve(module_path("example.com/hello"), "no-such-branch")
            .await
            .unwrap_err();
        assert!(
            matches!(error, FetchError::NotFound { .. }),
            "{status} {reason:?}: {error:?}"
        );
    }
    // The code decides, not the phrase: a 500 that calls itself "Not Found" is an upstream failure.
    upstream.set_behaviour(Behaviour::Fail(500));
    upstream.set_reason_phrase("Not Found");
    let error = fetcher
        .fetch(module_path("example.com/hello"), "v1.0.0")
        .await
        .unwrap_err();
    let FetchError::Upstream { message } = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains(": 500 Not Found"), "{message}");
}

#[tokio::test]
async fn an_upstream_list_beyond_the_output_bound_is_refused_and_one_within_it_is_listed() {
    // Listed versions need not be served: with `-retracted` go reads the list alone.
    let upstream = Upstream::start(vec![
        hello("v1.0.0"),
        FixtureModule::package("example.com/big", "v1.0.0"),
    ])
    .await;
    let versions = |count: usize| (0..count).map(|n| format!("v0.{}.{}", n / 1000, n % 1000));
    upstream.list_versions("example.com/hello", versions(1_000_000));
    upstream.list_versions("example.com/big", versions(100_000));
    let temp = tempfile::tempdir().unwrap();
    // The go command's own list (native fetches off): its output is bounded.
    let fetcher = fetcher(&upstream, temp.path(), |c| c.native = false).await;
    assert_eq!(fetcher.config().max_output_bytes, DEFAULT_MAX_OUTPUT_BYTES);

    let error = fetcher
        .list(module_path("example.com/hello"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::OutputTooLarge {
                stream: "stdout",
                limit: DEFAULT_MAX_OUTPUT_BYTES,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("go list -m -retracted -versions -json example.com/hello")
            && message.contains("too large"),
        "{message}"
    );
    assert_eq!(processes_under(temp.path()), Vec::<i32>::new());
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());

    // A hundred thousand versions (about 1.5 MiB from go) are within the bound, and all listed.
    let listed = names(fetcher.list(module_path("example.com/big")).await.unwrap());
    assert_eq!(listed.len(), 100_001);
    assert_eq!(listed.last().map(String::as_str), Some("v1.0.0"));
}

#[tokio::test]
async fn an_upstream_list_is_read_natively_within_its_bound_and_no_go_command_reads_a_larger_one() {
    let upstream = Upstream::start(vec![
        hello("v1.0.0"),
        FixtureModule::package("example.com/big", "v1.0.0"),
    ])
    .await;
    // A list of one 100 MB line made a go command take 363 MB; eight at once 1.68 GB (issue 19).
    upstream.list_versions("example.com/hello", ["v1.0.0".repeat(1_500_000)]);
    let versions = (0..100_000).map(|n| format!("v0.{}.{}", n / 1000, n % 1000));
    // Pseudo-versions, invalid and non-canonical lines, duplicates: left out, as the go command does.
    let noise = [
        "v0.0.0-20240102030405-abcdefabcdef",
        "v1.2",
        "not-a-version",
        "v0.1.1 extra fields",
    ];
    upstream.list_versions(
        "example.com/big",
        versions.chain(noise.iter().map(|v| v.to_string())),
    );
    let temp = tempfile::tempdir().unwrap();
    let native = fetcher(&upstream, temp.path(), |_| {}).await;

    let error = native
        .list(module_path("example.com/hello"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Upstream { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("version list of example.com/hello is too large"),
        "{error}"
    );
    // Nothing was handed to a go command: it would have read the list whole.
    assert_eq!(entries(temp.path()), Vec::<PathBuf>::new());

    let listed = names(native.list(module_path("example.com/big")).await.unwrap());
    // The line with extra fields lists v0.1.1 a second time, as it does for go.
    assert_eq!(listed.len(), 100_002);
    assert_eq!(listed.first().map(String::as_str), Some("v0.0.0"));
    assert_eq!(listed.last().map(String::as_str), Some("v1.0.0"));
    assert!(
        !listed
            .iter()
            .any(|v| v.contains("20240102030405") || v == "v1.2")
    );
    // As the go command lists them (native off), in the same order.
    let other = tempfile::tempdir().unwrap();
    let by_go = fetcher(&upstream, other.path(), |c| c.native = false).await;
    // go keeps a valid but non-canonical `v1.2`, which no request can name: the fetcher leaves it out too.
    let from_go = names(by_go.list(module_path("example.com/big")).await.unwrap());
    let first_difference = listed.iter().zip(&from_go).position(|(a, b)| a != b);
    assert_eq!(
        (listed.len(), first_difference),
        (from_go.len(), None),
        "{:?}",
        first_difference.map(|i| (&listed[i], &from_go[i]))
    );
}

/// A `go` that runs the real one, then records what its environment looked like to it.
fn recording_go(dir: &Path, record: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let go = go_binary();
    let script = format!(
        r#"#!/bin/sh
"{go}" "$@"
status=$?
{{
  echo "HOME=$HOME"
  echo "NETRC=$NETRC"
  echo "telemetry=$("{go}" env GOTELEMETRY)"
  echo "counters=$(ls "$HOME/.config/go/telemetry/local" 2>/dev/null | wc -l)"
  echo "git user=$(git config --global user.name)"
}} > "{record}"
exit $status
"#,
        go = go.display(),
        record = record.display()
    );
    let wrapper = dir.join("go");
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[tokio::test]
async fn go_runs_in_a_home_of_its_own_with_telemetry_off_and_keeps_ferrys_git_config() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    let temp = tempfile::tempdir().unwrap();
    let ferry_home = temp.path().join("ferry-home");
    std::fs::create_dir_all(&ferry_home).unwrap();
    std::fs::write(
        ferry_home.join(".gitconfig"),
        "[user]\n\tname = Ferry Tester\n",
    )
    .unwrap();
    let record = temp.path().join("record");
    let wrapper = recording_go(temp.path(), &record);
    let work_dir = temp.path().join("work");
    let fetcher = fetcher(&upstream, &work_dir, |config| {
        config.go_binary = wrapper;
        config
            .inherited_env
            .insert("HOME".to_owned(), ferry_home.display().to_string());
    })
    .await;
    fetcher
        .fetch(module_path("example.com/hello"), "v1.0.0")
        .await
        .unwrap();

    let seen: BTreeMap<String, String> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect();
    assert!(Path::new(&seen["HOME"]).starts_with(&work_dir), "{seen:?}");
    assert_eq!(seen["telemetry"], "off", "{seen:?}");
    assert_eq!(seen["counters"], "0", "{seen:?}");
    assert_eq!(seen["git user"], "Ferry Tester", "{seen:?}");
    assert_eq!(
        seen["NETRC"],
        ferry_home.join(".netrc").display().to_string()
    );
    // go wrote nothing into Ferry's own home.
    assert_eq!(
        entries(&ferry_home),
        [ferry_home.join(".gitconfig")],
        "go wrote into Ferry's home"
    );
}

#[tokio::test]
async fn a_second_fetcher_on_a_busy_work_dir_is_refused_and_leaves_the_first_ones_fetch_alone() {
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let temp = tempfile::tempdir().unwrap();
    let work_dir = temp.path().join("work");
    let first = go_fetcher(&upstream, &work_dir, |_| {}).await;
    let task = tokio::spawn({
        let first = first.clone();
        async move {
            first
                .fetch(module_path("example.com/hello"), "v1.0.0")
                .await
        }
    });
    eventually("go asks the upstream", async || {
        upstream.request_count(".info") >= 1
    })
    .await;
    let running = entries(&work_dir);
    assert_eq!(running.len(), 1, "{running:?}");

    let mut config = FetcherConfig::new(&work_dir);
    config.go_binary = go_binary();
    let error = Fetcher::new(config)
        .await
        .err()
        .expect("the work dir is busy");
    assert!(matches!(error, FetchError::WorkDirBusy { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&work_dir.display().to_string()) && message.contains("its own work_dir"),
        "{message}"
    );
    let error = WorkDir::lock(&work_dir).await.unwrap_err();
    assert!(matches!(error, FetchError::WorkDirBusy { .. }), "{error:?}");
    // The refused ones swept nothing: the first one's fetch still runs in its directory.
    assert_eq!(entries(&work_dir), running);
    assert_eq!(processes_under(&work_dir).len(), 1);

    task.abort();
    let _ = task.await;
    drop(first);
    let work = WorkDir::lock(&work_dir)
        .await
        .expect("free once the first is gone");
    assert_eq!(work.path(), work_dir);
    assert_eq!(entries(&work_dir), Vec::<PathBuf>::new());
}

/// The proxy clones the fetcher into tasks and spawns its futures: they must all be `Send`.
#[allow(dead_code)]
fn fetcher_and_its_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Fetcher>();
    fn check(fetcher: &Fetcher) {
        send(&fetcher.fetch(module_path("example.com/hello"), "v1.0.0"));
        send(&fetcher.list(module_path("example.com/hello")));
        send(&fetcher.latest(module_path("example.com/hello")));
        send(&Fetcher::new(FetcherConfig::new("/w")));
    }
    let _ = check;
    fn owned_result_is_send<T: Send + Sync + 'static>() {}
    owned_result_is_send::<ferry_fetcher::FetchedVersion>();
    owned_result_is_send::<FetchError>();
}
