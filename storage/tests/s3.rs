//! The conformance suite on the S3 backend (`s3://`), against a real S3 server that checks SigV4
//! signatures (s3s-fs, started by `scripts/test-servers.sh`), plus what only a bucket can show.
mod conformance;
mod servers;

use std::sync::Arc;

use conformance::{module, save_fixture, version};
use ferry_storage::{Environment, ModuleStore, StorageConfig, StorageError, StorageOptions};
use ferry_testkit::FixtureModule;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// The S3 test server: endpoint, bucket, access key id, secret key.
fn server() -> Option<[String; 4]> {
    servers::server_vars(
        "S3",
        [
            "FERRY_TEST_S3_ENDPOINT",
            "FERRY_TEST_S3_BUCKET",
            "FERRY_TEST_S3_ACCESS_KEY_ID",
            "FERRY_TEST_S3_SECRET_ACCESS_KEY",
        ],
    )
}

/// The variables a deployment would set, as an environment snapshot.
fn environment(endpoint: &str, key_id: &str, secret: &str) -> Environment {
    [
        ("AWS_ENDPOINT", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ]
    .into_iter()
    .collect()
}

fn open(url: &str, env: &Environment) -> Arc<dyn ModuleStore> {
    StorageConfig::from_url_with(url, &StorageOptions::default(), env)
        .unwrap()
        .open()
        .unwrap()
}

/// A fresh store: a prefix of its own in the test bucket, configured from the environment.
async fn store() -> Option<Arc<dyn ModuleStore>> {
    let [endpoint, bucket, key_id, secret] = server()?;
    let url = format!("s3://{bucket}/{}", servers::unique_prefix());
    Some(open(&url, &environment(&endpoint, &key_id, &secret)))
}

conformance_suite!(store());

#[tokio::test]
async fn options_from_the_config_file_work_alone() {
    let Some([endpoint, bucket, key_id, secret]) = server() else {
        return;
    };
    let table = format!(
        "[s3]\nendpoint = {endpoint:?}\nallow_http = true\nregion = \"us-east-1\"\n\
         access_key_id = {key_id:?}\nsecret_access_key = {secret:?}\n"
    );
    let options: StorageOptions = toml::from_str(&table).unwrap();
    let url = format!("s3://{bucket}/{}", servers::unique_prefix());
    let store = StorageConfig::from_url_with(&url, &options, &Environment::default())
        .unwrap()
        .open()
        .unwrap();
    save_fixture(
        &*store,
        &FixtureModule::package("example.com/toml", "v1.0.0"),
    )
    .await;
    assert!(
        store
            .exists(&module("example.com/toml"), &version("v1.0.0"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_bucket_holds_the_goproxy_layout_under_the_prefix() {
    let Some([endpoint, bucket, key_id, secret]) = server() else {
        return;
    };
    let prefix = format!("{}/ferry", servers::unique_prefix());
    let store = open(
        &format!("s3://{bucket}/{prefix}"),
        &environment(&endpoint, &key_id, &secret),
    );
    save_fixture(
        &*store,
        &FixtureModule::package("example.com/Upper/Case", "v1.0.0-RC.1"),
    )
    .await;

    // Read the bucket as any other S3 client (a static GOPROXY server) would.
    let raw = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(&bucket)
        .with_access_key_id(&key_id)
        .with_secret_access_key(&secret)
        .build()
        .unwrap();
    let listed: Vec<_> = raw
        .list(Some(&prefix.as_str().into()))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let mut keys = listed;
    keys.sort();
    let dir = format!("{prefix}/example.com/!upper/!case/@v");
    assert_eq!(
        keys,
        [
            format!("{dir}/v1.0.0-!r!c.1.info"),
            format!("{dir}/v1.0.0-!r!c.1.mod"),
            format!("{dir}/v1.0.0-!r!c.1.zip"),
        ]
    );
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_and_not_repeated() {
    let Some([endpoint, bucket, key_id, _]) = server() else {
        return;
    };
    let wrong_secret = "ferry-distinctive-wrong-secret-0123456789";
    let url = format!("s3://{bucket}/{}", servers::unique_prefix());
    let env = environment(&endpoint, &key_id, wrong_secret);
    let config = StorageConfig::from_url_with(&url, &StorageOptions::default(), &env).unwrap();
    let store = config.open().unwrap();
    let (m, v) = (module("example.com/secret"), version("v1.0.0"));
    let errors = [
        store.check().await.expect_err("check with a wrong secret"),
        store
            .info(&m, &v)
            .await
            .expect_err("read with a wrong secret"),
        store.list(&m).await.expect_err("list with a wrong secret"),
        store
            .save(
                &m,
                &v,
                conformance::files_of(&FixtureModule::package("example.com/secret", "v1.0.0")),
            )
            .await
            .expect_err("write with a wrong secret"),
    ];
    for error in &errors {
        assert!(
            matches!(error, StorageError::Unavailable(_)),
            "a refused request is Unavailable, never NotFound: {error:?}"
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(wrong_secret), "the secret leaks: {shown}");
        }
    }
    for shown in [config.to_string(), format!("{config:?}")] {
        assert!(!shown.contains(wrong_secret), "the secret leaks: {shown}");
    }
}

#[tokio::test]
async fn a_missing_bucket_is_not_ready() {
    let Some([endpoint, _, key_id, secret]) = server() else {
        return;
    };
    let store = open(
        "s3://ferry-no-such-bucket",
        &environment(&endpoint, &key_id, &secret),
    );
    let error = store.check().await.expect_err("check of a missing bucket");
    assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
}

/// Needs no server: a port nothing listens on stands for a backend that is down.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_bounded_time() {
    let endpoint = format!("http://127.0.0.1:{}", servers::closed_port());
    let store = open(
        "s3://ferry-test/down",
        &environment(&endpoint, "key", "secret"),
    );
    conformance::down_backend_is_unavailable(&*store).await;
}

/// Needs no server: a listener that accepts connections and never answers stands for a hung backend; the
/// read timeout (1 s here) ends each attempt.
#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_bounded_time() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming() {
            held.push(connection);
        }
    });
    let options: StorageOptions =
        toml::from_str("[s3]\nread_timeout_secs = 1\nmax_retries = 1\n").unwrap();
    let store = StorageConfig::from_url_with(
        "s3://ferry-test/hung",
        &options,
        &environment(&endpoint, "key", "secret"),
    )
    .unwrap()
    .open()
    .unwrap();
    conformance::down_backend_is_unavailable(&*store).await;
}
