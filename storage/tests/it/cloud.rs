//! What every cloud backend must show beyond the conformance suite, run on each by `cloud_backend_tests!`
//! against its real test server (`ferry_testkit::{s3_server, gcs_server, azure_server}`).
use std::sync::Arc;

use ferry_storage::{
    Environment, ModuleStore, ModuleStoreExt, StorageConfig, StorageError, StorageOptions,
};
use ferry_testkit::{CloudServer, FixtureModule};
use futures::TryStreamExt;

use crate::conformance::{module, save_fixture, version};

/// The store at `url`, configured by `env` and `options`.
pub fn open(url: &str, options: &StorageOptions, env: &[(String, String)]) -> Arc<dyn ModuleStore> {
    let env: Environment = env.iter().cloned().collect();
    StorageConfig::from_url_with(url, options, &env)
        .unwrap()
        .open()
        .unwrap()
}

/// A fresh, empty store on the server, configured from the environment a deployment would set.
pub fn fresh_store(server: &CloudServer) -> Arc<dyn ModuleStore> {
    open(&server.fresh_url(), &StorageOptions::default(), &server.env)
}

/// The same settings written as the configuration file's options table, with an empty environment: each
/// variable's name in lower case is an object_store key.
pub async fn options_alone_reach_the_bucket(server: CloudServer) {
    let mut table = String::from("max_retries = 1\n");
    for (name, value) in &server.env {
        table.push_str(&format!("{} = {value:?}\n", name.to_ascii_lowercase()));
    }
    let options: StorageOptions = toml::from_str(&table).unwrap();
    let store = open(&server.fresh_url(), &options, &[]);
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

/// The keys in the bucket, read by object_store's own URL parsing (`parse_url_opts`) with the same
/// variables, as any other client (a static GOPROXY server) would read them.
pub async fn the_bucket_holds_the_goproxy_layout_under_the_prefix(server: CloudServer) {
    let url = format!("{}/ferry", server.fresh_url());
    let store = open(&url, &StorageOptions::default(), &server.env);
    save_fixture(
        &*store,
        &FixtureModule::package("example.com/Upper/Case", "v1.0.0-RC.1"),
    )
    .await;

    let options = server
        .env
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()));
    let (raw, prefix) = object_store::parse_url_opts(&url.parse().unwrap(), options).unwrap();
    let mut keys: Vec<String> = raw
        .list(Some(&prefix))
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

pub async fn a_missing_bucket_is_not_ready(server: CloudServer) {
    let url = format!("{}://ferry-no-such-bucket", server.scheme);
    let store = open(&url, &StorageOptions::default(), &server.env);
    let checked = store.check().await.expect_err("check of a missing bucket");
    let error = store
        .check_writable()
        .await
        .expect_err("write check of a missing bucket");
    for error in [checked, error] {
        assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
        // fake-gcs-server answers the listing of a missing bucket with a 500, where GCS says 404: the
        // emulator's answer cannot be told from a server fault, so it is shown as it is.
        if server.scheme != "gs" {
            let message = error.to_string();
            let word = if server.scheme == "az" {
                "container"
            } else {
                "bucket"
            };
            let bucket = format!("{word} \"ferry-no-such-bucket\" does not exist");
            assert_eq!(message.matches(&bucket).count(), 1, "{message}");
            assert!(
                message.contains("create it, or fix its name in the storage URL"),
                "{message}"
            );
        }
    }
}

/// A wrong key is refused on every call (Unavailable, never NotFound), and no message repeats it.
pub async fn a_wrong_key_is_refused_and_not_repeated(
    server: CloudServer,
    variable: &str,
    wrong: &str,
) {
    let server = server.with_var(variable, wrong);
    let env: Environment = server.env.iter().cloned().collect();
    let config =
        StorageConfig::from_url_with(&server.fresh_url(), &StorageOptions::default(), &env)
            .unwrap();
    let store = config.open().unwrap();
    let (m, v) = (module("example.com/secret"), version("v1.0.0"));
    let fixture = FixtureModule::package("example.com/secret", "v1.0.0");
    let errors = [
        store.check().await.expect_err("check with a wrong key"),
        store
            .check_writable()
            .await
            .expect_err("write check with a wrong key"),
        store.info(&m, &v).await.expect_err("read with a wrong key"),
        store.list(&m).await.expect_err("list with a wrong key"),
        store
            .save(&m, &v, crate::conformance::files_of(&fixture))
            .await
            .expect_err("write with a wrong key"),
    ];
    for error in &errors {
        assert!(
            matches!(error, StorageError::Unavailable(_)),
            "a refused request is Unavailable, never NotFound: {error:?}"
        );
        assert!(
            std::error::Error::source(error).is_some(),
            "the backend's error stays in the source chain: {error:?}"
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(wrong), "the key leaks: {shown}");
        }
        // What to do, said once: which keys to check, by the variable's name.
        let message = error.to_string();
        assert_eq!(
            message.matches("denied access to the").count(),
            1,
            "{message}"
        );
        assert_eq!(message.matches(variable).count(), 1, "{message}");
    }
    for shown in [config.to_string(), format!("{config:?}")] {
        assert!(!shown.contains(wrong), "the key leaks: {shown}");
    }
}

/// The conformance suite and the tests above, on the backend whose server `$server()` finds.
macro_rules! cloud_backend_tests {
    ($server:path) => {
        conformance_suite!(async { $server().map(|s| $crate::cloud::fresh_store(&s)) });

        #[tokio::test]
        async fn options_in_the_config_file_alone_reach_the_bucket() {
            let Some(server) = $server() else { return };
            $crate::cloud::options_alone_reach_the_bucket(server).await
        }

        #[tokio::test]
        async fn the_bucket_holds_the_goproxy_layout_under_the_prefix() {
            let Some(server) = $server() else { return };
            $crate::cloud::the_bucket_holds_the_goproxy_layout_under_the_prefix(server).await
        }

        #[tokio::test]
        async fn a_missing_bucket_is_not_ready() {
            let Some(server) = $server() else { return };
            $crate::cloud::a_missing_bucket_is_not_ready(server).await
        }
    };
}
