//! Several `ferry` processes on one store: one upstream fetch per version across them (the lease of
//! `coordination`), a holder killed mid-fill taken over once its lease expires, renewal under a fill
//! longer than the lease, an unreachable Redis answered 503 until it returns, and the lease engines'
//! atomicity where the servers promise it (GCS emulator, Azurite, Redis; not s3s-fs: see
//! `docs/replicas.md`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::coordination::bucket::BucketCoordinator;
use ferry::coordination::redis::{RedisAddress, RedisCoordinator};
use ferry::coordination::{Acquired, Coordinator, LeaseKey};
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, ModuleStoreExt, StorageConfig};
use ferry_testkit::{
    CloudServer, FixtureModule, Process, TestCa, Upstream, azure_server, clean_command,
    closed_port, gcs_server, server_vars,
};

use crate::harness::{Reply, ferry, ferry_env, forward, get, serving};

/// A short lease, so that a takeover happens within a test's patience.
const LEASE: &str = "1s";

/// Replicas of Ferry on one store, each its own process with its own work dir.
struct Replicas {
    processes: Vec<Process>,
    addrs: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Replicas {
    /// `count` replicas of the `ferry` binary fetching from `upstream`, with `vars` (the store, the
    /// coordination, the backend's variables).
    fn start(count: usize, upstream: &Upstream, vars: &[(String, String)]) -> Replicas {
        let dir = tempfile::tempdir().unwrap();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (mut processes, mut addrs) = (Vec::new(), Vec::new());
        for i in 0..count {
            let own = dir.path().join(format!("replica-{i}"));
            std::fs::create_dir_all(&own).unwrap();
            let mut command = ferry();
            command
                .current_dir(&own)
                .envs(ferry_env(&own, Some(&upstream.url()), &vars))
                .env("FERRY_LISTEN", "127.0.0.1:0")
                .env("FERRY_LOG", "info,ferry=debug");
            let (process, addr) = serving(command);
            processes.push(process);
            addrs.push(addr);
        }
        Replicas {
            processes,
            addrs,
            _dir: dir,
        }
    }

    async fn get(&self, replica: usize, path: &str) -> Reply {
        get(&format!("http://{}/{path}", self.addrs[replica])).await
    }

    /// Waits (at most 30 s) until the upstream holds a fetch of one of the replicas.
    async fn until_a_fetch_is_held(&self, upstream: &Upstream) {
        let started = Instant::now();
        while upstream.held() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no fetch began: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logs(&self) -> String {
        self.processes
            .iter()
            .map(Process::log)
            .collect::<Vec<_>>()
            .join("\n----\n")
    }
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The variables of replicas on a fresh prefix of `server`'s bucket, coordinated through it.
fn bucket_vars(server: &CloudServer) -> Vec<(String, String)> {
    let mut vars = server.env.clone();
    vars.extend(pairs(&[
        ("FERRY_STORAGE", &server.fresh_url()),
        ("FERRY_COORDINATION", "storage"),
        ("FERRY_LEASE_TIME", LEASE),
    ]));
    vars
}

/// The Redis server `scripts/test-servers.sh` started.
fn redis_url() -> Option<String> {
    server_vars("Redis", ["FERRY_TEST_REDIS_URL"]).map(|[url]| url)
}

/// The variables of replicas on one file store (`dir`), coordinated through Redis.
fn file_and_redis_vars(dir: &std::path::Path, redis: &str) -> Vec<(String, String)> {
    pairs(&[
        ("FERRY_STORAGE", &format!("file://{}", dir.display())),
        ("FERRY_COORDINATION", redis),
        ("FERRY_LEASE_TIME", LEASE),
    ])
}

/// 48 concurrent cold requests for one zip, spread over three replicas: one upstream fetch, 48 equal
/// bodies, the fixture's bytes.
async fn one_fetch_for_48_requests_over_three_replicas(mut vars: Vec<(String, String)>) {
    // A lease the holder keeps however loaded the machine: with the takeover tests' 1 s one, a holder
    // whose renewals stalled for a second under the full suite lost it, and a second replica fetched.
    // What this test shows is that the others wait; a replica that did not would fetch at once.
    for (name, value) in &mut vars {
        if name == "FERRY_LEASE_TIME" {
            *value = "10s".to_string();
        }
    }
    let module = FixtureModule::package("example.com/replicated", "v1.0.0")
        .file("data.bin", vec![7u8; 512 * 1024]);
    let upstream = Upstream::start(vec![module.clone()]).await;
    // The zip is held until every request is in: the fill is surely still running while they arrive.
    upstream.hold(".zip");
    let replicas = Arc::new(Replicas::start(3, &upstream, &vars));
    let requests: Vec<_> = (0..48)
        .map(|i| {
            let replicas = replicas.clone();
            tokio::spawn(async move {
                replicas
                    .get(i % 3, "example.com/replicated/@v/v1.0.0.zip")
                    .await
            })
        })
        .collect();
    replicas.until_a_fetch_is_held(&upstream).await;
    // A replica that wrongly fetched on its own would be held here too by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        upstream.held(),
        1,
        "one fetch is running: {:?}",
        upstream.requests()
    );
    upstream.release();
    let expected = module.zip_bytes();
    for request in requests {
        let reply = tokio::time::timeout(Duration::from_secs(60), request)
            .await
            .expect("every request is answered")
            .unwrap();
        assert_eq!(reply.status, 200, "{}\n{}", reply.text(), replicas.logs());
        assert!(
            reply.body == expected.as_slice(),
            "every body is the fixture's zip"
        );
    }
    assert_eq!(
        (
            upstream.request_count(".zip"),
            upstream.request_count(".info")
        ),
        (1, 1),
        "one upstream fetch across the replicas: {:?}",
        upstream.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_eight_cold_requests_over_three_replicas_on_gcs_cause_one_upstream_fetch() {
    let Some(server) = gcs_server() else { return };
    one_fetch_for_48_requests_over_three_replicas(bucket_vars(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_eight_cold_requests_over_three_replicas_on_azurite_cause_one_upstream_fetch() {
    let Some(server) = azure_server() else { return };
    one_fetch_for_48_requests_over_three_replicas(bucket_vars(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_eight_cold_requests_over_three_replicas_on_a_file_store_with_redis_cause_one_upstream_fetch()
 {
    let Some(redis) = redis_url() else { return };
    let store = tempfile::tempdir().unwrap();
    one_fetch_for_48_requests_over_three_replicas(file_and_redis_vars(store.path(), &redis)).await;
}

/// The store the replicas share, opened by the test to watch what is visible.
fn watch_store(vars: &[(String, String)]) -> Arc<dyn ModuleStore> {
    let url = &vars.iter().find(|(k, _)| k == "FERRY_STORAGE").unwrap().1;
    let env = vars.iter().cloned().collect();
    StorageConfig::from_url_with(url, &Default::default(), &env)
        .unwrap()
        .open()
        .unwrap()
}

/// The replica holding the lease is killed (SIGKILL) mid-fill: another completes the version once the
/// lease has expired, and the version is never visible incomplete.
async fn a_killed_holder_is_taken_over(vars: Vec<(String, String)>) {
    let module = FixtureModule::package("example.com/orphaned", "v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    upstream.hold(".zip");
    let mut replicas = Replicas::start(3, &upstream, &vars);
    let path = "example.com/orphaned/@v/v1.0.0.zip";
    let holder = format!("http://{}/{path}", replicas.addrs[0]);
    // The holder's client: it gets no answer, the process dies under it.
    let doomed = tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        client.get(holder.parse().unwrap()).await.is_ok()
    });
    replicas.until_a_fetch_is_held(&upstream).await;
    let waiting: Vec<_> = [1, 2]
        .map(|i| {
            let url = format!("http://{}/{path}", replicas.addrs[i]);
            tokio::spawn(async move { get(&url).await })
        })
        .into_iter()
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    replicas.processes[0].signal("-KILL");
    let killed = Instant::now();
    let _ = replicas.processes[0].child.wait();
    let _ = doomed.await;
    upstream.release();
    // Until the takeover stores it, the version is invisible or whole, never partial.
    let store = watch_store(&vars);
    let (name, version) = (
        ModulePath::new("example.com/orphaned").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    while !waiting.iter().all(tokio::task::JoinHandle::is_finished) {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "not taken over: {}",
            replicas.logs()
        );
        if store.exists(&name, &version).await.unwrap() {
            let info = store.info(&name, &version).await.unwrap();
            let zip = store.zip(&name, &version).await.unwrap();
            assert_eq!(
                zip.len,
                module.zip_bytes().len() as u64,
                "a visible version is whole"
            );
            assert_eq!(
                info.trim_ascii_end(),
                module.info_json().trim_end().as_bytes()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for request in waiting {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, 200, "{}\n{}", reply.text(), replicas.logs());
        assert!(reply.body == module.zip_bytes().as_slice());
    }
    assert_eq!(
        upstream.request_count(".zip"),
        2,
        "the killed holder's fetch and the one takeover: {:?}",
        upstream.requests()
    );
    // The holder renewed at most a third of a lease before it died: nobody could take over sooner
    // than two thirds of a lease after the kill.
    assert!(
        killed.elapsed() >= Duration::from_millis(600),
        "taken over {:?} after the kill, before the lease expired",
        killed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_mid_fill_on_gcs_is_taken_over_after_its_lease_expires() {
    let Some(server) = gcs_server() else { return };
    a_killed_holder_is_taken_over(bucket_vars(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_mid_fill_on_azurite_is_taken_over_after_its_lease_expires() {
    let Some(server) = azure_server() else { return };
    a_killed_holder_is_taken_over(bucket_vars(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_mid_fill_with_redis_is_taken_over_after_its_lease_expires() {
    let Some(redis) = redis_url() else { return };
    let store = tempfile::tempdir().unwrap();
    a_killed_holder_is_taken_over(file_and_redis_vars(store.path(), &redis)).await;
}

/// A fill held upstream for four lease times: the holder renews, nobody takes over, one fetch.
async fn renewal_keeps_a_slow_fill_single(vars: Vec<(String, String)>) {
    let module = FixtureModule::package("example.com/slow", "v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    upstream.hold(".zip");
    let replicas = Arc::new(Replicas::start(3, &upstream, &vars));
    let requests: Vec<_> = (0..3)
        .map(|i| {
            let replicas = replicas.clone();
            tokio::spawn(async move { replicas.get(i, "example.com/slow/@v/v1.0.0.zip").await })
        })
        .collect();
    replicas.until_a_fetch_is_held(&upstream).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        upstream.held(),
        1,
        "no takeover while the holder renews: {:?}",
        upstream.requests()
    );
    upstream.release();
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(
        upstream.request_count(".zip"),
        1,
        "{:?}",
        upstream.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_longer_than_the_lease_is_renewed_and_fetched_once_with_redis() {
    let Some(redis) = redis_url() else { return };
    let store = tempfile::tempdir().unwrap();
    renewal_keeps_a_slow_fill_single(file_and_redis_vars(store.path(), &redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_longer_than_the_lease_is_renewed_and_fetched_once_on_gcs() {
    let Some(server) = gcs_server() else { return };
    renewal_keeps_a_slow_fill_single(bucket_vars(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_queued_in_the_background_on_three_replicas_is_fetched_once() {
    let Some(redis) = redis_url() else { return };
    let store = tempfile::tempdir().unwrap();
    let module = FixtureModule::package("example.com/queued", "v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    upstream.hold(".zip");
    let mut vars = file_and_redis_vars(store.path(), &redis);
    vars.extend(pairs(&[("FERRY_DOWNLOAD_MODE", "async")]));
    let replicas = Replicas::start(3, &upstream, &vars);
    let path = "example.com/queued/@v/v1.0.0.info";
    for replica in 0..3 {
        let reply = replicas.get(replica, path).await;
        assert_eq!(
            reply.status,
            404,
            "queued, not yet stored: {}",
            reply.text()
        );
    }
    replicas.until_a_fetch_is_held(&upstream).await;
    // Two lease times with every replica's background fetch queued: still one fetch.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(upstream.held(), 1, "{:?}", upstream.requests());
    upstream.release();
    for replica in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while replicas.get(replica, path).await.status != 200 {
            assert!(Instant::now() < deadline, "not stored: {}", replicas.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        upstream.request_count(".zip"),
        1,
        "{:?}",
        upstream.requests()
    );
}

/// A Redis server of the test's own on `port` (to stop and start again), from the binary
/// `scripts/test-servers.sh` installed.
fn own_redis(port: u16) -> Option<Process> {
    own_redis_with(&["--port", &port.to_string()])
}

/// A Redis server of the test's own with `args` (its port, a password, users, TLS).
fn own_redis_with(args: &[&str]) -> Option<Process> {
    let [binary] = server_vars("Redis", ["FERRY_TEST_REDIS_SERVER"])?;
    let mut command = clean_command(binary);
    command.args(args);
    command.args([
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        "/dev/stderr",
    ]);
    Some(Process::start(command, "Ready to accept connections").0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_answers_503_and_fills_recover_when_it_returns_while_stored_versions_need_no_lease()
 {
    let port = closed_port();
    let Some(redis) = own_redis(port) else { return };
    let store = tempfile::tempdir().unwrap();
    let module = FixtureModule::package("example.com/patient", "v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    let vars = file_and_redis_vars(store.path(), &format!("redis://127.0.0.1:{port}"));
    let replicas = Replicas::start(1, &upstream, &vars);
    drop(redis); // killed
    // A zip fill takes the version's lease (a `.info` or `.mod` alone is fetched without one).
    let path = "example.com/patient/@v/v1.0.0.zip";
    let started = Instant::now();
    let reply = replicas.get(0, path).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        reply
            .text()
            .starts_with("coordination unavailable: redis at 127.0.0.1:"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.header("retry-after"), "5", "a passing condition");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        upstream.request_count(".zip"),
        0,
        "nothing fetched without the lease"
    );

    let back = own_redis(port).unwrap();
    let reply = replicas.get(0, path).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, module.zip_bytes());

    // A stored version takes no lease: it is served with Redis gone again.
    drop(back);
    for file in ["info", "mod", "zip"] {
        let reply = replicas
            .get(0, &format!("example.com/patient/@v/v1.0.0.{file}"))
            .await;
        assert_eq!(reply.status, 200, "{file}: {}", reply.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_with_a_password_and_an_acl_user_is_reached_with_them_and_never_shows_them() {
    let port = closed_port();
    let Some(_redis) = own_redis_with(&[
        "--port",
        &port.to_string(),
        "--requirepass",
        "default-s3cret",
        // An ACL user allowed the lease keys, the commands the engine sends and those its scripts call,
        // nothing else.
        "--user",
        "ferry",
        "on",
        ">ferry-s3cret",
        "~ferry:lease:*",
        "+ping",
        "+set",
        "+pttl",
        "+eval",
        "+get",
        "+pexpire",
        "+del",
    ]) else {
        return;
    };
    let key = LeaseKey {
        module: ModulePath::new("example.com/guarded").unwrap(),
        version: Version::new("v1.0.0").unwrap(),
    };
    for url in [
        format!("redis://:default-s3cret@127.0.0.1:{port}"),
        format!("redis://ferry:ferry-s3cret@127.0.0.1:{port}"),
    ] {
        let redis = RedisCoordinator::new(RedisAddress::parse(&url).unwrap(), "acl".into());
        redis.ping().await.unwrap();
        let Acquired::Lease(lease) = redis.acquire(&key, Duration::from_secs(30)).await.unwrap()
        else {
            panic!("{url}: the lease is free");
        };
        assert!(redis.renew(&lease, Duration::from_secs(30)).await.unwrap());
        redis.release(&lease, true).await.unwrap();
    }
    for (url, secret) in [
        (format!("redis://127.0.0.1:{port}"), None),
        (
            format!("redis://:wrong-s3cret@127.0.0.1:{port}"),
            Some("wrong-s3cret"),
        ),
        (
            format!("redis://ferry:wrong-s3cret@127.0.0.1:{port}"),
            Some("wrong-s3cret"),
        ),
    ] {
        let redis = RedisCoordinator::new(RedisAddress::parse(&url).unwrap(), "acl".into());
        let error = redis
            .acquire(&key, Duration::from_secs(30))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!(
                "coordination unavailable: redis at 127.0.0.1:{port}: "
            )),
            "{url}: {error}"
        );
        if let Some(secret) = secret {
            assert!(!error.contains(secret), "{error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reaches_a_tls_redis_through_rediss_trusting_ssl_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test Redis CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let pair = ca.issue(dir.path(), "redis");
    let port = closed_port();
    let Some(_redis) = own_redis_with(&[
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        pair.cert.to_str().unwrap(),
        "--tls-key-file",
        pair.key.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca_file.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-s3cret",
    ]) else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let module = FixtureModule::package("example.com/encrypted", "v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    let mut vars = file_and_redis_vars(
        store.path(),
        &format!("rediss://:tls-s3cret@127.0.0.1:{port}"),
    );
    vars.push(("SSL_CERT_FILE".into(), ca_file.display().to_string()));
    let replicas = Replicas::start(1, &upstream, &vars);
    let reply = replicas.get(0, "example.com/encrypted/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200, "{} {}", reply.text(), replicas.logs());
    assert_eq!(reply.body, module.zip_bytes());
    assert!(
        !replicas.logs().contains("tls-s3cret"),
        "{}",
        replicas.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_bucket_is_unreachable_answers_503_and_recovers_by_itself() {
    let Some(server) = azure_server() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = server.endpoint.trim_start_matches("http://").to_string();
    let account = server.var("AZURE_STORAGE_ACCOUNT_NAME").to_string();
    // The replica reaches Azurite through a forwarder the test can take away and bring back.
    let through = server.with_var(
        "AZURE_STORAGE_ENDPOINT",
        &format!("http://127.0.0.1:{port}/{account}"),
    );
    let forwarding = tokio::spawn(forward(listener, target.clone()));
    let module = FixtureModule::package("example.com/cut-off", "v1.0.0");
    let upstream = Upstream::start(vec![module.clone()]).await;
    let replicas = Replicas::start(1, &upstream, &bucket_vars(&through));
    forwarding.abort();
    let _ = forwarding.await;

    let path = "example.com/cut-off/@v/v1.0.0.info";
    let started = Instant::now();
    let reply = replicas.get(0, path).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        reply.text().starts_with("coordination unavailable: ")
            || reply.text().starts_with("storage unavailable: "),
        "{}",
        reply.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        upstream.request_count(".info"),
        0,
        "nothing fetched without the lease"
    );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let _back = tokio::spawn(forward(listener, target));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = replicas.get(0, path).await;
        if reply.status == 200 {
            assert_eq!(reply.text().trim_end(), module.info_json().trim_end());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(upstream.request_count(".info"), 1);
}

#[test]
fn storage_coordination_on_a_file_or_memory_store_stops_start_up_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (storage, coordination, expected) in [
        ("file://./data", "storage", "needs a bucket store"),
        (
            "memory://",
            "redis://127.0.0.1:1",
            "never shared between replicas",
        ),
        ("file://./data", "redis://h:1/0?x=1", "not supported"),
        (
            "file://./data",
            "etcd://h",
            "must be \"local\", \"storage\" or a redis://",
        ),
    ] {
        let output = ferry()
            .current_dir(dir.path())
            .args(["--listen", "127.0.0.1:0", "--storage", storage])
            .env("FERRY_COORDINATION", coordination)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{storage} {coordination}: {stderr}"
        );
        assert!(
            stderr.contains("environment variable FERRY_COORDINATION") && stderr.contains(expected),
            "{storage} {coordination}: {stderr}"
        );
    }
    let output = ferry()
        .current_dir(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("FERRY_COORDINATION", "redis://:hunter2@127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("coordination redis://***@127.0.0.1:1/0 is not usable"),
        "an unreachable Redis stops start-up: {stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Sixteen replicas' worth of engines race for one lease, twice: for a fresh one, then to take over the
/// expired one. Exactly one wins each race when the server's conditional writes are atomic.
async fn exactly_one_of_sixteen_wins(engines: Vec<Arc<dyn Coordinator>>) {
    let key = LeaseKey {
        module: ModulePath::new("example.com/contended").unwrap(),
        version: Version::new(&format!("v1.0.{}", closed_port())).unwrap(),
    };
    let race = |time: Duration| {
        let handles: Vec<_> = engines
            .iter()
            .map(|engine| {
                let (engine, key) = (engine.clone(), key.clone());
                tokio::spawn(async move { engine.acquire(&key, time).await.unwrap() })
            })
            .collect();
        async move {
            let mut won = 0;
            for handle in handles {
                if let Acquired::Lease(_) = handle.await.unwrap() {
                    won += 1;
                }
            }
            won
        }
    };
    assert_eq!(
        race(Duration::from_millis(400)).await,
        1,
        "one creator of a fresh lease"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        race(Duration::from_secs(30)).await,
        1,
        "one taker of an expired lease"
    );
    assert_eq!(
        race(Duration::from_secs(30)).await,
        0,
        "a live lease is nobody else's"
    );
}

fn bucket_engines(server: &CloudServer) -> Vec<Arc<dyn Coordinator>> {
    let env = server.env.iter().cloned().collect();
    let config =
        StorageConfig::from_url_with(&server.fresh_url(), &Default::default(), &env).unwrap();
    (0..16)
        .map(|i| {
            let leases = config.open_leases().unwrap().unwrap();
            Arc::new(BucketCoordinator::new(leases, format!("replica-{i}"))) as Arc<dyn Coordinator>
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_takes_a_bucket_lease_on_gcs() {
    let Some(server) = gcs_server() else { return };
    exactly_one_of_sixteen_wins(bucket_engines(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_takes_a_bucket_lease_on_azurite() {
    let Some(server) = azure_server() else { return };
    exactly_one_of_sixteen_wins(bucket_engines(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_takes_a_redis_lease() {
    let Some(url) = redis_url() else { return };
    let engines = (0..16)
        .map(|i| {
            let address = RedisAddress::parse(&url).unwrap();
            Arc::new(RedisCoordinator::new(address, format!("replica-{i}"))) as Arc<dyn Coordinator>
        })
        .collect();
    exactly_one_of_sixteen_wins(engines).await;
}

impl Replicas {
    /// The admin API of replica `replica` (started with `FERRY_ADMIN_LISTEN=127.0.0.1:0`), from its log.
    fn admin_url(&self, replica: usize) -> String {
        let log = self.processes[replica].log();
        let addr = log
            .lines()
            .find(|line| line.contains("serving the admin API"))
            .and_then(|line| line.split("admin_listen=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no admin API in the log: {log}"));
        format!("http://{}", addr.trim_matches('"'))
    }

    /// `ferry admin ARGS` against replica `replica`'s admin API.
    async fn admin(&self, replica: usize, args: &[&str]) -> (bool, String) {
        crate::harness::ferry_admin(&self.admin_url(replica), args).await
    }
}

/// A block made on one replica is honoured by every replica within the ledger's sync interval (2 s by
/// default; 5 s is the promise), their memory caches included; the go command shows the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_on_one_of_three_replicas_on_gcs_is_honoured_by_all_within_five_seconds() {
    let Some(server) = gcs_server() else { return };
    let module = FixtureModule::package("example.com/blocked", "v1.0.0");
    let upstream = Upstream::start(vec![module]).await;
    let mut vars = bucket_vars(&server);
    vars.extend(pairs(&[("FERRY_ADMIN_LISTEN", "127.0.0.1:0")]));
    let replicas = Replicas::start(3, &upstream, &vars);
    for replica in 0..3 {
        let info = replicas
            .get(replica, "example.com/blocked/@v/v1.0.0.info")
            .await;
        assert_eq!(info.status, 200, "{}", replicas.logs());
    }
    let (ok, said) = replicas
        .admin(
            0,
            &[
                "block",
                "example.com/blocked@v1.0.0",
                "--reason",
                "withdrawn by its author",
            ],
        )
        .await;
    assert!(ok, "{said}");
    let blocked = Instant::now();
    for replica in 0..3 {
        loop {
            let info = replicas
                .get(replica, "example.com/blocked/@v/v1.0.0.info")
                .await;
            if info.status == 403 {
                assert!(
                    info.text().contains("withdrawn by its author"),
                    "{}",
                    info.text()
                );
                break;
            }
            assert_eq!(info.status, 200, "{}", info.text());
            assert!(
                blocked.elapsed() < Duration::from_secs(5),
                "replica {replica} still serves it after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let goproxy = format!("http://{}", replicas.addrs[2]);
    let output = crate::harness::go_with(
        dir.path(),
        &goproxy,
        &[],
        &["mod", "download", "example.com/blocked@v1.0.0"],
    )
    .await;
    let said = crate::harness::go_said(&output);
    assert!(!output.status.success());
    assert!(
        said.contains("403 Forbidden") && said.contains("withdrawn by its author"),
        "{said}"
    );
}

/// A collection on one replica while another fills a version's zip (its `.info` and `.mod` already stored,
/// so the version is in the plan): the version is spared, and the fill completes with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_on_gcs_spares_the_version_another_replica_is_filling() {
    let Some(server) = gcs_server() else { return };
    let old = FixtureModule::package("example.com/unused", "v1.0.0");
    let filling = FixtureModule::package("example.com/filling", "v1.0.0")
        .file("data.bin", vec![3u8; 256 * 1024]);
    let upstream = Upstream::start(vec![old, filling.clone()]).await;
    let mut vars = bucket_vars(&server);
    vars.extend(pairs(&[
        ("FERRY_ADMIN_LISTEN", "127.0.0.1:0"),
        ("FERRY_GC_MAX_BYTES", "1"),
        ("FERRY_GC_KEEP_LATEST", "0"),
    ]));
    let replicas = Arc::new(Replicas::start(2, &upstream, &vars));
    let unused = replicas.get(0, "example.com/unused/@v/v1.0.0.zip").await;
    assert_eq!(unused.status, 200, "{}", replicas.logs());
    let go_mod = replicas.get(1, "example.com/filling/@v/v1.0.0.mod").await;
    assert_eq!(go_mod.status, 200, "{}", replicas.logs());
    upstream.hold("filling/@v/v1.0.0.zip");
    let fill = {
        let replicas = replicas.clone();
        tokio::spawn(async move { replicas.get(1, "example.com/filling/@v/v1.0.0.zip").await })
    };
    replicas.until_a_fetch_is_held(&upstream).await;
    // Replica 0 must know the metadata is stored before it plans: one sync interval.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ok, said) = replicas.admin(0, &["gc"]).await;
    assert!(ok, "{said}");
    assert!(said.contains("removed example.com/unused@v1.0.0"), "{said}");
    assert!(!said.contains("removed example.com/filling"), "{said}");
    assert!(said.contains("1 spared"), "{said}");
    upstream.release();
    let zip = tokio::time::timeout(Duration::from_secs(60), fill)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zip.status, 200, "{}", replicas.logs());
    assert!(zip.body == filling.zip_bytes().as_slice());
    let store = watch_store(&vars);
    let m = ModulePath::new("example.com/filling").unwrap();
    let v = Version::new("v1.0.0").unwrap();
    assert!(store.exists(&m, &v).await.unwrap() && store.has_zip(&m, &v).await.unwrap());
    let m = ModulePath::new("example.com/unused").unwrap();
    assert!(!store.exists(&m, &v).await.unwrap());
}
