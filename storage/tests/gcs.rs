//! The conformance suite on the GCS backend (`gs://`), against a real GCS emulator (fake-gcs-server,
//! started by `scripts/test-servers.sh`), plus what only a bucket can show. The emulator checks no
//! credentials: the refused-credentials test runs against the S3 server (tests/s3.rs).
mod conformance;
mod servers;

use std::sync::Arc;

use conformance::{module, save_fixture, version};
use ferry_storage::{Environment, ModuleStore, StorageConfig, StorageError, StorageOptions};
use ferry_testkit::FixtureModule;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::gcp::GoogleCloudStorageBuilder;

/// The GCS emulator: endpoint, bucket, service-account file (pointing at the endpoint, OAuth off).
fn server() -> Option<[String; 3]> {
    servers::server_vars(
        "GCS",
        [
            "FERRY_TEST_GCS_ENDPOINT",
            "FERRY_TEST_GCS_BUCKET",
            "FERRY_TEST_GCS_SERVICE_ACCOUNT",
        ],
    )
}

fn open(url: &str, options: &StorageOptions, env: &Environment) -> Arc<dyn ModuleStore> {
    StorageConfig::from_url_with(url, options, env)
        .unwrap()
        .open()
        .unwrap()
}

/// A fresh store: a prefix of its own in the test bucket, configured from the environment.
async fn store() -> Option<Arc<dyn ModuleStore>> {
    let [_, bucket, service_account] = server()?;
    let url = format!("gs://{bucket}/{}", servers::unique_prefix());
    let env = [("GOOGLE_SERVICE_ACCOUNT", service_account)]
        .into_iter()
        .collect();
    Some(open(&url, &StorageOptions::default(), &env))
}

conformance_suite!(store());

#[tokio::test]
async fn the_service_account_key_from_the_config_file_works_alone() {
    let Some([_, bucket, service_account]) = server() else {
        return;
    };
    let key = std::fs::read_to_string(service_account).unwrap();
    let table = format!("[gcs]\nservice_account_key = {key:?}\n");
    let options: StorageOptions = toml::from_str(&table).unwrap();
    let url = format!("gs://{bucket}/{}", servers::unique_prefix());
    let store = open(&url, &options, &Environment::default());
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
    let Some([_, bucket, service_account]) = server() else {
        return;
    };
    let prefix = format!("{}/ferry", servers::unique_prefix());
    let env = [("GOOGLE_SERVICE_ACCOUNT", service_account.as_str())]
        .into_iter()
        .collect();
    let store = open(
        &format!("gs://{bucket}/{prefix}"),
        &StorageOptions::default(),
        &env,
    );
    save_fixture(
        &*store,
        &FixtureModule::package("example.com/Upper/Case", "v1.0.0-RC.1"),
    )
    .await;

    // Read the bucket as any other GCS client (a static GOPROXY server) would.
    let raw = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&bucket)
        .with_service_account_path(&service_account)
        .build()
        .unwrap();
    let mut keys: Vec<_> = raw
        .list(Some(&prefix.as_str().into()))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
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
async fn a_missing_bucket_is_not_ready() {
    let Some([_, _, service_account]) = server() else {
        return;
    };
    let env = [("GOOGLE_SERVICE_ACCOUNT", service_account)]
        .into_iter()
        .collect();
    let store = open(
        "gs://ferry-no-such-bucket",
        &StorageOptions::default(),
        &env,
    );
    let error = store.check().await.expect_err("check of a missing bucket");
    assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
}

/// Needs no server: a port nothing listens on stands for a backend that is down.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let service_account = dir.path().join("service-account.json");
    let account = format!(
        r#"{{"gcs_base_url": "http://127.0.0.1:{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
        servers::closed_port()
    );
    std::fs::write(&service_account, account).unwrap();
    let env = [("GOOGLE_SERVICE_ACCOUNT", service_account.to_str().unwrap())]
        .into_iter()
        .collect();
    let store = open("gs://ferry-test/down", &StorageOptions::default(), &env);
    conformance::down_backend_is_unavailable(&*store).await;
}
