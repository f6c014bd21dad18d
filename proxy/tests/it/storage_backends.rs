//! Ferry on S3, GCS and Azure Blob Storage, end to end: the real `go` builds through Ferry while it fills a bucket from a
//! fixture upstream; then a fresh `ferry` process, with the upstream gone, serves the same build from the
//! bucket alone. And what a user sees when the bucket's server is down: 503s and not-ready, until it returns.
//! The servers are the ones `scripts/test.sh` starts (`scripts/test-servers.sh`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Ferry, ferry, forward, get, save, serving};
use ferry::config::{self, Flags};
use ferry_testkit::{
    CloudServer, FixtureModule, GoHome, Upstream, azure_server, closed_port, gcs_server, s3_server,
    s3_server_at,
};

/// A bucket to test against: its storage URL (with a fresh prefix) and the environment that reaches it.
struct Bucket {
    url: String,
    env: BTreeMap<String, String>,
}

impl From<CloudServer> for Bucket {
    fn from(server: CloudServer) -> Bucket {
        Bucket {
            url: server.fresh_url(),
            env: server.env.into_iter().collect(),
        }
    }
}

fn fixtures() -> Vec<FixtureModule> {
    vec![
        FixtureModule::package("example.com/Cloud/hello", "v1.0.0"),
        FixtureModule::package("example.com/Cloud/hello", "v1.1.0"),
        FixtureModule::package("example.com/world", "v0.2.0")
            .file("big.bin", vec![42u8; 3 * 1024 * 1024]),
    ]
}

/// A program importing the fixtures, in `dir/app`.
fn write_app(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let go_mod = "module example.com/app\n\ngo 1.21\n\nrequire (\n\texample.com/Cloud/hello v1.1.0\n\texample.com/world v0.2.0\n)\n";
    let main = "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/Cloud/hello\"\n\t\"example.com/world\"\n)\n\nfunc main() { fmt.Println(hello.Version(), world.Version()) }\n";
    std::fs::write(app.join("go.mod"), go_mod).unwrap();
    std::fs::write(app.join("main.go"), main).unwrap();
    app
}

/// `go build` of the app through `goproxy` in a fresh module cache; returns what the program prints.
async fn build_and_run(dir: &Path, app: &Path, goproxy: &str) -> String {
    let home = GoHome::new(dir, goproxy);
    home.run_async(app, &["build", "-o", "app", "."]).await;
    let output = tokio::process::Command::new(app.join("app"))
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The environment a deployment gives Ferry: the bucket's, plus the `go` command's upstream.
fn deployment_env(bucket: &Bucket, dir: &Path, goproxy: &str) -> BTreeMap<String, String> {
    let mut env = bucket.env.clone();
    for (name, value) in [
        ("FERRY_STORAGE", bucket.url.as_str()),
        ("FERRY_WORK_DIR", dir.join("work").to_str().unwrap()),
        ("HOME", dir.to_str().unwrap()),
        ("GOPROXY", goproxy),
        ("GOSUMDB", "off"),
        ("GOFLAGS", "-mod=mod"),
    ] {
        env.insert(name.to_string(), value.to_string());
    }
    env.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    );
    env
}

async fn build_through_ferry_then_serve_from_the_bucket_alone(bucket: Bucket) {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path());
    let upstream = Upstream::start(fixtures()).await;

    // Ferry in sync mode (the default) fills the bucket while `go build` waits.
    let env = deployment_env(&bucket, dir.path(), &upstream.url());
    let config = config::load(&Flags::default(), &env).unwrap();
    let proxy = ferry::build_proxy(&config).await.unwrap();
    let filling = Ferry::start_proxy(proxy).await;
    assert_eq!(
        build_and_run(dir.path(), &app, &filling.url()).await,
        "v1.1.0 v0.2.0\n"
    );
    assert_eq!(
        upstream.request_count(".zip"),
        2,
        "each zip fetched once: {:?}",
        upstream.requests()
    );
    filling.stop().await;
    drop(upstream);

    // A fresh process, whose upstream is gone, serves the same build from the bucket alone.
    let gone = format!("http://127.0.0.1:{}", closed_port());
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .envs(deployment_env(&bucket, dir.path(), &gone))
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (_fresh, addr) = serving(command);
    let fresh_dir = dir.path().join("second-client");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    assert_eq!(
        build_and_run(&fresh_dir, &app, &format!("http://{addr}")).await,
        "v1.1.0 v0.2.0\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_through_ferry_on_s3_and_a_fresh_ferry_serves_from_the_bucket_alone() {
    let Some(server) = s3_server() else { return };
    build_through_ferry_then_serve_from_the_bucket_alone(server.into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_through_ferry_on_gcs_and_a_fresh_ferry_serves_from_the_bucket_alone() {
    let Some(server) = gcs_server() else { return };
    build_through_ferry_then_serve_from_the_bucket_alone(server.into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_through_ferry_on_azure_and_a_fresh_ferry_serves_from_the_container_alone() {
    let Some(server) = azure_server() else { return };
    build_through_ferry_then_serve_from_the_bucket_alone(server.into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_backend_answers_503_and_not_ready_until_it_returns() {
    let Some(server) = s3_server() else { return };
    let endpoint = server.endpoint.clone();
    // Ferry is configured with an address where, for now, nothing listens.
    let port = closed_port();
    let down: Bucket = server
        .with_var("AWS_ENDPOINT", &format!("http://127.0.0.1:{port}"))
        .into();
    let store = ferry_storage::StorageConfig::from_url_with(
        &down.url,
        &Default::default(),
        &down.env.clone().into_iter().collect(),
    )
    .unwrap()
    .open()
    .unwrap();
    let ferry = Ferry::start(store).await;
    let fixture = FixtureModule::package("example.com/resilient", "v1.0.0");

    for path in [
        "example.com/resilient/@v/v1.0.0.zip",
        "example.com/resilient/@v/list",
        "readyz",
    ] {
        let started = Instant::now();
        let reply = get(&format!("{}/{path}", ferry.url())).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.text());
        assert_eq!(reply.header("content-type"), "text/plain; charset=utf-8");
        assert!(
            reply.text().contains("unavailable") || reply.text().starts_with("not ready"),
            "{path}: {}",
            reply.text()
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path} took {:?}",
            started.elapsed()
        );
    }

    // The backend returns on the same address: Ferry recovers by itself.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(forward(
        listener,
        endpoint.trim_start_matches("http://").to_string(),
    ));
    save(ferry.store().as_ref(), &fixture).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("{}/readyz", ferry.url())).await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "still not ready after the backend returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let zip = get(&format!(
        "{}/example.com/resilient/@v/v1.0.0.zip",
        ferry.url()
    ))
    .await;
    assert_eq!(
        (zip.status, zip.body.as_ref()),
        (200, fixture.zip_bytes().as_slice())
    );
}

#[test]
fn start_up_with_an_unreachable_backend_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let down: Bucket = s3_server_at(
        &format!("http://127.0.0.1:{}", closed_port()),
        "ferry-test",
        "id",
        "secret-7a1b",
    )
    .into();
    let output = ferry()
        .current_dir(dir.path())
        .envs(&down.env)
        .args(["--listen", "127.0.0.1:0", "--storage", &down.url])
        .env("FERRY_DOWNLOAD_MODE", "none")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("storage {} is not usable", down.url))
            || stderr.contains("is not usable"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret-7a1b"),
        "credentials never appear in messages: {stderr}"
    );
}

#[test]
fn start_up_with_an_endpoint_without_a_scheme_stops_with_the_fix_instead_of_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        "storage = \"s3://ferry-test/p\"\n\n[storage_options]\nendpoint = \"127.0.0.1:9000\"\n\
         access_key_id = \"id\"\nsecret_access_key = \"secret-5c9d\"\n",
    )
    .unwrap();
    let output = ferry()
        .current_dir(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ])
        .env("FERRY_DOWNLOAD_MODE", "none")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:4:12: ", config.display()))
            && stderr.contains("needs http:// or https://"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("secret-5c9d"), "{stderr}");
}
