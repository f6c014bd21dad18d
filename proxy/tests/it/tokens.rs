//! Static bearer tokens (`token_file`): `ferry token create/ls/revoke` as a process, the server taking a
//! revoked token away on SIGHUP, the real go command sending a token through a GOAUTH command over HTTPS,
//! and a malformed file stopping start-up where it is wrong.

use ferry_testkit::curl;

use crate::harness::{
    ferry, go_download_over_tls, go_said, goauth_command, secured_with_stored, serve_memory,
    serving, write_file,
};

const MODULE: &str = "example.com/private/lib";

/// `ferry token ARGS --file FILE`: whether it succeeded, stdout, stderr.
fn token(file: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = ferry()
        .arg("token")
        .args(args)
        .arg("--file")
        .arg(file)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// curl's status code and body for `url` with `Authorization: Bearer TOKEN`.
fn curl_bearer(url: &str, token: &str) -> (String, String) {
    let header = format!("Authorization: Bearer {token}");
    let output = curl(&["-s", "-w", "\n%{http_code}", "-H", &header, url]);
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_string(), body.to_string())
}

#[test]
fn ferry_token_create_ls_and_revoke_and_a_revoked_token_is_refused_after_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    let (ok, ci, said) = token(
        &file,
        &[
            "create",
            "--name",
            "ci-release",
            "--group",
            "release",
            "--group",
            "ci",
        ],
    );
    assert!(ok, "{said}");
    let ci = ci.trim().to_string();
    assert!(ci.starts_with("ferry_"), "{ci}");
    assert!(said.contains("shown only now"), "{said}");
    let (ok, nightly, said) = token(&file, &["create", "--name", "nightly"]);
    assert!(ok, "{said}");
    let nightly = nightly.trim().to_string();
    let (ok, _, said) = token(&file, &["create", "--name", "nightly"]);
    assert!(
        !ok && said.contains("a token named \"nightly\" exists"),
        "{said}"
    );
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(
        !stored.contains(&ci) && !stored.contains(&nightly),
        "{stored}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let (ok, listed, said) = token(&file, &["ls"]);
    assert!(ok, "{said}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[1].starts_with("ci-release ") && lines[1].ends_with("release,ci"),
        "{listed}"
    );
    assert!(lines[2].starts_with("nightly "), "{listed}");
    assert!(
        !listed.contains("sha256") && !listed.contains("ferry_"),
        "{listed}"
    );

    let file_env = file.display().to_string();
    let command = serve_memory(
        dir.path(),
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_TOKEN_FILE", &file_env),
        ],
    );
    let (mut server, address) = serving(command);
    assert!(
        server.log().contains("bearer tokens accepted"),
        "{}",
        server.log()
    );
    let url = format!("http://{address}/{MODULE}/@v/list");
    // Nothing is stored: 404 once in, 401 before.
    assert_eq!(curl_bearer(&url, &ci).0, "404");
    assert_eq!(curl_bearer(&url, &nightly).0, "404");
    let (status, body) = curl_bearer(&url, "ferry_madeup");
    assert_eq!(status, "401");
    assert!(
        body.contains("the bearer token is not known here"),
        "{body}"
    );
    assert!(!body.contains("ferry_madeup"), "{body}");
    // Without a token: the 401 names what works (no auth_file: a bearer token only).
    let (status, body) = curl_bearer(&url, "");
    assert_eq!(status, "401");
    assert!(body.contains("needs a bearer token"), "{body}");

    let (ok, _, said) = token(&file, &["revoke", "ci-release"]);
    assert!(ok, "{said}");
    let (ok, _, said) = token(&file, &["revoke", "ci-release"]);
    assert!(
        !ok && said.contains("no token is named \"ci-release\""),
        "{said}"
    );
    server.signal("-HUP");
    server.wait_for("the reload", || {
        server.log().contains("SIGHUP: token file reloaded")
    });
    let (status, body) = curl_bearer(&url, &ci);
    assert_eq!(status, "401", "{body}");
    assert_eq!(curl_bearer(&url, &nightly).0, "404");

    // A file broken on reload is reported with its place, and the tokens in force stay.
    std::fs::write(&file, "nightly sha256:abc 2026-12-06T15:07:26Z\n").unwrap();
    server.signal("-HUP");
    server.wait_for("the report of the bad file", || {
        server.log().contains("keeping the tokens in force")
    });
    assert!(
        server
            .log()
            .contains(&format!("{}:1:9: token \"nightly\"", file.display())),
        "{}",
        server.log()
    );
    assert_eq!(curl_bearer(&url, &nightly).0, "404");
    assert!(server.terminate().success());
}

#[test]
fn a_malformed_token_file_stops_start_up_naming_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "tokens",
        &format!("# fleet\nci sha256:{} 06/12/2026\n", "0f".repeat(32)),
    );
    let output = ferry()
        .current_dir(dir.path())
        .env("FERRY_STORAGE", "memory://")
        .env("FERRY_LISTEN", "127.0.0.1:0")
        .env("FERRY_TOKEN_FILE", &file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!(
            "invalid token file: {}:2:76: token \"ci\": \"06/12/2026\" is not an RFC 3339 time",
            file.display()
        )),
        "{said}"
    );
    assert!(!said.contains(&"0f".repeat(32)), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_downloads_with_a_bearer_token_from_goauth_and_a_revoked_one_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    let kept = ferry::tokens::create(&file, "builders", &["ci".to_string()]).unwrap();
    let revoked = ferry::tokens::create(&file, "old", &[]).unwrap();
    ferry::tokens::revoke(&file, "old").unwrap();
    let file_env = file.display().to_string();
    let (ferry, ca) =
        secured_with_stored(dir.path(), &[("FERRY_TOKEN_FILE", &file_env)], MODULE).await;
    let url = ferry.https_url();

    let goauth = goauth_command(dir.path(), "goauth.sh", &url, &format!("Bearer {kept}"));
    let output = go_download_over_tls(dir.path(), &url, &ca, MODULE, &[("GOAUTH", &goauth)]).await;
    assert!(output.status.success(), "{}", go_said(&output));
    let downloaded: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        downloaded["Sum"].as_str().unwrap().starts_with("h1:"),
        "{downloaded}"
    );

    let goauth = goauth_command(dir.path(), "old.sh", &url, &format!("Bearer {revoked}"));
    let output = go_download_over_tls(dir.path(), &url, &ca, MODULE, &[("GOAUTH", &goauth)]).await;
    let said = go_said(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("401 Unauthorized") && said.contains("the bearer token is not known here"),
        "{said}"
    );
    assert!(!said.contains(&revoked), "{said}");

    ferry.stop().await;
}

/// A Ferry filling from `upstream` with a fill budget of one an hour beyond a burst of 2, and `vars`.
async fn budgeted(
    dir: &std::path::Path,
    upstream: &ferry_testkit::Upstream,
    vars: &[(&str, &str)],
) -> crate::harness::Ferry {
    let mut all = vec![
        ("FERRY_DOWNLOAD_MODE", "sync"),
        ("FERRY_FILL_RATE", "1/h"),
        ("FERRY_FILL_BURST", "2"),
    ];
    all.extend_from_slice(vars);
    crate::harness::Ferry::from_env(
        &crate::harness::ferry_env(dir, Some(&upstream.url()), &all),
        &ferry::config::Flags::default(),
    )
    .await
}

fn versions(module: &str, count: usize) -> Vec<ferry_testkit::FixtureModule> {
    (0..count)
        .map(|minor| ferry_testkit::FixtureModule::package(module, &format!("v1.{minor}.0")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_fill_budget_gets_429_with_retry_after_while_stored_answers_and_other_tokens_flow()
 {
    let dir = tempfile::tempdir().unwrap();
    let upstream = ferry_testkit::Upstream::start(versions(MODULE, 4)).await;
    let file = dir.path().join("tokens");
    let runaway = ferry::tokens::create(&file, "runaway", &[]).unwrap();
    let other = ferry::tokens::create(&file, "other", &[]).unwrap();
    let file_env = file.display().to_string();
    let ferry = budgeted(dir.path(), &upstream, &[("FERRY_TOKEN_FILE", &file_env)]).await;
    let get = |token: &str, version: &str| {
        let url = format!("{}/{MODULE}/@v/{version}.mod", ferry.url());
        let header = format!("Bearer {token}");
        async move { crate::harness::request("GET", &url, &[("authorization", &header)]).await }
    };
    assert_eq!(get(&runaway, "v1.0.0").await.status, 200);
    assert_eq!(get(&runaway, "v1.1.0").await.status, 200);
    let refused = get(&runaway, "v1.2.0").await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let wait: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(
        refused
            .text()
            .contains("token:runaway has used its budget of fills"),
        "{}",
        refused.text()
    );
    // What is stored is still served to it, and the other token's fills go on.
    assert_eq!(get(&runaway, "v1.0.0").await.status, 200);
    assert_eq!(get(&runaway, "v1.1.0").await.status, 200);
    assert_eq!(get(&other, "v1.2.0").await.status, 200);
    assert_eq!(get(&runaway, "v1.2.0").await.status, 200);
    assert_eq!(get(&runaway, "v1.3.0").await.status, 429);
    let metrics = crate::harness::request(
        "GET",
        &format!("{}/metrics", ferry.url()),
        &[("authorization", &format!("Bearer {other}"))],
    )
    .await
    .text();
    let refusals = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ferry_fill_budget_refusals_total "))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(refusals.parse::<u64>().unwrap() >= 2, "{refusals}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_each_client_address_has_its_own_fill_budget() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = ferry_testkit::Upstream::start(versions(MODULE, 4)).await;
    let ferry = budgeted(dir.path(), &upstream, &[]).await;
    let get = |from: &str, version: &str| {
        let url = format!("{}/{MODULE}/@v/{version}.info", ferry.url());
        let from: std::net::IpAddr = from.parse().unwrap();
        async move {
            crate::harness::request_from(Some(from), "GET", &url, &[])
                .await
                .status
        }
    };
    assert_eq!(get("127.0.0.1", "v1.0.0").await, 200);
    assert_eq!(get("127.0.0.1", "v1.1.0").await, 200);
    assert_eq!(get("127.0.0.1", "v1.2.0").await, 429);
    assert_eq!(get("127.0.0.2", "v1.2.0").await, 200);
    assert_eq!(get("127.0.0.1", "v1.2.0").await, 200);
    ferry.stop().await;
}
