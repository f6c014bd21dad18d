//! No configuration value can make `object_store` panic: every key of every cloud backend, with values a
//! user could mistype, is either refused by `StorageConfig::from_url_with` with a message, or gives a
//! store whose first request (to a port where nothing listens) fails cleanly.
use std::time::Duration;

use ferry_storage::{Environment, StorageConfig, StorageOptions};
use ferry_testkit::closed_port;

/// object_store 0.14's keys for each backend (its `AmazonS3ConfigKey`, `GoogleConfigKey` and
/// `AzureConfigKey`), and the HTTP client's keys every backend takes (with Ferry's own). Most tries build
/// an HTTP client: the 810 configurations took 17 to 25 s in a debug build on a shared 2-core machine
/// (`cargo test -p ferry-storage --test it -- values::`), so the keys are all of object_store's and the
/// values few.
const S3_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_default_region",
    "aws_region",
    "aws_endpoint",
    "aws_endpoint_url_s3",
    "aws_session_token",
    "aws_virtual_hosted_style_request",
    "aws_s3_express",
    "aws_imdsv1_fallback",
    "aws_metadata_endpoint",
    "aws_unsigned_payload",
    "aws_checksum_algorithm",
    "aws_container_credentials_relative_uri",
    "aws_container_credentials_full_uri",
    "aws_container_authorization_token_file",
    "aws_web_identity_token_file",
    "aws_role_arn",
    "aws_role_session_name",
    "aws_endpoint_url_sts",
    "aws_skip_signature",
    "aws_copy_if_not_exists",
    "aws_conditional_put",
    "aws_disable_tagging",
    "aws_disable_bulk_delete",
    "aws_request_payer",
    "aws_server_side_encryption",
    "aws_sse_kms_key_id",
    "aws_sse_bucket_key_enabled",
    "aws_sse_customer_key_base64",
];
const GCS_KEYS: &[&str] = &[
    "google_service_account",
    "google_service_account_key",
    "google_base_url",
    "google_application_credentials",
    "google_bearer_token",
    "google_skip_signature",
];
const AZURE_KEYS: &[&str] = &[
    "azure_storage_account_key",
    "azure_storage_account_name",
    "azure_storage_client_id",
    "azure_storage_client_secret",
    "azure_storage_tenant_id",
    "azure_storage_authority_host",
    "azure_storage_sas_key",
    "azure_storage_token",
    "azure_storage_use_emulator",
    "azure_storage_endpoint",
    "azure_msi_endpoint",
    "azure_object_id",
    "azure_msi_resource_id",
    "azure_federated_token_file",
    "azure_use_fabric_endpoint",
    "azure_use_azure_cli",
    "azure_skip_signature",
    "azure_disable_tagging",
    "azure_fabric_token_service_url",
    "azure_fabric_workload_host",
    "azure_fabric_session_token",
    "azure_fabric_cluster_identifier",
    "azure_credential_type",
    "azure_storage_encryption_key",
];
const CLIENT_KEYS: &[&str] = &[
    "allow_http",
    "allow_invalid_certificates",
    "connect_timeout",
    "default_content_type",
    "http1_only",
    "http2_only",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle",
    "http2_max_frame_size",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "randomize_addresses",
    "read_timeout",
    "timeout",
    "user_agent",
    "max_retries",
    "retry_timeout",
];

/// A storage URL, the variables that reach a closed port, and the backend's keys.
type Backend<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);

/// Values a user could write by mistake.
const VALUES: &[&str] = &[
    "",
    "x",
    "127.0.0.1:9000",
    "http://",
    "http://[::1",
    "a\nb",
    "caf\u{e9}",
    "-1",
    "true",
    "1s",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_of_any_key_makes_object_store_panic() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let service_account = dir.path().join("service-account.json");
    std::fs::write(
        &service_account,
        format!(
            r#"{{"gcs_base_url": "http://127.0.0.1:{port}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#
        ),
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let account_url = format!("{endpoint}/ferrytest");
    // Each backend reaches only the closed port, with static credentials: nothing leaves the machine.
    let backends: [Backend; 3] = [
        (
            "s3://b/p",
            vec![
                ("AWS_ENDPOINT", &endpoint),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "id"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
            ],
            S3_KEYS,
        ),
        (
            "gs://b/p",
            vec![("GOOGLE_SERVICE_ACCOUNT", service_account.to_str().unwrap())],
            GCS_KEYS,
        ),
        (
            "az://bucket/p",
            vec![
                ("AZURE_STORAGE_ENDPOINT", &account_url),
                ("AZURE_ALLOW_HTTP", "true"),
                ("AZURE_STORAGE_ACCOUNT_NAME", "ferrytest"),
                ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
            ],
            AZURE_KEYS,
        ),
    ];
    let (mut refused, mut built) = (0, 0);
    for (url, env, keys) in backends {
        let env: Environment = env.into_iter().collect();
        // The HTTP client's keys are the same code for every backend: tried once, with S3.
        let client_keys = if url.starts_with("s3") {
            CLIENT_KEYS
        } else {
            &[]
        };
        for key in keys.iter().chain(client_keys) {
            for value in VALUES {
                let mut options = StorageOptions::default();
                options.push("max_retries", "0");
                if *key != "max_retries" {
                    options.push(*key, *value);
                }
                let config = match StorageConfig::from_url_with(url, &options, &env) {
                    Ok(config) => config,
                    Err(error) => {
                        assert!(!error.to_string().is_empty());
                        refused += 1;
                        continue;
                    }
                };
                built += 1;
                let Ok(store) = config.open() else { continue };
                // A panic inside object_store ends the task: the JoinError says so.
                let checked = tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_secs(10), store.check()).await
                })
                .await;
                match checked {
                    Ok(Ok(Ok(()))) => panic!("{url} {key}={value:?}: a closed port answered"),
                    Ok(Ok(Err(_))) | Ok(Err(_)) => {}
                    Err(e) => panic!("{url} {key}={value:?} made object_store panic: {e}"),
                }
            }
        }
    }
    eprintln!("{refused} configurations refused with a message, {built} built and failed cleanly");
    assert!(refused > 0 && built > 0);
}
