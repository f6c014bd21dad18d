//! Client authentication (`auth_file`): HTTP Basic against an htpasswd file of bcrypt entries. The real
//! go command reads its credentials from `.netrc` (or `GOAUTH`), which it sends over HTTPS only, so those
//! tests serve TLS too; curl drives the `ferry` binary for SIGHUP and `metrics_listen`.

use std::path::Path;

use base64::Engine;
use ferry::config::Flags;
use ferry_testkit::{FixtureModule, TestCa, capture_logs, curl, htpasswd_line, logged};

use crate::harness::{
    Ferry, ferry_env, go_said, go_with, request, save, serve_memory, serving, write_file,
};

/// A line `htpasswd -B` (Apache 2.4, its default cost 5) wrote for `builder` / `correct-horse-battery`:
/// the format of the real tool, not only of the bcrypt crate the other users are made with.
const HTPASSWD_B_LINE: &str =
    "builder:$2y$05$XEjZoN5wH2Z3nNXu2tffW.E.jrB8dqQfSJOzJkntCk.FfYRRAD0Gu";
const BUILDER_PASSWORD: &str = "correct-horse-battery";
const MODULE: &str = "example.com/private/lib";
const MOD_PATH: &str = "example.com/private/lib/@v/v1.0.0.mod";

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Ferry in-process with `users` as its auth file (and TLS when `tls` is given), serving one stored module.
async fn secured(dir: &Path, users: &str, tls: Option<&ferry_testkit::ServerPair>) -> Ferry {
    let file = write_file(dir, "users", users);
    let file = file.display().to_string();
    let mut vars = vec![
        ("FERRY_DOWNLOAD_MODE", "none".to_string()),
        ("FERRY_AUTH_FILE", file),
    ];
    if let Some(pair) = tls {
        vars.push(("FERRY_TLS_CERT", pair.cert.display().to_string()));
        vars.push(("FERRY_TLS_KEY", pair.key.display().to_string()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ferry = Ferry::from_env(&ferry_env(dir, None, &vars), &Flags::default()).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(MODULE, "v1.0.0"),
    )
    .await;
    ferry
}

async fn get_as(ferry: &Ferry, path: &str, credentials: Option<(&str, &str)>) -> (u16, String) {
    let authorization = credentials.map(|(user, password)| basic(user, password));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    let reply = request("GET", &format!("{}/{path}", ferry.url()), &headers).await;
    (reply.status, reply.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_request_without_credentials_is_401_with_the_basic_challenge_while_health_probes_stay_open()
 {
    let dir = tempfile::tempdir().unwrap();
    let ferry = secured(dir.path(), HTPASSWD_B_LINE, None).await;
    let refused = ferry.get(MOD_PATH).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(refused.header("www-authenticate"), "Basic realm=\"ferry\"");
    assert!(
        refused.text().starts_with("unauthorized: "),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("cache-control"), "no-store");
    for listing in [
        "example.com/private/lib/@v/list",
        "",
        "sumdb/sum.golang.org/supported",
    ] {
        assert_eq!(ferry.get(listing).await.status, 401, "/{listing}");
    }
    assert_eq!(ferry.get("healthz").await.status, 200);
    assert_eq!(ferry.get("readyz").await.status, 200);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_htpasswd_b_wrote_is_served_and_a_wrong_one_or_an_unknown_user_is_401_logged_without_the_password()
 {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let users = format!(
        "# the fleet\n{HTPASSWD_B_LINE}\n{}\n",
        htpasswd_line("ci-runner-7", "s3cret-7")
    );
    let ferry = secured(dir.path(), &users, None).await;
    let (status, body) = get_as(&ferry, MOD_PATH, Some(("builder", BUILDER_PASSWORD))).await;
    let go_mod = FixtureModule::package(MODULE, "v1.0.0").go_mod();
    assert_eq!((status, body), (200, go_mod));
    // Twice: the second is answered from the remembered check, and must still be right.
    for _ in 0..2 {
        assert_eq!(
            get_as(&ferry, MOD_PATH, Some(("ci-runner-7", "s3cret-7")))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        get_as(&ferry, MOD_PATH, Some(("ci-runner-7", "s3cret-8")))
            .await
            .0,
        401
    );
    assert_eq!(get_as(&ferry, MOD_PATH, Some(("builder", ""))).await.0, 401);
    assert_eq!(
        get_as(&ferry, MOD_PATH, Some(("nobody-91", BUILDER_PASSWORD)))
            .await
            .0,
        401
    );
    // The right password still works after a wrong one (a failure is never remembered as a success, nor
    // does it evict the success).
    assert_eq!(
        get_as(&ferry, MOD_PATH, Some(("ci-runner-7", "s3cret-7")))
            .await
            .0,
        200
    );
    assert!(logged(&[
        "authentication failed: wrong password",
        "ci-runner-7"
    ]));
    assert!(logged(&[
        "authentication failed: unknown user",
        "nobody-91"
    ]));
    let logs = String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned();
    assert!(!logs.contains("s3cret-8"), "a password is in the log");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_main_listener_need_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = secured(dir.path(), &htpasswd_line("prometheus", "scrape"), None).await;
    assert_eq!(get_as(&ferry, "metrics", None).await.0, 401);
    let (status, body) = get_as(&ferry, "metrics", Some(("prometheus", "scrape"))).await;
    assert_eq!(status, 200);
    // The refusal was counted: authentication sits inside the metrics layer.
    assert!(
        body.lines()
            .any(|line| line.starts_with("ferry_requests_total")
                && line.contains("endpoint=\"metrics\"")
                && line.contains("status=\"401\"")),
        "{body}"
    );
    ferry.stop().await;
}

/// `go mod download` of the stored module through `https_url`, trusting `ca`, with `vars` added.
async fn go_download(
    dir: &Path,
    https_url: &str,
    ca: &Path,
    vars: &[(&str, &str)],
) -> std::process::Output {
    let ca = ca.display().to_string();
    let mut vars = vars.to_vec();
    vars.push(("SSL_CERT_FILE", &ca));
    go_with(
        dir,
        https_url,
        &vars,
        &["mod", "download", "-json", &format!("{MODULE}@v1.0.0")],
    )
    .await
}

/// A Ferry with TLS (a fresh test CA) and `HTPASSWD_B_LINE` as its users; the CA file.
async fn secured_over_tls(dir: &Path) -> (Ferry, std::path::PathBuf) {
    let ca = TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir, "ca.pem");
    let pair = ca.issue(dir, "server");
    (secured(dir, HTPASSWD_B_LINE, Some(&pair)).await, ca_file)
}

/// A .netrc for `ferry` (the go command looks a machine up with its port) with this password.
fn netrc(dir: &Path, name: &str, ferry: &Ferry, password: &str) -> String {
    let line = format!("machine {} login builder password {password}\n", ferry.addr);
    write_file(dir, name, &line).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_downloads_with_credentials_from_netrc_and_a_wrong_password_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, ca_file) = secured_over_tls(dir.path()).await;
    let url = ferry.https_url();
    let right = netrc(dir.path(), "netrc", &ferry, BUILDER_PASSWORD);
    let output = go_download(dir.path(), &url, &ca_file, &[("NETRC", &right)]).await;
    assert!(output.status.success(), "{}", go_said(&output));
    let downloaded: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        downloaded["Sum"].as_str().unwrap().starts_with("h1:"),
        "{downloaded}"
    );
    // go reports the 401 and Ferry's reason.
    let wrong = netrc(dir.path(), "netrc-wrong", &ferry, "wrong");
    let output = go_download(dir.path(), &url, &ca_file, &[("NETRC", &wrong)]).await;
    let said = go_said(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("401 Unauthorized") && said.contains("unauthorized: "),
        "{said}"
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goauth_netrc_or_a_goauth_command_supplies_the_credentials_and_goauth_off_gets_401() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, ca_file) = secured_over_tls(dir.path()).await;
    let url = ferry.https_url();
    let goauth = go_with(dir.path(), &url, &[], &["env", "GOAUTH"]).await;
    assert_eq!(
        String::from_utf8_lossy(&goauth.stdout).trim(),
        "netrc",
        "this go command has no GOAUTH (Go 1.24+); the tests need a recent go"
    );
    let right = netrc(dir.path(), "netrc", &ferry, BUILDER_PASSWORD);
    let output = go_download(
        dir.path(),
        &url,
        &ca_file,
        &[("NETRC", &right), ("GOAUTH", "netrc")],
    )
    .await;
    assert!(output.status.success(), "{}", go_said(&output));

    // A GOAUTH command, as one reading a secret store would be: it prints the URL prefix and the header
    // (`go help goauth`).
    let header = basic("builder", BUILDER_PASSWORD);
    let script = write_file(
        dir.path(),
        "goauth.sh",
        &format!("#!/bin/sh\nprintf '%s\\n\\n%s\\n\\n' '{url}' 'Authorization: {header}'\n"),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let command = script.display().to_string();
    let output = go_download(dir.path(), &url, &ca_file, &[("GOAUTH", &command)]).await;
    assert!(
        output.status.success(),
        "GOAUTH={command}: {}",
        go_said(&output)
    );

    let output = go_download(
        dir.path(),
        &url,
        &ca_file,
        &[("NETRC", &right), ("GOAUTH", "off")],
    )
    .await;
    let said = go_said(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("401 Unauthorized"), "{said}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_written_in_an_https_goproxy_url_work_and_the_go_command_refuses_them_over_plain_http()
 {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, ca_file) = secured_over_tls(dir.path()).await;
    let ca_file = ca_file.display().to_string();
    let target = format!("{MODULE}@v1.0.0");
    let args = ["mod", "download", "-json", target.as_str()];
    let vars = [("SSL_CERT_FILE", ca_file.as_str()), ("GOAUTH", "off")];
    let goproxy = format!("https://builder:{BUILDER_PASSWORD}@{}", ferry.addr);
    let output = go_with(dir.path(), &goproxy, &vars, &args).await;
    assert!(output.status.success(), "{}", go_said(&output));
    // Over plain HTTP the go command sends no credentials at all: Ferry needs TLS (its own or a proxy's).
    let plain = format!("http://builder:{BUILDER_PASSWORD}@{}", ferry.addr);
    let refused = go_with(dir.path(), &plain, &vars, &args).await;
    assert!(!refused.status.success());
    assert!(
        go_said(&refused).contains("refusing to pass credentials to insecure URL"),
        "{}",
        go_said(&refused)
    );
    ferry.stop().await;
}

/// curl's status code for `url` with `user:password` (or none).
fn curl_status(url: &str, credentials: Option<&str>) -> String {
    let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}", url];
    if let Some(credentials) = credentials {
        args.extend(["-u", credentials]);
    }
    String::from_utf8(curl(&args).stdout).unwrap()
}

#[test]
fn a_sighup_sent_after_a_user_is_added_to_the_auth_file_lets_that_user_in_and_a_bad_file_keeps_the_old_users()
 {
    let dir = tempfile::tempdir().unwrap();
    let users = write_file(dir.path(), "users", &format!("{HTPASSWD_B_LINE}\n"));
    let metrics_port = ferry_testkit::closed_port();
    let users_env = users.display().to_string();
    let metrics_env = format!("127.0.0.1:{metrics_port}");
    let command = serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_AUTH_FILE", &users_env),
            ("FERRY_METRICS_LISTEN", &metrics_env),
        ],
    );
    let (mut ferry, address) = serving(command);
    let url = format!("http://{address}/{MODULE}/@v/list");
    // Nothing is stored: 404 once in, 401 before.
    assert_eq!(
        curl_status(&url, Some(&format!("builder:{BUILDER_PASSWORD}"))),
        "404"
    );
    assert_eq!(curl_status(&url, Some("newcomer:welcome")), "401");
    // /metrics is open on its own listener, which serves it alone.
    assert_eq!(
        curl_status(&format!("http://{metrics_env}/metrics"), None),
        "200"
    );

    std::fs::write(
        &users,
        format!(
            "{HTPASSWD_B_LINE}\n{}\n",
            htpasswd_line("newcomer", "welcome")
        ),
    )
    .unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the reload", || {
        ferry.log().contains("SIGHUP: authentication file reloaded")
    });
    assert_eq!(curl_status(&url, Some("newcomer:welcome")), "404");

    let md5 = "md5user:$apr1$JrgBwyVA$oi0B4gLF1qEZSzsejlKcD.";
    std::fs::write(&users, format!("{HTPASSWD_B_LINE}\n{md5}\n")).unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the report of the bad file", || {
        ferry.log().contains("keeping the users in force")
    });
    let log = ferry.log();
    assert!(
        log.contains(&format!(
            "{}:2:9: user \"md5user\" has an MD5",
            users.display()
        )),
        "{log}"
    );
    assert!(
        !log.contains("oi0B4gLF1qEZSzsejlKcD"),
        "the hash is in the log: {log}"
    );
    assert_eq!(curl_status(&url, Some("newcomer:welcome")), "404");
    assert!(ferry.terminate().success());
}

#[test]
fn an_entry_that_is_not_bcrypt_stops_start_up_naming_the_file_line_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let users = write_file(
        dir.path(),
        "users",
        &format!("{HTPASSWD_B_LINE}\nshauser:{{SHA}}GpHWL3ymc5liWkNopqtdSjuqYHM=\n"),
    );
    let users_env = users.display().to_string();
    let output = serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_AUTH_FILE", &users_env),
        ],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:9: user \"shauser\" has a SHA-1 ({{SHA}}) hash; Ferry accepts only bcrypt entries: write it again with `htpasswd -B {} shauser`",
            users.display(),
            users.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("GpHWL3"), "the hash is echoed: {stderr}");
}
