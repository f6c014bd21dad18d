//! The Azure Blob Storage backend (`az://`) against Azurite, which checks SharedKey signatures.
use ferry_storage::StorageOptions;
use ferry_testkit::{azure_server, closed_port};

use crate::cloud::open;

cloud_backend_tests!(azure_server);

#[tokio::test]
async fn a_wrong_account_key_is_refused_and_not_repeated() {
    let Some(server) = azure_server() else { return };
    // A well-formed key (base64), but not the account's.
    let wrong = "ZmVycnktZGlzdGluY3RpdmUtd3Jvbmcta2V5LTAxMjM0NTY3ODk=";
    crate::cloud::a_wrong_key_is_refused_and_not_repeated(
        server,
        "AZURE_STORAGE_ACCOUNT_KEY",
        wrong,
    )
    .await;
}

/// Needs no server: a port nothing listens on stands for a backend that is down.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_bounded_time() {
    let env = [
        ("AZURE_STORAGE_ACCOUNT_NAME", "ferrytest"),
        ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
        ("AZURE_ALLOW_HTTP", "true"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let endpoint = format!("http://127.0.0.1:{}/ferrytest", closed_port());
    let mut env = env.to_vec();
    env.push(("AZURE_STORAGE_ENDPOINT".to_string(), endpoint));
    let store = open("az://ferry-test/down", &StorageOptions::default(), &env);
    crate::conformance::down_backend_is_unavailable(&*store).await;
}
