//! The fetcher's hardening, end to end through the real `ferry` binary, the real `go` as client and the
//! testkit's fixture upstream (issue 10): odd reason phrases, a crashed Ferry's `go` children, a second
//! Ferry on the same work dir, a million-version upstream list.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_testkit::{
    Behaviour, FixtureModule, GoHome, Process, Upstream, go_binary, processes_under,
};

use crate::harness::{ferry, get, raw_request, serving};

fn hello(version: &str) -> FixtureModule {
    FixtureModule::package("example.com/hello", version)
}

/// The `ferry` binary serving a memory store on 127.0.0.1:0, fetching with the real `go` from `goproxy`,
/// its work dir `<dir>/work` and its home `<dir>/home`.
fn ferry_fetching_from(dir: &Path, goproxy: &str) -> Command {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = ferry();
    command
        .env("FERRY_LISTEN", "127.0.0.1:0")
        .env("FERRY_STORAGE", "memory://")
        .env("FERRY_WORK_DIR", dir.join("work"))
        .env("FERRY_GO", go_binary())
        .env("GOPROXY", goproxy)
        .env("GOSUMDB", "off")
        .env("HOME", &home);
    command
}

/// Like [`ferry_fetching_from`], with every version fetched by the `go` command (not over HTTP): the tests of
/// what happens to go's processes.
fn go_fetching_from(dir: &Path, goproxy: &str) -> Command {
    let mut command = ferry_fetching_from(dir, goproxy);
    command.env("FERRY_FETCH_NATIVE", "off");
    command
}

/// `(pid, state)` of every process whose `/proc/PID/stat` says it is in process group `group`.
fn group_members(group: i32) -> Vec<(i32, char)> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses, so split after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        if let [state, _ppid, pgrp, ..] = fields[..]
            && pgrp.parse() == Ok(group)
        {
            members.push((pid, state.chars().next().unwrap_or('?')));
        }
    }
    members
}

/// Waits until `check` gives something, for at most `limit`.
async fn within<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request for a version Ferry must fetch, sent without waiting for (or insisting on) an answer: the
/// upstream hangs, and Ferry may die under it.
fn hanging_request(addr: &str) -> impl Future<Output = String> + use<> {
    let addr = addr.parse().unwrap();
    async move {
        raw_request(
            addr,
            b"GET /example.com/hello/@v/v1.0.0.info HTTP/1.1\r\nHost: ferry\r\n\r\n",
        )
        .await
    }
}

/// `VmHWM` (peak resident set) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[tokio::test]
async fn a_client_falls_through_ferry_to_the_next_proxy_when_the_upstream_misses_with_an_odd_reason_phrase()
 {
    let temp = tempfile::tempdir().unwrap();
    // Ferry's upstream has nothing; the next proxy in the client's GOPROXY has the module.
    let upstream = Upstream::start(vec![]).await;
    let next = Upstream::start(vec![hello("v1.0.0"), hello("v1.1.0"), hello("v1.2.0")]).await;
    let (_ferry, addr) = serving(ferry_fetching_from(temp.path(), &upstream.url()));
    let ferry_url = format!("http://{addr}");

    let cases = [
        (404, "File not found", "v1.0.0"),
        (410, "Gone Fishing", "v1.1.0"),
        (404, "", "v1.2.0"),
    ];
    for (status, reason, version) in cases {
        upstream.set_miss_status(status);
        upstream.set_reason_phrase(reason);
        let answer = get(&format!("{ferry_url}/example.com/hello/@v/{version}.info")).await;
        assert_eq!(answer.status, 404, "{status} {reason:?}: {}", answer.text());
        assert!(
            answer.text().starts_with("not found: "),
            "{}",
            answer.text()
        );

        let client = GoHome::new(temp.path(), &format!("{ferry_url},{}", next.url()));
        let target = format!("example.com/hello@{version}");
        let downloaded = client
            .run_async(temp.path(), &["mod", "download", "-json", &target])
            .await;
        let downloaded: serde_json::Value = serde_json::from_str(&downloaded).unwrap();
        assert_eq!(downloaded["Version"], version, "{status} {reason:?}");
        assert_eq!(next.request_count(&format!("{version}.zip")), 1);
    }

    // And it builds: a program importing the module, through Ferry (which misses) and the next proxy.
    let program = temp.path().join("program");
    std::fs::create_dir_all(&program).unwrap();
    std::fs::write(
        program.join("go.mod"),
        "module example.com/program\n\ngo 1.21\n\nrequire example.com/hello v1.2.0\n",
    )
    .unwrap();
    std::fs::write(
        program.join("main.go"),
        "package main\n\nimport \"example.com/hello\"\n\nfunc main() { println(hello.Version()) }\n",
    )
    .unwrap();
    let client = GoHome::new(temp.path(), &format!("{ferry_url},{}", next.url()));
    client.run_async(&program, &["build", "./..."]).await;

    // The control: a failure (here a 500 calling itself "Not Found") stops the client at Ferry.
    upstream.set_behaviour(Behaviour::Fail(500));
    upstream.set_reason_phrase("Not Found");
    let answer = get(&format!("{ferry_url}/example.com/other/@v/v1.0.0.info")).await;
    assert_eq!(answer.status, 502, "{}", answer.text());
    let client = GoHome::new(temp.path(), &format!("{ferry_url},{}", next.url()));
    let output = client
        .output_async(
            temp.path(),
            &["mod", "download", "example.com/other@v1.0.0"],
        )
        .await;
    assert!(!output.status.success());
    assert_eq!(next.request_count("example.com/other/@v/v1.0.0.info"), 0);
}

#[tokio::test]
async fn a_killed_ferry_takes_its_hanging_go_with_it() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let (mut ferry, addr) = serving(go_fetching_from(temp.path(), &upstream.url()));
    let work_dir = temp.path().join("work");
    let request = tokio::spawn(hanging_request(&addr));

    let go = within(
        Duration::from_secs(20),
        "go runs and asks the upstream",
        || {
            let running = processes_under(&work_dir);
            (upstream.request_count(".info") >= 1 && !running.is_empty()).then_some(running)
        },
    )
    .await;
    assert_eq!(go.len(), 1, "one go command: {go:?}");
    let group = go[0];
    // go leads a process group of its own.
    assert!(group_members(group).iter().any(|&(pid, _)| pid == group));

    ferry.child.kill().unwrap(); // SIGKILL: no handler runs, nothing is cleaned up by Ferry itself.
    ferry.child.wait().unwrap();
    let started = Instant::now();
    within(Duration::from_secs(5), "go's process group is gone", || {
        // Dead, or a zombie waiting for whoever adopted it to reap it: either way it runs no more.
        let alive: Vec<_> = group_members(group)
            .into_iter()
            .filter(|&(_, state)| state != 'Z' && state != 'X')
            .collect();
        alive.is_empty().then_some(())
    })
    .await;
    eprintln!(
        "go's group gone {:?} after Ferry's SIGKILL",
        started.elapsed()
    );
    request.abort();
}

#[tokio::test]
async fn a_second_ferry_on_the_same_work_dir_stops_without_touching_the_first_ones_fill() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![hello("v1.0.0")]).await;
    upstream.set_behaviour(Behaviour::Hang);
    let (_first, addr) = serving(go_fetching_from(temp.path(), &upstream.url()));
    let work_dir = temp.path().join("work");
    let request = tokio::spawn(hanging_request(&addr));
    let go = within(Duration::from_secs(20), "the first Ferry's go runs", || {
        let running = processes_under(&work_dir);
        (!running.is_empty()).then_some(running)
    })
    .await;
    let fill_dirs: Vec<PathBuf> = std::fs::read_dir(&work_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(fill_dirs.len(), 1, "{fill_dirs:?}");

    let second = go_fetching_from(temp.path(), &upstream.url())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&work_dir.display().to_string()) && stderr.contains("its own work_dir"),
        "{stderr}"
    );
    // The first Ferry's fill is untouched: its directory is there and its go still runs.
    assert!(fill_dirs[0].is_dir());
    assert_eq!(processes_under(&work_dir), go);
    request.abort();
}

#[tokio::test]
async fn a_million_version_upstream_list_is_a_502_and_ferry_stays_small() {
    let temp = tempfile::tempdir().unwrap();
    // go reads the highest version's go.mod (retractions), so that one is served.
    let warm_up = FixtureModule::package("example.com/warm", "v1.0.0");
    let upstream = Upstream::start(vec![hello("v1.0.0"), warm_up]).await;
    upstream.list_versions(
        "example.com/hello",
        (0..1_000_000).map(|n| format!("v0.{}.{}", n / 1000, n % 1000)),
    );
    let (ferry, addr): (Process, String) =
        serving(ferry_fetching_from(temp.path(), &upstream.url()));
    let pid = ferry.child.id();
    // A first request warms Ferry up (runtime threads, a go command) so the peak below is the list's own.
    // Another module: with a version of its own stored, Ferry would answer the list from the store.
    let warm = get(&format!("http://{addr}/example.com/warm/@v/v1.0.0.info")).await;
    assert_eq!(warm.status, 200, "{}", warm.text());
    let before = peak_rss_kib(pid);

    let answer = get(&format!("http://{addr}/example.com/hello/@v/list")).await;
    let after = peak_rss_kib(pid);
    eprintln!("ferry peak RSS: {before} KiB before the list, {after} KiB after");
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(answer.text().contains("too large"), "{}", answer.text());
    // At most 4 MiB of go's answer is read (in a buffer that may double): far from the 140 MiB it cost.
    assert!(
        after.saturating_sub(before) < 24 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}
