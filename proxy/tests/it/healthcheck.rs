//! `ferry healthcheck`, the probe the container image runs instead of curl: exit 0 on a 2xx answer, else
//! non-zero with one line saying why, within its timeout.

use std::process::Output;
use std::time::{Duration, Instant};

use ferry_testkit::TestCa;

use crate::harness::{ferry, serve_memory, serving};

/// A Ferry serving a `file://` store under `dir` and fetching on a miss (so `/readyz` checks that the store
/// takes writes); returns the process and its address.
fn ferry_on_file_store(dir: &std::path::Path) -> (ferry_testkit::Process, String) {
    let mut command = ferry();
    command
        .current_dir(dir)
        .env("FERRY_WORK_DIR", dir.join("work"))
        .env(
            "FERRY_STORAGE",
            format!("file://{}", dir.join("store").display()),
        )
        .env("FERRY_LISTEN", "127.0.0.1:0");
    serving(command)
}

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = ferry();
    command.arg("healthcheck").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn healthcheck_exits_0_and_prints_the_answer_when_ferry_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (_ferry, addr) = ferry_on_file_store(dir.path());
    let url = format!("http://{addr}/readyz");
    let output = healthcheck(&[&url], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{url}: HTTP/1.0 200 OK: ready\n"));
}

#[test]
fn healthcheck_without_a_url_probes_readyz_on_the_port_of_ferry_listen() {
    let dir = tempfile::tempdir().unwrap();
    let (_ferry, addr) = ferry_on_file_store(dir.path());
    let port = addr.rsplit(':').next().unwrap();
    // As in the image: Ferry listens on every address, the probe runs beside it on loopback.
    let output = healthcheck(&[], &[("FERRY_LISTEN", &format!("0.0.0.0:{port}"))]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("http://127.0.0.1:{port}/readyz: HTTP/1.0 200 OK: ready\n")
    );
}

#[test]
fn healthcheck_fails_naming_the_status_and_ferrys_reason_when_the_store_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, addr) = ferry_on_file_store(dir.path());
    let url = format!("http://{addr}/readyz");
    assert!(healthcheck(&[&url], &[]).status.success());
    // The store's directory becomes a plain file: no write can succeed there any more. Ferry probes the
    // store's writes every few seconds, so the probe turns within that.
    let store = dir.path().join("store");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, "not a directory").unwrap();
    let mut output = healthcheck(&[&url], &[]);
    ferry.wait_for("/readyz to fail", || {
        output = healthcheck(&[&url], &[]);
        !output.status.success()
    });
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let reason = stderr(&output);
    assert_eq!(reason.lines().count(), 1, "one line: {reason:?}");
    assert!(
        reason.starts_with(&format!(
            "ferry: {url}: HTTP/1.0 503 Service Unavailable: not ready"
        )),
        "{reason}"
    );
}

#[test]
fn healthcheck_fails_at_once_on_a_refused_connection() {
    let port = ferry_testkit::closed_port();
    let started = Instant::now();
    let output = healthcheck(&[&format!("http://127.0.0.1:{port}/readyz")], &[]);
    assert_eq!(output.status.code(), Some(1));
    let reason = stderr(&output);
    assert!(
        reason.contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && reason.contains("refused"),
        "{reason}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn healthcheck_gives_up_after_its_timeout_on_a_server_that_never_answers() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", silent.local_addr().unwrap());
    let started = Instant::now();
    let output = healthcheck(&["--timeout", "500ms", &url], &[]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("ferry: {url}: no answer within 500ms\n")
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(silent);
}

#[test]
fn healthcheck_refuses_a_url_it_cannot_probe_and_an_https_url_with_nothing_to_trust() {
    let output = healthcheck(&["ftp://127.0.0.1:1/readyz"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("give an http:// or https:// URL"),
        "{}",
        stderr(&output)
    );
    // Before connecting: nothing listens on port 1.
    let output = healthcheck(&["https://127.0.0.1:1/readyz"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "nothing to trust; give the CA that issued Ferry's certificate with --ca FILE"
        ),
        "{}",
        stderr(&output)
    );
}

/// The `ferry` binary serving TLS with a certificate of `ca` for 127.0.0.1 and localhost; the process, its
/// port, and the certificate file.
fn ferry_over_tls(dir: &std::path::Path, ca: &TestCa) -> (ferry_testkit::Process, String, String) {
    let pair = ca.issue(dir, "server");
    let (cert, key) = (
        pair.cert.display().to_string(),
        pair.key.display().to_string(),
    );
    let command = serve_memory(
        dir,
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_TLS_CERT", &cert),
            ("FERRY_TLS_KEY", &key),
        ],
    );
    let (process, addr) = serving(command);
    let port = addr.rsplit(':').next().unwrap().to_string();
    (process, port, cert)
}

#[test]
fn healthcheck_probes_https_trusting_the_ca_given_with_ca_and_refuses_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir.path(), "ca.pem").display().to_string();
    let (_ferry, port, _) = ferry_over_tls(dir.path(), &ca);
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{port}/readyz");
        let output = healthcheck(&["--ca", &ca_file, &url], &[]);
        assert!(output.status.success(), "{url}: {}", stderr(&output));
        assert_eq!(stdout(&output), format!("{url}: HTTP/1.0 200 OK: ready\n"));
    }
    // A CA that did not issue the certificate: refused, saying what to give.
    let other = TestCa::new("Another CA")
        .write(dir.path(), "other.pem")
        .display()
        .to_string();
    let url = format!("https://127.0.0.1:{port}/readyz");
    let output = healthcheck(&["--ca", &other, &url], &[]);
    assert_eq!(output.status.code(), Some(1));
    let reason = stderr(&output);
    assert_eq!(reason.lines().count(), 1, "{reason}");
    assert!(
        reason.starts_with(&format!("ferry: {url}: TLS: invalid peer certificate: "))
            && reason.ends_with("; give the CA that issued Ferry's certificate with --ca FILE\n"),
        "{reason}"
    );
    // Plain HTTP on the TLS port fails, and names the URL.
    let output = healthcheck(&[&format!("http://127.0.0.1:{port}/readyz")], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
}

#[test]
fn healthcheck_without_a_url_probes_https_on_loopback_trusting_the_certificate_ferry_serves() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let (_ferry, port, cert) = ferry_over_tls(dir.path(), &ca);
    // As in the image and the compose file's tls profile: FERRY_LISTEN and FERRY_TLS_CERT as Ferry has them,
    // no CA given.
    let listen = format!("0.0.0.0:{port}");
    let env = [("FERRY_LISTEN", listen.as_str()), ("FERRY_TLS_CERT", &cert)];
    let output = healthcheck(&[], &env);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("https://127.0.0.1:{port}/readyz: HTTP/1.0 200 OK: ready\n")
    );
    // The certificate must be the one served: another of the same CA is refused.
    let other = ca.issue(dir.path(), "other").cert.display().to_string();
    let output = healthcheck(
        &[],
        &[
            ("FERRY_LISTEN", listen.as_str()),
            ("FERRY_TLS_CERT", &other),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains(&format!(
            ": TLS: invalid peer certificate: the server's certificate is not the one in {other} (FERRY_TLS_CERT)"
        )),
        "{}",
        stderr(&output)
    );
    // Ferry's own certificate is trusted on loopback only.
    let output = healthcheck(
        &[&format!("https://192.0.2.1:{port}/readyz")],
        &[("FERRY_TLS_CERT", &cert)],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("trusted on the loopback address only"),
        "{}",
        stderr(&output)
    );
}
