//! The real S3, GCS and Azure servers the storage tests run against, started by `scripts/test-servers.sh start`,
//! which exports where they are in `FERRY_TEST_*` variables; and the tools the deploy tests call
//! (`scripts/deploy-tools.sh env`).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The values of `names`, or `None` when one is missing: then the test fails under
/// `FERRY_TEST_REQUIRE_SERVERS=1` (the project's test command), and is skipped loudly otherwise.
pub fn server_vars<const N: usize>(server: &str, names: [&str; N]) -> Option<[String; N]> {
    let values = names.map(|name| std::env::var(name).ok());
    if values.iter().all(Option::is_some) {
        return Some(values.map(Option::unwrap));
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    missing_requirement(
        &format!("the {server} test server"),
        &format!("{server} backend test"),
        &missing,
        "scripts/test-servers.sh start and eval \"$(scripts/test-servers.sh env)\"",
    );
    None
}

/// The path of a test tool (helm, systemd-analyze, ...) from `var`, which `scripts/deploy-tools.sh env` sets;
/// `None` when it is unset or names no file: then the test fails under `FERRY_TEST_REQUIRE_SERVERS=1`, and
/// is skipped loudly otherwise, as for a missing server.
pub fn tool_path(tool: &str, var: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os(var).map(std::path::PathBuf::from);
    if let Some(path) = path.filter(|p| p.is_file()) {
        return Some(path);
    }
    missing_requirement(
        &format!("the tool {tool}"),
        &format!("test needing {tool}"),
        &[var],
        "scripts/deploy-tools.sh install and eval \"$(scripts/deploy-tools.sh env)\"",
    );
    None
}

/// A requirement that is not there: a panic under `FERRY_TEST_REQUIRE_SERVERS=1` (the project's test
/// command), else a loud `SKIPPED:` line.
pub(crate) fn missing_requirement(what: &str, skipped: &str, missing: &[&str], fix: &str) {
    if std::env::var("FERRY_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!(
            "{what} is required (FERRY_TEST_REQUIRE_SERVERS=1) but {} is not set; run {fix}",
            missing.join(", ")
        );
    }
    // Straight to the process's stderr: libtest would hide an `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {skipped}: {} not set; run scripts/test.sh (or {fix}) to run it",
        missing.join(", ")
    );
}

/// A key prefix no other test (in this or another run) uses, so every test starts on an empty store.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "test-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `127.0.0.1` port nothing listens on: bound by the OS, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A cloud backend's test server, as a deployment would reach it: the storage URL's scheme and bucket
/// (or container), and the backend's standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
#[derive(Debug, Clone)]
pub struct CloudServer {
    /// `s3`, `gs` or `az`.
    pub scheme: &'static str,
    pub bucket: String,
    /// Where the server listens (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    pub env: Vec<(String, String)>,
}

impl CloudServer {
    /// A storage URL under a prefix no other test uses, so the store starts empty.
    pub fn fresh_url(&self) -> String {
        format!("{}://{}/{}", self.scheme, self.bucket, unique_prefix())
    }

    /// The value of one of the environment variables.
    pub fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not among the {} variables", self.scheme))
    }

    /// The same variables with `name` set to `value`.
    pub fn with_var(mut self, name: &str, value: &str) -> CloudServer {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The S3 server (s3s-fs, which checks SigV4 signatures), reached with a static key.
pub fn s3_server() -> Option<CloudServer> {
    let [endpoint, bucket, key_id, secret] = server_vars(
        "S3",
        [
            "FERRY_TEST_S3_ENDPOINT",
            "FERRY_TEST_S3_BUCKET",
            "FERRY_TEST_S3_ACCESS_KEY_ID",
            "FERRY_TEST_S3_SECRET_ACCESS_KEY",
        ],
    )?;
    Some(s3_server_at(&endpoint, &bucket, &key_id, &secret))
}

/// An S3 server at `endpoint` (which may be a port where nothing listens), as [`s3_server`] reaches it.
pub fn s3_server_at(endpoint: &str, bucket: &str, key_id: &str, secret: &str) -> CloudServer {
    CloudServer {
        scheme: "s3",
        bucket: bucket.to_string(),
        endpoint: endpoint.to_string(),
        env: pairs(&[
            ("AWS_ENDPOINT", endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]),
    }
}

/// The GCS emulator (fake-gcs-server), reached through a service-account file that names it and turns
/// OAuth off.
pub fn gcs_server() -> Option<CloudServer> {
    let [endpoint, bucket, service_account] = server_vars(
        "GCS",
        [
            "FERRY_TEST_GCS_ENDPOINT",
            "FERRY_TEST_GCS_BUCKET",
            "FERRY_TEST_GCS_SERVICE_ACCOUNT",
        ],
    )?;
    Some(CloudServer {
        scheme: "gs",
        bucket,
        endpoint,
        env: pairs(&[("GOOGLE_SERVICE_ACCOUNT", &service_account)]),
    })
}

/// Azurite's blob service, reached with its account name and key (checked: SharedKey signatures) at
/// the account's path-style URL.
pub fn azure_server() -> Option<CloudServer> {
    let [endpoint, container, account, key] = server_vars(
        "Azure (Azurite)",
        [
            "FERRY_TEST_AZURE_ENDPOINT",
            "FERRY_TEST_AZURE_CONTAINER",
            "FERRY_TEST_AZURE_ACCOUNT",
            "FERRY_TEST_AZURE_KEY",
        ],
    )?;
    let account_url = format!("{}/{account}", endpoint.trim_end_matches('/'));
    Some(CloudServer {
        scheme: "az",
        bucket: container,
        endpoint,
        env: pairs(&[
            ("AZURE_STORAGE_ACCOUNT_NAME", &account),
            ("AZURE_STORAGE_ACCOUNT_KEY", &key),
            ("AZURE_STORAGE_ENDPOINT", &account_url),
            ("AZURE_ALLOW_HTTP", "true"),
        ]),
    })
}
