//! The GCS backend (`gs://`) against a real GCS emulator (fake-gcs-server). The emulator checks no
//! credentials: the refused-credentials test runs on S3 and Azure.
use ferry_storage::StorageOptions;
use ferry_testkit::{closed_port, gcs_server};

use crate::cloud::open;

cloud_backend_tests!(gcs_server);

/// Needs no server: a port nothing listens on stands for a backend that is down (named by a
/// service-account file, as the emulator is).
#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let service_account = dir.path().join("service-account.json");
    let account = format!(
        r#"{{"gcs_base_url": "http://127.0.0.1:{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
        closed_port()
    );
    std::fs::write(&service_account, account).unwrap();
    let env = [(
        "GOOGLE_SERVICE_ACCOUNT".to_string(),
        service_account.to_str().unwrap().to_string(),
    )];
    let store = open("gs://ferry-test/down", &StorageOptions::default(), &env);
    crate::conformance::down_backend_is_unavailable(&*store).await;
}
