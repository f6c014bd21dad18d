//! TLS on the main listener (`tls_cert` / `tls_key`): the go command trusting a test CA through
//! `SSL_CERT_FILE`, curl negotiating HTTP/2 by ALPN, the connection hardening over TLS, a certificate
//! replaced on SIGHUP, and start-up refused for a pair that cannot be served.

use std::path::Path;

use ferry::config::Flags;
use ferry_testkit::{FixtureModule, ServerPair, TestCa, curl};

use crate::harness::{Ferry, ferry_env, go_said, go_with, save, serve_memory, serving};

const MODULE: &str = "example.com/over/tls";

/// Ferry in-process serving `pair` over TLS, with `vars` added and one module stored.
async fn over_tls(dir: &Path, pair: &ServerPair, vars: &[(&str, &str)]) -> Ferry {
    let cert = pair.cert.display().to_string();
    let key = pair.key.display().to_string();
    let mut vars = vars.to_vec();
    vars.extend([
        ("FERRY_DOWNLOAD_MODE", "none"),
        ("FERRY_TLS_CERT", cert.as_str()),
        ("FERRY_TLS_KEY", key.as_str()),
    ]);
    let ferry = Ferry::from_env(&ferry_env(dir, None, &vars), &Flags::default()).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(MODULE, "v1.2.0"),
    )
    .await;
    ferry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_trusting_the_test_ca_downloads_and_builds_through_https_ferry() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let ferry = over_tls(dir.path(), &ca.issue(dir.path(), "server"), &[]).await;
    let trusted = ca_file.display().to_string();
    let target = format!("{MODULE}@v1.2.0");
    let output = go_with(
        dir.path(),
        &ferry.https_url(),
        &[("SSL_CERT_FILE", &trusted)],
        &["mod", "download", "-json", &target],
    )
    .await;
    assert!(output.status.success(), "{}", go_said(&output));
    let downloaded: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(downloaded["Version"], "v1.2.0", "{downloaded}");
    assert!(downloaded["Sum"].as_str().unwrap().starts_with("h1:"));

    // Without the CA the go command refuses the certificate.
    let untrusted = go_with(
        dir.path(),
        &ferry.https_url(),
        &[],
        &["mod", "download", "-json", &target],
    )
    .await;
    let said = go_said(&untrusted);
    assert!(!untrusted.status.success());
    assert!(
        said.contains("certificate signed by unknown authority"),
        "{said}"
    );
    ferry.stop().await;
}

/// curl `url` trusting `ca` with `extra` arguments; the HTTP version and status it reports, or its error.
fn curl_version_status(url: &str, ca: &Path, extra: &[&str]) -> Result<String, String> {
    let ca = ca.display().to_string();
    let mut args = vec![
        "--cacert",
        ca.as_str(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
    ];
    args.extend(extra);
    args.push(url);
    let output = curl(&args);
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_over_tls_gets_http2_by_alpn_and_http1_1_when_it_asks() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let ferry = over_tls(dir.path(), &ca.issue(dir.path(), "server"), &[]).await;
    let url = format!("{}/{MODULE}/@v/v1.2.0.mod", ferry.https_url());
    let run = |extra: &'static [&'static str]| {
        let (url, ca_file) = (url.clone(), ca_file.clone());
        tokio::task::spawn_blocking(move || curl_version_status(&url, &ca_file, extra))
    };
    assert_eq!(run(&["--http2"]).await.unwrap(), Ok("2 200".to_string()));
    assert_eq!(
        run(&["--http1.1"]).await.unwrap(),
        Ok("1.1 200".to_string())
    );
    // Plain HTTP on the TLS port is not served.
    let plain = format!("http://{}/healthz", ferry.addr);
    let refused = tokio::task::spawn_blocking(move || {
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &plain])
    })
    .await
    .unwrap();
    assert_ne!(String::from_utf8_lossy(&refused.stdout), "200");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_tls_handshake_is_closed_after_the_header_read_timeout()
 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let ferry = over_tls(
        dir.path(),
        &ca.issue(dir.path(), "server"),
        &[("FERRY_HEADER_READ_TIMEOUT", "1s")],
    )
    .await;
    for opening in [&b""[..], &b"\x16\x03\x01\x02\x00\x01"[..]] {
        let started = std::time::Instant::now();
        let mut socket = tokio::net::TcpStream::connect(ferry.addr).await.unwrap();
        socket.write_all(opening).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            socket.read_to_end(&mut rest),
        )
        .await;
        assert!(closed.is_ok(), "a silent TLS client was never closed");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(900),
            "closed too early: {:?}",
            started.elapsed()
        );
    }
    ferry.stop().await;
}

#[test]
fn a_sighup_sent_after_the_certificate_is_replaced_serves_the_new_one_on_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (TestCa::new("Old CA"), TestCa::new("New CA"));
    let (old_ca_file, new_ca_file) = (
        old_ca.write(dir.path(), "old-ca.pem"),
        new_ca.write(dir.path(), "new-ca.pem"),
    );
    let served = old_ca.issue(dir.path(), "served");
    let replacement = new_ca.issue(dir.path(), "replacement");
    let (cert, key) = (
        served.cert.display().to_string(),
        served.key.display().to_string(),
    );
    let command = serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_TLS_CERT", &cert),
            ("FERRY_TLS_KEY", &key),
        ],
    );
    let (mut ferry, address) = serving(command);
    assert!(ferry.log().contains("serving HTTPS"), "{}", ferry.log());
    let url = format!("https://{address}/healthz");
    assert_eq!(
        curl_version_status(&url, &old_ca_file, &[]),
        Ok("2 200".to_string())
    );
    assert!(curl_version_status(&url, &new_ca_file, &[]).is_err());

    std::fs::copy(&replacement.cert, &served.cert).unwrap();
    std::fs::copy(&replacement.key, &served.key).unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the reload", || {
        ferry.log().contains("SIGHUP: TLS certificate reloaded")
    });
    assert_eq!(
        curl_version_status(&url, &new_ca_file, &[]),
        Ok("2 200".to_string())
    );
    assert!(curl_version_status(&url, &old_ca_file, &[]).is_err());

    // A key that does not belong to the certificate is refused, and the certificate in force stays.
    std::fs::copy(dir.path().join("old-ca.pem"), &served.cert).unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the report", || {
        ferry.log().contains("keeping the one in force")
    });
    assert_eq!(
        curl_version_status(&url, &new_ca_file, &[]),
        Ok("2 200".to_string())
    );
    assert!(ferry.terminate().success());
}

/// `ferry serve` with `vars`: it must stop at once; its stderr.
fn refused_start(dir: &Path, vars: &[(&str, &str)]) -> String {
    let mut vars = vars.to_vec();
    vars.push(("FERRY_DOWNLOAD_MODE", "none"));
    let output = serve_memory(dir, &vars).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("ferry is serving"), "{stderr}");
    stderr
}

#[test]
fn a_mismatched_pair_a_file_that_is_not_pem_or_half_a_pair_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let (one, other) = (ca.issue(dir.path(), "one"), ca.issue(dir.path(), "other"));
    let text = |path: &Path| path.display().to_string();
    let (cert, other_key) = (text(&one.cert), text(&other.key));

    let stderr = refused_start(
        dir.path(),
        &[("FERRY_TLS_CERT", &cert), ("FERRY_TLS_KEY", &other_key)],
    );
    assert!(
        stderr.contains(&format!(
            "invalid TLS configuration: tls_key {other_key}: is not the key of the certificate in {cert}; give the key the certificate was issued for"
        )),
        "{stderr}"
    );
    let key_pem = std::fs::read_to_string(&other.key).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    assert!(
        !stderr.contains(key_body),
        "key material in the message: {stderr}"
    );

    // The key given as the certificate: no certificate in it.
    let stderr = refused_start(
        dir.path(),
        &[
            ("FERRY_TLS_CERT", &other_key),
            ("FERRY_TLS_KEY", &other_key),
        ],
    );
    assert!(
        stderr.contains(&format!("tls_cert {other_key}: holds no certificate")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(key_body),
        "key material in the message: {stderr}"
    );

    let stderr = refused_start(dir.path(), &[("FERRY_TLS_CERT", &cert)]);
    assert!(
        stderr.contains("environment variable FERRY_TLS_CERT: tls_cert is set but tls_key is not"),
        "{stderr}"
    );
    let missing = text(&dir.path().join("missing.key"));
    let stderr = refused_start(
        dir.path(),
        &[("FERRY_TLS_CERT", &cert), ("FERRY_TLS_KEY", &missing)],
    );
    assert!(
        stderr.contains(&format!("tls_key {missing}: cannot read the private key")),
        "{stderr}"
    );
}
