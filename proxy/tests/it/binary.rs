//! The `ferry` binary as an operator runs it.

use ferry_testkit::{Process, curl};

use crate::harness::{ferry, get_blocking as http_get, serve_memory, serving};

#[test]
fn with_no_arguments_it_serves_ferry_data_in_the_working_directory_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = ferry();
    // The default address may be taken on a test machine; everything else stays default.
    command
        .current_dir(dir.path())
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (mut child, addr) = serving(command);
    assert!(
        dir.path().join("ferry-data").is_dir(),
        "the default store is created"
    );
    let health = http_get(&addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = http_get(&addr, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(child.terminate().success(), "SIGTERM is a clean exit");
}

#[test]
fn serve_subcommand_flags_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = ferry();
    let store = format!("file://{}", dir.path().join("store").display());
    command
        .current_dir(dir.path())
        .env("FERRY_DOWNLOAD_MODE", "none");
    command.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--storage",
        &store,
        "--log-format",
        "json",
    ]);
    let (mut child, serving) = Process::start(command, "ferry is serving");
    let serving: serde_json::Value = serde_json::from_str(&serving).expect("a JSON log line");
    let addr = serving["listen"].as_str().unwrap().to_string();
    assert!(http_get(&addr, "/example.com/x/@v/list").starts_with("HTTP/1.1 404"));
    child.wait_for("the access log line", || {
        child.log().contains("\"message\":\"request\"")
    });
    let json_lines: Vec<serde_json::Value> = child
        .log()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .collect();
    let access = json_lines
        .iter()
        .find(|line| line["message"] == "request")
        .unwrap();
    let logged = (
        access["method"].as_str(),
        access["path"].as_str(),
        access["status"].as_u64(),
    );
    assert_eq!(
        logged,
        (Some("GET"), Some("/example.com/x/@v/list"), Some(404))
    );
    assert!(
        access["bytes"].as_u64().unwrap() > 0 && access["duration_ms"].is_number(),
        "{access}"
    );
    let id = access["request_id"].as_str().unwrap_or_default();
    assert!(
        id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "each request has an id in the access log: {access}"
    );
    assert!(child.terminate().success());
}

#[test]
fn a_request_id_with_a_quote_is_quoted_and_escaped_in_the_text_log_and_cannot_forge_a_field() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serving(serve_memory(dir.path(), &[("FERRY_DOWNLOAD_MODE", "none")]));
    let hostile = r#"x"status=500,path=/evil"#;
    let answer = curl(&[
        "-i",
        "-H",
        &format!("X-Request-Id: {hostile}"),
        &format!("http://{addr}/example.com/x/@v/list"),
    ]);
    let answer = String::from_utf8_lossy(&answer.stdout).to_string();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    child.wait_for("the access log line", || {
        child.log().contains("example.com/x/@v/list")
    });
    let log = child.log();
    let line = log
        .lines()
        .find(|line| line.contains("example.com/x/@v/list"))
        .unwrap();
    assert!(
        line.contains(r#"request_id="x\"status=500,path=/evil""#)
            && line.contains(r#"path="/example.com/x/@v/list""#)
            && line.contains("status=404"),
        "the id is one quoted, escaped field; the status and path are the real ones: {line}"
    );
    assert!(
        !line.contains(" status=500") && !line.contains(" path=/evil"),
        "{line}"
    );
    assert!(child.terminate().success());
}

#[test]
fn help_documents_every_option() {
    let output = ferry().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--config",
        "--listen",
        "--storage",
        "--log-format",
        "FERRY_LISTEN",
        "FERRY_STORAGE",
        "FERRY_CONFIG",
        "serve",
    ] {
        assert!(help.contains(option), "--help mentions {option}:\n{help}");
    }
}

#[test]
fn configuration_errors_stop_start_up_with_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferry.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nstorage = \"ftp://x\"\n").unwrap();
    let output = ferry()
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:2:11:", file.display())) && stderr.contains("use file://"),
        "{stderr}"
    );

    let output = ferry().args(["--listen", "nowhere"]).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("flag --listen: listen address \"nowhere\" is not IP:PORT")
    );

    // A store directory that cannot be created (its parent is a file).
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let output = ferry()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--storage",
            &format!("file://{}/store", blocker.display()),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot create the store directory"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_missing_go_command_stops_start_up_when_the_policy_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let missing_go = dir.path().join("no-such-go");
    let output = ferry()
        .current_dir(dir.path())
        .args(["--listen", "127.0.0.1:0", "--storage", "memory://"])
        .env("FERRY_GO", &missing_go)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the download policy fetches from the upstream"),
        "{stderr}"
    );
    assert!(
        stderr.contains(missing_go.to_str().unwrap()),
        "the message names the go path: {stderr}"
    );

    // With a policy that never fetches, no go command is needed.
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .env("FERRY_GO", &missing_go)
        .env("FERRY_DOWNLOAD_MODE", "none");
    command.args(["--listen", "127.0.0.1:0", "--storage", "memory://"]);
    let (_running, addr) = serving(command);
    assert!(http_get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
}

#[test]
fn an_upstream_that_is_ferry_itself_stops_start_up_with_the_fix() {
    // As the quick start has it: GOPROXY exported for the client, then Ferry started from the same shell.
    let dir = tempfile::tempdir().unwrap();
    let port = ferry_testkit::closed_port();
    let output = ferry()
        .current_dir(dir.path())
        .env("GOPROXY", format!("http://localhost:{port},direct"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--storage",
            "memory://",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "GOPROXY entry http://localhost:{port} is this Ferry's own address"
        )) && stderr.contains("[fetcher] go_env"),
        "{stderr}"
    );
}

#[test]
fn metrics_listen_moves_metrics_off_the_module_listener() {
    let dir = tempfile::tempdir().unwrap();
    let port = ferry_testkit::closed_port();
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .env("FERRY_DOWNLOAD_MODE", "none")
        .env("FERRY_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .args(["--listen", "127.0.0.1:0", "--storage", "memory://"]);
    let (mut child, addr) = serving(command);
    let on_main = http_get(&addr, "/metrics");
    assert!(on_main.starts_with("HTTP/1.1 404"), "{on_main}");
    let on_own = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    assert!(
        on_own.starts_with("HTTP/1.1 200") && on_own.contains("ferry_requests_total"),
        "{on_own}"
    );
    assert!(child.terminate().success());
}
