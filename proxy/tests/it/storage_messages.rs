//! What an operator reads when a bucket store cannot be used: the real `ferry` binary started against
//! the real S3 server (s3s-fs) misconfigured the ways a new user does, each start-up failure one line
//! naming the cause and the fix, said once, without a secret; and `/readyz` saying the same when the
//! server goes away.

use std::time::{Duration, Instant};

use crate::harness::{Ferry, ferry, forward};
use ferry::config::{self, Flags};
use ferry_testkit::{CloudServer, closed_port, s3_server, s3_server_at};

/// The secret every case's keys use (or the test server's own): never in a message.
const SECRET: &str = "secret-never-shown-4f2a";

/// Starts `ferry` (not fetching) on `server`'s fresh bucket URL with its variables but those named in
/// `unset`; expects it to stop, and returns its error line (the one line starting `ferry:`), checking
/// that it is the only one, is said once, and holds no secret.
fn start_up_error(server: &CloudServer, url: &str, unset: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let env = server
        .env
        .iter()
        .filter(|(name, _)| !unset.contains(&name.as_str()));
    let started = Instant::now();
    let output = ferry()
        .current_dir(dir.path())
        .envs(env.map(|(name, value)| (name, value)))
        .env("FERRY_DOWNLOAD_MODE", "none")
        .args(["--listen", "127.0.0.1:0", "--storage", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "ferry started: {stderr}");
    // Retries are bounded (2, from 100 ms): a start-up failure is quick, not a long wait.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ferry:")).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    let line = lines[0].to_string();
    assert!(line.starts_with(&format!("ferry: storage {url}")), "{line}");
    assert!(!stderr.contains(SECRET), "no secret: {stderr}");
    if let Some((_, secret)) = server
        .env
        .iter()
        .find(|(n, _)| n == "AWS_SECRET_ACCESS_KEY")
    {
        assert!(!stderr.contains(secret.as_str()), "no secret: {stderr}");
    }
    line
}

/// Asserts that `line` says `phrase` exactly once.
fn says_once(line: &str, phrase: &str) {
    assert_eq!(
        line.matches(phrase).count(),
        1,
        "{phrase:?} once in: {line}"
    );
}

/// The S3 test server, or `None` (a failure when FERRY_TEST_REQUIRE_SERVERS=1: testkit panics).
fn s3() -> Option<CloudServer> {
    s3_server()
}

#[test]
fn an_http_endpoint_without_allow_http_is_named_with_the_setting_to_add() {
    let Some(server) = s3() else { return };
    let url = server.fresh_url();
    let line = start_up_error(&server, &url, &["AWS_ALLOW_HTTP"]);
    says_once(
        &line,
        &format!("the endpoint {} is plain HTTP", server.endpoint),
    );
    says_once(
        &line,
        "set allow_http = true in [storage_options] (or AWS_ALLOW_HTTP=true)",
    );
    assert!(!line.contains("builder error"), "{line}");
}

#[test]
fn missing_credentials_say_no_credentials_and_which_to_set_without_waiting_on_the_metadata_address()
{
    let Some(server) = s3() else { return };
    // Where the cloud metadata service would be, nothing listens: refused at once, as on a machine
    // outside a cloud (object_store's aws_metadata_endpoint; 169.254.169.254 is never contacted).
    let server = server.with_var(
        "AWS_METADATA_ENDPOINT",
        &format!("http://127.0.0.1:{}", closed_port()),
    );
    let url = server.fresh_url();
    let line = start_up_error(
        &server,
        &url,
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    );
    says_once(&line, "no S3 credentials");
    says_once(&line, "set access_key_id and secret_access_key");
}

#[test]
fn a_refused_connection_says_nothing_answers_at_the_endpoint() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let server = s3_server_at(&endpoint, "ferry-test", "id", SECRET);
    let url = server.fresh_url();
    let line = start_up_error(&server, &url, &[]);
    says_once(
        &line,
        &format!("nothing answers at the endpoint {endpoint} (connection refused)"),
    );
    says_once(&line, "start the storage server, or fix the endpoint");
    assert!(!line.contains("error sending request"), "{line}");
}

#[test]
fn a_missing_bucket_is_named_with_the_fix() {
    let Some(server) = s3() else { return };
    let url = "s3://ferry-no-such-bucket/proxy";
    let line = start_up_error(&server, url, &[]);
    says_once(&line, "the bucket \"ferry-no-such-bucket\" does not exist");
    says_once(&line, "create it, or fix its name in the storage URL");
}

#[test]
fn wrong_keys_say_access_denied_and_which_keys_to_check() {
    let Some(server) = s3() else { return };
    let server = server.with_var("AWS_SECRET_ACCESS_KEY", SECRET);
    let url = server.fresh_url();
    let line = start_up_error(&server, &url, &[]);
    says_once(&line, "S3 denied access to the bucket");
    says_once(&line, "check access_key_id and secret_access_key");
}

#[test]
fn an_https_endpoint_on_a_plain_http_server_says_the_tls_handshake_failed() {
    let Some(server) = s3() else { return };
    let https = server.endpoint.replace("http://", "https://");
    let server = server.with_var("AWS_ENDPOINT", &https);
    let url = server.fresh_url();
    let line = start_up_error(&server, &url, &[]);
    says_once(
        &line,
        &format!("the TLS handshake with the endpoint {https} failed"),
    );
    says_once(
        &line,
        "write its endpoint with http:// and set allow_http = true",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_the_storage_server_stopped_answering_and_what_to_do() {
    let Some(server) = s3() else { return };
    // The server behind a forwarder the test can take away.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let target = server.endpoint.trim_start_matches("http://").to_string();
    let forwarding = tokio::spawn(forward(listener, target));
    let server = server.with_var("AWS_ENDPOINT", &front);
    let mut env: std::collections::BTreeMap<String, String> = server.env.iter().cloned().collect();
    env.insert("FERRY_STORAGE".into(), server.fresh_url());
    env.insert("FERRY_DOWNLOAD_MODE".into(), "none".into());
    // Only the storage's line is asked for: no vulnerability database (whose source is unreachable here).
    env.insert("FERRY_VULN_ENABLED".into(), "false".into());
    let config = config::load(&Flags::default(), &env).unwrap();
    let ferry = Ferry::start_with(
        ferry::build_proxy(&config).await.unwrap(),
        config.server.clone(),
    )
    .await;
    assert_eq!(ferry.get("readyz").await.status, 200);

    forwarding.abort();
    let _ = forwarding.await;
    let reply = ferry.get("readyz").await;
    let text = reply.text();
    assert_eq!(reply.status, 503, "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    says_once(
        &text,
        &format!("nothing answers at the endpoint {front} (connection refused)"),
    );
    says_once(&text, "start the storage server");
    ferry.stop().await;
}
