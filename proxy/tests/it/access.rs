//! Access rules (`[[access]]`) and the audit trail (`audit_log`): two users of one `auth_file`, alice who
//! may read (and administer) `corp.example.com/secret` and bob who may not, against every endpoint that
//! names a module, the catalog and the index, the real go command over HTTPS, and the admin API; each
//! decision read back from the audit trail as JSON.

use std::path::{Path, PathBuf};

use ferry::config::Flags;
use ferry_testkit::{FixtureModule, TestCa, Upstream, curl, eventually, htpasswd_line};
use serde_json::Value;

use crate::harness::{
    Ferry, Reply, basic_authorization, ferry, ferry_env, go_said, go_with, netrc_file, request,
    run_async, save, serve_memory, serving, write_file,
};

const SECRET: &str = "corp.example.com/secret/lib";
/// Under the same rule as `SECRET`, never stored.
const MISSING: &str = "corp.example.com/secret/gone";
const OPEN: &str = "example.com/open/lib";
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// alice (and the token `ops`) read and administer the secret modules and administer everything; everyone
/// reads the rest.
const RULES: &str = r#"
[[access]]
modules = ["corp.example.com/secret"]
read = ["user:alice", "token:ops"]
admin = ["user:alice", "token:ops"]

[[access]]
modules = ["*"]
read = ["*"]
admin = ["user:alice", "token:ops"]
"#;

/// The configuration file: `RULES` and the audit trail in `dir/audit.log`; its path.
fn config_file(dir: &Path) -> PathBuf {
    let audit = dir.join("audit.log");
    let text = format!("audit_log = {:?}\n{RULES}", audit.display().to_string());
    write_file(dir, "ferry.toml", &text)
}

/// The htpasswd file of alice and bob in `dir`; its path.
fn users_file(dir: &Path) -> PathBuf {
    let users = format!(
        "{}\n{}\n",
        htpasswd_line(ALICE.0, ALICE.1),
        htpasswd_line(BOB.0, BOB.1)
    );
    write_file(dir, "users", &users)
}

/// Ferry with alice and bob as its users, `RULES`, and `vars` more settings (download mode none unless
/// given), from `dir`.
async fn guarded(dir: &Path, goproxy: Option<&str>, vars: &[(&str, &str)]) -> Ferry {
    let users = users_file(dir).display().to_string();
    let config = config_file(dir).display().to_string();
    let mut all = vec![
        ("FERRY_DOWNLOAD_MODE", "none"),
        ("FERRY_AUTH_FILE", users.as_str()),
        ("FERRY_CONFIG", config.as_str()),
        ("FERRY_SUMDB_PRIVATE", "corp.example.com"),
    ];
    all.extend_from_slice(vars);
    Ferry::from_env(&ferry_env(dir, goproxy, &all), &Flags::default()).await
}

async fn get_as(ferry: &Ferry, path: &str, (user, password): (&str, &str)) -> Reply {
    let authorization = basic_authorization(user, password);
    let url = format!("{}/{path}", ferry.url());
    request("GET", &url, &[("authorization", authorization.as_str())]).await
}

/// The audit trail's lines, parsed.
fn audit_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each audit line is JSON"))
        .collect()
}

/// Waits for the audit line of `action` by `user` on `module`, and returns it.
async fn audited(dir: &Path, action: &str, user: &str, module: &str) -> Value {
    let find = || {
        audit_lines(dir).into_iter().find(|line| {
            line["action"] == action && line["user"] == user && line["module"] == module
        })
    };
    eventually(
        &format!("the audit trail has {action} by {user} of {module}"),
        || {
            let found = find().is_some();
            async move { found }
        },
    )
    .await;
    find().unwrap()
}

/// Every endpoint that names a module, as the paths for `module`.
fn module_paths(module: &str) -> Vec<String> {
    vec![
        format!("{module}/@v/v1.0.0.info"),
        format!("{module}/@v/v1.0.0.mod"),
        format!("{module}/@v/v1.0.0.zip"),
        format!("{module}/@v/list"),
        format!("{module}/@latest"),
        format!("cached-only/{module}/@v/v1.0.0.zip"),
        format!("cached-only/{module}/@v/list"),
        format!("sumdb/sum.golang.org/lookup/{module}@v1.0.0"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_the_rules_refuse_gets_the_same_404_for_a_stored_module_as_for_a_missing_one_on_every_endpoint()
 {
    let dir = tempfile::tempdir().unwrap();
    let ferry = guarded(dir.path(), None, &[]).await;
    let fixture = FixtureModule::package(SECRET, "v1.0.0");
    save(ferry.store().as_ref(), &fixture).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(OPEN, "v1.0.0"),
    )
    .await;

    for (stored, missing) in module_paths(SECRET).iter().zip(module_paths(MISSING)) {
        let allowed = get_as(&ferry, stored, ALICE).await;
        let denied = get_as(&ferry, stored, BOB).await;
        let absent = get_as(&ferry, &missing, BOB).await;
        if stored.starts_with("sumdb/") {
            // alice reaches the relay, which refuses a private module's lookup itself.
            assert_eq!(allowed.status, 403, "{stored}: {}", allowed.text());
        } else {
            assert_eq!(allowed.status, 200, "{stored}: {}", allowed.text());
        }
        assert_eq!(denied.status, 404, "{stored}: {}", denied.text());
        assert!(
            denied.text().starts_with("not found: "),
            "{}",
            denied.text()
        );
        // Nothing in the answer tells a stored module from one that does not exist.
        assert_eq!(
            denied.text().replace(SECRET, MISSING),
            absent.text(),
            "{stored}"
        );
        assert_eq!(denied.headers.len(), absent.headers.len(), "{stored}");
        for name in ["content-type", "cache-control"] {
            assert_eq!(denied.header(name), absent.header(name), "{stored}: {name}");
        }
    }
    // alice gets the bytes; bob reads the module no rule restricts.
    let zip = get_as(&ferry, &format!("{SECRET}/@v/v1.0.0.zip"), ALICE).await;
    assert_eq!(zip.body.as_ref(), fixture.zip_bytes().as_slice());
    let open = get_as(&ferry, &format!("{OPEN}/@v/v1.0.0.mod"), BOB).await;
    assert_eq!(open.status, 200, "{}", open.text());

    // The trail: alice's zip served, bob's refusal, each with who, how, from where and the request id.
    let fetch = audited(dir.path(), "fetch", "alice", SECRET).await;
    assert_eq!(fetch["version"], "v1.0.0");
    assert_eq!(fetch["via"], "password");
    assert_eq!(fetch["client"], "127.0.0.1");
    assert_eq!(fetch["request_id"].as_str().unwrap().len(), 16, "{fetch}");
    assert!(fetch["time"].as_str().unwrap().ends_with('Z'), "{fetch}");
    let denied = audited(dir.path(), "denied", "bob", SECRET).await;
    assert_eq!(denied["version"], "v1.0.0", "{denied}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_path_prefix_the_rules_apply_alike() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = guarded(dir.path(), None, &[("FERRY_PATH_PREFIX", "/goproxy")]).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(SECRET, "v1.0.0"),
    )
    .await;
    for path in module_paths(SECRET) {
        let path = format!("goproxy/{path}");
        let denied = get_as(&ferry, &path, BOB).await;
        assert_eq!(denied.status, 404, "{path}: {}", denied.text());
        assert!(
            denied.text().contains("no such module"),
            "{path}: {}",
            denied.text()
        );
        if !path.contains("/sumdb/") {
            let allowed = get_as(&ferry, &path, ALICE).await;
            assert_eq!(allowed.status, 200, "{path}: {}", allowed.text());
        }
    }
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_every_request_is_anonymous_and_star_does_not_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules = format!(
        "[[access]]\nmodules = [\"{OPEN}\"]\nread = [\"anonymous\"]\n\n[[access]]\nmodules = [\"*\"]\nread = [\"*\"]\n"
    );
    let config = write_file(dir.path(), "ferry.toml", &rules);
    let vars = [
        ("FERRY_DOWNLOAD_MODE", "none"),
        ("FERRY_CONFIG", config.to_str().unwrap()),
    ];
    let ferry = Ferry::from_env(&ferry_env(dir.path(), None, &vars), &Flags::default()).await;
    for module in [OPEN, SECRET] {
        save(
            ferry.store().as_ref(),
            &FixtureModule::package(module, "v1.0.0"),
        )
        .await;
    }
    let open = ferry.get(&format!("{OPEN}/@v/v1.0.0.mod")).await;
    assert_eq!(open.status, 200, "{}", open.text());
    let hidden = ferry.get(&format!("{SECRET}/@v/v1.0.0.mod")).await;
    assert_eq!(hidden.status, 404, "{}", hidden.text());
    assert!(
        hidden.text().contains("no such module"),
        "{}",
        hidden.text()
    );
    ferry.stop().await;
}

/// Every entry of the catalog, page by page (`pagesize`), as `module@version`.
async fn catalog_as(ferry: &Ferry, who: (&str, &str), pagesize: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let mut path = format!("catalog?pagesize={pagesize}");
        if let Some(token) = &token {
            path.push_str(&format!("&token={token}"));
        }
        let page: Value = serde_json::from_slice(&get_as(ferry, &path, who).await.body).unwrap();
        for entry in page["modules"].as_array().unwrap() {
            seen.push(format!(
                "{}@{}",
                entry["module"].as_str().unwrap(),
                entry["version"].as_str().unwrap()
            ));
        }
        match page["next"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => return seen,
        }
    }
    panic!("the catalog did not end within 20 pages: {seen:?}");
}

/// The modules of the first two entries of the index.
async fn index_as(ferry: &Ferry, who: (&str, &str)) -> Vec<String> {
    let reply = get_as(ferry, "index?limit=2", who).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply
        .text()
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["Path"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_and_the_index_leave_out_what_the_caller_may_not_read_and_page_through_the_rest()
 {
    let dir = tempfile::tempdir().unwrap();
    let ferry = guarded(dir.path(), None, &[]).await;
    // Hidden entries before, between and after the readable ones.
    for (module, version) in [
        ("a.example/first", "v1.0.0"),
        (SECRET, "v1.0.0"),
        (SECRET, "v1.1.0"),
        ("corp.example.com/secret/other", "v0.1.0"),
        (OPEN, "v1.0.0"),
        ("zz.example/last", "v2.0.0"),
        ("corp.example.com/secret/zeta", "v0.1.0"),
    ] {
        save(
            ferry.store().as_ref(),
            &FixtureModule::package(module, version),
        )
        .await;
    }
    let everything = catalog_as(&ferry, ALICE, 1000).await;
    assert_eq!(everything.len(), 7, "{everything:?}");
    let readable = vec![
        "a.example/first@v1.0.0".to_string(),
        format!("{OPEN}@v1.0.0"),
        "zz.example/last@v2.0.0".to_string(),
    ];
    assert_eq!(catalog_as(&ferry, BOB, 1000).await, readable);
    // One entry a page: every readable one once, none hidden, and the last page says so.
    assert_eq!(catalog_as(&ferry, BOB, 1).await, readable);
    assert_eq!(catalog_as(&ferry, BOB, 2).await, readable);

    // The limit counts readable entries: bob's two are the first two he may read.
    assert_eq!(index_as(&ferry, ALICE).await, ["a.example/first", SECRET]);
    assert_eq!(index_as(&ferry, BOB).await, ["a.example/first", OPEN]);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_downloads_what_netrc_credentials_may_read_and_gets_not_found_for_the_rest()
{
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir.path(), "ca.pem").display().to_string();
    let pair = ca.issue(dir.path(), "server");
    let (cert, key) = (
        pair.cert.display().to_string(),
        pair.key.display().to_string(),
    );
    let vars = [
        ("FERRY_TLS_CERT", cert.as_str()),
        ("FERRY_TLS_KEY", key.as_str()),
    ];
    let ferry = guarded(dir.path(), None, &vars).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(SECRET, "v1.0.0"),
    )
    .await;
    let url = ferry.https_url();
    let download = |user: (&'static str, &'static str)| {
        let (dir, url, ca_file) = (dir.path(), url.clone(), ca_file.clone());
        async move {
            let netrc = netrc_file(
                dir,
                &format!("netrc-{}", user.0),
                ferry.addr,
                user.0,
                user.1,
            );
            let vars = [
                ("NETRC", netrc.as_str()),
                ("SSL_CERT_FILE", ca_file.as_str()),
            ];
            let args = ["mod", "download", "-json", &format!("{SECRET}@v1.0.0")];
            go_with(dir, &url, &vars, &args).await
        }
    };
    let allowed = download(ALICE).await;
    assert!(allowed.status.success(), "{}", go_said(&allowed));
    let downloaded: Value = serde_json::from_slice(&allowed.stdout).unwrap();
    assert!(
        downloaded["Sum"].as_str().unwrap().starts_with("h1:"),
        "{downloaded}"
    );

    // bob's go command is told the module is not there (a 404, not a 403 that says it exists).
    let denied = download(BOB).await;
    let said = go_said(&denied);
    assert!(!denied.status.success(), "{said}");
    assert!(
        said.contains("404 Not Found") && said.contains("no such module"),
        "{said}"
    );
    assert!(
        !said.contains("alice") && !said.contains("access"),
        "{said}"
    );
    let line = audited(dir.path(), "denied", "bob", SECRET).await;
    assert_eq!(line["via"], "password", "{line}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_from_the_upstream_is_audited_with_the_caller_and_the_zip_it_served() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(vec![FixtureModule::package(SECRET, "v1.2.0")]).await;
    let vars = [
        ("FERRY_DOWNLOAD_MODE", "sync"),
        ("FERRY_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let ferry = guarded(dir.path(), Some(&upstream.url()), &vars).await;
    // Through a trusted proxy: the trail names the client it forwarded.
    let authorization = basic_authorization(ALICE.0, ALICE.1);
    let headers = [
        ("authorization", authorization.as_str()),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    let url = format!("{}/{SECRET}/@v/v1.2.0.zip", ferry.url());
    let zip = request("GET", &url, &headers).await;
    assert_eq!(zip.status, 200, "{}", zip.text());
    let fill = audited(dir.path(), "fill", "alice", SECRET).await;
    assert_eq!(fill["version"], "v1.2.0", "{fill}");
    assert_eq!(fill["client"], "203.0.113.9", "{fill}");
    let fetch = audited(dir.path(), "fetch", "alice", SECRET).await;
    assert_eq!(fetch["request_id"], zip.header("x-request-id"), "{fetch}");
    // bob's request never reaches the upstream: no fill of a module he may not read.
    let before = upstream.requests().len();
    let denied = get_as(&ferry, &format!("{SECRET}/@v/v1.3.0.zip"), BOB).await;
    assert_eq!(denied.status, 404, "{}", denied.text());
    assert_eq!(
        upstream.requests().len(),
        before,
        "{:?}",
        upstream.requests()
    );
    ferry.stop().await;
}

/// `ferry admin ARGS --url URL` as `who` (`--user`, its password in FERRY_ADMIN_PASSWORD), or without
/// credentials.
async fn admin_as(url: &str, who: Option<(&str, &str)>, args: &[&str]) -> (bool, String) {
    admin_logged_in(url, who, None, args).await
}

/// `ferry admin ARGS --url URL` with `--user` and its password, and/or `FERRY_ADMIN_TOKEN=token`.
async fn admin_logged_in(
    url: &str,
    who: Option<(&str, &str)>,
    token: Option<&str>,
    args: &[&str],
) -> (bool, String) {
    let mut command = ferry();
    command.arg("admin").args(args).args(["--url", url]);
    if let Some((user, password)) = who {
        command
            .args(["--user", user])
            .env("FERRY_ADMIN_PASSWORD", password);
    }
    if let Some(token) = token {
        command.env("FERRY_ADMIN_TOKEN", token);
    }
    run_async(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_asks_for_credentials_and_the_admin_right_of_the_module_and_audits_each_change()
 {
    let dir = tempfile::tempdir().unwrap();
    let ferry = guarded(dir.path(), None, &[]).await;
    for version in ["v1.0.0", "v1.1.0"] {
        save(
            ferry.store().as_ref(),
            &FixtureModule::package(SECRET, version),
        )
        .await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let auth = ferry::Gate::of(
        Some(std::sync::Arc::new(
            ferry::Auth::load(&dir.path().join("users")).unwrap(),
        )),
        None,
        None,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(ferry::admin::api::run_admin_with(
        listener,
        ferry.proxy.admin(Default::default()),
        auth,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    let target = format!("{SECRET}@v1.0.0");

    let (ok, said) = admin_as(&url, None, &["delete", &target]).await;
    assert!(!ok && said.contains("401"), "{said}");
    let (ok, said) = admin_as(&url, Some(BOB), &["delete", &target]).await;
    assert!(
        !ok && said.contains("403") && said.contains("bob may not delete"),
        "{said}"
    );
    let (ok, said) = admin_as(&url, Some(BOB), &["gc", "--dry-run"]).await;
    assert!(!ok && said.contains("403"), "{said}");
    // bob's listing leaves out what he may not administer.
    let (ok, said) = admin_as(&url, Some(BOB), &["ls", "--json"]).await;
    assert!(ok && !said.contains(SECRET), "{said}");
    assert!(ferry.stored(SECRET, "v1.0.0").await);

    let (ok, said) = admin_as(&url, Some(ALICE), &["delete", &target]).await;
    assert!(ok, "{said}");
    assert!(!ferry.stored(SECRET, "v1.0.0").await);
    let blocked = format!("{SECRET}@v1.1.0");
    let (ok, said) = admin_as(&url, Some(ALICE), &["block", &blocked, "--reason", "CVE"]).await;
    assert!(ok, "{said}");
    // reindex, like gc, needs the admin right on every module: alice has it (each rule grants it).
    let (ok, said) = admin_as(&url, Some(ALICE), &["reindex"]).await;
    assert!(ok, "{said}");

    let denied = audited(dir.path(), "denied", "bob", SECRET).await;
    assert_eq!(denied["version"], "v1.0.0", "{denied}");
    assert_eq!(denied["client"], "127.0.0.1", "{denied}");
    let deleted = audited(dir.path(), "delete", "alice", SECRET).await;
    assert_eq!(deleted["version"], "v1.0.0", "{deleted}");
    let block = audited(dir.path(), "block", "alice", SECRET).await;
    assert_eq!(block["version"], "v1.1.0", "{block}");
    let _ = stop.send(());
    served.await.unwrap();
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_admin_logs_in_with_a_bearer_token_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = guarded(dir.path(), None, &[]).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(SECRET, "v1.0.0"),
    )
    .await;
    let tokens = dir.path().join("tokens");
    let mut tokens_of = Vec::new();
    for name in ["ops", "ci"] {
        let mut create = crate::harness::ferry();
        create
            .args(["token", "create", "--name", name, "--file"])
            .arg(&tokens);
        let (ok, said) = run_async(create).await;
        assert!(ok, "{said}");
        tokens_of.push(
            said.lines()
                .find(|line| line.starts_with("ferry_"))
                .unwrap()
                .to_string(),
        );
    }
    let (ops, ci) = (&tokens_of[0], &tokens_of[1]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let gate = ferry::Gate::of(
        None,
        Some(std::sync::Arc::new(ferry::Tokens::load(&tokens).unwrap())),
        None,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(ferry::admin::api::run_admin_with(
        listener,
        ferry.proxy.admin(Default::default()),
        gate,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    let target = format!("{SECRET}@v1.0.0");

    let (ok, said) =
        admin_logged_in(&url, None, Some("ferry_not-a-token"), &["delete", &target]).await;
    assert!(!ok && said.contains("401"), "{said}");
    let (ok, said) = admin_logged_in(&url, None, Some(ci), &["delete", &target]).await;
    assert!(
        !ok && said.contains("403") && said.contains("ci may not delete"),
        "{said}"
    );
    let (ok, said) = admin_logged_in(&url, Some(ALICE), Some(ops), &["delete", &target]).await;
    assert!(!ok && said.contains("log in with one of them"), "{said}");
    assert!(
        !said.contains(ops.as_str()),
        "the token is never shown: {said}"
    );
    assert!(ferry.stored(SECRET, "v1.0.0").await);
    let (ok, said) = admin_logged_in(&url, None, Some(ops), &["delete", &target]).await;
    assert!(ok, "{said}");
    assert!(!ferry.stored(SECRET, "v1.0.0").await);
    let deleted = audited(dir.path(), "delete", "ops", SECRET).await;
    assert_eq!(deleted["via"], "token", "{deleted}");
    let _ = stop.send(());
    served.await.unwrap();
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rule_stops_start_up_naming_its_file_line_and_column_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let text = "listen = \"127.0.0.1:0\"\n\n[[access]]\nmodules = [\"corp.example.com\"]\nread = [\"alice\"]\n";
    let config = write_file(dir.path(), "ferry.toml", text);
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .env("FERRY_CONFIG", &config)
        .env("FERRY_STORAGE", "memory://")
        .env("FERRY_DOWNLOAD_MODE", "none");
    let (ok, said) = run_async(command).await;
    assert!(!ok, "{said}");
    let place = format!("{}:5:9:", config.display());
    assert!(said.contains(&place), "{said}");
    assert!(
        said.contains("\"alice\" is not a caller") && said.contains("user:NAME"),
        "{said}"
    );
    // An audit trail in a directory that does not exist stops it too, where the setting is written.
    let text = "listen = \"127.0.0.1:0\"\naudit_log = \"/nonexistent-ferry-dir/audit.log\"\n";
    std::fs::write(&config, text).unwrap();
    let env = ferry_env(
        dir.path(),
        None,
        &[("FERRY_CONFIG", &config.display().to_string())],
    );
    let error = ferry::config::load(&Flags::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("{}:2:13: ", config.display())),
        "{error}"
    );
    assert!(
        error.contains("/nonexistent-ferry-dir does not exist"),
        "{error}"
    );
}

/// What `who` gets for `url`, by curl (the `ferry` binary is a process of its own).
fn curl_body(url: &str, (user, password): (&str, &str)) -> String {
    let output = curl(&["-s", "-u", &format!("{user}:{password}"), url]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn sighup_puts_new_rules_in_force_and_keeps_the_old_ones_when_the_new_ones_are_bad() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path()).display().to_string();
    let config = config_file(dir.path());
    let vars = [
        ("FERRY_AUTH_FILE", users.as_str()),
        ("FERRY_CONFIG", config.to_str().unwrap()),
        ("FERRY_DOWNLOAD_MODE", "none"),
    ];
    let (ferry, address) = serving(serve_memory(dir.path(), &vars));
    let url = format!("http://{address}/{SECRET}/@v/list");
    assert!(curl_body(&url, BOB).contains("no such module on this proxy"));

    // bob may read now: he gets the answer of an empty store.
    let text = std::fs::read_to_string(&config).unwrap();
    let granted = text.replacen(
        "read = [\"user:alice\", \"token:ops\"]",
        "read = [\"user:alice\", \"token:ops\", \"user:bob\"]",
        1,
    );
    assert_ne!(text, granted);
    std::fs::write(&config, &granted).unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the rules' reload", || {
        ferry.log().contains("SIGHUP: access rules reloaded")
    });
    let body = curl_body(&url, BOB);
    assert!(body.contains("no versions stored"), "{body}");

    // A bad rule is reported where it is written; the rules in force stay.
    std::fs::write(&config, granted.replacen("user:bob", "bob", 1)).unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the report of the bad rule", || {
        ferry.log().contains("the access rules are invalid")
    });
    assert!(
        ferry.log().contains(&format!("{}:", config.display())),
        "{}",
        ferry.log()
    );
    assert!(curl_body(&url, BOB).contains("no versions stored"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_search_and_module_pages_name_only_the_modules_the_viewer_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = guarded(dir.path(), None, &[]).await;
    for module in [SECRET, OPEN] {
        save(
            ferry.store().as_ref(),
            &FixtureModule::package(module, "v1.0.0"),
        )
        .await;
    }
    // The pages list what the ledger has seen stored; both versions were stored through this Ferry.
    let pages = ["", "-/search?q=corp.example.com", "-/search?q=example.com"];
    for page in pages {
        let seen_by_alice = get_as(&ferry, page, ALICE).await;
        let seen_by_bob = get_as(&ferry, page, BOB).await;
        assert_eq!(seen_by_alice.status, 200, "/{page}");
        assert_eq!(seen_by_bob.status, 200, "/{page}");
        assert!(
            !seen_by_bob.text().contains(SECRET),
            "/{page} shows bob a module he may not read:\n{}",
            seen_by_bob.text()
        );
        if page.contains("corp") || page.is_empty() {
            assert!(
                seen_by_alice.text().contains(SECRET),
                "/{page} hides from alice a module she may read:\n{}",
                seen_by_alice.text()
            );
        }
    }
    // The module's own page is as hidden as the module: the 404 of a module that does not exist.
    let page = format!("-/module/{SECRET}");
    assert_eq!(get_as(&ferry, &page, ALICE).await.status, 200);
    let hidden = get_as(&ferry, &page, BOB).await;
    let missing = get_as(&ferry, &format!("-/module/{MISSING}"), BOB).await;
    assert_eq!(hidden.status, 404);
    assert_eq!(
        hidden.text().replace(SECRET, "M"),
        missing.text().replace(MISSING, "M")
    );
    ferry.stop().await;
}
