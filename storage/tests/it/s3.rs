//! The S3 backend (`s3://`) against a real S3 server that checks SigV4 signatures (s3s-fs), plus what a
//! down or hung server does.
use ferry_storage::StorageOptions;
use ferry_testkit::{closed_port, s3_server, s3_server_at};

use crate::cloud::open;

cloud_backend_tests!(s3_server);

#[tokio::test]
async fn a_wrong_secret_key_is_refused_and_not_repeated() {
    let Some(server) = s3_server() else { return };
    let wrong = "ferry-distinctive-wrong-secret-0123456789";
    crate::cloud::a_wrong_key_is_refused_and_not_repeated(server, "AWS_SECRET_ACCESS_KEY", wrong)
        .await;
}

/// Needs no server: a port nothing listens on stands for a backend that is down.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_bounded_time() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let server = s3_server_at(&endpoint, "ferry-test", "key", "secret");
    let store = open(&server.fresh_url(), &StorageOptions::default(), &server.env);
    crate::conformance::down_backend_is_unavailable(&*store).await;
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
        toml::from_str("read_timeout = \"1s\"\nmax_retries = 1\n").unwrap();
    let server = s3_server_at(&endpoint, "ferry-test", "key", "secret");
    let store = open(&server.fresh_url(), &options, &server.env);
    crate::conformance::down_backend_is_unavailable(&*store).await;
}

/// A server without conditional writes, declared with `conditional_put = "disabled"`: the `.info` goes
/// in with a plain PUT (object_store refuses the create-only one), and a stored version still never
/// changes.
#[tokio::test]
async fn a_server_declared_without_conditional_writes_stores_with_plain_puts() {
    let Some(server) = s3_server() else { return };
    let options: StorageOptions = toml::from_str("conditional_put = \"disabled\"\n").unwrap();
    let store = open(&server.fresh_url(), &options, &server.env);
    crate::conformance::resave_is_idempotent(&*store).await;
}
