//! Client authentication (`auth_file`): HTTP Basic against an htpasswd file of bcrypt entries. The real
//! go command reads its credentials from `.netrc` (or `GOAUTH`), which it sends over HTTPS only, so those
//! tests serve TLS too; curl drives the `ferry` binary for SIGHUP and `metrics_listen`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use ferry::config::Flags;
use ferry_testkit::{
    FixtureModule, TestCa, capture_logs, curl, eventually, htpasswd_line, htpasswd_line_at_cost,
    logged,
};

use crate::harness::{
    Ferry, Reply, ferry, ferry_env, go_download_over_tls, go_said, go_with, request, request_from,
    save, serve_memory, serving, write_file,
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
    let reply = get_from(None, ferry, path, credentials).await;
    (reply.status, reply.text())
}

/// A GET of `path` with these credentials, on a new connection from the local address `from`.
async fn get_from(
    from: Option<IpAddr>,
    ferry: &Ferry,
    path: &str,
    credentials: Option<(&str, &str)>,
) -> Reply {
    let authorization = credentials.map(|(user, password)| basic(user, password));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    request_from(from, "GET", &format!("{}/{path}", ferry.url()), &headers).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_and_module_pages_need_credentials_and_show_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = secured(dir.path(), &htpasswd_line("viewer", "s3cret-v"), None).await;
    for page in [
        "",
        "-/search?q=example.com",
        "-/module/example.com/private/lib",
    ] {
        assert_eq!(get_as(&ferry, page, None).await.0, 401, "/{page}");
    }
    let (status, body) = get_as(&ferry, "", Some(("viewer", "s3cret-v"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<dt>Authentication</dt><dd>on</dd>"),
        "{body}"
    );
    // Neither the auth file's path nor the work dir is on the page.
    let root = dir.path().display().to_string();
    assert!(!body.contains(&root), "a local path on the page: {body}");
    let (status, body) = get_as(
        &ferry,
        &format!("-/module/{MODULE}"),
        Some(("viewer", "s3cret-v")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<th scope=\"row\">v1.0.0</th>"), "{body}");
    ferry.stop().await;
}

/// `go mod download` of the stored module through `https_url`, trusting `ca`, with `vars` added.
async fn go_download(
    dir: &Path,
    https_url: &str,
    ca: &Path,
    vars: &[(&str, &str)],
) -> std::process::Output {
    go_download_over_tls(dir, https_url, ca, MODULE, vars).await
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

/// bcrypt cost of the flood tests' entries: a check takes tens of milliseconds in a debug build, so that a
/// few hundred of them keep the verifiers busy for seconds.
const FLOOD_COST: u32 = 8;
/// Wrong-password requests in a flood, each on a connection of its own.
const FLOOD: usize = 300;

/// Sends `FLOOD` requests at once with a different wrong password each, from 127.0.0.2 to 127.0.0.21 in
/// turn, as the user `users(i)`; the answers (status, Retry-After) come through the handle, and the count
/// of those answered so far through the counter.
fn flood(
    ferry: &Ferry,
    users: impl Fn(usize) -> String,
) -> (
    tokio::task::JoinHandle<Vec<(u16, String)>>,
    Arc<AtomicUsize>,
) {
    let answered = Arc::new(AtomicUsize::new(0));
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..FLOOD {
        let url = ferry.url();
        let user = users(i);
        let answered = answered.clone();
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 20) as u8));
        requests.spawn(async move {
            let authorization = basic(&user, &format!("guess-{i}"));
            let reply = request_from(
                Some(from),
                "GET",
                &format!("{url}/{MOD_PATH}"),
                &[("authorization", authorization.as_str())],
            )
            .await;
            answered.fetch_add(1, Ordering::Relaxed);
            (reply.status, reply.header("retry-after").to_string())
        });
    }
    let all = tokio::spawn(async move { requests.join_all().await });
    (all, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_login_is_answered_at_once_beside_a_flood_of_wrong_passwords_which_get_401_or_503_with_retry_after()
 {
    let dir = tempfile::tempdir().unwrap();
    let users = ["newcomer", "alice", "bob"]
        .map(|user| htpasswd_line_at_cost(user, &format!("{user}-password"), FLOOD_COST))
        .join("\n");
    let ferry = secured(dir.path(), &users, None).await;
    let (flood, answered) = flood(&ferry, |i| match i % 3 {
        0 => "alice".to_string(),
        1 => "bob".to_string(),
        _ => format!("intruder-{i}"),
    });
    eventually("the flood is being answered", || {
        let answered = answered.clone();
        async move { answered.load(Ordering::Relaxed) > 0 }
    })
    .await;
    let login = Instant::now();
    let reply = get_from(
        None,
        &ferry,
        MOD_PATH,
        Some(("newcomer", "newcomer-password")),
    )
    .await;
    let took = login.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answers = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the flood is answered within a minute")
        .unwrap();
    assert_flood_answers(&answers);
    // The old single queue answered it after the flood's checks before it: 6.8 s here; now after one check
    // of each flooded user name (and one shared by the unknown names), about 0.5 s in a debug build.
    assert!(
        took < Duration::from_secs(3),
        "the first login took {took:?}"
    );
    ferry.stop().await;
}

/// Every answer to a wrong password is a 401, or a 503 that says when to try again.
fn assert_flood_answers(answers: &[(u16, String)]) {
    for (status, retry_after) in answers {
        match status {
            401 => {}
            503 => assert_eq!(retry_after, "1"),
            other => panic!("a wrong password was answered {other}"),
        }
    }
    assert!(
        answers.iter().any(|(status, _)| *status == 401),
        "no wrong password was checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_naming_the_valid_user_from_many_addresses_gets_its_first_login_an_answer_at_once_and_keeps_remembered_users_in()
 {
    let dir = tempfile::tempdir().unwrap();
    let users = ["newcomer", "regular"]
        .map(|user| htpasswd_line_at_cost(user, &format!("{user}-password"), FLOOD_COST))
        .join("\n");
    let ferry = secured(dir.path(), &users, None).await;
    let regular = Some(("regular", "regular-password"));
    assert_eq!(get_as(&ferry, MOD_PATH, regular).await.0, 200);
    let (flood, answered) = flood(&ferry, |_| "newcomer".to_string());
    eventually("the flood is being answered", || {
        let answered = answered.clone();
        async move { answered.load(Ordering::Relaxed) > 0 }
    })
    .await;
    // The user's own queue may be full of guesses: then a 503 at once, else a turn behind at most a queue
    // of them. Never a wait behind the whole flood (6.8 s with the old single queue).
    let login = Instant::now();
    let reply = get_from(
        None,
        &ferry,
        MOD_PATH,
        Some(("newcomer", "newcomer-password")),
    )
    .await;
    let took = login.elapsed();
    match reply.status {
        200 => {}
        503 => assert_eq!(reply.header("retry-after"), "1"),
        other => panic!("the valid user was answered {other}: {}", reply.text()),
    }
    assert!(
        took < Duration::from_secs(3),
        "the first login took {took:?}"
    );
    let remembered = Instant::now();
    assert_eq!(get_as(&ferry, MOD_PATH, regular).await.0, 200);
    assert!(
        remembered.elapsed() < Duration::from_secs(1),
        "a remembered user waited {:?}",
        remembered.elapsed()
    );
    let answers = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the flood is answered within a minute")
        .unwrap();
    assert_flood_answers(&answers);
    // Once the flood is over, the login goes through.
    assert_eq!(
        get_as(&ferry, MOD_PATH, Some(("newcomer", "newcomer-password")))
            .await
            .0,
        200
    );
    ferry.stop().await;
}

/// The value of the counter `ferry_auth_checks_total{result="RESULT"}` on the metrics listener.
fn auth_checks(metrics: &str, result: &str) -> u64 {
    let text = String::from_utf8(curl(&[&format!("http://{metrics}/metrics")]).stdout).unwrap();
    let series = format!("ferry_auth_checks_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighups_under_load_keep_every_verified_password_and_a_changed_entry_takes_effect_at_once()
{
    let dir = tempfile::tempdir().unwrap();
    let ci = htpasswd_line("ci", "ci-password");
    let users = write_file(dir.path(), "users", &format!("{HTPASSWD_B_LINE}\n{ci}\n"));
    let metrics = format!("127.0.0.1:{}", ferry_testkit::closed_port());
    let users_env = users.display().to_string();
    let command = serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_AUTH_FILE", &users_env),
            ("FERRY_METRICS_LISTEN", &metrics),
            ("FERRY_LOG", "info,ferry::access=off"),
        ],
    );
    let (ferry, address) = serving(command);
    // Nothing is stored: a 404 once in.
    let url = format!("http://{address}/{MODULE}/@v/list");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (url, stop) = (url.clone(), stop.clone());
        let authorization = match i % 2 {
            0 => basic("builder", BUILDER_PASSWORD),
            _ => basic("ci", "ci-password"),
        };
        load.spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) && statuses.len() < 2000 {
                let reply = request("GET", &url, &[("authorization", &authorization)]).await;
                statuses.push(reply.status);
            }
            statuses
        });
    }
    let reloaded = |count: usize| {
        ferry
            .log()
            .matches("SIGHUP: authentication file reloaded")
            .count()
            >= count
    };
    for count in 1..=20 {
        ferry.signal("-HUP");
        ferry.wait_for("the reload", || reloaded(count));
    }
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = load.join_all().await.concat();
    assert!(statuses.len() >= 8, "{} requests", statuses.len());
    assert!(statuses.iter().all(|status| *status == 404), "{statuses:?}");
    // One bcrypt run per user, however many requests and reloads.
    assert_eq!(auth_checks(&metrics, "verified"), 2);
    assert_eq!(auth_checks(&metrics, "wrong"), 0);

    // builder's password changes: the old one is refused at once, the new one verified; ci stays remembered.
    let changed = htpasswd_line("builder", "rotated");
    std::fs::write(&users, format!("{changed}\n{ci}\n")).unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the reload", || reloaded(21));
    let as_user = |user: &str, password: &str| {
        let credentials = format!("{user}:{password}");
        curl_status(&url, Some(&credentials))
    };
    assert_eq!(as_user("builder", BUILDER_PASSWORD), "401");
    assert_eq!(as_user("builder", "rotated"), "404");
    assert_eq!(as_user("ci", "ci-password"), "404");
    assert_eq!(auth_checks(&metrics, "verified"), 3);
    assert_eq!(auth_checks(&metrics, "wrong"), 1);
    let mut ferry = ferry;
    assert!(ferry.terminate().success());
}

/// [`secured`] with `vars` added.
async fn secured_with(
    dir: &Path,
    users: &str,
    tls: Option<&ferry_testkit::ServerPair>,
    vars: &[(&str, &str)],
) -> Ferry {
    let file = write_file(dir, "users", users).display().to_string();
    let mut all: Vec<(&str, String)> = vec![
        ("FERRY_DOWNLOAD_MODE", "none".to_string()),
        ("FERRY_AUTH_FILE", file),
    ];
    if let Some(pair) = tls {
        all.push(("FERRY_TLS_CERT", pair.cert.display().to_string()));
        all.push(("FERRY_TLS_KEY", pair.key.display().to_string()));
    }
    all.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ferry::from_env(&ferry_env(dir, None, &all), &Flags::default()).await
}

/// What the 401 says over plain HTTP: the go command sends no credentials there.
const OVER_HTTP: &str = "the go command sends them over HTTPS only: over this plain http:// address only clients that send them in the clear get in (curl -u USER:PASSWORD); for the go command, reach Ferry over https://";
/// What the 401 says over HTTPS: where the go command takes credentials from.
const OVER_HTTPS: &str = "for the go command, put them in .netrc or GOAUTH (or in the GOPROXY URL, https://USER:PASSWORD@HOST)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_401_says_what_works_over_plain_http_and_what_needs_https() {
    let dir = tempfile::tempdir().unwrap();
    // Plain HTTP, with 127.0.0.2 a trusted proxy (one that terminates TLS and says so).
    let plain = secured_with(
        dir.path(),
        HTPASSWD_B_LINE,
        None,
        &[("FERRY_TRUSTED_PROXIES", "127.0.0.2")],
    )
    .await;
    let refused = ferry_get(&plain, None, MOD_PATH, &[]).await;
    assert_eq!(refused.status, 401);
    assert!(refused.text().contains(OVER_HTTP), "{}", refused.text());
    assert!(!refused.text().contains(OVER_HTTPS), "{}", refused.text());
    // A wrong password over plain HTTP (curl's way in): the same words.
    let wrong = basic("builder", "wrong");
    let refused = ferry_get(&plain, None, MOD_PATH, &[("authorization", &wrong)]).await;
    assert_eq!(refused.status, 401);
    assert!(refused.text().contains(OVER_HTTP), "{}", refused.text());
    // Through the trusted proxy that says the client came over HTTPS: the HTTPS words. The same header from
    // any other address is not believed.
    let proto = [("x-forwarded-proto", "https")];
    let via_proxy = ferry_get(&plain, Some("127.0.0.2"), MOD_PATH, &proto).await;
    assert_eq!(via_proxy.status, 401);
    assert!(
        via_proxy.text().contains(OVER_HTTPS),
        "{}",
        via_proxy.text()
    );
    let forged = ferry_get(&plain, Some("127.0.0.3"), MOD_PATH, &proto).await;
    assert!(forged.text().contains(OVER_HTTP), "{}", forged.text());
    plain.stop().await;

    // Ferry's own TLS: the HTTPS words, as curl sees them.
    let ca = TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir.path(), "ca.pem").display().to_string();
    let pair = ca.issue(dir.path(), "server");
    let over_tls = secured_with(dir.path(), HTPASSWD_B_LINE, Some(&pair), &[]).await;
    let url = format!("{}/{MOD_PATH}", over_tls.https_url());
    let output = tokio::task::spawn_blocking(move || {
        curl(&["--cacert", &ca_file, "-w", "\n%{http_code}", &url])
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(said.ends_with("\n401"), "{said}");
    assert!(
        said.contains(OVER_HTTPS) && !said.contains(OVER_HTTP),
        "{said}"
    );
    over_tls.stop().await;
}

/// A GET of `path` from the local address `from` (127.0.0.1 when none) with `headers`.
async fn ferry_get(
    ferry: &Ferry,
    from: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let from = from.map(|address| address.parse().unwrap());
    request_from(from, "GET", &format!("{}/{path}", ferry.url()), headers).await
}

#[test]
fn authentication_without_tls_is_warned_about_at_start_up_and_with_tls_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let users = write_file(dir.path(), "users", HTPASSWD_B_LINE)
        .display()
        .to_string();
    let warning = "authentication is on but Ferry serves plain HTTP: the go command sends credentials over HTTPS only";
    let (mut plain, _) = serving(serve_memory(
        dir.path(),
        &[("FERRY_DOWNLOAD_MODE", "none"), ("FERRY_AUTH_FILE", &users)],
    ));
    let log = plain.log();
    let line = log
        .lines()
        .find(|l| l.contains(warning))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("WARN") && line.contains("tls_cert and tls_key"),
        "{line}"
    );
    assert!(plain.terminate().success());

    let pair = TestCa::new("Ferry test CA").issue(dir.path(), "server");
    let (cert, key) = (
        pair.cert.display().to_string(),
        pair.key.display().to_string(),
    );
    let (mut over_tls, _) = serving(serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_AUTH_FILE", &users),
            ("FERRY_TLS_CERT", &cert),
            ("FERRY_TLS_KEY", &key),
        ],
    ));
    assert!(!over_tls.log().contains(warning), "{}", over_tls.log());
    assert!(over_tls.terminate().success());
}

/// The access log's JSON line for the request of `path`, once written.
fn access_line(process: &ferry_testkit::Process, path: &str) -> serde_json::Value {
    let quoted = format!("\"path\":\"{path}\"");
    process.wait_for("the access log line", || process.log().contains(&quoted));
    process
        .log()
        .lines()
        .filter(|line| line.contains(&quoted))
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|line| line["message"] == "request")
        .unwrap_or_else(|| panic!("no access line for {path}: {}", process.log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_names_the_user_and_the_client_believing_x_forwarded_for_only_from_a_trusted_proxy()
 {
    let dir = tempfile::tempdir().unwrap();
    let users = write_file(dir.path(), "users", HTPASSWD_B_LINE)
        .display()
        .to_string();
    let (mut ferry, addr) = serving(serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_AUTH_FILE", &users),
            ("FERRY_LOG_FORMAT", "json"),
            ("FERRY_TRUSTED_PROXIES", "127.0.0.2, 10.0.0.0/8"),
        ],
    ));
    let get = |from: &str, path: &str, headers: Vec<(&'static str, String)>| {
        let url = format!("http://{addr}{path}");
        let from = from.parse().unwrap();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request_from(Some(from), "GET", &url, &headers).await.status
        }
    };
    let right = ("authorization", basic("builder", BUILDER_PASSWORD));
    let forwarded = (
        "x-forwarded-for",
        "203.0.113.9, 198.51.100.4, 10.1.1.1".to_string(),
    );

    // Through the trusted proxy, verified and then remembered: the user, and the right-most forwarded
    // address that is not a trusted proxy (the client's own claim, 203.0.113.9, is not believed).
    for path in ["/a.example/m/@v/list", "/b.example/m/@v/list"] {
        let status = get("127.0.0.2", path, vec![right.clone(), forwarded.clone()]).await;
        assert_eq!(status, 404, "{path}");
        let line = access_line(&ferry, path);
        assert_eq!(line["user"], "builder", "{line}");
        assert_eq!(line["client"], "198.51.100.4", "{line}");
        assert_eq!(line["status"], 404, "{line}");
    }
    // The same header from an address that is not a trusted proxy: the peer.
    let path = "/c.example/m/@v/list";
    assert_eq!(
        get("127.0.0.3", path, vec![right.clone(), forwarded.clone()]).await,
        404
    );
    let line = access_line(&ferry, path);
    assert_eq!(
        (&line["user"], &line["client"]),
        (&"builder".into(), &"127.0.0.3".into()),
        "{line}"
    );
    // Refused: the client, and no user (the name it tried is not an identity).
    let path = "/d.example/m/@v/list";
    let wrong = ("authorization", basic("builder", "wrong"));
    assert_eq!(get("127.0.0.2", path, vec![wrong]).await, 401);
    let line = access_line(&ferry, path);
    assert!(line.get("user").is_none(), "{line}");
    assert_eq!(line["client"], "127.0.0.2", "{line}");
    // A health probe needs no credentials and has no user.
    assert_eq!(get("127.0.0.4", "/healthz", vec![]).await, 200);
    let line = access_line(&ferry, "/healthz");
    assert!(line.get("user").is_none(), "{line}");
    assert_eq!(line["client"], "127.0.0.4", "{line}");
    assert!(ferry.terminate().success());
}

#[test]
fn a_trusted_proxy_that_is_not_an_address_or_network_stops_start_up_where_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "ferry.toml",
        "listen = \"127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.0/8\", \"10.1.2.3/16\"]\n",
    );
    let output = ferry()
        .current_dir(dir.path())
        .env("FERRY_STORAGE", "memory://")
        .env("FERRY_DOWNLOAD_MODE", "none")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:35: trusted_proxies: \"10.1.2.3/16\" has bits set past its /16 prefix; write \"10.1.0.0/16\"",
            config.display()
        )),
        "{stderr}"
    );
    let output = ferry()
        .current_dir(dir.path())
        .env("FERRY_STORAGE", "memory://")
        .env("FERRY_DOWNLOAD_MODE", "none")
        .env("FERRY_TRUSTED_PROXIES", "10.0.0.0/8,ingress")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("environment variable FERRY_TRUSTED_PROXIES: trusted_proxies: \"ingress\" is not an address or a network"),
        "{stderr}"
    );
}
